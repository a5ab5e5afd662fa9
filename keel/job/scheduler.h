#pragma once
// Scheduler and WorkerGroup: the threads that run actors' jobs.
//
// A Scheduler owns named WorkerGroups ("logic", "db", ...). Each group has a
// GlobalQueue of runnable JobQueues and a core::ThreadGroup of workers. A
// worker takes a queue, runs its jobs for one slice (at most `slice_jobs`
// jobs or `slice_time`, whichever ends first), then requeues it at the back
// if jobs remain, so a flooded actor cannot starve the others. When a job on
// a worker posts to an idle actor of the same group, that actor goes to the
// worker's own "next" slot instead of waking another thread (ping-pong stays
// on one core); every kMaxLocalStreak local picks the worker serves the
// GlobalQueue first. Why workers, not the posting thread, drain queues:
// docs/adr/0010-who-drains-a-job-queue.md.
//
// An optional watchdog thread logs (KEEL_LOG_WARN) the actor and job label of
// any job running longer than `stall_threshold`.
//
// Group() and the counters are thread-safe. Shutdown() and the destructor are
// called by the owner, never from a worker; they stop every group, then run
// (kDrain) or drop (kCancel) what is pending, and report counts per queue name.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"
#include "keel/core/thread_group.h"
#include "keel/job/clock.h"
#include "keel/job/global_queue.h"

namespace keel::job {

class JobQueue;
class Scheduler;
namespace internal {
struct Worker;
}

struct WorkerGroupOptions {
  std::string name = "logic";
  uint32_t threads = 1;
  std::vector<uint32_t> cpus;  // pin thread i to cpus[i % size]; empty: no pinning
};

// A group for blocking work (database, file IO), sized with
// core::ThreadsForPool for the given time-blocked / time-on-CPU ratio.
WorkerGroupOptions BlockingGroup(std::string name, double wait_per_compute);

struct SchedulerOptions {
  // Empty: one "logic" group with core::AvailableCores() threads.
  std::vector<WorkerGroupOptions> groups;
  uint32_t slice_jobs = 128;
  std::chrono::nanoseconds slice_time = std::chrono::microseconds(500);
  std::chrono::nanoseconds stall_threshold{0};  // 0: no watchdog
  Clock* clock = nullptr;                       // null: SteadyClock::Instance()
  bool keep_posts_local = true;                 // the worker's "next" slot
  // How long an idle worker spins (real time, pauses then yields) before it
  // sleeps; a post during the spin needs no futex wake. 0: sleep at once.
  std::chrono::nanoseconds idle_spin = std::chrono::microseconds(20);
};

enum class StopMode { kDrain, kCancel };

struct ShutdownSummary {
  std::map<std::string, uint64_t> drained;    // pending jobs run during shutdown
  std::map<std::string, uint64_t> cancelled;  // pending jobs dropped
  std::map<std::string, uint64_t> rejected;   // posts refused after shutdown began
  uint64_t Total(const std::map<std::string, uint64_t>& counts) const;
};

class WorkerGroup {
 public:
  static constexpr uint32_t kMaxLocalStreak = 64;

  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;
  ~WorkerGroup();

  const std::string& name() const noexcept { return options_.name; }
  uint32_t size() const noexcept { return options_.threads; }
  // Runnable actors waiting for a worker.
  std::size_t Backlog() const { return global_.Size(); }

 private:
  friend class JobQueue;
  friend class Scheduler;

  WorkerGroup(Scheduler& scheduler, WorkerGroupOptions options);
  void Start();
  // `queue` just became runnable (its scheduled flag was set by Post).
  void Schedule(JobQueue* queue);
  bool Accepting() const noexcept { return accepting_.load(std::memory_order_acquire); }
  void RecordRejected(const std::string& name);
  void RunWorker(internal::Worker& worker);
  void RunSlice(internal::Worker& worker, JobQueue* queue);
  // Reads the clock into worker.last_now and adapts the stride; `queue`:
  // the queue whose job ended the interval (counts an overrun), or nullptr
  // after idle time.
  void ReadClock(internal::Worker& worker, JobQueue* queue);
  void BeginShutdown(StopMode mode);
  void FinishShutdown(ShutdownSummary& summary);
  void CheckStalls(int64_t now_ns);

  Scheduler& scheduler_;
  const WorkerGroupOptions options_;
  GlobalQueue global_;
  // Release on shutdown pairs with the acquire in Accepting(): a post that
  // sees false is counted as rejected.
  std::atomic<bool> accepting_{true};
  std::atomic<bool> draining_{false};
  std::vector<std::unique_ptr<internal::Worker>> workers_;
  std::atomic<uint32_t> next_index_{0};
  core::ThreadGroup threads_;

  core::Mutex summary_mu_{"WorkerGroup.summary"};
  std::map<std::string, uint64_t> drained_ KEEL_GUARDED_BY(summary_mu_);
  std::map<std::string, uint64_t> rejected_ KEEL_GUARDED_BY(summary_mu_);
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Throws std::out_of_range for an unknown name.
  WorkerGroup& Group(std::string_view name);
  Clock& clock() const noexcept { return *clock_; }
  const SchedulerOptions& options() const noexcept { return options_; }
  // Jobs the watchdog reported as stalled so far.
  uint64_t Stalls() const noexcept { return stalls_.load(std::memory_order_relaxed); }

  // Stops accepting posts, then runs (kDrain) or drops (kCancel) every
  // pending job, joins the workers, logs the counts per queue name and
  // returns them. Later calls return an empty summary.
  ShutdownSummary Shutdown(StopMode mode = StopMode::kDrain);

 private:
  friend class WorkerGroup;
  void RunWatchdog(std::stop_token stop);

  const SchedulerOptions options_;
  Clock* const clock_;
  std::vector<std::unique_ptr<WorkerGroup>> groups_;
  std::atomic<uint64_t> stalls_{0};
  std::unique_ptr<core::ThreadGroup> watchdog_;
  bool shut_down_ = false;  // owner thread only
};

}  // namespace keel::job
