// Conformance tests of internal::Backend: every backend runs the same suite
// over real 127.0.0.1 sockets. Every wait is bounded; a broken backend fails
// a test, it never hangs the run. This file: accept, connect, recv, send;
// backend_lifecycle_test.cc: cancel, wake, wait, many ops, threads, teardown.
#include <gtest/gtest.h>

#include "keel/net/io/backend_test_fixture.h"

namespace keel::net::internal {
namespace {

using namespace backend_testing;  // NOLINT(google-build-using-namespace): test fixture

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
  char a[] = "abc", b[] = "defg", c[] = "hi";
  iovec iov[3] = {{a, 3}, {b, 4}, {c, 2}};
  SendAndExpectArrives(iov, 5, "abcdefghi");
}

TEST_P(BackendTest, OneBufferSendArrivesWhole) {
  ASSERT_NE(backend_, nullptr);
  char a[] = "single buffer";
  iovec iov[1] = {{a, 13}};
  SendAndExpectArrives(iov, 6, "single buffer");
}

// A write on a socket whose sending side is shut down fails with EPIPE, and
// the kernel raises SIGPIPE (default action: the process dies) unless the
// write carries MSG_NOSIGNAL. Both write forms: one buffer (send) and
// gathered (sendmsg). (Kernel 6.18's io_uring adds MSG_NOSIGNAL to its sends
// itself; the epoll backend's plain syscalls do not.)
TEST_P(BackendTest, SendAfterShutdownFailsWithEpipeAndNoSignal) {
  ASSERT_NE(backend_, nullptr);
  Listener l;
  TcpPair p = MakePair(l);
  ASSERT_EQ(shutdown(p.a.get(), SHUT_WR), 0);
  char a[] = "abc", b[] = "de";
  iovec one[1] = {{a, 3}};
  backend_->Send(p.a.get(), one, 1, 7);
  std::vector<Completion> got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 7u);
  EXPECT_EQ(got[0].result, -EPIPE);
  iovec two[2] = {{a, 3}, {b, 2}};
  backend_->Send(p.a.get(), two, 2, 8);
  got = Collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, 8u);
  EXPECT_EQ(got[0].result, -EPIPE);
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

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendTest, ::testing::ValuesIn(Factories()),
                         [](const ::testing::TestParamInfo<Factory>& param_info) {
                           return std::string(param_info.param.name);
                         });

}  // namespace
}  // namespace keel::net::internal
