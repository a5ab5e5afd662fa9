#include "keel/job/job_queue.h"

#include <algorithm>
#include <utility>

#include "keel/job/scheduler.h"

namespace keel::job {

JobQueue::JobQueue(WorkerGroup& group, std::string name) : group_(group), name_(std::move(name)) {}

JobQueue::~JobQueue() {
  internal::JobList rest;
  {
    core::MutexLock lock(mu_);
    rest = std::move(jobs_);
  }
  rest.DestroyAll();
}

bool JobQueue::Post(Job job, const char* label) {
  if (!group_.Accepting()) {
    group_.RecordRejected(name_);
    return false;
  }
  if (const std::size_t cap = cap_.load(std::memory_order_relaxed); cap != 0 && Depth() >= cap)
      [[unlikely]] {
    rejected_full_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  internal::JobNode* node = internal::AllocNode();
  node->job = std::move(job);
  node->label = label;
  bool schedule = false;
  {
    core::MutexLock lock(mu_);
    if (!scheduled_) {
      try {
        keep_alive_ = shared_from_this();
      } catch (...) {
        node->job.Reset();
        internal::FreeNode(node);
        throw;  // std::bad_weak_ptr: the actor is not owned by a shared_ptr
      }
      scheduled_ = true;
      schedule = true;
    }
    jobs_.PushBack(node);
    // Single writer at a time (under mu_); readers take relaxed snapshots.
    posted_.store(posted_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  if (schedule) group_.Schedule(this);  // stamps ready_at_ns_
  return true;
}

std::size_t JobQueue::Clear() {
  internal::JobList dropped;
  {
    core::MutexLock lock(mu_);
    dropped = std::move(jobs_);
  }
  const std::size_t n = dropped.DestroyAll();
  dropped_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

std::size_t JobQueue::Abandon() {
  internal::JobList dropped;
  std::shared_ptr<JobQueue> release;
  {
    core::MutexLock lock(mu_);
    dropped = std::move(jobs_);
    scheduled_ = false;
    release = std::move(keep_alive_);
  }
  const std::size_t n = dropped.DestroyAll();
  dropped_.fetch_add(n, std::memory_order_relaxed);
  return n;  // `release` may destroy this actor on return
}

internal::JobList JobQueue::TakeAllForSlice() {
  core::MutexLock lock(mu_);
  return std::move(jobs_);
}

bool JobQueue::FinishSlice(internal::JobList& rest, uint64_t ran,
                           std::shared_ptr<JobQueue>& release) {
  // Only the worker running this queue writes jobs_run_.
  jobs_run_.store(jobs_run_.load(std::memory_order_relaxed) + ran, std::memory_order_relaxed);
  core::MutexLock lock(mu_);
  jobs_.PrependAll(rest);
  if (!jobs_.empty()) return true;
  scheduled_ = false;
  release = std::move(keep_alive_);
  return false;
}

void JobQueue::RecordSlice(uint64_t wait_ns, uint64_t overruns) noexcept {
  // Only the worker running this queue writes these (one at a time, handed
  // over through mu_), so plain load+store suffices; readers get snapshots.
  const auto bump = [](std::atomic<uint64_t>& counter, uint64_t by) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  };
  bump(slices_, 1);
  if (overruns != 0) bump(overruns_, overruns);
  bump(wait_ns_total_, wait_ns);
  if (wait_ns > wait_ns_max_.load(std::memory_order_relaxed)) {
    wait_ns_max_.store(wait_ns, std::memory_order_relaxed);
  }
}

std::size_t JobQueue::Depth() const noexcept {
  const uint64_t posted = posted_.load(std::memory_order_relaxed);
  const uint64_t done =
      jobs_run_.load(std::memory_order_relaxed) + dropped_.load(std::memory_order_relaxed);
  return posted > done ? static_cast<std::size_t>(posted - done) : 0;
}

JobQueueStats JobQueue::Stats() const noexcept {
  JobQueueStats s;
  s.depth = Depth();
  s.jobs_run = jobs_run_.load(std::memory_order_relaxed);
  s.slices = slices_.load(std::memory_order_relaxed);
  s.overruns = overruns_.load(std::memory_order_relaxed);
  s.wait_ns_total = wait_ns_total_.load(std::memory_order_relaxed);
  s.wait_ns_max = wait_ns_max_.load(std::memory_order_relaxed);
  s.rejected_full = rejected_full_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace keel::job
