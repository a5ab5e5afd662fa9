// Room: the chat room actor (declared in chat_server.h). Every method runs as
// a job of the room's own JobQueue, so members_ and state_ need no lock.
#include "apps/chat_server/chat_server.h"

namespace keel::chat {

Room::Room(job::WorkerGroup& group, ChatServer& server, std::string name, RoomLimits limits)
    : JobQueue(group, "room:" + name), server_(server), state_(std::move(name), limits) {}

void Room::Broadcast(const net::SendBufferRef& buf, uint64_t except_user) {
  for (const auto& [id, member] : members_) {
    if (id != except_user) server_.SendToMember(*member, buf);
  }
}

void Room::Join(ChatSessionRef session) {
  RoomJoined joined;
  const ErrorCode err = state_.Join(session->user_id(), session->nickname(), joined);
  if (err != ERROR_NONE) {
    server_.SendError(*session, err, state_.name());
    return;
  }
  Presence presence;
  presence.set_room(state_.name());
  presence.set_nickname(session->nickname());
  presence.set_joined(true);
  Broadcast(proto::BuildSendBuffer(presence), 0);
  members_.emplace(session->user_id(), session);
  size_.store(static_cast<uint32_t>(members_.size()), std::memory_order_relaxed);
  session->Send(joined);
}

void Room::Leave(ChatSessionRef session, bool notify) {
  if (state_.Leave(session->user_id()) != ERROR_NONE) return;
  members_.erase(session->user_id());
  size_.store(static_cast<uint32_t>(members_.size()), std::memory_order_relaxed);
  if (notify) {
    // last_seq: every message up to it was queued on this member before this
    // notice, none after (the bots check the tail of each membership).
    RoomLeft left;
    left.set_room(state_.name());
    left.set_last_seq(state_.messages());
    session->Send(left);
  }
  Presence presence;
  presence.set_room(state_.name());
  presence.set_nickname(session->nickname());
  presence.set_joined(false);
  Broadcast(proto::BuildSendBuffer(presence), 0);
}

void Room::Say(ChatSessionRef session, keel::chat::Say say) {
  RoomMessage out;
  if (const ErrorCode err = state_.Say(session->user_id(), say, out); err != ERROR_NONE) {
    server_.SendError(*session, err, state_.name());
    return;
  }
  // Serialized once; every member's send queue holds the same buffer.
  const net::SendBufferRef buf = proto::BuildSendBuffer(out);
  Broadcast(buf, 0);
  server_.counters().deliveries_out.fetch_add(members_.size(), std::memory_order_relaxed);
}

void Room::DropMembers() {
  members_.clear();
  size_.store(0, std::memory_order_relaxed);
}

}  // namespace keel::chat
