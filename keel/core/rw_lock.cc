#include "keel/core/rw_lock.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "keel/core/internal/backoff.h"
#include "keel/core/internal/parking.h"
#include "keel/core/thread_context.h"

namespace keel::core {
namespace {

// The RwLocks the calling thread holds for reading, with their depth. A
// thread rarely reads more than two or three locks at once, so a small fixed
// array scanned from the back is cheapest; being trivially destructible and
// constinit it is read without a TLS wrapper call. Holding more than
// kMaxReadHolds distinct RwLocks at once is refused (LockShared throws).
constexpr uint32_t kMaxReadHolds = 32;

struct ReadHold {
  const RwLock* lock;
  uint32_t depth;
};

struct ReadHoldSet {
  ReadHold items[kMaxReadHolds];
  uint32_t size;
};

__attribute__((tls_model("initial-exec"))) constinit thread_local ReadHoldSet t_holds{};

ReadHold* FindReadHold(const RwLock* lock) {
  for (uint32_t i = t_holds.size; i > 0; --i) {
    if (t_holds.items[i - 1].lock == lock) return &t_holds.items[i - 1];
  }
  return nullptr;
}

bool ReadHoldsFull() { return t_holds.size == kMaxReadHolds; }

void PushReadHold(const RwLock* lock, uint32_t depth) {
  if (ReadHoldsFull()) [[unlikely]] {
    std::fprintf(stderr, "keel: thread '%s' holds more than %u RwLocks for reading\n",
                 std::string(ThisThread::Name()).c_str(), kMaxReadHolds);
    std::abort();
  }
  t_holds.items[t_holds.size++] = {lock, depth};
}

void AddReadHold(const RwLock* lock, uint32_t depth) {
  if (ReadHold* hold = FindReadHold(lock)) {
    hold->depth += depth;
  } else {
    PushReadHold(lock, depth);
  }
}

// Returns true when the depth reaches zero (the hold is then removed).
bool DropReadHold(const RwLock* lock) {
  ReadHold* hold = FindReadHold(lock);
  if (hold == nullptr) [[unlikely]] {
    std::fprintf(stderr, "keel: RwLock '%s' unlocked for reading by thread '%s' that does not hold it\n",
                 lock->name(), std::string(ThisThread::Name()).c_str());
    std::abort();
  }
  if (--hold->depth > 0) return false;
  ReadHold* const last = &t_holds.items[t_holds.size - 1];
  for (ReadHold* h = hold; h < last; ++h) *h = *(h + 1);
  --t_holds.size;
  return true;
}

void CheckReadHoldRoom(const RwLock* lock) {
  if (ReadHoldsFull()) [[unlikely]] {
    throw std::length_error(std::string("RwLock '") + lock->name() + "': thread '" +
                            std::string(ThisThread::Name()) + "' already holds " +
                            std::to_string(kMaxReadHolds) + " RwLocks for reading");
  }
}

}  // namespace

bool RwLock::HeldExclusivelyByMe() const noexcept {
  return owner_.load(std::memory_order_relaxed) == ThisThread::Id();
}

bool RwLock::TryLockExclusiveFast(uint32_t waiting_bias) noexcept {
  uint32_t s = state_.load(std::memory_order_relaxed);
  if ((s & (kWriteLocked | kReaderMask)) != 0) return false;
  // Acquire pairs with the release in Unlock / UnlockShared.
  return state_.compare_exchange_strong(s, (s - waiting_bias) | kWriteLocked,
                                      std::memory_order_acquire, std::memory_order_relaxed);
}

bool RwLock::TryLockSharedFast() noexcept {
  uint32_t s = state_.load(std::memory_order_relaxed);
  if ((s & (kWriteLocked | kWaitingMask)) != 0 || (s & kReaderMask) == kReaderMask) return false;
  // Acquire pairs with the release in Unlock.
  return state_.compare_exchange_strong(s, s + 1, std::memory_order_acquire,
                                      std::memory_order_relaxed);
}

void RwLock::Lock() KEEL_NO_THREAD_SAFETY_ANALYSIS {
  const uint32_t me = ThisThread::Id();
  if (owner_.load(std::memory_order_relaxed) == me) {
    identity_.BeforeAcquire();  // re-entry: recorded as held, adds no edge
    ++write_depth_;
    return;
  }
  if (FindReadHold(this) != nullptr) {
    throw LockUpgradeError(std::string("RwLock '") + name() + "': thread '" +
                           std::string(ThisThread::Name()) +
                           "' holds it for reading and asked to write (upgrade refused)");
  }
  identity_.BeforeAcquire();
  if (!TryLockExclusiveFast(0)) {
    // Announce the waiting writer so new readers stand back.
    state_.fetch_add(kWriterWaiting, std::memory_order_relaxed);
    internal::Backoff backoff;
    while (!TryLockExclusiveFast(kWriterWaiting)) {
      if (backoff.ShouldPark(kYieldsBeforePark)) {
        parking_.Park([this] {
          return (state_.load(std::memory_order_seq_cst) & (kWriteLocked | kReaderMask)) != 0;
        }, /*timeout_ns=*/0);
      } else {
        backoff.Pause();
      }
    }
  }
  owner_.store(me, std::memory_order_relaxed);
  write_depth_ = 1;
}

bool RwLock::TryLock() KEEL_NO_THREAD_SAFETY_ANALYSIS {
  const uint32_t me = ThisThread::Id();
  if (owner_.load(std::memory_order_relaxed) == me) {
    identity_.AfterTryAcquire();
    ++write_depth_;
    return true;
  }
  if (FindReadHold(this) != nullptr || !TryLockExclusiveFast(0)) return false;
  owner_.store(me, std::memory_order_relaxed);
  write_depth_ = 1;
  identity_.AfterTryAcquire();
  return true;
}

void RwLock::Unlock() KEEL_NO_THREAD_SAFETY_ANALYSIS {
  identity_.OnRelease();
  if (--write_depth_ > 0) return;
  LockExclusiveRelease();
}

void RwLock::LockExclusiveRelease() noexcept {
  const uint32_t reads = reads_under_write_;
  reads_under_write_ = 0;
  owner_.store(0, std::memory_order_relaxed);
  if (reads > 0) {
    // Downgrade: the reads taken while writing become ordinary read holds.
    AddReadHold(this, reads);
    // seq_cst: pairs with the acquires, and orders the release before
    // Parking's read of the parked count (parking.h, strict protocol).
    state_.fetch_add(1u - kWriteLocked, std::memory_order_seq_cst);
  } else {
    state_.fetch_sub(kWriteLocked, std::memory_order_seq_cst);  // as above
  }
  parking_.UnparkAll();
}

void RwLock::LockShared() KEEL_NO_THREAD_SAFETY_ANALYSIS {
  if (owner_.load(std::memory_order_relaxed) == ThisThread::Id()) {
    identity_.BeforeAcquire();
    ++reads_under_write_;
    return;
  }
  if (ReadHold* hold = FindReadHold(this)) {
    identity_.BeforeAcquire();
    ++hold->depth;  // re-entry: must not queue behind a waiting writer
    return;
  }
  CheckReadHoldRoom(this);
  identity_.BeforeAcquire();
  internal::Backoff backoff;
  while (!TryLockSharedFast()) {
    if (backoff.ShouldPark(kYieldsBeforePark)) {
      parking_.Park([this] {
        const uint32_t s = state_.load(std::memory_order_seq_cst);
        return (s & (kWriteLocked | kWaitingMask)) != 0 || (s & kReaderMask) == kReaderMask;
      }, /*timeout_ns=*/0);
    } else {
      backoff.Pause();
    }
  }
  PushReadHold(this, 1);
}

bool RwLock::TryLockShared() KEEL_NO_THREAD_SAFETY_ANALYSIS {
  if (owner_.load(std::memory_order_relaxed) == ThisThread::Id()) {
    ++reads_under_write_;
  } else if (ReadHold* hold = FindReadHold(this)) {
    ++hold->depth;
  } else if (!ReadHoldsFull() && TryLockSharedFast()) {
    PushReadHold(this, 1);
  } else {
    return false;
  }
  identity_.AfterTryAcquire();
  return true;
}

void RwLock::UnlockShared() KEEL_NO_THREAD_SAFETY_ANALYSIS {
  identity_.OnRelease();
  if (owner_.load(std::memory_order_relaxed) == ThisThread::Id() && reads_under_write_ > 0) {
    --reads_under_write_;
    return;
  }
  if (DropReadHold(this)) {
    // seq_cst: pairs with the writer's acquire and orders the release before
    // Parking's read of the parked count (parking.h, strict protocol).
    state_.fetch_sub(1, std::memory_order_seq_cst);
    parking_.UnparkAll();
  }
}

}  // namespace keel::core
