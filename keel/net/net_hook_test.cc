// Application code that throws, on every backend over real 127.0.0.1
// sockets: a hook, the session factory, OnDisconnected. The exception is
// logged and counted (NetStats::hook_exceptions); the session it came from
// is closed with kHookFailed; the loop and every other session go on. And a
// loop whose own work throws fails like a broken backend; the others go on.
#include "keel/net/service.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/net/io_loop.h"
#include "keel/net/testing/forwarding_backend.h"
#include "keel/net/testing/net_fixture.h"

namespace keel::net::testing {
namespace {

using NetTestHooks = NetTest;

// Throws from OnRecv when the bytes start with '!'.
class ThrowingRecvSession : public EchoSession {
 public:
  using EchoSession::EchoSession;

 protected:
  std::size_t OnRecv(std::span<const uint8_t> bytes) override {
    if (bytes[0] == '!') throw std::runtime_error("OnRecv failed");
    return EchoSession::OnRecv(bytes);
  }
};

// Throws from OnDisconnected (after the log has counted it).
class ThrowingGoodbyeSession : public EchoSession {
 public:
  using EchoSession::EchoSession;

 protected:
  void OnDisconnected(DisconnectReason reason) override {
    EchoSession::OnDisconnected(reason);
    throw std::runtime_error("OnDisconnected failed");
  }
};

// Whether the server closed `fd`: EOF or a reset, not the client's 10 s
// read timeout (EAGAIN), which would mean the server never closed it.
bool ClosedByServer(int fd) {
  char c;
  ssize_t n;
  do {
    n = ::recv(fd, &c, 1, 0);
  } while (n < 0 && errno == EINTR);  // seen under TSan
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

bool Echoes(int fd, const std::string& msg) {
  std::string back(msg.size(), '\0');
  return SendAll(fd, msg.data(), msg.size()) && RecvAll(fd, back.data(), back.size()) && back == msg;
}

TEST_P(NetTestHooks, AnOnRecvThatThrowsClosesOnlyItsSession) {
  StartServer<ThrowingRecvSession>(TestConfig(GetParam(), 1));
  const int idle = ConnectClient(port_);
  const int bad = ConnectClient(port_);
  ASSERT_TRUE(WaitFor([&] { return log_.connected.load() == 2; }));
  ASSERT_TRUE(SendAll(bad, "!", 1));
  EXPECT_TRUE(ClosedByServer(bad));
  ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == 1; }));
  EXPECT_EQ(log_.by_reason[static_cast<std::size_t>(DisconnectReason::kHookFailed)].load(), 1u);
  EXPECT_EQ(server_->stats().hook_exceptions, 1u);
  EXPECT_TRUE(Echoes(idle, "still served")) << "the loop died with the hook";
  const int late = ConnectClient(port_);
  EXPECT_TRUE(Echoes(late, "and accepting"));
  for (int fd : {idle, bad, late}) ::close(fd);
}

TEST_P(NetTestHooks, AFactoryThatThrowsCostsOnlyThatConnection) {
  std::atomic<int> made{0};
  server_ = std::make_unique<Service>(TestConfig(GetParam(), 2), [&]() -> SessionRef {
    if (made.fetch_add(1) == 0) throw std::runtime_error("factory failed");
    return MakeRef<EchoSession>(&log_);
  });
  std::string err;
  ASSERT_TRUE(server_->Start(&err)) << err;
  ASSERT_TRUE(server_->Listen("127.0.0.1", 0, &err)) << err;
  const int first = ConnectClient(server_->port());
  EXPECT_TRUE(ClosedByServer(first)) << "the connection whose factory threw stayed open";
  const int second = ConnectClient(server_->port());
  EXPECT_TRUE(Echoes(second, "made"));
  EXPECT_EQ(server_->stats().hook_exceptions, 1u);
  EXPECT_EQ(log_.connected.load(), 1);
  for (int fd : {first, second}) ::close(fd);
}

TEST_P(NetTestHooks, AnOnDisconnectedThatThrowsStillFreesTheSession) {
  StartServer<ThrowingGoodbyeSession>(TestConfig(GetParam(), 1));
  const int fds_before = CountOpenFds();
  for (int i = 0; i < 3; ++i) {
    const int fd = ConnectClient(port_);
    EXPECT_TRUE(Echoes(fd, "hello"));
    ::close(fd);
  }
  ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == 3; }));
  EXPECT_TRUE(WaitFor([&] { return server_->stats().sessions_open == 0 && CountOpenFds() == fds_before; }))
      << "sessions " << server_->stats().sessions_open << ", fds " << CountOpenFds() << " (" << fds_before << ")";
  EXPECT_EQ(server_->stats().hook_exceptions, 3u);
}

// Wait throws once armed: an exception out of the loop itself, not a hook.
// The loop fails like one whose backend failed (ADR 0011): its sessions get
// OnDisconnected(kIoError) and their peers EOF at once, on_loop_failed gets
// -ENOTRECOVERABLE, Service::Failed() turns true, and the other loop keeps
// serving. Stop then tears the dead loop down (backend first, then fds).
class ThrowingWaitBackend final : public ForwardingBackend {
 public:
  ThrowingWaitBackend(std::unique_ptr<internal::Backend> inner, std::shared_ptr<std::atomic<int>> state)
      : ForwardingBackend(std::move(inner)), state_(std::move(state)) {}
  std::size_t Wait(std::span<internal::Completion> out, int timeout_ms) override {
    int armed = 1;
    if (state_->compare_exchange_strong(armed, 2)) throw std::runtime_error("the loop failed");
    return ForwardingBackend::Wait(out, timeout_ms < 0 || timeout_ms > 10 ? 10 : timeout_ms);
  }

 private:
  std::shared_ptr<std::atomic<int>> state_;  // 0 idle, 1 armed, 2 thrown
};

TEST_P(NetTestHooks, ALoopThatThrowsFailsLikeABrokenBackendAndTheOtherLoopServes) {
  const int fds_before = CountOpenFds();
  auto state = std::make_shared<std::atomic<int>>(0);
  BackendWrapperScope wrap([state](std::unique_ptr<internal::Backend> b, uint32_t loop) -> std::unique_ptr<internal::Backend> {
    if (loop != 1) return b;
    return std::make_unique<ThrowingWaitBackend>(std::move(b), state);
  });
  auto failed = std::make_shared<std::atomic<int>>(0);
  NetConfig cfg = TestConfig(GetParam(), 2);
  cfg.on_loop_failed = [failed](uint32_t loop, int err) { failed->store(loop == 1 ? err : 1); };
  StartServer<EchoSession>(cfg);
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {  // round-robin: 2 on each loop
    fds.push_back(ConnectClient(port_));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(Echoes(fds.back(), "hello"));
  }
  state->store(1);
  ASSERT_TRUE(WaitFor([&] { return server_->Failed(); })) << "the loop that threw was not failed";
  EXPECT_EQ(failed->load(), -ENOTRECOVERABLE);
  EXPECT_EQ(log_.disconnected.load(), 2);
  EXPECT_EQ(log_.by_reason[static_cast<std::size_t>(DisconnectReason::kIoError)].load(), 2u);
  int echoed = 0;
  int closed = 0;
  for (int fd : fds) {
    if (Echoes(fd, "still?")) {
      ++echoed;
    } else {
      EXPECT_TRUE(ClosedByServer(fd));
      ++closed;
    }
  }
  EXPECT_EQ(echoed, 2) << "the other loop's sessions";
  EXPECT_EQ(closed, 2) << "the failed loop's sessions";
  const int late = ConnectClient(port_);  // lands on the loop still running
  ASSERT_GE(late, 0);
  EXPECT_TRUE(Echoes(late, "new"));
  fds.push_back(late);
  server_->Stop();
  EXPECT_EQ(server_->stats().sessions_open, 0u) << "a session of the dead loop was not freed";
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(CountOpenFds(), fds_before) << "an fd of the dead loop was left open";
}

// The engine's own work posted to a loop (PostLoopWork) that throws fails
// that loop too. Work queued behind it in the same batch is not lost or run
// twice: it goes back to the queue and runs once, as the failed loop winds
// down (its thread drains what was posted to it).
TEST_P(NetTestHooks, LoopWorkThatThrowsFailsTheLoopAndWhatFollowsRunsOnce) {
  log_.keep = true;
  StartServer<EchoSession>(TestConfig(GetParam(), 2));
  const int a = ConnectClient(port_);
  const int b = ConnectClient(port_);
  ASSERT_TRUE(Echoes(a, "a") && Echoes(b, "b"));
  IoLoop* loop = nullptr;
  {
    std::lock_guard<std::mutex> g(log_.mu);
    ASSERT_EQ(log_.sessions.size(), 2u);
    loop = log_.sessions[0]->loop();
  }
  auto after = std::make_shared<std::atomic<int>>(0);
  // Posted from the loop itself, so both land in one batch of RunPosted.
  loop->Post([loop, after] {
    loop->PostLoopWork([] { throw std::runtime_error("loop work failed"); });
    loop->PostLoopWork([after] { after->fetch_add(1); });
  });
  ASSERT_TRUE(WaitFor([&] { return server_->Failed(); }));
  EXPECT_EQ(log_.disconnected.load(), 1) << "the failed loop's one session";
  EXPECT_EQ(server_->stats().hook_exceptions, 0u) << "not application code";
  EXPECT_TRUE(WaitFor([&] { return after->load() == 1; })) << "the work behind the exception never ran";
  const bool a_alive = Echoes(a, "still");
  const bool b_alive = Echoes(b, "still");
  EXPECT_NE(a_alive, b_alive) << "exactly the other loop's session still echoes";
  {
    std::lock_guard<std::mutex> g(log_.mu);
    log_.sessions.clear();
  }
  server_->Stop();
  EXPECT_EQ(after->load(), 1) << "the work behind the exception ran more than once";
  ::close(a);
  ::close(b);
}

INSTANTIATE_TEST_SUITE_P(Backends, NetTestHooks, ::testing::ValuesIn(TestBackends()), ParamName);

}  // namespace
}  // namespace keel::net::testing
