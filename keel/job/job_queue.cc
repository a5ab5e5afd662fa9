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
  node->job.AssignToEmpty(std::move(job));  // free nodes hold empty jobs
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
    cleared_upto_ = std::max(cleared_upto_, clear_upto_.load(std::memory_order_acquire));
  } else {
    internal::Mailbox::Consumer c;
    if (!mailbox_.TryAcquire(c)) {
      // A worker runs a slice (or another thread clears): never wait for it
      // (two actors clearing each other, or a lock the actor's jobs take,
      // would deadlock). Leave the cut; the holder drops what was posted
      // before it, before its next job.
      const uint64_t cut = posted_.load(std::memory_order_relaxed);
      uint64_t seen = clear_upto_.load(std::memory_order_relaxed);
      while (seen < cut &&
             !clear_upto_.compare_exchange_weak(seen, cut, std::memory_order_relaxed)) {
      }
      // Release: the holder's exchange that takes the flag sees the cut.
      clear_pending_.store(true, std::memory_order_release);
      HonourClearAfterRelease();  // the holder may have let go before the flag
      return 0;
    }
    PopAll(c, dropped);
    cleared_upto_ = std::max(cleared_upto_, clear_upto_.load(std::memory_order_acquire));
    mailbox_.Release(c);
    HonourClearAfterRelease();  // another Clear may have found us holding it
  }
  const std::size_t n = dropped.DestroyAll();
  dropped_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

void JobQueue::HonourClear(internal::Mailbox::Consumer& c, uint64_t uncounted) noexcept {
  if (!clear_pending_.exchange(false, std::memory_order_acq_rel)) return;
  const uint64_t upto = clear_upto_.load(std::memory_order_acquire);
  if (upto <= cleared_upto_) return;
  cleared_upto_ = upto;
  // Jobs posted before the cut and neither run nor dropped yet are the
  // oldest in the mailbox: drop that many from the front, no more.
  const uint64_t done = jobs_run_.load(std::memory_order_relaxed) + uncounted +
                        dropped_.load(std::memory_order_relaxed);
  internal::JobList dropped;
  for (uint64_t left = upto > done ? upto - done : 0; left != 0; --left) {
    internal::JobNode* node = mailbox_.Pop(c);
    if (node == nullptr) break;  // a post racing the Clear is not linked yet: it stays
    dropped.PushBack(node);
  }
  const std::size_t n = dropped.DestroyAll();
  if (n != 0) dropped_.fetch_add(n, std::memory_order_relaxed);
}

void JobQueue::HonourClearAfterRelease() noexcept {
  while (clear_pending_.load(std::memory_order_acquire)) {
    internal::Mailbox::Consumer c;
    if (!mailbox_.TryAcquire(c)) return;  // the new holder honours it
    HonourClear(c, 0);
    mailbox_.Release(c);
  }
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
  s.dropped = dropped_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace keel::job
