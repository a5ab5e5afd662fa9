// IoLoop, the loop itself: posting from any thread, Run (wait, dispatch
// the completions, run the posted work and the timers, flush), the slot
// table, accepted sessions. The receive path is io_loop_recv.cc, the send
// path io_loop_send.cc, closing io_loop_close.cc, connecting connector.cc.
#include "keel/net/io_loop.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "keel/core/lock_guard.h"
#include "keel/core/log.h"
#include "keel/net/internal/session_core.h"
#include "keel/net/listener.h"
#include "keel/net/socket_options.h"
#include "keel/net/wake_batch.h"

namespace keel::net {

using internal::Completion;
using internal::NetCounters;
using internal::OpKind;
using internal::SessionCore;
using internal::SessionState;

namespace {
// Upper bound on one Wait when nothing is due: keeps a lost wake harmless.
constexpr int kMaxWaitMs = 500;
std::atomic<uint64_t> next_session_id{1};
}  // namespace

IoLoop::IoLoop(uint32_t index, const NetConfig& config, std::unique_ptr<internal::Backend> backend,
               std::shared_ptr<NetCounters> counters)
    : index_(index),
      config_(config),
      backend_(std::move(backend)),
      counters_(std::move(counters)),
      // The Service sizes `traffic` to its io_threads; the clamp only keeps a
      // misconfigured loop in bounds.
      traffic_(counters_->traffic[index_ < counters_->loop_count ? index_ : 0]) {}

IoLoop::~IoLoop() {
  // Work posted after Run() returned (an accepted fd handed over by loop 0
  // while this loop was finishing, a late Connect): run it here, stopping, so
  // fds are closed and sessions finalized. The threads are joined by now.
  stopping_ = true;
  DrainPosted();
  if (live_sessions_ > 0) {
    // Run() ended by an exception that failing the loop could not handle
    // (FailOnLoop threw too): sessions are still registered, maybe with
    // reads and writes in the kernel. Close their fds after the backend is
    // gone (below) and free them only then.
    for (Slot& slot : slots_) {
      if (slot.session) HoldUntilBackendGone(std::move(slot.session));
    }
  }
  if (!failed_holds_.empty()) {
    // The loop failed, or Run() ended early: operations it held never
    // completed. Tear it down first (the kernel lets go of the lent
    // buffers), then free.
    backend_.reset();
    for (FailedHold& h : failed_holds_) {
      if (h.fd >= 0) ::close(h.fd);
    }
    failed_holds_.clear();
  }
  finalized_.clear();  // after the backend's teardown, if it had to go first
}

// ---- posting (any thread) ----

void IoLoop::PostTask(Task task, bool may_defer) {
  {
    core::LockGuard<core::SpinLock> g(post_mu_);
    posted_.push_back(std::move(task));
    posted_pending_.store(true, std::memory_order_relaxed);
  }
  if (!InLoopThread() && !(may_defer && WakeBatch::Defer(this))) WakeNow();
}

void IoLoop::WakeNow() {
  NetCounters::Add(counters_->wake_requests);
  backend_->Wake();
}

void IoLoop::PostFlush(SessionRef s) {
  NetCounters::Add(counters_->flush_posts);
  PostTask({Task::kFlush, std::move(s)});
}
void IoLoop::PostClose(SessionRef s) { PostTask({Task::kClose, std::move(s)}); }
void IoLoop::PostCloseAfterFlush(SessionRef s, uint32_t timeout_ms) {
  PostTask({Task::kCloseAfterFlush, std::move(s), timeout_ms});
}
void IoLoop::PostCloseWithNotice(SessionRef s, SendBufferRef notice, uint32_t timeout_ms) {
  PostTask({Task::kCloseWithNotice, std::move(s), timeout_ms, nullptr, std::move(notice)});
}
void IoLoop::PostCheckSoftLimit(SessionRef s) { PostTask({Task::kCheckSoft, std::move(s)}); }
void IoLoop::Post(std::function<void()> fn) { PostTask({Task::kFn, nullptr, 0, std::move(fn)}); }
void IoLoop::PostLoopWork(std::function<void()> fn) { PostTask({Task::kLoopFn, nullptr, 0, std::move(fn)}); }
void IoLoop::Shutdown() {
  // Woken now even inside a WakeBatch: Service::Stop joins and frees the
  // loops right after, before any batch could end.
  PostTask({Task::kLoopFn, nullptr, 0, [this] { ShutdownOnLoop(); }}, /*may_defer=*/false);
}

// ---- the loop ----

void IoLoop::Run() {
  thread_id_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  try {
    RunPasses();
  } catch (...) {
    // Not a hook's (each call into the application catches its own): the
    // loop's own work threw (std::bad_alloc, a backend's Wait). Its state may
    // be half-updated, so it ends like a loop whose backend failed: sessions
    // failed, listeners abandoned, the Service told. The rest run on. If
    // failing the loop throws (or already threw: failed_ is set), the loop
    // is reported failed all the same and ~IoLoop tears down the rest.
    try {
      if (failed_.load(std::memory_order_relaxed)) throw;
      FailOnLoop(-ENOTRECOVERABLE, "threw outside any hook", WhatIsInFlight());
    } catch (...) {
      CountFailedOnce();
      throw;
    }
  }
  // What was posted before the loop failed (a listener's start, a handed-off
  // accept, a connect) runs now, stopping: a listener never started closes
  // its socket, so its port refuses at once instead of queueing connections
  // until Stop.
  if (failed_.load(std::memory_order_relaxed)) DrainPosted();
}

void IoLoop::DrainPosted() {
  for (;;) {
    try {
      if (!RunPosted()) break;
    } catch (...) {  // the engine's own work: what is left runs on the next round
      KEEL_LOG_ERROR("io loop {}: work posted to it threw while it was stopping: {}", index_, WhatIsInFlight());
    }
  }
}

void IoLoop::RunPasses() {
  for (;;) {
    const int timeout_ms = NextTimeoutMs();
    const std::size_t n = config_.busy_poll_us > 0 && timeout_ms != 0 ? BusyPollThenWait(timeout_ms)
                                                                       : backend_->Wait(completions_, timeout_ms);
    for (std::size_t i = 0; i < n; ++i) {
      // Software pipeline over the batch (see PrefetchSession).
      if (i + 2 < n) PrefetchSession(completions_[i + 2]);
      if (i + 1 < n) PrefetchCore(completions_[i + 1]);
      Dispatch(completions_[i]);
    }
    if (const int err = backend_->error(); err != 0) {
      // The backend can no longer wait or submit (Backend::Wait): no
      // operation in flight will ever complete. Fail this loop's sessions and
      // stop; the Service reports it (ADR 0011).
      FailOnLoop(err, "backend failed", std::strerror(-err));
      break;
    }
    for (int round = 0; round < 4 && RunPosted(); ++round) {
    }
    RunTimers();
    FlushScheduled();
    finalized_.clear();  // no handler of this pass is running any more
    if (stopping_ && live_sessions_ == 0 && listeners_.empty()) {
      core::LockGuard<core::SpinLock> g(post_mu_);
      if (posted_.empty()) break;
    }
  }
  KEEL_LOG_DEBUG("io loop {} drained", index_);
}

int IoLoop::NextTimeoutMs() {
  {
    core::LockGuard<core::SpinLock> g(post_mu_);
    if (!posted_.empty()) return 0;
  }
  int ms = kMaxWaitMs;
  if (!soft_watch_.empty()) {
    ms = std::clamp(static_cast<int>(config_.send_soft_grace_ms / 4), 1, ms);
  }
  if (!timers_.empty()) {
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(timers_.begin()->first - Clock::now()).count();
    ms = std::clamp(static_cast<int>(wait), 0, ms);
  }
  return ms;
}

std::size_t IoLoop::BusyPollThenWait(int timeout_ms) {
  internal::LoopTraffic::Bump(traffic_.busy_polls);
  auto spin = std::chrono::microseconds(config_.busy_poll_us);
  if (timeout_ms > 0) spin = std::min<std::chrono::microseconds>(spin, std::chrono::milliseconds(timeout_ms));
  const auto end = Clock::now() + spin;
  do {
    // A poll: submits, reaps, never sleeps. Work posted by another thread
    // (its Wake may already have been consumed by this poll) also ends it.
    const std::size_t n = backend_->Wait(completions_, 0);
    if (n > 0 || posted_pending_.load(std::memory_order_relaxed)) {
      internal::LoopTraffic::Bump(traffic_.busy_poll_hits);
      return n;
    }
    if (backend_->error() != 0) return 0;
  } while (Clock::now() < end);
  return backend_->Wait(completions_, NextTimeoutMs());
}

bool IoLoop::RunPosted() {
  {
    core::LockGuard<core::SpinLock> g(post_mu_);
    if (posted_.empty()) return false;
    running_.swap(posted_);
    posted_pending_.store(false, std::memory_order_relaxed);
  }
  std::size_t i = 0;
  try {
    for (; i < running_.size(); ++i) {
      Task& t = running_[i];
      Session* s = t.session.get();
      switch (t.kind) {
        case Task::kFlush: FlushOnLoop(s); break;
        case Task::kClose: CloseOnLoop(s); break;
        case Task::kCloseAfterFlush: CloseAfterFlushOnLoop(s, t.timeout_ms); break;
        case Task::kCloseWithNotice: CloseWithNoticeOnLoop(s, std::move(t.notice), t.timeout_ms); break;
        case Task::kCheckSoft: CheckSoftLimitOnLoop(s); break;
        case Task::kLoopFn: t.fn(); break;
        case Task::kFn:
          try {
            t.fn();
          } catch (...) {
            HookThrew(nullptr, "a posted function");
          }
          break;
      }
    }
  } catch (...) {
    // The loop's own work threw (Run fails the loop). What did not run yet
    // goes back to the front of the queue, to run once, later (~IoLoop runs
    // it while stopping: a handed-off fd is closed, not leaked or closed twice).
    try {
      core::LockGuard<core::SpinLock> g(post_mu_);
      posted_.insert(posted_.begin(), std::make_move_iterator(running_.begin() + static_cast<std::ptrdiff_t>(i) + 1),
                     std::make_move_iterator(running_.end()));
      posted_pending_.store(!posted_.empty(), std::memory_order_relaxed);
    } catch (...) {
      // No memory to keep them: dropped (a handed-off fd among them leaks),
      // never run twice: the batch is cleared either way.
    }
    running_.clear();
    throw;
  }
  running_.clear();
  return true;
}

void IoLoop::FlushScheduled() {
  // A flush may close a session, whose OnDisconnected may Send to others:
  // repeat until nothing new was scheduled.
  while (!needs_flush_.empty()) {
    flushing_.swap(needs_flush_);
    for (SessionRef& s : flushing_) FlushOnLoop(s.get());
    flushing_.clear();
  }
}

void IoLoop::AddTimerOnLoop(Clock::time_point when, std::function<void()> fn) {
  timers_.emplace(when, std::move(fn));
}

void IoLoop::RunTimers() {
  if (!soft_watch_.empty()) ScanSoftLimits();
  const auto now = Clock::now();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto fn = std::move(timers_.begin()->second);
    timers_.erase(timers_.begin());
    try {
      fn();
    } catch (...) {
      HookThrew(nullptr, "a timer");
    }
  }
}

// ---- slots ----

uint64_t IoLoop::UserData(const SessionCore& core) const noexcept {
  return (static_cast<uint64_t>(core.generation) << 32) | core.slot;
}

Session* IoLoop::Lookup(uint32_t slot, uint32_t generation) const noexcept {
  if (slot >= slots_.size() || slots_[slot].generation != generation) return nullptr;
  return slots_[slot].session.get();
}

// With many sessions the Session and SessionCore a completion lands on are
// cold (the handler's first loads were most of Dispatch's samples in perf at
// 100 and 1000 echo sessions), and the handler is too long for the CPU to run
// ahead into the next one. So the loop fetches ahead: the Session object two
// completions ahead, its SessionCore (whose address is in the Session) one
// ahead. Hints only: a stale or listener completion fetches nothing useful
// and Dispatch still checks the generation.
const Session* IoLoop::SessionHint(const Completion& c) const noexcept {
  const auto slot = static_cast<uint32_t>(c.user_data);
  if ((c.user_data & kListenerTag) != 0 || slot >= slots_.size()) return nullptr;
  return slots_[slot].session.get();
}

void IoLoop::PrefetchSession(const Completion& c) const noexcept {
  if (const Session* s = SessionHint(c)) __builtin_prefetch(&s->core_);
}

void IoLoop::PrefetchCore(const Completion& c) const noexcept {
  const Session* s = SessionHint(c);
  if (s == nullptr) return;
  const char* core = reinterpret_cast<const char*>(s->core_);
  for (std::size_t off = 0; off < sizeof(SessionCore); off += 64) __builtin_prefetch(core + off);
}

uint32_t IoLoop::RegisterOnLoop(const SessionRef& s, int fd) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back({});
  }
  Slot& entry = slots_[slot];
  entry.session = s;
  SessionCore& core = *s->core_;
  core.fd = fd;
  core.slot = slot;
  core.generation = entry.generation;
  core.max_recv_buffer = config_.max_recv_buffer;
  core.recv_share_min = std::max<std::size_t>(config_.recv_share_min, 1);
  core.traffic = &traffic_;
  core.recv = RecvBuffer(config_.recv_buffer_size);
  s->loop_ = this;
  if (s->id_ == 0) s->id_ = next_session_id.fetch_add(1, std::memory_order_relaxed);
  ++live_sessions_;
  return slot;
}

// ---- server side ----

void IoLoop::AcceptedOnLoop(SessionRef s, int fd) {
  if (stopping_ || !s) {
    ::close(fd);
    return;
  }
  ApplySocketOptions(fd, config_);
  s->peer_ = PeerName(fd);
  s->core_->counters = counters_;
  s->core_->soft_limit = config_.send_soft_limit;
  s->core_->hard_limit = config_.send_hard_limit;
  NetCounters::Add(counters_->sessions_open);
  NetCounters::Add(counters_->sessions_accepted);
  RegisterOnLoop(s, fd);
  {
    core::LockGuard<core::SpinLock> g(s->core_->mu);
    s->core_->state.store(SessionState::kOpen, std::memory_order_release);
  }
  s->core_->connected_hook_ran = true;
  try {
    s->OnConnected();
  } catch (...) {
    HookThrew(s.get(), "OnConnected");
    return;
  }
  if (s->core_->state.load(std::memory_order_relaxed) == SessionState::kOpen) StartRecvOnLoop(s.get());
}

void IoLoop::AttachListenerOnLoop(Listener* listener) { listeners_.push_back(listener); }

void IoLoop::DetachListenerOnLoop(Listener* listener) {
  std::erase(listeners_, listener);
}

// ---- completions ----

void IoLoop::Dispatch(const Completion& c) {
  if (c.user_data & kListenerTag) {
    const auto id = static_cast<uint32_t>(c.user_data);
    for (Listener* l : listeners_) {
      if (l->id() == id) {
        l->OnAcceptOnLoop(c);
        return;
      }
    }
    if (c.result >= 0) ::close(c.result);  // its listener is gone
    return;
  }
  Session* raw = Lookup(static_cast<uint32_t>(c.user_data), static_cast<uint32_t>(c.user_data >> 32));
  if (raw == nullptr) {
    KEEL_LOG_ERROR("io loop {}: completion for a stale slot (user_data {:#x})", index_, c.user_data);
    return;
  }
  // No reference per operation: the slot holds the session until its last
  // operation completed (FinalizeOnLoop), and a session finalized by its
  // own handler lives on in finalized_ until the end of the pass.
  SessionCore& core = *raw->core_;
  --core.ops_in_flight;
  // A hook that throws (OnRecv, OnSend, OnConnected, or OnDisconnected of
  // a session closed here) ends its own session, not the loop.
  try {
    switch (c.kind) {
      case OpKind::kRecv: OnRecvDone(raw, c.result); break;
      case OpKind::kSend: OnSendDone(raw, c.result); break;
      case OpKind::kConnect: OnConnectDone(raw, c.result); break;
      default: break;
    }
  } catch (...) {
    HookThrew(raw, c.kind == OpKind::kRecv ? "OnRecv" : c.kind == OpKind::kSend ? "OnSend" : "OnConnected");
  }
  if (core.state.load(std::memory_order_relaxed) == SessionState::kClosing && core.ops_in_flight == 0) {
    FinalizeOnLoop(raw);
  }
}

}  // namespace keel::net
