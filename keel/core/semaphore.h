#pragma once
// Semaphore: a counting semaphore with timed waits.
//
// Holds a count of permits. Acquire() takes one, blocking while there are
// none; Release(n) returns n and wakes up to n waiters. Permits are not owned:
// any thread may release what another acquired (a producer releasing to a
// consumer is the usual use). The count is capped at Max(); releasing past it
// throws std::overflow_error instead of wrapping.
//
// All members are thread-safe. Waits block the thread (mutex + condition
// variable); never wait on an IO thread or inside a job.

#include <chrono>
#include <cstdint>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"

namespace keel::core {

class Semaphore {
 public:
  static constexpr int64_t Max() noexcept { return INT64_MAX / 2; }

  // Throws std::invalid_argument if `initial` is negative or above Max().
  explicit Semaphore(int64_t initial = 0);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  void Acquire();
  // Takes a permit if one is free now; never blocks.
  bool TryAcquire();
  // Returns false if no permit came within `timeout`.
  bool TryAcquireFor(std::chrono::nanoseconds timeout);
  bool TryAcquireUntil(std::chrono::steady_clock::time_point deadline);

  // Throws std::invalid_argument for n < 0, std::overflow_error past Max().
  void Release(int64_t n = 1);

  // Permits free at this instant (racy by nature; for tests and metrics).
  int64_t Available() const;

 private:
  mutable Mutex mu_{"Semaphore"};
  CondVar cv_;
  int64_t count_ KEEL_GUARDED_BY(mu_);
};

}  // namespace keel::core
