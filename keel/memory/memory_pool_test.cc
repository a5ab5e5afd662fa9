#include "keel/memory/memory_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace keel::memory {
namespace {

TEST(MemoryPool, MapsSizesToClasses) {
  EXPECT_EQ(MemoryPool::ClassOf(1), 0u);
  EXPECT_EQ(MemoryPool::ClassOf(16), 0u);
  EXPECT_EQ(MemoryPool::ClassOf(17), 1u);
  EXPECT_EQ(MemoryPool::ClassOf(64), 2u);
  EXPECT_EQ(MemoryPool::ClassOf(4096), 8u);
}

TEST(MemoryPool, HandsOutDistinctBlocksAndCountsThem) {
  MemoryPool pool;
  std::set<void*> seen;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(seen.insert(pool.Allocate(64)).second);
  EXPECT_EQ(pool.Stats(2).in_use, 100u);
  // Peak counts blocks off the shared list: in use plus this thread's cache.
  const std::size_t slack = 2 * pool.BatchOf(2);
  EXPECT_GE(pool.Stats(2).peak, 100u);
  EXPECT_LE(pool.Stats(2).peak, 100u + slack);
  for (void* p : seen) pool.Deallocate(p, 64);
  EXPECT_EQ(pool.Stats(2).in_use, 0u);
  EXPECT_GE(pool.Stats(2).cached, 100u);
}

TEST(MemoryPool, PeakIsExactWithoutThreadCaches) {
  MemoryPool pool(PoolOptions{.max_batch = 0});
  std::set<void*> seen;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(seen.insert(pool.Allocate(64)).second);
  for (void* p : seen) pool.Deallocate(p, 64);
  const ClassStats stats = pool.Stats(2);
  EXPECT_EQ(stats.peak, 100u);
  EXPECT_EQ(stats.in_use, 0u);
  EXPECT_EQ(stats.thread_cached, 0u);
  EXPECT_EQ(stats.shared_cached, stats.carved);
}

// Two threads each hold at most one block, and one may be carving a large
// chunk while the other pops: blocks not yet listed must not count as in use.
TEST(MemoryPool, PeakIsExactWhileAnotherThreadCarves) {
  for (int round = 0; round < 4; ++round) {
    MemoryPool pool(PoolOptions{.chunk_bytes = 4 << 20, .max_batch = 0});  // 256 Ki blocks.
    std::atomic<int> ready{0};
    auto user = [&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      for (int i = 0; i < 200; ++i) pool.Deallocate(pool.Allocate(16), 16);
    };
    std::thread a(user);
    std::thread b(user);
    a.join();
    b.join();
    const ClassStats stats = pool.Stats(0);
    EXPECT_LE(stats.peak, 2u) << "round " << round;
    EXPECT_EQ(stats.in_use, 0u);
    EXPECT_EQ(stats.shared_cached, stats.carved);
  }
}

TEST(MemoryPool, LargeRequestsGoToTheSystem) {
  MemoryPool pool;
  void* p = pool.Allocate(10000);
  ASSERT_NE(p, nullptr);
  pool.Deallocate(p, 10000);
}

// Forces A-B-A: a pop reads head A and next B; the hook then pops A and B
// and pushes A back (head A again, next of A now C). Without the tag the
// stale CAS would succeed and install B (in use!) as head.
struct AbaState {
  MemoryPool* pool;
  void* a = nullptr;
  void* b = nullptr;
  void* c = nullptr;
  bool fired = false;
};

void AbaHook(void* arg) {
  auto* s = static_cast<AbaState*>(arg);
  MemoryPool::SetPopHookForTest(nullptr, nullptr);
  s->fired = true;
  s->a = s->pool->Allocate(64);
  s->b = s->pool->Allocate(64);
  s->pool->Deallocate(s->a, 64);
}

TEST(MemoryPool, GenerationTagDefeatsAbaOnSharedList) {
  // No thread caches: every allocate and free is one pop or push.
  MemoryPool pool(PoolOptions{.max_batch = 0});
  pool.Deallocate(pool.Allocate(64), 64);  // Carve a chunk.
  AbaState state{&pool};
  MemoryPool::SetPopHookForTest(&AbaHook, &state);
  void* first = pool.Allocate(64);
  ASSERT_TRUE(state.fired);
  // The outer pop retried and got A (pushed back); B stays owned by the hook.
  EXPECT_EQ(first, state.a);
  void* next = pool.Allocate(64);
  EXPECT_NE(next, state.b) << "B handed out twice: stale CAS succeeded";
  EXPECT_NE(next, first);
  pool.Deallocate(first, 64);
  pool.Deallocate(next, 64);
  pool.Deallocate(state.b, 64);
}

// The same A-B-A, but the hook runs exactly 2^16 pushes and pops, ending
// with A on top: a 16-bit generation is back where the stale pop read it, and
// its CAS would install B. The head's generation has more bits than that.
void AbaWrapHook(void* arg) {
  auto* s = static_cast<AbaState*>(arg);
  MemoryPool::SetPopHookForTest(nullptr, nullptr);
  s->fired = true;
  s->a = s->pool->Allocate(64);  // 3 pops: A, B, C.
  s->b = s->pool->Allocate(64);
  s->c = s->pool->Allocate(64);
  for (int i = 0; i < 32766; ++i) {  // 2 x 32766 more.
    s->pool->Deallocate(s->a, 64);
    EXPECT_EQ(s->pool->Allocate(64), s->a);
  }
  s->pool->Deallocate(s->a, 64);  // 1 push: 65536 in all, A on top.
}

TEST(MemoryPool, GenerationTagOutlastsSixteenBitsOfOperations) {
  MemoryPool pool(PoolOptions{.max_batch = 0});
  pool.Deallocate(pool.Allocate(64), 64);
  AbaState state{&pool};
  MemoryPool::SetPopHookForTest(&AbaWrapHook, &state);
  void* first = pool.Allocate(64);
  ASSERT_TRUE(state.fired);
  std::set<void*> held{first, state.b, state.c};
  for (int i = 0; i < 4; ++i) {
    void* p = pool.Allocate(64);
    EXPECT_TRUE(held.insert(p).second) << "block handed out twice: stale CAS succeeded";
  }
  for (void* p : held) pool.Deallocate(p, 64);
  EXPECT_EQ(pool.Stats(2).in_use, 0u);
}

}  // namespace
}  // namespace keel::memory
