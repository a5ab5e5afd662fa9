#pragma once
// RateLimiter: per_second frames on average with bursts of up to `burst`,
// as the generic cell rate algorithm (GCRA): one "theoretical arrival time"
// instead of a token count, integer nanoseconds, exact, no overflow.
// Driven by the caller's clock so tests use a manual one and the framer
// passes the time of the read. Not thread-safe: one per session, used on the
// session's IO thread.

#include <algorithm>
#include <cstdint>

namespace keel::proto {

class RateLimiter {
 public:
  static constexpr uint32_t kMaxPerSecond = 1'000'000'000;

  // per_second == 0: unlimited. burst >= 1.
  RateLimiter(uint32_t per_second, uint32_t burst) noexcept
      : interval_ns_(per_second == 0 ? 0 : 1'000'000'000LL / std::min(per_second, kMaxPerSecond)),
        tolerance_ns_(interval_ns_ * (std::max(burst, 1u) - 1)) {}

  // Takes one frame's worth at time `now_ns`; false if over the rate.
  bool TryTake(int64_t now_ns) noexcept {
    if (interval_ns_ == 0) return true;
    const int64_t tat = std::max(tat_ns_, now_ns);
    if (tat - now_ns > tolerance_ns_) return false;
    tat_ns_ = tat + interval_ns_;
    return true;
  }

 private:
  int64_t interval_ns_;   // time one frame "costs"
  int64_t tolerance_ns_;  // how far ahead of now the cost may run: burst - 1 frames
  int64_t tat_ns_ = INT64_MIN;
};

}  // namespace keel::proto
