#pragma once
// The fixture of the Backend conformance suites (backend_test.cc,
// backend_lifecycle_test.cc): every backend built in, real 127.0.0.1
// sockets, bounded waits.
#include "keel/net/internal/backend.h"
#include "keel/net/internal/backend_testing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace keel::net::internal::backend_testing {


using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Factory {
  const char* name;
  std::function<std::unique_ptr<Backend>(unsigned entries, std::string* error)> make;
};

inline void PrintTo(const Factory& f, std::ostream* os) { *os << f.name; }

inline std::vector<Factory> Factories() {
  std::vector<Factory> f = {
      {"uring", [](unsigned e, std::string* err) { return MakeUringBackend(e, err); }},
      {"uring_compat",
       [](unsigned e, std::string* err) { return MakeUringBackendCompatForTest(e, err); }},
  };
#ifdef KEEL_NET_HAVE_EPOLL_BACKEND
  f.push_back({"epoll", [](unsigned, std::string* err) { return MakeEpollBackend(err); }});
#endif
  return f;
}

class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ScopedFd(ScopedFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    if (this != &o) {
      Reset(o.fd_);
      o.fd_ = -1;
    }
    return *this;
  }
  ~ScopedFd() { Reset(-1); }
  void Reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

inline ScopedFd TcpSocket() {
  return ScopedFd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

// A listening socket on 127.0.0.1 and an ephemeral port.
struct Listener {
  ScopedFd fd = TcpSocket();
  sockaddr_in addr{};
  Listener() {
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(fd.get(), Sa(), len), 0);
    EXPECT_EQ(listen(fd.get(), 1024), 0);
    EXPECT_EQ(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  }
  const sockaddr* Sa() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

// A blocking connect to `l`; it completes from the backlog, before any accept.
inline ScopedFd ConnectTo(const Listener& l) {
  ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(connect(fd.get(), l.Sa(), sizeof(l.addr)), 0) << std::strerror(errno);
  return fd;
}

// A connected pair of non-blocking TCP sockets, made with plain syscalls.
struct TcpPair {
  ScopedFd a, b;
};
inline TcpPair MakePair(const Listener& l) {
  TcpPair p;
  p.a = ConnectTo(l);
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  int fd = -1;
  while (fd < 0 && Clock::now() < deadline) {
    fd = accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_GE(fd, 0);
  p.b.Reset(fd);
  EXPECT_EQ(fcntl(p.a.get(), F_SETFL, fcntl(p.a.get(), F_GETFL) | O_NONBLOCK), 0);
  return p;
}

// Reads from nonblocking `fd` until `want` bytes came or 2 s passed; what came.
inline std::string ReadUpTo(int fd, std::size_t want) {
  std::string in(want, '\0');
  std::size_t have = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (have < want && Clock::now() < deadline) {
    const ssize_t n = read(fd, in.data() + have, want - have);
    if (n > 0) have += static_cast<std::size_t>(n);
    else std::this_thread::sleep_for(milliseconds(1));
  }
  in.resize(have);
  return in;
}

class BackendTest : public ::testing::TestWithParam<Factory> {
 protected:
  void SetUp() override { backend_ = Make(64); }
  std::unique_ptr<Backend> Make(unsigned entries) {
    std::string error;
    auto b = GetParam().make(entries, &error);
    EXPECT_NE(b, nullptr) << error;
    return b;
  }
  // Waits until `n` completions arrived or `limit` passed.
  // Sends `iov` on a fresh connected pair: one send completion carrying
  // `user_data` and the whole length, and the peer reads `want`.
  void SendAndExpectArrives(std::span<iovec> iov, uint64_t user_data, const std::string& want) {
    Listener l;
    TcpPair p = MakePair(l);
    backend_->Send(p.a.get(), iov.data(), static_cast<int>(iov.size()), user_data);
    std::vector<Completion> got = Collect(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].user_data, user_data);
    EXPECT_EQ(got[0].kind, OpKind::kSend);
    EXPECT_EQ(got[0].result, static_cast<int32_t>(want.size()));
    EXPECT_EQ(ReadUpTo(p.b.get(), want.size()), want);
  }

  std::vector<Completion> Collect(std::size_t n, milliseconds limit = milliseconds(3000),
                                  Backend* b = nullptr) {
    if (b == nullptr) b = backend_.get();
    std::vector<Completion> got;
    const auto deadline = Clock::now() + limit;
    Completion out[64];
    while (got.size() < n && Clock::now() < deadline) {
      const std::size_t k = b->Wait(out, 20);
      got.insert(got.end(), out, out + k);
    }
    return got;
  }
  // Every completion that shows up within `limit` (expected: none).
  std::vector<Completion> Stray(milliseconds limit = milliseconds(150)) {
    return Collect(SIZE_MAX, limit);
  }
  std::unique_ptr<Backend> backend_;
};

}  // namespace keel::net::internal::backend_testing
