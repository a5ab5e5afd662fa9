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
    // A spinner re-checks under mu_ after it stops spinning (see Pop), so
    // skipping the wake while one spins cannot strand the queue.
    wake = sleepers_ > 0 && size_ > wake_if_more_than &&
           spinning_.load(std::memory_order_relaxed) == 0;
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

bool GlobalQueue::SpinForWork() {
  using SteadyClock = std::chrono::steady_clock;
  // Real time on purpose: a test's ManualClock must not make workers spin forever.
  const SteadyClock::time_point deadline = SteadyClock::now() + idle_spin_;
  spinning_.fetch_add(1, std::memory_order_relaxed);
  bool seen = false;
  for (uint32_t round = 0;; ++round) {
    if (size_hint_.load(std::memory_order_relaxed) != 0) {
      seen = true;
      break;
    }
    // Pauses first; once past a few rounds, yield so that on an
    // oversubscribed machine the producer we wait for gets the CPU.
    if (round < 8) {
      for (int i = 0; i < 32; ++i) core::internal::CpuRelax();
    } else {
      std::this_thread::yield();
    }
    if ((round & 7) == 7 && SteadyClock::now() >= deadline) break;
  }
  // Must precede the re-check under mu_ in Pop: a Push that still saw this
  // spinner skipped its wake, and its queue is then visible to that re-check.
  spinning_.fetch_sub(1, std::memory_order_relaxed);
  return seen;
}

JobQueue* GlobalQueue::Pop() {
  if (idle_spin_.count() > 0) {
    {
      core::MutexLock lock(mu_);
      if (closed_ && !drain_) return nullptr;
      if (JobQueue* queue = PopLocked()) return queue;
      if (closed_) return nullptr;
    }
    if (SpinForWork()) {
      core::MutexLock lock(mu_);
      if (closed_ && !drain_) return nullptr;
      if (JobQueue* queue = PopLocked()) {
        // Last spinner out: if more wait, wake a sleeper for them.
        const bool wake = size_ > 0 && sleepers_ > 0 &&
                          spinning_.load(std::memory_order_relaxed) == 0;
        if (wake) cv_.NotifyOne();
        return queue;
      }
    }
  }
  core::MutexLock lock(mu_);
  for (;;) {
    if (closed_ && !drain_) return nullptr;
    if (JobQueue* queue = PopLocked()) return queue;
    if (closed_) return nullptr;
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
