#include "keel/job/scheduler.h"

#include <exception>
#include <stdexcept>
#include <thread>
#include <utility>

#include "keel/core/internal/backoff.h"
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
  if (current.group != nullptr && &current.group->scheduler_ == &scheduler_) {
    // A worker of this scheduler: its last clock reading is at most one
    // stride of short jobs old (docs/job.md, "Clock readings").
    internal::Worker& worker = *current.worker;
    queue->ready_at_ns_.store(worker.last_now, std::memory_order_relaxed);
    if (current.group == this && scheduler_.options_.keep_posts_local) {
      JobQueue* bumped = std::exchange(worker.next, queue);
      // Only a second runnable actor is work another worker could take.
      if (bumped != nullptr) global_.Push(bumped);
      return;
    }
  } else {
    // Any other thread: a clock reading costs as much as the rest of the
    // post, so 1 in kStampEvery posts (at random) stamps the ready time and
    // the others leave the slice's wait unmeasured.
    queue->ready_at_ns_.store(
        internal::SampleStamp() ? Ns(scheduler_.clock().Now()) : internal::kNoStamp,
        std::memory_order_relaxed);
  }
  global_.Push(queue);
}

void WorkerGroup::RecordRejected(const std::string& name) {
  core::MutexLock lock(summary_mu_);
  ++rejected_[name];
}

void WorkerGroup::ReadClock(internal::Worker& worker, JobQueue* queue) {
  const int64_t now = Ns(scheduler_.clock().Now());
  const int64_t elapsed = now - worker.last_now;
  const int64_t slice_time = scheduler_.options_.slice_time.count();
  if (queue == nullptr) {
    worker.stride = 1;  // a fresh start (idle time in between): no average
  } else if (elapsed > slice_time) {
    queue->CountOverrun();
    worker.stride = 1;
  } else if (elapsed * internal::kStrideDivisor <
             slice_time * static_cast<int64_t>(worker.since_read)) {
    worker.stride = std::min(worker.stride * 2, internal::kMaxStride);
  } else {
    worker.stride = 1;
  }
  worker.since_read = 0;
  worker.last_now = now;
}

void WorkerGroup::RunWorker(internal::Worker& worker) {
  internal::ThisWorker() = {this, &worker};
  ReadClock(worker, nullptr);
  for (;;) {
    JobQueue* queue = nullptr;
    if (worker.next != nullptr && worker.streak < kMaxLocalStreak) {
      queue = std::exchange(worker.next, nullptr);
      ++worker.streak;
    } else {
      if (worker.next != nullptr) global_.Push(std::exchange(worker.next, nullptr));
      worker.streak = 0;
      bool waited = false;
      queue = global_.Pop(&waited);
      if (queue == nullptr) break;
      // Time passed that no job accounts for: read the clock afresh.
      if (waited) ReadClock(worker, nullptr);
    }
    RunSlice(worker, queue);
  }
  // Closed: hand a local actor back so shutdown finds it.
  if (worker.next != nullptr) global_.Push(std::exchange(worker.next, nullptr));
  internal::ThisWorker() = {};
}

void WorkerGroup::RunSlice(internal::Worker& worker, JobQueue* queue) {
  const SchedulerOptions& options = scheduler_.options_;
  // The worker's last reading: taken after a job at most one stride ago, or
  // afresh after an idle wait (RunWorker).
  const int64_t start = worker.last_now;
  const int64_t ready = queue->ready_at_ns_.load(std::memory_order_relaxed);
  const int64_t deadline = start + options.slice_time.count();
  const bool watched = options.stall_threshold.count() > 0;
  // Release: the watchdog's acquire load sees the queue's name.
  if (watched) worker.running.store(queue, std::memory_order_release);
  internal::Mailbox& mailbox = queue->mailbox();
  internal::Mailbox::Consumer consumer = mailbox.Acquire();
  worker.current = queue;
  worker.consumer = &consumer;
  if (ready == internal::kNoStamp) {
    queue->CountSlice();
  } else {
    queue->CountSlice(static_cast<uint64_t>(start > ready ? start - ready : 0));
  }
  uint64_t ran = 0;
  uint64_t counted = 0;
  bool parked = false;
  std::shared_ptr<JobQueue> release;
  core::internal::Backoff backoff;
  for (;;) {
    if (queue->ClearPending()) [[unlikely]] queue->HonourClear(consumer, ran - counted);
    internal::JobNode* node = mailbox.Pop(consumer);
    if (node == nullptr) {
      // Empty, or a post is half done (between its exchange and its link).
      queue->CountRun(ran - counted);
      counted = ran;
      if (queue->TryPark(consumer, release)) {
        parked = true;
        break;
      }
      if (backoff.Yielding()) break;  // the poster was preempted: requeue
      backoff.Pause();
      continue;
    }
    worker.label.store(node->label, std::memory_order_relaxed);
    worker.job_seq.store(worker.job_seq.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
    worker.job_start_ns.store(worker.last_now, std::memory_order_relaxed);
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
    if (++worker.since_read >= worker.stride) ReadClock(worker, queue);
    if (ran >= options.slice_jobs || worker.last_now >= deadline) break;
  }
  if (!parked) queue->CountRun(ran - counted);
  worker.job_start_ns.store(0, std::memory_order_relaxed);
  worker.current = nullptr;
  worker.consumer = nullptr;
  if (watched) {
    worker.running.store(nullptr, std::memory_order_seq_cst);
    // The watchdog may be copying the name: the queue must outlive that.
    while (worker.inspecting.load(std::memory_order_seq_cst)) core::internal::CpuRelax();
  }
  if (draining_.load(std::memory_order_relaxed) && ran != 0) {
    core::MutexLock lock(summary_mu_);
    drained_[queue->name()] += ran;
  }
  mailbox.Release(consumer);
  // A Clear() from another thread that found the role held: honour it now
  // (the actor is alive: `release` or the unpushed schedule holds it).
  if (queue->ClearPending()) [[unlikely]] queue->HonourClearAfterRelease();
  if (!parked) {
    queue->ready_at_ns_.store(worker.last_now, std::memory_order_relaxed);
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
    worker->inspecting.store(true, std::memory_order_seq_cst);
    const JobQueue* running = worker->running.load(std::memory_order_seq_cst);
    if (running != nullptr) actor = running->name();
    worker->inspecting.store(false, std::memory_order_release);
    if (running == nullptr) continue;
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
