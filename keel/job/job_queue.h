#pragma once
// JobQueue: the actor base. A room or a player derives from JobQueue, is
// owned by std::shared_ptr, and receives work only as jobs posted to it; the
// scheduler runs one queue's jobs one at a time, in post order, on a worker of
// the queue's WorkerGroup (its affinity), so the actor's state needs no lock.
//
//   class Room : public keel::job::JobQueue {
//    public:
//     explicit Room(keel::job::WorkerGroup& g) : JobQueue(g, "room-7") {}
//     void Join(PlayerId id);
//   };
//   auto room = std::make_shared<Room>(scheduler.Group("logic"));
//   room->PostCall(&Room::Join, id);      // keeps `room` alive until it ran
//
// Post*, Clear and the counters may be called from any thread. A queue with
// pending jobs is kept alive by the scheduler until they have run; Clear()
// drops them (break cycles of actors that hold each other). The WorkerGroup
// must outlive every queue bound to it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"
#include "keel/job/internal/job_list.h"
#include "keel/job/job.h"

namespace keel::job {

class WorkerGroup;

// Counters readable at run time (relaxed snapshots).
struct JobQueueStats {
  std::size_t depth = 0;             // jobs posted and not yet run
  uint64_t jobs_run = 0;
  uint64_t slices = 0;               // times a worker picked the queue up
  uint64_t overruns = 0;             // jobs that alone ran past the slice time budget
  uint64_t wait_ns_total = 0;        // sum over slices of ready -> running
  uint64_t wait_ns_max = 0;
  uint64_t rejected_full = 0;        // posts refused by the mailbox cap
};

class JobQueue : public std::enable_shared_from_this<JobQueue> {
 public:
  JobQueue(WorkerGroup& group, std::string name);
  virtual ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Queues `job`; returns false (and drops it) once the group is shutting
  // down, or when the mailbox already holds `MailboxCap()` jobs (counted in
  // Stats().rejected_full; the caller decides: drop, kick, retry later). The queue must be owned by a std::shared_ptr. `label` names the job
  // in stall reports and must be a string literal.
  bool Post(Job job, const char* label = "job");

  // Posts `(self->*method)(args...)`, holding a shared_ptr to this actor (as
  // its most-derived type `Self`) until the call has run.
  template <typename Self, typename R, typename... Params, typename... Args>
  bool PostCall(R (Self::*method)(Params...), Args&&... args) {
    auto self = std::static_pointer_cast<Self>(shared_from_this());
    return Post(
        [self = std::move(self), method, ... args = std::forward<Args>(args)]() mutable {
          ((*self).*method)(std::move(args)...);
        },
        "call");
  }

  // Bounds the pending jobs (DESIGN: a mailbox cap per actor). 0, the
  // default, means unbounded. Jobs of the slice now running count until the
  // slice ends. The check reads a relaxed depth, so concurrent
  // posters may overshoot the cap by at most one job each.
  void SetMailboxCap(std::size_t cap) noexcept { cap_.store(cap, std::memory_order_relaxed); }
  std::size_t MailboxCap() const noexcept { return cap_.load(std::memory_order_relaxed); }

  // Drops every pending job (destroying their captures); returns how many.
  std::size_t Clear();

  const std::string& name() const noexcept { return name_; }
  WorkerGroup& group() const noexcept { return group_; }
  std::size_t Depth() const noexcept;
  JobQueueStats Stats() const noexcept;

 private:
  friend class WorkerGroup;

  // Worker side (internal/worker): takes every pending job for one slice.
  internal::JobList TakeAllForSlice();
  // Puts back what a slice did not run; returns true if the queue must be
  // scheduled again, else marks it idle and hands back the keep-alive
  // reference for the caller to release outside the lock.
  bool FinishSlice(internal::JobList& rest, uint64_t ran, std::shared_ptr<JobQueue>& release);
  void RecordSlice(uint64_t wait_ns, uint64_t overruns) noexcept;
  // Shutdown (kCancel): drops pending jobs and marks the queue idle.
  std::size_t Abandon();

  WorkerGroup& group_;
  const std::string name_;

  mutable core::Mutex mu_{"JobQueue"};
  internal::JobList jobs_ KEEL_GUARDED_BY(mu_);
  bool scheduled_ KEEL_GUARDED_BY(mu_) = false;
  // Set while scheduled: pending work keeps the actor alive.
  std::shared_ptr<JobQueue> keep_alive_ KEEL_GUARDED_BY(mu_);

  // Written by the one worker running the queue (or under mu_), read anywhere.
  // Depth = posted_ - jobs_run_ - dropped_, so posting costs no shared RMW.
  std::atomic<uint64_t> posted_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> jobs_run_{0};
  std::atomic<uint64_t> slices_{0};
  std::atomic<uint64_t> overruns_{0};
  std::atomic<uint64_t> wait_ns_total_{0};
  std::atomic<uint64_t> wait_ns_max_{0};
  std::atomic<int64_t> ready_at_ns_{0};
  std::atomic<std::size_t> cap_{0};
  std::atomic<uint64_t> rejected_full_{0};  // clock time it last became runnable

  // GlobalQueue's intrusive link; owned by the GlobalQueue's lock.
  JobQueue* next_ready_ = nullptr;
  friend class GlobalQueue;
};

using JobQueuePtr = std::shared_ptr<JobQueue>;

}  // namespace keel::job
