#include "keel/job/global_queue.h"

#include "keel/core/internal/backoff.h"
#include "keel/job/job_queue.h"

namespace keel::job {

void GlobalQueue::Push(JobQueue* queue, std::size_t wake_if_more_than) {
  bool wake = false;
  {
    core::MutexLock lock(mu_);
    queue->next_ready_ = nullptr;
    if (tail_ != nullptr) {
      tail_->next_ready_ = queue;
    } else {
      head_ = queue;
    }
    tail_ = queue;
    ++size_;
    size_hint_.store(size_, std::memory_order_relaxed);
    // Each spinner takes one queue and re-checks under mu_ after it stops
    // spinning (see Pop): wake a sleeper only for queues beyond the spinners.
    wake = sleepers_ > 0 && size_ > wake_if_more_than &&
           size_ > spinning_.load(std::memory_order_relaxed);
  }
  if (wake) cv_.NotifyOne();
}

JobQueue* GlobalQueue::PopLocked() {
  JobQueue* queue = head_;
  if (queue == nullptr) return nullptr;
  head_ = queue->next_ready_;
  if (head_ == nullptr) tail_ = nullptr;
  queue->next_ready_ = nullptr;
  --size_;
  size_hint_.store(size_, std::memory_order_relaxed);
  return queue;
}

void GlobalQueue::SpinForWork() {
  using SteadyClock = std::chrono::steady_clock;
  // Real time on purpose: a test's ManualClock must not make workers spin forever.
  const SteadyClock::time_point deadline = SteadyClock::now() + idle_spin_;
  spinning_.fetch_add(1, std::memory_order_relaxed);
  for (uint32_t round = 0;; ++round) {
    if (size_hint_.load(std::memory_order_relaxed) != 0 ||
        closed_hint_.load(std::memory_order_relaxed)) {
      break;
    }
    // Pauses first; then yield, so that on an oversubscribed machine the
    // producer we wait for gets the CPU. The deadline is read every yield.
    if (round < 8) {
      for (int i = 0; i < 32; ++i) core::internal::CpuRelax();
      continue;
    }
    std::this_thread::yield();
    if (SteadyClock::now() >= deadline) break;
  }
  // Must precede the re-check under mu_ in Pop: a Push that still counted
  // this spinner may have skipped its wake, and its queue is then visible to
  // that re-check.
  spinning_.fetch_sub(1, std::memory_order_relaxed);
}

JobQueue* GlobalQueue::TakeLocked(bool& stop) {
  stop = closed_ && !drain_;
  if (stop) return nullptr;
  if (JobQueue* queue = PopLocked()) {
    // More queues wait than spinners will take: pass a wake on, so a wake
    // that Push skipped for a spinner never costs a sleeping worker's turn.
    if (sleepers_ > 0 && size_ > spinning_.load(std::memory_order_relaxed)) cv_.NotifyOne();
    return queue;
  }
  stop = closed_;
  return nullptr;
}

JobQueue* GlobalQueue::Pop(bool* waited) {
  bool stop = false;
  if (idle_spin_.count() > 0) {
    {
      core::MutexLock lock(mu_);
      if (JobQueue* queue = TakeLocked(stop); queue != nullptr || stop) return queue;
    }
    if (waited != nullptr) *waited = true;
    SpinForWork();
  }
  core::MutexLock lock(mu_);
  for (;;) {
    if (JobQueue* queue = TakeLocked(stop); queue != nullptr || stop) return queue;
    if (waited != nullptr) *waited = true;
    ++sleepers_;
    cv_.Wait(mu_);
    --sleepers_;
  }
}

JobQueue* GlobalQueue::TryPop() {
  core::MutexLock lock(mu_);
  return PopLocked();
}

void GlobalQueue::Close(bool drain) {
  {
    core::MutexLock lock(mu_);
    closed_ = true;
    drain_ = drain;
  }
  closed_hint_.store(true, std::memory_order_relaxed);
  cv_.NotifyAll();
}

std::size_t GlobalQueue::Size() const {
  core::MutexLock lock(mu_);
  return size_;
}

bool GlobalQueue::Closed() const {
  core::MutexLock lock(mu_);
  return closed_;
}

}  // namespace keel::job
