#pragma once
// Backoff for spin-wait loops: exponential CPU pauses, then yields, then
// short sleeps that grow to a cap. A waiter therefore never burns a core for
// long, even when the holder was preempted (common on a 2-vCPU VM).
// One Backoff per wait; not shared between threads.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

namespace keel::core::internal {

inline void CpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

class Backoff {
 public:
  static constexpr uint32_t kSpinRounds = 7;      // 1 + 2 + ... + 64 pauses
  static constexpr uint32_t kYieldRounds = 16;
  static constexpr std::chrono::microseconds kFirstSleep{8};
  static constexpr std::chrono::microseconds kMaxSleep{256};

  void Pause() noexcept {
    if (round_ < kSpinRounds) {
      for (uint32_t i = 0; i < (1u << round_); ++i) CpuRelax();
    } else if (round_ < kSpinRounds + kYieldRounds) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(sleep_);
      sleep_ = std::min(sleep_ * 2, kMaxSleep);
    }
    ++round_;
  }
  // True once the waiter has gone past pure spinning.
  bool Yielding() const noexcept { return round_ >= kSpinRounds; }
  // True once spinning and `yields` yields have not got the waiter through:
  // time to park (see parking.h) rather than sleep blind.
  bool ShouldPark(uint32_t yields) const noexcept { return round_ >= kSpinRounds + yields; }

 private:
  uint32_t round_ = 0;
  std::chrono::microseconds sleep_ = kFirstSleep;
};

}  // namespace keel::core::internal
