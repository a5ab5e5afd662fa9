#pragma once
// Per-thread caches of MemoryPool (keel/memory/memory_pool.h); internal.
//
// Ownership: one PoolCache per (thread, pool), created on the thread's first
// use of the pool and owned by that thread's ThreadCaches (a thread_local).
// The pool lists it in caches_ so that Stats can sum its counters and the
// pool's destructor can mark it dead. Both lists and PoolCache::pool are
// guarded by one process-wide registry mutex (never destroyed), taken only on
// cold paths: a thread's first use of a pool, Stats, thread exit, pool
// destruction. Magazines are touched only by the owning thread.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "keel/memory/memory_pool.h"

namespace keel::memory::internal {

struct Magazine {
  void* head = nullptr;  // Chain through each block's first word.
  std::uint32_t count = 0;

  // Owner thread only. Pop needs count != 0; Push needs room (count < batch).
  void* Pop() noexcept {
    void* block = head;
    std::memcpy(&head, block, sizeof head);
    --count;
    return block;
  }
  void Push(void* block) noexcept {
    std::memcpy(block, &head, sizeof head);
    head = block;
    ++count;
  }
};

struct ClassCache {
  Magazine current;
  Magazine spare;  // Either empty or holding exactly one batch.
  // Written only by the owning thread (relaxed load + store, no RMW), read
  // relaxed by Stats; exited threads fold theirs into the pool's counters.
  std::atomic<std::uint64_t> allocs{0};
  std::atomic<std::uint64_t> frees{0};
  std::atomic<std::uint64_t> got{0};    // Blocks taken from the shared list.
  std::atomic<std::uint64_t> given{0};  // Blocks given back to it.
};

struct PoolCache {
  std::uint64_t pool_id = 0;
  MemoryPool* pool = nullptr;  // nullptr once the pool died; registry mutex.
  std::array<ClassCache, MemoryPool::kClassCount> classes;

  // Gives every cached block back to the pool's shared lists. Owner thread.
  void Flush(MemoryPool& owner) noexcept;
};

inline void Bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// The calling thread's ThreadCaches; their destructor returns every cache.
class ThreadCaches {
 public:
  // The cache for `pool` on this thread, created on first use; nullptr while
  // or after this thread's thread_local objects are destroyed.
  static PoolCache* Find(MemoryPool& pool);
  // The cache for `pool` on this thread if it has one; never creates one.
  static PoolCache* FindExisting(const MemoryPool& pool) noexcept;
  // How many live threads have a cache for `pool` (tests).
  static std::size_t CountForTest(const MemoryPool& pool);
  // Registry side of a pool's life.
  static std::uint64_t Register(MemoryPool& pool);
  static void Unregister(MemoryPool& pool) noexcept;
  static void SumInto(const MemoryPool& pool, std::size_t class_index, ClassStats& stats);

  ThreadCaches() noexcept;
  ~ThreadCaches();
  ThreadCaches(const ThreadCaches&) = delete;
  ThreadCaches& operator=(const ThreadCaches&) = delete;

 private:
  static ThreadCaches& Local();  // Constructs this thread's on first call.

  std::vector<PoolCache*> caches_;  // Owned; touched by this thread only.
};

// Clears the calling thread's one-entry fast lookup (memory_pool.cc).
void ForgetHotCache() noexcept;

}  // namespace keel::memory::internal
