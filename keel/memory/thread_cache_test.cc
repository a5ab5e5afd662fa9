// Contracts of MemoryPool's per-thread caches (internal/thread_cache.h).
#include "keel/memory/internal/thread_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <new>
#include <set>
#include <thread>
#include <vector>

namespace keel::memory {
namespace {

constexpr std::size_t kClass = 2;  // 64 B.

void ExpectAddsUp(const MemoryPool& pool, std::size_t c = kClass) {
  const ClassStats s = pool.Stats(c);
  EXPECT_EQ(s.cached, s.thread_cached + s.shared_cached);
  EXPECT_EQ(s.in_use + s.cached, s.carved);
}

TEST(ThreadCache, BatchesAreBoundedBySizeAndOption) {
  MemoryPool pool;
  EXPECT_EQ(pool.BatchOf(0), 32u);
  EXPECT_EQ(pool.BatchOf(kClass), 32u);
  EXPECT_EQ(pool.BatchOf(8), 8u);  // 32 KiB of 4 KiB blocks.
  MemoryPool small(PoolOptions{.max_batch = 4});
  EXPECT_EQ(small.BatchOf(kClass), 4u);
  MemoryPool none(PoolOptions{.max_batch = 0});
  EXPECT_EQ(none.BatchOf(kClass), 0u);
}

TEST(ThreadCache, RefillTakesOneBatchFromTheSharedList) {
  MemoryPool pool;
  const std::size_t batch = pool.BatchOf(kClass);
  void* p = pool.Allocate(64);
  ClassStats s = pool.Stats(kClass);
  EXPECT_EQ(s.in_use, 1u);
  EXPECT_EQ(s.thread_cached, batch - 1);
  EXPECT_EQ(s.shared_cached, s.carved - batch);
  ExpectAddsUp(pool);
  pool.Deallocate(p, 64);
  EXPECT_EQ(pool.Stats(kClass).thread_cached, batch);
}

TEST(ThreadCache, HoldsAtMostTwoBatchesAndFlushesOneAtATime) {
  MemoryPool pool;
  const std::size_t batch = pool.BatchOf(kClass);
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < 4 * batch; ++i) blocks.push_back(pool.Allocate(64));
  EXPECT_EQ(pool.Stats(kClass).thread_cached, 0u);
  const std::size_t shared_before = pool.Stats(kClass).shared_cached;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    pool.Deallocate(blocks[i], 64);
    const ClassStats s = pool.Stats(kClass);
    EXPECT_LE(s.thread_cached, 2 * batch);
    // Flushes move whole batches: the shared list grows in steps of `batch`.
    EXPECT_EQ((s.shared_cached - shared_before) % batch, 0u);
    ExpectAddsUp(pool);
  }
  const ClassStats s = pool.Stats(kClass);
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.thread_cached + (s.shared_cached - shared_before), 4 * batch);
  pool.FlushThreadCache();
  EXPECT_EQ(pool.Stats(kClass).thread_cached, 0u);
  EXPECT_EQ(pool.Stats(kClass).shared_cached, pool.Stats(kClass).carved);
}

TEST(ThreadCache, FlushOnAThreadThatNeverUsedThePoolCreatesNoCache) {
  MemoryPool pool;
  std::thread([&] {
    pool.FlushThreadCache();
    EXPECT_EQ(internal::ThreadCaches::CountForTest(pool), 0u);
    pool.Deallocate(pool.Allocate(64), 64);
    EXPECT_EQ(internal::ThreadCaches::CountForTest(pool), 1u);
  }).join();
  EXPECT_EQ(internal::ThreadCaches::CountForTest(pool), 0u);
}

TEST(ThreadCache, ThreadExitReturnsItsCache) {
  MemoryPool pool;
  std::thread([&] {
    std::vector<void*> blocks;
    for (int i = 0; i < 50; ++i) blocks.push_back(pool.Allocate(64));
    for (void* p : blocks) pool.Deallocate(p, 64);
    EXPECT_GT(pool.Stats(kClass).thread_cached, 0u);
  }).join();
  const ClassStats s = pool.Stats(kClass);
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.thread_cached, 0u);
  EXPECT_EQ(s.shared_cached, s.carved);
}

TEST(ThreadCache, BlocksOutliveTheThreadThatAllocatedThem) {
  MemoryPool pool;
  std::vector<void*> blocks;
  std::thread([&] {
    for (int i = 0; i < 100; ++i) blocks.push_back(pool.Allocate(64));
  }).join();
  EXPECT_EQ(pool.Stats(kClass).in_use, 100u);  // Kept after the thread's exit.
  std::set<void*> live(blocks.begin(), blocks.end());
  for (int i = 0; i < 200; ++i) {
    void* p = pool.Allocate(64);
    EXPECT_TRUE(live.insert(p).second) << "block handed out twice";
  }
  for (void* p : live) pool.Deallocate(p, 64);
  EXPECT_EQ(pool.Stats(kClass).in_use, 0u);
  ExpectAddsUp(pool);
}

TEST(ThreadCache, FreeOnAnotherThreadLandsInThatThreadsCache) {
  MemoryPool pool;
  void* p = pool.Allocate(64);
  std::thread([&] {
    pool.Deallocate(p, 64);
    EXPECT_EQ(pool.Stats(kClass).in_use, 0u);
  }).join();
  const ClassStats s = pool.Stats(kClass);
  EXPECT_EQ(s.in_use, 0u);
  ExpectAddsUp(pool);
}

// The pool dies while a thread still caches its blocks: the thread's exit
// must not touch them (ASan would report the freed chunk), and a new pool
// built at the very same address gets a fresh cache, not the dead one.
TEST(ThreadCache, PoolDestroyedBeforeTheThreadExits) {
  alignas(MemoryPool) std::byte storage[sizeof(MemoryPool)];
  MemoryPool* pool = new (storage) MemoryPool();
  std::atomic<int> step{0};
  std::thread worker([&] {
    pool->Deallocate(pool->Allocate(64), 64);
    step.store(1);
    step.notify_one();
    step.wait(1);
    // A new pool at the old pool's address: this must not reuse the old cache.
    void* p = pool->Allocate(64);
    pool->Deallocate(p, 64);
    EXPECT_EQ(pool->Stats(kClass).in_use, 0u);
    EXPECT_EQ(pool->Stats(kClass).thread_cached, pool->BatchOf(kClass));  // One fresh batch.
  });
  step.wait(0);
  pool->~MemoryPool();
  pool = new (storage) MemoryPool();
  step.store(2);
  step.notify_one();
  worker.join();
  ExpectAddsUp(*pool);
  pool->~MemoryPool();
}

// A thread_local destroyed after the thread's caches frees and allocates:
// those calls take the uncached path and still count.
struct LateUser {
  MemoryPool* pool = nullptr;
  void* held = nullptr;
  ~LateUser() {
    if (pool == nullptr) return;
    pool->Deallocate(held, 64);
    pool->Deallocate(pool->Allocate(64), 64);
  }
};

TEST(ThreadCache, ThreadLocalDestructorsAfterTheCacheStillWork) {
  MemoryPool pool;
  std::thread([&] {
    thread_local LateUser late;  // Constructed first, so destroyed last.
    late.pool = &pool;
    late.held = pool.Allocate(64);
  }).join();
  const ClassStats s = pool.Stats(kClass);
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.thread_cached, 0u);
  ExpectAddsUp(pool);
}

TEST(ThreadCache, StatsAddUpAcrossThreadsAndClasses) {
  MemoryPool pool;
  std::vector<std::thread> threads;
  std::vector<std::vector<void*>> kept(3);
  for (std::size_t t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < 300; ++i) {
        void* p = pool.Allocate(16u << (i % MemoryPool::kClassCount));
        if (i % 3 == 0) {
          kept[t].push_back(p);
        } else {
          pool.Deallocate(p, 16u << (i % MemoryPool::kClassCount));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::size_t in_use = 0;
  for (std::size_t c = 0; c < MemoryPool::kClassCount; ++c) {
    ExpectAddsUp(pool, c);
    in_use += pool.Stats(c).in_use;
    EXPECT_EQ(pool.Stats(c).thread_cached, 0u);
  }
  EXPECT_EQ(in_use, 300u);
}

}  // namespace
}  // namespace keel::memory
