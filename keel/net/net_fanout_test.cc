// Fan-out on every backend over real 127.0.0.1 sockets: the slow-consumer
// limit among normal readers, Send and Disconnect from many threads, one
// SendBuffer queued on a thousand sessions, WakeBatch.
#include "keel/net/service.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "keel/net/testing/net_fixture.h"
#include "keel/net/wake_batch.h"

namespace keel::net::testing {
namespace {

using namespace std::chrono_literals;

// The same fixture as net_test.cc, as its own suite (one instantiation per
// binary and suite).
class NetTestFanout : public NetTest {
 protected:
  // Each client reads exactly `want`, then all close and the server sees
  // every disconnect.
  void EveryClientGetsThenCloses(const std::vector<int>& fds, const std::vector<uint8_t>& want) {
    std::vector<uint8_t> got(want.size());
    for (int fd : fds) {
      ASSERT_TRUE(RecvAll(fd, got.data(), got.size()));
      ASSERT_TRUE(got == want);
    }
    for (int fd : fds) ::close(fd);
    ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == static_cast<int>(fds.size()); }));
  }

  // Connects `n` clients into *fds and waits until the server ran
  // OnConnected for each (they are the server's only sessions so far): every
  // session is open and can be sent to from the test thread.
  void ConnectClients(int n, std::vector<int>* fds) {
    for (int i = 0; i < n; ++i) {
      fds->push_back(ConnectClient(port_));
      ASSERT_GE(fds->back(), 0);
    }
    ASSERT_TRUE(WaitFor([&] { return log_.connected.load() == n; }));
  }
};

TEST_P(NetTestFanout, SlowConsumerIsDisconnectedWhileOthersReceiveEverything) {
  NetConfig cfg = TestConfig(GetParam());
  cfg.socket_send_buffer = 4096;
  cfg.send_soft_limit = 64 * 1024;
  cfg.send_soft_grace_ms = 200;
  cfg.send_hard_limit = 256 * 1024;
  log_.keep = true;
  StartServer<SinkSession>(cfg);
  constexpr int kNormal = 20;
  constexpr std::size_t kMsg = 1024;
  constexpr int kMessages = 2000;  // 2 MiB per client: far over the slow one's limits
  const uint64_t rss_before = RssBytes();

  const int slow = ConnectClient(port_, true, 4096);
  ASSERT_GE(slow, 0);
  std::vector<int> fds;
  for (int i = 0; i < kNormal; ++i) fds.push_back(ConnectClient(port_));
  ASSERT_TRUE(WaitFor([&] { return log_.connected.load() == kNormal + 1; }));
  std::vector<SessionRef> sessions;
  {
    std::lock_guard<std::mutex> g(log_.mu);
    sessions = log_.sessions;
  }
  sockaddr_in local{};
  socklen_t local_len = sizeof local;
  ::getsockname(slow, reinterpret_cast<sockaddr*>(&local), &local_len);
  const std::string slow_peer = "127.0.0.1:" + std::to_string(ntohs(local.sin_port));
  std::atomic<int> complete{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kNormal; ++i) {
    readers.emplace_back([&, fd = fds[static_cast<std::size_t>(i)]] {
      std::vector<uint8_t> got(kMsg);
      for (int m = 0; m < kMessages; ++m) {
        if (!RecvAll(fd, got.data(), kMsg)) return;
        if (got != Pattern(kMsg, static_cast<uint32_t>(m))) return;
      }
      complete.fetch_add(1);
    });
  }
  uint64_t peak_queued = 0;
  for (int m = 0; m < kMessages; ++m) {
    SendBufferRef buf = SendBuffer::Copy(Pattern(kMsg, static_cast<uint32_t>(m)));
    for (auto& s : sessions) s->Send(buf);
    peak_queued = std::max(peak_queued, server_->stats().queued_bytes);
    // Pace on the normal clients only (they read as fast as they can).
    for (auto& s : sessions) {
      if (s->peer() == slow_peer) continue;
      WaitFor([&] { return !s->IsConnected() || s->QueuedBytes() <= 32 * 1024; }, 5s);
    }
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(complete.load(), kNormal);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().Disconnects(DisconnectReason::kSlowConsumer) == 1; }));
  // The count comes before the hook (FinalizeOnLoop): wait for the hook too.
  EXPECT_TRUE(WaitFor([&] {
    return log_.by_reason[static_cast<std::size_t>(DisconnectReason::kSlowConsumer)].load() == 1u;
  }));
  EXPECT_GE(server_->stats().send_soft_limit_hits, 1u);
  // The bound: every session holds at most send_hard_limit queued bytes.
  EXPECT_LE(peak_queued, (kNormal + 1) * cfg.send_hard_limit);
  const uint64_t rss_after = RssBytes();
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && !KEEL_NET_TEST_HAS_SANITIZER
  // Without sanitizers (ASan's quarantine keeps freed memory resident).
  EXPECT_LT(rss_after, rss_before + 64 * 1024 * 1024) << "RSS grew from " << rss_before << " to " << rss_after;
#else
  (void)rss_after;
  (void)rss_before;
#endif
  ::close(slow);
  for (int fd : fds) ::close(fd);
  sessions.clear();
}

TEST_P(NetTestFanout, SendAndDisconnectFromManyThreads) {
  log_.keep = true;
  StartServer<SinkSession>();
  constexpr int kClients = 40;
  std::vector<int> fds;
  ASSERT_NO_FATAL_FAILURE(ConnectClients(kClients, &fds));
  std::vector<SessionRef> sessions;
  {
    std::lock_guard<std::mutex> g(log_.mu);
    sessions = log_.sessions;
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> drains;
  for (int fd : fds) {
    drains.emplace_back([fd, &stop] {
      char buf[4096];
      while (!stop.load() && ::recv(fd, buf, sizeof buf, 0) > 0) {
      }
    });
  }
  std::vector<std::thread> senders;
  for (int t = 0; t < 6; ++t) {
    senders.emplace_back([&, t] {
      SendBufferRef buf = SendBuffer::Copy(Pattern(64, static_cast<uint32_t>(t)));
      for (int i = 0; i < 3000; ++i) {
        auto& s = sessions[static_cast<std::size_t>((i * 7 + t) % kClients)];
        if (i % 500 == 499 && t % 2 == 0) s->Disconnect();
        s->Send(i % 3 == 0 ? buf : SendBuffer::Copy(Pattern(32, static_cast<uint32_t>(i))));
      }
    });
  }
  for (auto& th : senders) th.join();
  server_->Stop();
  stop.store(true);
  for (int fd : fds) ::shutdown(fd, SHUT_RDWR);
  for (auto& th : drains) th.join();
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(log_.disconnected.load(), kClients);
  EXPECT_GE(server_->stats().Disconnects(DisconnectReason::kLocalClose), 1u);
  EXPECT_EQ(server_->stats().queued_bytes, 0u);
  sessions.clear();
  log_.sessions.clear();
}

TEST_P(NetTestFanout, OneSendBufferReachesThousandSessionsIntact) {
  log_.keep = true;
  StartServer<SinkSession>();
  const SendBufferStats base = SendBuffer::Stats();
  constexpr int kClients = 1000;
  std::vector<int> fds;
  ASSERT_NO_FATAL_FAILURE(ConnectClients(kClients, &fds));
  auto want = Pattern(4000, 77);
  {
    SendBufferRef buf = SendBuffer::Copy(want);
    std::lock_guard<std::mutex> g(log_.mu);
    for (auto& s : log_.sessions) ASSERT_TRUE(s->Send(buf));
  }
  ASSERT_NO_FATAL_FAILURE(EveryClientGetsThenCloses(fds, want));
  {
    std::lock_guard<std::mutex> g(log_.mu);
    log_.sessions.clear();
  }
  EXPECT_TRUE(WaitFor([&] { return SendBuffer::Stats().buffers_live == base.buffers_live; }));
}

// Sends from another thread inside a WakeBatch queue their flushes but wake
// no loop until the outermost batch ends; then each loop with new work is
// woken once (without the batch: once per Send to an idle session).
TEST_P(NetTestFanout, SendsInAWakeBatchWakeEachLoopOnceWhenItEnds) {
  log_.keep = true;
  StartServer<SinkSession>();  // two IO threads
  constexpr int kClients = 20;
  std::vector<int> fds;
  // OnConnected runs on the session's own loop: every hand-over is done.
  ASSERT_NO_FATAL_FAILURE(ConnectClients(kClients, &fds));
  const NetStats base = server_->stats();
  auto want = Pattern(300, 5);
  SendBufferRef buf = SendBuffer::Copy(want);
  {
    WakeBatch outer;
    {
      WakeBatch inner;  // nested: collects into the outer batch
      std::lock_guard<std::mutex> g(log_.mu);
      for (auto& s : log_.sessions) ASSERT_TRUE(s->Send(buf));
    }
    const NetStats mid = server_->stats();
    EXPECT_EQ(mid.flush_posts - base.flush_posts, static_cast<uint64_t>(kClients));
    EXPECT_EQ(mid.wake_requests, base.wake_requests) << "a loop was woken inside the batch";
  }
  const uint64_t wakes = server_->stats().wake_requests - base.wake_requests;
  EXPECT_EQ(wakes, LoopsOf(log_)) << "one wake per loop with new work";
  ASSERT_NO_FATAL_FAILURE(EveryClientGetsThenCloses(fds, want));
  std::lock_guard<std::mutex> g(log_.mu);
  log_.sessions.clear();
}

// A batch records WakeBatch::kMaxLoops loops; a post to a loop beyond them
// is not deferred but woken at once (unbatched, never lost). Every session
// still gets its bytes, and each loop is woken exactly once.
TEST_P(NetTestFanout, AWakeBatchWakesLoopsBeyondItsLimitAtOnce) {
  log_.keep = true;
  NetConfig cfg = TestConfig(GetParam());
  cfg.io_threads = WakeBatch::kMaxLoops + 3;
  StartServer<SinkSession>(cfg);
  const int clients = static_cast<int>(cfg.io_threads);  // the listener spreads them round robin
  std::vector<int> fds;
  ASSERT_NO_FATAL_FAILURE(ConnectClients(clients, &fds));
  const uint64_t loops = LoopsOf(log_);
  ASSERT_GT(loops, WakeBatch::kMaxLoops);
  const NetStats base = server_->stats();
  auto want = Pattern(200, 9);
  SendBufferRef buf = SendBuffer::Copy(want);
  {
    WakeBatch batch;
    std::lock_guard<std::mutex> g(log_.mu);
    for (auto& s : log_.sessions) ASSERT_TRUE(s->Send(buf));
    EXPECT_EQ(server_->stats().wake_requests - base.wake_requests, loops - WakeBatch::kMaxLoops)
        << "the loops past the limit are woken at once, the others wait for the batch";
  }
  EXPECT_EQ(server_->stats().wake_requests - base.wake_requests, loops);
  ASSERT_NO_FATAL_FAILURE(EveryClientGetsThenCloses(fds, want));
  std::lock_guard<std::mutex> g(log_.mu);
  log_.sessions.clear();
}

INSTANTIATE_TEST_SUITE_P(Backends, NetTestFanout, ::testing::ValuesIn(TestBackends()), ParamName);

}  // namespace
}  // namespace keel::net::testing
