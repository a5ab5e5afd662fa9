// UringBackend: the io_uring implementation of internal::Backend (liburing).
//
// Design choices:
//   - Batched submission. Accept/Connect/Recv/Send/Cancel only fill SQEs; the
//     ring is entered in Wait() (one io_uring_enter submits and waits). A full
//     SQ is submitted on the spot and the SQE taken again; if the kernel
//     refuses (-EBUSY/-EAGAIN: CQ overflow backlog) the CQ is reaped into
//     ready_ first, which Wait() hands out before anything else.
//   - Per-op records. Every operation owns an Op from a pool (stable
//     addresses in a deque, free list of indices). The SQE user_data is
//     (generation << 32 | index), so a stale CQE or a stale cancel key can
//     never hit a recycled record. A parallel OpArgs record holds what the
//     kernel reads after submission and the caller does not own: the msghdr
//     of a gathered Send (its msg_iov points at the caller's iovec array,
//     which the caller keeps valid until the completion) and the sockaddr
//     copy of a Connect; kept apart so that the Op every completion touches
//     stays 32 bytes. Why SENDMSG
//     and not WRITEV: MSG_NOSIGNAL (no SIGPIPE on a reset peer) exists only on
//     the socket verbs, and IORING_OP_SENDMSG is the gathered one (5.3+). A
//     write of one buffer is an IORING_OP_SEND (no msghdr to copy in).
//   - Buffer lending: recv buffers and iovec arrays are lent by the caller
//     until the op's final completion, cancellation included; the destructor
//     cancels and drains whatever is still in flight (bounded) so the kernel
//     stops touching lent memory before it returns.
//   - Cancellation. Cancel(fd) is one IORING_OP_ASYNC_CANCEL per live op on
//     fd, keyed by its user_data, and none when fd has no live op (the close
//     of a finished session). Live ops are indexed by fd (an intrusive list
//     per fd), so Cancel is O(ops on fd), and the kernel finds each by its
//     user_data hash. Not IORING_ASYNC_CANCEL_FD: the kernel serves it by
//     walking its whole cancel table, O(pending requests) per socket, which
//     made a mass disconnect O(n^2) (~2% of a churn profile). Cancel SQEs
//     carry kInternalBit and their CQEs never surface. The cancelled ops
//     complete with their own user_data (-ECANCELED, or their real result
//     when they won the race).
//   - Accept is multishot (5.19+) or a single accept re-armed by the backend
//     after each connection, so both look multishot to the caller. A
//     multishot that the kernel ends early with a success (CQ overflow ends
//     multishots) is re-armed too; only an error or Cancel gives more=false.
//   - Wake(): an eventfd whose 8-byte read stays armed on the ring. An atomic
//     flag makes a second Wake() before the loop ran free of syscalls.
//   - Ring flags SUBMIT_ALL, COOP_TASKRUN, SINGLE_ISSUER are asked for and
//     dropped on -EINVAL (older kernels). Not DEFER_TASKRUN: with it a recv
//     whose data arrives later completes as deferred task work, which the
//     kernel runs a bounded batch at a time per io_uring_enter; under a flood
//     of send completions (room broadcast to 1000 members, a saturated core)
//     recvs waited 0.3-0.7 s with their data unread in the socket (issue 7,
//     docs/benchmarks.md: p99 487 ms with it, 50 ms without, 5 pairs). With SINGLE_ISSUER the
//     ring starts disabled (R_DISABLED) and is enabled by the first thread
//     that enters it, since the IoLoop may build its backend on another
//     thread than the one it runs on. Ops are started and Wait() called on
//     that thread only; the destructor may run elsewhere, but then it cannot
//     drain ops still in flight (the kernel refuses a second issuer).
//   - Probing: opcodes through io_uring_get_probe_ring (5.6+ required:
//     ACCEPT, CONNECT, RECV, SEND, SENDMSG, READ, ASYNC_CANCEL); IORING_OP_SOCKET
//     (5.19) stands for "multishot accept and cancel-by-fd exist", which came
//     in the same release. IORING_FEAT_NODROP (5.5) is required: without it a
//     CQ overflow would lose completions, breaking "exactly once".

#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <vector>

#include "keel/net/internal/backend.h"
#include "keel/net/internal/backend_testing.h"

namespace keel::net::internal {
namespace {

constexpr uint64_t kInternalBit = uint64_t{1} << 63;
constexpr uint64_t kWakeTag = kInternalBit | 1;
constexpr uint64_t kCancelTag = kInternalBit | 2;
constexpr int kAcceptFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

std::string Errno(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

struct Options {
  unsigned entries = 256;
  bool compat = false;  // test hook: behave as on a pre-5.19 kernel
};

// What every completion touches: 32 bytes, two to a cache line. The records
// of a busy server are cold when their CQEs arrive (one per session, a
// thousand sessions apart), so their size is the cache misses Reap pays.
struct Op {
  OpKind kind = OpKind::kRecv;
  bool in_use = false;
  bool cancelled = false;  // Cancel(fd) seen: an ending accept is not re-armed
  int fd = -1;
  uint32_t prev_on_fd = UINT32_MAX;  // the live ops on one fd, a doubly linked list
  uint32_t next_on_fd = UINT32_MAX;
  uint32_t gen = 0;
  uint64_t user_data = 0;
};
static_assert(sizeof(Op) <= 32);

// What the kernel reads after submission for the rarer ops, by op index: the
// msghdr of a gathered Send, the sockaddr copy of a Connect. Kept out of Op
// (184 bytes that a recv or a one-buffer send never needs).
struct OpArgs {
  msghdr msg{};
  sockaddr_storage addr{};
};

class UringBackend final : public Backend {
 public:
  UringBackend() = default;
  UringBackend(const UringBackend&) = delete;
  UringBackend& operator=(const UringBackend&) = delete;
  ~UringBackend() override;

  bool Init(const Options& opt, std::string* error);

  std::string_view name() const noexcept override { return "uring"; }
  void Accept(int listen_fd, uint64_t user_data) override;
  void Connect(int fd, const sockaddr* addr, socklen_t len, uint64_t user_data) override;
  void Recv(int fd, uint8_t* buf, std::size_t len, uint64_t user_data) override;
  void Send(int fd, const iovec* iov, int iovcnt, uint64_t user_data) override;
  void Cancel(int fd) override;
  std::size_t Wait(std::span<Completion> out, int timeout_ms) override;
  void Wake() noexcept override;
  int error() const noexcept override { return error_; }

 private:
  uint32_t NewOp(OpKind kind, int fd, uint64_t user_data);
  void FreeOp(uint32_t index);
  static uint64_t Key(const Op& op, uint32_t index) {
    return (uint64_t{op.gen} << 32) | index;
  }
  io_uring_sqe* GetSqe();
  // Takes an SQE for op `index`; if none can be had, completes it at once.
  io_uring_sqe* SqeFor(uint32_t index);
  void PrepAccept(io_uring_sqe* sqe, uint32_t index);
  void ArmWake();
  int Submit();
  bool EnsureEnabled();
  // Moves CQEs into ready_ until it holds `limit` undelivered completions.
  void Reap(std::size_t limit);
  void RearmAccepts();
  void Handle(const io_uring_cqe& cqe);
  void PrefetchOp(uint64_t data) const noexcept {
    const auto index = static_cast<uint32_t>(data);
    if ((data & kInternalBit) == 0 && index < ops_.size()) __builtin_prefetch(&ops_[index]);
  }
  static constexpr unsigned kPrefetchAhead = 4;
  void Fail(uint32_t index, int err);

  io_uring ring_{};
  bool ring_ok_ = false;
  bool enabled_ = true;
  bool multishot_accept_ = false;
  bool cancel_fd_ = false;
  int event_fd_ = -1;
  uint64_t wake_buf_ = 0;
  bool wake_armed_ = false;
  bool woken_ = false;  // the wake read completed during this Wait
  int error_ = 0;       // see Backend::error()
  // Set by Wake() before writing the eventfd; cleared by the loop (Handle)
  // when the read completes, before it re-arms. acq_rel pairs the two.
  std::atomic<bool> wake_pending_{false};
  std::deque<Op> ops_;
  std::deque<OpArgs> args_;  // parallel to ops_ (stable addresses)
  std::vector<uint32_t> free_;
  std::vector<uint32_t> accepts_;  // live accept ops: few, scanned by Cancel
  std::vector<uint32_t> fd_head_;  // by fd: first live op on it, UINT32_MAX if none
  std::vector<uint32_t> rearm_;    // accepts to re-arm once the CQ is advanced
  std::size_t live_ = 0;
  std::vector<Completion> ready_;
  std::size_t ready_pos_ = 0;
};

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

std::unique_ptr<Backend> Make(const Options& opt, std::string* error) {
  auto backend = std::make_unique<UringBackend>();
  if (!backend->Init(opt, error)) return nullptr;
  return backend;
}

}  // namespace

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
