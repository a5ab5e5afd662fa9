#include "keel/job/job_timer.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <utility>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"
#include "keel/job/internal/timer_wheel.h"
#include "keel/job/job_queue.h"
#include "keel/memory/object_pool.h"

namespace keel::job {
namespace internal {
namespace {

constexpr int64_t kMaxNs = std::numeric_limits<int64_t>::max();
constexpr int64_t kMinNs = std::numeric_limits<int64_t>::min();

int64_t Nanos(Clock::TimePoint t) noexcept { return t.time_since_epoch().count(); }

// a + b for b >= 0, saturating at INT64_MAX.
int64_t AddClamped(int64_t a, int64_t b) noexcept {
  return a > kMaxNs - b ? kMaxNs : a + b;
}

}  // namespace

// What a JobTimer shares with its timer states, so that a TimerHandle can
// cancel (and unlink) its timer at any time, even after the JobTimer is gone.
struct TimerCore {
  explicit TimerCore(int64_t now) noexcept : wheel(now) {}

  void AddRef() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void Release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  core::Mutex mu{"JobTimer"};
  core::CondVar cv;
  TimerWheel wheel KEEL_GUARDED_BY(mu);
  std::vector<TimerNode*> scratch KEEL_GUARDED_BY(mu);  // reused by RunDue
  uint64_t next_seq KEEL_GUARDED_BY(mu) = 0;
  // When the timer thread will wake (kMinNs while it is not waiting): Add
  // notifies it only for a timer due before that.
  int64_t wake_at KEEL_GUARDED_BY(mu) = kMinNs;
  bool stopping KEEL_GUARDED_BY(mu) = false;
  std::atomic<uint32_t> refs{1};  // the JobTimer's
};

// One timer: linked in the wheel (one reference) while pending; referenced by
// its handles and by a posted job until that job has run.
struct TimerState : TimerNode {
  static constexpr int kPending = 0;
  static constexpr int kFired = 1;  // one-shot posted
  static constexpr int kCancelled = 2;

  // User-provided, so that ObjectPool::New's `T()` does not zero all 160
  // bytes first (value-initialization; it was half of Add's time).
  TimerState() noexcept {}  // NOLINT(modernize-use-equals-default)

  void AddRef() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void Release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    TimerCore* owner = core;
    memory::ObjectPool<TimerState>().Delete(this);  // destroys the job's captures
    owner->Release();
  }

  std::atomic<uint32_t> refs{0};
  std::atomic<int> state{kPending};
  Clock::Duration period{0};
  const char* label = "timer";
  TimerCore* core = nullptr;  // holds one reference
  std::weak_ptr<JobQueue> actor;
  Job job;  // touched only by jobs on the actor (serialized)
};

namespace {

// The reference a posted job holds; adopts one reference.
class TimerRef {
 public:
  explicit TimerRef(TimerState* adopted) noexcept : state_(adopted) {}
  TimerRef(TimerRef&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  TimerRef(const TimerRef&) = delete;
  TimerRef& operator=(const TimerRef&) = delete;
  TimerRef& operator=(TimerRef&&) = delete;
  ~TimerRef() {
    if (state_ != nullptr) state_->Release();
  }
  TimerState* get() const noexcept { return state_; }

 private:
  TimerState* state_;
};

}  // namespace
}  // namespace internal

using internal::TimerState;

TimerHandle::TimerHandle(const TimerHandle& other) noexcept : state_(other.state_) {
  if (state_ != nullptr) state_->AddRef();
}

TimerHandle::TimerHandle(TimerHandle&& other) noexcept
    : state_(std::exchange(other.state_, nullptr)) {}

TimerHandle& TimerHandle::operator=(TimerHandle other) noexcept {
  std::swap(state_, other.state_);
  return *this;
}

TimerHandle::~TimerHandle() {
  if (state_ != nullptr) state_->Release();
}

bool TimerHandle::Cancel() noexcept {
  if (state_ == nullptr) return false;
  int expected = TimerState::kPending;
  // Relaxed: the flag is re-read on the actor before the job runs, and that
  // read is ordered after this store by the post/run hand-off (a lock).
  if (!state_->state.compare_exchange_strong(expected, TimerState::kCancelled,
                                             std::memory_order_relaxed)) {
    return false;
  }
  internal::TimerCore& owner = *state_->core;
  bool unlinked = false;
  {
    core::MutexLock lock(owner.mu);
    if (state_->linked()) {
      owner.wheel.Remove(state_);
      unlinked = true;
    }
  }
  if (unlinked) state_->Release();  // the wheel's reference; ours keeps it alive
  return true;
}

bool TimerHandle::Active() const noexcept {
  return state_ != nullptr &&
         state_->state.load(std::memory_order_relaxed) == TimerState::kPending;
}

JobTimer::JobTimer(Clock& clock)
    : clock_(clock), core_(new internal::TimerCore(internal::Nanos(clock.Now()))) {}

JobTimer::~JobTimer() {
  Stop();
  std::vector<internal::TimerNode*> drained;
  {
    core::MutexLock lock(core_->mu);
    drained.reserve(core_->wheel.size());
    core_->wheel.Drain([&](internal::TimerNode* node) { drained.push_back(node); });
  }
  // Outside the lock: releasing may destroy a job's captures.
  for (internal::TimerNode* node : drained) {
    auto* state = static_cast<TimerState*>(node);
    int expected = TimerState::kPending;
    state->state.compare_exchange_strong(expected, TimerState::kCancelled,
                                         std::memory_order_relaxed);
    state->Release();
  }
  core_->Release();
}

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
  TimerState* state = memory::ObjectPool<TimerState>().New();
  state->refs.store(2, std::memory_order_relaxed);  // the wheel's and the handle's
  state->period = period;
  state->label = label;
  state->actor = std::move(actor);
  state->job = std::move(job);
  core_->AddRef();
  state->core = core_;
  state->due = internal::AddClamped(internal::Nanos(clock_.Now()),
                                    std::max<int64_t>(delay.count(), 0));
  bool wake = false;
  {
    core::MutexLock lock(core_->mu);
    state->seq = core_->next_seq++;
    core_->wheel.Insert(state);
    if (state->due < core_->wake_at) {
      core_->wake_at = state->due;
      wake = true;
    }
  }
  if (wake) core_->cv.NotifyOne();
  return TimerHandle(state);
}

std::size_t JobTimer::RunDue() {
  const int64_t now = internal::Nanos(clock_.Now());
  std::vector<internal::TimerNode*> due;
  {
    core::MutexLock lock(core_->mu);
    due.swap(core_->scratch);
    due.clear();
    core_->wheel.Advance(now, due);  // unlinked: their wheel references are ours now
    for (internal::TimerNode* node : due) {
      auto* state = static_cast<TimerState*>(node);
      if (state->period.count() == 0 ||
          state->state.load(std::memory_order_relaxed) == TimerState::kCancelled) {
        continue;
      }
      // Next period after `now`; missed ones are skipped.
      const int64_t period = state->period.count();
      const int64_t periods = (std::max(now, state->due) - state->due) / period + 1;
      state->due = periods > (internal::kMaxNs - state->due) / period
                       ? internal::kMaxNs
                       : state->due + periods * period;
      state->seq = core_->next_seq++;
      state->AddRef();  // the wheel's again
      core_->wheel.Insert(state);
    }
  }
  std::size_t posted = 0;
  for (internal::TimerNode* node : due) {
    auto* state = static_cast<TimerState*>(node);
    internal::TimerRef ref(state);
    if (state->period.count() == 0) {
      int expected = TimerState::kPending;
      if (!state->state.compare_exchange_strong(expected, TimerState::kFired,
                                                std::memory_order_relaxed)) {
        continue;  // cancelled after it left the wheel
      }
    } else if (state->state.load(std::memory_order_relaxed) == TimerState::kCancelled) {
      continue;
    }
    std::shared_ptr<JobQueue> actor = state->actor.lock();
    if (!actor) {
      expired_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (actor->Post(
            [ref = std::move(ref)] {
              TimerState* s = ref.get();
              if (s->state.load(std::memory_order_relaxed) != TimerState::kCancelled) s->job();
            },
            state->label)) {
      ++posted;
    }
  }
  due.clear();
  {
    core::MutexLock lock(core_->mu);
    if (core_->scratch.capacity() < due.capacity()) core_->scratch.swap(due);
  }
  return posted;
}

std::size_t JobTimer::Pending() const {
  core::MutexLock lock(core_->mu);
  return core_->wheel.size();
}

void JobTimer::Start() {
  if (thread_) throw std::logic_error("JobTimer already started");
  {
    core::MutexLock lock(core_->mu);
    core_->stopping = false;
  }
  thread_ = std::make_unique<core::ThreadGroup>(
      core::ThreadGroupOptions{.name = "job-timer", .threads = 1, .cpus = {}});
  thread_->Start([this](std::stop_token stop) { RunThread(stop); });
}

void JobTimer::Stop() {
  if (!thread_) return;
  {
    core::MutexLock lock(core_->mu);
    core_->stopping = true;
  }
  core_->cv.NotifyAll();
  thread_->RequestStop();
  thread_->Join();
  thread_.reset();
}

void JobTimer::RunThread(std::stop_token stop) {
  constexpr int64_t kMaxSleepNs = 100'000'000;  // re-check stop at least this often
  while (!stop.stop_requested()) {
    {
      core::MutexLock lock(core_->mu);
      if (core_->stopping) return;
      const int64_t next = core_->wheel.NextDueLowerBound();
      const int64_t now = internal::Nanos(clock_.Now());
      if (next > now) {
        const int64_t wait = next - now < kMaxSleepNs ? next - now : kMaxSleepNs;
        core_->wake_at = now + wait;
        core_->cv.WaitUntil(core_->mu,
                            std::chrono::steady_clock::now() + std::chrono::nanoseconds(wait));
        core_->wake_at = internal::kMinNs;
        continue;
      }
    }
    RunDue();
  }
}

}  // namespace keel::job
