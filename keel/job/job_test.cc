#include "keel/job/job.h"

#include <gtest/gtest.h>

#include <array>
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

}  // namespace
}  // namespace keel::job
