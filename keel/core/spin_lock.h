#pragma once
// SpinLock: a test-and-test-and-set lock for short critical sections (a few
// dozen instructions: a counter, a free list, a queue splice).
//
// Waiters spin on a plain load (no cache-line ping-pong while held), backing
// off exponentially, then yield twice, then park on a futex until an unlock
// wakes them, so a waiter never burns a core for long when the holder was
// preempted or the machine is oversubscribed. Not re-entrant and not fair. Holding it across a syscall or a long loop is a
// bug: use std::mutex there.
//
// Named for the DeadlockDetector; use with LockGuard (or std::lock_guard,
// which the lower-case aliases make possible). Any thread may lock; the
// locking thread must unlock.

#include <atomic>

#include "keel/core/deadlock_detector.h"
#include "keel/core/internal/parking.h"
#include "keel/core/thread_annotations.h"

namespace keel::core {

class KEEL_CAPABILITY("mutex") SpinLock {
 public:
  // `name` must outlive the lock (a string literal).
  explicit SpinLock(const char* name = "SpinLock") noexcept : identity_(name) {}
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void Lock() KEEL_ACQUIRE() {
    identity_.BeforeAcquire();
    if (!TryLockFast()) LockSlow();
  }
  bool TryLock() KEEL_TRY_ACQUIRE(true) {
    if (!TryLockFast()) return false;
    identity_.AfterTryAcquire();
    return true;
  }
  void Unlock() KEEL_RELEASE() {
    identity_.OnRelease();
    // Pairs with the acquire in TryLockFast. A plain store: parking.h's
    // relaxed protocol, whose waiters park with a timeout.
    locked_.store(false, std::memory_order_release);
    parking_.UnparkOne();
  }

  // BasicLockable / Lockable spelling for std::lock_guard, std::scoped_lock.
  void lock() KEEL_ACQUIRE() { Lock(); }
  bool try_lock() KEEL_TRY_ACQUIRE(true) { return TryLock(); }
  void unlock() KEEL_RELEASE() { Unlock(); }

  const char* name() const noexcept { return identity_.name(); }

 private:
  bool TryLockFast() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void LockSlow() noexcept;

  // Yields after spinning before a waiter parks; measured in docs/benchmarks.md.
  static constexpr uint32_t kYieldsBeforePark = 2;

  std::atomic<bool> locked_{false};
  internal::Parking parking_;
  internal::LockIdentity identity_;
};

}  // namespace keel::core
