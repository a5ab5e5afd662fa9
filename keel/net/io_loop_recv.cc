// IoLoop, the receive path: one read in flight per session into its
// RecvBuffer and OnRecv on each completion; a FIN, an error or a full
// buffer starts the session's close. The loop itself is io_loop.cc.
#include "keel/net/io_loop.h"

#include <algorithm>
#include <cerrno>

#include "keel/net/internal/session_core.h"

namespace keel::net {

using internal::NetCounters;
using internal::SessionCore;
using internal::SessionState;

// ---- receiving ----

void IoLoop::StartRecvOnLoop(Session* s) {
  SessionCore& core = *s->core_;
  if (core.recv.PrepareWrite(std::max<std::size_t>(config_.recv_buffer_size / 2, 512))) {
    internal::LoopTraffic::Bump(traffic_.recv_block_switches);
  }
  auto w = core.recv.Writable();
  core.recv_in_flight = true;
  ++core.ops_in_flight;
  backend_->Recv(core.fd, w.data(), w.size(), UserData(core));
}

void IoLoop::OnRecvDone(Session* s, int32_t result) {
  SessionCore& core = *s->core_;
  core.recv_in_flight = false;
  if (core.state.load(std::memory_order_relaxed) != SessionState::kOpen) return;
  if (core.lingering) {
    // Flushed and shut down for writing: drop what the peer still sends
    // until its EOF (or an error), then close with nothing unread.
    if (result <= 0) {
      CloseOnLoop(s);
      return;
    }
    NetCounters::Add(counters_->linger_discarded_bytes, static_cast<uint64_t>(result));
    StartRecvOnLoop(s);  // the bytes were never committed: no growth
    return;
  }
  if (result == 0) {
    // FIN: the peer will send no more, but may still read (half-close), so
    // what is queued is written first.
    core.peer_fin = true;
    DisconnectReason none = DisconnectReason::kNone;
    core.reason.compare_exchange_strong(none, DisconnectReason::kPeerClosed);
    CloseAfterFlushOnLoop(s, 1000);
    return;
  }
  if (result < 0) {
    if (result != -ECANCELED) CloseOnLoop(s, ReasonForErrno(-result));
    return;
  }
  const auto n = static_cast<std::size_t>(result);
  internal::LoopTraffic::Bump(traffic_.recv_ops);
  internal::LoopTraffic::Bump(traffic_.bytes_received, n);
  core.recv.CommitWrite(n);
  const std::size_t used = s->OnRecv(core.recv.Readable());
  core.recv.Consume(used);
  if (core.reason.load(std::memory_order_relaxed) != DisconnectReason::kNone) return;  // closing: stop reading
  if (core.recv.ReadableBytes() > core.max_recv_buffer) {
    CloseOnLoop(s, DisconnectReason::kRecvBufferFull);
    return;
  }
  StartRecvOnLoop(s);
}

}  // namespace keel::net
