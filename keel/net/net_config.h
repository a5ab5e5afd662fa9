#pragma once
// NetConfig: every limit and socket option of a Service, with defaults a
// production server can start from. Each limit that trips is counted in
// NetStats and ends the session with a named DisconnectReason.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::net {

enum class IoBackend : uint8_t {
  kAuto,   // io_uring if its start-up self-test passes, else epoll (reason logged)
  kUring,  // io_uring or fail Start()
  kEpoll,
};

std::optional<IoBackend> ParseIoBackend(std::string_view text) noexcept;  // auto|uring|epoll
std::string_view ToString(IoBackend backend) noexcept;

struct NetConfig {
  // Threads.
  std::size_t io_threads = 1;            // one IoLoop per thread
  std::vector<int> io_cpus;              // pin IO thread i to io_cpus[i % size]; empty: no pinning
  std::string thread_name = "io";        // threads are named "<thread_name>-<i>"
  // Called on an IO thread whose loop failed for good (ADR 0011): its
  // backend failed (-errno), or its own work threw outside any hook
  // (-ENOTRECOVERABLE). After that loop's sessions got
  // OnDisconnected(kIoError), before the thread ends: (loop index, error).
  // Service::Failed() turns true after it returns, so a thread that sees
  // Failed() sees what the callback did (for the first loop to fail).
  std::function<void(uint32_t loop, int error)> on_loop_failed;
  IoBackend backend = IoBackend::kAuto;  // KEEL_IO=auto|uring|epoll overrides (ApplyEnvironment)

  // Listener.
  int listen_backlog = 1024;
  std::size_t max_sessions = 10000;      // server side; beyond it accepted sockets close at once
  std::size_t fd_reserve = 16;           // fds kept free; on EMFILE/ENFILE accepting pauses
  uint32_t accept_pause_ms = 100;        // ... for this long, then resumes (never spins)

  // Receive.
  std::size_t recv_buffer_size = 16 * 1024;    // initial RecvBuffer capacity per session
  std::size_t max_recv_buffer = 256 * 1024;    // unconsumed bytes allowed before kRecvBufferFull
  // Session::SendReceived shares received bytes without a copy from this
  // many on (fewer are copied: a copy of a few hundred bytes costs less than
  // sharing, and a small slice would pin a whole receive block). SIZE_MAX:
  // always copy.
  std::size_t recv_share_min = 1024;

  // Send backpressure (bytes queued on a session and not yet written).
  std::size_t send_soft_limit = 256 * 1024;    // over it for longer than the grace: kSlowConsumer
  uint32_t send_soft_grace_ms = 2000;
  std::size_t send_hard_limit = 4 * 1024 * 1024;  // over it at once: kSlowConsumer
  std::size_t max_gather = 64;                 // buffers gathered into one write
  // Closing after a flush (DisconnectAfterFlush, DisconnectWithNotice; not
  // when the peer closed first): once the last byte is written, shut down
  // the write side (FIN) and read and discard until the peer closes or the
  // close timeout, so that bytes the peer is still sending do not turn the
  // close into an RST that destroys the last bytes (a kick's notice) before
  // the peer reads them. false: close as soon as the last byte is written.
  bool linger_close = true;
  // Before an IO loop sleeps, it polls for completions without sleeping for
  // up to this long (less if a timer is due sooner). Trades a core's idle
  // time for the wake-up: the loop finds work that arrives within the spin
  // without being woken (counted: NetStats::busy_polls, busy_poll_hits).
  // 0: never spin. Off by default; measured in docs/benchmarks.md
  // ("Echo: busy polling"): it pays where the client side is the
  // saturated one, costs CPU where server and client share a core.
  uint32_t busy_poll_us = 0;

  // Socket options.
  bool tcp_nodelay = true;
  bool keepalive = true;
  int keepalive_idle_s = 60;
  int socket_send_buffer = 0;   // SO_SNDBUF bytes; 0 = kernel default
  int socket_recv_buffer = 0;   // SO_RCVBUF bytes; 0 = kernel default

  // Client side.
  uint32_t connect_timeout_ms = 5000;

  // Reads KEEL_IO (auto|uring|epoll); returns an error text for a bad value.
  std::optional<std::string> ApplyEnvironment();
};

}  // namespace keel::net
