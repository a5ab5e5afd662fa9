#include "keel/memory/memory_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace keel::memory {
namespace {

// Threads allocate, stamp each block with their id, and hand blocks to the
// next thread, which checks the stamp and frees them (cross-thread frees).
// A block handed out twice would show a foreign stamp.
TEST(MemoryPoolStress, CrossThreadFreesNeverHandOutABlockTwice) {
  MemoryPool pool;
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  constexpr int kBatch = 64;
  std::vector<std::vector<std::atomic<void*>>> slots(kThreads);
  for (auto& s : slots) s = std::vector<std::atomic<void*>>(kBatch);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto& mine = slots[static_cast<std::size_t>(t)];
      for (int r = 0; r < kRounds; ++r) {
        for (auto& slot : mine) {
          auto* p = static_cast<std::uint64_t*>(pool.Allocate(64));
          const std::uint64_t stamp = (std::uint64_t(t) << 32) | std::uint32_t(r);
          for (int i = 0; i < 8; ++i) p[i] = stamp;
          for (int i = 0; i < 8; ++i) {
            if (p[i] != stamp) bad.fetch_add(1);
          }
          // Release pairs with the acquire exchange by the freeing thread.
          void* old = slot.exchange(p, std::memory_order_acq_rel);
          if (old != nullptr) {
            if ((*static_cast<std::uint64_t*>(old) >> 32) != std::uint64_t(t)) bad.fetch_add(1);
            pool.Deallocate(old, 64);
          }
        }
        auto& theirs = slots[static_cast<std::size_t>((t + 1) % kThreads)];
        for (auto& slot : theirs) {
          // Acquire pairs with the release exchange above.
          void* p = slot.exchange(nullptr, std::memory_order_acq_rel);
          const auto owner = std::uint64_t((t + 1) % kThreads);
          if (p != nullptr) {
            if ((*static_cast<std::uint64_t*>(p) >> 32) != owner) bad.fetch_add(1);
            pool.Deallocate(p, 64);
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& s : slots) {
    for (auto& slot : s) {
      if (void* p = slot.load()) pool.Deallocate(p, 64);
    }
  }
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(pool.Stats(2).in_use, 0u);
}

}  // namespace
}  // namespace keel::memory
