#include "keel/core/spin_lock.h"

#include "keel/core/internal/backoff.h"

namespace keel::core {

void SpinLock::LockSlow() noexcept {
  internal::Backoff backoff;
  while (!TryLockFast()) {
    if (backoff.ShouldPark(kYieldsBeforePark)) {
      parking_.Park([this] { return locked_.load(std::memory_order_seq_cst); }, /*timed=*/true);
    } else {
      backoff.Pause();
    }
  }
}

}  // namespace keel::core
