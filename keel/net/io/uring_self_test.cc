// UringSelfTest (internal/backend.h): the start-up check behind
// IoBackend::kAuto. It builds a real io_uring backend and runs one
// accept/connect/send/recv round trip over 127.0.0.1, so a kernel or a
// seccomp profile that allows io_uring_setup but breaks the socket opcodes
// is caught before the first client, with the reason in words.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "keel/net/internal/backend.h"

namespace keel::net::internal {
namespace {

std::string Errno(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

// Self-test helpers: a socket that closes itself, and a bounded Wait loop.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { if (fd >= 0) close(fd); }
};

bool SelfTestSteps(std::string* reason) {
  // Declared first so they outlive the backend, whose destructor cancels
  // and drains the ops that still use them.
  char msg[] = {'k', 'e', 'e', 'l'};
  iovec iov{msg, sizeof(msg)};
  uint8_t buf[16] = {};
  auto fail = [&](std::string why) { *reason = "io_uring self-test: " + std::move(why); return false; };
  Fd lfd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (lfd.fd < 0) return fail(Errno("socket", errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(lfd.fd, reinterpret_cast<sockaddr*>(&addr), len) < 0 || listen(lfd.fd, 4) < 0 ||
      getsockname(lfd.fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0)
    return fail(Errno("listen on 127.0.0.1", errno));
  Fd cfd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (cfd.fd < 0) return fail(Errno("socket", errno));

  Fd acc(-1);
  std::unique_ptr<Backend> backend = MakeUringBackend(8, reason);
  if (backend == nullptr) return false;
  Backend& b = *backend;
  enum : uint64_t { kAcc = 1, kConn, kSend, kRecv };
  b.Accept(lfd.fd, kAcc);
  b.Connect(cfd.fd, reinterpret_cast<sockaddr*>(&addr), len, kConn);
  int& accepted = acc.fd;
  int connected = 1;
  int sent = -1;
  int received = -1;
  bool accept_done = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  Completion out[8];
  bool io_started = false;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::size_t n = b.Wait(out, 50);
    for (std::size_t i = 0; i < n; ++i) {
      const Completion& c = out[i];
      if (c.user_data == kAcc) {
        if (c.result >= 0) {
          if (accepted >= 0) close(accepted);
          accepted = c.result;
        } else if (!io_started) {
          return fail(Errno("accept", -c.result));
        }
        if (!c.more) accept_done = true;
      }
      if (c.user_data == kConn) connected = c.result;
      if (c.user_data == kSend) sent = c.result;
      if (c.user_data == kRecv) received = c.result;
    }
    if (connected < 0) return fail(Errno("connect", -connected));
    if (!io_started && accepted >= 0 && connected == 0) {
      io_started = true;
      b.Send(cfd.fd, &iov, 1, kSend);
      b.Recv(accepted, buf, sizeof(buf), kRecv);
      b.Cancel(lfd.fd);
    }
    if (sent >= 0 && received >= 0 && accept_done) break;
  }
  if (!io_started) return fail("accept/connect did not complete within 2 s");
  if (sent < 0) return fail(Errno("sendmsg", -sent));
  if (received < 0) return fail(Errno("recv", -received));
  if (sent != sizeof(msg) || received != sizeof(msg) || std::memcmp(buf, msg, sizeof(msg)) != 0)
    return fail("round trip did not deliver the bytes sent (or timed out)");
  if (!accept_done) return fail("cancel of the multishot accept did not end it");
  return true;
}

}  // namespace

bool UringSelfTest(std::string* reason) {
  std::string local;
  std::string* why = reason != nullptr ? reason : &local;
  if (SelfTestSteps(why)) return true;
  utsname u{};
  if (uname(&u) == 0) *why += std::string(" [kernel ") + u.release + "]";
  return false;
}

}  // namespace keel::net::internal
