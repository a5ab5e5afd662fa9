// The mailbox contract (internal/mailbox.h): FIFO, parking says "schedule"
// exactly once per parking, a half-done push hides later jobs until it links
// and blocks parking, and the consumer role is held by one thread at a time.
#include "keel/job/internal/mailbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <initializer_list>
#include <thread>
#include <vector>

namespace keel::job::internal {

struct MailboxTestPeer {
  static lockfree::MpscNode* Exchange(Mailbox& m, JobNode* node) { return m.Exchange(node); }
  static bool Link(Mailbox& m, lockfree::MpscNode* prev, JobNode* node) {
    return m.Link(prev, node);
  }
};

namespace {

std::vector<JobNode> Nodes(std::size_t n) { return std::vector<JobNode>(n); }

// Pops exactly `expected`, in order, finds the mailbox empty, parks it and
// gives the role back.
void ExpectPopsThenParks(Mailbox& m, Mailbox::Consumer& c,
                         std::initializer_list<JobNode*> expected) {
  for (JobNode* node : expected) EXPECT_EQ(m.Pop(c), node);
  EXPECT_EQ(m.Pop(c), nullptr);
  EXPECT_TRUE(m.TryPark(c));
  m.Release(c);
}

TEST(Mailbox, PopsInPushOrderAndParksOnlyWhenEmpty) {
  Mailbox m;
  auto nodes = Nodes(3);
  EXPECT_TRUE(m.Push(&nodes[0]));  // a new mailbox is parked
  EXPECT_FALSE(m.Push(&nodes[1]));
  EXPECT_FALSE(m.Push(&nodes[2]));
  Mailbox::Consumer c = m.Acquire();
  EXPECT_FALSE(m.TryPark(c));
  EXPECT_EQ(m.Pop(c), &nodes[0]);
  EXPECT_EQ(m.Pop(c), &nodes[1]);
  EXPECT_FALSE(m.TryPark(c));
  EXPECT_EQ(m.Pop(c), &nodes[2]);
  EXPECT_EQ(m.Pop(c), nullptr);
  EXPECT_TRUE(m.TryPark(c));
  m.Release(c);
  // Parked again: the next push says schedule, once.
  EXPECT_TRUE(m.Push(&nodes[0]));
  EXPECT_FALSE(m.Push(&nodes[1]));
  c = m.Acquire();
  ExpectPopsThenParks(m, c, {&nodes[0], &nodes[1]});
}

TEST(Mailbox, CursorSurvivesReleaseAndReacquire) {
  Mailbox m;
  auto nodes = Nodes(4);
  for (auto& n : nodes) m.Push(&n);
  Mailbox::Consumer c = m.Acquire();
  EXPECT_EQ(m.Pop(c), &nodes[0]);
  m.Release(c);  // a slice ends with jobs left; the next holder goes on
  c = m.Acquire();
  EXPECT_EQ(m.Pop(c), &nodes[1]);
  EXPECT_EQ(m.Pop(c), &nodes[2]);
  m.Release(c);
  c = m.Acquire();
  ExpectPopsThenParks(m, c, {&nodes[3]});
}

TEST(Mailbox, HalfDonePushHidesLaterJobsAndBlocksParking) {
  Mailbox m;
  auto nodes = Nodes(3);
  m.Push(&nodes[0]);
  Mailbox::Consumer c = m.Acquire();
  EXPECT_EQ(m.Pop(c), &nodes[0]);
  // The producer of nodes[1] is preempted between its exchange and its link.
  lockfree::MpscNode* prev = MailboxTestPeer::Exchange(m, &nodes[1]);
  EXPECT_FALSE(m.Push(&nodes[2]));  // links behind nodes[1], not yet reachable
  EXPECT_EQ(m.Pop(c), nullptr);
  EXPECT_FALSE(m.TryPark(c)) << "parking now would strand nodes[1] and nodes[2]";
  EXPECT_FALSE(MailboxTestPeer::Link(m, prev, &nodes[1]));
  ExpectPopsThenParks(m, c, {&nodes[1], &nodes[2]});
}

TEST(Mailbox, HalfDoneFirstPushAfterParkingIsScheduledByItsProducer) {
  Mailbox m;
  auto nodes = Nodes(2);
  lockfree::MpscNode* prev = MailboxTestPeer::Exchange(m, &nodes[0]);
  EXPECT_EQ(prev, nullptr);          // found it parked: this producer schedules
  EXPECT_FALSE(m.Push(&nodes[1]));   // the queue is no longer parked
  Mailbox::Consumer c = m.Acquire();  // e.g. Clear on another thread
  EXPECT_EQ(m.Pop(c), nullptr);       // nothing reachable yet
  m.Release(c);
  EXPECT_TRUE(MailboxTestPeer::Link(m, prev, &nodes[0]));
  c = m.Acquire();
  ExpectPopsThenParks(m, c, {&nodes[0], &nodes[1]});
}

TEST(Mailbox, ConsumerRoleIsHeldByOneThreadAtATime) {
  Mailbox m;
  Mailbox::Consumer c = m.Acquire();
  std::atomic<bool> got{false};
  std::thread other([&] {
    Mailbox::Consumer mine = m.Acquire();
    got.store(true);
    m.Release(mine);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(got.load()) << "a second thread took the role while it was held";
  m.Release(c);
  other.join();
  EXPECT_TRUE(got.load());
}

}  // namespace
}  // namespace keel::job::internal
