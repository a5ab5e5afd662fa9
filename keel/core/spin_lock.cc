#include "keel/core/spin_lock.h"

#include "keel/core/internal/backoff.h"

namespace keel::core {

void SpinLock::LockSlow() noexcept {
  internal::Backoff backoff;
  long park_timeout_ns = internal::Parking::kFirstParkTimeoutNs;
  while (!TryLockFast()) {
    if (backoff.ShouldPark(kYieldsBeforePark)) {
      parking_.Park([this] { return locked_.load(std::memory_order_seq_cst); }, park_timeout_ns);
      park_timeout_ns = internal::Parking::NextParkTimeout(park_timeout_ns);
    } else {
      backoff.Pause();
    }
  }
}

}  // namespace keel::core
