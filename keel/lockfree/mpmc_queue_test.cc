// The bounded MPMC contract, run on MpmcQueue and on its twin
// LockedMpmcQueue.
#include "keel/lockfree/mpmc_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>

#include "keel/lockfree/locked_mpmc_queue.h"

namespace keel::lockfree {
namespace {

struct LockFreeKind {
  template <typename T>
  using Queue = MpmcQueue<T>;
};
struct LockedKind {
  template <typename T>
  using Queue = LockedMpmcQueue<T>;
};

template <typename Kind>
class MpmcContract : public ::testing::Test {};
using MpmcKinds = ::testing::Types<LockFreeKind, LockedKind>;
TYPED_TEST_SUITE(MpmcContract, MpmcKinds);

TYPED_TEST(MpmcContract, CapacityMustBeAPowerOfTwo) {
  using Queue = typename TypeParam::template Queue<int>;
  for (std::size_t bad : {0u, 1u, 3u, 6u, 100u}) {
    EXPECT_THROW(Queue q(bad), std::invalid_argument) << bad;
  }
  for (std::size_t good : {2u, 4u, 1024u}) {
    Queue q(good);
    EXPECT_EQ(q.Capacity(), good);
  }
}

TYPED_TEST(MpmcContract, StartsEmpty) {
  typename TypeParam::template Queue<int> q(4);
  int out = -1;
  EXPECT_FALSE(q.TryPop(out));
  EXPECT_EQ(out, -1);
}

TYPED_TEST(MpmcContract, PopsInPushOrder) {
  typename TypeParam::template Queue<int> q(8);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(q.TryPush(i));
  int out = -1;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(q.TryPop(out));
    EXPECT_EQ(out, i);
  }
  EXPECT_FALSE(q.TryPop(out));
}

TYPED_TEST(MpmcContract, PushFailsWhenFullUntilSomethingIsPopped) {
  typename TypeParam::template Queue<int> q(4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(q.TryPush(i));
  EXPECT_FALSE(q.TryPush(99));
  int out = -1;
  ASSERT_TRUE(q.TryPop(out));
  EXPECT_EQ(out, 0);
  EXPECT_TRUE(q.TryPush(4));
  EXPECT_FALSE(q.TryPush(99));
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(q.TryPop(out));
    EXPECT_EQ(out, i);
  }
}

TYPED_TEST(MpmcContract, WrapsAroundTheRingManyTimes) {
  typename TypeParam::template Queue<int> q(4);
  int next_in = 0;
  int next_out = 0;
  int out = 0;
  for (int lap = 0; lap < 1000; ++lap) {
    ASSERT_TRUE(q.TryPush(next_in++));
    ASSERT_TRUE(q.TryPush(next_in++));
    ASSERT_TRUE(q.TryPush(next_in++));
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(q.TryPop(out));
      ASSERT_EQ(out, next_out++);
    }
  }
}

TYPED_TEST(MpmcContract, HoldsMoveOnlyValuesAndLeavesThemWhenFull) {
  typename TypeParam::template Queue<std::unique_ptr<int>> q(2);
  ASSERT_TRUE(q.TryPush(std::make_unique<int>(1)));
  ASSERT_TRUE(q.TryPush(std::make_unique<int>(2)));
  auto extra = std::make_unique<int>(3);
  EXPECT_FALSE(q.TryPush(std::move(extra)));
  ASSERT_NE(extra, nullptr);  // a failed push does not consume the value
  EXPECT_EQ(*extra, 3);
  std::unique_ptr<int> out;
  ASSERT_TRUE(q.TryPop(out));
  EXPECT_EQ(*out, 1);
}

TYPED_TEST(MpmcContract, DestroysValuesLeftInside) {
  auto counted = std::make_shared<int>(0);
  {
    typename TypeParam::template Queue<std::shared_ptr<int>> q(8);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(q.TryPush(counted));
    std::shared_ptr<int> out;
    ASSERT_TRUE(q.TryPop(out));
    out.reset();
    EXPECT_EQ(counted.use_count(), 5);  // ours and four inside
  }
  EXPECT_EQ(counted.use_count(), 1);
}

}  // namespace
}  // namespace keel::lockfree
