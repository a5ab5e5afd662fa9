// More than one listener per Service, on every backend over real 127.0.0.1
// sockets: each makes its own kind of session, each accepts on its own loop
// (round-robin, skipping a failed one), StopAccepting stops them all, a
// failed Listen leaves the others running, and Stop closes every socket.
#include "keel/net/service.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "keel/net/internal/backend_testing.h"
#include "keel/net/testing/forwarding_backend.h"
#include "keel/net/testing/net_fixture.h"

namespace keel::net::testing {
namespace {

using namespace std::chrono_literals;

// Echoes every byte inverted: tells its listener's sessions apart.
class InvertSession : public EchoSession {
 public:
  using EchoSession::EchoSession;

 protected:
  std::size_t OnRecv(std::span<const uint8_t> bytes) override {
    SendBufferRef out = SendBuffer::Allocate(bytes.size());
    for (std::size_t i = 0; i < bytes.size(); ++i) out->data()[i] = static_cast<uint8_t>(~bytes[i]);
    Send(std::move(out));
    return bytes.size();
  }
};

// Which loop each listener's accept was started on: its loop's backend
// sees the Accept with the listener's id in the user_data.
class AcceptLog {
 public:
  void Add(uint32_t loop, uint32_t listener) {
    std::lock_guard<std::mutex> g(mu_);
    accepts_.push_back({loop, listener});
  }
  // The loops listener `id` started an accept on, re-arms included.
  std::vector<uint32_t> LoopsOf(uint32_t id) const {
    std::lock_guard<std::mutex> g(mu_);
    std::vector<uint32_t> loops;
    for (const auto& [loop, listener] : accepts_) {
      if (listener == id) loops.push_back(loop);
    }
    return loops;
  }
  // Whether listeners 0 .. n-1 have each started an accept.
  bool AllStarted(uint32_t n) const {
    for (uint32_t id = 0; id < n; ++id) {
      if (LoopsOf(id).empty()) return false;
    }
    return true;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<uint32_t, uint32_t>> accepts_;  // (loop, listener id)
};

// Forwards everything to the loop's real backend and logs its Accepts.
class AcceptLoggingBackend final : public ForwardingBackend {
 public:
  AcceptLoggingBackend(std::unique_ptr<internal::Backend> inner, uint32_t loop, std::shared_ptr<AcceptLog> log)
      : ForwardingBackend(std::move(inner)), loop_(loop), log_(std::move(log)) {}

  void Accept(int listen_fd, uint64_t user_data) override {
    log_->Add(loop_, static_cast<uint32_t>(user_data));  // the tag is in the high bits
    ForwardingBackend::Accept(listen_fd, user_data);
  }

 private:
  const uint32_t loop_;
  std::shared_ptr<AcceptLog> log_;
};

class NetTestListening : public NetTest {
 protected:
  // Whether a connect to 127.0.0.1:port fails with ECONNREFUSED (1 s bound).
  static bool ConnectRefused(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    const int e = errno;
    ::close(fd);
    return r != 0 && e == ECONNREFUSED;
  }
  // Sends `msg` on a new connection to `port` and returns what comes back
  // (empty on failure); closes the connection unless `keep` is given.
  static std::vector<uint8_t> RoundTrip(uint16_t port, const std::vector<uint8_t>& msg, int* keep = nullptr) {
    const int fd = ConnectClient(port);
    if (fd < 0) return {};
    std::vector<uint8_t> got(msg.size());
    if (!SendAll(fd, msg.data(), msg.size()) || !RecvAll(fd, got.data(), got.size())) got.clear();
    if (keep) *keep = fd;
    else ::close(fd);
    return got;
  }
  static std::vector<uint8_t> Inverted(std::vector<uint8_t> v) {
    for (auto& b : v) b = static_cast<uint8_t>(~b);
    return v;
  }
  bool ListenInverting(std::string* err) {
    return server_->Listen("127.0.0.1", 0, err, FactoryFor<InvertSession>(&log_));
  }
};

TEST_P(NetTestListening, TwoListenersEachMakeTheirOwnSessions) {
  const int fds_before = CountOpenFds();
  StartServer<EchoSession>();  // listener 0: the Service's factory
  std::string err;
  ASSERT_TRUE(ListenInverting(&err)) << err;
  ASSERT_EQ(server_->listeners(), 2u);
  const uint16_t echo_port = server_->port(0);
  const uint16_t invert_port = server_->port(1);
  EXPECT_EQ(echo_port, port_);
  EXPECT_NE(invert_port, 0);
  EXPECT_NE(invert_port, echo_port);
  EXPECT_EQ(server_->port(2), 0) << "no third listener";
  const auto msg = Pattern(1000, 3);
  for (int round = 0; round < 4; ++round) {  // several sessions each, spread over both loops
    EXPECT_EQ(RoundTrip(echo_port, msg), msg) << "round " << round;
    EXPECT_EQ(RoundTrip(invert_port, msg), Inverted(msg)) << "round " << round;
  }
  EXPECT_TRUE(WaitFor([&] { return log_.disconnected.load() == 8; }));
  EXPECT_EQ(server_->stats().sessions_accepted, 8u);
  server_->Stop();
  EXPECT_EQ(CountOpenFds(), fds_before) << "a listening socket was left open";
}

// With one IO thread every listener accepts on the same loop: each accept
// completion must reach its own listener (the id in its user_data).
TEST_P(NetTestListening, ListenersSharingOneLoopGetTheirOwnAccepts) {
  StartServer<EchoSession>(TestConfig(GetParam(), 1));
  std::string err;
  ASSERT_TRUE(ListenInverting(&err)) << err;
  ASSERT_TRUE(server_->Listen("127.0.0.1", 0, &err)) << err;  // the Service's factory again
  ASSERT_EQ(server_->listeners(), 3u);
  const auto msg = Pattern(100, 6);
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(RoundTrip(server_->port(0), msg), msg) << "round " << round;
    EXPECT_EQ(RoundTrip(server_->port(1), msg), Inverted(msg)) << "round " << round;
    EXPECT_EQ(RoundTrip(server_->port(2), msg), msg) << "round " << round;
  }
}

// Each Listen puts its listener on the next loop: listener i accepts on
// loop i % io_threads, so the accept work is spread like the sessions.
TEST_P(NetTestListening, ListenersAreSpreadRoundRobinOverTheLoops) {
  constexpr uint32_t kLoops = 3;
  constexpr uint32_t kListeners = 4;
  auto accepts = std::make_shared<AcceptLog>();
  BackendWrapperScope wrap([accepts](std::unique_ptr<internal::Backend> b, uint32_t loop) {
    return std::make_unique<AcceptLoggingBackend>(std::move(b), loop, accepts);
  });
  StartServer<EchoSession>(TestConfig(GetParam(), kLoops));  // listener 0
  std::string err;
  for (uint32_t i = 1; i < kListeners; ++i) ASSERT_TRUE(ListenInverting(&err)) << err;
  ASSERT_EQ(server_->listeners(), kListeners);
  ASSERT_TRUE(WaitFor([&] { return accepts->AllStarted(kListeners); })) << "a listener never started accepting";
  const auto msg = Pattern(64, 5);
  for (uint32_t i = 0; i < kListeners; ++i) {
    EXPECT_EQ(RoundTrip(server_->port(i), msg), i == 0 ? msg : Inverted(msg)) << "listener " << i;
  }
  // Re-arms included (a single-shot accept is started again on its loop).
  for (uint32_t i = 0; i < kListeners; ++i) {
    for (const uint32_t loop : accepts->LoopsOf(i)) EXPECT_EQ(loop, i % kLoops) << "listener " << i;
  }
}

// A Listen whose turn falls on a failed loop takes the next running one
// (a listener there would never be armed).
TEST_P(NetTestListening, ListenSkipsAFailedLoop) {
  auto fault = std::make_shared<internal::BackendFault>();
  auto accepts = std::make_shared<AcceptLog>();
  BackendWrapperScope wrap([fault, accepts](std::unique_ptr<internal::Backend> b, uint32_t loop) {
    if (loop == 1) b = internal::WithFaultForTest(std::move(b), fault);
    return std::make_unique<AcceptLoggingBackend>(std::move(b), loop, accepts);
  });
  StartServer<EchoSession>(TestConfig(GetParam(), 3));  // listener 0 on loop 0
  fault->Fail(-EBADF);
  ASSERT_TRUE(WaitFor([&] { return server_->Failed(); }));
  std::string err;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ListenInverting(&err)) << err;
  // Listener 1's turn is the failed loop 1: it goes to loop 2; then 2, 0.
  const uint32_t expected[] = {0, 2, 2, 0};
  ASSERT_TRUE(WaitFor([&] { return accepts->AllStarted(4); })) << "a listener never started accepting";
  const auto msg = Pattern(64, 7);
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(RoundTrip(server_->port(i), msg), i == 0 ? msg : Inverted(msg)) << "listener " << i;
  }
  for (uint32_t i = 0; i < 4; ++i) {
    for (const uint32_t loop : accepts->LoopsOf(i)) EXPECT_EQ(loop, expected[i]) << "listener " << i;
  }
}

// A port a listener of this Service already holds cannot be bound again:
// the Listen fails with the reason, takes no listener number, and the
// listeners already there keep accepting.
TEST_P(NetTestListening, AFailedListenLeavesTheOthersAccepting) {
  StartServer<EchoSession>();
  std::string err;
  EXPECT_FALSE(server_->Listen("127.0.0.1", port_, &err));
  EXPECT_NE(err.find("bind"), std::string::npos) << err;
  EXPECT_EQ(server_->listeners(), 1u);
  ASSERT_TRUE(ListenInverting(&err)) << err;
  ASSERT_EQ(server_->listeners(), 2u);
  const auto msg = Pattern(64, 8);
  EXPECT_EQ(RoundTrip(port_, msg), msg);
  EXPECT_EQ(RoundTrip(server_->port(1), msg), Inverted(msg)) << "the listener after the failed one";
}

// StopAccepting closes every listening socket (new connections are refused
// on both ports) while the sessions they made keep working.
TEST_P(NetTestListening, StopAcceptingStopsEveryListenerAndKeepsTheSessions) {
  StartServer<EchoSession>();
  std::string err;
  ASSERT_TRUE(ListenInverting(&err)) << err;
  const uint16_t ports[] = {server_->port(0), server_->port(1)};
  const auto msg = Pattern(200, 4);
  int kept[2] = {-1, -1};
  ASSERT_EQ(RoundTrip(ports[0], msg, &kept[0]), msg);
  ASSERT_EQ(RoundTrip(ports[1], msg, &kept[1]), Inverted(msg));
  server_->StopAccepting();
  for (uint16_t port : ports) {
    EXPECT_TRUE(WaitFor([port] { return ConnectRefused(port); })) << "port " << port << " still accepts";
  }
  // The sessions made before go on.
  std::vector<uint8_t> got(msg.size());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(SendAll(kept[i], msg.data(), msg.size()));
    ASSERT_TRUE(RecvAll(kept[i], got.data(), got.size()));
    EXPECT_EQ(got, i == 0 ? msg : Inverted(msg));
    ::close(kept[i]);
  }
}

// Listen and Connect from other threads while the Service stops: each
// either completes before Stop (and its session or listener is closed by
// it) or fails; none touches a loop Stop has freed (ASan, TSan), and after
// Stop both fail at once.
TEST_P(NetTestListening, ListenAndConnectRacingStopAreSafe) {
  StartServer<EchoSession>();
  HookLog client_log;
  Service client(TestConfig(GetParam(), 2), FactoryFor<EchoSession>(&client_log));
  std::string err;
  ASSERT_TRUE(client.Start(&err)) << err;
  std::atomic<bool> go{true};
  std::atomic<int> connects{0};
  std::atomic<int> listens{0};
  std::thread connector([&] {
    while (go.load() && client.Connect("127.0.0.1", port_)) connects.fetch_add(1);
  });
  std::thread listener([&] {
    std::string e;
    while (go.load() && client.Listen("127.0.0.1", 0, &e)) listens.fetch_add(1);
  });
  ASSERT_TRUE(WaitFor([&] { return connects.load() > 20 && listens.load() > 5; }));
  client.Stop();
  go = false;
  connector.join();
  listener.join();
  EXPECT_EQ(client.Connect("127.0.0.1", port_), nullptr);
  EXPECT_FALSE(client.Listen("127.0.0.1", 0, &err));
  EXPECT_EQ(client_log.late_hooks.load(), 0);
  EXPECT_EQ(client_log.double_disconnect.load(), 0);
  EXPECT_EQ(client_log.disconnected.load(), connects.load()) << "every session Connect returned ends once";
}

// A loop whose backend fails abandons the listeners on it: their ports
// refuse new connections at once (not a backlog nobody accepts), while the
// listener on the other loop goes on.
TEST_P(NetTestListening, AFailedLoopsListenersRefuseAndTheOthersAccept) {
  auto fault = std::make_shared<internal::BackendFault>();
  internal::SetBackendWrapperForTest([fault](std::unique_ptr<internal::Backend> b, uint32_t loop) {
    return loop == 1 ? internal::WithFaultForTest(std::move(b), fault) : std::move(b);
  });
  StartServer<EchoSession>(TestConfig(GetParam(), 2));  // listener 0 on loop 0
  internal::SetBackendWrapperForTest(nullptr);
  std::string err;
  ASSERT_TRUE(ListenInverting(&err)) << err;  // listener 1 on loop 1
  ASSERT_TRUE(ListenInverting(&err)) << err;  // listener 2 on loop 0
  ASSERT_TRUE(ListenInverting(&err)) << err;  // listener 3 on loop 1
  const auto msg = Pattern(50, 2);
  ASSERT_EQ(RoundTrip(server_->port(1), msg), Inverted(msg));
  fault->Fail(-EBADF);
  ASSERT_TRUE(WaitFor([&] { return server_->Failed(); }));
  // Refused (RST), not accepted into a backlog nobody drains nor left
  // waiting for a backlog that is full: both take far longer than this.
  for (const std::size_t i : {1u, 3u}) {
    const uint16_t dead = server_->port(i);
    EXPECT_TRUE(WaitFor([dead] { return ConnectRefused(dead); }, 3s))
        << "listener " << i << " of the failed loop still takes connections";
  }
  EXPECT_EQ(RoundTrip(server_->port(0), msg), msg) << "the other loop's listeners";
  EXPECT_EQ(RoundTrip(server_->port(2), msg), Inverted(msg)) << "the other loop's listeners";
}

INSTANTIATE_TEST_SUITE_P(Backends, NetTestListening, ::testing::ValuesIn(TestBackends()), ParamName);

}  // namespace
}  // namespace keel::net::testing
