#include "keel/job/job_queue.h"

#include <algorithm>
#include <utility>

#include "keel/core/internal/backoff.h"
#include "keel/job/internal/worker.h"
#include "keel/job/scheduler.h"

namespace keel::job {

JobQueue::JobQueue(WorkerGroup& group, std::string name) : group_(group), name_(std::move(name)) {}

JobQueue::~JobQueue() {
  // Nothing else can reach the queue now: a queue with pending jobs is kept
  // alive by the scheduler, so only an actor not owned by a shared_ptr gets
  // here with jobs left.
  internal::JobList rest;
  internal::Mailbox::Consumer c = mailbox_.Acquire();
  PopAll(c, rest);
  mailbox_.Release(c);
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
  posted_.fetch_add(1, std::memory_order_relaxed);
  // False: the queue is already scheduled (or running), and its owner will
  // find the job. True: it was parked, and this post must schedule it.
  if (!mailbox_.Push(node)) return true;
  // Pending work keeps the actor alive.
  try {
    keep_alive_ = shared_from_this();
  } catch (const std::bad_weak_ptr&) {
    DropUnowned();
  }
  group_.Schedule(this);  // stamps ready_at_ns_
  return true;
}

void JobQueue::PopAll(internal::Mailbox::Consumer& c, internal::JobList& out) noexcept {
  while (internal::JobNode* node = mailbox_.Pop(c)) out.PushBack(node);
}

void JobQueue::DropUnowned() {
  // This post found the queue parked, so the queue is ours to park again;
  // posts that raced in behind it are dropped too (counted in dropped_).
  internal::JobList dropped;
  internal::Mailbox::Consumer c = mailbox_.Acquire();
  core::internal::Backoff backoff;
  for (;;) {
    PopAll(c, dropped);
    if (mailbox_.TryPark(c)) break;
    backoff.Pause();  // a racing post is half done
  }
  mailbox_.Release(c);
  dropped_.fetch_add(dropped.DestroyAll(), std::memory_order_relaxed);
  throw std::bad_weak_ptr();  // the actor is not owned by a shared_ptr
}

std::size_t JobQueue::Clear() {
  internal::JobList dropped;
  // From one of this queue's own jobs the worker holds the consumer role.
  internal::Worker* worker = internal::ThisWorker().worker;
  if (worker != nullptr && worker->current == this) {
    PopAll(*worker->consumer, dropped);
  } else {
    internal::Mailbox::Consumer c = mailbox_.Acquire();
    PopAll(c, dropped);
    mailbox_.Release(c);
  }
  const std::size_t n = dropped.DestroyAll();
  dropped_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

std::size_t JobQueue::Abandon() {
  // Called with the queue owned (taken from the GlobalQueue after the workers
  // stopped): drop everything and park it.
  internal::JobList dropped;
  std::shared_ptr<JobQueue> release;
  internal::Mailbox::Consumer c = mailbox_.Acquire();
  core::internal::Backoff backoff;
  for (;;) {
    PopAll(c, dropped);
    if (TryPark(c, release)) break;
    backoff.Pause();  // a post that raced the shutdown is half done
  }
  mailbox_.Release(c);
  const std::size_t n = dropped.DestroyAll();
  dropped_.fetch_add(n, std::memory_order_relaxed);
  return n;  // `release` may destroy this actor on return
}

bool JobQueue::TryPark(internal::Mailbox::Consumer& c,
                       std::shared_ptr<JobQueue>& release) noexcept {
  // keep_alive_ must be out before the park: once parked, the next post may
  // write it at once.
  std::shared_ptr<JobQueue> keep = std::move(keep_alive_);
  if (mailbox_.TryPark(c)) {
    release = std::move(keep);
    return true;
  }
  keep_alive_ = std::move(keep);
  return false;
}

void JobQueue::CountSlice(uint64_t wait_ns) noexcept {
  // Only the queue's owner writes these (one at a time, handed over through
  // the GlobalQueue, the next slot or the mailbox's park and push), so plain
  // load+store suffices; readers get snapshots.
  Bump(slices_, 1);
  Bump(wait_samples_, 1);
  Bump(wait_ns_total_, wait_ns);
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
  s.wait_samples = wait_samples_.load(std::memory_order_relaxed);
  s.wait_ns_total = wait_ns_total_.load(std::memory_order_relaxed);
  s.wait_ns_max = wait_ns_max_.load(std::memory_order_relaxed);
  s.rejected_full = rejected_full_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace keel::job
