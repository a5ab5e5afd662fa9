#include "keel/job/job_queue.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/internal/backoff.h"
#include "keel/job/internal/sanitizers.h"
#include "keel/job/internal/test_util.h"
#include "keel/job/scheduler.h"

namespace keel::job {
namespace {

using testing::WaitFor;

constexpr int kProducers = 4;
constexpr int kActors = 16;
constexpr int kPostsPerProducer = KEEL_JOB_UNDER_TSAN ? 20'000 : 200'000;

// Checks, from inside its own jobs, that no two of them overlap and that each
// producer's jobs arrive in the order posted.
class CheckedActor : public JobQueue {
 public:
  using JobQueue::JobQueue;
  void Run(int producer, int seq) {
    if (in_flight_.fetch_add(1, std::memory_order_acq_rel) != 0) overlaps.fetch_add(1);
    if (producer < kProducers && seq <= last_[static_cast<size_t>(producer)]) reorders.fetch_add(1);
    last_[static_cast<size_t>(producer)] = seq;
    ++ran;
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  }
  std::atomic<int> overlaps{0};
  std::atomic<int> reorders{0};
  int ran = 0;  // actor-only

 private:
  std::atomic<int> in_flight_{0};
  std::array<int, kProducers + 1> last_{-1, -1, -1, -1, -1};
};

// Two "logic" workers, as every test here runs.
SchedulerOptions TwoLogicWorkers() {
  SchedulerOptions options;
  options.groups = {{.name = "logic", .threads = 2, .cpus = {}}};
  return options;
}

// `n` checked actors on the "logic" group, named prefix-0, prefix-1, ...
std::vector<std::shared_ptr<CheckedActor>> MakeActors(Scheduler& scheduler, int n,
                                                      const std::string& prefix) {
  std::vector<std::shared_ptr<CheckedActor>> actors;
  for (int i = 0; i < n; ++i) {
    actors.push_back(std::make_shared<CheckedActor>(scheduler.Group("logic"),
                                                    prefix + "-" + std::to_string(i)));
  }
  return actors;
}

TEST(JobQueueStress, JobsOfOneQueueNeverOverlapAndKeepProducerOrder) {
  Scheduler scheduler(TwoLogicWorkers());
  auto actors = MakeActors(scheduler, kActors, "actor");
  std::atomic<int> forwarded{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPostsPerProducer; ++i) {
        auto& actor = actors[static_cast<size_t>((i * 7 + p) % kActors)];
        actor->Post([a = actor.get(), p, i, &actors, &forwarded] {
          a->Run(p, i);
          // Actor-to-actor posts from workers exercise the local slot.
          if (i % 64 == 0) {
            auto& next = actors[static_cast<size_t>(i / 64 % kActors)];
            next->Post([n = next.get(), &forwarded] {
              n->Run(kProducers, 0x7fffffff);  // ordering of these is not checked
              forwarded.fetch_add(1);
            });
          }
        });
      }
    });
  }
  for (auto& t : producers) t.join();
  const uint64_t expected = static_cast<uint64_t>(kProducers) * kPostsPerProducer;
  ASSERT_TRUE(WaitFor(
      [&] {
        uint64_t run = 0;
        for (auto& a : actors) run += a->Stats().jobs_run;
        return run == expected + static_cast<uint64_t>(forwarded.load()) &&
               forwarded.load() == kProducers * ((kPostsPerProducer + 63) / 64);
      },
      std::chrono::seconds(60)));
  const ShutdownSummary summary = scheduler.Shutdown();
  EXPECT_EQ(summary.Total(summary.cancelled), 0u);
  for (auto& a : actors) {
    EXPECT_EQ(a->overlaps.load(), 0) << a->name();
    EXPECT_EQ(a->reorders.load(), 0) << a->name();
  }
}

// The race the lock-free mailbox must close: a post lands while the worker
// finds the mailbox empty and parks it. Posts are spaced (a few hundred
// pauses, varied) so each actor goes idle between most of them, and three
// producers aim at the same few actors, so pushes hit every point of the
// worker's pop-empty / park sequence. Some jobs post on to another actor from
// the worker (the next slot, and the keep-alive the worker still holds).
// Every job must run exactly once, never overlapping another of its actor,
// in each producer's order; every actor must end parked with depth 0, and
// a post after that must still be scheduled.
TEST(JobQueueStress, PostsRacingTheParkOfAnIdleActorAreNeverLostOrRunTwice) {
  static constexpr int kRaceProducers = 3;
  static constexpr int kRaceActors = 3;
  static constexpr int kPosts = KEEL_JOB_UNDER_TSAN ? 5'000 : 60'000;
  Scheduler scheduler(TwoLogicWorkers());
  auto actors = MakeActors(scheduler, kRaceActors, "idle");
  std::atomic<int> forwarded{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kRaceProducers; ++p) {
    producers.emplace_back([&, p] {
      uint32_t rng = 0x9e3779b9u * static_cast<uint32_t>(p + 1);
      for (int i = 0; i < kPosts; ++i) {
        auto& actor = actors[static_cast<size_t>((i + p) % kRaceActors)];
        ASSERT_TRUE(actor->Post([a = actor.get(), p, i, &actors, &forwarded] {
          a->Run(p, i);
          if (i % 16 == 0) {
            auto& next = actors[static_cast<size_t>((i / 16 + 1) % kRaceActors)];
            next->Post([n = next.get(), &forwarded] {
              n->Run(kProducers, 0x7fffffff);
              forwarded.fetch_add(1);
            });
          }
        }));
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        for (uint32_t spin = rng % 96; spin != 0; --spin) core::internal::CpuRelax();
      }
    });
  }
  for (auto& t : producers) t.join();
  const int expected_forwards = kRaceProducers * ((kPosts + 15) / 16);
  const auto all_ran = [&] {
    uint64_t run = 0;
    for (auto& a : actors) run += a->Stats().jobs_run;
    return forwarded.load() == expected_forwards &&
           run == static_cast<uint64_t>(kRaceProducers) * kPosts +
                      static_cast<uint64_t>(expected_forwards);
  };
  ASSERT_TRUE(WaitFor(all_ran, std::chrono::seconds(60)));
  for (auto& a : actors) {
    EXPECT_EQ(a->overlaps.load(), 0) << a->name();
    EXPECT_EQ(a->reorders.load(), 0) << a->name();
    EXPECT_EQ(a->Depth(), 0u) << a->name();
  }
  // Every actor parked cleanly: a new post is scheduled and runs.
  std::atomic<int> after{0};
  for (auto& a : actors) a->Post([&after] { after.fetch_add(1); });
  ASSERT_TRUE(WaitFor([&] { return after.load() == kRaceActors; }));
  const ShutdownSummary summary = scheduler.Shutdown();
  EXPECT_EQ(summary.Total(summary.cancelled), 0u);
  // The workers are joined: their actor-only counts are visible here.
  int total_ran = 0;
  for (auto& a : actors) total_ran += a->ran;
  EXPECT_EQ(total_ran, kRaceProducers * kPosts + expected_forwards);
}

// Clear() takes the mailbox's consumer role from other threads while workers
// run slices and producers post, and from inside the actor's own jobs. Jobs
// run + jobs cleared must equal jobs posted; none may overlap or run out of
// its producer's order (cleared ones leave gaps, which the check allows).
TEST(JobQueueStress, ClearRacingSlicesAndPostsLosesNothing) {
  static constexpr int kClearProducers = 2;
  static constexpr int kClearActors = 4;
  static constexpr int kPosts = KEEL_JOB_UNDER_TSAN ? 10'000 : 100'000;
  Scheduler scheduler(TwoLogicWorkers());
  auto actors = MakeActors(scheduler, kClearActors, "clear");
  std::atomic<uint64_t> cleared{0};
  std::atomic<bool> stop{false};
  std::thread clearer([&] {
    for (int round = 0; !stop.load(); ++round) {
      cleared.fetch_add(actors[static_cast<size_t>(round % kClearActors)]->Clear());
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  std::vector<std::thread> producers;
  for (int p = 0; p < kClearProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPosts; ++i) {
        auto& actor = actors[static_cast<size_t>((i + p) % kClearActors)];
        actor->Post([a = actor.get(), p, i, &cleared] {
          a->Run(p, i);
          if (i % 1000 == 0) cleared.fetch_add(a->Clear());  // from its own slice
        });
      }
    });
  }
  for (auto& t : producers) t.join();
  stop.store(true);
  clearer.join();
  const uint64_t posted = static_cast<uint64_t>(kClearProducers) * kPosts;
  ASSERT_TRUE(WaitFor(
      [&] {
        // Clear() returns what it dropped itself; a deferred clear (the role
        // held by a running slice) is dropped by that worker: Stats().dropped
        // counts both.
        uint64_t run = 0;
        uint64_t dropped = 0;
        for (auto& a : actors) {
          const JobQueueStats s = a->Stats();
          run += s.jobs_run;
          dropped += s.dropped;
        }
        return run + dropped == posted && cleared.load() <= dropped;
      },
      std::chrono::seconds(60)));
  for (auto& a : actors) {
    EXPECT_EQ(a->overlaps.load(), 0) << a->name();
    EXPECT_EQ(a->reorders.load(), 0) << a->name();
    EXPECT_EQ(a->Depth(), 0u) << a->name();
  }
  EXPECT_GT(cleared.load(), 0u);
  const ShutdownSummary summary = scheduler.Shutdown();
  EXPECT_EQ(summary.Total(summary.cancelled), 0u);
}

}  // namespace
}  // namespace keel::job
