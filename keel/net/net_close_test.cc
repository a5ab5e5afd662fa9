// How sessions end and what the loop does around it, on every backend:
// Sends made on the loop thread (flushed once per pass), DisconnectWithNotice
// (drop the unsent backlog, never cut a frame, then the notice) and a fatal
// backend error (the loop fails its sessions, the Service reports it).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "keel/net/internal/backend_testing.h"
#include "keel/net/io_loop.h"
#include "keel/net/service.h"
#include "keel/net/testing/net_fixture.h"

namespace keel::net::testing {
namespace {

using namespace std::chrono_literals;

// The same fixture as net_test.cc, as its own suite (one instantiation per
// binary and suite).
class NetTestClosing : public NetTest {
 protected:
  // One IO thread, socket send buffer `sndbuf`, no practical hard limit.
  NetConfig OneLoopConfig(int sndbuf) const {
    NetConfig cfg = TestConfig(GetParam(), 1);
    cfg.socket_send_buffer = sndbuf;
    cfg.send_hard_limit = 64u << 20;
    return cfg;
  }
  // Starts a SinkSession server, connects one client (receive buffer
  // `client_rcvbuf`) into *fd and returns the server's session for it; null
  // after a failure, which is recorded.
  SessionRef ConnectToSink(const NetConfig& cfg, int client_rcvbuf, int* fd) {
    log_.keep = true;
    StartServer<SinkSession>(cfg);
    if (HasFatalFailure()) return nullptr;
    *fd = ConnectClient(port_, true, client_rcvbuf);
    if (*fd < 0 || !WaitFor([&] { return log_.connected.load() == 1; })) {
      ADD_FAILURE() << "no session for the client";
      return nullptr;
    }
    std::lock_guard<std::mutex> g(log_.mu);
    return log_.sessions.at(0);
  }
};

// Echoes each read back as three separate Sends (head, middle, tail).
class SplitEchoSession : public EchoSession {
 public:
  using EchoSession::EchoSession;

 protected:
  std::size_t OnRecv(std::span<const uint8_t> bytes) override {
    const std::size_t third = bytes.size() / 3;
    Send(bytes.subspan(0, third));
    Send(bytes.subspan(third, third));
    Send(bytes.subspan(2 * third));
    return bytes.size();
  }
};

// Sends from the loop's own thread (OnRecv) take the loop-local flush list:
// no flush is posted through the locked queue, and the three Sends of one
// OnRecv leave in one gathered write. A Send from another thread posts.
TEST_P(NetTestClosing, SendOnTheLoopThreadFlushesOnceAtTheEndOfThePassWithoutPosting) {
  log_.keep = true;
  StartServer<SplitEchoSession>();
  const int fd = ConnectClient(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WaitFor([&] { return server_->stats().sessions_open == 1; }));
  constexpr int kRounds = 200;
  for (int i = 0; i < kRounds; ++i) {
    auto msg = Pattern(30, static_cast<uint32_t>(i));
    ASSERT_TRUE(SendAll(fd, msg.data(), msg.size()));
    std::vector<uint8_t> got(msg.size());
    ASSERT_TRUE(RecvAll(fd, got.data(), got.size())) << "round " << i;
    ASSERT_EQ(got, msg) << "round " << i;
  }
  // A read may (rarely) carry less than a whole message; never more than
  // one write per read. The last write's completion may trail its bytes.
  ASSERT_TRUE(WaitFor([&] { return server_->stats().send_ops >= static_cast<uint64_t>(kRounds); }));
  const NetStats st = server_->stats();
  EXPECT_EQ(st.flush_posts, 0u);
  EXPECT_LE(st.send_ops, st.recv_ops);
  EXPECT_GE(st.send_ops, static_cast<uint64_t>(kRounds));
  SessionRef s;
  {
    std::lock_guard<std::mutex> g(log_.mu);
    s = log_.sessions.at(0);
  }
  // The last write's completion counts send_ops before its FlushOnLoop marks
  // the session as needing no flush; a Send in between posts none. Wait until
  // nothing is queued, then for one trip through the loop.
  ASSERT_TRUE(WaitFor([&] { return s->QueuedBytes() == 0; }));
  auto passed = std::make_shared<std::atomic<bool>>(false);
  s->loop()->Post([passed] { passed->store(true); });
  ASSERT_TRUE(WaitFor([&] { return passed->load(); }));
  const uint8_t hello[] = {'h', 'i'};
  ASSERT_TRUE(s->Send(hello));
  uint8_t got[2] = {};
  ASSERT_TRUE(RecvAll(fd, got, sizeof got));
  EXPECT_EQ(got[0], 'h');
  EXPECT_EQ(server_->stats().flush_posts, 1u);
  ::close(fd);
  s = nullptr;
  ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == 1; }));
  std::lock_guard<std::mutex> g(log_.mu);
  log_.sessions.clear();
}

// Frames of the notice tests: [u32 seq][u32 len][len bytes of seq's pattern];
// one SendBuffer each. The notice is the frame with seq 0xffffffff.
constexpr uint32_t kNoticeSeq = 0xffffffffu;
SendBufferRef NoticeFrame(uint32_t seq, uint32_t len) {
  SendBufferRef b = SendBuffer::Allocate(8 + len);
  std::memcpy(b->data(), &seq, 4);
  std::memcpy(b->data() + 4, &len, 4);
  for (uint32_t i = 0; i < len; ++i) b->data()[8 + i] = static_cast<uint8_t>(seq * 13 + i);
  return b;
}

// DisconnectWithNotice on a client that stopped reading with megabytes
// queued: once it reads, it gets whole frames 0..k in order (the write that
// was in flight finished, never cut), then the notice, then EOF; every byte
// queued is either received or counted as dropped.
TEST_P(NetTestClosing, DisconnectWithNoticeDropsQueuedFramesButNeverCutsOne) {
  NetConfig cfg = OneLoopConfig(16 * 1024);
  cfg.send_soft_limit = 64u << 20;
  int fd = -1;
  SessionRef s = ConnectToSink(cfg, 16 * 1024, &fd);
  ASSERT_NE(s, nullptr);
  // 4 MiB in frames of odd sizes (a partial write rarely ends on a frame edge).
  constexpr uint32_t kFrames = 400;
  uint64_t queued_total = 0;
  for (uint32_t i = 0; i < kFrames; ++i) {
    SendBufferRef f = NoticeFrame(i, 10000 + (i % 7) * 333);
    queued_total += f->size();
    ASSERT_TRUE(s->Send(f));
  }
  // The client reads nothing: the first writes fill the socket buffers, one
  // write stays in flight (io_uring) or waits for EPOLLOUT (epoll).
  ASSERT_TRUE(WaitFor([&] { return server_->stats().bytes_sent > 0; }));
  std::this_thread::sleep_for(50ms);
  const SendBufferRef notice = NoticeFrame(kNoticeSeq, 100);
  ASSERT_TRUE(s->DisconnectWithNotice(notice, DisconnectReason::kSlowConsumer, 10000));
  EXPECT_FALSE(s->Send(NoticeFrame(7, 10))) << "Sends are refused after the notice";
  EXPECT_FALSE(s->DisconnectWithNotice(notice, DisconnectReason::kLocalClose)) << "the first close wins";

  // Now read everything to EOF.
  std::vector<uint8_t> all;
  {
    uint8_t buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      ASSERT_GE(n, 0) << std::strerror(errno);
      if (n == 0) break;
      all.insert(all.end(), buf, buf + n);
    }
  }
  ::close(fd);
  std::size_t pos = 0;
  uint32_t next = 0;
  bool saw_notice = false;
  uint64_t frame_bytes = 0;
  while (pos < all.size()) {
    ASSERT_FALSE(saw_notice) << "bytes after the notice";
    ASSERT_GE(all.size() - pos, 8u) << "cut frame header after frame " << next;
    uint32_t seq, len;
    std::memcpy(&seq, all.data() + pos, 4);
    std::memcpy(&len, all.data() + pos + 4, 4);
    ASSERT_GE(all.size() - pos - 8, len) << "frame " << seq << " cut";
    for (uint32_t i = 0; i < len; ++i) {
      ASSERT_EQ(all[pos + 8 + i], static_cast<uint8_t>(seq * 13 + i)) << "frame " << seq << " byte " << i;
    }
    if (seq == kNoticeSeq) {
      saw_notice = true;
      EXPECT_EQ(len, 100u);
    } else {
      ASSERT_EQ(seq, next) << "frames out of order";
      ++next;
      frame_bytes += 8 + len;
    }
    pos += 8 + len;
  }
  EXPECT_TRUE(saw_notice);
  EXPECT_GT(next, 0u) << "the data before the notice arrives";
  EXPECT_LT(next, kFrames) << "queued frames were dropped";
  ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == 1; }));
  const NetStats st = server_->stats();
  EXPECT_EQ(st.Disconnects(DisconnectReason::kSlowConsumer), 1u);
  EXPECT_EQ(st.notice_disconnects, 1u);
  EXPECT_EQ(st.notice_dropped_bytes + frame_bytes, queued_total);
  EXPECT_EQ(st.queued_bytes, 0u);
  s = nullptr;
  std::lock_guard<std::mutex> g(log_.mu);
  log_.sessions.clear();
}

// The notice cannot be written (the client never reads): the session ends
// at the timeout, with the notice's reason.
TEST_P(NetTestClosing, DisconnectWithNoticeClosesAtTheTimeoutWhenThePeerNeverReads) {
  NetConfig cfg = OneLoopConfig(8 * 1024);
  int fd = -1;
  SessionRef s = ConnectToSink(cfg, 4096, &fd);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Send(SendBuffer::Allocate(4 << 20)));
  ASSERT_TRUE(WaitFor([&] { return server_->stats().bytes_sent > 0; }));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(s->DisconnectWithNotice(NoticeFrame(kNoticeSeq, 10), DisconnectReason::kSlowConsumer, 200));
  ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == 1; }));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(server_->stats().Disconnects(DisconnectReason::kSlowConsumer), 1u);
  EXPECT_EQ(server_->stats().queued_bytes, 0u);
  ::close(fd);
  s = nullptr;
  std::lock_guard<std::mutex> g(log_.mu);
  log_.sessions.clear();
}

// Kicked while it keeps sending: the server stops reading at the kick, so
// bytes pile up unread in its socket. Closing then would make the kernel
// send RST, and the client would lose what it had not read yet (the notice
// first) and see ECONNRESET. With linger_close the server shuts down its
// write side after the notice, drains until the client's EOF, and closes
// with nothing unread: the client reads the notice, then EOF, never RST.
TEST_P(NetTestClosing, KickWhileThePeerKeepsSendingEndsWithTheNoticeThenEofNotRst) {
  NetConfig cfg = OneLoopConfig(16 * 1024);
  int fd = -1;
  SessionRef s = ConnectToSink(cfg, 16 * 1024, &fd);
  ASSERT_NE(s, nullptr);
  // The client does not read yet: 1 MiB stays partly written.
  ASSERT_TRUE(s->Send(SendBuffer::Allocate(1u << 20)));
  ASSERT_TRUE(WaitFor([&] { return server_->stats().bytes_sent > 0; }));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> client_sent{0};
  std::thread sender([&] {
    const std::vector<uint8_t> chunk(4096, 0x5a);
    while (!stop.load()) {
      const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;  // SO_SNDTIMEO
      if (n <= 0) break;
      client_sent.fetch_add(static_cast<uint64_t>(n));
    }
  });
  // Joined on every way out (an ASSERT included): a joinable thread's
  // destructor would terminate the test binary.
  struct JoinSender {
    std::atomic<bool>& stop;
    std::thread& t;
    ~JoinSender() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join_sender{stop, sender};
  ASSERT_TRUE(WaitFor([&] { return server_->stats().bytes_received > 0; }));
  const SendBufferRef notice = NoticeFrame(kNoticeSeq, 100);
  ASSERT_TRUE(s->DisconnectWithNotice(notice, DisconnectReason::kProtocolError, 10000));
  // The server reads no more. Once the client has sent more than the server
  // read, the rest is unread in the server's socket (or on its way there).
  ASSERT_TRUE(WaitFor([&] { return client_sent.load() > server_->stats().bytes_received + 4096; }));

  std::vector<uint8_t> all;
  ssize_t last = 0;
  int last_errno = 0;
  {
    uint8_t buf[65536];
    for (;;) {
      last = ::recv(fd, buf, sizeof buf, 0);
      if (last < 0 && errno == EINTR) continue;
      if (last <= 0) {
        last_errno = last < 0 ? errno : 0;
        break;
      }
      all.insert(all.end(), buf, buf + last);
    }
  }
  stop = true;
  sender.join();
  EXPECT_EQ(last, 0) << "the read ended with " << std::strerror(last_errno)
                     << " (RST), not EOF";
  ASSERT_GE(all.size(), notice->size());
  EXPECT_EQ(0, std::memcmp(all.data() + all.size() - notice->size(), notice->data(), notice->size()))
      << "the last bytes read are not the notice";
  ::shutdown(fd, SHUT_WR);  // the client is done too: the server stops lingering
  ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == 1; }));
  EXPECT_EQ(::recv(fd, all.data(), 1, 0), 0) << "after the server closed: " << std::strerror(errno);
  ::close(fd);
  const NetStats st = server_->stats();
  EXPECT_EQ(st.Disconnects(DisconnectReason::kProtocolError), 1u);
  EXPECT_EQ(st.lingering_closes, 1u);
  EXPECT_GT(st.linger_discarded_bytes, 0u) << "what the client sent after the kick";
  EXPECT_EQ(st.queued_bytes, 0u);
  s = nullptr;
  std::lock_guard<std::mutex> g(log_.mu);
  log_.sessions.clear();
}

// A fatal backend error on one loop (injected: its Wait stops and error()
// turns non-zero) fails that loop's sessions with kIoError, their peers see
// the connection end, the loop stops, the Service reports it, and the other
// loop keeps serving, new connections included. Stop frees everything.
TEST_P(NetTestClosing, FatalBackendErrorFailsTheLoopsSessionsAndTheServiceReportsIt) {
  auto fault = std::make_shared<internal::BackendFault>();
  internal::SetBackendWrapperForTest([fault](std::unique_ptr<internal::Backend> b, uint32_t loop) {
    return loop == 1 ? internal::WithFaultForTest(std::move(b), fault) : std::move(b);
  });
  struct Seen {
    std::atomic<int> loop{-1};
    std::atomic<int> error{0};
    std::atomic<int> disconnected{0};  // when the callback ran
    std::atomic<int> calls{0};
  };
  auto seen = std::make_shared<Seen>();
  NetConfig cfg = TestConfig(GetParam(), 2);
  cfg.on_loop_failed = [seen, d = &log_.disconnected](uint32_t loop, int err) {
    seen->disconnected.store(d->load());
    // Slow on purpose: Failed() must not turn true before the callback is
    // done (a CI run once saw Failed() and every OnDisconnected, but not this).
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    seen->loop.store(static_cast<int>(loop));
    seen->error.store(err);
    seen->calls.fetch_add(1);
    throw std::runtime_error("on_loop_failed failed");  // logged and counted, nothing more
  };
  StartServer<EchoSession>(cfg);
  internal::SetBackendWrapperForTest(nullptr);
  const int fds_before = CountOpenFds();
  auto ping = [](int fd) {
    const char msg[4] = {'p', 'i', 'n', 'g'};
    char buf[4] = {};
    return SendAll(fd, msg, 4) && RecvAll(fd, buf, 4) && std::memcmp(buf, msg, 4) == 0;
  };
  constexpr int kClients = 20;  // round-robin: 10 on each loop
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(ConnectClient(port_));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(ping(fds.back()));
  }
  ASSERT_TRUE(WaitFor([&] { return server_->stats().sessions_open == kClients; }));
  EXPECT_FALSE(server_->Failed());

  fault->Fail(-EBADF);
  ASSERT_TRUE(WaitFor([&] { return server_->Failed(); }));
  // No waiting past Failed(): the sessions are failed and the callback done.
  EXPECT_EQ(log_.disconnected.load(), kClients / 2);
  EXPECT_EQ(seen->loop.load(), 1);
  EXPECT_EQ(seen->error.load(), -EBADF);
  EXPECT_EQ(seen->disconnected.load(), kClients / 2)
      << "on_loop_failed runs after the loop's sessions got OnDisconnected";
  EXPECT_EQ(seen->calls.load(), 1);
  EXPECT_EQ(server_->stats().hook_exceptions, 1u) << "on_loop_failed's exception";
  EXPECT_EQ(log_.by_reason[static_cast<std::size_t>(DisconnectReason::kIoError)].load(),
            static_cast<uint64_t>(kClients / 2));
  EXPECT_EQ(server_->stats().loops_failed, 1u);
  int echoed = 0;
  int ended = 0;
  for (int fd : fds) {
    if (ping(fd)) {
      ++echoed;
    } else {
      char c;
      const ssize_t n = ::recv(fd, &c, 1, 0);
      EXPECT_LE(n, 0) << "a failed session's peer must see EOF or a reset";
      ++ended;
    }
  }
  EXPECT_EQ(echoed, kClients / 2);
  EXPECT_EQ(ended, kClients / 2);
  // New connections all land on the loop still running.
  for (int i = 0; i < 6; ++i) {
    const int fd = ConnectClient(port_);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(ping(fd)) << "new client " << i;
    fds.push_back(fd);
  }
  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == kClients + 6; }));
  server_->Stop();
  const NetStats st = server_->stats();
  EXPECT_EQ(st.sessions_open, 0u) << "sessions held for the failed backend are freed by Stop";
  EXPECT_EQ(st.queued_bytes, 0u);
  EXPECT_EQ(CountOpenFds(), fds_before - 1 - 2 * 2) << "listener and both loops' backend fds closed";
}

INSTANTIATE_TEST_SUITE_P(Backends, NetTestClosing, ::testing::ValuesIn(TestBackends()), ParamName);

}  // namespace
}  // namespace keel::net::testing
