// UringBackend's operations and completions (design: uring_backend.h).
#include "keel/net/io/uring_backend.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace keel::net::internal::uring {

uint32_t UringBackend::NewOp(OpKind kind, int fd, uint64_t user_data) {
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<uint32_t>(ops_.size());
    ops_.emplace_back();
    args_.emplace_back();
  }
  Op& op = ops_[index];
  op.kind = kind;
  op.in_use = true;
  op.cancelled = false;
  op.fd = fd;
  op.user_data = user_data;
  op.prev_on_fd = UINT32_MAX;
  op.next_on_fd = UINT32_MAX;
  if (fd >= 0) {
    const auto slot = static_cast<std::size_t>(fd);
    if (slot >= fd_head_.size()) fd_head_.resize(std::max<std::size_t>(slot + 1, fd_head_.size() * 2), UINT32_MAX);
    op.next_on_fd = fd_head_[slot];
    if (op.next_on_fd != UINT32_MAX) ops_[op.next_on_fd].prev_on_fd = index;
    fd_head_[slot] = index;
  }
  if (kind == OpKind::kAccept) accepts_.push_back(index);
  ++live_;
  return index;
}

void UringBackend::FreeOp(uint32_t index) {
  Op& op = ops_[index];
  op.in_use = false;
  if (op.fd >= 0) {
    if (op.prev_on_fd != UINT32_MAX) ops_[op.prev_on_fd].next_on_fd = op.next_on_fd;
    else fd_head_[static_cast<std::size_t>(op.fd)] = op.next_on_fd;
    if (op.next_on_fd != UINT32_MAX) ops_[op.next_on_fd].prev_on_fd = op.prev_on_fd;
  }
  if (op.kind == OpKind::kAccept) std::erase(accepts_, index);
  op.gen = (op.gen + 1) & 0x7fffffffu;  // keeps kInternalBit clear
  --live_;
  free_.push_back(index);
}

bool UringBackend::EnsureEnabled() {
  if (enabled_) return true;
  // Makes the calling thread the ring's single issuer (SINGLE_ISSUER).
  // Raw syscall: liburing 2.3 declares io_uring_enable_rings but does not
  // export it (added to its symbol map in 2.4).
  if (syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0)
    return false;
  enabled_ = true;
  return true;
}

int UringBackend::Submit() {
  if (!EnsureEnabled()) return -EBADFD;
  for (int tries = 0; tries < 8; ++tries) {
    int rc = io_uring_submit(&ring_);
    if (rc >= 0) return rc;
    if (rc == -EINTR) continue;
    if (rc == -EBUSY || rc == -EAGAIN) {
      // CQ overflow backlog: make room by reaping, then retry.
      io_uring_get_events(&ring_);
      Reap(SIZE_MAX);
      continue;
    }
    return rc;
  }
  return -EBUSY;
}

io_uring_sqe* UringBackend::GetSqe() {
  for (int tries = 0; tries < 4; ++tries) {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
    if (Submit() < 0 && tries > 1) break;
  }
  return io_uring_get_sqe(&ring_);
}

void UringBackend::Fail(uint32_t index, int err) {
  Op& op = ops_[index];
  ready_.push_back(Completion{op.user_data, -err, op.kind, false});
  FreeOp(index);
}

io_uring_sqe* UringBackend::SqeFor(uint32_t index) {
  io_uring_sqe* sqe = GetSqe();
  if (sqe == nullptr) Fail(index, EBUSY);
  return sqe;
}

void UringBackend::PrepAccept(io_uring_sqe* sqe, uint32_t index) {
  Op& op = ops_[index];
  if (multishot_accept_) {
    io_uring_prep_multishot_accept(sqe, op.fd, nullptr, nullptr, kAcceptFlags);
  } else {
    io_uring_prep_accept(sqe, op.fd, nullptr, nullptr, kAcceptFlags);
  }
  io_uring_sqe_set_data64(sqe, Key(op, index));
}

void UringBackend::Accept(int listen_fd, uint64_t user_data) {
  const uint32_t index = NewOp(OpKind::kAccept, listen_fd, user_data);
  if (io_uring_sqe* sqe = SqeFor(index)) PrepAccept(sqe, index);
}

void UringBackend::Connect(int fd, const sockaddr* addr, socklen_t len, uint64_t user_data) {
  const uint32_t index = NewOp(OpKind::kConnect, fd, user_data);
  OpArgs& args = args_[index];
  if (len > sizeof(args.addr)) return Fail(index, EINVAL);
  std::memcpy(&args.addr, addr, len);  // the kernel reads it at issue time
  io_uring_sqe* sqe = SqeFor(index);
  if (sqe == nullptr) return;
  io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&args.addr), len);
  io_uring_sqe_set_data64(sqe, Key(ops_[index], index));
}

void UringBackend::Recv(int fd, uint8_t* buf, std::size_t len, uint64_t user_data) {
  const uint32_t index = NewOp(OpKind::kRecv, fd, user_data);
  io_uring_sqe* sqe = SqeFor(index);
  if (sqe == nullptr) return;
  const std::size_t n = std::min<std::size_t>(len, 1u << 30);
  io_uring_prep_recv(sqe, fd, buf, n, 0);
  io_uring_sqe_set_data64(sqe, Key(ops_[index], index));
}

void UringBackend::Send(int fd, const iovec* iov, int iovcnt, uint64_t user_data) {
  const uint32_t index = NewOp(OpKind::kSend, fd, user_data);
  Op& op = ops_[index];
  if (iovcnt < 0) return Fail(index, EINVAL);
  if (iovcnt == 1) {
    // One buffer (every echo, most replies): IORING_OP_SEND. SENDMSG would
    // make the kernel copy and check a msghdr and import an iovec per write
    // (io_msg_copy_hdr: 1.6% of the server's CPU samples at 1000 x 4 KiB echo).
    io_uring_sqe* sqe = SqeFor(index);
    if (sqe == nullptr) return;
    io_uring_prep_send(sqe, fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, Key(op, index));
    return;
  }
  msghdr& msg = args_[index].msg;
  msg = msghdr{};
  msg.msg_iov = const_cast<iovec*>(iov);  // the kernel only reads it
  msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
  io_uring_sqe* sqe = SqeFor(index);
  if (sqe == nullptr) return;
  io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, Key(op, index));
}

void UringBackend::Cancel(int fd) {
  // Accepts are marked so that one ending with a success is not re-armed.
  for (uint32_t i : accepts_) {
    if (ops_[i].fd == fd) ops_[i].cancelled = true;
  }
  // One cancel per live op on fd, keyed by its user_data (see banner).
  if (fd < 0 || static_cast<std::size_t>(fd) >= fd_head_.size()) return;
  for (uint32_t i = fd_head_[static_cast<std::size_t>(fd)]; i != UINT32_MAX; i = ops_[i].next_on_fd) {
    io_uring_sqe* sqe = GetSqe();
    if (sqe == nullptr) continue;  // the op still completes, only later
    io_uring_prep_cancel64(sqe, Key(ops_[i], i), 0);
    io_uring_sqe_set_data64(sqe, kCancelTag);
  }
}

void UringBackend::ArmWake() {
  io_uring_sqe* sqe = GetSqe();
  if (sqe == nullptr) return;  // re-tried at the next Wait
  io_uring_prep_read(sqe, event_fd_, &wake_buf_, sizeof(wake_buf_), 0);
  io_uring_sqe_set_data64(sqe, kWakeTag);
  wake_armed_ = true;
}

void UringBackend::Wake() noexcept {
  // acq_rel: pairs with the exchange in Handle(kWakeTag).
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  ssize_t rc;
  do {
    rc = write(event_fd_, &one, sizeof(one));
  } while (rc < 0 && errno == EINTR);
}

void UringBackend::Handle(const io_uring_cqe& cqe) {
  const uint64_t data = cqe.user_data;
  if (data == kWakeTag) {
    wake_armed_ = false;
    woken_ = true;
    wake_pending_.exchange(false, std::memory_order_acq_rel);
    return;
  }
  if (data & kInternalBit || data == LIBURING_UDATA_TIMEOUT) return;  // cancels
  const uint32_t index = static_cast<uint32_t>(data);
  if (index >= ops_.size()) return;
  Op& op = ops_[index];
  if (!op.in_use || op.gen != static_cast<uint32_t>(data >> 32)) return;
  Completion c{op.user_data, cqe.res, op.kind, false};
  if (op.kind == OpKind::kAccept) {
    const bool kernel_more = (cqe.flags & IORING_CQE_F_MORE) != 0;
    if (cqe.res >= 0 && !op.cancelled) {
      c.more = true;
      // Single-shot, or a multishot the kernel ended: re-armed by Reap after
      // it advanced the CQ (taking an SQE may submit, and so reap, here).
      if (!kernel_more) rearm_.push_back(index);
      ready_.push_back(c);
      return;
    }
    if (kernel_more) {  // cancelled, but the kernel's final CQE is still due
      c.more = true;
      ready_.push_back(c);
      return;
    }
  }
  ready_.push_back(c);
  FreeOp(index);
}

void UringBackend::RearmAccepts() {
  std::vector<uint32_t> indices;
  indices.swap(rearm_);
  for (uint32_t index : indices) {
    if (io_uring_sqe* sqe = GetSqe()) {
      PrepAccept(sqe, index);
    } else {
      Fail(index, EBUSY);
    }
  }
}

void UringBackend::Reap(std::size_t limit) {
  for (int round = 0; round < 2; ++round) {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    const unsigned available = io_uring_cq_ready(&ring_);
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (ready_.size() - ready_pos_ >= limit) break;
      // The Op of a CQE a few places on is fetched ahead: with many sessions
      // the records are cold and Handle's first load of one stalls.
      if (seen + kPrefetchAhead < available) {
        PrefetchOp(ring_.cq.cqes[(head + kPrefetchAhead) & ring_.cq.ring_mask].user_data);
      }
      Handle(*cqe);
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
    RearmAccepts();
    if (!io_uring_cq_has_overflow(&ring_) || ready_.size() - ready_pos_ >= limit) break;
    io_uring_get_events(&ring_);  // flushes the kernel's overflow list (NODROP)
  }
}

std::size_t UringBackend::Wait(std::span<Completion> out, int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  if (error_ != 0) return 0;
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  if (out.empty()) timeout_ms = 0;  // nothing could be handed out: only submit
  std::size_t n = 0;
  for (;;) {
    if (!wake_armed_) ArmWake();
    const bool have_ready = ready_pos_ < ready_.size();
    int rc;
    if (have_ready || timeout_ms == 0) {
      rc = EnsureEnabled() ? io_uring_submit_and_get_events(&ring_) : -EBADFD;
    } else if (timeout_ms < 0) {
      io_uring_cqe* cqe = nullptr;
      rc = EnsureEnabled() ? io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr)
                           : -EBADFD;
    } else {
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::max(deadline - Clock::now(), Clock::duration::zero()));
      __kernel_timespec ts{static_cast<long long>(left.count() / 1'000'000'000),
                           static_cast<long long>(left.count() % 1'000'000'000)};
      io_uring_cqe* cqe = nullptr;
      rc = EnsureEnabled() ? io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr)
                           : -EBADFD;
    }
    if (rc == -EBUSY || rc == -EAGAIN) Submit();  // reaps, then submits
    Reap(out.size() - n);
    while (n < out.size() && ready_pos_ < ready_.size()) out[n++] = ready_[ready_pos_++];
    if (ready_pos_ == ready_.size()) {
      ready_.clear();
      ready_pos_ = 0;
    }
    if (n > 0 || woken_ || timeout_ms == 0) break;
    if (timeout_ms > 0 && Clock::now() >= deadline) break;
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
      error_ = rc;
      break;
    }
  }
  woken_ = false;  // a wake seen while starting ops (full SQ) also ends a Wait
  return n;
}

}  // namespace keel::net::internal::uring
