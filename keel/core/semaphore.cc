#include "keel/core/semaphore.h"

#include <stdexcept>
#include <string>

namespace keel::core {

Semaphore::Semaphore(int64_t initial) : count_(initial) {
  if (initial < 0 || initial > Max()) {
    throw std::invalid_argument("Semaphore: initial count " + std::to_string(initial) +
                                " outside [0, Max()]");
  }
}

void Semaphore::Acquire() {
  MutexLock lock(mu_);
  cv_.Wait(mu_, [this]() KEEL_REQUIRES(mu_) { return count_ > 0; });
  --count_;
}

bool Semaphore::TryAcquire() {
  MutexLock lock(mu_);
  if (count_ == 0) return false;
  --count_;
  return true;
}

bool Semaphore::TryAcquireFor(std::chrono::nanoseconds timeout) {
  return TryAcquireUntil(std::chrono::steady_clock::now() + timeout);
}

bool Semaphore::TryAcquireUntil(std::chrono::steady_clock::time_point deadline) {
  MutexLock lock(mu_);
  if (!cv_.WaitUntil(mu_, deadline, [this]() KEEL_REQUIRES(mu_) { return count_ > 0; })) {
    return false;
  }
  --count_;
  return true;
}

void Semaphore::Release(int64_t n) {
  if (n < 0) throw std::invalid_argument("Semaphore::Release: negative count");
  if (n == 0) return;
  {
    MutexLock lock(mu_);
    if (n > Max() - count_) {
      throw std::overflow_error("Semaphore::Release: count would pass Max()");
    }
    count_ += n;
  }
  if (n == 1) {
    cv_.NotifyOne();
  } else {
    cv_.NotifyAll();  // waiters re-check; only n of them get a permit
  }
}

int64_t Semaphore::Available() const {
  MutexLock lock(mu_);
  return count_;
}

}  // namespace keel::core
