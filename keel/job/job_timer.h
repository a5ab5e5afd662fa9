#pragma once
// JobTimer: posts a job to an actor after a delay, or periodically.
//
// Timers live in a binary min-heap ordered by (due time, creation order):
// After/Every cost O(log n), Cancel is O(1) (a flag; the entry is dropped
// when it reaches the top, and the heap is rebuilt in O(n) once more than
// half of it is cancelled), RunDue costs O(log n) per timer that fires.
// A timer holds only a weak_ptr to its actor: if the actor is gone when the
// timer fires, nothing runs (counted as Expired()).
//
// Time comes from the Clock given at construction. With a ManualClock a test
// advances the clock and calls RunDue(); Start() runs a "job-timer" thread
// that sleeps until the next due time (meaningful only for SteadyClock).
// All methods are thread-safe; Start/Stop are for the owner.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"
#include "keel/core/thread_group.h"
#include "keel/job/clock.h"
#include "keel/job/job.h"

namespace keel::job {

class JobQueue;

namespace internal {
struct TimerState;
}

// Cancels a timer; copyable, and dropping it does not cancel.
class TimerHandle {
 public:
  TimerHandle() = default;
  // Returns true if the timer was still pending (it will not fire again).
  bool Cancel() noexcept;
  bool Active() const noexcept;

 private:
  friend class JobTimer;
  explicit TimerHandle(std::shared_ptr<internal::TimerState> state) : state_(std::move(state)) {}
  std::shared_ptr<internal::TimerState> state_;
};

class JobTimer {
 public:
  explicit JobTimer(Clock& clock);
  ~JobTimer();  // Stop()s the thread; pending timers never fire
  JobTimer(const JobTimer&) = delete;
  JobTimer& operator=(const JobTimer&) = delete;

  TimerHandle After(std::weak_ptr<JobQueue> actor, Clock::Duration delay, Job job,
                    const char* label = "timer");
  // First run after `period`, then every `period` (missed periods are skipped,
  // not replayed). `period` must be > 0.
  TimerHandle Every(std::weak_ptr<JobQueue> actor, Clock::Duration period, Job job,
                    const char* label = "timer");

  // Posts every timer due at clock.Now(); returns how many were posted.
  std::size_t RunDue();
  std::size_t Pending() const;
  uint64_t Expired() const noexcept { return expired_.load(std::memory_order_relaxed); }

  void Start();
  void Stop();

 private:
  struct Entry {
    Clock::TimePoint due;
    uint64_t seq;
    std::shared_ptr<internal::TimerState> state;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const noexcept {
      return a.due != b.due ? a.due > b.due : a.seq > b.seq;
    }
  };

  TimerHandle Add(std::weak_ptr<JobQueue> actor, Clock::Duration delay, Clock::Duration period,
                  Job job, const char* label);
  void PurgeLocked() KEEL_REQUIRES(mu_);
  void RunThread(std::stop_token stop);

  Clock& clock_;
  mutable core::Mutex mu_{"JobTimer"};
  core::CondVar cv_;
  std::vector<Entry> heap_ KEEL_GUARDED_BY(mu_);
  std::vector<Entry> due_ KEEL_GUARDED_BY(mu_);  // reused by RunDue
  uint64_t next_seq_ KEEL_GUARDED_BY(mu_) = 0;
  bool stopping_ KEEL_GUARDED_BY(mu_) = false;
  std::shared_ptr<std::atomic<std::size_t>> cancelled_count_;
  std::atomic<uint64_t> expired_{0};
  std::unique_ptr<core::ThreadGroup> thread_;
};

}  // namespace keel::job
