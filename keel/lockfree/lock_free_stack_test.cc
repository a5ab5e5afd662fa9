// The stack contract, run on LockFreeStack and on its twin LockedStack, and
// the ABA interleaving forced step by step on the lock-free one.
#include "keel/lockfree/lock_free_stack.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <vector>

#include "keel/lockfree/internal/tagged_stack.h"
#include "keel/lockfree/locked_stack.h"

namespace keel::lockfree {
namespace internal {

struct LockFreeStackTestPeer {
  template <typename T>
  static auto& Items(LockFreeStack<T>& stack) {
    return stack.items_;
  }
};

}  // namespace internal

namespace {

struct LockFreeKind {
  template <typename T>
  using Stack = LockFreeStack<T>;
};
struct LockedKind {
  template <typename T>
  using Stack = LockedStack<T>;
};

template <typename Kind>
class StackContract : public ::testing::Test {};
using StackKinds = ::testing::Types<LockFreeKind, LockedKind>;
TYPED_TEST_SUITE(StackContract, StackKinds);

TYPED_TEST(StackContract, StartsEmpty) {
  typename TypeParam::template Stack<int> stack;
  int out = -1;
  EXPECT_TRUE(stack.Empty());
  EXPECT_FALSE(stack.TryPop(out));
  EXPECT_EQ(out, -1);
}

TYPED_TEST(StackContract, PopsInReverseOrder) {
  typename TypeParam::template Stack<int> stack;
  for (int i = 0; i < 5; ++i) stack.Push(i);
  EXPECT_FALSE(stack.Empty());
  int out = -1;
  for (int i = 4; i >= 0; --i) {
    ASSERT_TRUE(stack.TryPop(out));
    EXPECT_EQ(out, i);
  }
  EXPECT_FALSE(stack.TryPop(out));
  EXPECT_TRUE(stack.Empty());
}

TYPED_TEST(StackContract, InterleavedPushAndPopKeepLifoOrder) {
  typename TypeParam::template Stack<int> stack;
  int out = 0;
  stack.Push(1);
  stack.Push(2);
  ASSERT_TRUE(stack.TryPop(out));
  EXPECT_EQ(out, 2);
  stack.Push(3);
  ASSERT_TRUE(stack.TryPop(out));
  EXPECT_EQ(out, 3);
  ASSERT_TRUE(stack.TryPop(out));
  EXPECT_EQ(out, 1);
  EXPECT_FALSE(stack.TryPop(out));
}

TYPED_TEST(StackContract, HoldsMoveOnlyValues) {
  typename TypeParam::template Stack<std::unique_ptr<int>> stack;
  stack.Push(std::make_unique<int>(7));
  std::unique_ptr<int> out;
  ASSERT_TRUE(stack.TryPop(out));
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 7);
}

TYPED_TEST(StackContract, DestroysValuesLeftInside) {
  auto counted = std::make_shared<int>(0);
  {
    typename TypeParam::template Stack<std::shared_ptr<int>> stack;
    for (int i = 0; i < 3; ++i) stack.Push(counted);
    std::shared_ptr<int> out;
    ASSERT_TRUE(stack.TryPop(out));
    EXPECT_EQ(counted.use_count(), 4);  // ours, two inside, `out`
  }
  EXPECT_EQ(counted.use_count(), 1);
}

TYPED_TEST(StackContract, ReservedStackWorksAsUsual) {
  typename TypeParam::template Stack<int> stack;
  stack.Reserve(100);
  EXPECT_TRUE(stack.Empty());
  for (int i = 0; i < 200; ++i) stack.Push(i);
  int out = 0;
  for (int i = 199; i >= 0; --i) {
    ASSERT_TRUE(stack.TryPop(out));
    ASSERT_EQ(out, i);
  }
}

// --- ABA, forced deterministically ---------------------------------------

struct alignas(16) TestNode {
  std::atomic<TestNode*> next{nullptr};
};
using NodeStack = internal::TaggedStack<TestNode>;

// A -> B -> C, a Pop reads (A, next B) and stalls; meanwhile A and B are
// popped and A is pushed back: the head is A again, now followed by C.
struct AbaSetup {
  TestNode a, b, c;
  NodeStack stack;
  NodeStack::Snapshot stale{};

  AbaSetup() {
    stack.Push(&c);
    stack.Push(&b);
    stack.Push(&a);
    stale = stack.Read();
    EXPECT_EQ(stale.node, &a);
    EXPECT_EQ(stale.next, &b);
    EXPECT_EQ(stack.Pop(), &a);
    EXPECT_EQ(stack.Pop(), &b);
    stack.Push(&a);
    EXPECT_EQ(NodeStack::PointerOf(stack.HeadWord()), &a);  // the same pointer on top
  }
};

TEST(TaggedStack, StaleCommitFailsAfterAbaAndStackStaysIntact) {
  AbaSetup s;
  EXPECT_NE(NodeStack::TagOf(s.stack.HeadWord()), NodeStack::TagOf(s.stale.head));

  EXPECT_FALSE(s.stack.TryCommit(s.stale));
  // The failed CAS refreshed the snapshot; the retry pops A with next C.
  EXPECT_EQ(s.stale.node, &s.a);
  EXPECT_EQ(s.stale.next, &s.c);
  EXPECT_TRUE(s.stack.TryCommit(s.stale));
  EXPECT_EQ(s.stack.Pop(), &s.c);
  EXPECT_EQ(s.stack.Pop(), nullptr);
}

TEST(TaggedStack, UntaggedCompareWouldCorruptTheStack) {
  AbaSetup s;
  // A pointer-only CAS is the same CAS with the tag taken from the current
  // head: forge that and let it run.
  NodeStack::Snapshot untagged = s.stale;
  untagged.head =
      (s.stale.head & ~NodeStack::kTagMask) | (s.stack.HeadWord() & NodeStack::kTagMask);
  ASSERT_TRUE(s.stack.TryCommit(untagged));
  // B, popped and owned by someone else, is back on top: it would be
  // delivered twice, and C is reachable only through it.
  EXPECT_EQ(s.stack.Pop(), &s.b);
  EXPECT_EQ(s.stack.Pop(), &s.c);
}

TEST(LockFreeStack, AbaThroughThePublicInterfaceIsCaught) {
  LockFreeStack<int> stack;
  stack.Push(3);
  stack.Push(2);
  stack.Push(1);
  auto& items = internal::LockFreeStackTestPeer::Items(stack);
  auto stale = items.Read();  // top node holds 1, next holds 2

  int out = 0;
  ASSERT_TRUE(stack.TryPop(out));  // 1: its node goes to the free list
  ASSERT_TRUE(stack.TryPop(out));  // 2: likewise, on top of it
  stack.Push(20);                  // reuses 2's node
  stack.Push(10);                  // reuses 1's node: the stale head again
  ASSERT_EQ(items.Read().node, stale.node);

  EXPECT_FALSE(items.TryCommit(stale));
  for (int expected : {10, 20, 3}) {
    ASSERT_TRUE(stack.TryPop(out));
    EXPECT_EQ(out, expected);
  }
  EXPECT_FALSE(stack.TryPop(out));
}

TEST(LockFreeStack, TagWrapsAroundWithoutHarm) {
  LockFreeStack<int> stack;
  auto& items = internal::LockFreeStackTestPeer::Items(stack);
  int out = 0;
  constexpr int kRounds = (1 << NodeStack::kTagBits) / 2 + 10;  // 2 increments per round
  for (int i = 0; i < kRounds; ++i) {
    stack.Push(i);
    ASSERT_TRUE(stack.TryPop(out));
    ASSERT_EQ(out, i);
  }
  EXPECT_TRUE(stack.Empty());
  EXPECT_EQ(items.Read().node, nullptr);
}

}  // namespace
}  // namespace keel::lockfree
