// ChatServer's periodic watch over its sessions (Tick) and the slow-consumer
// kick: what the chat server decides about a session on top of the net
// layer's own limits. Reasons and thresholds: docs/chat.md ("Limits").
#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

#include "apps/chat_server/chat_server.h"
#include "keel/core/log.h"

namespace keel::chat {
namespace {

// Room for a Kicked notice below the hard limit: a broadcast that would eat
// into it kicks the member instead, so the notice still fits.
constexpr std::size_t kKickNoticeReserve = 256;

}  // namespace

bool ChatServer::SendToMember(ChatSession& member, const net::SendBufferRef& buf) {
  const std::size_t queued = member.QueuedBytes();
  if (queued + buf->size() + kKickNoticeReserve > config_.send_hard_limit) {
    KickSlowConsumer(member);
    return false;
  }
  if (!member.Send(buf)) return false;
  NoteQueued(member, queued + buf->size());
  return true;
}

void ChatServer::NoteQueued(ChatSession& session, std::size_t queued) {
  if (queued <= config_.send_soft_limit) return;
  // One lock per crossing, not per Send: the flag stays set while listed.
  if (session.over_soft_listed_.exchange(true, std::memory_order_acq_rel)) return;
  core::MutexLock lock(watch_mu_);
  over_soft_.emplace_back(&session);
}

void ChatServer::KickSlowConsumer(ChatSession& session) {
  // The backlog the kernel has not taken is dropped and the notice goes next:
  // a client that reads again within the grace gets it after at most the
  // kernel's buffers and one partly written batch; one that never reads is
  // closed by the flush timeout without seeing it (TCP cannot deliver it).
  if (session.Kick("slow consumer", net::DisconnectReason::kSlowConsumer, config_.send_soft_grace_ms)) {
    counters_.slow_consumer_kicks.fetch_add(1, std::memory_order_relaxed);
  }
}

namespace {
constexpr int64_t kMs = 1'000'000;
}  // namespace

void ChatServer::ScheduleCheck(ChatSession& session) {
  // The earliest moment a kick could be due: the login deadline while not
  // logged in, the idle timeout after the last frame. Nothing to check for a
  // logged-in session with the idle timeout off.
  int64_t due = std::numeric_limits<int64_t>::max();
  if (session.user_id() == 0) due = session.connected_at_ns() + int64_t{config_.login_deadline_ms} * kMs;
  if (config_.idle_timeout_ms > 0) {
    due = std::min(due, session.last_frame_ns() + int64_t{config_.idle_timeout_ms} * kMs);
  }
  if (due == std::numeric_limits<int64_t>::max()) return;
  core::MutexLock lock(watch_mu_);
  checks_.emplace(due, session.id());
}

std::size_t ChatServer::Tick() {
  return Tick(std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now().time_since_epoch())
                  .count());
}

std::size_t ChatServer::Tick(int64_t now_ns) {
  const int64_t login_by = now_ns - int64_t{config_.login_deadline_ms} * kMs;
  const int64_t idle_since = now_ns - int64_t{config_.idle_timeout_ms} * kMs;
  // Half the net layer's grace: the server kicks (with a notice) before the
  // net layer drops the session silently.
  const int64_t slow_after = int64_t{config_.send_soft_grace_ms} * kMs / 2;

  // 1. Login deadline and idle timeout: only the sessions whose check is due.
  // A session that turns out fine is rescheduled at its next possible kick
  // (an active one about once per idle timeout); a closed one is forgotten.
  std::vector<uint64_t> due_ids;
  {
    core::MutexLock lock(watch_mu_);
    while (!checks_.empty() && checks_.top().first <= now_ns) {
      due_ids.push_back(checks_.top().second);
      checks_.pop();
    }
  }
  std::vector<ChatSessionRef> due;
  due.reserve(due_ids.size());
  {
    core::MutexLock lock(users_mu_);
    for (const uint64_t id : due_ids) {
      if (auto it = sessions_.find(id); it != sessions_.end()) due.push_back(it->second);
    }
  }
  for (auto& s : due) {
    if (s->user_id() == 0 && s->connected_at_ns() < login_by) {
      s->Kick("login deadline");
      continue;
    }
    if (config_.idle_timeout_ms > 0 && s->last_frame_ns() < idle_since) {
      if (s->Kick("idle timeout")) counters_.idle_kicks.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    ScheduleCheck(*s);
  }

  // 2. Slow consumers: only the sessions a Send found over the soft limit.
  std::vector<ChatSessionRef> over;
  {
    core::MutexLock lock(watch_mu_);
    over = over_soft_;
  }
  std::size_t looked = due.size() + over.size();
  std::vector<ChatSession*> unlist;
  for (auto& s : over) {
    if (!s->IsConnected()) {
      unlist.push_back(s.get());
      continue;
    }
    // Relaxed: a time stamp only Tick uses; two concurrent Ticks at worst
    // restart or end the wait one tick early.
    const int64_t since = s->over_soft_since_ns_.load(std::memory_order_relaxed);
    if (s->QueuedBytes() <= config_.send_soft_limit) {
      if (since != 0) s->over_soft_since_ns_.store(0, std::memory_order_relaxed);
      unlist.push_back(s.get());
    } else if (since == 0) {
      s->over_soft_since_ns_.store(now_ns, std::memory_order_relaxed);
    } else if (now_ns - since >= slow_after) {
      KickSlowConsumer(*s);
    }
  }
  if (!unlist.empty()) {
    // A Send that crosses the limit again between the check above and this
    // point finds the flag still set and does not relist; the next Send that
    // finds it over the limit does (a member of a busy room: the next
    // message). The net layer's own soft-limit grace stays the backstop.
    core::MutexLock lock(watch_mu_);
    std::erase_if(over_soft_, [&](const ChatSessionRef& s) {
      if (std::find(unlist.begin(), unlist.end(), s.get()) == unlist.end()) return false;
      s->over_soft_listed_.store(false, std::memory_order_release);
      return true;
    });
  }
  return looked;
}

}  // namespace keel::chat
