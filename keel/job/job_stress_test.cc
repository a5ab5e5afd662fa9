#include "keel/job/job_queue.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

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

TEST(JobQueueStress, JobsOfOneQueueNeverOverlapAndKeepProducerOrder) {
  SchedulerOptions options;
  options.groups = {{.name = "logic", .threads = 2, .cpus = {}}};
  Scheduler scheduler(options);
  std::vector<std::shared_ptr<CheckedActor>> actors;
  for (int i = 0; i < kActors; ++i) {
    actors.push_back(
        std::make_shared<CheckedActor>(scheduler.Group("logic"), "actor-" + std::to_string(i)));
  }
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

}  // namespace
}  // namespace keel::job
