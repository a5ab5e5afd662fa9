#pragma once
// IoLoop: one IO thread's event loop. It owns one Backend (an io_uring ring
// or an epoll fd), the sessions registered on it (a slot table whose
// generation goes into every operation's user_data), its timers and a queue
// of work posted by other threads.
//
// Threads: Run() is the thread's body. Post* may be called from any thread
// (they wake the loop only when called from elsewhere); *OnLoop functions
// run only on the loop's own thread. Sessions see their hooks only here.

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/spin_lock.h"
#include "keel/core/thread_annotations.h"
#include "keel/net/internal/backend.h"
#include "keel/net/internal/net_counters.h"
#include "keel/net/net_config.h"
#include "keel/net/session.h"

namespace keel::net {

class Listener;

class IoLoop {
 public:
  using Clock = std::chrono::steady_clock;

  IoLoop(uint32_t index, const NetConfig& config, std::unique_ptr<internal::Backend> backend,
         std::shared_ptr<internal::NetCounters> counters);
  ~IoLoop();
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  // The thread body: runs until Shutdown() has closed every session and the
  // last completion has arrived. An exception out of the loop itself (not a
  // hook's: those close their session, see HookThrew; not a function given
  // to Post) fails the loop like a fatal backend error (ADR 0011) with
  // -ENOTRECOVERABLE, and Run() returns. Only if failing the loop throws too
  // does the exception leave Run() (counted in loops_failed all the same);
  // the destructor then tears down what is left.
  void Run();

  // Any thread.
  void PostFlush(SessionRef s);
  // Loop only: the session has bytes to write; they are written once, in one
  // gathered write, at the end of the current loop pass (after the completion
  // batch, the posted work and the timers). No lock, no wake.
  void ScheduleFlushOnLoop(SessionRef s) { needs_flush_.push_back(std::move(s)); }
  void PostClose(SessionRef s);
  void PostCloseAfterFlush(SessionRef s, uint32_t timeout_ms);
  void PostCheckSoftLimit(SessionRef s);
  void PostCloseWithNotice(SessionRef s, SendBufferRef notice, uint32_t timeout_ms);
  // Application code: an exception from `fn` is logged and counted
  // (NetStats::hook_exceptions) and the loop goes on.
  void Post(std::function<void()> fn);
  // The engine's own work on the loop (a handed-off accept, a connect, a
  // listener's start or stop): an exception from `fn` fails the loop, whose
  // state it may have left half-updated.
  void PostLoopWork(std::function<void()> fn);
  // Stops the loop's listener, disconnects every session with
  // kServerShutdown and lets Run() return once all is drained.
  void Shutdown();
  bool InLoopThread() const noexcept {
    // Relaxed: only the loop thread can read its own id back; any other
    // thread sees a different id (or none yet) and correctly gets false.
    return std::this_thread::get_id() == thread_id_.load(std::memory_order_relaxed);
  }
  uint32_t index() const noexcept { return index_; }
  internal::Backend& backend() noexcept { return *backend_; }
  const NetConfig& config() const noexcept { return config_; }

  // Loop only.
  void AcceptedOnLoop(SessionRef s, int fd);
  void ConnectOnLoop(SessionRef s, const sockaddr_storage& addr, socklen_t len);
  void AttachListenerOnLoop(Listener* listener);
  void DetachListenerOnLoop(Listener* listener);
  // Only inside a catch block: logs and counts the exception in flight
  // (NetStats::hook_exceptions) and closes `s`, if any, with kHookFailed.
  // The loop and its other sessions go on.
  void HookThrew(Session* s, std::string_view where);
  void AddTimerOnLoop(Clock::time_point when, std::function<void()> fn);
  bool stopping() const noexcept { return stopping_; }
  // Any thread: the loop has failed (its backend's error(), or an exception
  // out of its own work; ADR 0011) and is failing or has failed its sessions.
  // Set first, so new sessions go to other loops at once; Service::Failed()
  // turns true last, when the sessions are failed and on_loop_failed ran.
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  // An accept's user_data: the tag and the listener's id (Listener::id()).
  static constexpr uint64_t kListenerTag = 1ull << 63;

 private:
  struct Task {
    enum Kind : uint8_t { kFlush, kClose, kCloseAfterFlush, kCloseWithNotice, kCheckSoft, kFn, kLoopFn } kind;
    SessionRef session;
    uint32_t timeout_ms = 0;
    std::function<void()> fn;
    SendBufferRef notice;
  };
  struct Slot {
    SessionRef session;
    uint32_t generation = 0;
  };

  // may_defer: a WakeBatch on the posting thread may hold the wake-up.
  void PostTask(Task task, bool may_defer = true);
  friend class WakeBatch;
  // Any thread: wakes the loop (its backend's Wake) and counts the request
  // (NetStats::wake_requests; the backend drops a repeat before the loop ran).
  void WakeNow();
  bool RunPosted();
  void FlushScheduled();
  void RunTimers();
  int NextTimeoutMs();
  // NetConfig::busy_poll_us: polls the backend without sleeping for up to
  // that long (at most timeout_ms), then waits as usual with what is left.
  std::size_t BusyPollThenWait(int timeout_ms);
  void Dispatch(const internal::Completion& c);
  // The session a completion's slot holds now (a hint: stale or null).
  const Session* SessionHint(const internal::Completion& c) const noexcept;
  void PrefetchSession(const internal::Completion& c) const noexcept;
  void PrefetchCore(const internal::Completion& c) const noexcept;

  uint32_t RegisterOnLoop(const SessionRef& s, int fd);
  uint64_t UserData(const internal::SessionCore& core) const noexcept;
  Session* Lookup(uint32_t slot, uint32_t generation) const noexcept;
  void StartRecvOnLoop(Session* s);
  void FlushOnLoop(Session* s);
  void OnRecvDone(Session* s, int32_t result);
  void OnSendDone(Session* s, int32_t result);
  void OnConnectDone(Session* s, int32_t result);
  void CheckSoftLimitOnLoop(Session* s);
  void ScanSoftLimits();
  // The reason a failed recv or send ends a session with: ECONNRESET and
  // EPIPE give kPeerReset, any other errno kIoError.
  static DisconnectReason ReasonForErrno(int err) noexcept;
  void CloseOnLoop(Session* s, DisconnectReason reason);
  void CloseOnLoop(Session* s);
  void FinalizeOnLoop(Session* s);
  void CloseAfterFlushOnLoop(Session* s, uint32_t timeout_ms);
  void CloseWithNoticeOnLoop(Session* s, SendBufferRef notice, uint32_t timeout_ms);
  // Everything written on a flush-then-close session: closes, or lingers
  // (shutdown(SHUT_WR), drain until the peer's EOF; NetConfig::linger_close).
  void FlushedThenCloseOnLoop(Session* s);
  // Sets `reason` unless one is set, marks the session closing and drops
  // what is queued and not yet written (Sends are refused from here on).
  void MarkClosingOnLoop(internal::SessionCore& core, DisconnectReason reason);
  void DropUntouchedInflight(Session* s);
  void ShutdownOnLoop();
  // Only inside a catch block: the in-flight exception's what(), valid
  // until the block ends (no allocation: safe after std::bad_alloc).
  static const char* WhatIsInFlight() noexcept;
  // Logged as "<cause>: <detail>".
  void FailOnLoop(int err, std::string_view cause, std::string_view detail);
  // Moves what the kernel may still touch (the session, its write's buffers
  // and iovecs, its fd) to failed_holds_, freed after the backend is gone.
  void HoldUntilBackendGone(SessionRef s);
  // Counts this loop in loops_failed, once (release: Service::Failed()).
  void CountFailedOnce() noexcept;
  void RunPasses();
  // Runs posted work until none is left (stopping_ set: each task winds
  // down); logs the engine's work that throws and goes on.
  void DrainPosted();

  const uint32_t index_;
  const NetConfig& config_;
  std::unique_ptr<internal::Backend> backend_;
  std::shared_ptr<internal::NetCounters> counters_;
  // This loop's own traffic counters (single writer: this thread).
  internal::LoopTraffic& traffic_;
  std::atomic<std::thread::id> thread_id_{};

  core::SpinLock post_mu_{"IoLoop.post"};
  std::vector<Task> posted_ KEEL_GUARDED_BY(post_mu_);
  // Whether posted_ has work: written under post_mu_, read without it by
  // BusyPollThenWait (a hint; posted_ itself is read under the lock).
  std::atomic<bool> posted_pending_{false};
  std::vector<Task> running_;  // loop only: the batch being run
  // Loop only: sessions Sent to from this thread during the current pass.
  std::vector<SessionRef> needs_flush_;
  std::vector<SessionRef> flushing_;

  // Loop only. A slot's reference keeps its session alive while any
  // operation on it is in flight: operations take no reference of their own.
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::size_t live_sessions_ = 0;
  std::multimap<Clock::time_point, std::function<void()>> timers_;
  std::vector<std::pair<uint32_t, uint32_t>> soft_watch_;  // (slot, generation) over the soft limit
  std::vector<Listener*> listeners_;  // the Service's listeners placed on this loop
  // Sessions finalized during this pass (their slot's reference), released
  // at its end: the handler that closed one may still be using it.
  std::vector<SessionRef> finalized_;
  bool stopping_ = false;
  bool failure_counted_ = false;  // loop only
  std::atomic<bool> failed_{false};
  // After a backend failure: what the kernel may still hold (the session
  // with its RecvBuffer, the buffers and iovecs of its write, its fd).
  // Released in the destructor, after the backend is gone.
  struct FailedHold {
    SessionRef session;
    int fd = -1;
    std::vector<SendBufferRef> inflight;
    std::vector<iovec> iov;
  };
  std::vector<FailedHold> failed_holds_;
  std::array<internal::Completion, 256> completions_{};
};

}  // namespace keel::net
