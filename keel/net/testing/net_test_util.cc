#include "keel/net/testing/net_test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

namespace keel::net::testing {

std::vector<IoBackend> TestBackends() {
#ifdef KEEL_NET_HAVE_URING
  return {IoBackend::kEpoll, IoBackend::kUring};
#else
  return {IoBackend::kEpoll};
#endif
}

std::string BackendName(IoBackend b) { return std::string(ToString(b)); }

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

int CountOpenFds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory's own fd
}

uint64_t RssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, rss = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &rss);
  std::fclose(f);
  return got == 2 ? static_cast<uint64_t>(rss) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

int ConnectClient(uint16_t port, bool nodelay, int rcvbuf) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int one = 1;
  if (nodelay) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int err = errno;
    // With SO_SNDTIMEO set, a signal (or io_uring task work signalled to this
    // thread) makes connect return EINTR while the handshake goes on: wait for
    // it instead of calling the attempt failed.
    if (err == EINTR || err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int n = 0;
      do {
        n = ::poll(&p, 1, 10'000);
      } while (n < 0 && errno == EINTR);
      socklen_t len = sizeof err;
      if (n == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) return fd;
      if (n != 1) err = n == 0 ? ETIMEDOUT : errno;
    }
    std::fprintf(stderr, "ConnectClient(127.0.0.1:%u): %s\n", static_cast<unsigned>(port),
                 std::strerror(err));
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const void* data, std::size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len > 0) {
    const ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

bool RecvAll(int fd, void* data, std::size_t len) {
  auto* p = static_cast<uint8_t*>(data);
  while (len > 0) {
    const ssize_t n = ::recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

void EchoSession::OnConnected() {
  if (closed_) log_->late_hooks.fetch_add(1);
  log_->connected.fetch_add(1);
}

std::size_t EchoSession::OnRecv(std::span<const uint8_t> bytes) {
  if (closed_) log_->late_hooks.fetch_add(1);
  SendReceived(bytes);  // from NetConfig::recv_share_min on: no copy
  return bytes.size();
}

void EchoSession::OnSend(std::size_t) {
  if (closed_) log_->late_hooks.fetch_add(1);
}

void EchoSession::OnDisconnected(DisconnectReason reason) {
  if (closed_) log_->double_disconnect.fetch_add(1);
  closed_ = true;
  log_->by_reason[static_cast<std::size_t>(reason)].fetch_add(1);
  log_->disconnected.fetch_add(1);
}

std::size_t FrameEchoSession::OnRecv(std::span<const uint8_t> bytes) {
  if (Closed()) log_->late_hooks.fetch_add(1);
  std::size_t used = 0;
  while (used < bytes.size()) {
    const std::size_t frame = 1u + bytes[used];
    if (bytes.size() - used < frame) break;
    SendReceived(bytes.subspan(used, frame));
    used += frame;
  }
  return used;
}

NetConfig TestConfig(IoBackend backend, std::size_t threads) {
  NetConfig cfg;
  cfg.backend = backend;
  cfg.io_threads = threads;
  cfg.connect_timeout_ms = 2000;
  return cfg;
}

std::vector<uint8_t> Pattern(std::size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 31 + seed * 7 + (i >> 8)) & 0xff);
  return v;
}

}  // namespace keel::net::testing
