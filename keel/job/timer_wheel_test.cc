// TimerWheel against a reference (a sorted set of (due, seq)): random
// inserts, removals and clock jumps of every size must fire exactly the due
// nodes, in (due, seq) order, and never report a next due after the real one.
#include "keel/job/internal/timer_wheel.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace keel::job::internal {
namespace {

using Key = std::pair<int64_t, uint64_t>;

struct Harness {
  explicit Harness(int64_t start) : wheel(start), now(start) {}

  TimerNode* Add(int64_t due) {
    nodes.push_back(std::make_unique<TimerNode>());
    TimerNode* n = nodes.back().get();
    n->due = due;
    n->seq = next_seq++;
    wheel.Insert(n);
    reference.insert({n->due, n->seq});
    return n;
  }
  void Remove(TimerNode* n) {
    ASSERT_TRUE(n->linked());
    wheel.Remove(n);
    EXPECT_FALSE(n->linked());
    reference.erase({n->due, n->seq});
  }
  // Advances to `to` and checks the fired nodes against the reference.
  void AdvanceAndCheck(int64_t to) {
    now = std::max(now, to);
    std::vector<TimerNode*> fired;
    wheel.Advance(to, fired);
    std::vector<Key> expected;
    while (!reference.empty() && reference.begin()->first <= now) {
      expected.push_back(*reference.begin());
      reference.erase(reference.begin());
    }
    std::vector<Key> got;
    for (TimerNode* n : fired) {
      EXPECT_FALSE(n->linked());
      got.emplace_back(n->due, n->seq);
    }
    ASSERT_EQ(got, expected) << "advancing to " << to;
    ASSERT_EQ(wheel.size(), reference.size());
    if (!reference.empty()) {
      ASSERT_LE(wheel.NextDueLowerBound(), reference.begin()->first);
      ASSERT_GT(reference.begin()->first, now);
    } else {
      ASSERT_EQ(wheel.NextDueLowerBound(), std::numeric_limits<int64_t>::max());
    }
  }

  TimerWheel wheel;
  int64_t now;
  uint64_t next_seq = 0;
  std::set<Key> reference;
  std::vector<std::unique_ptr<TimerNode>> nodes;
};

TEST(TimerWheel, FiresExactlyTheDueNodesInDueThenCreationOrder) {
  Harness h(1'000);
  h.Add(1'005);
  h.Add(1'003);
  h.Add(1'005);  // same due: creation order
  h.Add(1'000);  // due now
  h.Add(900);    // before the wheel's start
  h.Add(1'000 + (int64_t{1} << 40));
  h.AdvanceAndCheck(1'004);
  h.AdvanceAndCheck(1'005);
  h.AdvanceAndCheck(1'000 + (int64_t{1} << 40) - 1);
  EXPECT_EQ(h.wheel.size(), 1u);
  h.AdvanceAndCheck(1'000 + (int64_t{1} << 40));
  EXPECT_EQ(h.wheel.size(), 0u);
}

TEST(TimerWheel, RemoveOnEveryLevelClearsItsSlot) {
  Harness h(0);
  std::vector<TimerNode*> added;
  for (int bit = 0; bit < 63; ++bit) added.push_back(h.Add(int64_t{1} << bit));
  for (std::size_t i = 0; i < added.size(); i += 2) h.Remove(added[i]);
  // Every removed slot must be empty again: advancing over all of them fires
  // only the survivors.
  h.AdvanceAndCheck(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(h.wheel.size(), 0u);
}

TEST(TimerWheel, AClockThatGoesBackDoesNotRefireOrLoseNodes) {
  Harness h(10'000);
  h.Add(10'100);
  h.Add(10'300);
  h.AdvanceAndCheck(10'200);
  h.AdvanceAndCheck(10'050);  // earlier than the wheel: nothing new is due
  h.AdvanceAndCheck(10'300);
}

TEST(TimerWheel, DrainUnlinksEverything) {
  TimerWheel wheel(0);
  std::vector<TimerNode> nodes(100);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].due = static_cast<int64_t>(i * i * i * 977);  // node 0 is due now
    wheel.Insert(&nodes[i]);
  }
  std::size_t drained = 0;
  wheel.Drain([&](TimerNode* n) {
    EXPECT_FALSE(n->linked());
    ++drained;
  });
  EXPECT_EQ(drained, nodes.size());
  EXPECT_EQ(wheel.size(), 0u);
  std::vector<TimerNode*> fired;
  wheel.Advance(std::numeric_limits<int64_t>::max(), fired);
  EXPECT_TRUE(fired.empty());
}

// Random operations at every time scale, against the reference.
TEST(TimerWheel, RandomOperationsMatchASortedSet) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    Harness h(static_cast<int64_t>(rng() % 1'000'000'000));
    std::vector<TimerNode*> live;
    for (int step = 0; step < 3'000; ++step) {
      const int scale = static_cast<int>(rng() % 48);  // delays from 1 ns to ~3 days
      const auto delay = static_cast<int64_t>(rng() % (uint64_t{1} << scale));
      switch (rng() % 4) {
        case 0:
        case 1:
          live.push_back(h.Add(h.now + delay - static_cast<int64_t>(rng() % 3)));
          break;
        case 2:
          if (!live.empty()) {
            const std::size_t i = rng() % live.size();
            if (live[i]->linked()) h.Remove(live[i]);
            live[i] = live.back();
            live.pop_back();
          }
          break;
        default:
          h.AdvanceAndCheck(h.now + delay);
          break;
      }
      if (HasFatalFailure()) return;
    }
    h.AdvanceAndCheck(std::numeric_limits<int64_t>::max());
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace keel::job::internal
