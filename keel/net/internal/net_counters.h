#pragma once
// NetCounters: the atomics behind NetStats, shared by a Service, its loops
// and its sessions (a session may outlive its Service, so they share
// ownership). Relaxed: each is an independent counter or gauge.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "keel/net/net_stats.h"

namespace keel::net::internal {

// The traffic counters of one IoLoop, bumped once or twice per read and per
// write. Only that loop's thread writes them, so a bump is a relaxed load and
// store, not a locked read-modify-write (four of those per echoed message
// were on the hot path); any thread may read them. One cache line per loop:
// loops never write a line another loop writes.
struct alignas(64) LoopTraffic {
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> recv_ops{0};
  std::atomic<uint64_t> send_ops{0};
  std::atomic<uint64_t> busy_polls{0};      // spins before a sleep (NetConfig::busy_poll_us)
  std::atomic<uint64_t> busy_poll_hits{0};  // ... that found work and skipped the sleep
  std::atomic<uint64_t> recv_shared_bytes{0};    // shared by ShareReceived, no copy
  std::atomic<uint64_t> recv_block_switches{0};  // reads moved on: slices pinned the full block

  // Single writer only (the owning loop's thread).
  static void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

struct NetCounters {
  explicit NetCounters(std::size_t loops = 1)
      : loop_count(loops == 0 ? 1 : loops), traffic(std::make_unique<LoopTraffic[]>(loop_count)) {}

  std::atomic<uint64_t> sessions_open{0};
  std::atomic<uint64_t> queued_bytes{0};
  std::atomic<uint64_t> sessions_accepted{0};
  std::atomic<uint64_t> sessions_connected{0};
  std::atomic<uint64_t> flush_posts{0};
  std::atomic<uint64_t> wake_requests{0};
  std::atomic<uint64_t> notice_disconnects{0};
  std::atomic<uint64_t> notice_dropped_bytes{0};
  std::atomic<uint64_t> lingering_closes{0};
  std::atomic<uint64_t> linger_discarded_bytes{0};
  std::atomic<uint64_t> loops_failed{0};
  std::atomic<uint64_t> send_soft_limit_hits{0};
  std::atomic<uint64_t> accept_pauses{0};
  std::atomic<uint64_t> sessions_refused{0};
  std::atomic<uint64_t> hook_exceptions{0};
  std::atomic<uint64_t> disconnects[kDisconnectReasonCount]{};
  const std::size_t loop_count;
  const std::unique_ptr<LoopTraffic[]> traffic;  // one per IoLoop, by index

  static void Add(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept { c.fetch_add(n, std::memory_order_relaxed); }
  static void Sub(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept { c.fetch_sub(n, std::memory_order_relaxed); }
  void CountDisconnect(DisconnectReason r) noexcept { Add(disconnects[static_cast<std::size_t>(r)]); }

  NetStats Snapshot() const noexcept {
    NetStats s;
    auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    s.sessions_open = ld(sessions_open);
    s.queued_bytes = ld(queued_bytes);
    s.sessions_accepted = ld(sessions_accepted);
    s.sessions_connected = ld(sessions_connected);
    for (std::size_t i = 0; i < loop_count; ++i) {
      s.bytes_received += ld(traffic[i].bytes_received);
      s.bytes_sent += ld(traffic[i].bytes_sent);
      s.recv_ops += ld(traffic[i].recv_ops);
      s.send_ops += ld(traffic[i].send_ops);
      s.busy_polls += ld(traffic[i].busy_polls);
      s.busy_poll_hits += ld(traffic[i].busy_poll_hits);
      s.recv_shared_bytes += ld(traffic[i].recv_shared_bytes);
      s.recv_block_switches += ld(traffic[i].recv_block_switches);
    }
    s.flush_posts = ld(flush_posts);
    s.wake_requests = ld(wake_requests);
    s.notice_disconnects = ld(notice_disconnects);
    s.notice_dropped_bytes = ld(notice_dropped_bytes);
    s.lingering_closes = ld(lingering_closes);
    s.linger_discarded_bytes = ld(linger_discarded_bytes);
    s.loops_failed = ld(loops_failed);
    s.send_soft_limit_hits = ld(send_soft_limit_hits);
    s.accept_pauses = ld(accept_pauses);
    s.sessions_refused = ld(sessions_refused);
    s.hook_exceptions = ld(hook_exceptions);
    for (std::size_t i = 0; i < kDisconnectReasonCount; ++i) s.disconnects[i] = ld(disconnects[i]);
    return s;
  }
};

}  // namespace keel::net::internal
