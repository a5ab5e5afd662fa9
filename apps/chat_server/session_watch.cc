// ChatServer's periodic watch over its sessions (Tick) and the slow-consumer
// kick: what the chat server decides about a session on top of the net
// layer's own limits. Reasons and thresholds: docs/chat.md ("Limits").
#include <chrono>
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
  if (member.QueuedBytes() + buf->size() + kKickNoticeReserve > config_.send_hard_limit) {
    KickSlowConsumer(member);
    return false;
  }
  return member.Send(buf);
}

void ChatServer::KickSlowConsumer(ChatSession& session) {
  // The notice is queued behind the backlog: a client that catches up within
  // the grace reads it; one that does not is closed by the flush timeout (or
  // the net layer's own soft-limit check) without seeing it.
  if (session.Kick("slow consumer", net::DisconnectReason::kSlowConsumer, config_.send_soft_grace_ms)) {
    counters_.slow_consumer_kicks.fetch_add(1, std::memory_order_relaxed);
  }
}

void ChatServer::Tick() {
  Tick(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
           .count());
}

void ChatServer::Tick(int64_t now_ns) {
  constexpr int64_t kMs = 1'000'000;
  const int64_t login_by = now_ns - int64_t{config_.login_deadline_ms} * kMs;
  const int64_t idle_since = now_ns - int64_t{config_.idle_timeout_ms} * kMs;
  // Half the net layer's grace: the server kicks (with a notice) before the
  // net layer drops the session silently.
  const int64_t slow_after = int64_t{config_.send_soft_grace_ms} * kMs / 2;
  std::vector<ChatSessionRef> all;
  {
    core::MutexLock lock(users_mu_);
    all.reserve(sessions_.size());
    for (const auto& [id, s] : sessions_) all.push_back(s);
  }
  for (auto& s : all) {
    if (s->user_id() == 0 && s->connected_at_ns() < login_by) {
      s->Kick("login deadline");
      continue;
    }
    if (config_.idle_timeout_ms > 0 && s->last_frame_ns() < idle_since) {
      if (s->Kick("idle timeout")) counters_.idle_kicks.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    // Relaxed: a time stamp only Tick uses; two concurrent Ticks at worst
    // restart or end the wait one tick early.
    const int64_t since = s->over_soft_since_ns_.load(std::memory_order_relaxed);
    if (s->QueuedBytes() <= config_.send_soft_limit) {
      if (since != 0) s->over_soft_since_ns_.store(0, std::memory_order_relaxed);
    } else if (since == 0) {
      s->over_soft_since_ns_.store(now_ns, std::memory_order_relaxed);
    } else if (now_ns - since >= slow_after) {
      KickSlowConsumer(*s);
    }
  }
}

}  // namespace keel::chat
