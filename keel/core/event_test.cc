#include "keel/core/event.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace keel::core {
namespace {

using namespace std::chrono_literals;

// Waits (bounded) until `event` has `n` blocked waiters.
void AwaitWaiters(const Event& event, size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (event.Waiters() != n) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "waiters never reached " << n;
    std::this_thread::sleep_for(1ms);
  }
}

// Waits (bounded) until `count` reaches `n`: a released waiter leaves the
// waiter count (under the event's lock) before it bumps the test's counter.
void AwaitAtLeast(const std::atomic<int>& count, int n) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (count.load() < n) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "count never reached " << n;
    std::this_thread::sleep_for(1ms);
  }
}

TEST(Event, ManualResetReleasesEveryoneUntilReset) {
  Event event(Event::Mode::kManualReset);
  std::atomic<int> released{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&] { event.Wait(); ++released; });
  AwaitWaiters(event, 3);
  event.Set();
  for (auto& t : threads) t.join();
  EXPECT_EQ(released, 3);
  EXPECT_TRUE(event.TryWait());
  EXPECT_TRUE(event.TryWait());  // stays set
  event.Reset();
  EXPECT_FALSE(event.TryWait());
  EXPECT_FALSE(event.WaitFor(5ms));
}

TEST(Event, AutoResetReleasesExactlyOne) {
  Event event(Event::Mode::kAutoReset);
  std::atomic<int> released{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      if (event.WaitFor(10s)) ++released;
    });
  }
  AwaitWaiters(event, 3);
  event.Set();
  AwaitWaiters(event, 2);
  AwaitAtLeast(released, 1);
  EXPECT_EQ(released, 1);
  EXPECT_FALSE(event.TryWait());  // the one Set was consumed
  event.Set();
  AwaitWaiters(event, 1);
  event.Set();
  for (auto& t : threads) t.join();
  EXPECT_EQ(released, 3);
}

TEST(Event, AutoResetDoesNotCountSets) {
  Event event(Event::Mode::kAutoReset);
  event.Set();
  event.Set();  // set or not: a second Set banks nothing
  EXPECT_TRUE(event.TryWait());
  EXPECT_FALSE(event.TryWait());
}

TEST(Event, AutoResetSetBeforeWaitReleasesTheNextWaiter) {
  Event event(Event::Mode::kAutoReset);
  event.Set();
  EXPECT_TRUE(event.WaitFor(1s));
  EXPECT_FALSE(event.TryWait());
}

TEST(Event, ManualPulseWakesOnlyCurrentWaiters) {
  Event event(Event::Mode::kManualReset);
  std::atomic<int> released{0};
  std::vector<std::thread> early;
  for (int i = 0; i < 3; ++i) early.emplace_back([&] { event.Wait(); ++released; });
  AwaitWaiters(event, 3);
  event.Pulse();
  for (auto& t : early) t.join();
  EXPECT_EQ(released, 3);
  // Arrivals after the pulse are not released by it, and it left the event unset.
  EXPECT_FALSE(event.TryWait());
  EXPECT_FALSE(event.WaitFor(20ms));
}

TEST(Event, AutoPulseWakesOneCurrentWaiterAndNoLaterOne) {
  Event event(Event::Mode::kAutoReset);
  std::atomic<int> released{0};
  std::vector<std::thread> early;
  for (int i = 0; i < 2; ++i) {
    early.emplace_back([&] {
      if (event.WaitFor(300ms)) ++released;
    });
  }
  AwaitWaiters(event, 2);
  event.Pulse();
  AwaitWaiters(event, 1);
  AwaitAtLeast(released, 1);
  EXPECT_EQ(released, 1);
  // A waiter arriving now must not take a token meant for the earlier ones.
  EXPECT_FALSE(event.WaitFor(20ms));
  for (auto& t : early) t.join();
  EXPECT_EQ(released, 1);  // the second early waiter timed out
}

TEST(Event, PulseWithNoWaitersDoesNothing) {
  Event manual(Event::Mode::kManualReset);
  Event automatic(Event::Mode::kAutoReset);
  manual.Pulse();
  automatic.Pulse();
  EXPECT_FALSE(manual.TryWait());
  EXPECT_FALSE(automatic.WaitFor(10ms));
}

TEST(Event, WaitForTimesOut) {
  Event event(Event::Mode::kAutoReset);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(event.WaitFor(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  EXPECT_EQ(event.Waiters(), 0u);
}

TEST(Event, InitiallySet) {
  Event event(Event::Mode::kAutoReset, true);
  EXPECT_TRUE(event.TryWait());
  EXPECT_FALSE(event.TryWait());
}

}  // namespace
}  // namespace keel::core
