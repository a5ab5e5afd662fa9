#include "keel/core/spin_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "keel/core/lock_guard.h"
#include "keel/core/testing/other_thread.h"

namespace keel::core {
namespace {

using namespace std::chrono_literals;

TEST(SpinLock, TryLockFailsWhileHeld) {
  SpinLock lock("free-list");
  ASSERT_TRUE(lock.TryLock());
  EXPECT_FALSE(testing::FreeForOthers(lock));
  lock.Unlock();
  EXPECT_TRUE(testing::FreeForOthers(lock));
}

TEST(SpinLock, WaiterGetsTheLockAfterRelease) {
  SpinLock lock("free-list");
  lock.Lock();
  std::atomic<bool> acquired{false};
  std::thread t([&] {
    LockGuard g(lock);
    acquired = true;
  });
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(acquired);
  lock.Unlock();
  t.join();
  EXPECT_TRUE(acquired);
}

// A waiter behind a long hold must back off to sleeping rather than spin a
// core: its CPU time stays far below the wall time it waited.
TEST(SpinLock, LongWaitDoesNotBurnACore) {
  SpinLock lock("held-long");
  lock.Lock();
  std::atomic<double> waiter_cpu_ms{0};
  std::thread t([&] {
    timespec start{}, end{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    lock.Lock();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
    lock.Unlock();
    waiter_cpu_ms = static_cast<double>(end.tv_sec - start.tv_sec) * 1e3 +
                    static_cast<double>(end.tv_nsec - start.tv_nsec) / 1e6;
  });
  std::this_thread::sleep_for(300ms);
  lock.Unlock();
  t.join();
  // Spinning flat out would cost ~300 ms of CPU; backoff costs a few.
  EXPECT_LT(waiter_cpu_ms.load(), 100.0);
}

TEST(SpinLock, WorksWithStandardGuards) {
  SpinLock lock;
  {
    std::lock_guard g(lock);
    EXPECT_FALSE(lock.TryLock());
  }
  {
    std::scoped_lock g(lock);
  }
  EXPECT_TRUE(lock.TryLock());
  lock.Unlock();
}

TEST(SpinLock, KeepsItsName) {
  SpinLock lock("session-table");
  EXPECT_STREQ(lock.name(), "session-table");
}

}  // namespace
}  // namespace keel::core
