// Room: the chat room actor (declared in chat_server.h). Join, Leave and
// RunSays run as jobs of the room's own JobQueue, so members_ and state_ need
// no lock; only the posting side (open_batch_) is shared.
#include "apps/chat_server/chat_server.h"

#include <cassert>
#include <optional>

#include "keel/net/wake_batch.h"

namespace keel::chat {

Room::Room(job::WorkerGroup& group, ChatServer& server, std::string name, RoomLimits limits)
    : JobQueue(group, "room:" + name), server_(server), state_(std::move(name), limits) {}

Room::Reserved Room::ReserveJoin() {
  const uint32_t limit = server_.config().room_backlog;
  core::MutexLock lock(post_mu_);
  if (seats_ >= state_.max_members()) return Reserved::kFull;
  if (limit != 0 && backlog_ >= limit) return Reserved::kBusy;
  ++seats_;
  ++backlog_;
  return Reserved::kOk;
}

bool Room::PostJoin(ChatSessionRef session) {
  core::MutexLock lock(post_mu_);
  open_batch_.reset();  // later Says run after this Join
  if (PostCall(&Room::Join, std::move(session))) return true;
  assert(backlog_ > 0 && seats_ > 0 && "PostJoin without ReserveJoin");
  --backlog_;  // ReserveJoin's
  --seats_;
  return false;
}

bool Room::PostLeave(ChatSessionRef session, bool notify) {
  core::MutexLock lock(post_mu_);
  open_batch_.reset();
  return PostCall(&Room::Leave, std::move(session), notify);
}

Room::Posted Room::PostSay(ChatSessionRef session, const keel::chat::Say& say) {
  const ChatConfig& config = server_.config();
  const uint64_t bytes = say.text().size();
  core::MutexLock lock(post_mu_);
  // Refused before anything is queued: the Says already accepted keep their
  // place and the refused one never gets a seq.
  if ((config.room_backlog != 0 && backlog_ >= config.room_backlog) ||
      (config.room_backlog_bytes != 0 && backlog_bytes_ + bytes > config.room_backlog_bytes)) {
    return Posted::kBusy;
  }
  if (!open_batch_) {
    auto batch = std::make_shared<SayBatch>();
    if (!PostCall(&Room::RunSays, batch)) return Posted::kClosed;
    open_batch_ = std::move(batch);
  }
  open_batch_->says.emplace_back(std::move(session), say);
  open_batch_->text_bytes += bytes;
  ++backlog_;
  backlog_bytes_ += bytes;
  return Posted::kOk;
}

uint64_t Room::Broadcast(const net::SendBufferRef& buf) {
  // With broadcast_wake_batch N > 0, under a WakeBatch per N members: each
  // IO loop is woken once per N members (net/wake_batch.h).
  const std::size_t chunk = server_.config().broadcast_wake_batch;
  std::optional<net::WakeBatch> batch;
  uint64_t queued = 0;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (chunk != 0 && i % chunk == 0) batch.emplace();  // ends the previous one first
    if (server_.SendToMember(*members_[i], buf)) ++queued;
  }
  return queued;
}

void Room::BroadcastMessages(std::size_t first, std::size_t last) {
  while (first < last) {
    // As many frames as fit one pooled buffer (at least one).
    std::size_t bytes = proto::FrameSize(scratch_[first]);
    std::size_t end = first + 1;
    for (; end < last; ++end) {
      const std::size_t more = proto::FrameSize(scratch_[end]);
      if (bytes + more > net::SendBuffer::kMaxPooledSize) break;
      bytes += more;
    }
    net::SendBufferRef buf = net::SendBuffer::Allocate(bytes);
    std::size_t at = 0;
    for (std::size_t i = first; i < end; ++i) {
      // FrameSize above cached the message's size; recomputing it is cheap
      // next to the serialization and keeps the offsets exact.
      const std::size_t n = proto::FrameSize(scratch_[i]);
      proto::EncodeFrameInto(proto::MessageId<RoomMessage>::value, scratch_[i], {buf->data() + at, n});
      at += n;
    }
    const uint64_t members = Broadcast(buf);
    server_.counters().deliveries_out.fetch_add(members * (end - first), std::memory_order_relaxed);
    first = end;
  }
}

void Room::RunSays(std::shared_ptr<SayBatch> batch) {
  {
    core::MutexLock lock(post_mu_);
    if (open_batch_ == batch) open_batch_.reset();  // later Says start a new batch
    // Closed now (no Say joins it any more): out of the backlog. While it is
    // broadcast, up to one more limit's worth can be accepted behind it.
    backlog_ -= batch->says.size();
    backlog_bytes_ -= batch->text_bytes;
  }
  if (scratch_.size() < batch->says.size()) scratch_.resize(batch->says.size());
  std::size_t ready = 0;  // scratch_[0, ready) waits to be broadcast
  for (auto& [session, say] : batch->says) {
    if (const ErrorCode err = state_.Say(session->user_id(), say, scratch_[ready]); err != ERROR_NONE) {
      // What was said before goes out first: the sender sees the same order
      // as with one job per Say.
      BroadcastMessages(0, ready);
      ready = 0;
      server_.SendError(*session, err, state_.name());
      continue;
    }
    ++ready;
  }
  BroadcastMessages(0, ready);
}

void Room::Join(ChatSessionRef session) {
  {
    core::MutexLock lock(post_mu_);
    assert(backlog_ > 0 && seats_ > 0 && "a Join posted without ReserveJoin");
    --backlog_;  // ReserveJoin's (its seat is kept, or given back below)
  }
  RoomJoined joined;
  const ErrorCode err = state_.Join(session->user_id(), session->nickname(), joined);
  if (err != ERROR_NONE) {
    // Not expected: the seat was reserved, and a session's Leave of this
    // room always runs before its next Join here. A guard in release builds.
    assert(false && "a Join with a reserved seat was refused");
    {
      core::MutexLock lock(post_mu_);
      --seats_;
    }
    // Before the error goes out: a client that reads it and sends its next
    // frame finds the mark (release pairs with OnFrame's acquire).
    session->join_refused_by_.store(this, std::memory_order_release);
    server_.SendError(*session, err, state_.name());
    return;
  }
  Presence presence;
  presence.set_room(state_.name());
  presence.set_nickname(session->nickname());
  presence.set_joined(true);
  Broadcast(proto::BuildSendBuffer(presence));
  member_index_.emplace(session->user_id(), static_cast<uint32_t>(members_.size()));
  members_.push_back(session);
  size_.store(static_cast<uint32_t>(members_.size()), std::memory_order_relaxed);
  session->Send(joined);
}

void Room::Leave(ChatSessionRef session, bool notify) {
  if (state_.Leave(session->user_id()) != ERROR_NONE) return;
  {
    core::MutexLock lock(post_mu_);
    assert(seats_ > 0);
    --seats_;
  }
  if (const auto it = member_index_.find(session->user_id()); it != member_index_.end()) {
    const uint32_t slot = it->second;
    member_index_.erase(it);
    if (slot + 1 != members_.size()) {
      members_[slot] = std::move(members_.back());
      member_index_[members_[slot]->user_id()] = slot;
    }
    members_.pop_back();
  }
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
  Broadcast(proto::BuildSendBuffer(presence));
}

// Leaves RoomState's members as they are (nothing reads them after this):
// only the sessions are let go, so seats_ no longer counts them.
void Room::DropMembers() {
  {
    core::MutexLock lock(post_mu_);
    open_batch_.reset();  // its sessions hold this room
    backlog_ = 0;
    backlog_bytes_ = 0;
    seats_ = 0;
  }
  members_.clear();
  member_index_.clear();
  size_.store(0, std::memory_order_relaxed);
}

}  // namespace keel::chat
