// IoLoop, the closing half: a loop failed by its backend, shutdown, and the
// ways a session ends (after a flush, with a notice, lingering, at once).
// The loop itself is io_loop.cc.
#include "keel/net/io_loop.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "keel/core/lock_guard.h"
#include "keel/core/log.h"
#include "keel/net/internal/session_core.h"
#include "keel/net/listener.h"

namespace keel::net {

using internal::NetCounters;
using internal::SessionCore;
using internal::SessionState;

// ---- a failed loop, shutdown ----

void IoLoop::CountFailedOnce() noexcept {
  if (failure_counted_) return;
  failure_counted_ = true;
  counters_->loops_failed.fetch_add(1, std::memory_order_release);
}

void IoLoop::FailOnLoop(int err, std::string_view cause, std::string_view detail) {
  // First: whatever throws below, new sessions skip this loop from now on.
  failed_.store(true, std::memory_order_release);
  stopping_ = true;
  KEEL_LOG_ERROR("io loop {} ({} backend): {}: {}; failing its {} session(s), loop stopped", index_,
                 backend_->name(), cause, detail, live_sessions_);
  failed_holds_.reserve(failed_holds_.size() + live_sessions_);  // no allocation once buffers move
  for (Listener* l : listeners_) l->AbandonOnLoop();
  listeners_.clear();
  needs_flush_.clear();
  // By index: an OnDisconnected hook may touch other sessions.
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    SessionRef s = slots_[i].session;
    if (!s) continue;
    SessionCore& core = *s->core_;
    // Finalized already (its OnDisconnected ran) but still in its slot: the
    // Finalize that threw out of the loop. ~IoLoop frees it, hook not rerun.
    if (core.state.load(std::memory_order_relaxed) == SessionState::kClosed) continue;
    MarkClosingOnLoop(core, DisconnectReason::kIoError);
    // The peer learns at once (FIN); the fd itself is closed after the
    // backend is gone, since operations on it may still be in the kernel.
    if (core.fd >= 0) ::shutdown(core.fd, SHUT_RDWR);
    HoldUntilBackendGone(s);
    FinalizeOnLoop(s.get());  // OnDisconnected(kIoError), slot freed
  }
  if (config_.on_loop_failed) {
    try {
      config_.on_loop_failed(index_, err);
    } catch (...) {
      HookThrew(nullptr, "on_loop_failed");
    }
  }
  // Last, and released: whoever sees Service::Failed() (an acquire load of
  // this counter) also sees every OnDisconnected above and the callback done.
  CountFailedOnce();
}

void IoLoop::HoldUntilBackendGone(SessionRef s) {
  SessionCore& core = *s->core_;
  const int fd = core.fd;
  failed_holds_.push_back({std::move(s), fd, std::move(core.inflight), std::move(core.iov)});
  core.inflight.clear();
  core.iov.clear();
  core.fd = -1;
  core.ops_in_flight = 0;
}

void IoLoop::ShutdownOnLoop() {
  stopping_ = true;
  // A copy: a listener with nothing pending detaches itself in StopOnLoop.
  for (Listener* l : std::vector<Listener*>(listeners_)) l->StopOnLoop();
  // By index: a hook may register new sessions (and grow the table).
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    SessionRef s = slots_[i].session;
    if (s) CloseOnLoop(s.get(), DisconnectReason::kServerShutdown);
  }
}

// ---- closing ----

DisconnectReason IoLoop::ReasonForErrno(int err) noexcept {
  return (err == ECONNRESET || err == EPIPE) ? DisconnectReason::kPeerReset : DisconnectReason::kIoError;
}

void IoLoop::CloseAfterFlushOnLoop(Session* s, uint32_t timeout_ms) {
  SessionCore& core = *s->core_;
  const SessionState st = core.state.load(std::memory_order_relaxed);
  if (st == SessionState::kConnecting) {
    CloseOnLoop(s);
    return;
  }
  if (st != SessionState::kOpen || core.flush_then_close) return;
  core.flush_then_close = true;
  const uint32_t slot = core.slot;
  const uint32_t gen = core.generation;
  AddTimerOnLoop(Clock::now() + std::chrono::milliseconds(timeout_ms), [this, slot, gen] {
    if (Session* x = Lookup(slot, gen)) CloseOnLoop(x);
  });
  FlushOnLoop(s);  // closes at once when nothing is queued
}

void IoLoop::FlushedThenCloseOnLoop(Session* s) {
  SessionCore& core = *s->core_;
  if (core.lingering) return;  // already shut down, waiting for the peer's EOF
  if (!config_.linger_close || core.peer_fin || core.fd < 0) {
    CloseOnLoop(s);
    return;
  }
  // FIN after the last byte; the peer reads everything, then EOF. Closing
  // now would send RST instead if any of its bytes sat unread here (reads
  // stop once a close is requested), and an RST can destroy what it has not
  // read yet. The close timer set by CloseAfterFlushOnLoop still bounds it.
  if (::shutdown(core.fd, SHUT_WR) != 0) {
    CloseOnLoop(s);
    return;
  }
  core.lingering = true;
  NetCounters::Add(counters_->lingering_closes);
  if (!core.recv_in_flight) StartRecvOnLoop(s);
}

void IoLoop::CloseWithNoticeOnLoop(Session* s, SendBufferRef notice, uint32_t timeout_ms) {
  SessionCore& core = *s->core_;
  const SessionState st = core.state.load(std::memory_order_relaxed);
  if (st != SessionState::kOpen || core.flush_then_close) {
    CloseAfterFlushOnLoop(s, timeout_ms);  // connecting: closes; closing: nothing
    return;
  }
  std::size_t dropped = 0;
  const std::size_t added = notice ? notice->size() : 0;
  {
    core::LockGuard<core::SpinLock> g(core.mu);
    for (const SendBufferRef& b : core.pending) dropped += b->size();
    core.pending.clear();
    if (added > 0) core.pending.push_back(std::move(notice));
  }
  core.queued.fetch_add(added, std::memory_order_relaxed);
  core.queued.fetch_sub(dropped, std::memory_order_relaxed);
  NetCounters::Add(counters_->queued_bytes, added);
  NetCounters::Sub(counters_->queued_bytes, dropped);
  NetCounters::Add(counters_->notice_dropped_bytes, dropped);
  NetCounters::Add(counters_->notice_disconnects);
  // The write in flight is the kernel's until it completes; what it leaves
  // untouched is dropped then (OnSendDone).
  core.drop_untouched_inflight = core.send_in_flight;
  CloseAfterFlushOnLoop(s, timeout_ms);
}

void IoLoop::DropUntouchedInflight(Session* s) {
  SessionCore& core = *s->core_;
  core.drop_untouched_inflight = false;
  // inflight[0] written in part must be finished, or the peer's frame stream
  // breaks; every other buffer left is untouched by the kernel.
  const std::size_t keep = core.inflight_offset > 0 ? 1 : 0;
  if (core.inflight.size() <= keep) return;
  std::size_t dropped = 0;
  for (std::size_t i = keep; i < core.inflight.size(); ++i) dropped += core.inflight[i]->size();
  core.inflight.resize(keep);
  core.queued.fetch_sub(dropped, std::memory_order_relaxed);
  NetCounters::Sub(counters_->queued_bytes, dropped);
  NetCounters::Add(counters_->notice_dropped_bytes, dropped);
}

void IoLoop::MarkClosingOnLoop(SessionCore& core, DisconnectReason reason) {
  DisconnectReason none = DisconnectReason::kNone;
  core.reason.compare_exchange_strong(none, reason);  // the first reason wins
  std::size_t dropped = 0;
  {
    core::LockGuard<core::SpinLock> g(core.mu);
    core.state.store(SessionState::kClosing, std::memory_order_release);
    for (const SendBufferRef& b : core.pending) dropped += b->size();
    core.pending.clear();
    core.flush_scheduled = true;  // nothing will be flushed again
  }
  core.queued.fetch_sub(dropped, std::memory_order_relaxed);
  NetCounters::Sub(counters_->queued_bytes, dropped);
}

const char* IoLoop::WhatIsInFlight() noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "an exception not derived from std::exception";
}

void IoLoop::HookThrew(Session* s, std::string_view where) {
  const char* what = WhatIsInFlight();
  NetCounters::Add(counters_->hook_exceptions);
  if (s == nullptr) {
    KEEL_LOG_ERROR("io loop {}: {} threw: {}", index_, where, what);
    return;
  }
  KEEL_LOG_ERROR("session {} ({}): {} threw: {}; the session is closed", s->id(), s->peer(), where, what);
  CloseOnLoop(s, DisconnectReason::kHookFailed);
}

void IoLoop::CloseOnLoop(Session* s, DisconnectReason reason) {
  DisconnectReason none = DisconnectReason::kNone;
  s->core_->reason.compare_exchange_strong(none, reason);
  CloseOnLoop(s);
}

void IoLoop::CloseOnLoop(Session* s) {
  SessionCore& core = *s->core_;
  const SessionState st = core.state.load(std::memory_order_relaxed);
  if (st == SessionState::kClosing || st == SessionState::kClosed || st == SessionState::kNew) return;
  MarkClosingOnLoop(core, DisconnectReason::kLocalClose);
  if (core.ops_in_flight > 0) {
    backend_->Cancel(core.fd);
    core.cancelled = true;
  } else {
    FinalizeOnLoop(s);
  }
}

void IoLoop::FinalizeOnLoop(Session* s) {
  SessionCore& core = *s->core_;
  if (core.fd >= 0) {
    backend_->Cancel(core.fd);  // nothing is pending; the backend forgets the fd
    ::close(core.fd);
    core.fd = -1;
  }
  const std::size_t rest = core.queued.exchange(0, std::memory_order_relaxed);
  NetCounters::Sub(counters_->queued_bytes, rest);
  core.inflight.clear();
  core.iov.clear();
  core.state.store(SessionState::kClosed, std::memory_order_release);
  const DisconnectReason reason = core.reason.load(std::memory_order_relaxed);
  counters_->CountDisconnect(reason);
  KEEL_LOG_DEBUG("session {} ({}) disconnected: {}", s->id(), s->peer(), ToString(reason));
  try {
    s->OnDisconnected(reason);
  } catch (...) {
    HookThrew(s, "OnDisconnected");  // closed already: logged and counted only
  }
  Slot& slot = slots_[core.slot];
  // Released at the end of the loop pass: the handler that closed the
  // session (and the Dispatch around it) may still touch it. Before the
  // counts: if the push throws, the session stays registered in its slot
  // (closed, its hook run), which FailOnLoop skips and ~IoLoop frees.
  finalized_.push_back(std::move(slot.session));
  ++slot.generation;
  --live_sessions_;
  free_slots_.push_back(core.slot);  // if this throws, the slot is never reused
}

}  // namespace keel::net
