#include "keel/job/job.h"
#include "keel/job/internal/job_list.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <thread>
#include <memory>
#include <utility>

namespace keel::job {
namespace {

TEST(Job, SmallCallableLivesInline) {
  int hits = 0;
  Job job([&hits] { ++hits; });
  EXPECT_TRUE(job.IsInline());
  job();
  job();
  EXPECT_EQ(hits, 2);
}

TEST(Job, LargeCallableFallsBackToHeap) {
  std::array<char, 200> big{};
  big[0] = 7;
  int seen = 0;
  Job job([big, &seen] { seen = big[0]; });
  EXPECT_FALSE(job.IsInline());
  job();
  EXPECT_EQ(seen, 7);
}

TEST(Job, OverAlignedCallableFallsBackToHeapAndKeepsItsAlignment) {
  struct alignas(16) Wide {
    int value;
  };
  Wide wide{9};
  int seen = 0;
  auto fn = [wide, &seen] {
    seen = reinterpret_cast<std::uintptr_t>(&wide) % 16 == 0 ? wide.value : -1;
  };
  // Small enough to live inline: only its alignment sends it to the heap.
  static_assert(sizeof(fn) <= Job::kInlineSize && alignof(decltype(fn)) > Job::kInlineAlign);
  Job job(std::move(fn));
  EXPECT_FALSE(job.IsInline());
  job();
  EXPECT_EQ(seen, 9);
}

TEST(Job, AssignToEmptyTakesTheCallable) {
  int hits = 0;
  Job target;
  target.AssignToEmpty(Job([&hits] { ++hits; }));
  ASSERT_TRUE(static_cast<bool>(target));
  target();
  EXPECT_EQ(hits, 1);
}

TEST(Job, MoveTransfersOwnershipAndDestroysOnce) {
  auto token = std::make_shared<int>(1);
  {
    Job a([token] {});
    EXPECT_EQ(token.use_count(), 2);
    Job b(std::move(a));
    EXPECT_FALSE(static_cast<bool>(a));  // NOLINT(bugprone-use-after-move)
    EXPECT_TRUE(static_cast<bool>(b));
    Job c;
    c = std::move(b);
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST(Job, HoldsMoveOnlyCaptures) {
  auto p = std::make_unique<int>(5);
  int out = 0;
  Job job([p = std::move(p), &out] { out = *p; });
  Job moved(std::move(job));
  moved();
  EXPECT_EQ(out, 5);
}

// A thread_local built before the thread's first job node is destroyed after
// the thread's node cache: its destructor must still get working nodes (once,
// the cache handed out nodes it had already deleted; ASan reports that).
struct LateUser {
  bool armed = false;
  ~LateUser() {
    if (!armed) return;
    std::array<internal::JobNode*, 600> nodes{};
    for (auto*& node : nodes) {
      node = internal::AllocNode();
      node->job = Job([] {});
    }
    for (auto* node : nodes) {
      node->job.Reset();
      internal::FreeNode(node);
    }
  }
};

TEST(JobNodes, ThreadLocalDestructorsAfterTheCacheStillWork) {
  std::thread([] {
    static thread_local LateUser late;  // constructed first: destroyed last
    late.armed = true;
    std::array<internal::JobNode*, 700> nodes{};  // fills the cache past one batch
    for (auto*& node : nodes) node = internal::AllocNode();
    for (auto* node : nodes) internal::FreeNode(node);
  }).join();
  SUCCEED();  // the assertion is ASan's (and the absence of a crash)
}

}  // namespace
}  // namespace keel::job
