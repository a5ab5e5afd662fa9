#pragma once
// Job: a move-only, type-erased `void()` callable (a lambda, or a member call
// bound by JobQueue::PostCall). Callables up to kInlineSize bytes that move
// without throwing live inside the Job itself, so posting one never calls
// malloc; larger ones fall back to one heap allocation.
//
// A Job is a value owned by whoever holds it; not thread-safe (move it to the
// thread that runs it).

#include <cassert>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace keel::job {

class Job {
 public:
  // A shared_ptr, a member-function pointer and two words of arguments fit.
  static constexpr std::size_t kInlineSize = 48;
  // Word alignment, not max_align_t's 16: with the ops pointer first, a Job
  // is 56 bytes and a JobNode 72 (job_list.h: link, label, ops, callable).
  // A callable that needs more alignment goes to the heap.
  static constexpr std::size_t kInlineAlign = alignof(void*);

  Job() noexcept = default;

  template <typename F>
    requires(!std::is_same_v<std::decay_t<F>, Job> && std::is_invocable_v<std::decay_t<F>&>)
  Job(F&& f) {  // NOLINT(google-explicit-constructor): lambdas convert, as to std::function
    using Fn = std::decay_t<F>;
    if constexpr (IsInline<Fn>()) {
      ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(f));
      ops_ = &kInlineOps<Fn>;
    } else {
      ::new (static_cast<void*>(storage_)) Fn*(new Fn(std::forward<F>(f)));
      ops_ = &kHeapOps<Fn>;
    }
  }

  Job(Job&& other) noexcept { MoveFrom(other); }
  Job& operator=(Job&& other) noexcept {
    if (this != &other) {
      Reset();
      MoveFrom(other);
    }
    return *this;
  }
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  ~Job() { Reset(); }

  // Takes `other`'s callable; this Job must be empty. Unlike move
  // assignment it never reads this Job first: a pooled JobNode's Job was
  // last written on another core, and that read would be a cache miss.
  void AssignToEmpty(Job&& other) noexcept {
    assert(ops_ == nullptr && "AssignToEmpty on a Job that holds a callable");
    MoveFrom(other);
  }

  // Runs the callable; the Job must not be empty.
  void operator()() { ops_->invoke(storage_); }
  explicit operator bool() const noexcept { return ops_ != nullptr; }
  // True when the callable lives inline (no heap allocation was made).
  bool IsInline() const noexcept { return ops_ != nullptr && ops_->is_inline; }

  void Reset() noexcept {
    if (ops_ != nullptr) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

 private:
  struct Ops {
    void (*invoke)(void*);
    void (*move)(void* from, void* to) noexcept;
    void (*destroy)(void*) noexcept;
    bool is_inline;
  };

  template <typename Fn>
  static constexpr bool IsInline() {
    return sizeof(Fn) <= kInlineSize && alignof(Fn) <= kInlineAlign &&
           std::is_nothrow_move_constructible_v<Fn>;
  }
  template <typename Fn>
  static Fn* Inline(void* p) noexcept {
    return std::launder(static_cast<Fn*>(p));
  }
  template <typename Fn>
  static Fn*& Heap(void* p) noexcept {
    return *std::launder(static_cast<Fn**>(p));
  }

  template <typename Fn>
  static constexpr Ops kInlineOps{
      [](void* p) { (*Inline<Fn>(p))(); },
      [](void* from, void* to) noexcept {
        ::new (to) Fn(std::move(*Inline<Fn>(from)));
        Inline<Fn>(from)->~Fn();
      },
      [](void* p) noexcept { Inline<Fn>(p)->~Fn(); },
      true};
  template <typename Fn>
  static constexpr Ops kHeapOps{
      [](void* p) { (*Heap<Fn>(p))(); },
      [](void* from, void* to) noexcept { ::new (to) Fn*(Heap<Fn>(from)); },
      [](void* p) noexcept { delete Heap<Fn>(p); },
      false};

  void MoveFrom(Job& other) noexcept {
    if (other.ops_ != nullptr) {
      other.ops_->move(other.storage_, storage_);
      ops_ = other.ops_;
      other.ops_ = nullptr;
    }
  }

  const Ops* ops_ = nullptr;
  alignas(kInlineAlign) unsigned char storage_[kInlineSize];
};

}  // namespace keel::job
