// Conformance tests of internal::Backend: every backend runs the same suite
// over real 127.0.0.1 sockets. Every wait is bounded; a broken backend fails
// a test, it never hangs the run.
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
#include <string>
#include <thread>
#include <vector>

namespace keel::net::internal {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Factory {
  const char* name;
  std::function<std::unique_ptr<Backend>(unsigned entries, std::string* error)> make;
};

void PrintTo(const Factory& f, std::ostream* os) { *os << f.name; }

std::vector<Factory> Factories() {
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

ScopedFd TcpSocket() {
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
ScopedFd ConnectTo(const Listener& l) {
  ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(connect(fd.get(), l.Sa(), sizeof(l.addr)), 0) << std::strerror(errno);
  return fd;
}

// A connected pair of non-blocking TCP sockets, made with plain syscalls.
struct TcpPair {
  ScopedFd a, b;
};
TcpPair MakePair(const Listener& l) {
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

TEST_P(BackendTest, MultishotAcceptDeliversEveryConnection) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  constexpr int kN = 8;
  backend_->Accept(l.fd.get(), 7);
  std::vector<ScopedFd> clients;
  for (int i = 0; i < kN; ++i) clients.push_back(ConnectTo(l));
  std::vector<Completion> got = Collect(kN);
  ASSERT_EQ(got.size(), std::size_t{kN});
  std::vector<ScopedFd> accepted;
  for (const Completion& c : got) {
    EXPECT_EQ(c.user_data, 7u);
    EXPECT_EQ(c.kind, OpKind::kAccept);
    EXPECT_TRUE(c.more);
    ASSERT_GE(c.result, 0) << std::strerror(-c.result);
    accepted.emplace_back(c.result);
    EXPECT_TRUE(fcntl(c.result, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(fcntl(c.result, F_GETFD) & FD_CLOEXEC);
  }
  backend_->Cancel(l.fd.get());
  got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].more);
  EXPECT_EQ(got[0].result, -ECANCELED);
  EXPECT_TRUE(Stray().empty());
}

// 100 connections queued before the first Wait, on a ring whose CQ holds 16:
// the kernel ends a multishot that overflows; the caller must not notice.
TEST_P(BackendTest, MultishotAcceptSurvivesCompletionQueueOverflow) {
  std::unique_ptr<Backend> b = Make(4);
  ASSERT_NE(b, nullptr);
  Listener l;
  constexpr std::size_t kN = 100;
  std::vector<ScopedFd> clients;
  for (std::size_t i = 0; i < kN; ++i) clients.push_back(ConnectTo(l));
  b->Accept(l.fd.get(), 5);
  std::vector<Completion> got = Collect(kN, milliseconds(5000), b.get());
  std::vector<ScopedFd> accepted;
  for (const Completion& c : got) {
    ASSERT_GE(c.result, 0) << std::strerror(-c.result);
    accepted.emplace_back(c.result);
    EXPECT_TRUE(c.more);
  }
  EXPECT_EQ(got.size(), kN);
  b->Cancel(l.fd.get());
  got = Collect(1, milliseconds(3000), b.get());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].more);
}

TEST_P(BackendTest, CancelEndsPendingMultishotAccept) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  backend_->Accept(l.fd.get(), 3);
  Completion out[4];
  EXPECT_EQ(backend_->Wait(out, 0), 0u);  // submitted, nothing to accept yet
  backend_->Cancel(l.fd.get());
  std::vector<Completion> got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 3u);
  EXPECT_EQ(got[0].result, -ECANCELED);
  EXPECT_FALSE(got[0].more);
  EXPECT_TRUE(Stray().empty());
}

TEST_P(BackendTest, ConnectSucceedsToListenerAndIsRefusedByClosedPort) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  sockaddr_in closed{};
  {
    Listener gone;  // bound then closed: nothing listens on its port now
    closed = gone.addr;
  }
  ScopedFd ok = TcpSocket();
  ScopedFd refused = TcpSocket();
  backend_->Connect(ok.get(), l.Sa(), sizeof(l.addr), 1);
  backend_->Connect(refused.get(), reinterpret_cast<const sockaddr*>(&closed), sizeof(closed), 2);
  std::vector<Completion> got = Collect(2);
  ASSERT_EQ(got.size(), 2u);
  for (const Completion& c : got) {
    EXPECT_EQ(c.kind, OpKind::kConnect);
    if (c.user_data == 1) {
      EXPECT_EQ(c.result, 0) << std::strerror(-c.result);
    } else {
      EXPECT_EQ(c.result, -ECONNREFUSED) << std::strerror(-c.result);
    }
  }
  EXPECT_TRUE(Stray().empty());
}

TEST_P(BackendTest, RecvReturnsPartialDataThenZeroAtEof) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  TcpPair p = MakePair(l);
  uint8_t buf[100];
  backend_->Recv(p.b.get(), buf, sizeof(buf), 11);
  ASSERT_EQ(write(p.a.get(), "hello", 5), 5);
  std::vector<Completion> got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 11u);
  EXPECT_EQ(got[0].kind, OpKind::kRecv);
  ASSERT_EQ(got[0].result, 5);
  EXPECT_EQ(std::memcmp(buf, "hello", 5), 0);
  ASSERT_EQ(shutdown(p.a.get(), SHUT_WR), 0);
  backend_->Recv(p.b.get(), buf, sizeof(buf), 12);
  got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 12u);
  EXPECT_EQ(got[0].result, 0);
}

TEST_P(BackendTest, GatheredSendArrivesInOrder) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  TcpPair p = MakePair(l);
  char a[] = "abc", b[] = "defg", c[] = "hi";
  iovec iov[3] = {{a, 3}, {b, 4}, {c, 2}};
  backend_->Send(p.a.get(), iov, 3, 5);
  std::vector<Completion> got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, OpKind::kSend);
  EXPECT_EQ(got[0].result, 9);
  char in[16] = {};
  std::size_t have = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (have < 9 && Clock::now() < deadline) {
    const ssize_t n = read(p.b.get(), in + have, sizeof(in) - have);
    if (n > 0) have += static_cast<std::size_t>(n);
    else std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(std::string(in, have), "abcdefghi");
}

TEST_P(BackendTest, LargeGatheredSendCompletesWithSomeBytes) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  TcpPair p = MakePair(l);
  constexpr std::size_t kChunk = 256 * 1024;
  std::vector<std::vector<char>> chunks(16, std::vector<char>(kChunk, 'x'));
  std::vector<iovec> iov;
  for (auto& ch : chunks) iov.push_back({ch.data(), ch.size()});
  backend_->Send(p.a.get(), iov.data(), static_cast<int>(iov.size()), 9);
  std::vector<Completion> got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_GT(got[0].result, 0) << std::strerror(-got[0].result);
  EXPECT_LE(static_cast<std::size_t>(got[0].result), kChunk * chunks.size());
}

TEST_P(BackendTest, CancelCompletesPendingRecvExactlyOnce) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  TcpPair p = MakePair(l);
  uint8_t buf[64];
  backend_->Recv(p.b.get(), buf, sizeof(buf), 21);
  Completion out[4];
  EXPECT_EQ(backend_->Wait(out, 0), 0u);
  backend_->Cancel(p.b.get());
  std::vector<Completion> got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 21u);
  EXPECT_EQ(got[0].result, -ECANCELED);
  EXPECT_TRUE(Stray().empty());
}

TEST_P(BackendTest, CancelBeforeSubmissionStillCompletesOnce) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  TcpPair p = MakePair(l);
  uint8_t buf[64];
  backend_->Recv(p.b.get(), buf, sizeof(buf), 22);
  backend_->Cancel(p.b.get());  // same batch as the recv
  std::vector<Completion> got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 22u);
  EXPECT_EQ(got[0].result, -ECANCELED);
  EXPECT_TRUE(Stray().empty());
}

TEST_P(BackendTest, CancelCompletesEveryPendingOpOnTheFdAndNoOther) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  TcpPair p = MakePair(l);
  TcpPair other = MakePair(l);
  const int small = 4096;
  ASSERT_EQ(setsockopt(p.a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  ASSERT_EQ(setsockopt(p.b.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  // Fill the path a -> b (nobody reads b), so that the next send stays pending.
  std::vector<char> big(1 << 20, 'z');
  iovec iov{big.data(), big.size()};
  for (int i = 0; i < 16; ++i) {
    backend_->Send(p.a.get(), &iov, 1, 100);
    std::vector<Completion> got = Collect(1, milliseconds(300));
    if (got.empty()) break;  // this one is pending: the path is full
    ASSERT_GT(got[0].result, 0) << std::strerror(-got[0].result);
    ASSERT_LT(i, 15) << "send buffer never filled";
  }
  uint8_t buf[64], other_buf[64];
  backend_->Recv(p.a.get(), buf, sizeof(buf), 101);
  backend_->Recv(other.a.get(), other_buf, sizeof(other_buf), 200);
  Completion out[4];
  EXPECT_EQ(backend_->Wait(out, 0), 0u);
  backend_->Cancel(p.a.get());
  std::vector<Completion> got = Collect(2);
  ASSERT_EQ(got.size(), 2u);
  std::map<uint64_t, int> count;
  for (const Completion& c : got) {
    ++count[c.user_data];
    EXPECT_EQ(c.result, -ECANCELED) << "user_data " << c.user_data;
  }
  EXPECT_EQ(count[100], 1);
  EXPECT_EQ(count[101], 1);
  EXPECT_TRUE(Stray().empty());  // the recv on the other socket is untouched
  ASSERT_EQ(write(other.b.get(), "x", 1), 1);
  got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 200u);
  EXPECT_EQ(got[0].result, 1);
}

// Cancel(fd) among many sockets with a pending op each, then again after
// the fds were closed and reused by new sockets: it reaches exactly the ops
// of that fd (the io_uring backend indexes live ops by fd; a stale index
// entry would cancel the wrong op or none).
TEST_P(BackendTest, CancelFindsTheOpsOfOneFdAmongManyAndAfterFdReuse) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  constexpr int kPairs = 200;
  std::vector<TcpPair> pairs(kPairs);
  std::vector<std::array<uint8_t, 8>> bufs(2 * kPairs);
  for (int i = 0; i < kPairs; ++i) {
    pairs[static_cast<std::size_t>(i)] = MakePair(l);
    backend_->Recv(pairs[static_cast<std::size_t>(i)].a.get(), bufs[static_cast<std::size_t>(i)].data(), 8,
                   static_cast<uint64_t>(i));
  }
  for (int i = kPairs - 2; i >= 0; i -= 2) backend_->Cancel(pairs[static_cast<std::size_t>(i)].a.get());
  std::vector<Completion> got = Collect(kPairs / 2);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kPairs / 2));
  std::set<uint64_t> seen;
  for (const Completion& c : got) {
    EXPECT_EQ(c.user_data % 2, 0u) << c.user_data;
    EXPECT_EQ(c.result, -ECANCELED);
    EXPECT_TRUE(seen.insert(c.user_data).second) << "twice: " << c.user_data;
  }
  EXPECT_TRUE(Stray().empty());
  // Close the cancelled ones; new sockets take their fd numbers.
  for (int i = 0; i < kPairs; i += 2) {
    pairs[static_cast<std::size_t>(i)].a.Reset(-1);
    pairs[static_cast<std::size_t>(i)].b.Reset(-1);
  }
  std::vector<TcpPair> fresh(kPairs / 2);
  for (int j = 0; j < kPairs / 2; ++j) {
    fresh[static_cast<std::size_t>(j)] = MakePair(l);
    backend_->Recv(fresh[static_cast<std::size_t>(j)].a.get(), bufs[static_cast<std::size_t>(kPairs + j)].data(), 8,
                   static_cast<uint64_t>(1000 + j));
  }
  backend_->Cancel(fresh[7].a.get());
  got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 1007u);
  EXPECT_EQ(got[0].result, -ECANCELED);
  EXPECT_TRUE(Stray().empty());
  // Everything else still reads.
  for (int i = 1; i < kPairs; i += 2) ASSERT_EQ(write(pairs[static_cast<std::size_t>(i)].b.get(), "x", 1), 1);
  for (int j = 0; j < kPairs / 2; ++j) {
    if (j != 7) {
      ASSERT_EQ(write(fresh[static_cast<std::size_t>(j)].b.get(), "y", 1), 1);
    }
  }
  got = Collect(kPairs - 1);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kPairs - 1));
  for (const Completion& c : got) EXPECT_EQ(c.result, 1) << c.user_data;
}

TEST_P(BackendTest, AcceptCanBeStartedAgainAfterCancel) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  backend_->Accept(l.fd.get(), 1);
  Completion out[4];
  backend_->Wait(out, 0);
  backend_->Cancel(l.fd.get());
  std::vector<Completion> got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].more);
  backend_->Accept(l.fd.get(), 2);
  ScopedFd client = ConnectTo(l);
  got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 2u);
  ASSERT_GE(got[0].result, 0);
  ScopedFd accepted(got[0].result);
  EXPECT_TRUE(got[0].more);
  backend_->Cancel(l.fd.get());
  EXPECT_EQ(Collect(1).size(), 1u);
}

TEST_P(BackendTest, WakeFromAnotherThreadEndsInfiniteWait) {
  ASSERT_NE(backend_, nullptr);
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!done.load() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(5));
    if (!done.load()) {
      std::fprintf(stderr, "Wake() did not end Wait(-1) within 10 s\n");
      std::abort();
    }
  });
  std::thread waker([&] {
    std::this_thread::sleep_for(milliseconds(50));
    backend_->Wake();
  });
  Completion out[4];
  const auto start = Clock::now();
  EXPECT_EQ(backend_->Wait(out, -1), 0u);
  done = true;
  waker.join();
  watchdog.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST_P(BackendTest, RepeatedWakesCoalesceAndAreConsumed) {
  ASSERT_NE(backend_, nullptr);
  backend_->Wake();
  backend_->Wake();
  Completion out[4];
  auto start = Clock::now();
  EXPECT_EQ(backend_->Wait(out, 2000), 0u);
  EXPECT_LT(Clock::now() - start, milliseconds(1500));
  // Consumed: the next wait runs to its timeout. Run in one process after
  // the uring_compat tests, epoll_wait here used to get EINTR (task work of
  // a compat ring closed on this thread is signalled) and end the Wait.
  start = Clock::now();
  EXPECT_EQ(backend_->Wait(out, 100), 0u);
  EXPECT_GE(Clock::now() - start, milliseconds(90)) << "a consumed wake still ends the Wait";
  backend_->Wake();  // and a later wake still works
  start = Clock::now();
  EXPECT_EQ(backend_->Wait(out, 2000), 0u);
  EXPECT_LT(Clock::now() - start, milliseconds(1500));
}

// A signal (no SA_RESTART: epoll_wait is never restarted anyway) must not
// end a Wait before its timeout.
TEST_P(BackendTest, WaitRunsToItsTimeoutDespiteSignals) {
  ASSERT_NE(backend_, nullptr);
  struct sigaction sa {};
  struct sigaction old {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  const pthread_t self = pthread_self();
  std::atomic<bool> done{false};
  std::thread signaller([&] {
    for (int i = 0; i < 5 && !done.load(); ++i) {
      std::this_thread::sleep_for(milliseconds(20));
      if (!done.load()) pthread_kill(self, SIGUSR1);
    }
  });
  Completion out[4];
  const auto start = Clock::now();
  EXPECT_EQ(backend_->Wait(out, 200), 0u);
  const auto took = Clock::now() - start;
  done = true;
  signaller.join();
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_GE(took, milliseconds(190));
  EXPECT_EQ(backend_->error(), 0);
}

TEST_P(BackendTest, WaitTimesOutWithNothingToDo) {
  ASSERT_NE(backend_, nullptr);
  Completion out[4];
  const auto start = Clock::now();
  EXPECT_EQ(backend_->Wait(out, 100), 0u);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(backend_->Wait(out, 0), 0u);
}

TEST_P(BackendTest, ThousandOpsInFlightCompleteExactlyOnce) {
  // 16 SQ entries for 1000 ops: forces submission while starting ops, and
  // (CQ of 64) the kernel's overflow list.
  std::unique_ptr<Backend> b = Make(16);
  ASSERT_NE(b, nullptr);
  Listener l;
  constexpr int kPairs = 250;  // 4 ops each: recv+send on both ends
  std::vector<TcpPair> pairs;
  for (int i = 0; i < kPairs; ++i) pairs.push_back(MakePair(l));
  std::vector<std::array<uint8_t, 32>> bufs(2 * kPairs);
  char payload[16];
  std::memset(payload, 'p', sizeof(payload));
  iovec iov{payload, sizeof(payload)};
  std::map<uint64_t, int> count;
  for (std::size_t i = 0; i < kPairs; ++i) {
    const uint64_t base = uint64_t(i) * 4;
    b->Recv(pairs[i].a.get(), bufs[2 * i].data(), 32, base + 0);
    b->Recv(pairs[i].b.get(), bufs[2 * i + 1].data(), 32, base + 1);
    b->Send(pairs[i].a.get(), &iov, 1, base + 2);
    b->Send(pairs[i].b.get(), &iov, 1, base + 3);
  }
  std::vector<Completion> got = Collect(4 * kPairs, milliseconds(10000), b.get());
  for (const Completion& c : got) {
    ++count[c.user_data];
    EXPECT_EQ(c.result, 16) << "user_data " << c.user_data << ": " << std::strerror(-c.result);
  }
  EXPECT_EQ(got.size(), std::size_t{4 * kPairs});
  EXPECT_EQ(count.size(), std::size_t{4 * kPairs});
  for (const auto& [ud, n] : count) EXPECT_EQ(n, 1) << "user_data " << ud;
  EXPECT_TRUE(Collect(SIZE_MAX, milliseconds(150), b.get()).empty());
}

// An IoLoop builds its backend on the starting thread, then runs it on its own.
TEST_P(BackendTest, RunsOnAThreadOtherThanItsCreator) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  std::vector<Completion> got;
  std::thread loop([&] {
    backend_->Accept(l.fd.get(), 1);
    ScopedFd client = ConnectTo(l);
    got = Collect(1);
    if (got.size() == 1 && got[0].result >= 0) close(got[0].result);
    backend_->Cancel(l.fd.get());
    std::vector<Completion> last = Collect(1);
    got.insert(got.end(), last.begin(), last.end());
  });
  loop.join();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_GE(got[0].result, 0) << std::strerror(-got[0].result);
  EXPECT_TRUE(got[0].more);
  EXPECT_FALSE(got[1].more);
}

TEST_P(BackendTest, DestroyWithOpsInFlightDoesNotHang) {
  Listener l;
  TcpPair p = MakePair(l);
  uint8_t buf[64];
  {
    std::unique_ptr<Backend> b = Make(8);
    ASSERT_NE(b, nullptr);
    b->Accept(l.fd.get(), 1);
    b->Recv(p.b.get(), buf, sizeof(buf), 2);
    Completion out[4];
    b->Wait(out, 0);
  }
  SUCCEED();
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendTest, ::testing::ValuesIn(Factories()),
                         [](const ::testing::TestParamInfo<Factory>& param_info) {
                           return std::string(param_info.param.name);
                         });

}  // namespace
}  // namespace keel::net::internal
