// The MPSC mailbox contract, parking included, run on MpscQueue and on its
// twin LockedMpscQueue; then the half-done Push forced on MpscQueue.
#include "keel/lockfree/mpsc_queue.h"

#include <gtest/gtest.h>

#include <vector>

#include "keel/lockfree/locked_mpsc_queue.h"

namespace keel::lockfree {
namespace internal {

struct MpscQueueTestPeer {
  static MpscNode* Exchange(MpscQueue& q, MpscNode* node) { return q.Exchange(node); }
  static bool Link(MpscQueue& q, MpscNode* prev, MpscNode* node) { return q.Link(prev, node); }
};

}  // namespace internal

namespace {

struct Item : MpscNode {
  explicit Item(int v = 0) : value(v) {}
  int value;
};

template <typename Queue>
int PopValue(Queue& q) {
  MpscNode* node = q.Pop();
  return node == nullptr ? -1 : static_cast<Item*>(node)->value;
}

template <typename Queue>
class MpscContract : public ::testing::Test {};
using MpscKinds = ::testing::Types<MpscQueue, LockedMpscQueue>;
TYPED_TEST_SUITE(MpscContract, MpscKinds);

TYPED_TEST(MpscContract, NewQueueIsEmpty) {
  TypeParam q;
  EXPECT_EQ(q.Pop(), nullptr);
  EXPECT_EQ(q.Pop(), nullptr);
}

TYPED_TEST(MpscContract, PopsInPushOrder) {
  TypeParam q;
  std::vector<Item> items(5);
  for (int i = 0; i < 5; ++i) {
    items[static_cast<size_t>(i)].value = i;
    q.Push(&items[static_cast<size_t>(i)]);
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(PopValue(q), i);
  EXPECT_EQ(q.Pop(), nullptr);
}

TYPED_TEST(MpscContract, OnlyTheFirstPushIntoANewQueueSaysSchedule) {
  TypeParam q;
  Item a(1), b(2);
  EXPECT_TRUE(q.Push(&a));
  EXPECT_FALSE(q.Push(&b));
}

TYPED_TEST(MpscContract, ParkSucceedsOnlyWhenEverythingIsPopped) {
  TypeParam q;
  Item a(1), b(2);
  q.Push(&a);
  q.Push(&b);
  EXPECT_FALSE(q.TryPark());
  EXPECT_EQ(PopValue(q), 1);
  EXPECT_FALSE(q.TryPark());
  EXPECT_EQ(PopValue(q), 2);
  EXPECT_EQ(q.Pop(), nullptr);
  EXPECT_TRUE(q.TryPark());
}

TYPED_TEST(MpscContract, PushAfterParkSaysScheduleExactlyOnce) {
  TypeParam q;
  Item a(1), b(2), c(3);
  for (int round = 0; round < 3; ++round) {
    EXPECT_TRUE(q.Push(&a));
    EXPECT_FALSE(q.Push(&b));
    EXPECT_FALSE(q.Push(&c));
    EXPECT_EQ(PopValue(q), 1);
    EXPECT_EQ(PopValue(q), 2);
    EXPECT_EQ(PopValue(q), 3);
    EXPECT_EQ(q.Pop(), nullptr);
    ASSERT_TRUE(q.TryPark());
  }
}

TYPED_TEST(MpscContract, AConsumerThatNeverParksJustPolls) {
  TypeParam q;
  Item a(1), b(2);
  EXPECT_TRUE(q.Push(&a));
  EXPECT_EQ(PopValue(q), 1);
  EXPECT_EQ(q.Pop(), nullptr);
  EXPECT_FALSE(q.Push(&b));  // not parked: the consumer is still polling
  EXPECT_EQ(PopValue(q), 2);
}

TYPED_TEST(MpscContract, ANodeMayBePushedAgainOnceItIsPopped) {
  TypeParam q;
  Item a(1);
  for (int i = 0; i < 4; ++i) {
    q.Push(&a);
    ASSERT_EQ(PopValue(q), 1);
    ASSERT_EQ(q.Pop(), nullptr);
  }
}

TYPED_TEST(MpscContract, KeepsOrderAcrossEmptyAndRefill) {
  TypeParam q;
  std::vector<Item> items(100);
  int pushed = 0;
  int popped = 0;
  for (int burst = 1; burst <= 10; ++burst) {
    for (int i = 0; i < burst; ++i) {
      items[static_cast<size_t>(pushed)].value = pushed;
      q.Push(&items[static_cast<size_t>(pushed)]);
      ++pushed;
    }
    for (int i = 0; i < burst; ++i) ASSERT_EQ(PopValue(q), popped++);
    ASSERT_EQ(q.Pop(), nullptr);
  }
}

// --- The half-done Push, forced ------------------------------------------

using Peer = internal::MpscQueueTestPeer;

TEST(MpscQueue, HalfDonePushHidesLaterItemsUntilLinked) {
  MpscQueue q;
  Item a(1), b(2), c(3);
  q.Push(&a);
  MpscNode* prev = Peer::Exchange(q, &b);  // producer of b is preempted here
  EXPECT_EQ(prev, &a);
  EXPECT_FALSE(q.Push(&c));  // c links behind b, which is not linked yet

  // a cannot be handed out before its successor is known; nothing spins.
  EXPECT_EQ(q.Pop(), nullptr);
  EXPECT_EQ(q.Pop(), nullptr);
  EXPECT_FALSE(q.TryPark());  // the consumer must keep the queue and retry

  EXPECT_FALSE(Peer::Link(q, prev, &b));  // the producer resumes
  EXPECT_EQ(PopValue(q), 1);
  EXPECT_EQ(PopValue(q), 2);
  EXPECT_EQ(PopValue(q), 3);
  EXPECT_EQ(q.Pop(), nullptr);
  EXPECT_TRUE(q.TryPark());
}

TEST(MpscQueue, HalfDonePushIntoAParkedQueueStillSchedulesOnce) {
  MpscQueue q;
  Item a(1), b(2);
  MpscNode* prev = Peer::Exchange(q, &a);
  EXPECT_EQ(prev, nullptr);  // found it parked
  EXPECT_FALSE(q.Push(&b));  // only one producer learns "schedule"
  EXPECT_EQ(q.Pop(), nullptr);
  EXPECT_FALSE(q.TryPark());
  EXPECT_TRUE(Peer::Link(q, prev, &a));
  EXPECT_EQ(PopValue(q), 1);
  EXPECT_EQ(PopValue(q), 2);
  EXPECT_TRUE(q.TryPark());
}

}  // namespace
}  // namespace keel::lockfree
