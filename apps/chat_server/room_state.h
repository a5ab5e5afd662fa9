#pragma once
// RoomState: what a chat room knows, without any threading: its members, its
// sequence of messages and the last N of them for newcomers. The room actor
// (a keel::job::JobQueue) owns one and is the only code that touches it, so it
// needs no lock.
//
// Every message gets the room's next sequence number; members see them in
// that order, so a gap at a member means a lost message (the bots check).

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "chat.pb.h"

namespace keel::chat {

struct RoomLimits {
  uint32_t max_members = 1000;
  uint32_t history = 20;  // messages sent to a member on join
  uint32_t max_text_bytes = 512;
};

class RoomState {
 public:
  RoomState(std::string name, RoomLimits limits) : name_(std::move(name)), limits_(limits) {}

  const std::string& name() const noexcept { return name_; }
  uint32_t max_members() const noexcept { return limits_.max_members; }
  size_t size() const noexcept { return members_.size(); }
  bool Has(uint64_t user_id) const noexcept { return members_.contains(user_id); }

  // Adds a member; fills `joined` (members and history) for them.
  ErrorCode Join(uint64_t user_id, const std::string& nickname, RoomJoined& joined);
  ErrorCode Leave(uint64_t user_id);
  // Stamps and records a message from a member; `out` is what every member
  // receives.
  ErrorCode Say(uint64_t user_id, const Say& say, RoomMessage& out);

  std::vector<uint64_t> MemberIds() const;
  uint64_t messages() const noexcept { return next_seq_ - 1; }

 private:
  std::string name_;
  RoomLimits limits_;
  std::map<uint64_t, std::string> members_;  // user id -> nickname, join order irrelevant
  std::deque<RoomMessage> history_;
  uint64_t next_seq_ = 1;
};

}  // namespace keel::chat
