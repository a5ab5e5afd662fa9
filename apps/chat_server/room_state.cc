#include "apps/chat_server/room_state.h"

namespace keel::chat {

ErrorCode RoomState::Join(uint64_t user_id, const std::string& nickname, RoomJoined& joined) {
  if (members_.contains(user_id)) return ERROR_ALREADY_IN_ROOM;
  if (members_.size() >= limits_.max_members) return ERROR_ROOM_FULL;
  members_.emplace(user_id, nickname);
  joined.set_room(name_);
  for (const auto& [id, nick] : members_) joined.add_members(nick);
  for (const auto& m : history_) *joined.add_history() = m;
  joined.set_last_seq(next_seq_ - 1);
  return ERROR_NONE;
}

ErrorCode RoomState::Leave(uint64_t user_id) {
  return members_.erase(user_id) == 1 ? ERROR_NONE : ERROR_NOT_IN_ROOM;
}

ErrorCode RoomState::Say(uint64_t user_id, const keel::chat::Say& say, RoomMessage& out) {
  const auto it = members_.find(user_id);
  if (it == members_.end()) return ERROR_NOT_IN_ROOM;
  if (say.text().size() > limits_.max_text_bytes) return ERROR_MESSAGE_TOO_LONG;
  out.set_room(name_);
  out.set_from(it->second);
  out.set_text(say.text());
  out.set_seq(next_seq_++);
  out.set_client_seq(say.client_seq());
  out.set_sent_at_ns(say.sent_at_ns());
  if (limits_.history > 0) {
    if (history_.size() == limits_.history) history_.pop_front();
    history_.push_back(out);
  }
  return ERROR_NONE;
}

std::vector<uint64_t> RoomState::MemberIds() const {
  std::vector<uint64_t> ids;
  ids.reserve(members_.size());
  for (const auto& [id, nick] : members_) ids.push_back(id);
  return ids;
}

}  // namespace keel::chat
