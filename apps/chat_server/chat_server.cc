#include "apps/chat_server/chat_server.h"

#include <chrono>
#include <thread>

#include "keel/core/log.h"

namespace keel::chat {
namespace {

int64_t NowNs() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

proto::FramerLimits PreLoginLimits(const ChatConfig& c) {
  proto::FramerLimits limits;
  limits.max_frame = static_cast<uint16_t>(c.pre_login_max_frame);
  limits.frames_per_second = c.frames_per_second;
  limits.frames_burst = 2 * c.frames_per_second;
  return limits;
}

}  // namespace

// ---- ChatSession -------------------------------------------------------------

ChatSession::ChatSession(ChatServer& server)
    : PacketSession(ChatProtocolTable(), PreLoginLimits(server.config()), &server.proto_stats()),
      server_(server),
      connected_at_ns_(NowNs()),
      last_frame_ns_(connected_at_ns_),
      say_rate_(server.config().say_per_second, server.config().say_burst) {
  SetState(kPreLogin);
}

bool ChatSession::Kick(const std::string& reason, net::DisconnectReason how, uint32_t flush_timeout_ms) {
  if (kicked_.exchange(true, std::memory_order_acq_rel)) return false;
  server_.counters().kicks.fetch_add(1, std::memory_order_relaxed);
  // No nickname here: Kick may run on any thread, nickname_ is the IO thread's.
  KEEL_LOG_INFO("kick session {} {}: {}", id(), peer(), reason);
  Kicked kicked;
  kicked.set_reason(reason);
  if (how == net::DisconnectReason::kSlowConsumer) {
    // Stale room traffic is worth nothing to a client this far behind: drop
    // what the kernel has not taken (whole frames: each frame, or batch of
    // frames, is one SendBuffer) and let the notice go next.
    DisconnectWithNotice(proto::BuildSendBuffer(kicked), how, flush_timeout_ms);
    return true;
  }
  // If even the notice would pass the hard limit, the net layer drops the
  // session at once (kSlowConsumer) and the notice is lost; the
  // DisconnectAfterFlush below is then a no-op.
  Send(kicked);
  DisconnectAfterFlush(how, flush_timeout_ms);
  return true;
}

void ChatSession::OnConnected() { server_.OnOpened(*this); }

proto::RejectReason ChatSession::OnFrame(const proto::Frame& frame) {
  last_frame_ns_.store(NowNs(), std::memory_order_relaxed);  // only a time: no ordering needed
  if (join_refused_by_.load(std::memory_order_relaxed) != nullptr) [[unlikely]] {
    // The room this session moved to refused its Join: it is in no room.
    // (Every handler runs after this, so a refusal is consumed before the
    // session can post another Join to the same room.)
    if (join_refused_by_.exchange(nullptr, std::memory_order_acquire) == room_.get()) room_.reset();
  }
  return server_.Dispatch(ChatSessionRef(this), frame);
}

void ChatSession::OnDisconnected(net::DisconnectReason /*reason*/) { server_.OnClosed(*this); }

// ---- ChatServer --------------------------------------------------------------

ChatServer::ChatServer(const ChatConfig& config, job::WorkerGroup& logic)
    : config_(config), logic_(logic) {
  std::string_view rest = config_.create_rooms;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string name(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (!CreateEmptyRoom(name)) KEEL_LOG_WARN("room '{}' not created (invalid name or taken)", name);
  }
}

bool ChatServer::CreateEmptyRoom(const std::string& name) {
  if (CheckRoomName(name, config_.names) != ERROR_NONE) return false;
  core::MutexLock lock(rooms_mu_);
  return rooms_.emplace(name, std::make_shared<Room>(logic_, *this, name, config_.room)).second;
}

ChatServer::~ChatServer() {
  core::MutexLock lock(rooms_mu_);
  for (auto& [name, room] : rooms_) {
    room->Clear();
    room->DropMembers();
  }
}

net::SessionRef ChatServer::MakeSession() { return net::MakeRef<ChatSession>(*this); }

std::size_t ChatServer::Users() const {
  core::MutexLock lock(users_mu_);
  return users_.size();
}

std::size_t ChatServer::PendingChecks() const {
  core::MutexLock lock(watch_mu_);
  return checks_.size();
}

std::size_t ChatServer::Rooms() const {
  core::MutexLock lock(rooms_mu_);
  return rooms_.size();
}

std::shared_ptr<Room> ChatServer::FindRoom(const std::string& name) const {
  core::MutexLock lock(rooms_mu_);
  const auto it = rooms_.find(name);
  return it == rooms_.end() ? nullptr : it->second;
}

void ChatServer::SendError(ChatSession& session, ErrorCode code, std::string detail) {
  counters_.errors.fetch_add(1, std::memory_order_relaxed);
  Error error;
  error.set_code(code);
  error.set_detail(std::move(detail));
  session.Send(error);
}

void ChatServer::HandleLogin(const ChatSessionRef& session, const Login& msg) {
  LoginResult result;
  ErrorCode err = CheckNickname(msg.nickname(), config_.names);
  if (err == ERROR_NONE && !ShuttingDown()) {
    core::MutexLock lock(users_mu_);
    if (!users_.emplace(msg.nickname(), session).second) {
      err = ERROR_NICKNAME_TAKEN;
    } else {
      session->nickname_ = msg.nickname();
      session->user_id_.store(next_user_id_.fetch_add(1, std::memory_order_relaxed),
                              std::memory_order_release);
    }
  }
  result.set_error(err);
  if (err == ERROR_NONE) {
    counters_.logins.fetch_add(1, std::memory_order_relaxed);
    result.set_user_id(session->user_id());
    result.set_nickname(msg.nickname());
    session->SetState(ChatSession::kLoggedIn, static_cast<uint16_t>(config_.max_frame));
  }
  session->Send(result);
}

void ChatServer::HandleListRooms(const ChatSessionRef& session, const ListRooms& /*msg*/) {
  RoomList list;
  {
    core::MutexLock lock(rooms_mu_);
    for (const auto& [name, room] : rooms_) {
      RoomInfo* info = list.add_rooms();
      info->set_name(name);
      info->set_members(room->size());
      if (list.rooms_size() >= 500) break;  // stays far below a frame
    }
  }
  session->Send(list);
}

void ChatServer::HandleCreateRoom(const ChatSessionRef& session, const CreateRoom& msg) {
  if (const ErrorCode err = CheckRoomName(msg.name(), config_.names); err != ERROR_NONE) {
    return SendError(*session, err, "room name");
  }
  std::shared_ptr<Room> room;
  {
    core::MutexLock lock(rooms_mu_);
    if (rooms_.contains(msg.name())) return SendError(*session, ERROR_ROOM_EXISTS, msg.name());
    if (rooms_.size() >= config_.max_rooms) return SendError(*session, ERROR_ROOM_FULL, "too many rooms");
    room = std::make_shared<Room>(logic_, *this, msg.name(), config_.room);
    rooms_.emplace(msg.name(), room);
  }
  MoveTo(*session, room);
}

void ChatServer::HandleJoinRoom(const ChatSessionRef& session, const JoinRoom& msg) {
  const std::shared_ptr<Room> room = FindRoom(msg.name());
  if (!room) return SendError(*session, ERROR_ROOM_NOT_FOUND, msg.name());
  if (room == session->room_) return SendError(*session, ERROR_ALREADY_IN_ROOM, msg.name());
  MoveTo(*session, room);
}

void ChatServer::MoveTo(ChatSession& session, const std::shared_ptr<Room>& room) {
  // A full room (every seat a member or a reserved Join) or a busy one
  // refuses here, with the session still in its old room; a reserved Join
  // is not refused for room later (docs/chat.md, "Joining a room").
  switch (room->ReserveJoin()) {
    case Room::Reserved::kOk:
      break;
    case Room::Reserved::kFull:
      return SendError(session, ERROR_ROOM_FULL, room->room_name());
    case Room::Reserved::kBusy:
      counters_.room_busy.fetch_add(1, std::memory_order_relaxed);
      return SendError(session, ERROR_ROOM_BUSY, room->room_name());
  }
  LeaveCurrentRoom(session, true);
  session.room_ = room;
  room->PostJoin(ChatSessionRef(&session));
}

void ChatServer::HandleLeaveRoom(const ChatSessionRef& session, const LeaveRoom& /*msg*/) {
  if (!session->room_) return SendError(*session, ERROR_NOT_IN_ROOM, "");
  LeaveCurrentRoom(*session, true);
}

void ChatServer::LeaveCurrentRoom(ChatSession& session, bool notify) {
  if (std::shared_ptr<Room> room = std::move(session.room_)) {
    room->PostLeave(ChatSessionRef(&session), notify);
  }
}

void ChatServer::HandleSay(const ChatSessionRef& session, const keel::chat::Say& msg) {
  if (ShuttingDown()) return;  // not acknowledged: the sender never sees it back
  if (!session->room_) return SendError(*session, ERROR_NOT_IN_ROOM, "");
  if (msg.text().size() > config_.room.max_text_bytes) {
    return SendError(*session, ERROR_MESSAGE_TOO_LONG, std::to_string(msg.text().size()) + " bytes");
  }
  if (!session->say_rate_.TryTake(NowNs())) return SendError(*session, ERROR_RATE_LIMITED, "say");
  switch (session->room_->PostSay(session, msg)) {
    case Room::Posted::kOk:
      counters_.messages_in.fetch_add(1, std::memory_order_relaxed);
      return;
    case Room::Posted::kBusy:  // not acknowledged: the sender may say it again later
      counters_.room_busy.fetch_add(1, std::memory_order_relaxed);
      return SendError(*session, ERROR_ROOM_BUSY, session->room_->room_name());
    case Room::Posted::kClosed:  // shutting down: not acknowledged either
      return;
  }
}

void ChatServer::HandleWhisper(const ChatSessionRef& session, const Whisper& msg) {
  if (msg.text().size() > config_.room.max_text_bytes) {
    return SendError(*session, ERROR_MESSAGE_TOO_LONG, std::to_string(msg.text().size()) + " bytes");
  }
  if (!session->say_rate_.TryTake(NowNs())) return SendError(*session, ERROR_RATE_LIMITED, "whisper");
  ChatSessionRef target;
  {
    core::MutexLock lock(users_mu_);
    if (auto it = users_.find(msg.to()); it != users_.end()) target = it->second;
  }
  if (!target) return SendError(*session, ERROR_USER_NOT_FOUND, msg.to());
  counters_.messages_in.fetch_add(1, std::memory_order_relaxed);
  WhisperMessage out;
  out.set_from(session->nickname());
  out.set_text(msg.text());
  out.set_sent_at_ns(msg.sent_at_ns());
  target->Send(out);
  NoteQueued(*target, target->QueuedBytes());
}

void ChatServer::HandleHeartbeat(const ChatSessionRef& session, const Heartbeat& msg) {
  HeartbeatAck ack;
  ack.set_nonce(msg.nonce());
  session->Send(ack);
}

void ChatServer::OnOpened(ChatSession& session) {
  if (ShuttingDown()) return session.Disconnect(net::DisconnectReason::kServerShutdown);
  {
    core::MutexLock lock(users_mu_);
    sessions_.emplace(session.id(), ChatSessionRef(&session));
  }
  ScheduleCheck(session);
}

void ChatServer::OnClosed(ChatSession& session) {
  LeaveCurrentRoom(session, false);
  core::MutexLock lock(users_mu_);
  sessions_.erase(session.id());
  if (!session.nickname_.empty()) {
    if (auto it = users_.find(session.nickname_); it != users_.end() && it->second.get() == &session) {
      users_.erase(it);
    }
  }
}

bool ChatServer::Shutdown(job::Scheduler& scheduler, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  shutting_down_.store(true, std::memory_order_release);
  if (service_ != nullptr) service_->StopAccepting();
  // Every message already accepted (posted to its room) is broadcast before
  // anyone is told to go: drain the rooms first.
  // A Say that passed the ShuttingDown() check just before the flag was set
  // and is posted after this point is refused by the scheduler: it is never
  // broadcast, so its sender never sees it back (not acknowledged).
  scheduler.Shutdown(job::StopMode::kDrain);
  std::vector<ChatSessionRef> all;
  {
    core::MutexLock lock(users_mu_);
    for (const auto& [id, s] : sessions_) all.push_back(s);
  }
  ServerNotice notice;
  notice.set_text("server shutting down");
  const net::SendBufferRef buf = proto::BuildSendBuffer(notice);
  // Each session closes once the notice is written and its client has
  // closed too (the net layer's lingering close: no RST that could destroy
  // the notice), or at this timeout: a quarter of what is left (at most
  // 500 ms) before the deadline, so that a client that never closes is
  // closed by the server in time, not counted against the deadline.
  const int64_t left_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
  const int64_t flush_ms = std::max<int64_t>(left_ms - std::min<int64_t>(left_ms / 4, 500), 1);
  for (auto& s : all) {
    s->Send(buf);
    s->DisconnectAfterFlush(net::DisconnectReason::kServerShutdown, static_cast<uint32_t>(flush_ms));
  }
  all.clear();
  bool clean = true;
  // Closed sessions leave sessions_ in OnClosed (they are freed later, once
  // the rooms below drop them).
  auto open_sessions = [this] {
    core::MutexLock lock(users_mu_);
    return sessions_.size();
  };
  while (open_sessions() > 0) {
    if (std::chrono::steady_clock::now() >= until) {
      clean = false;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Rooms hold their members and sessions their room: break the cycles.
  {
    core::MutexLock lock(rooms_mu_);
    for (auto& [name, room] : rooms_) {
      room->Clear();
      room->DropMembers();
    }
  }
  if (service_ != nullptr) service_->Stop();
  return clean;
}

}  // namespace keel::chat
