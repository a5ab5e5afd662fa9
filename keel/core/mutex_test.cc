#include "keel/core/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "keel/core/testing/other_thread.h"

namespace keel::core {
namespace {

using namespace std::chrono_literals;

TEST(Mutex, ExcludesOtherThreads) {
  Mutex mu("table");
  mu.Lock();
  EXPECT_FALSE(testing::FreeForOthers(mu));
  mu.Unlock();
  EXPECT_TRUE(testing::FreeForOthers(mu));
  EXPECT_STREQ(mu.name(), "table");
}

TEST(CondVar, WaitReturnsWhenThePredicateHolds) {
  struct Queue {
    Mutex mu{"queue"};
    CondVar cv;
    int items KEEL_GUARDED_BY(mu) = 0;
  } q;
  std::thread producer([&] {
    std::this_thread::sleep_for(10ms);
    MutexLock lock(q.mu);
    q.items = 3;
    q.cv.NotifyAll();
  });
  {
    MutexLock lock(q.mu);
    q.cv.Wait(q.mu, [&]() KEEL_REQUIRES(q.mu) { return q.items > 0; });
    EXPECT_EQ(q.items, 3);
  }
  producer.join();
}

TEST(CondVar, WaitUntilTimesOutWithThePredicateFalse) {
  struct Flag {
    Mutex mu{"flag"};
    CondVar cv;
    bool ready KEEL_GUARDED_BY(mu) = false;
  } f;
  MutexLock lock(f.mu);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(f.cv.WaitUntil(f.mu, start + 20ms, [&]() KEEL_REQUIRES(f.mu) { return f.ready; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

}  // namespace
}  // namespace keel::core
