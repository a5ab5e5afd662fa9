#pragma once
// Worker: one job thread's state inside a WorkerGroup. The "next" slot and
// streak are touched only by the worker itself; the stall fields are written
// by the worker and read by the watchdog thread.

#include <atomic>
#include <cstdint>
#include <climits>
#include <string>

#include "keel/job/internal/mailbox.h"

namespace keel::job {
class JobQueue;
class WorkerGroup;
}  // namespace keel::job

namespace keel::job::internal {

struct Worker {
  uint32_t index = 0;
  JobQueue* next = nullptr;  // runnable actor posted from this worker
  uint32_t streak = 0;       // local picks since the GlobalQueue was served
  // Clock readings (docs/job.md, "Clock readings"). A reading costs 20-50 ns,
  // as much as a short job, so the worker reads the clock once every
  // `stride` jobs: the stride doubles (up to kMaxStride) while the jobs
  // between two readings averaged under slice_time / kStrideDivisor, and
  // drops to 1 otherwise; after idle time it reads afresh. `last_now` is the
  // last reading: it starts slices, stamps actors posted from its jobs and
  // is each job's start for the watchdog.
  int64_t last_now = 0;
  uint32_t since_read = 0;  // jobs run since that reading
  uint32_t stride = 1;
  // The queue whose slice this worker runs and its consumer cursor (worker
  // thread only): Clear from one of that queue's own jobs pops through it.
  JobQueue* current = nullptr;
  Mailbox::Consumer* consumer = nullptr;

  // The queue whose slice runs, for the watchdog (set only when the
  // watchdog is on). The watchdog copies running->name() between setting and
  // clearing `inspecting`; the worker clears `running`, then waits while
  // `inspecting` is set before it may release the queue. Both sides store
  // then load with seq_cst (Dekker): either the watchdog sees nullptr, or the
  // worker sees it inspecting and waits.
  std::atomic<JobQueue*> running{nullptr};
  std::atomic<bool> inspecting{false};
  // Relaxed: diagnostics only; a report may name the neighbouring job.
  std::atomic<const char*> label{nullptr};
  std::atomic<uint64_t> job_seq{0};
  std::atomic<int64_t> job_start_ns{0};  // 0: not running a job
  uint64_t reported_seq = 0;             // watchdog thread only
};

inline constexpr uint32_t kMaxStride = 16;
inline constexpr int64_t kStrideDivisor = 256;

// Ready stamps from threads that are not workers: 1 in kStampEvery posts
// that make an actor runnable read the clock (chosen at random, so no
// posting pattern aliases with it); the others store kNoStamp and that
// slice's wait is not measured (JobQueueStats::wait_samples).
inline constexpr uint32_t kStampEvery = 16;
inline constexpr int64_t kNoStamp = INT64_MIN;
inline bool SampleStamp() noexcept {
  // xorshift32, per thread; seeded from the thread's own address.
  thread_local uint32_t state =
      static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&state) >> 4) | 1u;
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return state % kStampEvery == 0;
}

// The worker running on this thread, if any.
struct CurrentWorker {
  WorkerGroup* group = nullptr;
  Worker* worker = nullptr;
};
CurrentWorker& ThisWorker() noexcept;

}  // namespace keel::job::internal
