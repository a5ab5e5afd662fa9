#pragma once
// JobTimer: posts a job to an actor after a delay, or periodically.
//
// Timers live in a hierarchical timing wheel over nanoseconds
// (internal/timer_wheel.h): After/Every and Cancel are O(1) (Cancel unlinks
// the timer at once, so memory never holds cancelled timers), and each timer
// is moved between wheel levels at most 11 times before it fires. RunDue
// fires every timer due at clock.Now() in exact (due time, creation order),
// not rounded to a tick. Timer states come from keel::memory's pool.
// A timer holds only a weak_ptr to its actor: if the actor is gone when the
// timer fires, nothing runs (counted as Expired()).
//
// Time comes from the Clock given at construction. With a ManualClock a test
// advances the clock and calls RunDue(); Start() runs a "job-timer" thread
// that sleeps until the next due time (meaningful only for SteadyClock).
// All methods are thread-safe; Start/Stop are for the owner. A TimerHandle may
// outlive its JobTimer (Cancel then returns false).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "keel/core/thread_group.h"
#include "keel/job/clock.h"
#include "keel/job/job.h"

namespace keel::job {

class JobQueue;

namespace internal {
struct TimerState;
struct TimerCore;
}  // namespace internal

// Cancels a timer; copyable, and dropping it does not cancel.
class TimerHandle {
 public:
  TimerHandle() noexcept = default;
  TimerHandle(const TimerHandle& other) noexcept;
  TimerHandle(TimerHandle&& other) noexcept;
  TimerHandle& operator=(TimerHandle other) noexcept;
  ~TimerHandle();

  // Returns true if the timer was still pending (it will not fire again).
  bool Cancel() noexcept;
  bool Active() const noexcept;

 private:
  friend class JobTimer;
  explicit TimerHandle(internal::TimerState* adopted) noexcept : state_(adopted) {}
  internal::TimerState* state_ = nullptr;  // holds one reference
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

  // Posts every timer due at clock.Now(), in due order; returns how many were
  // posted.
  std::size_t RunDue();
  std::size_t Pending() const;
  uint64_t Expired() const noexcept { return expired_.load(std::memory_order_relaxed); }

  void Start();
  void Stop();

 private:
  TimerHandle Add(std::weak_ptr<JobQueue> actor, Clock::Duration delay, Clock::Duration period,
                  Job job, const char* label);
  void RunThread(std::stop_token stop);

  Clock& clock_;
  internal::TimerCore* core_;  // shared with every timer state (refcounted)
  std::atomic<uint64_t> expired_{0};
  std::unique_ptr<core::ThreadGroup> thread_;
};

}  // namespace keel::job
