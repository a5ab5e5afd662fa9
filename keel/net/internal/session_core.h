#pragma once
// SessionCore: the engine's state for one Session (socket, send queue,
// receive buffer, operations in flight). Owned by its Session (created in
// Session's constructor, deleted in its destructor).
//
// Threads: `mu` guards the send queue, written by Send on any thread.
// `reason` and `state` are atomics read anywhere. Everything marked
// "loop only" is touched only on the owning IoLoop's thread.

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "keel/core/spin_lock.h"
#include "keel/core/thread_annotations.h"
#include "keel/net/disconnect_reason.h"
#include "keel/net/internal/net_counters.h"
#include "keel/net/recv_buffer.h"
#include "keel/net/send_buffer.h"

namespace keel::net::internal {

enum class SessionState : uint8_t {
  kNew,         // not registered on a loop yet
  kConnecting,  // client side: connect in flight (Send queues)
  kOpen,
  kClosing,     // close started on the loop: waiting for the last completion
  kClosed,      // OnDisconnected ran; nothing more happens
};

struct SessionCore {
  std::atomic<SessionState> state{SessionState::kNew};
  // First close request wins (Disconnect, DisconnectAfterFlush, errors).
  std::atomic<DisconnectReason> reason{DisconnectReason::kNone};
  std::shared_ptr<NetCounters> counters;  // set when registered
  std::size_t soft_limit = 0;
  std::size_t hard_limit = 0;

  // Send queue (any thread).
  core::SpinLock mu{"Session.send"};
  std::deque<SendBufferRef> pending KEEL_GUARDED_BY(mu);
  // A flush is posted to the loop or a write is in flight: Send need not wake.
  bool flush_scheduled KEEL_GUARDED_BY(mu) = false;
  // Bytes queued and not yet written (pending + rest of the write in flight).
  std::atomic<std::size_t> queued{0};

  // Loop only.
  int fd = -1;
  uint32_t slot = 0;
  uint32_t generation = 0;
  uint32_t ops_in_flight = 0;
  bool recv_in_flight = false;
  bool send_in_flight = false;
  bool cancelled = false;
  bool flush_then_close = false;
  // Flushed, write side shut down: reads are discarded until the peer's EOF
  // (NetConfig::linger_close).
  bool lingering = false;
  bool peer_fin = false;  // the peer closed first: nothing to wait for
  // DisconnectWithNotice while a write was in flight: when it completes, drop
  // the buffers of it the kernel did not touch.
  bool drop_untouched_inflight = false;
  bool connected_hook_ran = false;
  std::chrono::steady_clock::time_point soft_since{};  // over the soft limit since; {} when not
  RecvBuffer recv;
  std::vector<SendBufferRef> inflight;  // buffers of the write in flight
  std::vector<iovec> iov;
  std::size_t inflight_offset = 0;      // bytes of inflight[0] already written
  std::size_t max_recv_buffer = 0;
  std::size_t recv_share_min = 0;
  LoopTraffic* traffic = nullptr;  // the owning loop's counters
};

}  // namespace keel::net::internal
