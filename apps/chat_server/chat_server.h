#pragma once
// ChatServer: the chat protocol's handler (chat.keel.h) over keel::net and
// keel::job. Users live on their sessions (ChatSession, IO thread); rooms are
// actors (Room : keel::job::JobQueue) that own their RoomState and members,
// and serialize each message once into one SendBuffer queued on every member.
//
// Threads: handlers run on the session's IO thread; login uniqueness and the
// room directory are guarded by mutexes; a room's state is touched only by
// its own jobs. Tick() and the counters may be called from any thread;
// Shutdown() by the owner (main) only. Order and reasons: docs/chat.md.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "apps/chat_server/chat_config.h"
#include "apps/chat_server/names.h"
#include "apps/chat_server/room_state.h"
#include "chat.keel.h"
#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"
#include "keel/job/job_queue.h"
#include "keel/job/scheduler.h"
#include "keel/net/service.h"
#include "keel/proto/packet_session.h"
#include "keel/proto/rate_limiter.h"

namespace keel::chat {

class ChatServer;
class Room;

class ChatSession : public proto::PacketSession {
 public:
  static constexpr uint8_t kPreLogin = 1;
  static constexpr uint8_t kLoggedIn = 2;

  explicit ChatSession(ChatServer& server);

  // Sends `reason` as a Kicked notice, then closes once it is written or
  // after `flush_timeout_ms` (`how` is the reason the net layer counts).
  // A slow-consumer kick drops the backlog the kernel has not taken yet, so
  // the notice comes next (Session::DisconnectWithNotice); other kicks queue
  // it behind what is already queued. Only the first kick of a session acts;
  // returns false for later ones. Any thread.
  bool Kick(const std::string& reason, net::DisconnectReason how = net::DisconnectReason::kLocalClose,
            uint32_t flush_timeout_ms = 1000);

  uint64_t user_id() const noexcept { return user_id_.load(std::memory_order_acquire); }
  const std::string& nickname() const noexcept { return nickname_; }  // after login
  int64_t connected_at_ns() const noexcept { return connected_at_ns_; }
  // Steady-clock time of the last frame received (any frame, heartbeats too).
  int64_t last_frame_ns() const noexcept { return last_frame_ns_.load(std::memory_order_relaxed); }

 protected:
  void OnConnected() override;
  proto::RejectReason OnFrame(const proto::Frame& frame) override;
  void OnDisconnected(net::DisconnectReason reason) override;

 private:
  friend class ChatServer;
  friend class Room;
  ChatServer& server_;
  const int64_t connected_at_ns_;
  // Written once at login on the IO thread; release pairs with the acquire
  // in user_id() (Tick reads it from the main thread).
  std::atomic<uint64_t> user_id_{0};
  std::string nickname_;
  std::shared_ptr<Room> room_;  // IO thread only
  // A room whose Join job refused this session: set by that room's worker,
  // consumed on the IO thread before the next frame, which then drops room_
  // if it still names that room. A guard: a Join holds a seat reserved
  // before it was posted (Room::ReserveJoin), so no refusal is expected
  // (asserted in debug builds).
  std::atomic<const Room*> join_refused_by_{nullptr};
  std::atomic<int64_t> last_frame_ns_;     // written on the IO thread, read by Tick
  std::atomic<int64_t> over_soft_since_ns_{0};  // Tick: queue over the soft limit since (0: not)
  std::atomic<bool> kicked_{false};
  std::atomic<bool> over_soft_listed_{false};  // in ChatServer::over_soft_ (session_watch.cc)
  proto::RateLimiter say_rate_;
};

using ChatSessionRef = net::RefPtr<ChatSession>;

struct ChatCounters {
  std::atomic<uint64_t> logins{0};
  std::atomic<uint64_t> messages_in{0};    // Say + Whisper accepted
  std::atomic<uint64_t> deliveries_out{0}; // RoomMessage queued on members
  std::atomic<uint64_t> kicks{0};          // every Kicked notice, any reason
  std::atomic<uint64_t> idle_kicks{0};
  std::atomic<uint64_t> slow_consumer_kicks{0};
  std::atomic<uint64_t> errors{0};         // Error replies
  std::atomic<uint64_t> room_busy{0};      // Says and Joins refused: room backlog at its limit
};

// A room actor. Post* may be called from any thread; the jobs they post run
// one at a time, in post order, on the room's own queue (no lock on members_
// or state_). Says posted back to back, with no Join or Leave between them,
// run as one job: their RoomMessages are serialized into one buffer (per
// SendBuffer::kMaxPooledSize of frames) and that buffer is queued on every
// member with one Send each, so a burst of k messages costs each member one
// Send, not k.
//
// Backlog: the Says and Joins posted and not yet taken by the room's worker
// are counted (and the Says' text bytes); past ChatConfig::room_backlog or
// room_backlog_bytes a Say or Join is refused before it is posted, so what
// was accepted is never dropped or reordered. Leaves are never refused (one
// per accepted Join at most). No JobQueue mailbox cap: docs/chat.md.
class Room : public job::JobQueue {
 public:
  Room(job::WorkerGroup& group, ChatServer& server, std::string name, RoomLimits limits);

  enum class Posted { kOk, kBusy, kClosed };  // kClosed: the scheduler is shutting down

  // Takes a seat for a Join and counts it in the backlog, or refuses with
  // nothing taken: kFull if every seat is taken by a member or by a Join
  // reserved before and not yet run, kBusy if the backlog is at its limit.
  // Called before the session leaves its old room, so a refused move leaves
  // the session where it was, and a reserved Join is never refused for room
  // (two Joins racing for the last seat: the second is refused here, not
  // after it left its room). PostJoin must follow kOk.
  enum class Reserved { kOk, kBusy, kFull };
  Reserved ReserveJoin();
  // False if the scheduler refused the job (shutting down).
  bool PostJoin(ChatSessionRef session);
  bool PostLeave(ChatSessionRef session, bool notify);
  Posted PostSay(ChatSessionRef session, const keel::chat::Say& say);
  // Shutdown only, with no worker running: drops members (breaks cycles).
  void DropMembers();
  uint32_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  // Immutable after construction: any thread.
  const std::string& room_name() const noexcept { return state_.name(); }

 private:
  struct SayBatch {
    std::vector<std::pair<ChatSessionRef, keel::chat::Say>> says;
    uint64_t text_bytes = 0;
  };

  // Room jobs.
  void Join(ChatSessionRef session);
  void Leave(ChatSessionRef session, bool notify);
  void RunSays(std::shared_ptr<SayBatch> batch);
  // Queues scratch_[first, last) on every member, as few buffers as the pool
  // allows; counts the deliveries actually queued.
  void BroadcastMessages(std::size_t first, std::size_t last);
  // Queues `buf` on every member; returns on how many it was queued (a
  // member kicked as a slow consumer, or closing, is not counted).
  uint64_t Broadcast(const net::SendBufferRef& buf);

  ChatServer& server_;
  RoomState state_;
  // Members in no particular order (iterated once per broadcast buffer);
  // member_index_ finds a member's slot for removal (swap with the last).
  std::vector<ChatSessionRef> members_;
  std::unordered_map<uint64_t, uint32_t> member_index_;
  std::vector<RoomMessage> scratch_;  // RunSays' messages, reused
  std::atomic<uint32_t> size_{0};

  // Posting: the batch that further Says join, if its job has not started.
  // Held while posting so that jobs are queued in the order of the calls.
  core::Mutex post_mu_{"Room.post"};
  std::shared_ptr<SayBatch> open_batch_ KEEL_GUARDED_BY(post_mu_);
  // Says and Joins posted, not yet taken by their job; text bytes of those Says.
  uint64_t backlog_ KEEL_GUARDED_BY(post_mu_) = 0;
  uint64_t backlog_bytes_ KEEL_GUARDED_BY(post_mu_) = 0;
  // Members plus Joins reserved and not yet run (ReserveJoin); a Leave or a
  // refused Join gives its seat back.
  uint32_t seats_ KEEL_GUARDED_BY(post_mu_) = 0;
};

class ChatServer final : public ChatHandler<ChatSessionRef> {
 public:
  ChatServer(const ChatConfig& config, job::WorkerGroup& logic);
  ~ChatServer() override;

  net::SessionRef MakeSession();
  // Creates a room nobody is in yet (config create_rooms); false if invalid or taken.
  bool CreateEmptyRoom(const std::string& name);
  void Attach(net::Service* service) noexcept { service_ = service; }

  // Kicks sessions past the login deadline, silent past the idle timeout,
  // or over the send soft limit for half its grace (session_watch.cc). Any
  // thread, every 200 ms or so; `now_ns` is the steady clock. Looks only at
  // sessions with a check due and those over the soft limit, not at every
  // session; returns how many it looked at.
  std::size_t Tick(int64_t now_ns);
  std::size_t Tick();
  // Queues a room broadcast on `member`, or kicks it as a slow consumer
  // (with a notice) when the buffer would bring it near the hard limit.
  bool SendToMember(ChatSession& member, const net::SendBufferRef& buf);
  // Graceful shutdown: see docs/chat.md. Returns true if every session
  // closed within the deadline.
  bool Shutdown(job::Scheduler& scheduler, std::chrono::milliseconds deadline);

  const ChatConfig& config() const noexcept { return config_; }
  proto::ProtoStats& proto_stats() noexcept { return proto_stats_; }
  ChatCounters& counters() noexcept { return counters_; }
  std::size_t Users() const;
  // Login and idle checks scheduled: one per open session with a check due
  // (its first is scheduled when it opens, after it is registered), plus
  // those of closed sessions not yet come due.
  std::size_t PendingChecks() const;
  std::size_t Rooms() const;
  std::shared_ptr<Room> FindRoom(const std::string& name) const;  // null if none
  bool ShuttingDown() const noexcept { return shutting_down_.load(std::memory_order_acquire); }

  // ChatHandler (IO thread of `session`).
  void HandleLogin(const ChatSessionRef& session, const Login& msg) override;
  void HandleListRooms(const ChatSessionRef& session, const ListRooms& msg) override;
  void HandleCreateRoom(const ChatSessionRef& session, const CreateRoom& msg) override;
  void HandleJoinRoom(const ChatSessionRef& session, const JoinRoom& msg) override;
  void HandleLeaveRoom(const ChatSessionRef& session, const LeaveRoom& msg) override;
  void HandleSay(const ChatSessionRef& session, const keel::chat::Say& msg) override;
  void HandleWhisper(const ChatSessionRef& session, const Whisper& msg) override;
  void HandleHeartbeat(const ChatSessionRef& session, const Heartbeat& msg) override;

  void SendError(ChatSession& session, ErrorCode code, std::string detail);

 private:
  friend class ChatSession;
  void OnOpened(ChatSession& session);
  void OnClosed(ChatSession& session);
  void LeaveCurrentRoom(ChatSession& session, bool notify);
  // Join or CreateRoom: leaves the current room and joins `room`, unless
  // `room` is busy (ERROR_ROOM_BUSY, the session stays where it was).
  void MoveTo(ChatSession& session, const std::shared_ptr<Room>& room);
  void KickSlowConsumer(ChatSession& session);
  // Tick's lists (session_watch.cc).
  void ScheduleCheck(ChatSession& session);
  void NoteQueued(ChatSession& session, std::size_t queued);

  const ChatConfig config_;
  job::WorkerGroup& logic_;
  net::Service* service_ = nullptr;
  proto::ProtoStats proto_stats_;
  ChatCounters counters_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<uint64_t> next_user_id_{1};

  mutable core::Mutex users_mu_{"ChatServer.users"};
  std::unordered_map<std::string, ChatSessionRef> users_ KEEL_GUARDED_BY(users_mu_);
  // Every live session, logged in or not (for Tick and Shutdown).
  std::unordered_map<uint64_t, ChatSessionRef> sessions_ KEEL_GUARDED_BY(users_mu_);

  // Tick's work: each session's next login-deadline or idle check (steady
  // ns, session id), soonest first; and the sessions seen over the send soft
  // limit. Never held together with users_mu_.
  using Check = std::pair<int64_t, uint64_t>;
  mutable core::Mutex watch_mu_{"ChatServer.watch"};
  std::priority_queue<Check, std::vector<Check>, std::greater<>> checks_ KEEL_GUARDED_BY(watch_mu_);
  std::vector<ChatSessionRef> over_soft_ KEEL_GUARDED_BY(watch_mu_);

  mutable core::Mutex rooms_mu_{"ChatServer.rooms"};
  std::map<std::string, std::shared_ptr<Room>> rooms_ KEEL_GUARDED_BY(rooms_mu_);
};

}  // namespace keel::chat
