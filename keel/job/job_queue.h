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

#include "keel/job/internal/job_list.h"
#include "keel/job/internal/mailbox.h"
#include "keel/job/job.h"

namespace keel::job {

class WorkerGroup;

// Counters readable at run time (relaxed snapshots).
struct JobQueueStats {
  std::size_t depth = 0;             // jobs posted and not yet run
  uint64_t jobs_run = 0;
  uint64_t slices = 0;               // times a worker picked the queue up
  // Clock intervals past the slice time budget: one job that alone ran too
  // long, or rarely a stride of short ones (docs/job.md, "Clock readings").
  uint64_t overruns = 0;
  // Ready -> running wait of the slices whose wait was measured (every
  // slice of an actor made runnable by a worker, 1 in 16 of those made
  // runnable by other threads; docs/job.md, "Observability").
  uint64_t wait_samples = 0;
  uint64_t wait_ns_total = 0;
  uint64_t wait_ns_max = 0;
  uint64_t rejected_full = 0;        // posts refused by the mailbox cap
  uint64_t dropped = 0;              // jobs dropped unrun (Clear, shutdown cancel)
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

  // Drops every pending job (destroying their captures) and returns how many
  // it dropped itself. Never waits: if a worker is running this actor's
  // slice on another thread, Clear leaves a request and returns 0; that
  // worker drops what is pending before it runs its next job (the count
  // shows in Stats().dropped). A post that starts after Clear returned is
  // never dropped by it; one racing it may be. Safe from any thread, any
  // actor's job (two actors may clear each other) and under any lock.
  std::size_t Clear();

  const std::string& name() const noexcept { return name_; }
  WorkerGroup& group() const noexcept { return group_; }
  std::size_t Depth() const noexcept;
  JobQueueStats Stats() const noexcept;

 private:
  friend class WorkerGroup;
  friend class GlobalQueue;

  // ---- worker side (scheduler.cc). The worker that took the queue from the
  // GlobalQueue or its next slot owns it until it parks or requeues it, and
  // holds the mailbox's consumer role for the slice.
  internal::Mailbox& mailbox() noexcept { return mailbox_; }
  // Owner-only counters (plain load + store). The owner must count its jobs
  // before parking: once parked, the next owner writes them.
  void CountSlice() noexcept { Bump(slices_, 1); }  // wait not measured
  void CountSlice(uint64_t wait_ns) noexcept;
  void CountRun(uint64_t ran) noexcept { Bump(jobs_run_, ran); }
  void CountOverrun() noexcept { Bump(overruns_, 1); }
  static void Bump(std::atomic<uint64_t>& counter, uint64_t by) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  // Consumer role held, mailbox found empty: parks it (true) and hands back
  // the keep-alive reference for the caller to release after giving the
  // role back; false if a post is half done (the caller still owns the queue
  // and must come back to it).
  bool TryPark(internal::Mailbox::Consumer& c, std::shared_ptr<JobQueue>& release) noexcept;
  // Shutdown (kCancel): drops pending jobs and marks the queue idle.
  std::size_t Abandon();
  // Consumer role held: pops every job that can be taken now into `out`.
  void PopAll(internal::Mailbox::Consumer& c, internal::JobList& out) noexcept;
  // Consumer role held, `uncounted` jobs run but not yet in jobs_run_: drops
  // the jobs a deferred Clear() cut off (RunSlice checks clear_pending_ first).
  void HonourClear(internal::Mailbox::Consumer& c, uint64_t uncounted) noexcept;
  // After giving the role back: honours a Clear() that came while it was held,
  // unless another thread took the role meanwhile (it will).
  void HonourClearAfterRelease() noexcept;
  bool ClearPending() const noexcept { return clear_pending_.load(std::memory_order_relaxed); }
  // The first post to a parked queue found it not owned by a shared_ptr:
  // drops what is queued, parks it again and throws std::bad_weak_ptr.
  [[noreturn]] void DropUnowned();

  WorkerGroup& group_;
  const std::string name_;
  std::atomic<std::size_t> cap_{0};

  // One cache line: what a hand-off from a poster to a worker touches. The
  // mailbox (lock-free; parked = idle: the one Post whose push finds it
  // parked schedules the queue and takes keep_alive_, the worker that finds
  // it empty parks it again; docs/job.md), the depth counter, the keep-alive,
  // the ready stamp and the GlobalQueue link.
  alignas(64) internal::Mailbox mailbox_;
  std::atomic<uint64_t> posted_{0};  // Depth = posted_ - jobs_run_ - dropped_
  // Set while scheduled: pending work keeps the actor alive.
  std::shared_ptr<JobQueue> keep_alive_;
  std::atomic<int64_t> ready_at_ns_{0};  // clock time it last became runnable
  JobQueue* next_ready_ = nullptr;       // GlobalQueue's intrusive link, under its lock

  // Owner side: written by the worker that owns the queue (handed over
  // through the GlobalQueue's lock, the next slot or the mailbox's park and
  // push), read anywhere as relaxed snapshots.
  alignas(64) std::atomic<uint64_t> jobs_run_{0};
  std::atomic<uint64_t> slices_{0};
  std::atomic<uint64_t> overruns_{0};
  std::atomic<uint64_t> wait_samples_{0};
  std::atomic<uint64_t> wait_ns_total_{0};
  std::atomic<uint64_t> wait_ns_max_{0};
  std::atomic<uint64_t> dropped_{0};        // any thread (RMW)
  // A Clear() that found the consumer role held leaves the cut (posted_ at
  // that moment) and the flag; the holder drops the jobs posted before the
  // cut before its next pop, or after it gives the role back (HonourClear*).
  std::atomic<uint64_t> clear_upto_{0};
  std::atomic<bool> clear_pending_{false};
  uint64_t cleared_upto_ = 0;  // consumer role holder only
  std::atomic<uint64_t> rejected_full_{0};  // any thread (RMW)
};

using JobQueuePtr = std::shared_ptr<JobQueue>;

}  // namespace keel::job
