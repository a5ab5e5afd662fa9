#pragma once
// ObjectPool<T>: typed front of a MemoryPool. New/Delete construct and
// destroy T in pool blocks; MakeShared returns a std::shared_ptr<T> whose
// object and control block share one pool block (std::allocate_shared).
// Any thread may call any method; an object may be deleted on another thread.

#include <memory>
#include <utility>

#include "keel/memory/memory_pool.h"
#include "keel/memory/stl_allocator.h"

namespace keel::memory {

template <typename T>
class ObjectPool {
 public:
  explicit ObjectPool(MemoryPool& pool = MemoryPool::Default()) noexcept : pool_(&pool) {}

  template <typename... Args>
  T* New(Args&&... args) {
    void* p = pool_->Allocate(sizeof(T));
    try {
      return new (p) T(std::forward<Args>(args)...);
    } catch (...) {
      pool_->Deallocate(p, sizeof(T));
      throw;
    }
  }

  void Delete(T* obj) noexcept {
    if (obj == nullptr) return;
    obj->~T();
    pool_->Deallocate(obj, sizeof(T));
  }

  template <typename... Args>
  std::shared_ptr<T> MakeShared(Args&&... args) {
    return std::allocate_shared<T>(StlAllocator<T>(*pool_), std::forward<Args>(args)...);
  }

 private:
  MemoryPool* pool_;
};

}  // namespace keel::memory
