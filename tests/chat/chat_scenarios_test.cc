// keel_bots' room-churn and slow-readers scenarios against an in-process
// server on 127.0.0.1 (issue 7). They assert what was delivered to whom,
// never how fast.
#include <gtest/gtest.h>

#include <chrono>

#include "tests/chat/chat_fixture.h"

namespace keel::chat {
namespace {

using namespace std::chrono_literals;
using testing::ChatFixture;
namespace nt = keel::net::testing;

// Half the bots keep joining, leaving and creating rooms while all chat:
// every message reaches exactly the members present when the room
// broadcast it (RoomJoined.last_seq .. RoomLeft.last_seq), no one else.
TEST_F(ChatFixture, RoomChurnDeliversEachMessageToExactlyTheMembersPresent) {
  Start();
  auto o = Fleet(40, 4, 4);
  o.scenario = "room-churn";
  const bots::FleetReport r = bots::RunFleet(o);
  EXPECT_EQ(r.logins_ok, 40u);
  EXPECT_GT(r.churn_moves, 20u) << "the bots hardly moved";
  EXPECT_GT(r.rooms_created, 0u);
  EXPECT_GT(r.sent, 0u);
  EXPECT_EQ(r.own_echoes, r.sent);
  EXPECT_EQ(r.deliveries.lost, 0u);
  EXPECT_EQ(r.deliveries.duplicates, 0u);
  EXPECT_EQ(r.deliveries.strays, 0u) << "a message reached a bot not in its room";
  EXPECT_EQ(r.kicks + r.disconnects + r.server_errors, 0u);
  EXPECT_TRUE(r.Clean());
}

// One bot in ten reads slowly or never: the never-readers are disconnected
// as slow consumers (kicked by the server), the others lose nothing.
TEST_F(ChatFixture, SlowReadersScenarioDisconnectsNeverReadersAndTheRestLoseNothing) {
  Start(SlowConsumerConfig(1000, 256 * 1024));
  StartTicker();
  auto o = Fleet(30, 3, 6);
  o.scenario = "slow-readers";
  o.rate = 10;
  o.text_bytes = 400;
  const bots::FleetReport r = bots::RunFleet(o);
  EXPECT_EQ(r.slow_readers, 3u);
  EXPECT_EQ(r.never_readers, 2u);
  EXPECT_EQ(r.never_disconnected, 2u);
  EXPECT_GE(server_->counters().slow_consumer_kicks.load(), 2u);
  EXPECT_EQ(r.logins_ok, 27u);
  EXPECT_EQ(r.own_echoes, r.sent);
  EXPECT_EQ(r.deliveries.lost + r.deliveries.duplicates + r.deliveries.strays, 0u);
  EXPECT_EQ(r.kicks + r.disconnects, 0u) << "a well-behaved bot was dropped";
  EXPECT_TRUE(r.Clean());
}

}  // namespace
}  // namespace keel::chat
