#pragma once
// Scoped guards for Keel's locks, visible to clang's -Wthread-safety (the
// standard library's guards are not annotated).
//   LockGuard g(spin);          // exclusive: SpinLock, RwLock (write)
//   ReadGuard r(rw);            // shared: RwLock
// A guard lives on one thread and releases on scope exit.

#include "keel/core/thread_annotations.h"

namespace keel::core {

template <typename Lockable>
class KEEL_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(Lockable& lock) KEEL_ACQUIRE(lock) : lock_(lock) { lock_.Lock(); }
  ~LockGuard() KEEL_RELEASE() { lock_.Unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lockable& lock_;
};

template <typename SharedLockable>
class KEEL_SCOPED_CAPABILITY ReadGuard {
 public:
  explicit ReadGuard(SharedLockable& lock) KEEL_ACQUIRE_SHARED(lock) : lock_(lock) {
    lock_.LockShared();
  }
  ~ReadGuard() KEEL_RELEASE() { lock_.UnlockShared(); }
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;

 private:
  SharedLockable& lock_;
};

template <typename Lockable>
using WriteGuard = LockGuard<Lockable>;

}  // namespace keel::core
