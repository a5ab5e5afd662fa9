#pragma once
// RefCounted / RefPtr: intrusive reference counting for objects shared
// between threads on the hot path (sessions, send buffers). One atomic
// counter inside the object, no control block, no weak references.
//
//   class Player : public keel::net::Session { ... };
//   keel::net::RefPtr<Player> p = keel::net::MakeRef<Player>(...);
//
// The count starts at 0; the first RefPtr takes it to 1. The object is
// destroyed (through its virtual destructor, or Release's override) when the
// last RefPtr goes away, on whichever thread that is.

#include <atomic>
#include <cstdint>
#include <utility>

namespace keel::net {

class RefCounted {
 public:
  RefCounted() = default;
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;

  void AddRef() const noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Release() const noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) Destroy();
  }
  uint32_t RefCountForTesting() const noexcept { return refs_.load(std::memory_order_relaxed); }
  // The count now, with acquire ordering: a holder that reads 1 knows every
  // other holder is gone and sees everything they did before releasing.
  uint32_t RefCount() const noexcept { return refs_.load(std::memory_order_acquire); }

 protected:
  virtual ~RefCounted() = default;
  // Called once, when the count drops to zero. Pooled objects override it to
  // return their memory to the pool.
  virtual void Destroy() const noexcept { delete this; }

 private:
  mutable std::atomic<uint32_t> refs_{0};
};

template <typename T>
class RefPtr {
 public:
  RefPtr() noexcept = default;
  RefPtr(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor)
  explicit RefPtr(T* p) noexcept : p_(p) {
    if (p_) p_->AddRef();
  }
  RefPtr(const RefPtr& o) noexcept : RefPtr(o.p_) {}
  RefPtr(RefPtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  template <typename U>
  RefPtr(const RefPtr<U>& o) noexcept : RefPtr(o.get()) {}  // NOLINT(google-explicit-constructor)
  template <typename U>
  RefPtr(RefPtr<U>&& o) noexcept : p_(o.Detach()) {}  // NOLINT(google-explicit-constructor)
  ~RefPtr() {
    if (p_) p_->Release();
  }
  RefPtr& operator=(RefPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }

  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  T& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  void reset() noexcept { RefPtr().swap(*this); }
  void swap(RefPtr& o) noexcept { std::swap(p_, o.p_); }
  // Gives up ownership without releasing; the caller now holds one reference.
  T* Detach() noexcept { return std::exchange(p_, nullptr); }
  // Takes over a reference the caller already holds (from Detach).
  static RefPtr Adopt(T* p) noexcept {
    RefPtr r;
    r.p_ = p;
    return r;
  }

  friend bool operator==(const RefPtr& a, const RefPtr& b) noexcept { return a.p_ == b.p_; }
  friend bool operator==(const RefPtr& a, std::nullptr_t) noexcept { return a.p_ == nullptr; }

 private:
  T* p_ = nullptr;
};

template <typename T, typename... Args>
RefPtr<T> MakeRef(Args&&... args) {
  return RefPtr<T>(new T(std::forward<Args>(args)...));
}

template <typename To, typename From>
RefPtr<To> StaticRefCast(const RefPtr<From>& p) noexcept {
  return RefPtr<To>(static_cast<To*>(p.get()));
}

}  // namespace keel::net
