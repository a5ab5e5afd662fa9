#include "keel/job/job_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "keel/job/ask.h"
#include "keel/job/internal/test_util.h"
#include "keel/job/scheduler.h"

namespace keel::job {
namespace {

using testing::TestActor;
using testing::WaitFor;

SchedulerOptions OneGroup(uint32_t threads) {
  SchedulerOptions options;
  options.groups = {{.name = "logic", .threads = threads, .cpus = {}}};
  return options;
}

TEST(JobQueue, RunsJobsInPushOrder) {
  Scheduler scheduler(OneGroup(2));
  auto actor = std::make_shared<TestActor>(scheduler.Group("logic"), "order");
  std::vector<int> seen;  // touched only by the actor's jobs
  std::atomic<bool> done{false};
  constexpr int kJobs = 10'000;
  for (int i = 0; i < kJobs; ++i) actor->Post([&seen, i] { seen.push_back(i); });
  actor->Post([&done] { done.store(true); });
  ASSERT_TRUE(WaitFor([&] { return done.load(); }));
  ASSERT_EQ(seen.size(), static_cast<size_t>(kJobs));
  for (int i = 0; i < kJobs; ++i) ASSERT_EQ(seen[static_cast<size_t>(i)], i);
  // jobs_run is counted per batch, after the batch ran: wait, then check exact.
  EXPECT_TRUE(WaitFor([&] { return actor->Stats().jobs_run >= static_cast<uint64_t>(kJobs + 1); }));
  EXPECT_EQ(actor->Stats().jobs_run, static_cast<uint64_t>(kJobs + 1));
}

TEST(JobQueue, MailboxCapRefusesAndCountsPostsBeyondIt) {
  Scheduler scheduler(OneGroup(1));
  auto actor = std::make_shared<TestActor>(scheduler.Group("logic"), "capped");
  actor->SetMailboxCap(3);
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  // The first job holds the only worker; it counts as pending until its
  // slice ends, so two more fit and the rest are refused.
  ASSERT_TRUE(actor->Post([&] {
    started.store(true);
    while (!release.load()) std::this_thread::yield();
    ran.fetch_add(1);
  }));
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(actor->Post([&] { ran.fetch_add(1); })) << i;
  EXPECT_FALSE(actor->Post([&] { ran.fetch_add(100); }));
  EXPECT_FALSE(actor->Post([&] { ran.fetch_add(100); }));
  EXPECT_EQ(actor->Stats().rejected_full, 2u);
  EXPECT_EQ(actor->Depth(), 3u);
  release.store(true);
  ASSERT_TRUE(WaitFor([&] { return ran.load() == 3 && actor->Depth() == 0; }));
  EXPECT_TRUE(actor->Post([&] { ran.fetch_add(1); }));  // room again once drained
  ASSERT_TRUE(WaitFor([&] { return ran.load() == 4; }));
  EXPECT_EQ(actor->Stats().rejected_full, 2u);
}

TEST(JobQueue, PostCallKeepsActorAliveUntilItRan) {
  Scheduler scheduler(OneGroup(1));
  std::atomic<bool> release{false};
  std::atomic<int> result{0};
  auto blocker = std::make_shared<TestActor>(scheduler.Group("logic"), "blocker");
  blocker->Post([&release] { WaitFor([&] { return release.load(); }); });
  std::weak_ptr<TestActor> weak;
  {
    auto actor = std::make_shared<TestActor>(scheduler.Group("logic"), "owned");
    weak = actor;
    actor->PostCall(&TestActor::Add, 41);
    actor->Post([raw = actor.get(), &result] { result.store(raw->value + 1); });
  }
  EXPECT_FALSE(weak.expired());  // pending jobs hold it
  release.store(true);
  ASSERT_TRUE(WaitFor([&] { return result.load() == 42; }));
  ASSERT_TRUE(WaitFor([&] { return weak.expired(); }));
}

TEST(JobQueue, ClearDropsPendingJobsAndBreaksCycles) {
  Scheduler scheduler(OneGroup(1));
  std::atomic<bool> release{false};
  auto blocker = std::make_shared<TestActor>(scheduler.Group("logic"), "blocker");
  blocker->Post([&release] { WaitFor([&] { return release.load(); }); });
  auto a = std::make_shared<TestActor>(scheduler.Group("logic"), "a");
  auto b = std::make_shared<TestActor>(scheduler.Group("logic"), "b");
  std::atomic<int> ran{0};
  a->Post([b, &ran] { ran.fetch_add(1); });  // a holds b
  b->Post([a, &ran] { ran.fetch_add(1); });  // b holds a
  std::weak_ptr<TestActor> wa = a, wb = b;
  EXPECT_EQ(a->Depth(), 1u);
  EXPECT_EQ(a->Clear(), 1u);
  EXPECT_EQ(b->Clear(), 1u);
  EXPECT_EQ(a->Depth(), 0u);
  a.reset();
  b.reset();
  release.store(true);
  ASSERT_TRUE(WaitFor([&] { return wa.expired() && wb.expired(); }));
  EXPECT_EQ(ran.load(), 0);
}

// Clear() never waits for a running slice: two actors whose jobs clear each
// other at the same moment, each while the other runs, both finish (with a
// Clear that waited for the other's slice to end this deadlocked), and the
// jobs pending at the cut are dropped, not run.
TEST(JobQueue, ActorsClearingEachOtherWhileRunningDoNotDeadlock) {
  Scheduler scheduler(OneGroup(2));
  auto a = std::make_shared<TestActor>(scheduler.Group("logic"), "a");
  auto b = std::make_shared<TestActor>(scheduler.Group("logic"), "b");
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  std::atomic<int> victims_ran{0};
  auto clear_other = [&](TestActor* other) {
    started.fetch_add(1);
    WaitFor([&] { return started.load() == 2; });  // both slices are running now
    other->Clear();
    finished.fetch_add(1);
  };
  a->Post([&, bp = b.get()] { clear_other(bp); });
  b->Post([&, ap = a.get()] { clear_other(ap); });
  ASSERT_TRUE(WaitFor([&] { return started.load() == 2; }));
  ASSERT_TRUE(WaitFor([&] { return finished.load() == 2; }, std::chrono::seconds(10)))
      << "Clear waited for the other actor's slice";
  a->Post([&] { victims_ran.fetch_add(100); });  // after the cut: runs
  b->Post([&] { victims_ran.fetch_add(100); });
  ASSERT_TRUE(WaitFor([&] { return victims_ran.load() == 200; }));
  // Depth counts a job out when its batch is counted, after it ran.
  EXPECT_TRUE(WaitFor([&] { return a->Depth() == 0 && b->Depth() == 0; }))
      << "depths " << a->Depth() << ", " << b->Depth();
}

// A Clear() from another thread while the actor runs a long job returns at
// once; the running worker drops what was pending at the cut before its next
// job and runs what was posted after.
TEST(JobQueue, ClearDuringARunningJobDropsOnlyWhatWasPendingAtTheCut) {
  Scheduler scheduler(OneGroup(1));
  auto a = std::make_shared<TestActor>(scheduler.Group("logic"), "a");
  std::atomic<bool> running{false};
  std::atomic<bool> release{false};
  std::atomic<int> before{0};
  std::atomic<int> after{0};
  a->Post([&] {
    running.store(true);
    WaitFor([&] { return release.load(); });
  });
  ASSERT_TRUE(WaitFor([&] { return running.load(); }));
  for (int i = 0; i < 10; ++i) a->Post([&] { before.fetch_add(1); });
  EXPECT_EQ(a->Clear(), 0u) << "the role is held: the clear is deferred, not waited for";
  for (int i = 0; i < 5; ++i) a->Post([&] { after.fetch_add(1); });
  release.store(true);
  ASSERT_TRUE(WaitFor([&] { return after.load() == 5; }));
  EXPECT_EQ(before.load(), 0);
  EXPECT_EQ(a->Stats().dropped, 10u);
  // Depth counts a job out when its batch is counted, after it ran.
  EXPECT_TRUE(WaitFor([&] { return a->Depth() == 0; })) << "depth " << a->Depth();
}

class Room : public TestActor {
 public:
  using TestActor::TestActor;
  int players = 3;
};

TEST(JobQueue, AskDeliversTheAnswerAsAJobOnTheCaller) {
  Scheduler scheduler(OneGroup(2));
  auto room = std::make_shared<Room>(scheduler.Group("logic"), "room");
  auto lobby = std::make_shared<TestActor>(scheduler.Group("logic"), "lobby");
  std::atomic<int> answer{0};
  ASSERT_TRUE(PostAsk(
      room, [](Room& r) { return r.players; }, lobby,
      [&answer](TestActor& l, int n) {
        l.value = n;
        answer.store(n);
      }));
  ASSERT_TRUE(WaitFor([&] { return answer.load() == 3; }));
  // Counted after the jobs ran (per batch): wait for the counts, then check
  // that nothing more ran.
  EXPECT_TRUE(WaitFor([&] { return lobby->Stats().jobs_run >= 1 && room->Stats().jobs_run >= 1; }));
  EXPECT_EQ(lobby->Stats().jobs_run, 1u);
  EXPECT_EQ(room->Stats().jobs_run, 1u);
}

TEST(JobQueue, PostThrowsForAnActorNotOwnedBySharedPtr) {
  Scheduler scheduler(OneGroup(1));
  TestActor actor(scheduler.Group("logic"), "stack");
  EXPECT_THROW(actor.Post([] {}), std::bad_weak_ptr);
  EXPECT_EQ(actor.Depth(), 0u);
}

}  // namespace
}  // namespace keel::job
