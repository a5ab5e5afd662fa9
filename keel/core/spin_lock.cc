#include "keel/core/spin_lock.h"

#include "keel/core/internal/backoff.h"

namespace keel::core {

void SpinLock::LockSlow() noexcept {
  internal::Backoff backoff;
  do {
    backoff.Pause();
  } while (!TryLockFast());
}

}  // namespace keel::core
