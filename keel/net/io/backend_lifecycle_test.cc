// Conformance tests of internal::Backend, second half (see backend_test.cc):
// cancellation, wake-ups and waits, a thousand ops in flight, running on
// another thread, and destruction with ops in flight.
#include <gtest/gtest.h>

#include "keel/net/io/backend_test_fixture.h"

namespace keel::net::internal {
namespace {

using namespace backend_testing;  // NOLINT(google-build-using-namespace): test fixture

// The same fixture as backend_test.cc, as its own suite.
class BackendLifecycleTest : public BackendTest {};

TEST_P(BackendLifecycleTest, CancelCompletesPendingRecvExactlyOnce) {
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

TEST_P(BackendLifecycleTest, CancelBeforeSubmissionStillCompletesOnce) {
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

TEST_P(BackendLifecycleTest, CancelCompletesEveryPendingOpOnTheFdAndNoOther) {
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
TEST_P(BackendLifecycleTest, CancelFindsTheOpsOfOneFdAmongManyAndAfterFdReuse) {
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

TEST_P(BackendLifecycleTest, AcceptCanBeStartedAgainAfterCancel) {
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

TEST_P(BackendLifecycleTest, WakeFromAnotherThreadEndsInfiniteWait) {
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

TEST_P(BackendLifecycleTest, RepeatedWakesCoalesceAndAreConsumed) {
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
TEST_P(BackendLifecycleTest, WaitRunsToItsTimeoutDespiteSignals) {
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

TEST_P(BackendLifecycleTest, WaitTimesOutWithNothingToDo) {
  ASSERT_NE(backend_, nullptr);
  Completion out[4];
  const auto start = Clock::now();
  EXPECT_EQ(backend_->Wait(out, 100), 0u);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(backend_->Wait(out, 0), 0u);
}

TEST_P(BackendLifecycleTest, ThousandOpsInFlightCompleteExactlyOnce) {
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
TEST_P(BackendLifecycleTest, RunsOnAThreadOtherThanItsCreator) {
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

TEST_P(BackendLifecycleTest, DestroyWithOpsInFlightDoesNotHang) {
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

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendLifecycleTest, ::testing::ValuesIn(Factories()),
                         [](const ::testing::TestParamInfo<Factory>& param_info) {
                           return std::string(param_info.param.name);
                         });

}  // namespace
}  // namespace keel::net::internal
