#include "keel/job/job_timer.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <utility>

#include "keel/job/job_queue.h"

namespace keel::job {
namespace internal {

struct TimerState {
  static constexpr int kPending = 0;
  static constexpr int kFired = 1;  // one-shot posted
  static constexpr int kCancelled = 2;

  std::weak_ptr<JobQueue> actor;
  Clock::Duration period{0};
  const char* label = "timer";
  Job job;  // touched only by jobs on the actor (serialized)
  std::atomic<int> state{kPending};
  // Shared with the JobTimer: how many heap entries are cancelled.
  std::shared_ptr<std::atomic<std::size_t>> cancelled_count;
};

}  // namespace internal

bool TimerHandle::Cancel() noexcept {
  if (!state_) return false;
  int expected = internal::TimerState::kPending;
  // Relaxed: the flag is re-read on the actor before the job runs, and that
  // read is ordered after this store by the post/run hand-off (a lock).
  if (!state_->state.compare_exchange_strong(expected, internal::TimerState::kCancelled,
                                             std::memory_order_relaxed)) {
    return false;
  }
  state_->cancelled_count->fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool TimerHandle::Active() const noexcept {
  return state_ && state_->state.load(std::memory_order_relaxed) == internal::TimerState::kPending;
}

JobTimer::JobTimer(Clock& clock)
    : clock_(clock), cancelled_count_(std::make_shared<std::atomic<std::size_t>>(0)) {}

JobTimer::~JobTimer() { Stop(); }

TimerHandle JobTimer::After(std::weak_ptr<JobQueue> actor, Clock::Duration delay, Job job,
                            const char* label) {
  return Add(std::move(actor), delay, Clock::Duration(0), std::move(job), label);
}

TimerHandle JobTimer::Every(std::weak_ptr<JobQueue> actor, Clock::Duration period, Job job,
                            const char* label) {
  if (period.count() <= 0) throw std::invalid_argument("JobTimer::Every: period must be > 0");
  return Add(std::move(actor), period, period, std::move(job), label);
}

TimerHandle JobTimer::Add(std::weak_ptr<JobQueue> actor, Clock::Duration delay,
                          Clock::Duration period, Job job, const char* label) {
  auto state = std::make_shared<internal::TimerState>();
  state->actor = std::move(actor);
  state->period = period;
  state->label = label;
  state->job = std::move(job);
  state->cancelled_count = cancelled_count_;
  const Clock::TimePoint due = clock_.Now() + delay;
  bool earliest = false;
  {
    core::MutexLock lock(mu_);
    PurgeLocked();
    heap_.push_back({due, next_seq_++, state});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
    earliest = heap_.front().state == state;
  }
  if (earliest) cv_.NotifyOne();
  return TimerHandle(std::move(state));
}

void JobTimer::PurgeLocked() {
  const std::size_t cancelled = cancelled_count_->load(std::memory_order_relaxed);
  if (cancelled < 64 || cancelled * 2 < heap_.size()) return;
  const auto is_cancelled = [](const Entry& e) {
    return e.state->state.load(std::memory_order_relaxed) == internal::TimerState::kCancelled;
  };
  const auto removed = std::erase_if(heap_, is_cancelled);
  std::make_heap(heap_.begin(), heap_.end(), Later{});
  cancelled_count_->fetch_sub(removed, std::memory_order_relaxed);
}

std::size_t JobTimer::RunDue() {
  const Clock::TimePoint now = clock_.Now();
  std::vector<Entry> due;
  {
    core::MutexLock lock(mu_);
    due.swap(due_);
    due.clear();
    while (!heap_.empty() && heap_.front().due <= now) {
      std::pop_heap(heap_.begin(), heap_.end(), Later{});
      Entry entry = std::move(heap_.back());
      heap_.pop_back();
      internal::TimerState& s = *entry.state;
      if (s.state.load(std::memory_order_relaxed) == internal::TimerState::kCancelled) {
        cancelled_count_->fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      if (s.period.count() > 0) {
        Clock::TimePoint next = entry.due + s.period;
        while (next <= now) next += s.period;  // skip missed periods
        heap_.push_back({next, next_seq_++, entry.state});
        std::push_heap(heap_.begin(), heap_.end(), Later{});
      }
      due.push_back(std::move(entry));
    }
  }
  std::size_t posted = 0;
  for (Entry& entry : due) {
    std::shared_ptr<internal::TimerState> state = entry.state;
    if (state->period.count() == 0) {
      int expected = internal::TimerState::kPending;
      if (!state->state.compare_exchange_strong(expected, internal::TimerState::kFired,
                                                std::memory_order_relaxed)) {
        continue;  // cancelled after it left the heap
      }
    }
    std::shared_ptr<JobQueue> actor = state->actor.lock();
    if (!actor) {
      expired_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const char* label = state->label;
    if (actor->Post(
            [state = std::move(state)] {
              if (state->state.load(std::memory_order_relaxed) !=
                  internal::TimerState::kCancelled) {
                state->job();
              }
            },
            label)) {
      ++posted;
    }
  }
  due.clear();
  {
    core::MutexLock lock(mu_);
    if (due_.capacity() < due.capacity()) due_.swap(due);
  }
  return posted;
}

std::size_t JobTimer::Pending() const {
  core::MutexLock lock(mu_);
  return heap_.size() - std::min(heap_.size(), cancelled_count_->load(std::memory_order_relaxed));
}

void JobTimer::Start() {
  if (thread_) throw std::logic_error("JobTimer already started");
  {
    core::MutexLock lock(mu_);
    stopping_ = false;
  }
  thread_ = std::make_unique<core::ThreadGroup>(
      core::ThreadGroupOptions{.name = "job-timer", .threads = 1, .cpus = {}});
  thread_->Start([this](std::stop_token stop) { RunThread(stop); });
}

void JobTimer::Stop() {
  if (!thread_) return;
  {
    core::MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.NotifyAll();
  thread_->RequestStop();
  thread_->Join();
  thread_.reset();
}

void JobTimer::RunThread(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      core::MutexLock lock(mu_);
      if (stopping_) return;
      if (heap_.empty()) {
        cv_.WaitUntil(mu_, std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
        continue;
      }
      const Clock::Duration wait = heap_.front().due - clock_.Now();
      if (wait.count() > 0) {
        cv_.WaitUntil(mu_, std::chrono::steady_clock::now() +
                               std::min(wait, Clock::Duration(std::chrono::milliseconds(100))));
        continue;
      }
    }
    RunDue();
  }
}

}  // namespace keel::job
