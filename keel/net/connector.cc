// The client side of IoLoop: an asynchronous connect with a timeout
// (Service::Connect resolves the address and posts here).

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "keel/core/lock_guard.h"
#include "keel/core/log.h"
#include "keel/net/internal/session_core.h"
#include "keel/net/io_loop.h"
#include "keel/net/socket_options.h"

namespace keel::net {

using internal::NetCounters;
using internal::SessionState;

void IoLoop::ConnectOnLoop(SessionRef s, const sockaddr_storage& addr, socklen_t len) {
  internal::SessionCore& core = *s->core_;
  core.counters = counters_;
  core.soft_limit = config_.send_soft_limit;
  core.hard_limit = config_.send_hard_limit;
  NetCounters::Add(counters_->sessions_open);
  const int fd = len == 0 ? -1 : ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int err = errno;
  RegisterOnLoop(s, fd);
  {
    core::LockGuard<core::SpinLock> g(core.mu);
    core.state.store(SessionState::kConnecting, std::memory_order_release);
  }
  if (stopping_ || core.reason.load(std::memory_order_relaxed) != DisconnectReason::kNone) {
    // Disconnected before it got here (the first reason stands), or shutting down.
    CloseOnLoop(s.get(), DisconnectReason::kServerShutdown);
    return;
  }
  if (fd < 0) {
    if (len != 0) KEEL_LOG_WARN("connect: socket: {}", std::strerror(err));
    CloseOnLoop(s.get(), DisconnectReason::kConnectFailed);
    return;
  }
  ApplySocketOptions(fd, config_);
  ++core.ops_in_flight;
  backend_->Connect(fd, reinterpret_cast<const sockaddr*>(&addr), len, UserData(core));
  const uint32_t slot = core.slot;
  const uint32_t gen = core.generation;
  AddTimerOnLoop(Clock::now() + std::chrono::milliseconds(config_.connect_timeout_ms), [this, slot, gen] {
    Session* x = Lookup(slot, gen);
    if (x && x->core_->state.load(std::memory_order_relaxed) == SessionState::kConnecting) {
      CloseOnLoop(x, DisconnectReason::kConnectTimeout);
    }
  });
}

void IoLoop::OnConnectDone(Session* s, int32_t result) {
  internal::SessionCore& core = *s->core_;
  if (core.state.load(std::memory_order_relaxed) != SessionState::kConnecting) return;  // closing
  if (result < 0) {
    KEEL_LOG_DEBUG("connect to {} failed: {}", s->peer(), std::strerror(-result));
    CloseOnLoop(s, DisconnectReason::kConnectFailed);
    return;
  }
  {
    core::LockGuard<core::SpinLock> g(core.mu);
    core.state.store(SessionState::kOpen, std::memory_order_release);
  }
  NetCounters::Add(counters_->sessions_connected);
  core.connected_hook_ran = true;
  s->OnConnected();
  if (core.state.load(std::memory_order_relaxed) != SessionState::kOpen) return;
  StartRecvOnLoop(s);
  FlushOnLoop(s);  // what was sent while connecting
}

}  // namespace keel::net
