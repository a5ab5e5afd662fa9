// More than one listener per Service, on every backend over real 127.0.0.1
// sockets: each makes its own kind of session, StopAccepting stops them all,
// a failed Listen leaves the others running, and Stop closes every socket.
#include "keel/net/service.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "keel/net/internal/backend_testing.h"
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
