#pragma once
// Parking: lets a lock's waiters sleep in the kernel (futex) once spinning
// and yielding have not got them the lock, so an oversubscribed machine (more
// runnable threads than cores, or a preempted holder) does not pay for
// waiters that burn CPU. One Parking per lock; thread-safe.
//
// Protocol: a waiter reads the epoch, counts itself parked, re-checks the
// lock and sleeps only while the epoch is unchanged. A releaser releases the
// lock, then reads the parked count and, if anyone is parked, bumps the epoch
// and wakes.
//
// Strict: release with a seq_cst RMW (as RwLock's unlock already is). In the
// single seq_cst order either the releaser sees the waiter parked (and the
// bump makes its futex_wait return at once), or the waiter's re-check comes
// after the release and sees the lock free: no wake-up is ever lost.
//
// Relaxed: release with a plain store (SpinLock: a seq_cst store is an xchg
// that doubles the cost of an uncontended lock/unlock, measured). The store
// may still sit in the store buffer when the parked count is read, so in a
// window of a few nanoseconds a wake-up can be missed; the waiter then parks
// with a timeout (kParkTimeout) and re-checks, so a miss costs at most that.

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <ctime>
#include <cstdint>

namespace keel::core::internal {

class Parking {
 public:
  static constexpr long kParkTimeoutNs = 200'000;

  // Sleeps while `still_blocked()` holds at the time of parking. `timed`:
  // wake after kParkTimeoutNs regardless (the relaxed protocol).
  template <typename StillBlocked>
  void Park(StillBlocked still_blocked, bool timed) noexcept {
    const uint32_t epoch = epoch_.load(std::memory_order_seq_cst);
    parked_.fetch_add(1, std::memory_order_seq_cst);
    if (still_blocked()) {
      timespec timeout{0, kParkTimeoutNs};
      Futex(FUTEX_WAIT_PRIVATE, epoch, timed ? &timeout : nullptr);
    }
    parked_.fetch_sub(1, std::memory_order_relaxed);
  }
  // After a seq_cst release of the lock: wakes one (or every) parked waiter.
  void UnparkOne() noexcept { Unpark(1); }
  void UnparkAll() noexcept { Unpark(INT_MAX); }

 private:
  void Unpark(uint32_t count) noexcept {
    if (parked_.load(std::memory_order_seq_cst) == 0) [[likely]] return;
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    Futex(FUTEX_WAKE_PRIVATE, count, nullptr);
  }
  void Futex(int op, uint32_t value, const timespec* timeout) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), op, value, timeout, nullptr, 0);
  }

  std::atomic<uint32_t> epoch_{0};
  std::atomic<uint32_t> parked_{0};
};

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

}  // namespace keel::core::internal
