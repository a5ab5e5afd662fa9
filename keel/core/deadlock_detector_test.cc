#include "keel/core/deadlock_detector.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "keel/core/lock_guard.h"
#include "keel/core/mutex.h"
#include "keel/core/rw_lock.h"
#include "keel/core/spin_lock.h"
#include "keel/core/thread_context.h"

namespace keel::core {
namespace {

// Turns the detector on, in continue mode, with a reporter that keeps every
// cycle; restores the previous state afterwards.
class DeadlockDetectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    was_enabled_ = DeadlockDetector::Enabled();
    DeadlockDetector::SetEnabled(true);
    DeadlockDetector::SetAction(DeadlockDetector::Action::kContinue);
    DeadlockDetector::ClearGraph();
    DeadlockDetector::SetReporter([this](const LockOrderCycle& cycle) {
      std::lock_guard lock(mu_);
      cycles_.push_back(cycle);
    });
  }
  void TearDown() override {
    DeadlockDetector::SetReporter(nullptr);
    DeadlockDetector::ClearGraph();
    DeadlockDetector::SetAction(DeadlockDetector::Action::kAbort);
    DeadlockDetector::SetEnabled(was_enabled_);
  }
  std::vector<LockOrderCycle> Cycles() {
    std::lock_guard lock(mu_);
    return cycles_;
  }
  template <typename First, typename Second>
  static void TakeInOrder(First& a, Second& b) {
    LockGuard ga(a);
    LockGuard gb(b);
  }

  bool was_enabled_ = false;
  std::mutex mu_;
  std::vector<LockOrderCycle> cycles_;
};

std::vector<std::string> LockNames(const LockOrderCycle& cycle) {
  std::vector<std::string> names;
  for (const auto& hop : cycle.hops) names.push_back(hop.lock);
  return names;
}

TEST_F(DeadlockDetectorTest, ReportsThreeLockCycleWithAllNames) {
  SpinLock a("A"), b("B"), c("C");
  TakeInOrder(a, b);
  TakeInOrder(b, c);
  EXPECT_TRUE(Cycles().empty());
  TakeInOrder(c, a);  // closes A -> B -> C -> A

  const auto cycles = Cycles();
  ASSERT_EQ(cycles.size(), 1u);
  const auto names = LockNames(cycles[0]);
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names, (std::vector<std::string>{"C", "A", "B"}));
  const std::string text = cycles[0].ToString();
  EXPECT_NE(text.find("A"), std::string::npos);
  EXPECT_NE(text.find("B"), std::string::npos);
  EXPECT_NE(text.find("C"), std::string::npos);
  EXPECT_NE(text.find("main"), std::string::npos) << text;
}

TEST_F(DeadlockDetectorTest, CycleNamesTheThreadsThatMadeEachEdge) {
  SpinLock a("A"), b("B");
  std::thread([&] {
    ThisThread::SetName("ab-taker");
    TakeInOrder(a, b);
  }).join();
  TakeInOrder(b, a);
  const auto cycles = Cycles();
  ASSERT_EQ(cycles.size(), 1u);
  const std::string text = cycles[0].ToString();
  EXPECT_NE(text.find("ab-taker"), std::string::npos) << text;
  EXPECT_NE(text.find("main"), std::string::npos) << text;
}

TEST_F(DeadlockDetectorTest, SameHeldLockThenDifferentLocksIsNotACycle) {
  SpinLock a("A"), b("B"), c("C");
  TakeInOrder(a, b);
  TakeInOrder(a, c);
  TakeInOrder(b, c);
  EXPECT_TRUE(Cycles().empty());
}

// Re-entry is beyond what clang's static analysis models.
void ReenterWhileHoldingAnother(RwLock& a, SpinLock& b) KEEL_NO_THREAD_SAFETY_ANALYSIS {
  LockGuard outer(a);
  LockGuard inner_b(b);
  LockGuard reenter(a);  // A held, B held, A again: re-entry, not B -> A
  ReadGuard read(a);
}

TEST_F(DeadlockDetectorTest, RecursiveWriteReentryIsNotACycle) {
  RwLock a("A");
  SpinLock b("B");
  ReenterWhileHoldingAnother(a, b);
  EXPECT_TRUE(Cycles().empty());
}

TEST_F(DeadlockDetectorTest, TryLockRecordsNoEdge) {
  SpinLock a("A"), b("B");
  {
    LockGuard ga(a);
    const bool got = b.TryLock();
    EXPECT_TRUE(got);
    if (got) b.Unlock();
  }
  TakeInOrder(b, a);  // would close A -> B if TryLock had made that edge
  EXPECT_TRUE(Cycles().empty());
}

TEST_F(DeadlockDetectorTest, MixedLockKindsShareOneGraph) {
  Mutex db("db");
  SpinLock cache("cache");
  RwLock index("index");
  TakeInOrder(db, cache);
  TakeInOrder(cache, index);
  TakeInOrder(index, db);
  const auto cycles = Cycles();
  ASSERT_EQ(cycles.size(), 1u);
  EXPECT_EQ(LockNames(cycles[0]), (std::vector<std::string>{"index", "db", "cache"}));
}

TEST_F(DeadlockDetectorTest, ReportsEachCycleOnce) {
  SpinLock a("A"), b("B");
  TakeInOrder(a, b);
  TakeInOrder(b, a);
  TakeInOrder(b, a);
  EXPECT_EQ(Cycles().size(), 1u);
}

TEST_F(DeadlockDetectorTest, CountsReportedCycles) {
  const uint64_t before = DeadlockDetector::CyclesReported();
  SpinLock a("A"), b("B");
  TakeInOrder(a, b);
  TakeInOrder(b, a);
  EXPECT_EQ(DeadlockDetector::CyclesReported(), before + 1);
}

TEST_F(DeadlockDetectorTest, DestroyedLockLeavesTheGraph) {
  SpinLock a("A");
  {
    SpinLock b("B");
    TakeInOrder(a, b);
  }
  SpinLock b2("B2");
  TakeInOrder(b2, a);
  EXPECT_TRUE(Cycles().empty());
}

TEST_F(DeadlockDetectorTest, DisabledDetectorRecordsNothing) {
  DeadlockDetector::SetEnabled(false);
  SpinLock a("A"), b("B");
  TakeInOrder(a, b);
  DeadlockDetector::SetEnabled(true);
  TakeInOrder(b, a);
  EXPECT_TRUE(Cycles().empty());
}

TEST_F(DeadlockDetectorTest, ReaderLocksTakePartInTheOrder) {
  RwLock a("table"), b("config");
  {
    ReadGuard ra(a);
    ReadGuard rb(b);
  }
  {
    LockGuard wb(b);
    ReadGuard ra(a);
  }
  const auto cycles = Cycles();
  ASSERT_EQ(cycles.size(), 1u);
  const auto names = LockNames(cycles[0]);
  EXPECT_EQ(names.size(), 2u);
}

void TakeInvertedPairs() {
  DeadlockDetector::SetEnabled(true);
  DeadlockDetector::SetAction(DeadlockDetector::Action::kAbort);
  SpinLock a("alpha"), b("beta");
  {
    LockGuard ga(a);
    LockGuard gb(b);
  }
  {
    LockGuard gb(b);
    LockGuard ga(a);
  }
}

TEST(DeadlockDetectorDeathTest, AbortsOnCycleByDefault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(TakeInvertedPairs(), "lock-order cycle: beta -> alpha .*-> beta");
}

// Locks taken after this thread's detector state is gone (thread_local
// destructors, static destructors at exit) must not touch freed memory. These
// fail under ASan as a heap-use-after-free without the guard.
struct LocksInDestructor {
  SpinLock* lock;
  ~LocksInDestructor() {
    LockGuard guard(*lock);
  }
};

TEST(DeadlockDetectorTeardownTest, LockInThreadLocalDestructorAfterDetectorState) {
  const bool was_enabled = DeadlockDetector::Enabled();
  DeadlockDetector::SetEnabled(true);
  SpinLock lock("teardown-tls");
  std::thread t([&] {
    // Constructed before the detector's state, so destroyed after it.
    thread_local LocksInDestructor late{nullptr};
    late.lock = &lock;
    LockGuard guard(lock);  // creates the detector's per-thread state
  });
  t.join();
  {
    LockGuard guard(lock);  // still usable and tracked on this thread
  }
  DeadlockDetector::SetEnabled(was_enabled);
}

TEST(DeadlockDetectorDeathTest, LockInStaticDestructorAtExit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        DeadlockDetector::SetEnabled(true);
        static SpinLock lock("teardown-static");
        static LocksInDestructor at_exit{&lock};
        { LockGuard guard(lock); }
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace keel::core
