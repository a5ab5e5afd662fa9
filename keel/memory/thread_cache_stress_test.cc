// Stress for MemoryPool's thread caches (run under TSan): producers allocate
// and stamp blocks, consumers on other threads check the stamp and free
// them, and both sides are replaced by new threads part-way, so caches are
// flushed at thread exit while their blocks are still in use elsewhere.
#include "keel/memory/memory_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace keel::memory {
namespace {

struct Item {
  std::uint64_t* block;
  std::uint64_t stamp;
};

struct Channel {
  std::mutex mu;
  std::vector<Item> items;  // Guarded by mu.
  bool closed = false;      // Guarded by mu.
};

constexpr int kPairs = 3;
constexpr int kGenerations = 4;
constexpr int kBlocksPerGeneration = 4000;
constexpr std::size_t kWords = 8;  // 64 B blocks.

void Produce(MemoryPool& pool, Channel& ch, std::uint64_t owner) {
  std::vector<Item> pending;
  for (int i = 0; i < kBlocksPerGeneration; ++i) {
    auto* block = static_cast<std::uint64_t*>(pool.Allocate(kWords * 8));
    const std::uint64_t stamp = (owner << 32) | std::uint32_t(i);
    for (std::size_t w = 0; w < kWords; ++w) block[w] = stamp;
    pending.push_back(Item{block, stamp});
    if (pending.size() == 16 || i + 1 == kBlocksPerGeneration) {
      std::lock_guard<std::mutex> lock(ch.mu);
      ch.items.insert(ch.items.end(), pending.begin(), pending.end());
      pending.clear();
    }
  }
}

// Checks and frees the consumer's own scratch blocks.
void CheckAndFree(MemoryPool& pool, std::vector<Item>& scratch, std::atomic<int>& bad) {
  for (const Item& item : scratch) {
    for (std::size_t w = 0; w < kWords; ++w) {
      if (item.block[w] != item.stamp) bad.fetch_add(1);
    }
    pool.Deallocate(item.block, kWords * 8);
  }
  scratch.clear();
}

// Frees up to `limit` blocks (or until closed and drained); returns how many.
int Consume(MemoryPool& pool, Channel& ch, int limit, std::atomic<int>& bad) {
  static std::atomic<std::uint64_t> next_scratch{std::uint64_t{1} << 63};
  int freed = 0;
  std::vector<Item> got;
  std::vector<Item> scratch;
  while (freed < limit) {
    {
      std::lock_guard<std::mutex> lock(ch.mu);
      if (ch.items.empty() && ch.closed) return freed;
      const auto take = std::min<std::size_t>(ch.items.size(), std::size_t(limit - freed));
      got.assign(ch.items.end() - static_cast<std::ptrdiff_t>(take), ch.items.end());
      ch.items.resize(ch.items.size() - take);
    }
    if (got.empty()) std::this_thread::yield();
    for (const Item& item : got) {
      for (std::size_t w = 0; w < kWords; ++w) {
        if (item.block[w] != item.stamp) bad.fetch_add(1);
      }
      item.block[0] = ~item.stamp;  // The freeing thread writes too.
      pool.Deallocate(item.block, kWords * 8);
      ++freed;
    }
    // A run longer than both magazines: empties current, takes the spare,
    // refills from the shared list, then fills and flushes on the way back.
    for (int i = 0; i < 100 && !got.empty(); ++i) {
      auto* own = static_cast<std::uint64_t*>(pool.Allocate(kWords * 8));
      const std::uint64_t stamp = next_scratch.fetch_add(1);
      for (std::size_t w = 0; w < kWords; ++w) own[w] = stamp;
      scratch.push_back(Item{own, stamp});
    }
    CheckAndFree(pool, scratch, bad);
    got.clear();
  }
  return freed;
}

TEST(ThreadCacheStress, CrossThreadFreesAndThreadExitsNeverHandOutABlockTwice) {
  MemoryPool pool;
  std::vector<Channel> channels(kPairs);
  std::atomic<int> bad{0};
  std::atomic<int> total_freed{0};
  std::vector<std::thread> sides;
  for (int p = 0; p < kPairs; ++p) {
    Channel& ch = channels[static_cast<std::size_t>(p)];
    sides.emplace_back([&, p] {  // Producer generations, one thread each.
      for (int g = 0; g < kGenerations; ++g) {
        std::thread([&] { Produce(pool, ch, std::uint64_t(p * kGenerations + g)); }).join();
      }
      std::lock_guard<std::mutex> lock(ch.mu);
      ch.closed = true;
    });
    sides.emplace_back([&] {  // Consumer generations, each freeing a share.
      int freed = -1;
      while (freed != 0) {
        std::thread([&] {
          freed = Consume(pool, ch, kBlocksPerGeneration / 3, bad);
          total_freed.fetch_add(freed);
        }).join();
      }
    });
  }
  for (auto& th : sides) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(total_freed.load(), kPairs * kGenerations * kBlocksPerGeneration);
  const ClassStats s = pool.Stats(MemoryPool::ClassOf(kWords * 8));
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.thread_cached, 0u);  // Every worker thread has exited.
  EXPECT_EQ(s.shared_cached, s.carved);
}

}  // namespace
}  // namespace keel::memory
