#pragma once
// RwLock: a reader/writer spin lock for data read often and written rarely
// (a room's member table, a config snapshot).
//
// Contract:
//  - Many readers at once, or one writer.
//  - A writer may re-enter its write lock, and may take the read lock while
//    writing. If it releases the write lock while still holding reads, those
//    reads carry on as ordinary read holds (a downgrade).
//  - A reader that asks for the write lock is refused with LockUpgradeError:
//    an upgrade would deadlock as soon as two readers tried it.
//  - A reader may re-enter its read lock, even while a writer waits.
//  - Writer preference: once a writer waits, new readers wait behind it, so a
//    stream of readers cannot starve writers.
//
// Waiters back off as SpinLock's do (pause, yield, then park on a futex until
// an unlock wakes them; RwLock's unlocks are atomic RMWs already, so its
// parking never misses a wake-up, see internal/parking.h). Each
// thread keeps a small list of the RwLocks it reads, which is how upgrades
// and re-entry are recognised. Hold it only for short sections.

#include <atomic>
#include <cstdint>
#include <stdexcept>

#include "keel/core/deadlock_detector.h"
#include "keel/core/internal/parking.h"
#include "keel/core/thread_annotations.h"

namespace keel::core {

class LockUpgradeError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class KEEL_CAPABILITY("mutex") RwLock {
 public:
  // `name` must outlive the lock (a string literal).
  explicit RwLock(const char* name = "RwLock") noexcept : identity_(name) {}
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  // Throws LockUpgradeError if the calling thread holds this lock for reading.
  void Lock() KEEL_ACQUIRE();
  bool TryLock() KEEL_TRY_ACQUIRE(true);
  void Unlock() KEEL_RELEASE();

  void LockShared() KEEL_ACQUIRE_SHARED();
  bool TryLockShared() KEEL_TRY_ACQUIRE_SHARED(true);
  void UnlockShared() KEEL_RELEASE_SHARED();

  // Standard spellings, for std::unique_lock / std::shared_lock.
  void lock() KEEL_ACQUIRE() { Lock(); }
  bool try_lock() KEEL_TRY_ACQUIRE(true) { return TryLock(); }
  void unlock() KEEL_RELEASE() { Unlock(); }
  void lock_shared() KEEL_ACQUIRE_SHARED() { LockShared(); }
  bool try_lock_shared() KEEL_TRY_ACQUIRE_SHARED(true) { return TryLockShared(); }
  void unlock_shared() KEEL_RELEASE_SHARED() { UnlockShared(); }

  // True if the calling thread holds the write lock.
  bool HeldExclusivelyByMe() const noexcept;
  const char* name() const noexcept { return identity_.name(); }

 private:
  // state_: | 31: write locked | 30..16: writers waiting | 15..0: readers |
  static constexpr uint32_t kWriteLocked = 1u << 31;
  static constexpr uint32_t kWriterWaiting = 1u << 16;
  static constexpr uint32_t kWaitingMask = 0x7FFFu << 16;
  static constexpr uint32_t kReaderMask = 0xFFFFu;

  bool TryLockExclusiveFast(uint32_t waiting_bias) noexcept;
  bool TryLockSharedFast() noexcept;
  void LockExclusiveRelease() noexcept;

  static constexpr uint32_t kYieldsBeforePark = 2;

  std::atomic<uint32_t> state_{0};
  internal::Parking parking_;
  // Thread id of the writer, 0 if none. Only the writer stores its own id, so
  // a relaxed load equal to the caller's id proves the caller is the writer.
  std::atomic<uint32_t> owner_{0};
  uint32_t write_depth_ = 0;        // touched only by the writer
  uint32_t reads_under_write_ = 0;  // touched only by the writer
  internal::LockIdentity identity_;
};

}  // namespace keel::core
