#pragma once
// Mutex and CondVar: a blocking lock for sections that may wait (a syscall, a
// condition), named for the DeadlockDetector and visible to clang's
// -Wthread-safety (libstdc++'s std::mutex is not annotated).
//
//   Mutex mu_{"session-table"};
//   int count_ KEEL_GUARDED_BY(mu_);
//   { MutexLock lock(mu_); ++count_; }
//   { MutexLock lock(mu_); cv_.Wait(mu_, [&]() KEEL_REQUIRES(mu_) { return count_ > 0; }); }
//
// Thread-safe; not re-entrant. Prefer SpinLock for a few instructions, Mutex
// when the holder may block or the section is long.

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "keel/core/deadlock_detector.h"
#include "keel/core/lock_guard.h"
#include "keel/core/thread_annotations.h"

namespace keel::core {

class KEEL_CAPABILITY("mutex") Mutex {
 public:
  // `name` must outlive the mutex (a string literal).
  explicit Mutex(const char* name = "Mutex") noexcept : identity_(name) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() KEEL_ACQUIRE() {
    identity_.BeforeAcquire();
    mu_.lock();
  }
  bool TryLock() KEEL_TRY_ACQUIRE(true) {
    if (!mu_.try_lock()) return false;
    identity_.AfterTryAcquire();
    return true;
  }
  void Unlock() KEEL_RELEASE() {
    identity_.OnRelease();
    mu_.unlock();
  }
  void lock() KEEL_ACQUIRE() { Lock(); }
  bool try_lock() KEEL_TRY_ACQUIRE(true) { return TryLock(); }
  void unlock() KEEL_RELEASE() { Unlock(); }

  const char* name() const noexcept { return identity_.name(); }

 private:
  friend class CondVar;
  std::mutex mu_;
  internal::LockIdentity identity_;
};

using MutexLock = LockGuard<Mutex>;

// A condition variable for Mutex. The caller holds `mu` around every wait;
// the wait releases it while blocked and holds it again on return.
class CondVar {
 public:
  void Wait(Mutex& mu) KEEL_REQUIRES(mu) {
    std::unique_lock lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // The predicate runs with `mu` held; annotate it KEEL_REQUIRES(mu) if it
  // reads guarded state (the analysis cannot see through the template).
  template <typename Pred>
  void Wait(Mutex& mu, Pred pred) KEEL_REQUIRES(mu) KEEL_NO_THREAD_SAFETY_ANALYSIS {
    while (!pred()) Wait(mu);
  }
  // Returns false on timeout.
  bool WaitUntil(Mutex& mu, std::chrono::steady_clock::time_point deadline) KEEL_REQUIRES(mu) {
    std::unique_lock lock(mu.mu_, std::adopt_lock);
    const bool woke = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woke;
  }
  // Returns pred() after waiting for it at most until `deadline`.
  template <typename Pred>
  bool WaitUntil(Mutex& mu, std::chrono::steady_clock::time_point deadline, Pred pred)
      KEEL_REQUIRES(mu) KEEL_NO_THREAD_SAFETY_ANALYSIS {
    while (!pred()) {
      if (!WaitUntil(mu, deadline)) return pred();
    }
    return true;
  }
  void NotifyOne() noexcept { cv_.notify_one(); }
  void NotifyAll() noexcept { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace keel::core
