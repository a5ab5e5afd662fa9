#include "keel/net/session.h"

#include <cassert>

#include "keel/core/lock_guard.h"
#include "keel/net/internal/session_core.h"
#include "keel/net/io_loop.h"

namespace keel::net {

using internal::NetCounters;
using internal::SessionState;

Session::Session() : core_(new internal::SessionCore()) {}

Session::~Session() {
  if (core_->counters) NetCounters::Sub(core_->counters->sessions_open);
  delete core_;
}

bool Session::Send(SendBufferRef buf) {
  if (!buf) return false;
  internal::SessionCore& core = *core_;
  const std::size_t size = buf->size();
  bool post_flush = false;
  bool crossed_soft = false;
  bool over_hard = false;
  {
    core::LockGuard<core::SpinLock> g(core.mu);
    const SessionState st = core.state.load(std::memory_order_relaxed);
    if (core.reason.load(std::memory_order_relaxed) != DisconnectReason::kNone ||
        (st != SessionState::kOpen && st != SessionState::kConnecting)) {
      return false;
    }
    if (size == 0) return true;
    const std::size_t before = core.queued.load(std::memory_order_relaxed);
    if (before + size > core.hard_limit) {
      over_hard = true;
    } else {
      core.pending.push_back(std::move(buf));
      core.queued.fetch_add(size, std::memory_order_relaxed);  // the loop subtracts concurrently
      NetCounters::Add(core.counters->queued_bytes, size);
      crossed_soft = before <= core.soft_limit && before + size > core.soft_limit;
      post_flush = !core.flush_scheduled;
      core.flush_scheduled = true;
    }
  }
  if (over_hard) {
    Disconnect(DisconnectReason::kSlowConsumer);
    return false;
  }
  if (post_flush) {
    // On the loop's own thread (a hook, a posted task, a timer): no lock, no
    // Task; the loop flushes at the end of its pass.
    if (loop_->InLoopThread()) loop_->ScheduleFlushOnLoop(SessionRef(this));
    else loop_->PostFlush(SessionRef(this));
  } else if (crossed_soft) {
    loop_->PostCheckSoftLimit(SessionRef(this));
  }
  return true;
}

bool Session::Send(std::span<const uint8_t> bytes) { return Send(SendBuffer::Copy(bytes)); }

SendBufferRef Session::ShareReceived(std::span<const uint8_t> bytes) {
  internal::SessionCore& core = *core_;
  // Off the loop's thread the receive buffer is not ours to look at: copy.
  if (bytes.size() < core.recv_share_min || loop_ == nullptr || !loop_->InLoopThread() ||
      !core.recv.Contains(bytes)) {
    return SendBuffer::Copy(bytes);
  }
  internal::LoopTraffic::Bump(core.traffic->recv_shared_bytes, bytes.size());
  return core.recv.Share(bytes);
}

bool Session::SendReceived(std::span<const uint8_t> bytes) { return Send(ShareReceived(bytes)); }

void Session::Disconnect(DisconnectReason reason) {
  if (reason == DisconnectReason::kNone) reason = DisconnectReason::kLocalClose;
  DisconnectReason none = DisconnectReason::kNone;
  if (!core_->reason.compare_exchange_strong(none, reason)) return;
  if (loop_ != nullptr && core_->state.load(std::memory_order_acquire) != SessionState::kNew) {
    loop_->PostClose(SessionRef(this));
  }
}

void Session::DisconnectAfterFlush(DisconnectReason reason, uint32_t timeout_ms) {
  if (reason == DisconnectReason::kNone) reason = DisconnectReason::kLocalClose;
  DisconnectReason none = DisconnectReason::kNone;
  if (!core_->reason.compare_exchange_strong(none, reason)) return;
  if (loop_ != nullptr && core_->state.load(std::memory_order_acquire) != SessionState::kNew) {
    loop_->PostCloseAfterFlush(SessionRef(this), timeout_ms);
  }
}

bool Session::DisconnectWithNotice(SendBufferRef notice, DisconnectReason reason, uint32_t timeout_ms) {
  if (reason == DisconnectReason::kNone) reason = DisconnectReason::kLocalClose;
  if (loop_ == nullptr || core_->state.load(std::memory_order_acquire) == SessionState::kNew) return false;
  DisconnectReason none = DisconnectReason::kNone;
  if (!core_->reason.compare_exchange_strong(none, reason)) return false;
  loop_->PostCloseWithNotice(SessionRef(this), std::move(notice), timeout_ms);
  return true;
}

bool Session::IsConnected() const noexcept {
  return core_->state.load(std::memory_order_acquire) == SessionState::kOpen &&
         core_->reason.load(std::memory_order_relaxed) == DisconnectReason::kNone;
}

std::size_t Session::QueuedBytes() const noexcept { return core_->queued.load(std::memory_order_relaxed); }

}  // namespace keel::net
