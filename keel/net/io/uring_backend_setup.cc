// UringBackend's ring set-up (flag ladder, probing, SINGLE_ISSUER enable)
// and teardown (cancel and drain what is in flight), and the factories.
#include "keel/net/io/uring_backend.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "keel/net/internal/backend_testing.h"

namespace keel::net::internal {
namespace uring {
namespace {

std::unique_ptr<Backend> Make(const Options& opt, std::string* error) {
  auto backend = std::make_unique<UringBackend>();
  if (!backend->Init(opt, error)) return nullptr;
  return backend;
}

}  // namespace

bool UringBackend::Init(const Options& opt, std::string* error) {
  const unsigned entries = std::max(opt.entries, 4u);
  // Ladder of flag sets, newest first; -EINVAL means "unknown flag here".
  const unsigned kBase = IORING_SETUP_CQSIZE;
  const unsigned ladder[] = {
      kBase | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
          IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED,
      kBase | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
      kBase,
      0,
  };
  int rc = -EINVAL;
  for (unsigned flags : ladder) {
    if (opt.compat && flags != 0) continue;
    io_uring_params p{};
    p.flags = flags;
    p.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &ring_, &p);
    if (rc != -EINVAL) break;
  }
  if (rc < 0) {
    if (error) {
      *error = Errno("io_uring_queue_init", -rc);
      if (rc == -EPERM || rc == -ENOSYS)
        *error += " (seccomp or kernel.io_uring_disabled)";
    }
    return false;
  }
  ring_ok_ = true;
  enabled_ = (ring_.flags & IORING_SETUP_R_DISABLED) == 0;
  if ((ring_.features & IORING_FEAT_NODROP) == 0) {
    if (error) *error = "io_uring: kernel lacks IORING_FEAT_NODROP (5.5+ needed)";
    return false;
  }
  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (probe == nullptr) {
    if (error) *error = "io_uring: opcode probe failed (5.6+ needed)";
    return false;
  }
  struct Need { int op; const char* name; };
  const Need need[] = {{IORING_OP_ACCEPT, "ACCEPT"}, {IORING_OP_CONNECT, "CONNECT"},
                       {IORING_OP_RECV, "RECV"}, {IORING_OP_SEND, "SEND"},
                       {IORING_OP_SENDMSG, "SENDMSG"}, {IORING_OP_READ, "READ"},
                       {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}};
  for (const Need& n : need) {
    if (!io_uring_opcode_supported(probe, n.op)) {
      if (error) *error = std::string("io_uring: kernel lacks IORING_OP_") + n.name;
      io_uring_free_probe(probe);
      return false;
    }
  }
  const bool is_5_19 = io_uring_opcode_supported(probe, IORING_OP_SOCKET) != 0;
  io_uring_free_probe(probe);
  multishot_accept_ = is_5_19 && !opt.compat;
  cancel_fd_ = is_5_19 && !opt.compat;
  // Without EXT_ARG liburing waits with a timeout SQE (LIBURING_UDATA_TIMEOUT).
  if (opt.compat) ring_.features &= ~IORING_FEAT_EXT_ARG;

  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) {
    if (error) *error = Errno("eventfd", errno);
    return false;
  }
  ArmWake();
  return true;
}

UringBackend::~UringBackend() {
  if (!ring_ok_) {
    if (event_fd_ >= 0) close(event_fd_);
    return;
  }
  // Stop the kernel from touching lent buffers before returning. A ring never
  // entered (still R_DISABLED) has submitted nothing: no need to enable it.
  // The armed wake read is drained too: it reads into wake_buf_, a member.
  // What the ring's exit work still tears down after io_uring_queue_exit
  // (e.g. compat-mode timeout SQEs) reaches this thread as task work, which
  // without COOP_TASKRUN is signalled (TIF_NOTIFY_SIGNAL) and makes the next
  // blocking syscall here return EINTR: callers must resume their waits.
  if ((live_ > 0 || wake_armed_) && enabled_) {
    for (uint32_t i : accepts_) ops_[i].cancelled = true;
    if (cancel_fd_) {
      if (io_uring_sqe* sqe = GetSqe()) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, kCancelTag);
      }
    } else {
      for (uint32_t i = 0; i < ops_.size(); ++i) {
        if (!ops_[i].in_use) continue;
        io_uring_sqe* sqe = GetSqe();
        if (sqe == nullptr) break;
        io_uring_prep_cancel64(sqe, Key(ops_[i], i), 0);
        io_uring_sqe_set_data64(sqe, kCancelTag);
      }
      if (wake_armed_) {
        if (io_uring_sqe* sqe = GetSqe()) {
          io_uring_prep_cancel64(sqe, kWakeTag, 0);
          io_uring_sqe_set_data64(sqe, kCancelTag);
        }
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while ((live_ > 0 || wake_armed_) && std::chrono::steady_clock::now() < deadline) {
      __kernel_timespec ts{0, 10'000'000};
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      Reap(SIZE_MAX);
      for (std::size_t i = ready_pos_; i < ready_.size(); ++i) {  // fds nobody will take
        if (ready_[i].kind == OpKind::kAccept && ready_[i].result >= 0) close(ready_[i].result);
      }
      ready_.clear();
      ready_pos_ = 0;
      if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) break;
    }
  }
  io_uring_queue_exit(&ring_);
  if (event_fd_ >= 0) close(event_fd_);
}

}  // namespace uring

using uring::Make;
using uring::Options;

std::unique_ptr<Backend> MakeUringBackend(unsigned entries, std::string* error) {
  Options opt;
  opt.entries = entries;
  return Make(opt, error);
}

// Declared in internal/backend_testing.h.
std::unique_ptr<Backend> MakeUringBackendCompatForTest(unsigned entries, std::string* error) {
  Options opt;
  opt.entries = entries;
  opt.compat = true;
  return Make(opt, error);
}

}  // namespace keel::net::internal
