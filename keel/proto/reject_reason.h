#pragma once
// Why the packet layer closed a session, and how often each reason struck.
//
// Every rejection names one RejectReason; the name goes to the log and the
// disconnect reason, the count to ProtoStats (shared by all sessions of a
// service, atomics, readable from any thread).

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace keel::proto {

enum class RejectReason : uint8_t {
  kNone = 0,
  kFrameTooShort,    // size < 4
  kFrameTooLong,     // size > the session's max frame
  kUnknownId,        // id not in the protocol
  kIdNotAllowed,     // id not allowed in the session's state (e.g. before login)
  kTooManyFrames,    // more frames in one read than allowed
  kRateLimited,      // frames (or one id) above the configured rate
  kBadPayload,       // payload does not parse, or fails validation (UTF-8, ...)
  kCount,
};

std::string_view RejectReasonName(RejectReason reason) noexcept;

class ProtoStats {
 public:
  void Count(RejectReason reason) noexcept {
    rejects_[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t Rejects(RejectReason reason) const noexcept {
    return rejects_[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
  }
  void CountFrame(size_t bytes) noexcept {
    frames_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }
  uint64_t Frames() const noexcept { return frames_.load(std::memory_order_relaxed); }
  uint64_t Bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, static_cast<size_t>(RejectReason::kCount)> rejects_{};
  std::atomic<uint64_t> frames_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace keel::proto
