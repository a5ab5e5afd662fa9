#include "keel/job/job_timer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "keel/job/internal/test_util.h"
#include "keel/job/scheduler.h"

namespace keel::job {
namespace {

using namespace std::chrono_literals;
using testing::TestActor;
using testing::WaitFor;

class JobTimerTest : public ::testing::Test {
 protected:
  JobTimerTest() : scheduler_(Options()), timer_(clock_) {
    actor_ = std::make_shared<TestActor>(scheduler_.Group("logic"), "timed");
  }
  static SchedulerOptions Options() {
    SchedulerOptions options;
    options.groups = {{.name = "logic", .threads = 1, .cpus = {}}};
    return options;
  }
  // Waits until every job posted to the actor so far has run.
  void Settle() {
    std::atomic<bool> done{false};
    actor_->Post([&done] { done.store(true); });
    ASSERT_TRUE(WaitFor([&] { return done.load(); }));
  }

  ManualClock clock_;
  Scheduler scheduler_;
  JobTimer timer_;
  std::shared_ptr<TestActor> actor_;
  std::vector<int> fired_;  // touched only by the actor's jobs
};

TEST_F(JobTimerTest, FiresInDueOrderWhenTheClockReachesThem) {
  timer_.After(actor_, 30ms, [this] { fired_.push_back(30); });
  timer_.After(actor_, 10ms, [this] { fired_.push_back(10); });
  timer_.After(actor_, 20ms, [this] { fired_.push_back(20); });
  timer_.After(actor_, 20ms, [this] { fired_.push_back(21); });  // same due: creation order
  EXPECT_EQ(timer_.RunDue(), 0u);
  clock_.Advance(9ms);
  EXPECT_EQ(timer_.RunDue(), 0u);
  clock_.Advance(16ms);
  EXPECT_EQ(timer_.RunDue(), 3u);
  Settle();
  EXPECT_EQ(fired_, (std::vector<int>{10, 20, 21}));
  clock_.Advance(5ms);
  EXPECT_EQ(timer_.RunDue(), 1u);
  Settle();
  EXPECT_EQ(fired_, (std::vector<int>{10, 20, 21, 30}));
  EXPECT_EQ(timer_.Pending(), 0u);
}

TEST_F(JobTimerTest, CancelledTimerNeverFires) {
  TimerHandle keep = timer_.After(actor_, 10ms, [this] { fired_.push_back(1); });
  TimerHandle drop = timer_.After(actor_, 10ms, [this] { fired_.push_back(2); });
  EXPECT_TRUE(drop.Active());
  EXPECT_TRUE(drop.Cancel());
  EXPECT_FALSE(drop.Cancel());
  EXPECT_FALSE(drop.Active());
  EXPECT_EQ(timer_.Pending(), 1u);
  clock_.Advance(10ms);
  EXPECT_EQ(timer_.RunDue(), 1u);
  Settle();
  EXPECT_EQ(fired_, (std::vector<int>{1}));
  EXPECT_FALSE(keep.Cancel());  // already fired
}

TEST_F(JobTimerTest, PeriodicTimerRepeatsSkipsMissedPeriodsAndCancels) {
  TimerHandle tick = timer_.Every(actor_, 10ms, [this] { fired_.push_back(1); });
  clock_.Advance(10ms);
  EXPECT_EQ(timer_.RunDue(), 1u);
  clock_.Advance(35ms);  // three periods late: one run, not three
  EXPECT_EQ(timer_.RunDue(), 1u);
  clock_.Advance(5ms);  // due at 50 ms
  EXPECT_EQ(timer_.RunDue(), 1u);
  Settle();
  EXPECT_TRUE(tick.Cancel());
  clock_.Advance(100ms);
  EXPECT_EQ(timer_.RunDue(), 0u);
  Settle();
  EXPECT_EQ(fired_.size(), 3u);
}

TEST_F(JobTimerTest, NeverFiresOnADestroyedActor) {
  std::atomic<int> ran{0};
  auto doomed = std::make_shared<TestActor>(scheduler_.Group("logic"), "doomed");
  timer_.After(doomed, 10ms, [&ran] { ran.fetch_add(1); });
  timer_.Every(doomed, 10ms, [&ran] { ran.fetch_add(1); });
  doomed.reset();  // idle, so destroyed now
  clock_.Advance(50ms);
  EXPECT_EQ(timer_.RunDue(), 0u);
  EXPECT_EQ(timer_.Expired(), 2u);
  Settle();
  EXPECT_EQ(ran.load(), 0);
}

TEST_F(JobTimerTest, HundredThousandPendingTimersFireInOrder) {
  constexpr int kTimers = 100'000;
  std::vector<TimerHandle> handles;
  handles.reserve(kTimers);
  int64_t last = -1;
  bool ordered = true;
  int count = 0;
  for (int i = 0; i < kTimers; ++i) {
    const auto delay = std::chrono::microseconds((i * 7919) % kTimers);
    const int64_t key = delay.count();
    handles.push_back(timer_.After(actor_, delay, [&, key] {
      ordered = ordered && key >= last;
      last = key;
      ++count;
    }));
  }
  for (int i = 0; i < kTimers; i += 2) handles[static_cast<size_t>(i)].Cancel();
  EXPECT_EQ(timer_.Pending(), static_cast<size_t>(kTimers / 2));
  clock_.Advance(std::chrono::microseconds(kTimers));
  EXPECT_EQ(timer_.RunDue(), static_cast<size_t>(kTimers / 2));
  Settle();
  EXPECT_EQ(count, kTimers / 2);
  EXPECT_TRUE(ordered);
}

TEST_F(JobTimerTest, CancelReleasesTheJobAtOnce) {
  auto payload = std::make_shared<int>(7);
  TimerHandle h = timer_.After(actor_, 1h, [payload] { (void)*payload; });
  EXPECT_EQ(payload.use_count(), 2);
  EXPECT_TRUE(h.Cancel());
  // Unlinked from the wheel and, with the handle the last owner, still held
  // only by the handle; dropping it frees the job and its captures.
  EXPECT_EQ(timer_.Pending(), 0u);
  h = TimerHandle();
  EXPECT_EQ(payload.use_count(), 1);
  EXPECT_FALSE(h.Cancel());
}

TEST(JobTimer, AHandleMayOutliveItsTimer) {
  SchedulerOptions options;
  options.groups = {{.name = "logic", .threads = 1, .cpus = {}}};
  Scheduler scheduler(options);
  auto actor = std::make_shared<TestActor>(scheduler.Group("logic"), "a");
  ManualClock clock;
  auto payload = std::make_shared<int>(7);
  TimerHandle one_shot;
  TimerHandle periodic;
  {
    JobTimer timer(clock);
    one_shot = timer.After(actor, 10ms, [payload] { (void)*payload; });
    periodic = timer.Every(actor, 10ms, [payload] { (void)*payload; });
    EXPECT_TRUE(one_shot.Active());
  }
  // The timer is gone: its timers never fire and count as no longer pending.
  EXPECT_FALSE(one_shot.Active());
  EXPECT_FALSE(one_shot.Cancel());
  EXPECT_FALSE(periodic.Cancel());
  one_shot = TimerHandle();
  periodic = TimerHandle();
  EXPECT_EQ(payload.use_count(), 1);
}

// Adds, cancels and firing from several threads at once (run under TSan):
// every timer either fires exactly once or is cancelled, never both.
TEST_F(JobTimerTest, ConcurrentAddCancelAndFire) {
  constexpr int kThreads = 3;
  constexpr int kPerThread = 2'000;
  std::vector<std::atomic<int>> runs(kThreads * kPerThread);
  std::vector<std::atomic<bool>> cancelled(kThreads * kPerThread);
  std::atomic<bool> adding{true};
  std::thread firer([&] {
    while (adding.load()) {
      clock_.Advance(50us);
      timer_.RunDue();
    }
  });
  std::vector<std::thread> adders;
  for (int t = 0; t < kThreads; ++t) {
    adders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int id = t * kPerThread + i;
        const auto delay = std::chrono::microseconds((id * 7919) % 500);
        TimerHandle h =
            timer_.After(actor_, delay, [&runs, id] { runs[static_cast<size_t>(id)]++; });
        if (i % 3 == 0 && h.Cancel()) cancelled[static_cast<size_t>(id)] = true;
      }
    });
  }
  for (std::thread& a : adders) a.join();
  adding.store(false);
  firer.join();
  clock_.Advance(1s);
  timer_.RunDue();
  Settle();
  EXPECT_EQ(timer_.Pending(), 0u);
  int fired = 0;
  int dropped = 0;
  for (std::size_t id = 0; id < runs.size(); ++id) {
    const int r = runs[id].load();
    if (cancelled[id].load()) {
      EXPECT_EQ(r, 0) << "timer " << id << " ran after a successful Cancel";
      ++dropped;
    } else {
      EXPECT_EQ(r, 1) << "timer " << id;
      ++fired;
    }
  }
  EXPECT_EQ(fired + dropped, kThreads * kPerThread);
  EXPECT_GT(dropped, 0);
}

TEST(JobTimer, ThreadFiresOnTheSteadyClock) {
  SchedulerOptions options;
  options.groups = {{.name = "logic", .threads = 1, .cpus = {}}};
  Scheduler scheduler(options);
  auto actor = std::make_shared<TestActor>(scheduler.Group("logic"), "real");
  JobTimer timer(SteadyClock::Instance());
  timer.Start();
  std::atomic<bool> fired{false};
  timer.After(actor, 5ms, [&fired] { fired.store(true); });
  EXPECT_TRUE(WaitFor([&] { return fired.load(); }, 5s));
  timer.Stop();
}

}  // namespace
}  // namespace keel::job
