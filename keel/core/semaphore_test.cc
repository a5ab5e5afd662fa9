#include "keel/core/semaphore.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace keel::core {
namespace {

using namespace std::chrono_literals;

TEST(Semaphore, CountsPermits) {
  Semaphore sem(2);
  EXPECT_TRUE(sem.TryAcquire());
  EXPECT_TRUE(sem.TryAcquire());
  EXPECT_FALSE(sem.TryAcquire());
  sem.Release(3);
  EXPECT_EQ(sem.Available(), 3);
}

TEST(Semaphore, TimedWaitTimesOutWithoutPermit) {
  Semaphore sem(0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(sem.TryAcquireFor(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST(Semaphore, ReleaseWakesBlockedAcquirers) {
  Semaphore sem(0);
  std::atomic<int> got{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (sem.TryAcquireFor(10s)) ++got;
    });
  }
  sem.Release(3);
  sem.Release(1);
  for (auto& t : threads) t.join();
  EXPECT_EQ(got, 4);
  EXPECT_EQ(sem.Available(), 0);
}

TEST(Semaphore, NeverHandsOutMorePermitsThanReleased) {
  Semaphore sem(0);
  std::atomic<int> got{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      if (sem.TryAcquireFor(200ms)) ++got;
    });
  }
  sem.Release(2);
  for (auto& t : threads) t.join();
  EXPECT_EQ(got, 2);
}

TEST(Semaphore, BoundsConcurrency) {
  constexpr int kPermits = 3;
  Semaphore sem(kPermits);
  std::atomic<int> inside{0}, peak{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 200; ++k) {
        sem.Acquire();
        const int now = ++inside;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        --inside;
        sem.Release();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(peak, kPermits);
  EXPECT_EQ(sem.Available(), kPermits);
}

TEST(Semaphore, RejectsBadCounts) {
  EXPECT_THROW(Semaphore(-1), std::invalid_argument);
  Semaphore sem(Semaphore::Max());
  EXPECT_THROW(sem.Release(1), std::overflow_error);
  EXPECT_THROW(sem.Release(-1), std::invalid_argument);
  EXPECT_EQ(sem.Available(), Semaphore::Max());
}

}  // namespace
}  // namespace keel::core
