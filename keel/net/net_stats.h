#pragma once
// NetStats: a snapshot of a Service's counters and gauges (relaxed reads;
// each value is exact, the set is not one instant).

#include <array>
#include <cstdint>
#include <string_view>

#include "keel/net/disconnect_reason.h"

namespace keel::net {

struct NetStats {
  std::string_view backend;          // "uring" or "epoll"
  // Gauges.
  uint64_t sessions_open = 0;        // sessions not yet freed
  uint64_t queued_bytes = 0;         // bytes queued on all sessions, not yet written
  // Counters.
  uint64_t sessions_accepted = 0;
  uint64_t sessions_connected = 0;   // client side
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t recv_ops = 0;             // completed reads
  uint64_t send_ops = 0;             // completed (gathered) writes
  uint64_t busy_polls = 0;           // loops' spins before sleeping (NetConfig::busy_poll_us)
  uint64_t busy_poll_hits = 0;       // ... that found work, so the loop did not sleep
  uint64_t recv_shared_bytes = 0;    // handed out by Session::ShareReceived without a copy
  uint64_t recv_block_switches = 0;  // reads moved to another block because slices pinned the full one
  uint64_t flush_posts = 0;          // flushes posted to a loop by Sends on other threads
  uint64_t wake_requests = 0;        // loop wake-ups asked by other threads (WakeBatch: one per batch and loop)
  uint64_t notice_disconnects = 0;   // DisconnectWithNotice calls that took effect
  uint64_t notice_dropped_bytes = 0; // queued bytes DisconnectWithNotice dropped unsent
  uint64_t lingering_closes = 0;     // closes that shut down the write side and drained first
  uint64_t linger_discarded_bytes = 0;  // bytes read and dropped while lingering
  uint64_t loops_failed = 0;         // IO loops stopped by a fatal backend error or their own exception (ADR 0011)
  uint64_t send_soft_limit_hits = 0; // sessions that went over the soft limit
  uint64_t accept_pauses = 0;        // EMFILE/ENFILE/fd-reserve pauses
  uint64_t sessions_refused = 0;     // over max_sessions
  uint64_t hook_exceptions = 0;      // exceptions out of hooks, factories, posted functions, timers, on_loop_failed
  std::array<uint64_t, kDisconnectReasonCount> disconnects{};  // by DisconnectReason

  uint64_t Disconnects(DisconnectReason r) const noexcept {
    return disconnects[static_cast<std::size_t>(r)];
  }
};

}  // namespace keel::net
