// Service/Session/Listener/Connector over real 127.0.0.1 sockets, on every
// backend (epoll, and io_uring when built in).
#include "keel/net/service.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <numeric>
#include <thread>

#include "keel/net/internal/backend_testing.h"
#include "keel/net/testing/net_fixture.h"

namespace keel::net::testing {
namespace {

using namespace std::chrono_literals;

TEST_P(NetTest, EchoesOnThousandConcurrentConnections) {
  StartServer<EchoSession>();
  constexpr int kClients = 1000;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    const int fd = ConnectClient(port_);
    ASSERT_GE(fd, 0) << "client " << i;
    fds.push_back(fd);
  }
  for (int i = 0; i < kClients; ++i) {
    auto msg = Pattern(48, static_cast<uint32_t>(i));
    ASSERT_TRUE(SendAll(fds[static_cast<std::size_t>(i)], msg.data(), msg.size()));
  }
  for (int i = 0; i < kClients; ++i) {
    auto want = Pattern(48, static_cast<uint32_t>(i));
    std::vector<uint8_t> got(want.size());
    ASSERT_TRUE(RecvAll(fds[static_cast<std::size_t>(i)], got.data(), got.size())) << "client " << i;
    ASSERT_EQ(got, want) << "client " << i;
  }
  EXPECT_TRUE(WaitFor([&] { return server_->stats().sessions_open == kClients; }));
  for (int fd : fds) ::close(fd);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().sessions_open == 0; }));
  EXPECT_EQ(server_->stats().sessions_accepted, static_cast<uint64_t>(kClients));
  EXPECT_EQ(log_.connected.load(), kClients);
  EXPECT_EQ(log_.disconnected.load(), kClients);
}

TEST_P(NetTest, KeepsPartialFramesSplitAtEveryByteBoundary) {
  StartServer<FrameEchoSession>();
  const int fd = ConnectClient(port_);
  ASSERT_GE(fd, 0);
  auto payload = Pattern(40, 3);
  std::vector<uint8_t> frame{static_cast<uint8_t>(payload.size())};
  frame.insert(frame.end(), payload.begin(), payload.end());
  for (std::size_t cut = 1; cut < frame.size(); ++cut) {
    ASSERT_TRUE(SendAll(fd, frame.data(), cut));
    std::this_thread::sleep_for(1ms);  // let the first part arrive on its own
    ASSERT_TRUE(SendAll(fd, frame.data() + cut, frame.size() - cut));
    std::vector<uint8_t> got(frame.size());
    ASSERT_TRUE(RecvAll(fd, got.data(), got.size())) << "cut at " << cut;
    ASSERT_EQ(got, frame) << "cut at " << cut;
  }
  ::close(fd);
}

TEST_P(NetTest, EchoesOneByteDribble) {
  StartServer<FrameEchoSession>();
  const int fd = ConnectClient(port_);
  ASSERT_GE(fd, 0);
  auto payload = Pattern(100, 9);
  std::vector<uint8_t> frame{static_cast<uint8_t>(payload.size())};
  frame.insert(frame.end(), payload.begin(), payload.end());
  // The first byte alone must be read alone (a frame header cut short), so
  // wait for that read before the rest dribbles in: sent back to back, all
  // 101 bytes could land in one read on a slow run (it did once, under ASan).
  ASSERT_TRUE(SendAll(fd, frame.data(), 1));
  ASSERT_TRUE(WaitFor([&] { return server_->stats().recv_ops >= 1; }));
  for (std::size_t i = 1; i < frame.size(); ++i) ASSERT_TRUE(SendAll(fd, &frame[i], 1));
  std::vector<uint8_t> got(frame.size());
  ASSERT_TRUE(RecvAll(fd, got.data(), got.size()));
  EXPECT_EQ(got, frame);
  EXPECT_GT(server_->stats().recv_ops, 1u);
  ::close(fd);
}

TEST_P(NetTest, EchoesOneMebibyteMessages) {
  StartServer<EchoSession>();
  const int fd = ConnectClient(port_);
  ASSERT_GE(fd, 0);
  constexpr std::size_t kSize = 1 << 20;
  constexpr int kMessages = 4;
  std::vector<uint8_t> all;
  for (int i = 0; i < kMessages; ++i) {
    auto m = Pattern(kSize, static_cast<uint32_t>(i));
    all.insert(all.end(), m.begin(), m.end());
  }
  std::thread writer([&] { EXPECT_TRUE(SendAll(fd, all.data(), all.size())); });
  std::vector<uint8_t> got(all.size());
  const bool ok = RecvAll(fd, got.data(), got.size());
  writer.join();
  ASSERT_TRUE(ok);
  EXPECT_TRUE(got == all);
  ::close(fd);
}

// One connect/disconnect cycle of kind `i % 5`: FIN, RST, half-close, close
// during a pending read, RST during a large send.
void ChurnOnce(uint16_t port, int i) {
  const int fd = ConnectClient(port);
  ASSERT_GE(fd, 0);
  switch (i % 5) {
    case 0:
      break;  // FIN at once
    case 1: {
      linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      break;
    }
    case 2: {  // half-close: the server still answers what it got, then closes
      const char msg[] = "half";
      ASSERT_TRUE(SendAll(fd, msg, 4));
      ::shutdown(fd, SHUT_WR);
      char buf[8];
      ASSERT_TRUE(RecvAll(fd, buf, 4));
      EXPECT_EQ(std::memcmp(buf, msg, 4), 0);
      EXPECT_EQ(::recv(fd, buf, sizeof buf, 0), 0);  // then the server's FIN
      break;
    }
    case 3: {  // the server has a read pending when we close
      const char msg[] = "ping";
      char buf[4];
      ASSERT_TRUE(SendAll(fd, msg, 4));
      ASSERT_TRUE(RecvAll(fd, buf, 4));
      break;
    }
    case 4: {  // the server is writing a large echo we never read; then RST
      std::vector<uint8_t> big(256 * 1024, 0x5a);
      ASSERT_TRUE(SendAll(fd, big.data(), big.size()));
      linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      break;
    }
  }
  ::close(fd);
}

TEST_P(NetTest, ChurnLeavesFdsAndGaugesAtStart) {
  StartServer<EchoSession>();
  const int fds_before = CountOpenFds();
  for (int i = 0; i < 500; ++i) {
    ChurnOnce(port_, i);
    if (HasFatalFailure()) return;
  }
  // The last client may close before the server has accepted it: wait for
  // the accept too, or the gauges can read "at start" one session early.
  EXPECT_TRUE(WaitFor([&] {
    const NetStats s = server_->stats();
    return s.sessions_accepted == 500 && s.sessions_open == 0 && s.queued_bytes == 0 &&
           CountOpenFds() == fds_before;
  }));
  const NetStats s = server_->stats();
  EXPECT_EQ(s.sessions_open, 0u);
  EXPECT_EQ(s.queued_bytes, 0u);
  EXPECT_EQ(CountOpenFds(), fds_before);
  EXPECT_EQ(s.sessions_accepted, 500u);
  EXPECT_EQ(log_.disconnected.load(), 500);
}

TEST_P(NetTest, PausesAcceptOnEmfileAndResumes) {
  NetConfig cfg = TestConfig(GetParam(), 1);
  cfg.fd_reserve = 0;
  cfg.accept_pause_ms = 50;
  constexpr int kClients = 40;
  int ready[2];
  int go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  {
    // Warm-up on a throwaway server: UBSan's vptr check opens a pipe the first
    // time it sees a (type, vtable) pair, which fails under EMFILE and is then
    // reported as an invalid object. One echo here fills its cache.
    HookLog warm_log;
    Service warm(cfg, FactoryFor<EchoSession>(&warm_log));
    std::string err;
    ASSERT_TRUE(warm.Start(&err) && warm.Listen("127.0.0.1", 0, &err)) << err;
    const int fd = ConnectClient(warm.port());
    char b[2] = {'h', 'i'};
    ASSERT_TRUE(SendAll(fd, b, 2) && RecvAll(fd, b, 2));
    ::close(fd);
    ASSERT_TRUE(WaitFor([&] { return warm_log.disconnected.load() == 1; }));
    warm.Stop();
  }
  // Lowered before the server starts: io_uring's accept takes its fd limit
  // when the request is prepared (io_accept_prep reads RLIMIT_NOFILE), so a
  // limit lowered under an armed multishot accept would not apply to it.
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(CountOpenFds() + 16);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  StartServer<EchoSession>(cfg);
  if (HasFatalFailure()) ::setrlimit(RLIMIT_NOFILE, &old);
  ASSERT_FALSE(HasFatalFailure());
  // Lowered before the fork, so no connection can be accepted before it.
  const pid_t child = ::fork();
  if (child < 0) ::setrlimit(RLIMIT_NOFILE, &old);
  ASSERT_GE(child, 0);
  if (child == 0) {  // connects, holds the connections until told, exits
    ::setrlimit(RLIMIT_NOFILE, &old);
    ::close(ready[0]);
    ::close(go[1]);  // so the read below ends if the parent dies
    for (int i = 0; i < kClients; ++i) ConnectClient(port_);
    char c = 1;
    [[maybe_unused]] auto w = ::write(ready[1], &c, 1);
    [[maybe_unused]] auto r = ::read(go[0], &c, 1);
    ::_exit(0);
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  const bool paused = WaitFor([&] { return server_->stats().accept_pauses >= 1; });
  // Paused, not spinning: the process burns little CPU for 500 ms.
  rusage r0{}, r1{};
  ::getrusage(RUSAGE_SELF, &r0);
  std::this_thread::sleep_for(500ms);
  ::getrusage(RUSAGE_SELF, &r1);
  auto cpu_us = [](const rusage& r) {
    return r.ru_utime.tv_sec * 1000000L + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1000000L + r.ru_stime.tv_usec;
  };
  const long used_us = cpu_us(r1) - cpu_us(r0);
  const uint64_t accepted_low = server_->stats().sessions_accepted;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_TRUE(paused) << "accepted " << accepted_low << ", fds " << CountOpenFds() << ", limit " << low.rlim_cur;
  EXPECT_LT(accepted_low, static_cast<uint64_t>(kClients));
  EXPECT_LT(used_us, 250000) << "CPU while paused: " << used_us << " us in 500 ms";
  // fds available again: the rest are accepted.
  EXPECT_TRUE(WaitFor([&] { return server_->stats().sessions_accepted == kClients; }))
      << server_->stats().sessions_accepted;
  c = 1;
  EXPECT_EQ(::write(go[1], &c, 1), 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().sessions_open == 0; }));
}

TEST_P(NetTest, StopWithSessionsMidSendRunsEachOnDisconnectedOnce) {
  log_.keep = true;
  NetConfig cfg = TestConfig(GetParam());
  cfg.socket_send_buffer = 8192;
  StartServer<SinkSession>(cfg);
  constexpr int kClients = 30;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) fds.push_back(ConnectClient(port_, true, 4096));
  ASSERT_TRUE(WaitFor([&] { return log_.connected.load() == kClients; }));
  SendBufferRef big = SendBuffer::Allocate(1 << 20);
  std::memset(big->data(), 0x42, big->size());
  {
    std::lock_guard<std::mutex> g(log_.mu);
    for (auto& s : log_.sessions) EXPECT_TRUE(s->Send(big));
  }
  EXPECT_TRUE(WaitFor([&] { return server_->stats().send_ops > 0; }));
  server_->Stop();
  EXPECT_EQ(log_.disconnected.load(), kClients);
  EXPECT_EQ(log_.by_reason[static_cast<std::size_t>(DisconnectReason::kServerShutdown)].load(),
            static_cast<uint64_t>(kClients));
  {
    std::lock_guard<std::mutex> g(log_.mu);
    for (auto& s : log_.sessions) {
      EXPECT_FALSE(s->Send(big));
      EXPECT_EQ(s->QueuedBytes(), 0u);
    }
    log_.sessions.clear();
  }
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(server_->stats().sessions_open, 0u);
  EXPECT_EQ(server_->stats().queued_bytes, 0u);
  EXPECT_EQ(big->RefCountForTesting(), 1u);
  for (int fd : fds) ::close(fd);
}

// Client side: the Service connects out (the bots' path).
class ClientEcho : public EchoSession {
 public:
  using EchoSession::EchoSession;
  std::atomic<int> got{0};

 protected:
  void OnConnected() override {
    EchoSession::OnConnected();
    const uint8_t hello[] = {'h', 'i'};
    Send(hello);
  }
  std::size_t OnRecv(std::span<const uint8_t> bytes) override {
    got.fetch_add(static_cast<int>(bytes.size()));
    return bytes.size();
  }
};

TEST_P(NetTest, ConnectsOutAndReportsRefusal) {
  StartServer<EchoSession>();
  HookLog client_log;
  Service client(TestConfig(GetParam(), 1), FactoryFor<ClientEcho>(&client_log));
  std::string err;
  ASSERT_TRUE(client.Start(&err)) << err;
  SessionRef s = client.Connect("127.0.0.1", port_);
  ASSERT_TRUE(s);
  auto* ce = static_cast<ClientEcho*>(s.get());
  EXPECT_TRUE(WaitFor([&] { return ce->got.load() == 2; }));
  EXPECT_EQ(client.stats().sessions_connected, 1u);
  // A port nobody listens on (bound, never listened): refused.
  const int unused = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(unused, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(unused, reinterpret_cast<sockaddr*>(&a), &len);
  SessionRef refused = client.Connect("127.0.0.1", ntohs(a.sin_port));
  EXPECT_TRUE(WaitFor([&] {
    return client_log.by_reason[static_cast<std::size_t>(DisconnectReason::kConnectFailed)].load() == 1;
  }));
  ::close(unused);
  s->Disconnect();
  EXPECT_TRUE(WaitFor([&] { return client_log.disconnected.load() == 2; }));
  client.Stop();
  EXPECT_EQ(client_log.late_hooks.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, NetTest, ::testing::ValuesIn(TestBackends()), ParamName);

}  // namespace
}  // namespace keel::net::testing
