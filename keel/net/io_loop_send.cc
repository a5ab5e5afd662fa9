// IoLoop, the send path: one gathered write in flight per session
// (FlushOnLoop), its completion (OnSendDone: partial writes, the next
// write), and the soft limit on queued bytes. The loop itself is
// io_loop.cc.
#include "keel/net/io_loop.h"

#include <algorithm>
#include <cerrno>

#include "keel/core/lock_guard.h"
#include "keel/core/log.h"
#include "keel/net/internal/session_core.h"

namespace keel::net {

using internal::NetCounters;
using internal::SessionCore;
using internal::SessionState;

// ---- sending ----

void IoLoop::FlushOnLoop(Session* s) {
  SessionCore& core = *s->core_;
  if (core.send_in_flight || core.state.load(std::memory_order_relaxed) != SessionState::kOpen) return;
  bool empty;
  {
    core::LockGuard<core::SpinLock> g(core.mu);
    while (core.inflight.size() < config_.max_gather && !core.pending.empty()) {
      core.inflight.push_back(std::move(core.pending.front()));
      core.pending.pop_front();
    }
    empty = core.inflight.empty();
    // Release pairs with Send's lock: a Send after this sees no flush
    // scheduled and posts one.
    if (empty) core.flush_scheduled = false;
  }
  if (empty) {
    if (core.flush_then_close) FlushedThenCloseOnLoop(s);
    return;
  }
  core.iov.resize(core.inflight.size());
  for (std::size_t i = 0; i < core.inflight.size(); ++i) {
    const SendBuffer& b = *core.inflight[i];
    const std::size_t skip = i == 0 ? core.inflight_offset : 0;
    core.iov[i].iov_base = const_cast<uint8_t*>(b.data()) + skip;
    core.iov[i].iov_len = b.size() - skip;
  }
  core.send_in_flight = true;
  ++core.ops_in_flight;
  backend_->Send(core.fd, core.iov.data(), static_cast<int>(core.iov.size()), UserData(core));
  CheckSoftLimitOnLoop(s);
}

void IoLoop::OnSendDone(Session* s, int32_t result) {
  SessionCore& core = *s->core_;
  core.send_in_flight = false;
  if (core.state.load(std::memory_order_relaxed) != SessionState::kOpen) return;
  if (result < 0) {
    if (result != -ECANCELED) CloseOnLoop(s, ReasonForErrno(-result));
    return;
  }
  const auto written = static_cast<std::size_t>(result);
  internal::LoopTraffic::Bump(traffic_.send_ops);
  internal::LoopTraffic::Bump(traffic_.bytes_sent, written);
  core.queued.fetch_sub(written, std::memory_order_relaxed);
  NetCounters::Sub(counters_->queued_bytes, written);
  std::size_t left = written;
  std::size_t done = 0;
  while (done < core.inflight.size()) {
    const std::size_t rest = core.inflight[done]->size() - core.inflight_offset;
    if (rest > left) {
      core.inflight_offset += left;
      break;
    }
    left -= rest;
    core.inflight_offset = 0;
    ++done;
  }
  core.inflight.erase(core.inflight.begin(), core.inflight.begin() + static_cast<std::ptrdiff_t>(done));
  if (core.drop_untouched_inflight) DropUntouchedInflight(s);
  s->OnSend(written);
  FlushOnLoop(s);
  if (core.soft_since != Clock::time_point{}) CheckSoftLimitOnLoop(s);
}

void IoLoop::CheckSoftLimitOnLoop(Session* s) {
  SessionCore& core = *s->core_;
  if (core.state.load(std::memory_order_relaxed) != SessionState::kOpen) return;
  // Closing after a flush: its own timeout bounds it, the soft limit must not
  // cut the last word short.
  if (core.flush_then_close) return;
  const std::size_t queued = core.queued.load(std::memory_order_relaxed);
  if (queued <= core.soft_limit) {
    core.soft_since = {};
    return;
  }
  const auto now = Clock::now();
  if (core.soft_since == Clock::time_point{}) {
    core.soft_since = now;
    NetCounters::Add(counters_->send_soft_limit_hits);
    soft_watch_.emplace_back(core.slot, core.generation);
    return;
  }
  if (now - core.soft_since >= std::chrono::milliseconds(config_.send_soft_grace_ms)) {
    KEEL_LOG_INFO("session {} ({}): {} bytes queued over the soft limit for {} ms: slow consumer", s->id(),
                  s->peer(), queued, config_.send_soft_grace_ms);
    CloseOnLoop(s, DisconnectReason::kSlowConsumer);
  }
}

void IoLoop::ScanSoftLimits() {
  std::vector<std::pair<uint32_t, uint32_t>> watch;
  watch.swap(soft_watch_);
  for (auto [slot, gen] : watch) {
    Session* s = Lookup(slot, gen);
    if (s == nullptr || s->core_->soft_since == Clock::time_point{}) continue;
    soft_watch_.emplace_back(slot, gen);  // kept until it drops below the limit
    CheckSoftLimitOnLoop(s);
  }
  // CheckSoftLimitOnLoop re-adds only on a new crossing; drop duplicates.
  std::sort(soft_watch_.begin(), soft_watch_.end());
  soft_watch_.erase(std::unique(soft_watch_.begin(), soft_watch_.end()), soft_watch_.end());
}

}  // namespace keel::net
