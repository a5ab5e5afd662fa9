#pragma once
// Bot: one chat client of the fleet, a PacketSession on Keel's client side.
// It logs in, creates or joins its home room, says what the driver tells it
// to, and checks every RoomMessage against the room it came from (one
// DeliveryCheck per room: exactly once, in order, only while a member).
// In room-churn the driver also moves it between rooms (MoveTo, LeaveRoom,
// CreateRoom).
//
// Threads: the hooks run on the bot's IO thread; Say*/MoveTo/... on the
// fleet's driver thread. Everything under `mu` is shared by both.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "apps/bots/delivery_check.h"
#include "apps/bots/report.h"
#include "keel/proto/packet_session.h"

namespace keel::bots {

class Bot : public proto::PacketSession {
 public:
  Bot(std::string nick, std::string room, uint32_t text_bytes);

  std::mutex mu;
  FleetReport stats;   // this bot's numbers (guarded by mu)
  FleetReport window;  // since the last progress line (guarded by mu)
  std::map<std::string, DeliveryCheck> checks;  // per room (guarded by mu)
  std::atomic<bool> in_room{false};             // reached its first room
  std::atomic<bool> closed{false};
  std::atomic<bool> closing_by_us{false};
  // The server said it is shutting down: the bot was present to the end.
  std::atomic<bool> saw_shutdown{false};

  // Driver thread. SaySomething only while settled in a room (no move in
  // flight), so every message sent must come back.
  bool Settled();
  void SaySomething();
  void SendHeartbeat();
  void SendGarbage();
  void MoveTo(const std::string& room);   // JoinRoom
  void CreateRoom(const std::string& room);
  void LeaveRoom();
  bool Busy();                            // a move is in flight
  bool HasJoined(const std::string& room);  // ever a member of it
  std::string target();                   // the room it is in or going to ("" none)
  const std::string& home_room() const { return home_; }

  // Sum of the per-room counts (caller holds mu).
  DeliveryCounts CountsLocked() const;

 protected:
  void OnConnected() override;
  proto::RejectReason OnFrame(const proto::Frame& frame) override;
  void OnDisconnected(net::DisconnectReason reason) override;

 private:
  void CountDelta(const DeliveryCounts& before, const DeliveryCounts& after);  // holds mu

  const std::string nick_;
  const std::string home_;
  std::string text_;
  uint64_t next_client_seq_ = 1;  // driver thread only
  std::string target_;            // guarded by mu
  bool pending_ = true;           // guarded by mu: the login/join or a move is in flight
};

using BotRef = net::RefPtr<Bot>;

// What the server may send a client, in any state.
const proto::ProtocolTable& ServerToClient();

}  // namespace keel::bots
