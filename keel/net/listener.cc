#include "keel/net/listener.h"

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "keel/core/log.h"
#include "keel/net/io_loop.h"
#include "keel/net/socket_options.h"

namespace keel::net {

using internal::NetCounters;

namespace {
uint64_t FdLimit() noexcept {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
  return rl.rlim_cur;
}
}  // namespace

// On `loop`'s thread. A factory that throws (the application's code) costs
// this connection only: AcceptedOnLoop closes the fd of a null session.
SessionRef Listener::NewSession(IoLoop* loop, const Factory& factory) {
  try {
    return factory();
  } catch (...) {
    loop->HookThrew(nullptr, "the session factory");
    return nullptr;
  }
}

Listener::Listener(uint32_t id, IoLoop* loop, std::vector<IoLoop*> loops, Factory factory,
                   std::shared_ptr<NetCounters> counters)
    : id_(id),
      loop_(loop), loops_(std::move(loops)), factory_(std::move(factory)), counters_(std::move(counters)) {}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

bool Listener::Bind(const std::string& host, uint16_t port, int backlog, std::string* error) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!ResolveAddress(host, port, &addr, &len, error)) return false;
  fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  auto fail = [&](const char* what) {
    if (error) *error = std::string(what) + " " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return false;
  };
  if (fd_ < 0) return fail("socket");
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0) return fail("bind");
  if (::listen(fd_, backlog) != 0) return fail("listen");
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  fd_limit_ = FdLimit();
  return true;
}

void Listener::ArmOnLoop() {
  if (stopped_ || armed_ || fd_ < 0) return;
  armed_ = true;
  loop_->backend().Accept(fd_, IoLoop::kListenerTag | id_);
}

void Listener::OnAcceptOnLoop(const internal::Completion& c) {
  if (!c.more) armed_ = false;
  if (c.result >= 0) {
    if (!pausing_) paused_before_ = false;
    HandOff(c.result);
  } else if (c.result == -EMFILE || c.result == -ENFILE || c.result == -ENOBUFS || c.result == -ENOMEM) {
    PauseOnLoop(std::strerror(-c.result));
    return;
  } else if (c.result != -ECANCELED) {
    KEEL_LOG_WARN("listener :{}: accept: {}", port_, std::strerror(-c.result));
    PauseOnLoop("accept error");
    return;
  }
  if (stopped_) {
    CloseIfDoneOnLoop();
    return;
  }
  if (!armed_ && !pausing_) ArmOnLoop();  // a multishot accept ended early: start another
}

void Listener::AbandonOnLoop() {
  stopped_ = true;
  armed_ = false;
  // shutdown on a listening socket disconnects it (inet_shutdown): pending
  // and new connections are reset, though the failed ring may still hold
  // the file until it is torn down, so close() alone would not do it.
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  KEEL_LOG_WARN("listener :{}: its IO loop failed; no longer accepting", port_);
}

void Listener::HandOff(int fd) {
  if (stopped_) {
    ::close(fd);
    return;
  }
  const auto open = counters_->sessions_open.load(std::memory_order_relaxed);
  if (open >= loop_->config().max_sessions) {
    ::close(fd);
    NetCounters::Add(counters_->sessions_refused);
    counters_->CountDisconnect(DisconnectReason::kTooManySessions);
    return;
  }
  // Read per accept: the limit may change at run time, and io_uring's accept
  // reads RLIMIT_NOFILE when the request is prepared (io_accept_prep), so an
  // armed multishot accept keeps handing out fds past a limit lowered since
  // (seen on 6.18); the reserve check here catches that.
  fd_limit_ = FdLimit();
  const bool reserve_reached = static_cast<uint64_t>(fd) + loop_->config().fd_reserve >= fd_limit_;
  // Round-robin over the loops still running (this one is: it runs this).
  IoLoop* target = loops_[next_loop_++ % loops_.size()];
  for (std::size_t tries = 1; target->failed() && tries < loops_.size(); ++tries) {
    target = loops_[next_loop_++ % loops_.size()];
  }
  if (target->failed()) target = loop_;
  if (target == loop_) {
    target->AcceptedOnLoop(NewSession(target, factory_), fd);
  } else {
    target->PostLoopWork([target, factory = &factory_, fd] {
      if (target->stopping()) {
        ::close(fd);  // the target loop is shutting down (or already gone: ~IoLoop drains)
        return;
      }
      target->AcceptedOnLoop(NewSession(target, *factory), fd);
    });
  }
  // This connection is kept; the next ones wait until fds are free again.
  if (reserve_reached) PauseOnLoop("fd reserve reached");
}

void Listener::PauseOnLoop(const char* why) {
  if (pausing_ || stopped_) return;
  pausing_ = true;
  NetCounters::Add(counters_->accept_pauses);
  const uint32_t ms = loop_->config().accept_pause_ms;
  // One warning per streak of pauses, not one every accept_pause_ms.
  if (!paused_before_) KEEL_LOG_WARN("listener :{}: {}; accepting paused for {} ms at a time", port_, why, ms);
  paused_before_ = true;
  if (armed_) loop_->backend().Cancel(fd_);  // the final completion arrives as -ECANCELED
  loop_->AddTimerOnLoop(IoLoop::Clock::now() + std::chrono::milliseconds(ms), [this] {
    pausing_ = false;
    fd_limit_ = FdLimit();
    if (stopped_) {
      CloseIfDoneOnLoop();
    } else {
      ArmOnLoop();
    }
  });
}

void Listener::StopOnLoop() {
  if (stopped_) return;
  stopped_ = true;
  if (armed_) loop_->backend().Cancel(fd_);
  CloseIfDoneOnLoop();
}

void Listener::CloseIfDoneOnLoop() {
  if (armed_ || fd_ < 0) return;
  loop_->backend().Cancel(fd_);  // the backend forgets the fd before it is closed
  ::close(fd_);
  fd_ = -1;
  loop_->DetachListenerOnLoop(this);
}

}  // namespace keel::net
