#include "keel/proto/packet_session.h"

#include <chrono>

#include "keel/core/log.h"

namespace keel::proto {
namespace {

int64_t NowNs() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

PacketSession::PacketSession(const ProtocolTable& table, FramerLimits limits, ProtoStats* stats)
    : framer_(table, limits, stats), state_(framer_.state()) {}

void PacketSession::SetState(uint8_t state, uint16_t max_frame) noexcept {
  state_.store(state, std::memory_order_relaxed);
  if (max_frame != 0) max_frame_.store(max_frame, std::memory_order_relaxed);
}

void PacketSession::ApplyState() noexcept {
  framer_.SetState(state_.load(std::memory_order_relaxed));
  if (const uint16_t max = max_frame_.load(std::memory_order_relaxed); max != 0) framer_.SetMaxFrame(max);
}

std::size_t PacketSession::OnRecv(std::span<const uint8_t> bytes) {
  if (reject_.load(std::memory_order_relaxed) != RejectReason::kNone) return bytes.size();
  ApplyState();
  const auto result = framer_.Parse(bytes, NowNs(), [this](const Frame& frame) {
    const RejectReason r = OnFrame(frame);
    ApplyState();  // a login handler raises the state for the next frame
    return r;
  });
  if (result.error == RejectReason::kNone) return result.consumed;
  reject_.store(result.error, std::memory_order_relaxed);
  KEEL_LOG_WARN("session {} {}: protocol error: {}; closing", id(), peer(),
                RejectReasonName(result.error));
  OnRejected(result.error);
  Disconnect(net::DisconnectReason::kProtocolError);
  return bytes.size();
}

}  // namespace keel::proto
