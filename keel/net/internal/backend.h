#pragma once
// Backend: the narrow interface between an IoLoop and the kernel, proactor
// style. The loop starts operations; the backend reports each one's result
// later as a Completion carrying the loop's `user_data` (the loop encodes a
// session slot and a generation in it, so a completion can never reach a
// reused slot). One backend per IoLoop, used only on the loop's thread,
// except Wake(), which any thread may call.
//
// Ownership rules, for every backend:
//   - Every started operation completes exactly once (or, for multishot
//     accept, until a completion with more=false), cancellation included.
//     Buffers and iovec arrays passed in stay owned by the caller and must
//     stay valid until that final completion.
//   - The final completion of a multishot accept (more=false) may still
//     carry a result: an accepted fd (>= 0) that the caller owns and must
//     use or close, when a connection won the race with Cancel or the
//     kernel ended the multishot; or -errno (-ECANCELED after Cancel).
//   - Cancel(fd) makes every pending operation on fd complete soon
//     (result -ECANCELED if it had not finished). The caller closes fd only
//     after the last of them has completed.
//   - Results follow io_uring's convention: >= 0 success (bytes, or the new
//     fd for accept, 0 for connect), < 0 is -errno.
//
// Implementations: epoll (edge-triggered reactor that performs the syscall
// when the fd is ready and reports it as a completion) and io_uring
// (liburing; batched submission, multishot accept).

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace keel::net::internal {

// Cancel is not an operation: it produces no completion of its own.
enum class OpKind : uint8_t { kAccept, kConnect, kRecv, kSend };

struct Completion {
  uint64_t user_data = 0;
  int32_t result = 0;      // see banner
  OpKind kind = OpKind::kRecv;
  bool more = false;       // multishot accept: further completions will follow
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const noexcept = 0;  // "uring" | "epoll"

  // Multishot: every accepted connection completes with its fd (already
  // non-blocking and close-on-exec) and more=true, until an error or a
  // Cancel(listen_fd) ends it with more=false.
  virtual void Accept(int listen_fd, uint64_t user_data) = 0;
  // fd: a non-blocking socket. Completes with 0 once connected, or -errno.
  virtual void Connect(int fd, const sockaddr* addr, socklen_t len, uint64_t user_data) = 0;
  // One read of up to `len` bytes into `buf`: bytes read, 0 at EOF, or -errno.
  virtual void Recv(int fd, uint8_t* buf, std::size_t len, uint64_t user_data) = 0;
  // One gathered write (MSG_NOSIGNAL): bytes written (may be short), or -errno.
  virtual void Send(int fd, const iovec* iov, int iovcnt, uint64_t user_data) = 0;
  // See banner. Completions of the cancelled operations carry their own
  // user_data; Cancel itself produces no completion.
  virtual void Cancel(int fd) = 0;

  // Submits what was started and waits up to timeout_ms (-1: forever, 0:
  // poll) for completions; fills `out` and returns how many. A Wake() from
  // another thread ends the wait early (returns possibly 0). Signals do not:
  // an interrupted wait (EINTR) is resumed with the time that is left.
  //
  // Fatal errors: when the kernel refuses to wait or submit for a reason
  // that retrying cannot fix (epoll_wait: EBADF/EFAULT/EINVAL; io_uring_enter:
  // anything but ETIME/EINTR/EBUSY/EAGAIN), Wait returns the completions it
  // already has (possibly 0) and error() turns non-zero. The error is
  // sticky; every later Wait returns 0 at once. The caller must check
  // error() after each Wait: operations in flight will not complete.
  virtual std::size_t Wait(std::span<Completion> out, int timeout_ms) = 0;
  // 0, or -errno of the fatal error that ended the backend (see Wait).
  virtual int error() const noexcept = 0;
  // Thread-safe; cheap when a wake is already pending.
  virtual void Wake() noexcept = 0;
};

std::unique_ptr<Backend> MakeEpollBackend(std::string* error);
// entries: submission queue size.
std::unique_ptr<Backend> MakeUringBackend(unsigned entries, std::string* error);
// Start-up self-test for IoBackend::kAuto: creates a ring and runs a real
// accept/connect/send/recv round trip over 127.0.0.1; false with the reason
// (e.g. "io_uring_setup: EPERM (seccomp or kernel.io_uring_disabled)").
bool UringSelfTest(std::string* reason);

}  // namespace keel::net::internal
