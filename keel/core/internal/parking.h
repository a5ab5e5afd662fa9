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
// with a timeout and re-checks, so a miss costs at most that timeout. The
// caller doubles it on every park, from kFirstParkTimeoutNs up to
// kMaxParkTimeoutNs (NextParkTimeout): a short wait loses little to a miss,
// and a long wait (a holder preempted for a whole time slice, or a lock held
// far longer than a spin lock should be) wakes a few hundred times a second,
// not thousands (each wake costs a syscall and a re-check).

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
  static constexpr long kFirstParkTimeoutNs = 200'000;
  static constexpr long kMaxParkTimeoutNs = 3'200'000;
  static constexpr long NextParkTimeout(long timeout_ns) noexcept {
    return timeout_ns >= kMaxParkTimeoutNs / 2 ? kMaxParkTimeoutNs : timeout_ns * 2;
  }

  // Sleeps while `still_blocked()` holds at the time of parking.
  // `timeout_ns` > 0: wake after that long regardless (the relaxed
  // protocol); 0: sleep until woken (the strict protocol).
  template <typename StillBlocked>
  void Park(StillBlocked still_blocked, long timeout_ns) noexcept {
    const uint32_t epoch = epoch_.load(std::memory_order_seq_cst);
    parked_.fetch_add(1, std::memory_order_seq_cst);
    if (still_blocked()) {
      timespec timeout{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
      Futex(FUTEX_WAIT_PRIVATE, epoch, timeout_ns > 0 ? &timeout : nullptr);
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
