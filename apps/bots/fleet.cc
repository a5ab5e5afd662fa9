#include "apps/bots/fleet.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "apps/bots/delivery_check.h"
#include "chat.keel.h"
#include "keel/core/log.h"
#include "keel/net/service.h"
#include "keel/proto/packet_session.h"

namespace keel::bots {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t NowNs() noexcept {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

// What the server may send a client, in any state.
const proto::ProtocolTable& ServerToClient() {
  static const proto::ProtocolTable table = [] {
    proto::ProtocolTable t;
    for (uint16_t id : {chat::kLoginResultId, chat::kRoomListId, chat::kRoomJoinedId, chat::kRoomLeftId,
                        chat::kRoomMessageId, chat::kWhisperMessageId, chat::kPresenceId,
                        chat::kHeartbeatAckId, chat::kServerNoticeId, chat::kErrorId, chat::kKickedId}) {
      t.Allow(id, 0xFF);
    }
    return t;
  }();
  return table;
}

proto::FramerLimits ClientLimits() {
  proto::FramerLimits l;
  l.max_frames_per_read = 100000;  // a broadcast burst is not an attack here
  l.frames_per_second = 0;
  return l;
}

class Bot : public proto::PacketSession {
 public:
  Bot(std::string nick, std::string room, uint32_t text_bytes)
      : PacketSession(ServerToClient(), ClientLimits(), nullptr),
        nick_(std::move(nick)),
        room_(std::move(room)),
        text_("hello from " + nick_) {
    if (text_.size() < text_bytes) text_.resize(text_bytes, '.');
  }

  std::mutex mu;
  FleetReport stats;       // this bot's numbers (guarded by mu)
  FleetReport window;      // since the last progress line (guarded by mu)
  DeliveryCheck check;     // guarded by mu
  std::atomic<bool> in_room{false};
  std::atomic<bool> closed{false};
  std::atomic<bool> closing_by_us{false};
  // The server said it is shutting down: the bot was present to the end.
  std::atomic<bool> saw_shutdown{false};
  uint64_t next_client_seq = 1;  // driver thread only

  void SaySomething() {
    chat::Say say;
    say.set_text(text_);
    say.set_client_seq(next_client_seq++);
    say.set_sent_at_ns(NowNs());
    if (Send(say)) {
      std::lock_guard lock(mu);
      ++stats.sent;
      ++window.sent;
    }
  }
  void SendGarbage() {
    const uint8_t garbage[] = {8, 0, 0x77, 0x77, 1, 2, 3, 4};  // unknown id 0x7777
    Send(std::span<const uint8_t>(garbage, sizeof garbage));
  }
  const std::string& room() const { return room_; }

 protected:
  void OnConnected() override {
    chat::Login login;
    login.set_nickname(nick_);
    Send(login);
  }

  proto::RejectReason OnFrame(const proto::Frame& frame) override {
    switch (frame.id) {
      case chat::kLoginResultId: {
        chat::LoginResult r;
        if (!proto::ParsePayload(r, frame.payload)) return proto::RejectReason::kBadPayload;
        std::lock_guard lock(mu);
        if (r.error() != chat::ERROR_NONE) {
          ++stats.login_errors;
          return proto::RejectReason::kNone;
        }
        ++stats.logins_ok;
        chat::CreateRoom create;
        create.set_name(room_);
        Send(create);
        return proto::RejectReason::kNone;
      }
      case chat::kErrorId: {
        chat::Error e;
        if (!proto::ParsePayload(e, frame.payload)) return proto::RejectReason::kBadPayload;
        if (e.code() == chat::ERROR_ROOM_EXISTS) {
          chat::JoinRoom join;
          join.set_name(room_);
          Send(join);
        } else {
          std::lock_guard lock(mu);
          ++stats.server_errors;
          ++window.server_errors;
        }
        return proto::RejectReason::kNone;
      }
      case chat::kRoomJoinedId: {
        chat::RoomJoined j;
        if (!proto::ParsePayload(j, frame.payload)) return proto::RejectReason::kBadPayload;
        std::lock_guard lock(mu);
        check.Joined(j.last_seq());
        in_room.store(true, std::memory_order_release);
        return proto::RejectReason::kNone;
      }
      case chat::kRoomMessageId: {
        chat::RoomMessage m;
        if (!proto::ParsePayload(m, frame.payload)) return proto::RejectReason::kBadPayload;
        const uint64_t now = NowNs();
        const uint64_t latency = now > m.sent_at_ns() ? now - m.sent_at_ns() : 0;
        std::lock_guard lock(mu);
        const auto before = check.counts();
        check.OnMessage(m.seq());
        const auto& after = check.counts();
        window.deliveries.delivered += after.delivered - before.delivered;
        window.deliveries.lost += after.lost - before.lost;
        window.deliveries.duplicates += after.duplicates - before.duplicates;
        stats.latency_ns.Record(latency);
        window.latency_ns.Record(latency);
        if (m.from() == nick_) ++stats.own_echoes;
        return proto::RejectReason::kNone;
      }
      case chat::kWhisperMessageId: {
        std::lock_guard lock(mu);
        ++stats.whispers_received;
        return proto::RejectReason::kNone;
      }
      case chat::kKickedId: {
        std::lock_guard lock(mu);
        ++stats.kicks;
        ++window.kicks;
        return proto::RejectReason::kNone;
      }
      case chat::kServerNoticeId:
        saw_shutdown.store(true, std::memory_order_release);
        return proto::RejectReason::kNone;
      default:
        return proto::RejectReason::kNone;  // presence, acks
    }
  }

  void OnDisconnected(net::DisconnectReason reason) override {
    if (reason == net::DisconnectReason::kServerShutdown) saw_shutdown.store(true, std::memory_order_release);
    closed.store(true, std::memory_order_release);
    if (closing_by_us.load(std::memory_order_acquire)) return;
    std::lock_guard lock(mu);
    ++stats.disconnects;
    ++window.disconnects;
    if (reason != net::DisconnectReason::kServerShutdown) {
      KEEL_LOG_DEBUG("bot {}: disconnected: {}", nick_, net::ToString(reason));
    }
  }

 private:
  const std::string nick_;
  const std::string room_;
  std::string text_;
};

using BotRef = net::RefPtr<Bot>;

}  // namespace

FleetReport RunFleet(const FleetOptions& o) {
  net::NetConfig cfg;
  cfg.io_threads = o.io_threads;
  cfg.thread_name = "bots-io";
  cfg.max_recv_buffer = 4 * 1024 * 1024;
  FleetReport report;
  report.scenario = o.scenario;
  report.bots = o.bots;
  report.rooms = o.rooms;
  const uint32_t bad = MalformedBots(o);
  std::vector<BotRef> bots;
  bots.reserve(o.bots);
  for (uint32_t i = 0; i < o.bots; ++i) {
    auto bot = net::MakeRef<Bot>(o.nick_prefix + std::to_string(i), "room" + std::to_string(i % o.rooms),
                                  o.text_bytes);
    bots.push_back(bot);
  }
  // Service::Connect makes its session with the factory: it hands out the
  // prepared bots one by one.
  std::atomic<uint32_t> next{0};
  net::Service client(cfg, [&] { return net::SessionRef(bots[next.fetch_add(1)]); });
  std::string err;
  if (!client.Start(&err)) {
    KEEL_LOG_ERROR("bots: {}", err);
    ++report.login_errors;
    return report;
  }
  for (uint32_t i = 0; i < o.bots; ++i) {
    client.Connect(o.host, o.port);
    if (o.scenario != "login-storm" && i % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Everyone in a room (or gone) within 10 s.
  const auto join_deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < join_deadline) {
    uint32_t ready = 0;
    for (auto& b : bots) ready += b->in_room.load() || b->closed.load();
    if (ready == o.bots) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (o.on_ready) o.on_ready();

  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  const double interval_s = o.rate > 0 ? 1.0 / o.rate : 1e9;
  // Bots start spread over one interval so the load is smooth.
  std::vector<Clock::time_point> due(o.bots);
  for (uint32_t i = 0; i < o.bots; ++i) {
    due[i] = start + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(interval_s * i / std::max<uint32_t>(o.bots, 1)));
  }
  auto next_progress = start + std::chrono::seconds(1);
  bool garbage_sent = false;
  while (Clock::now() < end) {
    const auto now = Clock::now();
    for (uint32_t i = 0; i < o.bots; ++i) {
      if (now < due[i] || !bots[i]->in_room.load(std::memory_order_acquire) || bots[i]->closed.load()) continue;
      bots[i]->SaySomething();
      due[i] += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval_s));
      if (due[i] < now) due[i] = now;  // never replay a backlog in a burst
    }
    if (!garbage_sent && bad > 0 && now >= start + std::chrono::milliseconds(300)) {
      for (uint32_t i = 0; i < bad; ++i) bots[i]->SendGarbage();
      garbage_sent = true;
    }
    if (o.progress && now >= next_progress) {
      FleetReport w;
      for (auto& b : bots) {
        std::lock_guard lock(b->mu);
        w.sent += b->window.sent;
        w.deliveries += b->window.deliveries;
        w.latency_ns.Merge(b->window.latency_ns);
        w.server_errors += b->window.server_errors;
        w.kicks += b->window.kicks;
        w.disconnects += b->window.disconnects;
        b->window = FleetReport{};
      }
      w.seconds = 1;
      std::printf("%s\n", ProgressLine(std::chrono::duration<double>(now - start).count(), w).c_str());
      std::fflush(stdout);
      next_progress += std::chrono::seconds(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // Drain: wait until every sent message is back at its sender (or the
  // drain time passes), then judge the tail against each room's last seq.
  const auto drain_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.drain_s));
  while (Clock::now() < drain_end) {
    bool all = true;
    for (uint32_t i = bad; i < o.bots && all; ++i) {
      std::lock_guard lock(bots[i]->mu);
      if (!bots[i]->closed.load() && bots[i]->stats.own_echoes < bots[i]->stats.sent) all = false;
    }
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the last broadcasts to the others
  for (auto& b : bots) b->closing_by_us.store(true, std::memory_order_release);
  std::map<std::string, uint64_t> room_last;
  for (uint32_t i = bad; i < o.bots; ++i) {
    std::lock_guard lock(bots[i]->mu);
    auto& last = room_last[bots[i]->room()];
    last = std::max(last, bots[i]->check.last_seq().value_or(0));
  }
  uint64_t malformed_kicked = 0;
  for (uint32_t i = 0; i < o.bots; ++i) {
    std::lock_guard lock(bots[i]->mu);
    if (i < bad) {
      malformed_kicked += bots[i]->closed.load() ? 1u : 0u;
      continue;
    }
    if (!bots[i]->closed.load() || bots[i]->saw_shutdown.load()) bots[i]->check.Finish(room_last[bots[i]->room()]);
    const FleetReport& s = bots[i]->stats;
    report.logins_ok += s.logins_ok;
    report.login_errors += s.login_errors;
    report.sent += s.sent;
    report.own_echoes += s.own_echoes;
    report.whispers_received += s.whispers_received;
    report.server_errors += s.server_errors;
    report.kicks += s.kicks;
    report.disconnects += s.disconnects;
    report.deliveries += bots[i]->check.counts();
    report.latency_ns.Merge(s.latency_ns);
  }
  report.malformed_bots = bad;
  report.malformed_kicked = malformed_kicked;
  client.Stop();
  return report;
}

}  // namespace keel::bots
