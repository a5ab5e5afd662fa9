#pragma once
// Clock: where the job layer reads time (slice budgets, the stall watchdog,
// JobTimer). SteadyClock reads std::chrono::steady_clock; ManualClock only
// moves when a test calls Advance, so timer tests are exact and instant.
//
// Both are thread-safe: Now() may be called from any thread, and
// ManualClock::Advance/Set from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace keel::job {

class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual TimePoint Now() const noexcept = 0;
};

class SteadyClock final : public Clock {
 public:
  TimePoint Now() const noexcept override { return std::chrono::steady_clock::now(); }
  // One process-wide instance, the default everywhere a clock is optional.
  static SteadyClock& Instance() noexcept;
};

class ManualClock final : public Clock {
 public:
  TimePoint Now() const noexcept override {
    return TimePoint(Duration(ns_.load(std::memory_order_relaxed)));
  }
  void Advance(Duration by) noexcept { ns_.fetch_add(by.count(), std::memory_order_relaxed); }
  void Set(TimePoint at) noexcept {
    ns_.store(at.time_since_epoch().count(), std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t> ns_{1'000'000'000};
};

}  // namespace keel::job
