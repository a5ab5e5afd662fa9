#pragma once
// UringBackend: the io_uring implementation of internal::Backend (liburing).
// Private to keel_net: uring_backend.cc starts operations and reaps their
// completions, uring_backend_setup.cc builds and tears down the ring.
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
#include <memory>
#include <string>
#include <vector>

#include "keel/net/internal/backend.h"

namespace keel::net::internal::uring {

inline constexpr uint64_t kInternalBit = uint64_t{1} << 63;
inline constexpr uint64_t kWakeTag = kInternalBit | 1;
inline constexpr uint64_t kCancelTag = kInternalBit | 2;
inline constexpr int kAcceptFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

inline std::string Errno(const char* what, int err) {
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

}  // namespace keel::net::internal::uring
