// The chat server's kicks and refusals over 127.0.0.1 (issue 7): the idle
// timeout, slow consumers kicked with a notice while everyone else loses
// nothing, and the room backlog limit.
// Timing bounds are generous (loaded machines, sanitizers): the tests assert
// what happens, never how fast.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/chat/chat_fixture.h"

namespace keel::chat {
namespace {

using namespace std::chrono_literals;
using testing::ChatFixture;
using testing::RawClient;
namespace nt = keel::net::testing;

TEST_F(ChatFixture, IdleTimeoutKicksASilentClientButNotAnActiveOne) {
  ChatConfig config;
  config.idle_timeout_ms = 3000;
  Start(config);
  StartTicker();
  RawClient silent(service_->port()), active(service_->port());
  ASSERT_EQ(silent.Login("silent"), ERROR_NONE);
  ASSERT_EQ(active.Login("active"), ERROR_NONE);
  // `active` sends a heartbeat every 100 ms (30 per timeout) until the silent
  // one is kicked, then for one more timeout.
  Heartbeat hb;
  auto beat_until = [&](auto done) {
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (!done() && std::chrono::steady_clock::now() < give_up) {
      hb.set_nonce(hb.nonce() + 1);
      ASSERT_TRUE(active.Send(hb));
      auto f = active.Next(5s);
      ASSERT_TRUE(f.has_value()) << "the active client was closed";
      ASSERT_EQ(f->first, kHeartbeatAckId) << "the active client got something else (a kick?)";
      std::this_thread::sleep_for(100ms);
    }
  };
  auto kicked = [&] { return server_->counters().idle_kicks.load() >= 1; };
  beat_until(kicked);
  ASSERT_TRUE(kicked());
  const auto after_kick = std::chrono::steady_clock::now();
  beat_until([&] { return std::chrono::steady_clock::now() - after_kick > 3500ms; });

  Kicked notice;
  ASSERT_TRUE(silent.Expect(kKickedId, notice));
  EXPECT_EQ(notice.reason(), "idle timeout");
  EXPECT_FALSE(silent.Next(5s).has_value()) << "closed after the notice";
  EXPECT_TRUE(nt::WaitFor([&] { return server_->Users() == 1; }, 10s));
  EXPECT_EQ(server_->counters().idle_kicks.load(), 1u);
}

TEST_F(ChatFixture, IdleTimeoutZeroNeverKicks) {
  ChatConfig config;
  config.idle_timeout_ms = 0;
  Start(config);
  RawClient quiet(service_->port());
  ASSERT_EQ(quiet.Login("quiet"), ERROR_NONE);
  // A manual clock far in the future: past any timeout but the disabled one
  // (the login deadline only concerns sessions not logged in).
  server_->Tick(NowNs(std::chrono::hours(24)));
  Heartbeat hb;
  hb.set_nonce(7);
  quiet.Send(hb);
  HeartbeatAck ack;
  EXPECT_TRUE(quiet.Expect(kHeartbeatAckId, ack));
  EXPECT_EQ(server_->counters().kicks.load(), 0u);
}

// Tick looks only at sessions with a login-deadline or idle check due (and
// those over the soft limit), not at every session every time, and still
// kicks exactly the ones past their deadline.
TEST_F(ChatFixture, TickLooksOnlyAtSessionsWhoseCheckIsDue) {
  ChatConfig config;
  config.login_deadline_ms = 10'000;
  config.idle_timeout_ms = 60'000;
  Start(config);
  const int64_t t0 = NowNs();
  constexpr int64_t kS = 1'000'000'000;
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(std::make_unique<RawClient>(service_->port()));
    ASSERT_EQ(clients.back()->Login("user" + std::to_string(i)), ERROR_NONE);
  }
  RawClient anonymous(service_->port());  // never logs in
  // Not sessions_open: it counts the anonymous session before its
  // OnConnected has scheduled its check.
  ASSERT_TRUE(nt::WaitFor([&] { return server_->PendingChecks() == 41; }, 10s));
  EXPECT_EQ(server_->Tick(t0), 0u) << "nothing is due yet";
  // Everyone's login check comes due (deadline 10 s, plus the test's own
  // time to connect): the 40 logged in are rescheduled at their idle
  // deadline, the anonymous one is kicked.
  EXPECT_EQ(server_->Tick(t0 + 40 * kS), 41u);
  EXPECT_EQ(server_->counters().kicks.load(), 1u);
  EXPECT_EQ(server_->Tick(t0 + 41 * kS), 0u) << "the rescheduled checks are not due yet";
  // Past the idle timeout for all 40.
  EXPECT_EQ(server_->Tick(t0 + 200 * kS), 40u);
  EXPECT_EQ(server_->counters().idle_kicks.load(), 40u);
  EXPECT_EQ(server_->Tick(t0 + 201 * kS), 0u) << "a kicked session is not checked again";
  Kicked kicked;
  ASSERT_TRUE(anonymous.Expect(kKickedId, kicked));
  EXPECT_EQ(kicked.reason(), "login deadline");
  ASSERT_TRUE(clients[0]->Expect(kKickedId, kicked));
  EXPECT_EQ(kicked.reason(), "idle timeout");
}

// A reader that stalls past the soft limit is kicked; its backlog is dropped,
// so once it reads again it finds a gap-free prefix of the room's messages,
// then the notice after little more than the kernel's buffers, then the end.
TEST_F(ChatFixture, StalledReaderIsKickedAsSlowConsumerAndReadsTheNoticeWhenItCatchesUp) {
  // The server kicks after 4 s over the soft limit; the net layer would close at 8 s.
  Start(NoSayLimit(SlowConsumerConfig(8000, 1024 * 1024)));
  StartTicker();
  RawClient stalled(service_->port(), 4096), talker(service_->port());
  ASSERT_NO_FATAL_FAILURE(StalledAndTalkerInLobby(stalled, talker));
  // `stalled` reads nothing from here; `talker` reads its own echoes.
  TalkUntilKicked(talker, 0);
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(server_->counters().slow_consumer_kicks.load(), 1u);
  // Catch up: messages in order with no gap, then the notice, then the close.
  uint64_t last_seq = 0;
  std::size_t bytes_before_notice = 0;
  std::string reason;
  while (auto f = stalled.Next(10s)) {
    if (f->first == kRoomMessageId) {
      EXPECT_TRUE(reason.empty()) << "a message after the notice";
      bytes_before_notice += f->second.size();
      RoomMessage m;
      ASSERT_TRUE(m.ParseFromString(f->second));
      EXPECT_EQ(m.seq(), last_seq + 1);
      last_seq = m.seq();
    } else if (f->first == kKickedId) {
      Kicked k;
      ASSERT_TRUE(k.ParseFromString(f->second));
      reason = k.reason();
    }
  }
  EXPECT_EQ(reason, "slow consumer");
  EXPECT_GT(last_seq, 0u);
  // The kick came with more than the soft limit (64 KiB) queued; with the
  // backlog dropped the notice arrives after the socket buffers (16 KiB
  // SO_SNDBUF, 4 KiB SO_RCVBUF, both doubled by the kernel) and at most one
  // partly written batch (<= 16 KiB of frames).
  EXPECT_LT(bytes_before_notice, 64u * 1024) << "the notice waited behind the backlog";
  EXPECT_GT(service_->stats().notice_dropped_bytes, 0u);
  // The server shut down its side after the notice and waits for ours
  // (NetConfig::linger_close) before it counts the disconnect.
  ::close(stalled.fd);
  stalled.fd = -1;
  EXPECT_TRUE(nt::WaitFor(
      [&] { return service_->stats().Disconnects(net::DisconnectReason::kSlowConsumer) == 1; }));
  // The talker is untouched.
  Heartbeat hb;
  talker.Send(hb);
  HeartbeatAck ack;
  EXPECT_TRUE(talker.Expect(kHeartbeatAckId, ack));
}

// A member kicked by a broadcast (its queue near the hard limit) gets
// nothing more, and deliveries_out counts only what was queued: every
// message the talker got back plus what was queued to the kicked member
// before its kick, not one per member present.
TEST_F(ChatFixture, DeliveriesOutCountsOnlyWhatWasQueuedNotKickedMembers) {
  // No ticker and a long grace: only the broadcast's hard-limit check kicks.
  Start(NoSayLimit(SlowConsumerConfig(60000, 128 * 1024)));
  RawClient stalled(service_->port(), 4096), talker(service_->port());
  ASSERT_NO_FATAL_FAILURE(StalledAndTalkerInLobby(stalled, talker));
  uint64_t after_kick = 0;
  const uint64_t echoed = TalkUntilKicked(talker, 20, &after_kick);
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(after_kick, 20u) << "never kicked";
  uint64_t read = 0;
  bool notice = false;
  while (auto f = stalled.Next(10s)) {
    if (f->first == kRoomMessageId) ++read;
    if (f->first == kKickedId) notice = true;
  }
  EXPECT_TRUE(notice);
  EXPECT_LT(read, echoed) << "the kicked member got messages broadcast after its kick";
  // Queued to the stalled member: every message broadcast before the one that
  // kicked it (the talker may see that one's echo before or after the kick
  // counter moves: +-1). The kick dropped what the kernel had not taken, so
  // it read at most that many. Counting every member present (the old bug)
  // would give 2 * echoed.
  const uint64_t queued_to_stalled = echoed - after_kick;
  EXPECT_LE(read, queued_to_stalled);
  // Counted after the room's Sends: wait for the lower bound first.
  EXPECT_TRUE(nt::WaitFor(
      [&] { return server_->counters().deliveries_out.load() >= echoed + queued_to_stalled - 1; }, 10s));
  const uint64_t out = server_->counters().deliveries_out.load();
  EXPECT_GE(out, echoed + queued_to_stalled - 1);
  EXPECT_LE(out, echoed + queued_to_stalled);
}

// Holds a room's worker: a job that blocks the room's queue until Release()
// (or the end of the test, so that a failed assertion cannot hang the
// fixture's draining shutdown). The room's later jobs wait behind it.
class HeldRoom {
 public:
  explicit HeldRoom(Room& room) {
    // Shared with the job: it may still be returning from its wait when
    // this object is gone.
    if (!room.Post([flags = flags_] {
          flags->held.store(true);
          flags->held.notify_all();
          flags->release.wait(false);
        })) {
      ADD_FAILURE() << "the room refused the holding job";
      return;
    }
    // Bounded: a holding job that never starts fails the test, not hangs it.
    // (The fixture runs 2 logic workers, so other rooms keep running.)
    if (!nt::WaitFor([&] { return flags_->held.load(); }, 10s)) {
      ADD_FAILURE() << "the holding job did not start";
      Release();
    }
  }
  ~HeldRoom() { Release(); }
  void Release() {
    flags_->release.store(true);
    flags_->release.notify_all();
  }

 private:
  struct Flags {
    std::atomic<bool> held{false};
    std::atomic<bool> release{false};
  };
  std::shared_ptr<Flags> flags_ = std::make_shared<Flags>();
};

// Reads `c`'s frames until `errors` Errors have come, skipping presence
// events; any RoomMessage meanwhile fails (the room's worker is held).
void ExpectRoomBusyErrors(RawClient& c, int errors, const std::string& room) {
  for (int seen = 0; seen < errors;) {
    auto f = c.Next(10s);
    ASSERT_TRUE(f.has_value()) << "after " << seen << " errors";
    ASSERT_NE(f->first, kRoomMessageId) << "a message went out while the room was held";
    if (f->first != kErrorId) continue;
    Error e;
    ASSERT_TRUE(e.ParseFromString(f->second));
    EXPECT_EQ(e.code(), ERROR_ROOM_BUSY);
    EXPECT_EQ(e.detail(), room);
    ++seen;
  }
}

// Reads `c`'s RoomMessages (skipping presence events) and checks they are
// exactly `texts`, seqs first_seq.. in order, then nothing but the reply to
// a heartbeat (a message past the last would come before it).
void ExpectMessagesThenNothing(RawClient& c, uint64_t first_seq, const std::vector<std::string>& texts) {
  for (std::size_t i = 0; i < texts.size(); ++i) {
    RoomMessage m;
    ASSERT_TRUE(c.Expect(kRoomMessageId, m)) << "message " << i;
    EXPECT_EQ(m.seq(), first_seq + i);
    EXPECT_EQ(m.client_seq(), i + 1);
    EXPECT_EQ(m.text(), texts[i]);
  }
  Heartbeat hb;
  ASSERT_TRUE(c.Send(hb));
  while (auto f = c.Next(10s)) {
    ASSERT_NE(f->first, kRoomMessageId) << "a refused message was delivered";
    if (f->first == kHeartbeatAckId) return;
  }
  ADD_FAILURE() << "no heartbeat ack";
}

// A room whose worker is held accepts Says up to its backlog limit, refuses
// the rest (and Joins) with ROOM_BUSY, counted; once released, its members
// get exactly the accepted Says, once, in order. Another room is served
// meanwhile, and the refused joiner stays where it was.
TEST_F(ChatFixture, RoomBacklogLimitRefusesSaysPastItAndDeliversTheAcceptedInOrder) {
  ChatConfig config = NoSayLimit();
  config.room_backlog = 8;
  Start(config);
  RawClient talker(service_->port()), listener(service_->port()), elsewhere(service_->port());
  ASSERT_EQ(talker.Login("talker"), ERROR_NONE);
  ASSERT_EQ(listener.Login("listener"), ERROR_NONE);
  ASSERT_EQ(elsewhere.Login("elsewhere"), ERROR_NONE);
  ASSERT_TRUE(talker.CreateRoom("held"));
  ASSERT_TRUE(listener.JoinRoom("held"));
  ASSERT_TRUE(elsewhere.CreateRoom("free"));
  const std::shared_ptr<Room> room = server_->FindRoom("held");
  ASSERT_NE(room, nullptr);
  HeldRoom hold(*room);

  constexpr uint64_t kSays = 20, kAccepted = 8;
  std::vector<uint8_t> burst;
  std::vector<std::string> texts;
  keel::chat::Say say;
  for (uint64_t i = 1; i <= kSays; ++i) {
    say.set_text("say " + std::to_string(i));
    say.set_client_seq(i);
    RawClient::AppendFrame(burst, say);
    if (i <= kAccepted) texts.push_back(say.text());
  }
  ASSERT_TRUE(talker.SendBytes(burst));
  ASSERT_NO_FATAL_FAILURE(ExpectRoomBusyErrors(talker, static_cast<int>(kSays - kAccepted), "held"));
  // A Join is refused too, before its session leaves the room it is in.
  JoinRoom join;
  join.set_name("held");
  ASSERT_TRUE(elsewhere.Send(join));
  ASSERT_NO_FATAL_FAILURE(ExpectRoomBusyErrors(elsewhere, 1, "held"));
  EXPECT_EQ(server_->counters().room_busy.load(), kSays - kAccepted + 1);
  EXPECT_EQ(server_->counters().messages_in.load(), kAccepted);
  // The other room is served while this one is held, and `elsewhere` is still in it.
  say.set_text("still here");
  say.set_client_seq(1);
  ASSERT_TRUE(elsewhere.Send(say));
  RoomMessage m;
  ASSERT_TRUE(elsewhere.Expect(kRoomMessageId, m));
  EXPECT_EQ(m.room(), "free");
  EXPECT_EQ(m.text(), "still here");

  hold.Release();
  for (RawClient* c : {&talker, &listener}) ASSERT_NO_FATAL_FAILURE(ExpectMessagesThenNothing(*c, 1, texts));
  // Counted after the room's Sends, so not necessarily by the time the
  // clients read: wait for it, then check it is exact.
  auto& out = server_->counters().deliveries_out;
  EXPECT_TRUE(nt::WaitFor([&] { return out.load() >= 2u * kAccepted + 1; }, 10s));
  EXPECT_EQ(out.load(), 2u * kAccepted + 1) << "the 8 accepted to 2 members, \"still here\" to 1";
  // The backlog emptied: the room takes Says again.
  say.set_text("after");
  ASSERT_TRUE(talker.Send(say));
  ASSERT_NO_FATAL_FAILURE(ExpectMessagesThenNothing(listener, kAccepted + 1, {"after"}));
  EXPECT_EQ(server_->counters().room_busy.load(), kSays - kAccepted + 1);
}

// Rooms of one member, and two users logged in.
class ChatOneMemberRooms : public ChatFixture {
 protected:
  void StartWithTwoUsers(const std::string& a, const std::string& b) {
    ChatConfig config = NoSayLimit();
    config.room.max_members = 1;
    Start(config);
    first_ = std::make_unique<RawClient>(service_->port());
    second_ = std::make_unique<RawClient>(service_->port());
    ASSERT_EQ(first_->Login(a), ERROR_NONE);
    ASSERT_EQ(second_->Login(b), ERROR_NONE);
  }
  void TearDown() override {
    // Closed first, as a test's local clients are: the server's lingering
    // close waits for them (up to its shutdown timeout) otherwise.
    first_.reset();
    second_.reset();
    ChatFixture::TearDown();
  }
  // The client is still in `room`: its Say comes back from there.
  static void ExpectStillIn(RawClient& client, const std::string& room, const std::string& text) {
    keel::chat::Say say;
    say.set_text(text);
    say.set_client_seq(1);
    ASSERT_TRUE(client.Send(say));
    RoomMessage m;
    ASSERT_TRUE(client.Expect(kRoomMessageId, m)) << "the session left its room";
    EXPECT_EQ(m.room(), room);
    EXPECT_EQ(m.text(), text);
  }
  std::unique_ptr<RawClient> first_, second_;
};

// A full room refuses a Join with ROOM_FULL before the session leaves the
// room it is in: it keeps talking there.
TEST_F(ChatOneMemberRooms, FullRoomRefusesAJoinAndTheSessionStaysInItsRoom) {
  ASSERT_NO_FATAL_FAILURE(StartWithTwoUsers("owner", "other"));
  RawClient& owner = *first_;
  RawClient& other = *second_;
  ASSERT_TRUE(owner.CreateRoom("solo"));
  ASSERT_TRUE(other.CreateRoom("mine"));
  ASSERT_TRUE(nt::WaitFor([&] {
    const auto solo = server_->FindRoom("solo");
    return solo != nullptr && solo->size() == 1;
  }, 10s));
  JoinRoom join;
  join.set_name("solo");
  ASSERT_TRUE(other.Send(join));
  Error e;
  ASSERT_TRUE(other.Expect(kErrorId, e));
  EXPECT_EQ(e.code(), ERROR_ROOM_FULL);
  ExpectStillIn(other, "mine", "still mine");
}

// Two Joins race for the last seat of a room whose worker is held: the
// first takes the seat and is queued; the second is refused at once with
// ROOM_FULL, still in its old room (it keeps talking there), instead of
// leaving its room and being refused by the room later.
TEST_F(ChatOneMemberRooms, TwoJoinsRaceForTheLastSeatAndTheLoserStaysInItsRoom) {
  ASSERT_NO_FATAL_FAILURE(StartWithTwoUsers("first", "second"));
  RawClient& first = *first_;
  RawClient& second = *second_;
  ASSERT_TRUE(second.CreateRoom("mine"));
  ASSERT_TRUE(server_->CreateEmptyRoom("solo"));
  const std::shared_ptr<Room> solo = server_->FindRoom("solo");
  ASSERT_NE(solo, nullptr);
  {
    HeldRoom hold(*solo);
    const std::size_t held = solo->Depth();  // the running holder counts until its slice ends
    JoinRoom join;
    join.set_name("solo");
    ASSERT_TRUE(first.Send(join));
    ASSERT_TRUE(nt::WaitFor([&] { return solo->Depth() >= held + 1; }, 10s));
    ASSERT_EQ(solo->size(), 0u) << "the first Join ran although the room is held";
    ASSERT_TRUE(second.Send(join));
    Error e;
    ASSERT_TRUE(second.Expect(kErrorId, e)) << "the second Join was not refused while the room was held";
    EXPECT_EQ(e.code(), ERROR_ROOM_FULL);
    EXPECT_EQ(solo->Depth(), held + 1) << "the refused Join was queued";
  }
  ASSERT_TRUE(first.ExpectJoined());
  ExpectStillIn(second, "mine", "still mine");
  // The seat frees when the member leaves.
  ASSERT_TRUE(first.Send(LeaveRoom()));
  JoinRoom again;
  again.set_name("solo");
  ASSERT_TRUE(nt::WaitFor([&] { return solo->size() == 0; }, 10s));
  ASSERT_TRUE(second.Send(again));
  ASSERT_TRUE(second.ExpectJoined());
}

// A session that disconnects with its Join still queued gives its seat
// back: the Join runs, then the disconnect's Leave, and the room can be
// joined again.
TEST_F(ChatOneMemberRooms, ADisconnectWithItsJoinQueuedGivesTheSeatBack) {
  ASSERT_NO_FATAL_FAILURE(StartWithTwoUsers("first", "second"));
  ASSERT_TRUE(server_->CreateEmptyRoom("solo"));
  const std::shared_ptr<Room> solo = server_->FindRoom("solo");
  ASSERT_NE(solo, nullptr);
  {
    HeldRoom hold(*solo);
    const std::size_t held = solo->Depth();
    JoinRoom join;
    join.set_name("solo");
    ASSERT_TRUE(first_->Send(join));
    ASSERT_TRUE(nt::WaitFor([&] { return solo->Depth() >= held + 1; }, 10s));
    first_.reset();  // disconnects; its Leave is queued behind the Join
    ASSERT_TRUE(nt::WaitFor([&] { return solo->Depth() >= held + 2; }, 10s));
  }
  ASSERT_TRUE(nt::WaitFor([&] { return solo->Depth() == 0 && solo->size() == 0; }, 10s));
  ASSERT_TRUE(second_->JoinRoom("solo")) << "the disconnected session kept its seat";
}

// The byte limit counts the text of the Says waiting: a Say that would take
// it past the limit is refused, a shorter one that fits is still accepted.
TEST_F(ChatFixture, RoomBacklogBytesLimitRefusesASayThatWouldPassIt) {
  ChatConfig config = NoSayLimit();
  config.room_backlog_bytes = 1000;
  Start(config);
  RawClient talker(service_->port());
  ASSERT_EQ(talker.Login("talker"), ERROR_NONE);
  ASSERT_TRUE(talker.CreateRoom("held"));
  const std::shared_ptr<Room> room = server_->FindRoom("held");
  ASSERT_NE(room, nullptr);
  HeldRoom hold(*room);
  std::vector<uint8_t> burst;
  std::vector<std::string> texts;
  keel::chat::Say say;
  uint64_t client_seq = 0;
  // 400 + 400 fit, a third 400 would make 1200: refused; 100 makes 900: fits.
  for (const std::size_t bytes : {std::size_t{400}, std::size_t{400}, std::size_t{400}, std::size_t{100}}) {
    say.set_text(std::string(bytes, static_cast<char>('a' + texts.size())));
    if (bytes == 100 || texts.size() < 2) {
      say.set_client_seq(++client_seq);
      texts.push_back(say.text());
    } else {
      say.set_client_seq(99);
    }
    RawClient::AppendFrame(burst, say);
  }
  ASSERT_TRUE(talker.SendBytes(burst));
  ASSERT_NO_FATAL_FAILURE(ExpectRoomBusyErrors(talker, 1, "held"));
  EXPECT_EQ(server_->counters().room_busy.load(), 1u);
  hold.Release();
  ASSERT_NO_FATAL_FAILURE(ExpectMessagesThenNothing(talker, 1, texts));
}

}  // namespace
}  // namespace keel::chat
