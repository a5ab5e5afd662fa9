// Sending on every backend over real 127.0.0.1 sockets: per-loop traffic
// counters, busy polling, SendReceived and ShareReceived (the fan-out:
// net_fanout_test.cc).
#include "keel/net/service.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "keel/net/testing/net_fixture.h"

namespace keel::net::testing {
namespace {

using namespace std::chrono_literals;

// The same fixture as net_test.cc, as its own suite (one instantiation per
// binary and suite).
class NetTestSending : public NetTest {
 protected:
  // `rounds` ping-pongs on `fd`: each message (Pattern(size, seed + i))
  // comes back whole and unchanged before the next is sent.
  static void EchoRounds(int fd, uint32_t rounds, std::size_t size, uint32_t seed = 0) {
    for (uint32_t i = 0; i < rounds; ++i) {
      const auto msg = Pattern(size, seed + i);
      ASSERT_TRUE(SendAll(fd, msg.data(), msg.size())) << "round " << i;
      std::vector<uint8_t> got(msg.size());
      ASSERT_TRUE(RecvAll(fd, got.data(), got.size())) << "round " << i;
      ASSERT_EQ(got, msg) << "round " << i;
    }
  }

  // Writes `stream` into `from` in uneven pieces (1..3001 bytes) on another
  // thread while reading as many bytes from `to`. Returns the offset of the
  // first wrong byte, stream.size() if every byte arrived intact, -1 if the
  // read failed.
  static std::ptrdiff_t StreamThrough(int from, int to, const std::vector<uint8_t>& stream) {
    std::thread writer([&] {
      std::size_t off = 0;
      std::size_t piece = 1;
      while (off < stream.size()) {
        const std::size_t n = std::min(piece, stream.size() - off);
        if (!SendAll(from, stream.data() + off, n)) return;
        off += n;
        piece = piece * 7 % 3001 + 1;
      }
    });
    std::vector<uint8_t> got(stream.size());
    const bool ok = RecvAll(to, got.data(), got.size());
    writer.join();
    if (!ok) return -1;
    return std::mismatch(got.begin(), got.end(), stream.begin()).first - got.begin();
  }
};

// Each loop counts its own reads and writes (single-writer counters); the
// Service's stats add up every loop's.
TEST_P(NetTestSending, StatsCountTheTrafficOfEveryLoop) {
  StartServer<EchoSession>();  // two IO threads: clients land on both loops
  constexpr int kClients = 8;
  uint64_t total = 0;
  for (int i = 0; i < kClients; ++i) {
    const int fd = ConnectClient(port_);
    ASSERT_GE(fd, 0);
    auto msg = Pattern(100 + static_cast<std::size_t>(i), static_cast<uint32_t>(i));
    ASSERT_TRUE(SendAll(fd, msg.data(), msg.size()));
    std::vector<uint8_t> got(msg.size());
    ASSERT_TRUE(RecvAll(fd, got.data(), got.size()));
    ASSERT_EQ(got, msg);
    total += msg.size();
    ::close(fd);
  }
  EXPECT_TRUE(WaitFor([&] {
    const NetStats st = server_->stats();
    return st.bytes_received == total && st.bytes_sent == total;
  })) << "received " << server_->stats().bytes_received << ", sent " << server_->stats().bytes_sent
      << ", want " << total;
  const NetStats st = server_->stats();
  EXPECT_GE(st.recv_ops, static_cast<uint64_t>(kClients));
  EXPECT_GE(st.send_ops, static_cast<uint64_t>(kClients));
  EXPECT_EQ(st.busy_polls, 0u) << "busy polling is off by default";
}

// With NetConfig::busy_poll_us the loop polls before it sleeps and finds a
// ping-pong client's next message without being woken: every echo arrives
// intact, spins are counted, and some found their work (the client answers
// within microseconds, a spin lasts up to 20 ms).
TEST_P(NetTestSending, BusyPollFindsThePingPongsNextMessageWithoutSleeping) {
  NetConfig cfg = TestConfig(GetParam());
  cfg.busy_poll_us = 20000;
  StartServer<EchoSession>(cfg);
  const int fd = ConnectClient(port_);
  ASSERT_GE(fd, 0);
  ASSERT_NO_FATAL_FAILURE(EchoRounds(fd, 200, 32));
  ::close(fd);
  const NetStats st = server_->stats();
  EXPECT_GT(st.busy_polls, 0u);
  EXPECT_GT(st.busy_poll_hits, 0u) << "no spin found the next message";
  EXPECT_LE(st.busy_poll_hits, st.busy_polls);
}

// SendReceived echoes from the receive buffer without a copy. A client that
// writes a long stream in uneven pieces while it reads the echo keeps slices
// queued while the loop reads on: nothing queued is ever written over (the
// echo is the stream, byte for byte), every byte went out shared, full
// blocks still shared moved the reads to another block, and every slice is
// released in the end.
TEST_P(NetTestSending, SendReceivedEchoesWithoutACopyAndNeverOverwritesWhatIsQueued) {
  NetConfig cfg = TestConfig(GetParam());
  cfg.recv_share_min = 1;
  cfg.recv_buffer_size = 4096;
  StartServer<EchoSession>(cfg);
  const SendBufferStats base = SendBuffer::Stats();
  const int fd = ConnectClient(port_);
  ASSERT_GE(fd, 0);
  const std::size_t total = KEEL_NET_TEST_HAS_SANITIZER ? (2u << 20) : (8u << 20);
  const std::vector<uint8_t> stream = Pattern(total, 5);
  EXPECT_EQ(StreamThrough(fd, fd, stream), static_cast<std::ptrdiff_t>(total)) << "offset of the first wrong byte";
  const NetStats st = server_->stats();
  EXPECT_EQ(st.recv_shared_bytes, total);
  EXPECT_GT(st.recv_block_switches, 0u);
  ::close(fd);
  ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return SendBuffer::Stats().buffers_live == base.buffers_live; }));
}

// Relays what it receives to the other session, without a copy (the slices
// are written, and released, by the other session's loop).
class RelaySession : public EchoSession {
 public:
  using EchoSession::EchoSession;

 protected:
  std::size_t OnRecv(std::span<const uint8_t> bytes) override {
    SessionRef to;
    {
      std::lock_guard<std::mutex> g(log_->mu);
      for (auto& s : log_->sessions) {
        if (s.get() != this) to = s;
      }
    }
    if (!to) return 0;  // keep the bytes until the other side is there
    SendBufferRef buf = ShareReceived(bytes);
    if (buf->data() != bytes.data()) copies.fetch_add(1);
    to->Send(std::move(buf));
    return bytes.size();
  }

 public:
  static inline std::atomic<int> copies{0};  // ShareReceived calls that copied
};

// ShareReceived hands received bytes to another session, on another loop:
// the receiver gets the sender's stream byte for byte while the sending
// session keeps reading into the same blocks, and every slice released on
// the other loop's thread goes back (TSan checks the hand-over).
TEST_P(NetTestSending, ShareReceivedRelaysToASessionOnAnotherLoop) {
  log_.keep = true;
  NetConfig cfg = TestConfig(GetParam());
  cfg.recv_share_min = 1;
  cfg.recv_buffer_size = 4096;
  RelaySession::copies = 0;
  StartServer<RelaySession>(cfg);
  ASSERT_GE(cfg.io_threads, 2u);
  const SendBufferStats base = SendBuffer::Stats();
  const int to = ConnectClient(port_);
  const int from = ConnectClient(port_);
  ASSERT_GE(to, 0);
  ASSERT_GE(from, 0);
  ASSERT_TRUE(WaitFor([&] { return log_.connected.load() == 2; }));
  const std::size_t total = KEEL_NET_TEST_HAS_SANITIZER ? (1u << 20) : (4u << 20);
  const std::vector<uint8_t> stream = Pattern(total, 11);
  EXPECT_EQ(StreamThrough(from, to, stream), static_cast<std::ptrdiff_t>(total)) << "offset of the first wrong byte";
  EXPECT_EQ(server_->stats().recv_shared_bytes, total);
  EXPECT_EQ(RelaySession::copies.load(), 0) << "a piece was copied, not shared";
  EXPECT_EQ(LoopsOf(log_), 2u) << "the two sessions share a loop";
  ::close(from);
  ::close(to);
  ASSERT_TRUE(WaitFor([&] { return log_.disconnected.load() == 2; }));
  {
    std::lock_guard<std::mutex> g(log_.mu);
    log_.sessions.clear();
  }
  EXPECT_TRUE(WaitFor([&] { return SendBuffer::Stats().buffers_live == base.buffers_live; }));
}

// Answers every read with 1500 bytes of its own (not received): those
// must be copied, whatever ShareReceived is given.
class ElsewhereSession : public EchoSession {
 public:
  using EchoSession::EchoSession;
  static inline const std::vector<uint8_t> kReply = Pattern(1500, 21);
  static inline std::atomic<int> shared{0};

 protected:
  std::size_t OnRecv(std::span<const uint8_t> bytes) override {
    SendBufferRef buf = ShareReceived(kReply);
    if (buf->data() == kReply.data()) shared.fetch_add(1);
    Send(std::move(buf));
    return bytes.size();
  }
};

TEST_P(NetTestSending, ShareReceivedCopiesBytesThatAreNotInTheReceiveBuffer) {
  ElsewhereSession::shared = 0;
  NetConfig cfg = TestConfig(GetParam());
  cfg.recv_share_min = 1;
  StartServer<ElsewhereSession>(cfg);
  const int fd = ConnectClient(port_);
  ASSERT_GE(fd, 0);
  const uint8_t one = 1;
  ASSERT_TRUE(SendAll(fd, &one, 1));
  std::vector<uint8_t> got(ElsewhereSession::kReply.size());
  ASSERT_TRUE(RecvAll(fd, got.data(), got.size()));
  EXPECT_EQ(got, ElsewhereSession::kReply);
  EXPECT_EQ(ElsewhereSession::shared.load(), 0);
  EXPECT_EQ(server_->stats().recv_shared_bytes, 0u);
  ::close(fd);
}

// Below NetConfig::recv_share_min, SendReceived copies: nothing is counted
// as shared.
TEST_P(NetTestSending, SendReceivedCopiesPiecesBelowTheShareMinimum) {
  StartServer<EchoSession>();  // recv_share_min: 1024
  const int fd = ConnectClient(port_);
  ASSERT_GE(fd, 0);
  ASSERT_NO_FATAL_FAILURE(EchoRounds(fd, 20, 100));
  // One piece of it or more is at least 1024 bytes (a 2000-byte send
  // arrives in at most a few reads on loopback).
  ASSERT_NO_FATAL_FAILURE(EchoRounds(fd, 1, 2000, 99));
  ::close(fd);
  const NetStats st = server_->stats();
  EXPECT_GE(st.recv_shared_bytes, 1024u);
  EXPECT_LE(st.recv_shared_bytes, 2000u) << "the 100-byte messages were shared";
}


INSTANTIATE_TEST_SUITE_P(Backends, NetTestSending, ::testing::ValuesIn(TestBackends()), ParamName);

}  // namespace
}  // namespace keel::net::testing