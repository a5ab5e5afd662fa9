#include "keel/job/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/pool_sizing.h"
#include "keel/core/thread_context.h"
#include "keel/job/internal/sanitizers.h"
#include "keel/job/internal/test_util.h"
#include "keel/job/job_queue.h"

namespace keel::job {
namespace {

using namespace std::chrono_literals;
using testing::TestActor;
using testing::WaitFor;

SchedulerOptions OneGroup(uint32_t threads) {
  SchedulerOptions options;
  options.groups = {{.name = "logic", .threads = threads, .cpus = {}}};
  return options;
}

// One worker thread, so the flood and the probe compete for the same core.
// Fairness is counted in flood jobs, not wall time (a loaded CI machine can
// stall any thread): while a probe waits, the flood runs at most the rest of
// its slice and maybe one more (slice_jobs each), never the whole flood.
TEST(Scheduler, FloodedActorDoesNotStarveAnother) {
  constexpr int kFlood = KEEL_JOB_UNDER_TSAN ? 50'000 : 1'000'000;
  SchedulerOptions options = OneGroup(1);
  const uint64_t bound = 2 * uint64_t{options.slice_jobs};
  Scheduler scheduler(options);
  auto flood = std::make_shared<TestActor>(scheduler.Group("logic"), "flood");
  auto probe = std::make_shared<TestActor>(scheduler.Group("logic"), "probe");
  std::atomic<bool> release{false};
  flood->Post([&release] { WaitFor([&] { return release.load(); }); });
  std::atomic<uint64_t> flood_ran{0};
  for (int i = 0; i < kFlood; ++i) {
    flood->Post([&flood_ran] {
      flood_ran.store(flood_ran.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    });
  }
  release.store(true);
  int probes = 0;
  uint64_t worst_jobs = 0;
  std::chrono::nanoseconds worst{0};
  uint64_t flood_done_at_first_probe = 0;
  for (; probes < 20; ++probes) {
    std::atomic<bool> ran{false};
    std::atomic<uint64_t> at_run{0};
    const auto posted = std::chrono::steady_clock::now();
    probe->Post([&] {
      at_run.store(flood_ran.load(std::memory_order_relaxed));
      ran.store(true);
    });
    // Read after the post returned: if this thread is preempted around the
    // post the count only shrinks, while a starved probe still shows the
    // rest of the flood.
    const uint64_t at_post = flood_ran.load();
    ASSERT_TRUE(WaitFor([&] { return ran.load(); }, 10s));
    worst = std::max(worst, std::chrono::steady_clock::now() - posted);
    worst_jobs = std::max(worst_jobs, at_run.load() - std::min(at_run.load(), at_post));
    if (probes == 0) flood_done_at_first_probe = flood_ran.load();
  }
  EXPECT_LE(worst_jobs, bound) << "flood jobs run while a probe waited (worst probe latency "
                               << std::chrono::duration_cast<std::chrono::microseconds>(worst).count()
                               << " us)";
  // The first probe did not wait for the whole flood.
  EXPECT_LT(flood_done_at_first_probe, static_cast<uint64_t>(kFlood));
  ASSERT_TRUE(WaitFor([&] { return flood_ran.load() == static_cast<uint64_t>(kFlood); }, 20s));
  EXPECT_GT(flood->Stats().slices, 1u);
}

TEST(Scheduler, ShutdownDrainsPendingJobsAndReportsThem) {
  Scheduler scheduler(OneGroup(1));
  auto& group = scheduler.Group("logic");
  auto blocker = std::make_shared<TestActor>(group, "blocker");
  auto a = std::make_shared<TestActor>(group, "a");
  auto b = std::make_shared<TestActor>(group, "b");
  auto probe = std::make_shared<TestActor>(group, "probe");
  std::atomic<bool> release{false};
  blocker->Post([&release] { WaitFor([&] { return release.load(); }); });
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) a->Post([&ran] { ran.fetch_add(1); });
  for (int i = 0; i < 50; ++i) b->Post([&ran] { ran.fetch_add(1); });
  // Release the blocker once shutdown has begun (a post is refused).
  std::thread releaser([&] {
    while (probe->Post([] {})) std::this_thread::sleep_for(1ms);
    release.store(true);
  });
  const ShutdownSummary summary = scheduler.Shutdown(StopMode::kDrain);
  releaser.join();
  EXPECT_EQ(ran.load(), 150);
  EXPECT_EQ(summary.drained.at("a"), 100u);
  EXPECT_EQ(summary.drained.at("b"), 50u);
  EXPECT_GE(summary.rejected.at("probe"), 1u);
  EXPECT_EQ(summary.Total(summary.cancelled), 0u);
  EXPECT_FALSE(a->Post([] {}));
}

TEST(Scheduler, ShutdownCancelDropsPendingJobsAndReportsThem) {
  Scheduler scheduler(OneGroup(1));
  auto& group = scheduler.Group("logic");
  auto blocker = std::make_shared<TestActor>(group, "blocker");
  auto a = std::make_shared<TestActor>(group, "a");
  auto b = std::make_shared<TestActor>(group, "b");
  auto probe = std::make_shared<TestActor>(group, "probe");
  std::atomic<bool> release{false};
  blocker->Post([&release] { WaitFor([&] { return release.load(); }); });
  std::atomic<int> ran{0};
  auto token = std::make_shared<int>(0);
  for (int i = 0; i < 100; ++i) a->Post([&ran, token] { ran.fetch_add(1); });
  for (int i = 0; i < 50; ++i) b->Post([&ran, token] { ran.fetch_add(1); });
  std::thread releaser([&] {
    while (probe->Post([] {})) std::this_thread::sleep_for(1ms);
    release.store(true);
  });
  const ShutdownSummary summary = scheduler.Shutdown(StopMode::kCancel);
  releaser.join();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(summary.cancelled.at("a"), 100u);
  EXPECT_EQ(summary.cancelled.at("b"), 50u);
  EXPECT_EQ(token.use_count(), 1);  // cancelled jobs' captures were destroyed
  EXPECT_EQ(a->Depth(), 0u);
}

TEST(Scheduler, WatchdogReportsAStalledJob) {
  SchedulerOptions options = OneGroup(1);
  options.stall_threshold = 20ms;
  Scheduler scheduler(options);
  auto actor = std::make_shared<TestActor>(scheduler.Group("logic"), "stuck-room");
  std::atomic<bool> release{false};
  actor->Post([&release] { WaitFor([&] { return release.load(); }); }, "slow-query");
  const bool reported = WaitFor([&] { return scheduler.Stalls() >= 1; }, 5s);
  release.store(true);
  EXPECT_TRUE(reported);
  // One report per stalled job, not one per watchdog tick.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(scheduler.Stalls(), 1u);
}

TEST(Scheduler, ActorsRunOnTheirGroupsThreads) {
  SchedulerOptions options;
  options.groups = {{.name = "lobby", .threads = 1, .cpus = {}},
                    {.name = "dungeon", .threads = 2, .cpus = {}}};
  Scheduler scheduler(options);
  auto lobby = std::make_shared<TestActor>(scheduler.Group("lobby"), "lobby");
  auto dungeon = std::make_shared<TestActor>(scheduler.Group("dungeon"), "dungeon-1");
  std::string lobby_thread, dungeon_thread;
  std::atomic<int> done{0};
  lobby->Post([&] {
    lobby_thread = std::string(core::ThisThread::Name());
    done.fetch_add(1);
  });
  dungeon->Post([&] {
    dungeon_thread = std::string(core::ThisThread::Name());
    done.fetch_add(1);
  });
  ASSERT_TRUE(WaitFor([&] { return done.load() == 2; }));
  EXPECT_EQ(lobby_thread.rfind("lobby-", 0), 0u) << lobby_thread;
  EXPECT_EQ(dungeon_thread.rfind("dungeon-", 0), 0u) << dungeon_thread;
  EXPECT_THROW(scheduler.Group("nope"), std::out_of_range);
}

TEST(Scheduler, BlockingGroupIsSizedForItsWaiting) {
  const WorkerGroupOptions db = BlockingGroup("db", 9.0);
  EXPECT_EQ(db.name, "db");
  EXPECT_EQ(db.threads, core::ThreadsForPool({.wait_per_compute = 9.0}));
  EXPECT_GE(db.threads, core::AvailableCores());
}

TEST(Scheduler, CountsJobsThatOverrunTheSlice) {
  SchedulerOptions options = OneGroup(1);
  // A slice long enough that only the slow job overruns it: any gap between
  // clock readings over the slice counts, a preemption included, and 1 ms
  // gaps happen on a loaded CI machine.
  options.slice_time = 20ms;
  Scheduler scheduler(options);
  auto actor = std::make_shared<TestActor>(scheduler.Group("logic"), "slow");
  std::atomic<bool> done{false};
  actor->Post([] { std::this_thread::sleep_for(60ms); });
  actor->Post([&done] { done.store(true); });
  ASSERT_TRUE(WaitFor([&] { return done.load(); }));
  ASSERT_TRUE(WaitFor([&] { return actor->Stats().jobs_run == 2; }));
  EXPECT_EQ(actor->Stats().overruns, 1u);
  // The time budget ended the first slice after the slow job.
  EXPECT_EQ(actor->Stats().slices, 2u);
}

// Idle workers spin before they sleep, and a post skips the futex wake while
// one spins. Posts land at every point of that spin-then-sleep path (the
// pauses between rounds vary); a post stranded in the global queue with every
// worker asleep would time the wait out.
TEST(Scheduler, IdleSpinNeverStrandsAPost) {
  constexpr int kRounds = KEEL_JOB_UNDER_TSAN ? 100 : 600;
  for (const std::chrono::nanoseconds spin : {0ns, std::chrono::nanoseconds(20us),
                                              std::chrono::nanoseconds(3ms)}) {
    SchedulerOptions options = OneGroup(2);
    options.idle_spin = spin;
    Scheduler scheduler(options);
    std::vector<std::shared_ptr<TestActor>> actors;
    for (int i = 0; i < 4; ++i) {
      actors.push_back(std::make_shared<TestActor>(scheduler.Group("logic"), "spin"));
    }
    std::atomic<int> ran{0};
    int posted = 0;
    for (int round = 0; round < kRounds; ++round) {
      const int burst = round % 3 + 1;  // 1..3 actors runnable at once
      for (int b = 0; b < burst; ++b) {
        actors[static_cast<std::size_t>((round + b) % 4)]->Post(
            [&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
        ++posted;
      }
      ASSERT_TRUE(WaitFor([&] { return ran.load() == posted; }, 5s))
          << "spin " << spin.count() << " ns, round " << round << ": " << ran.load() << " of "
          << posted << " ran";
      std::this_thread::sleep_for(std::chrono::microseconds(round % 5 * 15));
    }
    const ShutdownSummary summary = scheduler.Shutdown(StopMode::kCancel);
    EXPECT_EQ(summary.Total(summary.cancelled), 0u);
  }
}

// A post that skipped its wake because a worker was spinning must not leave
// a second runnable actor waiting while another worker sleeps: three jobs
// that each wait for all three to start need three workers at once.
TEST(Scheduler, SpinningWorkerDoesNotHoldBackSleepingOnes) {
  constexpr int kRounds = KEEL_JOB_UNDER_TSAN ? 5 : 20;
  SchedulerOptions options = OneGroup(3);
  options.idle_spin = 5ms;
  Scheduler scheduler(options);
  std::vector<std::shared_ptr<TestActor>> actors;
  for (int i = 0; i < 3; ++i) {
    actors.push_back(std::make_shared<TestActor>(scheduler.Group("logic"), "meet"));
  }
  for (int round = 0; round < kRounds; ++round) {
    std::this_thread::sleep_for(20ms);  // every worker asleep
    // One worker runs this and then spins while the three posts arrive.
    std::atomic<bool> warm{false};
    actors[0]->Post([&warm] { warm = true; });
    ASSERT_TRUE(WaitFor([&] { return warm.load(); }, 5s));
    std::atomic<int> started{0};
    std::atomic<int> met{0};
    std::atomic<int> done{0};
    for (auto& actor : actors) {
      actor->Post([&] {
        started.fetch_add(1);
        if (WaitFor([&] { return started.load() == 3; }, 1000ms)) met.fetch_add(1);
        done.fetch_add(1);
      });
    }
    ASSERT_TRUE(WaitFor([&] { return done.load() == 3; }, 10s));
    ASSERT_EQ(met.load(), 3) << "round " << round << ": a runnable actor waited behind a sleeping worker";
  }
}

}  // namespace
}  // namespace keel::job
