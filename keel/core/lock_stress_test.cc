// Many threads hammering SpinLock and RwLock while checking invariants that
// break without the lock. Built into every preset; under TSan (the tsan
// preset) a missing happens-before edge is reported even when the invariant
// happens to hold.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <cstdint>
#include <thread>
#include <vector>

#include "keel/core/deadlock_detector.h"
#include "keel/core/lock_guard.h"
#include "keel/core/rw_lock.h"
#include "keel/core/spin_lock.h"

namespace keel::core {
namespace {

constexpr int kThreads = 8;

template <typename Fn>
void RunThreads(int n, Fn fn) {
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(fn, i);
  for (auto& t : threads) t.join();
}

// Two plain fields that must always be equal; a torn update is visible.
struct Pair {
  uint64_t a = 0;
  uint64_t b = 0;
};

TEST(LockStress, SpinLockKeepsCountsExact) {
  constexpr int kIters = 100000;
  SpinLock lock("stress-spin");
  Pair pair;
  std::atomic<int> torn{0};
  RunThreads(kThreads, [&](int) {
    for (int i = 0; i < kIters; ++i) {
      LockGuard g(lock);
      if (pair.a != pair.b) ++torn;
      ++pair.a;
      ++pair.b;
    }
  });
  EXPECT_EQ(torn, 0);
  EXPECT_EQ(pair.a, uint64_t{kThreads} * kIters);
  EXPECT_EQ(pair.b, pair.a);
}

TEST(LockStress, SpinLockTryLockNeverAdmitsTwo) {
  constexpr int kIters = 100000;
  SpinLock lock("stress-try");
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  uint64_t count = 0;
  std::atomic<uint64_t> taken{0};
  RunThreads(kThreads, [&](int) {
    for (int i = 0; i < kIters; ++i) {
      if (!lock.TryLock()) continue;
      if (inside.fetch_add(1, std::memory_order_relaxed) != 0) ++overlaps;
      ++count;
      taken.fetch_add(1, std::memory_order_relaxed);
      inside.fetch_sub(1, std::memory_order_relaxed);
      lock.Unlock();
    }
  });
  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(count, taken.load());
}

TEST(LockStress, RwLockReadersNeverSeeTornWrites) {
  constexpr int kIters = 50000;
  RwLock lock("stress-rw");
  Pair pair;
  std::atomic<int> torn{0};
  std::atomic<uint64_t> writes{0};
  RunThreads(kThreads, [&](int t) {
    for (int i = 0; i < kIters; ++i) {
      if ((i + t) % 8 == 0) {  // one in eight operations writes
        WriteGuard<RwLock> w(lock);
        ++pair.a;
        ++pair.b;
        writes.fetch_add(1, std::memory_order_relaxed);
      } else {
        ReadGuard r(lock);
        if (pair.a != pair.b) ++torn;
      }
    }
  });
  EXPECT_EQ(torn, 0);
  EXPECT_EQ(pair.a, writes.load());
  EXPECT_EQ(pair.b, pair.a);
}

TEST(LockStress, RwLockReentryAndDowngradeUnderContention) {
  constexpr int kIters = 20000;
  RwLock lock("stress-reentry");
  Pair pair;
  std::atomic<int> torn{0};
  RunThreads(kThreads, [&](int t) {
    for (int i = 0; i < kIters; ++i) {
      switch ((i + t) % 4) {
        case 0: {  // writer re-enters and reads while writing
          WriteGuard<RwLock> w(lock);
          WriteGuard<RwLock> again(lock);
          ++pair.a;
          ReadGuard r(lock);
          ++pair.b;
          break;
        }
        case 1: {  // write, take a read, drop the write: still a reader
          lock.Lock();
          ++pair.a;
          ++pair.b;
          lock.LockShared();
          lock.Unlock();
          if (pair.a != pair.b) ++torn;
          lock.UnlockShared();
          break;
        }
        default: {  // nested reads
          ReadGuard r(lock);
          ReadGuard r2(lock);
          if (pair.a != pair.b) ++torn;
        }
      }
    }
  });
  EXPECT_EQ(torn, 0);
  EXPECT_EQ(pair.a, pair.b);
  EXPECT_EQ(pair.a, uint64_t{kThreads} * kIters / 2);
}

TEST(LockStress, WritersAreNotStarvedByReaders) {
  RwLock lock("stress-starve");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kThreads - 1; ++i) {
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        ReadGuard r(lock);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  // With readers overlapping all the time, a writer without preference
  // would never see the reader count at zero.
  constexpr int kWrites = 200;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int writes = 0;
  while (writes < kWrites && std::chrono::steady_clock::now() < deadline) {
    // Let the readers get going again before each write.
    const uint64_t seen = reads.load(std::memory_order_relaxed);
    while (reads.load(std::memory_order_relaxed) < seen + 100 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    WriteGuard<RwLock> w(lock);
    ++writes;
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(writes, kWrites) << "writers starved: " << reads.load() << " reads went through";
}

TEST(LockStress, DetectorStaysQuietOnAConsistentOrder) {
  const bool was = DeadlockDetector::Enabled();
  DeadlockDetector::SetEnabled(true);
  DeadlockDetector::SetAction(DeadlockDetector::Action::kContinue);
  const uint64_t before = DeadlockDetector::CyclesReported();
  constexpr int kLocks = 6;
  std::vector<std::unique_ptr<SpinLock>> locks;
  for (int i = 0; i < kLocks; ++i) locks.push_back(std::make_unique<SpinLock>("ordered"));
  uint64_t counters[kLocks] = {};
  RunThreads(kThreads, [&](int t) {
    for (int i = 0; i < 20000; ++i) {
      // Always ascending: lock i before lock j for i < j.
      const int first = (i + t) % (kLocks - 1);
      const int second = first + 1 + i % (kLocks - first - 1);
      LockGuard a(*locks[static_cast<size_t>(first)]);
      LockGuard b(*locks[static_cast<size_t>(second)]);
      ++counters[first];
      ++counters[second];
    }
  });
  EXPECT_EQ(DeadlockDetector::CyclesReported(), before);
  DeadlockDetector::SetAction(DeadlockDetector::Action::kAbort);
  DeadlockDetector::SetEnabled(was);
}

}  // namespace
}  // namespace keel::core
