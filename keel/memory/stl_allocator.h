#pragma once
// StlAllocator<T>: lets standard containers (and std::allocate_shared) draw
// from a MemoryPool (the default pool unless one is given). Stateless apart
// from the pool pointer; copies compare equal when they share a pool. Thread
// safety is the pool's: any thread may allocate or free.

#include <cstddef>

#include "keel/memory/memory_pool.h"

namespace keel::memory {

template <typename T>
class StlAllocator {
 public:
  using value_type = T;

  StlAllocator() noexcept : pool_(&MemoryPool::Default()) {}
  explicit StlAllocator(MemoryPool& pool) noexcept : pool_(&pool) {}
  template <typename U>
  StlAllocator(const StlAllocator<U>& other) noexcept : pool_(other.pool()) {}  // NOLINT

  T* allocate(std::size_t n) { return static_cast<T*>(pool_->Allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { pool_->Deallocate(p, n * sizeof(T)); }

  MemoryPool* pool() const noexcept { return pool_; }

  template <typename U>
  bool operator==(const StlAllocator<U>& other) const noexcept {
    return pool_ == other.pool();
  }

 private:
  MemoryPool* pool_;
};

}  // namespace keel::memory
