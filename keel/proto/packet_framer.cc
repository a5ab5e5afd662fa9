#include "keel/proto/packet_framer.h"

#include "keel/proto/protobuf_log.h"

namespace keel::proto {

PacketFramer::PacketFramer(const ProtocolTable& table, FramerLimits limits, ProtoStats* stats)
    : table_(table),
      limits_(limits),
      stats_(stats),
      session_rate_(limits.frames_per_second, limits.frames_burst) {
  // Hostile payloads make protobuf log; keep that bounded from the start.
  [[maybe_unused]] static const bool log_handler_installed = [] {
    InstallProtobufLogHandler();
    return true;
  }();
  for (const auto& r : table.RatedIds()) id_rates_.emplace_back(r.id, RateLimiter(r.per_second, 2 * r.per_second));
}

RejectReason PacketFramer::CheckHeader(std::span<const uint8_t> data) const noexcept {
  if (data.size() < 2) return RejectReason::kNone;  // not even a size yet
  const uint16_t size = LoadU16(data.data());
  if (size < kFrameHeaderSize) return RejectReason::kFrameTooShort;
  if (size > limits_.max_frame) return RejectReason::kFrameTooLong;
  if (data.size() < kFrameHeaderSize) return RejectReason::kNone;
  const uint16_t id = LoadU16(data.data() + 2);
  if (!table_.Known(id)) return RejectReason::kUnknownId;
  if (!table_.AllowedIn(id, state_)) return RejectReason::kIdNotAllowed;
  return RejectReason::kNone;
}

RejectReason PacketFramer::CheckRate(uint16_t id, int64_t now_ns) {
  if (!session_rate_.TryTake(now_ns)) return RejectReason::kRateLimited;
  for (auto& [rated_id, limiter] : id_rates_) {
    if (rated_id == id) return limiter.TryTake(now_ns) ? RejectReason::kNone : RejectReason::kRateLimited;
  }
  return RejectReason::kNone;
}

std::string_view RejectReasonName(RejectReason reason) noexcept {
  switch (reason) {
    case RejectReason::kNone: return "none";
    case RejectReason::kFrameTooShort: return "frame too short";
    case RejectReason::kFrameTooLong: return "frame too long";
    case RejectReason::kUnknownId: return "unknown packet id";
    case RejectReason::kIdNotAllowed: return "packet id not allowed in this state";
    case RejectReason::kTooManyFrames: return "too many frames in one read";
    case RejectReason::kRateLimited: return "packet rate limit";
    case RejectReason::kBadPayload: return "malformed payload";
    case RejectReason::kCount: break;
  }
  return "invalid reason";
}

}  // namespace keel::proto
