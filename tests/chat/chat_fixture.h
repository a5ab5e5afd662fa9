#pragma once
// The chat integration tests' common parts: ChatFixture (an in-process
// ChatServer on 127.0.0.1, an ephemeral port, an optional ticker) and
// RawClient (a blocking socket speaking frames, for the precise cases).
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "apps/bots/fleet.h"
#include "apps/chat_server/chat_server.h"
#include "keel/job/scheduler.h"
#include "keel/net/service.h"
#include "keel/net/testing/net_test_util.h"
#include "keel/proto/wire.h"

namespace keel::chat::testing {

namespace nt = keel::net::testing;

// A blocking client speaking frames, for the precise cases.
struct RawClient {
  int fd = -1;
  explicit RawClient(uint16_t port, int rcvbuf = 0) : fd(nt::ConnectClient(port, true, rcvbuf)) {}
  ~RawClient() {
    if (fd >= 0) ::close(fd);
  }
  template <typename M>
  bool Send(const M& msg) {
    const auto frame = proto::BuildFrame(msg);
    return nt::SendAll(fd, frame.data(), frame.size());
  }
  // The next frame: (id, payload); nullopt on close or after `timeout`.
  std::optional<std::pair<uint16_t, std::string>> Next(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    uint8_t header[4];
    if (!nt::RecvAll(fd, header, 4)) return std::nullopt;
    std::string payload(proto::LoadU16(header) - 4u, '\0');
    if (!payload.empty() && !nt::RecvAll(fd, payload.data(), payload.size())) return std::nullopt;
    return std::make_pair(proto::LoadU16(header + 2), payload);
  }
  // Skips frames until one with `id` arrives; false on close or timeout.
  template <typename M>
  bool Expect(uint16_t id, M& out, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      auto f = Next(timeout);
      if (!f) return false;
      if (f->first == id) return out.ParseFromString(f->second);
    }
    return false;
  }
  // Frames appended to one buffer, then written at once (SendBytes): the
  // server reads them in one go, or few.
  template <typename M>
  static void AppendFrame(std::vector<uint8_t>& out, const M& msg) {
    const auto frame = proto::BuildFrame(msg);
    out.insert(out.end(), frame.begin(), frame.end());
  }
  bool SendBytes(const std::vector<uint8_t>& bytes) { return nt::SendAll(fd, bytes.data(), bytes.size()); }
  ErrorCode Login(const std::string& nick) {
    keel::chat::Login login;
    login.set_nickname(nick);
    Send(login);
    LoginResult r;
    if (!Expect(kLoginResultId, r)) return static_cast<ErrorCode>(-1);
    return r.error();
  }
  // Creates (or joins) room `name` and waits for RoomJoined; false if an
  // Error or nothing came instead.
  bool CreateRoom(const std::string& name, RoomJoined* joined = nullptr) {
    keel::chat::CreateRoom create;
    create.set_name(name);
    return Send(create) && ExpectJoined(joined);
  }
  bool JoinRoom(const std::string& name, RoomJoined* joined = nullptr) {
    keel::chat::JoinRoom join;
    join.set_name(name);
    return Send(join) && ExpectJoined(joined);
  }
  bool ExpectJoined(RoomJoined* joined = nullptr) {
    RoomJoined local;
    return Expect(kRoomJoinedId, joined != nullptr ? *joined : local);
  }
};

class ChatFixture : public ::testing::Test {
 protected:
  void Start(ChatConfig config = {}) {
    config_ = config;
    job::SchedulerOptions so;
    so.groups.push_back({.name = "logic", .threads = 2, .cpus = {}});
    scheduler_ = std::make_unique<job::Scheduler>(so);
    server_ = std::make_unique<ChatServer>(config_, scheduler_->Group("logic"));
    service_ = std::make_unique<net::Service>(config_.ToNetConfig(), [this] { return server_->MakeSession(); });
    server_->Attach(service_.get());
    std::string err;
    ASSERT_TRUE(service_->Start(&err)) << err;
    ASSERT_TRUE(service_->Listen("127.0.0.1", 0, &err)) << err;
  }
  // Runs server_->Tick() every 50 ms, as main's loop does every 200 ms.
  void StartTicker() {
    ticker_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) {
        server_->Tick();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  void TearDown() override {
    if (ticker_.joinable()) {
      ticker_.request_stop();
      ticker_.join();
    }
    if (server_) {
      EXPECT_TRUE(server_->Shutdown(*scheduler_, std::chrono::seconds(5)));
    }
    service_.reset();
    server_.reset();
    scheduler_.reset();
  }
  // Steady-clock ns, `ahead` from now: a manual clock for Tick(now_ns).
  static int64_t NowNs(std::chrono::nanoseconds ahead = {}) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               (std::chrono::steady_clock::now() + ahead).time_since_epoch())
        .count();
  }
  // Small send queues and socket buffers, so that a client that does not
  // read becomes a slow consumer within a test (soft limit 64 KiB).
  static ChatConfig SlowConsumerConfig(uint32_t soft_grace_ms, std::size_t hard_limit) {
    ChatConfig config;
    config.send_soft_limit = 64 * 1024;
    config.send_soft_grace_ms = soft_grace_ms;
    config.send_hard_limit = hard_limit;
    config.socket_send_buffer = 16 * 1024;
    return config;
  }
  // Per-user message rate limits off (a test that talks flat out).
  static ChatConfig NoSayLimit(ChatConfig config = {}) {
    config.say_per_second = 1'000'000;
    config.say_burst = 1'000'000;
    return config;
  }
  // Rate limits off and frames over 1 KiB allowed, with send queues large
  // enough for a pipelined burst of a thousand of them.
  static ChatConfig BurstConfig() {
    ChatConfig config = NoSayLimit();
    config.frames_per_second = 0;
    // Frames over 1 KiB: 256 of them (the framer's limit per read) never fit
    // one read, however the kernel coalesces the writes.
    config.room.max_text_bytes = 2048;
    config.send_soft_limit = 8 * 1024 * 1024;
    config.send_hard_limit = 16 * 1024 * 1024;
    return config;
  }
  // `stalled` (a 4 KiB receive buffer, reading nothing from here) creates
  // room "lobby" and `talker` joins it.
  void StalledAndTalkerInLobby(RawClient& stalled, RawClient& talker) {
    ASSERT_EQ(stalled.Login("stalled"), ERROR_NONE);
    ASSERT_EQ(talker.Login("talker"), ERROR_NONE);
    ASSERT_TRUE(stalled.CreateRoom("lobby"));
    ASSERT_TRUE(talker.JoinRoom("lobby"));
  }
  // `talker` says 400 bytes and reads its echo back, one Say at a time,
  // until the server has kicked a slow consumer and `after_kick` more echoes
  // came back, or 60 s. Returns the echoes; *echoed_after_kick: those after
  // the kick was seen. The caller checks that the kick happened.
  uint64_t TalkUntilKicked(RawClient& talker, uint64_t after_kick, uint64_t* echoed_after_kick = nullptr) {
    keel::chat::Say say;
    say.set_text(std::string(400, 'x'));
    uint64_t echoed = 0, seen_after_kick = 0;
    auto kicked = [this] { return server_->counters().slow_consumer_kicks.load() > 0; };
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!(kicked() && seen_after_kick >= after_kick) && std::chrono::steady_clock::now() < give_up) {
      say.set_client_seq(echoed + 1);
      if (!talker.Send(say)) {
        ADD_FAILURE() << "the talker could not send";
        break;
      }
      RoomMessage m;
      if (!talker.Expect(kRoomMessageId, m)) {
        ADD_FAILURE() << "the talker lost its own message";
        break;
      }
      EXPECT_EQ(m.client_seq(), echoed + 1);
      ++echoed;
      if (kicked()) ++seen_after_kick;
      if (echoed > 2000) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // well past the limit: just wait
    }
    if (echoed_after_kick != nullptr) *echoed_after_kick = seen_after_kick;
    return echoed;
  }
  bots::FleetOptions Fleet(uint32_t bots, uint32_t rooms, double seconds) const {
    bots::FleetOptions o;
    o.port = service_->port();
    o.bots = bots;
    o.rooms = rooms;
    o.rate = 5;
    o.duration_s = seconds;
    return o;
  }

  ChatConfig config_;
  std::unique_ptr<job::Scheduler> scheduler_;
  std::unique_ptr<ChatServer> server_;
  std::unique_ptr<net::Service> service_;
  std::jthread ticker_;
};
}  // namespace keel::chat::testing
