#include "keel/job/scheduler.h"

#include <exception>
#include <stdexcept>
#include <thread>
#include <utility>

#include "keel/core/lock_guard.h"
#include "keel/core/log.h"
#include "keel/core/pool_sizing.h"
#include "keel/job/internal/worker.h"
#include "keel/job/job_queue.h"

namespace keel::job {
namespace internal {

CurrentWorker& ThisWorker() noexcept {
  thread_local CurrentWorker current;
  return current;
}

}  // namespace internal

namespace {

int64_t Ns(Clock::TimePoint t) noexcept { return t.time_since_epoch().count(); }

std::vector<WorkerGroupOptions> WithDefaultGroup(std::vector<WorkerGroupOptions> groups) {
  if (groups.empty()) {
    groups.push_back({.name = "logic", .threads = core::AvailableCores(), .cpus = {}});
  }
  return groups;
}

}  // namespace

WorkerGroupOptions BlockingGroup(std::string name, double wait_per_compute) {
  return {.name = std::move(name),
          .threads = core::ThreadsForPool({.wait_per_compute = wait_per_compute}),
          .cpus = {}};
}

uint64_t ShutdownSummary::Total(const std::map<std::string, uint64_t>& counts) const {
  uint64_t total = 0;
  for (const auto& [name, n] : counts) total += n;
  return total;
}

// ---- WorkerGroup ----

WorkerGroup::WorkerGroup(Scheduler& scheduler, WorkerGroupOptions options)
    : scheduler_(scheduler),
      options_(std::move(options)),
      global_(scheduler.options_.idle_spin),
      threads_({.name = options_.name, .threads = options_.threads, .cpus = options_.cpus}) {
  for (uint32_t i = 0; i < options_.threads; ++i) {
    workers_.push_back(std::make_unique<internal::Worker>());
    workers_.back()->index = i;
  }
}

WorkerGroup::~WorkerGroup() = default;

void WorkerGroup::Start() {
  threads_.Start([this](std::stop_token) {
    const uint32_t index = next_index_.fetch_add(1, std::memory_order_relaxed);
    RunWorker(*workers_[index]);
  });
}

void WorkerGroup::Schedule(JobQueue* queue) {
  internal::CurrentWorker& current = internal::ThisWorker();
  if (current.group == this && scheduler_.options_.keep_posts_local) {
    internal::Worker& worker = *current.worker;
    queue->ready_at_ns_.store(worker.last_now, std::memory_order_relaxed);
    JobQueue* bumped = std::exchange(worker.next, queue);
    // Only a second runnable actor is work another worker could take.
    if (bumped != nullptr) global_.Push(bumped);
    return;
  }
  queue->ready_at_ns_.store(Ns(scheduler_.clock().Now()), std::memory_order_relaxed);
  global_.Push(queue);
}

void WorkerGroup::RecordRejected(const std::string& name) {
  core::MutexLock lock(summary_mu_);
  ++rejected_[name];
}

void WorkerGroup::RunWorker(internal::Worker& worker) {
  internal::ThisWorker() = {this, &worker};
  for (;;) {
    JobQueue* queue = nullptr;
    bool local = false;
    if (worker.next != nullptr && worker.streak < kMaxLocalStreak) {
      queue = std::exchange(worker.next, nullptr);
      ++worker.streak;
      local = true;
    } else {
      if (worker.next != nullptr) global_.Push(std::exchange(worker.next, nullptr));
      worker.streak = 0;
      queue = global_.Pop();
      if (queue == nullptr) break;
    }
    RunSlice(worker, queue, local);
  }
  // Closed: hand a local actor back so shutdown finds it.
  if (worker.next != nullptr) global_.Push(std::exchange(worker.next, nullptr));
  internal::ThisWorker() = {};
}

void WorkerGroup::RunSlice(internal::Worker& worker, JobQueue* queue, bool local) {
  const SchedulerOptions& options = scheduler_.options_;
  Clock& clock = scheduler_.clock();
  // A local pick follows the previous slice at once: its end time will do.
  const int64_t start = local ? worker.last_now : Ns(clock.Now());
  const int64_t ready = queue->ready_at_ns_.load(std::memory_order_relaxed);
  const int64_t deadline = start + options.slice_time.count();
  {
    core::LockGuard lock(worker.mu);
    worker.running = queue;
  }
  internal::JobList jobs = queue->TakeAllForSlice();
  uint64_t ran = 0;
  uint64_t overruns = 0;
  int64_t now = start;
  while (internal::JobNode* node = jobs.PopFront()) {
    const int64_t job_start = now;
    worker.label.store(node->label, std::memory_order_relaxed);
    worker.job_seq.store(worker.job_seq.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
    worker.job_start_ns.store(job_start, std::memory_order_relaxed);
    worker.last_now = job_start;
    try {
      node->job();
    } catch (const std::exception& e) {
      KEEL_LOG_ERROR("job '{}' on '{}' threw: {}", node->label, queue->name(), e.what());
    } catch (...) {
      KEEL_LOG_ERROR("job '{}' on '{}' threw a non-exception", node->label, queue->name());
    }
    node->job.Reset();
    internal::FreeNode(node);
    ++ran;
    now = Ns(clock.Now());
    if (now - job_start > options.slice_time.count()) ++overruns;
    if (ran >= options.slice_jobs || now >= deadline) break;
  }
  worker.job_start_ns.store(0, std::memory_order_relaxed);
  worker.last_now = now;
  {
    core::LockGuard lock(worker.mu);
    worker.running = nullptr;
  }
  if (draining_.load(std::memory_order_relaxed) && ran != 0) {
    core::MutexLock lock(summary_mu_);
    drained_[queue->name()] += ran;
  }
  queue->RecordSlice(static_cast<uint64_t>(start > ready ? start - ready : 0), overruns);
  std::shared_ptr<JobQueue> release;
  if (queue->FinishSlice(jobs, ran, release)) {
    queue->ready_at_ns_.store(now, std::memory_order_relaxed);
    // With no local pick waiting this worker Pops next: wake a peer only if
    // something else also waits. With one, it runs that first: wake a peer.
    global_.Push(queue, worker.next != nullptr ? 0 : 1);
  }
  release.reset();  // may destroy the actor, on this thread
}

void WorkerGroup::BeginShutdown(StopMode mode) {
  draining_.store(mode == StopMode::kDrain, std::memory_order_relaxed);
  accepting_.store(false, std::memory_order_release);  // pairs with Accepting()
  global_.Close(mode == StopMode::kDrain);
}

void WorkerGroup::FinishShutdown(ShutdownSummary& summary) {
  threads_.RequestStop();
  try {
    threads_.Join();
  } catch (const std::exception& e) {
    KEEL_LOG_ERROR("job group '{}' stopped with failures: {}", name(), e.what());
  }
  // Whatever is still runnable (kCancel, or posts that raced the close).
  while (JobQueue* queue = global_.TryPop()) {
    const std::string queue_name = queue->name();
    const std::size_t n = queue->Abandon();
    if (n != 0) summary.cancelled[queue_name] += n;
  }
  core::MutexLock lock(summary_mu_);
  for (const auto& [n, count] : drained_) summary.drained[n] += count;
  for (const auto& [n, count] : rejected_) summary.rejected[n] += count;
}

void WorkerGroup::CheckStalls(int64_t now_ns) {
  const int64_t threshold = scheduler_.options_.stall_threshold.count();
  for (auto& worker : workers_) {
    const int64_t start = worker->job_start_ns.load(std::memory_order_relaxed);
    const uint64_t seq = worker->job_seq.load(std::memory_order_relaxed);
    if (start == 0 || now_ns - start < threshold || seq == worker->reported_seq) continue;
    std::string actor;
    {
      core::LockGuard lock(worker->mu);
      if (worker->running == nullptr) continue;
      actor = worker->running->name();
    }
    worker->reported_seq = seq;
    scheduler_.stalls_.fetch_add(1, std::memory_order_relaxed);
    const char* label = worker->label.load(std::memory_order_relaxed);
    KEEL_LOG_WARN("job stall: actor '{}' job '{}' on {}-{} running for {} ms", actor,
                  label != nullptr ? label : "?", name(), worker->index,
                  (now_ns - start) / 1'000'000);
  }
}

// ---- Scheduler ----

Scheduler::Scheduler(SchedulerOptions options)
    : options_([&] {
        options.groups = WithDefaultGroup(std::move(options.groups));
        return std::move(options);
      }()),
      clock_(options_.clock != nullptr ? options_.clock : &SteadyClock::Instance()) {
  if (options_.slice_jobs == 0) throw std::invalid_argument("slice_jobs must be > 0");
  for (const auto& group : options_.groups) {
    groups_.push_back(std::unique_ptr<WorkerGroup>(new WorkerGroup(*this, group)));
  }
  for (auto& group : groups_) group->Start();
  if (options_.stall_threshold.count() > 0) {
    watchdog_ = std::make_unique<core::ThreadGroup>(
        core::ThreadGroupOptions{.name = "job-watchdog", .threads = 1, .cpus = {}});
    watchdog_->Start([this](std::stop_token stop) { RunWatchdog(stop); });
  }
}

Scheduler::~Scheduler() {
  if (!shut_down_) Shutdown(StopMode::kCancel);
}

WorkerGroup& Scheduler::Group(std::string_view name) {
  for (auto& group : groups_) {
    if (group->name() == name) return *group;
  }
  throw std::out_of_range("keel::job: no worker group named '" + std::string(name) + "'");
}

void Scheduler::RunWatchdog(std::stop_token stop) {
  const auto period = std::max(options_.stall_threshold / 4,
                               std::chrono::nanoseconds(std::chrono::milliseconds(1)));
  const auto tick = std::min(period, std::chrono::nanoseconds(std::chrono::milliseconds(50)));
  while (!stop.stop_requested()) {
    std::this_thread::sleep_for(tick);
    const int64_t now = Ns(clock_->Now());
    for (auto& group : groups_) group->CheckStalls(now);
  }
}

ShutdownSummary Scheduler::Shutdown(StopMode mode) {
  ShutdownSummary summary;
  if (shut_down_) return summary;
  shut_down_ = true;
  for (auto& group : groups_) group->BeginShutdown(mode);
  for (auto& group : groups_) group->FinishShutdown(summary);
  if (watchdog_) {
    watchdog_->RequestStop();
    watchdog_->Join();
  }
  const char* verb = mode == StopMode::kDrain ? "drain" : "cancel";
  KEEL_LOG_INFO("job scheduler shut down ({}): {} drained, {} cancelled, {} rejected", verb,
                summary.Total(summary.drained), summary.Total(summary.cancelled),
                summary.Total(summary.rejected));
  for (const auto& [name, n] : summary.drained) KEEL_LOG_INFO("  drained {} on '{}'", n, name);
  for (const auto& [name, n] : summary.cancelled) KEEL_LOG_INFO("  cancelled {} on '{}'", n, name);
  for (const auto& [name, n] : summary.rejected) KEEL_LOG_INFO("  rejected {} on '{}'", n, name);
  return summary;
}

}  // namespace keel::job
