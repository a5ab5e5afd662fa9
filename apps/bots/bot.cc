#include "apps/bots/bot.h"

#include <chrono>
#include <span>

#include "chat.keel.h"
#include "keel/core/log.h"

namespace keel::bots {
namespace {

uint64_t NowNs() noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

proto::FramerLimits ClientLimits() {
  proto::FramerLimits l;
  l.max_frames_per_read = 100000;  // a broadcast burst is not an attack here
  l.frames_per_second = 0;
  return l;
}

}  // namespace

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

Bot::Bot(std::string nick, std::string room, uint32_t text_bytes)
    : PacketSession(ServerToClient(), ClientLimits(), nullptr),
      nick_(std::move(nick)),
      home_(std::move(room)),
      text_("hello from " + nick_),
      target_(home_) {
  if (text_.size() < text_bytes) text_.resize(text_bytes, '.');
}

bool Bot::Settled() {
  std::lock_guard lock(mu);
  if (pending_ || target_.empty()) return false;
  auto it = checks.find(target_);
  return it != checks.end() && it->second.in_room();
}

bool Bot::Busy() {
  std::lock_guard lock(mu);
  return pending_;
}

bool Bot::HasJoined(const std::string& room) {
  std::lock_guard lock(mu);
  return checks.contains(room);
}

std::string Bot::target() {
  std::lock_guard lock(mu);
  return target_;
}

void Bot::SaySomething() {
  chat::Say say;
  say.set_text(text_);
  say.set_client_seq(next_client_seq_++);
  say.set_sent_at_ns(NowNs());
  if (Send(say)) {
    std::lock_guard lock(mu);
    ++stats.sent;
    ++window.sent;
  }
}

void Bot::SendHeartbeat() {
  chat::Heartbeat hb;
  hb.set_nonce(NowNs());
  Send(hb);
}

void Bot::SendGarbage() {
  const uint8_t garbage[] = {8, 0, 0x77, 0x77, 1, 2, 3, 4};  // unknown id 0x7777
  Send(std::span<const uint8_t>(garbage, sizeof garbage));
}

void Bot::MoveTo(const std::string& room) {
  {
    std::lock_guard lock(mu);
    target_ = room;
    pending_ = true;
    ++stats.churn_moves;
  }
  chat::JoinRoom join;
  join.set_name(room);
  Send(join);
}

void Bot::CreateRoom(const std::string& room) {
  {
    std::lock_guard lock(mu);
    target_ = room;
    pending_ = true;
    ++stats.churn_moves;
    ++stats.rooms_created;
  }
  chat::CreateRoom create;
  create.set_name(room);
  Send(create);
}

void Bot::LeaveRoom() {
  {
    std::lock_guard lock(mu);
    target_.clear();
    pending_ = true;
    ++stats.churn_moves;
  }
  Send(chat::LeaveRoom());
}

DeliveryCounts Bot::CountsLocked() const {
  DeliveryCounts sum;
  for (const auto& [room, check] : checks) sum += check.counts();
  return sum;
}

void Bot::CountDelta(const DeliveryCounts& before, const DeliveryCounts& after) {
  window.deliveries.delivered += after.delivered - before.delivered;
  window.deliveries.lost += after.lost - before.lost;
  window.deliveries.duplicates += after.duplicates - before.duplicates;
  window.deliveries.strays += after.strays - before.strays;
}

void Bot::OnConnected() {
  chat::Login login;
  login.set_nickname(nick_);
  Send(login);
}

proto::RejectReason Bot::OnFrame(const proto::Frame& frame) {
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
      create.set_name(home_);
      Send(create);
      return proto::RejectReason::kNone;
    }
    case chat::kErrorId: {
      chat::Error e;
      if (!proto::ParsePayload(e, frame.payload)) return proto::RejectReason::kBadPayload;
      if (e.code() == chat::ERROR_ROOM_EXISTS) {
        chat::JoinRoom join;
        join.set_name(e.detail());  // the room it tried to create
        Send(join);
        return proto::RejectReason::kNone;
      }
      std::lock_guard lock(mu);
      ++stats.server_errors;
      ++window.server_errors;
      if (pending_) {  // a move failed: where the bot is now is unknown, it waits for the next move
        pending_ = false;
        target_.clear();
      }
      return proto::RejectReason::kNone;
    }
    case chat::kRoomJoinedId: {
      chat::RoomJoined j;
      if (!proto::ParsePayload(j, frame.payload)) return proto::RejectReason::kBadPayload;
      std::lock_guard lock(mu);
      checks[j.room()].Joined(j.last_seq());
      if (j.room() == target_) pending_ = false;
      in_room.store(true, std::memory_order_release);
      return proto::RejectReason::kNone;
    }
    case chat::kRoomLeftId: {
      chat::RoomLeft l;
      if (!proto::ParsePayload(l, frame.payload)) return proto::RejectReason::kBadPayload;
      std::lock_guard lock(mu);
      DeliveryCheck& check = checks[l.room()];
      const DeliveryCounts before = check.counts();
      check.Left(l.last_seq());
      CountDelta(before, check.counts());
      if (target_.empty()) pending_ = false;
      return proto::RejectReason::kNone;
    }
    case chat::kRoomMessageId: {
      chat::RoomMessage m;
      if (!proto::ParsePayload(m, frame.payload)) return proto::RejectReason::kBadPayload;
      const uint64_t now = NowNs();
      const uint64_t latency = now > m.sent_at_ns() ? now - m.sent_at_ns() : 0;
      std::lock_guard lock(mu);
      DeliveryCheck& check = checks[m.room()];
      const DeliveryCounts before = check.counts();
      check.OnMessage(m.seq());
      CountDelta(before, check.counts());
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

void Bot::OnDisconnected(net::DisconnectReason reason) {
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

}  // namespace keel::bots
