// The chat server and its bots together over 127.0.0.1 (issue 7, "Must
// show"): an in-process ChatServer for most cases, the real keel_chat_server
// process for SIGTERM. Every wait is bounded.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/chat/chat_fixture.h"

namespace keel::chat {
namespace {

using namespace std::chrono_literals;
namespace nt = keel::net::testing;
using testing::ChatFixture;
using testing::RawClient;

// Also with room broadcasts waking each IO loop once per 3 members
// (--broadcast-wake-batch 3, a chunk that does not divide the room's 10):
// nobody is skipped or repeated, and the loops were woken less often than
// flushes were posted to them (without batching every post from a worker
// asks for a wake-up).
class ChatFleet : public ChatFixture, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(ChatFleet, FiftyBotsInFiveRoomsGetEveryMessageOnceInOrder) {
  ChatConfig config;
  config.broadcast_wake_batch = GetParam();
  Start(config);
  const bots::FleetReport r = bots::RunFleet(Fleet(50, 5, 2));
  EXPECT_EQ(r.logins_ok, 50u);
  EXPECT_GT(r.sent, 0u);
  EXPECT_EQ(r.own_echoes, r.sent);
  EXPECT_EQ(r.deliveries.lost, 0u);
  EXPECT_EQ(r.deliveries.duplicates, 0u);
  EXPECT_EQ(r.deliveries.delivered, r.sent * 10) << "each message reaches the 10 members of its room";
  EXPECT_EQ(r.kicks + r.disconnects + r.server_errors, 0u);
  const net::NetStats st = service_->stats();
  if (GetParam() == 0) {
    EXPECT_GE(st.wake_requests, st.flush_posts);
  } else {
    EXPECT_LT(st.wake_requests, st.flush_posts) << "the wake batch did not batch";
  }
}

INSTANTIATE_TEST_SUITE_P(WakeBatch, ChatFleet, ::testing::Values(0u, 3u, ChatConfig{}.broadcast_wake_batch),
                         [](const ::testing::TestParamInfo<uint32_t>& i) {
                           // By position too: the default may equal 0 or 3 one day.
                           if (i.index == 2) return "Default" + std::to_string(i.param);
                           return i.param == 0 ? std::string("PerSend") : "Every" + std::to_string(i.param);
                         });

TEST_F(ChatFixture, DuplicateNicknameIsRefused) {
  Start();
  RawClient a(service_->port()), b(service_->port());
  EXPECT_EQ(a.Login("alice"), ERROR_NONE);
  EXPECT_EQ(b.Login("alice"), ERROR_NICKNAME_TAKEN);
  EXPECT_EQ(b.Login("alice2"), ERROR_NONE) << "a refused login may try another name";
}

TEST_F(ChatFixture, InvalidNicknamesAreRefused) {
  Start();
  RawClient a(service_->port());
  EXPECT_EQ(a.Login(""), ERROR_NICKNAME_INVALID);
  EXPECT_EQ(a.Login("x"), ERROR_NICKNAME_INVALID);
  EXPECT_EQ(a.Login("bad\x01name"), ERROR_NICKNAME_INVALID);
  EXPECT_EQ(a.Login("waytoolongnickname-really"), ERROR_NICKNAME_INVALID);
  EXPECT_EQ(a.Login("fine"), ERROR_NONE);
}

TEST_F(ChatFixture, WhisperReachesOnlyItsTarget) {
  Start();
  RawClient a(service_->port()), b(service_->port()), c(service_->port());
  ASSERT_EQ(a.Login("anna"), ERROR_NONE);
  ASSERT_EQ(b.Login("bert"), ERROR_NONE);
  ASSERT_EQ(c.Login("carl"), ERROR_NONE);
  Whisper w;
  w.set_to("bert");
  w.set_text("psst");
  a.Send(w);
  WhisperMessage got;
  ASSERT_TRUE(b.Expect(kWhisperMessageId, got));
  EXPECT_EQ(got.from(), "anna");
  EXPECT_EQ(got.text(), "psst");
  // carl's next frame is the answer to his own heartbeat: nothing came before it.
  Heartbeat hb;
  hb.set_nonce(42);
  c.Send(hb);
  auto f = c.Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->first, kHeartbeatAckId);
  w.set_to("nobody");
  a.Send(w);
  Error e;
  ASSERT_TRUE(a.Expect(kErrorId, e));
  EXPECT_EQ(e.code(), ERROR_USER_NOT_FOUND);
}

TEST_F(ChatFixture, MalformedBotsAreKickedAndNobodyElseLosesAnything) {
  Start();
  auto o = Fleet(30, 3, 2);
  o.scenario = "malformed";
  const bots::FleetReport r = bots::RunFleet(o);
  EXPECT_EQ(r.malformed_bots, 3u);
  EXPECT_EQ(r.malformed_kicked, 3u);
  EXPECT_EQ(r.logins_ok, 27u);
  EXPECT_EQ(r.own_echoes, r.sent);
  EXPECT_EQ(r.deliveries.lost + r.deliveries.duplicates, 0u);
  EXPECT_EQ(r.kicks + r.disconnects, 0u) << "a well-behaved bot was dropped";
  EXPECT_EQ(service_->stats().Disconnects(net::DisconnectReason::kProtocolError), 3u);
}

TEST_F(ChatFixture, NeverReadingClientIsDroppedAsSlowConsumerOthersKeepP99) {
  // The server's own kick (with a notice) comes at half the grace, on the
  // 50 ms ticker; the net layer's silent close at the grace. 2 s leaves the
  // ticker a second to win even on a loaded machine.
  Start(SlowConsumerConfig(2000, 256 * 1024));
  StartTicker();
  RawClient slow(service_->port(), 4096);
  ASSERT_EQ(slow.Login("sloth"), ERROR_NONE);
  ASSERT_TRUE(slow.CreateRoom("room0"));
  // From now on `slow` never reads.
  auto o = Fleet(30, 1, 4);
  o.rate = 10;
  o.text_bytes = 400;
  const bots::FleetReport r = bots::RunFleet(o);
  EXPECT_TRUE(nt::WaitFor([&] { return service_->stats().Disconnects(net::DisconnectReason::kSlowConsumer) >= 1; }, 10s));
  EXPECT_EQ(server_->counters().slow_consumer_kicks.load(), 1u) << "kicked by the server, with a notice";
  EXPECT_EQ(r.own_echoes, r.sent);
  EXPECT_EQ(r.deliveries.lost + r.deliveries.duplicates, 0u);
  EXPECT_EQ(r.kicks + r.disconnects, 0u);
  EXPECT_LT(r.latency_ns.Percentile(0.99), 250'000'000u) << "p99 over 250 ms";
}

TEST_F(ChatFixture, LoginDeadlineKicksWithTheReason) {
  ChatConfig config;
  config.login_deadline_ms = 100;
  Start(config);
  RawClient idle(service_->port());
  RawClient quick(service_->port());
  ASSERT_EQ(quick.Login("quick"), ERROR_NONE);
  // Tick until the deadline has passed for `idle` (its session is created,
  // and its clock started, on its IO thread: a fixed sleep may come too soon).
  ASSERT_TRUE(nt::WaitFor([&] {
    server_->Tick();
    return server_->counters().kicks.load() >= 1;
  }, 10s));
  Kicked kicked;
  ASSERT_TRUE(idle.Expect(kKickedId, kicked));
  EXPECT_EQ(kicked.reason(), "login deadline");
  EXPECT_FALSE(idle.Next(2s).has_value()) << "the kicked session stays open";
  Heartbeat hb;
  quick.Send(hb);
  HeartbeatAck ack;
  EXPECT_TRUE(quick.Expect(kHeartbeatAckId, ack)) << "a logged-in session was kicked";
}

TEST_F(ChatFixture, LongMessagesAndFloodsGetErrorsNotBroadcasts) {
  ChatConfig config;
  config.room.max_text_bytes = 16;
  config.say_per_second = 1;
  config.say_burst = 2;
  Start(config);
  RawClient a(service_->port());
  ASSERT_EQ(a.Login("anna"), ERROR_NONE);
  ASSERT_TRUE(a.CreateRoom("lobby"));
  keel::chat::Say say;
  say.set_text(std::string(17, 'x'));
  a.Send(say);
  Error e;
  ASSERT_TRUE(a.Expect(kErrorId, e));
  EXPECT_EQ(e.code(), ERROR_MESSAGE_TOO_LONG);
  say.set_text("hi");
  for (int i = 0; i < 3; ++i) a.Send(say);
  // Errors come from the IO thread, messages from the room: any interleaving.
  std::vector<uint64_t> seqs;
  int rate_errors = 0;
  while (seqs.size() + static_cast<size_t>(rate_errors) < 3) {
    auto f = a.Next();
    ASSERT_TRUE(f.has_value());
    if (f->first == kRoomMessageId) {
      RoomMessage m;
      ASSERT_TRUE(m.ParseFromString(f->second));
      seqs.push_back(m.seq());
    } else if (f->first == kErrorId) {
      ASSERT_TRUE(e.ParseFromString(f->second));
      EXPECT_EQ(e.code(), ERROR_RATE_LIMITED);
      ++rate_errors;
    }
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(rate_errors, 1);
}

// Says that reach a room back to back run as one batch (one buffer per
// member): every member still gets each message once, in order, and
// deliveries_out counts one per message per member.
TEST_F(ChatFixture, PipelinedBurstOfSaysReachesEveryMemberOnceInOrder) {
  Start(BurstConfig());
  RawClient talker(service_->port()), listener(service_->port());
  ASSERT_EQ(talker.Login("talker"), ERROR_NONE);
  ASSERT_EQ(listener.Login("listener"), ERROR_NONE);
  ASSERT_TRUE(talker.CreateRoom("lobby"));
  ASSERT_TRUE(listener.JoinRoom("lobby"));
  constexpr uint64_t kSays = 1000;
  const std::string padding(1100, '.');
  std::vector<uint8_t> burst;
  keel::chat::Say say;
  for (uint64_t i = 1; i <= kSays; ++i) {
    say.set_text(std::to_string(i) + padding);
    say.set_client_seq(i);
    RawClient::AppendFrame(burst, say);
  }
  ASSERT_TRUE(talker.SendBytes(burst));
  for (RawClient* c : {&talker, &listener}) {
    for (uint64_t i = 1; i <= kSays; ++i) {
      RoomMessage m;
      ASSERT_TRUE(c->Expect(kRoomMessageId, m)) << "message " << i;
      ASSERT_EQ(m.seq(), i);
      ASSERT_EQ(m.client_seq(), i);
      ASSERT_EQ(m.text(), std::to_string(i) + padding);
    }
  }
  // Counted after the room's Sends, so not necessarily by the time the
  // clients read: wait for it, then check it is exact.
  auto& out = server_->counters().deliveries_out;
  EXPECT_TRUE(nt::WaitFor([&] { return out.load() >= 2 * kSays; }, 10s));
  EXPECT_EQ(out.load(), 2 * kSays);
  EXPECT_EQ(server_->counters().errors.load(), 0u);
}

// A Join posted while a batch of Says is still open must not let the
// joiner's own next Say run before its Join (it would be NOT_IN_ROOM).
TEST_F(ChatFixture, SayPipelinedAfterJoinDuringABurstIsBroadcastAfterTheJoin) {
  Start(BurstConfig());
  RawClient talker(service_->port());
  ASSERT_EQ(talker.Login("talker"), ERROR_NONE);
  ASSERT_TRUE(talker.CreateRoom("lobby"));
  keel::chat::Say say;
  say.set_text(std::string(1100, 'c'));
  JoinRoom join;
  join.set_name("lobby");
  for (int round = 0; round < 10; ++round) {
    RawClient joiner(service_->port());
    ASSERT_EQ(joiner.Login("joiner" + std::to_string(round)), ERROR_NONE);
    std::vector<uint8_t> burst, pipelined;
    for (int i = 0; i < 300; ++i) RawClient::AppendFrame(burst, say);
    RawClient::AppendFrame(pipelined, join);
    keel::chat::Say own;
    own.set_text("mine");
    RawClient::AppendFrame(pipelined, own);
    ASSERT_TRUE(talker.SendBytes(burst));
    ASSERT_TRUE(joiner.SendBytes(pipelined));
    RoomJoined joined;
    ASSERT_TRUE(joiner.ExpectJoined(&joined));
    // Everything after the join, in order, up to and including its own message.
    uint64_t last = joined.last_seq();
    while (true) {
      auto f = joiner.Next();
      ASSERT_TRUE(f.has_value()) << "round " << round << ": no echo of the joiner's message";
      ASSERT_NE(f->first, kErrorId) << "round " << round << ": the Say ran before the Join";
      if (f->first != kRoomMessageId) continue;
      RoomMessage m;
      ASSERT_TRUE(m.ParseFromString(f->second));
      ASSERT_EQ(m.seq(), last + 1);
      last = m.seq();
      if (m.text() == "mine") break;
    }
    // Drain the talker's echoes of this round's burst.
    for (int i = 0; i < 301;) {
      auto f = talker.Next();
      ASSERT_TRUE(f.has_value());
      if (f->first == kRoomMessageId) ++i;
    }
  }
  EXPECT_EQ(server_->counters().errors.load(), 0u);
}

// The real program: SIGTERM in the middle of a run. Every message a sender
// saw acknowledged reached every member present, and the exit code is 0.
TEST(ChatServerProcess, SigtermMidRunDeliversEveryAcknowledgedMessageAndExitsZero) {
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::execl(KEEL_CHAT_SERVER_PATH, KEEL_CHAT_SERVER_PATH, "--host", "127.0.0.1", "--port", "0",
            "--stats-interval", "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  FILE* child_out = ::fdopen(out[0], "r");
  char line[256] = {};
  unsigned port = 0;
  while (port == 0 && std::fgets(line, sizeof line, child_out) != nullptr) {
    std::sscanf(line, "listening on port %u", &port);
  }
  ASSERT_NE(port, 0u) << "the server did not start";
  bots::FleetOptions o;
  o.port = static_cast<uint16_t>(port);
  o.bots = 20;
  o.rooms = 2;
  o.rate = 10;
  o.duration_s = 3;
  o.drain_s = 1;
  o.on_ready = [pid] {
    std::thread([pid] {
      std::this_thread::sleep_for(1s);
      ::kill(pid, SIGTERM);
    }).detach();
  };
  const bots::FleetReport r = bots::RunFleet(o);
  int status = 0;
  pid_t waited = 0;
  for (int i = 0; i < 100 && waited == 0; ++i) {
    waited = ::waitpid(pid, &status, WNOHANG);
    if (waited == 0) std::this_thread::sleep_for(100ms);
  }
  if (waited == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "the server did not exit within 10 s of SIGTERM";
  }
  std::fclose(child_out);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(r.logins_ok, 20u);
  EXPECT_GT(r.own_echoes, 0u);
  EXPECT_EQ(r.deliveries.lost, 0u) << "an acknowledged message missed a member";
  EXPECT_EQ(r.deliveries.duplicates, 0u);
}

}  // namespace
}  // namespace keel::chat
