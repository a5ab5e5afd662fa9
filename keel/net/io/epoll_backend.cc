// Epoll backend: an edge-triggered reactor that presents proactor
// completions (internal/backend.h). Each fd is registered once, for
// EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, on its first operation, and removed
// by Cancel(fd) (which the loop always calls before closing a socket, so a
// reused fd number starts clean).
//
// Per fd at most one read-side operation (Accept or Recv) and one write-side
// operation (Connect or Send) is pending. The fd remembers whether it is
// known to be readable / writable: edge triggering reports a transition only
// once, so an operation started on a ready fd is tried at once (in the next
// Wait), and only EAGAIN clears the flag until the next edge.
//
// Completions produced outside epoll_wait (tries, cancellations) wait in a
// backlog that Wait drains first; Wait then polls without sleeping.

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <vector>

#include "keel/net/internal/backend.h"

namespace keel::net::internal {
namespace {

// Accepts done in one go before other fds get their turn.
constexpr int kMaxAcceptsPerTry = 256;

struct Op {
  OpKind kind = OpKind::kRecv;
  bool active = false;
  uint64_t user_data = 0;
  uint8_t* buf = nullptr;
  std::size_t len = 0;
  const iovec* iov = nullptr;
  int iovcnt = 0;
};

struct FdState {
  bool registered = false;
  bool readable = true;  // unknown counts as ready: try, and let EAGAIN say otherwise
  bool writable = true;
  bool queued = false;   // in the try list
  bool hup = false;      // EPOLLRDHUP/HUP/ERR seen: reads never wait for another edge
  Op read;               // kAccept or kRecv
  Op write;              // kConnect or kSend
};

class EpollBackend final : public Backend {
 public:
  EpollBackend(int epfd, int wakefd) : epfd_(epfd), wakefd_(wakefd) {}
  ~EpollBackend() override {
    ::close(wakefd_);
    ::close(epfd_);
  }

  std::string_view name() const noexcept override { return "epoll"; }

  void Accept(int listen_fd, uint64_t user_data) override {
    Start(listen_fd, OpKind::kAccept, user_data).read.active = true;
  }

  void Connect(int fd, const sockaddr* addr, socklen_t len, uint64_t user_data) override {
    if (::connect(fd, addr, len) == 0) {
      backlog_.push_back({user_data, 0, OpKind::kConnect, false});
      return;
    }
    if (errno != EINPROGRESS) {
      backlog_.push_back({user_data, -errno, OpKind::kConnect, false});
      return;
    }
    FdState& s = Register(fd);
    s.writable = false;  // the connect's EPOLLOUT edge says when it is done
    s.write = Op{OpKind::kConnect, true, user_data};
  }

  void Recv(int fd, uint8_t* buf, std::size_t len, uint64_t user_data) override {
    FdState& s = Start(fd, OpKind::kRecv, user_data);
    s.read.buf = buf;
    s.read.len = len;
    s.read.active = true;
  }

  void Send(int fd, const iovec* iov, int iovcnt, uint64_t user_data) override {
    FdState& s = Register(fd);
    s.write = Op{OpKind::kSend, true, user_data, nullptr, 0, iov, iovcnt};
    Queue(fd, s);
  }

  void Cancel(int fd) override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
    FdState& s = fds_[static_cast<std::size_t>(fd)];
    if (s.read.active) backlog_.push_back({s.read.user_data, -ECANCELED, s.read.kind, false});
    if (s.write.active) backlog_.push_back({s.write.user_data, -ECANCELED, s.write.kind, false});
    if (s.registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    s = FdState{};
  }

  std::size_t Wait(std::span<Completion> out, int timeout_ms) override {
    if (error_ != 0) return 0;
    RunTries();
    if (backlog_.empty()) Poll(timeout_ms);
    else Poll(0);
    RunTries();
    std::size_t n = 0;
    while (n < out.size() && !backlog_.empty()) {
      out[n++] = backlog_.front();
      backlog_.pop_front();
    }
    return n;
  }

  int error() const noexcept override { return error_; }

  void Wake() noexcept override {
    // Acquire/release pair with the exchange in Poll that clears the flag
    // before reading the eventfd, so a wake after that read is never lost.
    if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(wakefd_, &one, sizeof one);
  }

 private:
  FdState& Register(int fd) {
    const auto i = static_cast<std::size_t>(fd);
    if (i >= fds_.size()) fds_.resize(std::max(i + 1, fds_.size() * 2));
    FdState& s = fds_[i];
    if (!s.registered) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.fd = fd;
      if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) s.registered = true;
    }
    return s;
  }

  FdState& Start(int fd, OpKind kind, uint64_t user_data) {
    FdState& s = Register(fd);
    s.read = Op{kind, false, user_data};
    Queue(fd, s);
    return s;
  }

  void Queue(int fd, FdState& s) {
    if (!s.queued) {
      s.queued = true;
      tries_.push_back(fd);
    }
  }

  void RunTries() {
    // Swap first: a try may not add to the list, but keep it simple and safe.
    std::vector<int> tries;
    tries.swap(tries_);
    for (int fd : tries) {
      FdState& s = fds_[static_cast<std::size_t>(fd)];
      if (!s.queued) continue;  // cancelled since
      s.queued = false;
      Try(fd, s);
    }
    tries.clear();
    if (tries_.empty()) tries_.swap(tries);  // keep the capacity
  }

  void Poll(int timeout_ms) {
    epoll_event events[256];
    const int n = WaitForEvents(events, 256, timeout_ms);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wakefd_) {
        wake_pending_.store(false, std::memory_order_release);
        uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(wakefd_, &v, sizeof v);
        continue;
      }
      const auto idx = static_cast<std::size_t>(fd);
      if (idx >= fds_.size() || !fds_[idx].registered) continue;
      FdState& s = fds_[idx];
      const uint32_t e = events[i].events;
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s.readable = true;
      if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s.hup = true;
      if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s.writable = true;
      Try(fd, s);
    }
  }

  // epoll_wait, resumed after EINTR with the time left: a signal (or the
  // TIF_NOTIFY_SIGNAL of io_uring task work queued to this thread by a ring
  // it used; see UringBackend's destructor) must not end the wait early.
  // Returns 0 and sets error_ on any other failure.
  int WaitForEvents(epoll_event* events, int max, int timeout_ms) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    for (;;) {
      const int n = ::epoll_wait(epfd_, events, max, timeout_ms);
      if (n >= 0) return n;
      if (errno != EINTR) {
        error_ = -errno;
        return 0;
      }
      if (timeout_ms > 0) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return 0;
        timeout_ms = static_cast<int>(left);
      }
    }
  }

  void Try(int fd, FdState& s) {
    if (s.read.active && s.readable) TryRead(fd, s);
    if (s.write.active && s.writable) TryWrite(fd, s);
  }

  void TryRead(int fd, FdState& s) {
    Op& op = s.read;
    if (op.kind == OpKind::kAccept) {
      for (int i = 0; i < kMaxAcceptsPerTry; ++i) {
        const int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
          backlog_.push_back({op.user_data, c, OpKind::kAccept, true});
          continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          s.readable = false;
          return;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // EMFILE, ENFILE, ...: ends the multishot accept; the listener decides.
        backlog_.push_back({op.user_data, -errno, OpKind::kAccept, false});
        op.active = false;
        return;
      }
      Queue(fd, s);  // more may be waiting: continue in the next Wait
      return;
    }
    ssize_t n;
    do n = ::recv(fd, op.buf, op.len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      s.readable = false;
      return;
    }
    // A short read drained the socket's receive queue: the next bytes raise a
    // new edge, so the next Recv waits for it instead of paying a recv that
    // would only say EAGAIN (one syscall less per message in ping-pong).
    // Not after a FIN/HUP was reported: its edge is already spent, and the
    // next read must see the EOF.
    if (n > 0 && static_cast<std::size_t>(n) < op.len && !s.hup) s.readable = false;
    op.active = false;
    backlog_.push_back({op.user_data, n < 0 ? -errno : static_cast<int32_t>(n), OpKind::kRecv, false});
  }

  void TryWrite(int fd, FdState& s) {
    Op& op = s.write;
    if (op.kind == OpKind::kConnect) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      op.active = false;
      backlog_.push_back({op.user_data, -err, OpKind::kConnect, false});
      return;
    }
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(op.iov);
    msg.msg_iovlen = static_cast<std::size_t>(op.iovcnt);
    ssize_t n;
    // One buffer: send(), which skips copying in a msghdr and an iovec.
    do n = op.iovcnt == 1 ? ::send(fd, op.iov[0].iov_base, op.iov[0].iov_len, MSG_NOSIGNAL)
                          : ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      s.writable = false;
      return;
    }
    op.active = false;
    backlog_.push_back({op.user_data, n < 0 ? -errno : static_cast<int32_t>(n), OpKind::kSend, false});
  }

  const int epfd_;
  const int wakefd_;
  std::atomic<bool> wake_pending_{false};
  int error_ = 0;  // see Backend::error()
  std::vector<FdState> fds_;
  std::vector<int> tries_;
  std::deque<Completion> backlog_;
};

}  // namespace

std::unique_ptr<Backend> MakeEpollBackend(std::string* error) {
  const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    if (error) *error = std::string("epoll_create1: ") + std::strerror(errno);
    return nullptr;
  }
  const int wakefd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd < 0) {
    if (error) *error = std::string("eventfd: ") + std::strerror(errno);
    ::close(epfd);
    return nullptr;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: a wake is never missed
  ev.data.fd = wakefd;
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev);
  return std::make_unique<EpollBackend>(epfd, wakefd);
}

}  // namespace keel::net::internal
