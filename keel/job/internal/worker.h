#pragma once
// Worker: one job thread's state inside a WorkerGroup. The "next" slot and
// streak are touched only by the worker itself; the stall fields are written
// by the worker and read by the watchdog thread.

#include <atomic>
#include <cstdint>
#include <string>

#include "keel/core/spin_lock.h"
#include "keel/core/thread_annotations.h"

namespace keel::job {
class JobQueue;
class WorkerGroup;
}  // namespace keel::job

namespace keel::job::internal {

struct Worker {
  uint32_t index = 0;
  JobQueue* next = nullptr;  // runnable actor posted from this worker
  uint32_t streak = 0;       // local picks since the GlobalQueue was served
  // The last clock reading this worker took (a job's start or a slice's end):
  // stamps actors posted from its jobs and starts a slice picked from `next`,
  // saving two clock reads per actor-to-actor message.
  int64_t last_now = 0;

  // The watchdog copies running->name() under the lock; the worker clears
  // `running` under it before it may release the queue.
  core::SpinLock mu{"Worker"};
  JobQueue* running KEEL_GUARDED_BY(mu) = nullptr;
  // Relaxed: diagnostics only; a report may name the neighbouring job.
  std::atomic<const char*> label{nullptr};
  std::atomic<uint64_t> job_seq{0};
  std::atomic<int64_t> job_start_ns{0};  // 0: not running a job
  uint64_t reported_seq = 0;             // watchdog thread only
};

// The worker running on this thread, if any.
struct CurrentWorker {
  WorkerGroup* group = nullptr;
  Worker* worker = nullptr;
};
CurrentWorker& ThisWorker() noexcept;

}  // namespace keel::job::internal
