#pragma once
// Helpers for the net tests: blocking 127.0.0.1 clients with timeouts, test
// sessions that count their hooks, bounded waits, fd counting. Test-only.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "keel/net/net_config.h"
#include "keel/net/service.h"
#include "keel/net/session.h"

namespace keel::net::testing {

// The backends every test runs on: epoll, and io_uring when built in.
std::vector<IoBackend> TestBackends();
std::string BackendName(IoBackend b);

// Polls `pred` until true or `timeout` passes; returns the last result.
bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10));

int CountOpenFds();
// `n` bytes of a pattern that differs by `seed` and across 256-byte blocks.
std::vector<uint8_t> Pattern(std::size_t n, uint32_t seed);
uint64_t RssBytes();

// A blocking client socket with 10 s send/recv timeouts; -1 on failure.
int ConnectClient(uint16_t port, bool nodelay = true, int rcvbuf = 0);
bool SendAll(int fd, const void* data, std::size_t len);
// Reads exactly len bytes (false on EOF, error or timeout).
bool RecvAll(int fd, void* data, std::size_t len);

// Hook bookkeeping shared by every session of one test.
struct HookLog {
  std::atomic<int> connected{0};
  std::atomic<int> disconnected{0};
  std::atomic<int> late_hooks{0};     // any hook after OnDisconnected
  std::atomic<int> double_disconnect{0};
  std::atomic<uint64_t> by_reason[kDisconnectReasonCount]{};
  std::mutex mu;
  std::vector<SessionRef> sessions;  // every session made, when `keep` is set
  bool keep = false;
};

// Echoes every byte back (one SendReceived per read: shared from the
// receive buffer from NetConfig::recv_share_min bytes on, else copied).
class EchoSession : public Session {
 public:
  explicit EchoSession(HookLog* log) : log_(log) {}

 protected:
  void OnConnected() override;
  std::size_t OnRecv(std::span<const uint8_t> bytes) override;
  void OnSend(std::size_t) override;
  void OnDisconnected(DisconnectReason reason) override;
  bool Closed() const { return closed_; }
  HookLog* log_;

 private:
  bool closed_ = false;
};

// Echoes whole frames [u8 len][len bytes] and leaves a partial frame in the
// RecvBuffer (consumes only complete frames).
class FrameEchoSession : public EchoSession {
 public:
  using EchoSession::EchoSession;

 protected:
  std::size_t OnRecv(std::span<const uint8_t> bytes) override;
};

// Receives nothing useful; the test sends to it from outside.
class SinkSession : public EchoSession {
 public:
  using EchoSession::EchoSession;

 protected:
  std::size_t OnRecv(std::span<const uint8_t> bytes) override { return bytes.size(); }
};

template <typename S>
SessionFactory FactoryFor(HookLog* log) {
  return [log]() -> SessionRef {
    SessionRef s = MakeRef<S>(log);
    if (log->keep) {
      std::lock_guard<std::mutex> g(log->mu);
      log->sessions.push_back(s);
    }
    return s;
  };
}

NetConfig TestConfig(IoBackend backend, std::size_t threads = 2);

}  // namespace keel::net::testing
