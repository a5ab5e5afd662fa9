#pragma once
// PacketFramer: turns a session's received bytes into frames, rejecting
// hostile input before it costs memory or CPU.
//
// The framer never copies or allocates by a declared size: it reads frames
// in place from the caller's buffer (the session's RecvBuffer) and hands each
// one to a callback as (id, payload span). A partial frame is left for the
// next read; its header is judged as soon as its 2 or 4 bytes are there, so
// a forged size is refused before any of its payload is waited for.
//
// Checks, in order, each closing the session with a named, counted reason:
//   size < 4                  kFrameTooShort
//   size > max frame          kFrameTooLong  (max is per state: 4 KiB before login)
//   id unknown                kUnknownId
//   id not allowed now        kIdNotAllowed
//   frames in this read > N   kTooManyFrames
//   frames/s above limit      kRateLimited   (session-wide, and per id if the
//                                             protocol gives the id a rate)
//
// One framer per session, used only on that session's IO thread.

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "keel/proto/protocol_table.h"
#include "keel/proto/rate_limiter.h"
#include "keel/proto/reject_reason.h"
#include "keel/proto/wire.h"

namespace keel::proto {

struct FramerLimits {
  uint16_t max_frame = 0xFFFF;          // bytes, header included (DESIGN: 64 KiB)
  uint32_t max_frames_per_read = 256;   // frames one Parse call may deliver
  uint32_t frames_per_second = 2000;    // session-wide; 0 = unlimited
  uint32_t frames_burst = 4000;
};

struct Frame {
  uint16_t id;
  std::span<const uint8_t> payload;
};

class PacketFramer {
 public:
  struct Result {
    size_t consumed = 0;                       // bytes of whole frames delivered
    size_t frames = 0;                         // frames delivered
    RejectReason error = RejectReason::kNone;  // set: close the session
  };

  // `table` and `stats` (may be null) must outlive the framer.
  PacketFramer(const ProtocolTable& table, FramerLimits limits, ProtoStats* stats);

  // The session's state bit (which ids are allowed) and its max frame size;
  // a session raises both after login.
  void SetState(uint8_t state) noexcept { state_ = state; }
  void SetMaxFrame(uint16_t max_frame) noexcept { limits_.max_frame = max_frame; }
  uint8_t state() const noexcept { return state_; }

  // Delivers the whole frames at the front of `data` to on_frame(const
  // Frame&), which returns a RejectReason (kNone to go on). Stops at the
  // first violation: frames before it were delivered and stay delivered.
  // The caller drops `consumed` bytes and keeps the rest for the next read.
  template <typename OnFrame>
  Result Parse(std::span<const uint8_t> data, int64_t now_ns, OnFrame&& on_frame);

 private:
  RejectReason CheckHeader(std::span<const uint8_t> data) const noexcept;
  RejectReason CheckRate(uint16_t id, int64_t now_ns);
  RejectReason Reject(RejectReason reason) noexcept {
    if (stats_ != nullptr) stats_->Count(reason);
    return reason;
  }

  const ProtocolTable& table_;
  FramerLimits limits_;
  ProtoStats* stats_;
  uint8_t state_ = 1;
  RateLimiter session_rate_;
  std::vector<std::pair<uint16_t, RateLimiter>> id_rates_;  // ids with their own limit
};

template <typename OnFrame>
PacketFramer::Result PacketFramer::Parse(std::span<const uint8_t> data, int64_t now_ns,
                                         OnFrame&& on_frame) {
  Result result;
  while (true) {
    const std::span<const uint8_t> rest = data.subspan(result.consumed);
    if (const RejectReason bad = CheckHeader(rest); bad != RejectReason::kNone) {
      result.error = Reject(bad);
      return result;
    }
    if (rest.size() < kFrameHeaderSize) return result;
    const uint16_t size = LoadU16(rest.data());
    if (rest.size() < size) return result;  // header fine, payload still coming
    const uint16_t id = LoadU16(rest.data() + 2);
    if (result.frames == limits_.max_frames_per_read) {
      result.error = Reject(RejectReason::kTooManyFrames);
      return result;
    }
    if (const RejectReason bad = CheckRate(id, now_ns); bad != RejectReason::kNone) {
      result.error = Reject(bad);
      return result;
    }
    const Frame frame{id, rest.subspan(kFrameHeaderSize, size - kFrameHeaderSize)};
    if (const RejectReason bad = on_frame(frame); bad != RejectReason::kNone) {
      result.error = Reject(bad);
      return result;
    }
    if (stats_ != nullptr) stats_->CountFrame(size);
    result.consumed += size;
    ++result.frames;
  }
}

}  // namespace keel::proto
