// The bots' bookkeeping, without sockets: the delivery check that decides
// whether a run was clean, and the report.
#include <gtest/gtest.h>

#include <string>

#include "apps/bots/delivery_check.h"
#include "apps/bots/report.h"

namespace keel::bots {
namespace {

using Verdict = DeliveryCheck::Verdict;

TEST(DeliveryCheck, InOrderFromTheJoinPoint) {
  DeliveryCheck c;
  c.Joined(7);
  EXPECT_EQ(c.OnMessage(8), Verdict::kInOrder);
  EXPECT_EQ(c.OnMessage(9), Verdict::kInOrder);
  c.Finish(9);
  EXPECT_EQ(c.counts().delivered, 2u);
  EXPECT_EQ(c.counts().lost, 0u);
  EXPECT_EQ(c.counts().duplicates, 0u);
}

TEST(DeliveryCheck, GapsDuplicatesAndReordersAreCounted) {
  DeliveryCheck c;
  c.Joined(0);
  EXPECT_EQ(c.OnMessage(1), Verdict::kInOrder);
  EXPECT_EQ(c.OnMessage(4), Verdict::kGap);  // 2 and 3 lost
  EXPECT_EQ(c.OnMessage(4), Verdict::kDuplicate);
  EXPECT_EQ(c.OnMessage(3), Verdict::kDuplicate);  // late: out of order
  EXPECT_EQ(c.counts().delivered, 2u);
  EXPECT_EQ(c.counts().lost, 2u);
  EXPECT_EQ(c.counts().duplicates, 2u);
}

TEST(DeliveryCheck, AMemberPresentAtTheEndMustHaveTheTail) {
  DeliveryCheck present;
  present.Joined(0);
  present.OnMessage(1);
  present.Finish(5);  // 2..5 never arrived
  EXPECT_EQ(present.counts().lost, 4u);

  DeliveryCheck gone;
  gone.Joined(0);
  gone.OnMessage(1);
  gone.Left();
  gone.Finish(5);  // left after 1: owes nothing more
  EXPECT_EQ(gone.counts().lost, 0u);
}

TEST(DeliveryCheck, MessagesOutsideAMembershipAreStrays) {
  DeliveryCheck c;
  EXPECT_EQ(c.OnMessage(1), Verdict::kStray);  // before the join
  c.Joined(1);
  EXPECT_EQ(c.OnMessage(2), Verdict::kInOrder);
  c.Left(2);
  EXPECT_EQ(c.OnMessage(3), Verdict::kStray);  // after the leave
  c.Joined(5);                                 // back again later
  EXPECT_EQ(c.OnMessage(6), Verdict::kInOrder);
  EXPECT_EQ(c.counts().strays, 2u);
  EXPECT_EQ(c.counts().delivered, 2u);
  EXPECT_EQ(c.counts().lost, 0u);
}

TEST(DeliveryCheck, ALeaveOwesEverythingUpToItsLastSeq) {
  DeliveryCheck c;
  c.Joined(10);
  c.OnMessage(11);
  c.Left(14);  // 12..14 were queued before the leave and never arrived
  EXPECT_EQ(c.counts().lost, 3u);
  c.Finish(20);  // not a member any more: owes nothing at the end
  EXPECT_EQ(c.counts().lost, 3u);
}

// A clean run's report: every message sent came back to its sender and was
// delivered `fan_out` times in all.
FleetReport CleanReport(uint64_t sent, uint64_t fan_out) {
  FleetReport r;
  r.sent = sent;
  r.own_echoes = sent;
  r.deliveries.delivered = sent * fan_out;
  return r;
}

TEST(FleetReport, CleanOnlyWithoutLossDuplicatesOrMissingEchoes) {
  FleetReport r = CleanReport(10, 10);
  EXPECT_TRUE(r.Clean());
  r.own_echoes = 9;
  EXPECT_FALSE(r.Clean());
  r.own_echoes = 10;
  r.deliveries.lost = 1;
  EXPECT_FALSE(r.Clean());
  r.deliveries.lost = 0;
  r.deliveries.strays = 1;
  EXPECT_FALSE(r.Clean()) << "a message reached someone not in the room";
  r.deliveries.strays = 0;
  r.never_readers = 2;
  r.never_disconnected = 1;
  EXPECT_FALSE(r.Clean()) << "a never-reader was not disconnected";
}

TEST(FleetReport, JsonCarriesTheNumbers) {
  FleetReport r = CleanReport(100, 10);
  r.scenario = "steady \"chat\"";
  r.seconds = 2;
  r.bots = 50;
  for (uint64_t v = 1; v <= 100; ++v) r.latency_ns.Record(v * 1000);
  const std::string json = ToJson(r);
  EXPECT_NE(json.find("\"scenario\": \"steady \\\"chat\\\"\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"deliveries_per_s\": 500.0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"clean\": true"), std::string::npos) << json;
  EXPECT_NE(json.find("\"p50\": 50."), std::string::npos) << json;  // within 1/64
  const std::string table = SummaryTable(r);
  EXPECT_NE(table.find("clean: every message delivered once"), std::string::npos) << table;
}

}  // namespace
}  // namespace keel::bots
