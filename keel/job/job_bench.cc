// Actor jobs: keel::job vs a mutex+condition-variable pool with per-actor
// queues (the baseline, written here), vs Boost.Asio strands. Two worker
// threads everywhere. Names read group/impl/case; bench/compare.py pairs each
// impl with the group's baseline and prints the CPU ratio.
//
// Each iteration moves a fixed number of jobs (kJobsPerIteration) through the
// actors and waits for all of them. Time is wall-clock (UseRealTime) and the
// CPU column is the whole process's CPU (MeasureProcessCPUTime: workers,
// producers and the waiting main thread) per iteration; the counters give
// jobs_per_s (wall) and cpu_ns_per_job (process CPU / jobs). docs/job.md.
#include <benchmark/benchmark.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#if KEEL_JOB_BENCH_CAF
#include <caf/all.hpp>
#endif
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <deque>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "keel/job/clock.h"
#include "keel/job/job_queue.h"
#include "keel/job/job_timer.h"
#include "keel/job/scheduler.h"

namespace {

constexpr int64_t kJobsPerIteration = 200'000;
constexpr uint32_t kWorkers = 2;

int64_t ProcessCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// ---- keel::job ----

struct KeelActor : keel::job::JobQueue {
  using JobQueue::JobQueue;
  KeelActor* peer = nullptr;
  uint64_t count = 0;
};

void KeelHit(KeelActor* self, int64_t n, std::latch* done) {
  if (n == 0) {
    done->count_down();
    return;
  }
  KeelActor* peer = self->peer;
  peer->Post([peer, n, done] { KeelHit(peer, n - 1, done); });
}

// IdleSpinUs: SchedulerOptions::idle_spin (keel = the default, 20 us;
// keel_nospin = 0, workers sleep as soon as the global queue is empty).
template <int IdleSpinUs>
struct KeelSystem {
  keel::job::Scheduler scheduler{[] {
    keel::job::SchedulerOptions options;
    options.groups = {{.name = "logic", .threads = kWorkers, .cpus = {}}};
    options.idle_spin = std::chrono::microseconds(IdleSpinUs);
    return options;
  }()};
  std::vector<std::shared_ptr<KeelActor>> actors;

  explicit KeelSystem(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      actors.push_back(std::make_shared<KeelActor>(scheduler.Group("logic"), "bench"));
    }
  }
  void Pair(size_t a, size_t b) {
    actors[a]->peer = actors[b].get();
    actors[b]->peer = actors[a].get();
  }
  void StartPing(size_t i, int64_t n, std::latch* done) {
    KeelActor* a = actors[i].get();
    a->Post([a, n, done] { KeelHit(a, n, done); });
  }
  void PostCount(size_t i) {
    KeelActor* a = actors[i].get();
    a->Post([a] { ++a->count; });
  }
  void PostDone(size_t i, std::latch* done) {
    actors[i]->Post([done] { done->count_down(); });
  }
};

// ---- the baseline: mutex + condition variable pool, per-actor queues ----

class MutexPool {
 public:
  struct Task {
    void (*fn)(void* self, int64_t arg, void* ctx);
    void* self;
    int64_t arg;
    void* ctx;
  };
  struct Actor {
    std::mutex mu;
    std::deque<Task> tasks;
    bool scheduled = false;
    Actor* peer = nullptr;
    uint64_t count = 0;
  };

  explicit MutexPool(uint32_t threads) {
    for (uint32_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~MutexPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Post(Actor* actor, Task task) {
    bool schedule = false;
    {
      std::lock_guard lock(actor->mu);
      actor->tasks.push_back(task);
      schedule = !actor->scheduled;
      actor->scheduled = true;
    }
    if (schedule) Ready(actor);
  }

 private:
  static constexpr int kBatch = 128;
  void Ready(Actor* actor) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      ready_.push_back(actor);
      wake = idle_ > 0;
    }
    if (wake) cv_.notify_one();
  }
  void Work() {
    for (;;) {
      Actor* actor = nullptr;
      {
        std::unique_lock lock(mu_);
        while (ready_.empty() && !stop_) {
          ++idle_;
          cv_.wait(lock);
          --idle_;
        }
        if (ready_.empty()) return;
        actor = ready_.front();
        ready_.pop_front();
      }
      bool more = true;
      for (int i = 0; i < kBatch; ++i) {
        Task task{};
        {
          std::lock_guard lock(actor->mu);
          if (actor->tasks.empty()) {
            actor->scheduled = false;
            more = false;
            break;
          }
          task = actor->tasks.front();
          actor->tasks.pop_front();
        }
        task.fn(task.self, task.arg, task.ctx);
      }
      if (more) {
        std::lock_guard lock(actor->mu);
        if (actor->tasks.empty()) {
          actor->scheduled = false;
          more = false;
        }
      }
      if (more) Ready(actor);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Actor*> ready_;
  int idle_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

struct PoolSystem {
  // Actors first: the pool's threads must stop before the actors go.
  std::vector<std::unique_ptr<MutexPool::Actor>> actors;
  MutexPool pool{kWorkers};

  static void Hit(void* self, int64_t n, void* ctx) {
    auto* done = static_cast<std::latch*>(ctx);
    if (n == 0) {
      done->count_down();
      return;
    }
    auto* actor = static_cast<MutexPool::Actor*>(self);
    Self()->pool.Post(actor->peer, {&Hit, actor->peer, n - 1, ctx});
  }
  static PoolSystem*& Self() {
    static PoolSystem* current = nullptr;
    return current;
  }
  explicit PoolSystem(size_t n) {
    Self() = this;
    for (size_t i = 0; i < n; ++i) actors.push_back(std::make_unique<MutexPool::Actor>());
  }
  void Pair(size_t a, size_t b) {
    actors[a]->peer = actors[b].get();
    actors[b]->peer = actors[a].get();
  }
  void StartPing(size_t i, int64_t n, std::latch* done) {
    pool.Post(actors[i].get(), {&Hit, actors[i].get(), n, done});
  }
  void PostCount(size_t i) {
    pool.Post(actors[i].get(),
              {[](void* self, int64_t, void*) { ++static_cast<MutexPool::Actor*>(self)->count; },
               actors[i].get(), 0, nullptr});
  }
  void PostDone(size_t i, std::latch* done) {
    pool.Post(actors[i].get(),
              {[](void*, int64_t, void* ctx) { static_cast<std::latch*>(ctx)->count_down(); },
               actors[i].get(), 0, done});
  }
};

// ---- Boost.Asio strands over one io_context run by two threads ----

struct AsioActor {
  explicit AsioActor(boost::asio::io_context& io) : strand(boost::asio::make_strand(io)) {}
  boost::asio::strand<boost::asio::io_context::executor_type> strand;
  AsioActor* peer = nullptr;
  uint64_t count = 0;
};

void AsioHit(AsioActor* self, int64_t n, std::latch* done) {
  if (n == 0) {
    done->count_down();
    return;
  }
  AsioActor* peer = self->peer;
  boost::asio::post(peer->strand, [peer, n, done] { AsioHit(peer, n - 1, done); });
}

struct AsioSystem {
  boost::asio::io_context io{static_cast<int>(kWorkers)};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
      io.get_executor()};
  std::vector<std::unique_ptr<AsioActor>> actors;
  std::vector<std::thread> threads;

  explicit AsioSystem(size_t n) {
    for (size_t i = 0; i < n; ++i) actors.push_back(std::make_unique<AsioActor>(io));
    for (uint32_t i = 0; i < kWorkers; ++i) threads.emplace_back([this] { io.run(); });
  }
  ~AsioSystem() {
    guard.reset();
    io.stop();
    for (auto& t : threads) t.join();
  }
  void Pair(size_t a, size_t b) {
    actors[a]->peer = actors[b].get();
    actors[b]->peer = actors[a].get();
  }
  void StartPing(size_t i, int64_t n, std::latch* done) {
    AsioActor* a = actors[i].get();
    boost::asio::post(a->strand, [a, n, done] { AsioHit(a, n, done); });
  }
  void PostCount(size_t i) {
    AsioActor* a = actors[i].get();
    boost::asio::post(a->strand, [a] { ++a->count; });
  }
  void PostDone(size_t i, std::latch* done) {
    boost::asio::post(actors[i]->strand, [done] { done->count_down(); });
  }
};


#if KEEL_JOB_BENCH_CAF
// ---- CAF 0.17 event-based actors, scheduler limited to two threads ----

uintptr_t ToWord(std::latch* done) { return reinterpret_cast<uintptr_t>(done); }
std::latch* FromWord(uintptr_t word) { return reinterpret_cast<std::latch*>(word); }

caf::behavior CafPinger(caf::event_based_actor* self) {
  return {[self](int64_t n, uintptr_t done, caf::actor peer) {
    if (n == 0) {
      FromWord(done)->count_down();
      return;
    }
    self->send(peer, n - 1, done, caf::actor_cast<caf::actor>(self));
  }};
}

caf::behavior CafCounter(caf::event_based_actor*) {
  auto count = std::make_shared<uint64_t>(0);
  return {[count](int32_t) { ++*count; }, [](uintptr_t done) { FromWord(done)->count_down(); }};
}

struct CafSystem {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  std::vector<caf::actor> actors;
  std::vector<size_t> peer;
  bool pingers_ = false;

  explicit CafSystem(size_t n) : peer(n, 0) {
    config.set("scheduler.max-threads", static_cast<size_t>(kWorkers));
    system = std::make_unique<caf::actor_system>(config);
    Spawn(false);
  }
  ~CafSystem() {
    for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    actors.clear();
    system.reset();
  }
  // Counters by default (fan-in); the first Pair() swaps in pingers. Both
  // happen on the benchmark thread before any message is sent.
  void Spawn(bool pingers) {
    for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    actors.clear();
    for (size_t i = 0; i < peer.size(); ++i) {
      actors.push_back(pingers ? system->spawn(CafPinger) : system->spawn(CafCounter));
    }
    pingers_ = pingers;
  }
  void Pair(size_t a, size_t b) {
    if (!pingers_) Spawn(true);
    peer[a] = b;
    peer[b] = a;
  }
  void StartPing(size_t i, int64_t n, std::latch* done) {
    caf::anon_send(actors[i], n, ToWord(done), actors[peer[i]]);
  }
  void PostCount(size_t i) {
    caf::anon_send(actors[i], int32_t{1});
  }
  void PostDone(size_t i, std::latch* done) { caf::anon_send(actors[i], ToWord(done)); }
};
#endif


// ---- timers: cost per operation with 100k pending ----

constexpr int kPendingTimers = 100'000;

struct TimerFixture {
  keel::job::ManualClock clock;
  keel::job::Scheduler scheduler{[] {
    keel::job::SchedulerOptions options;
    options.groups = {{.name = "logic", .threads = 1, .cpus = {}}};
    return options;
  }()};
  std::shared_ptr<KeelActor> actor =
      std::make_shared<KeelActor>(scheduler.Group("logic"), "timers");
  keel::job::JobTimer timer{clock};
  TimerFixture() {
    for (int i = 0; i < kPendingTimers; ++i) {
      timer.After(actor, std::chrono::hours(1) + std::chrono::microseconds(i), [] {});
    }
  }
};

// After() + Cancel() of one timer while 100k others are pending: O(log n) push,
// O(1) cancel, plus the amortized O(n) compaction of cancelled entries.
void TimerAddCancel(benchmark::State& state) {
  TimerFixture f;
  for (auto _ : state) {
    keel::job::TimerHandle h = f.timer.After(f.actor, std::chrono::minutes(1), [] {});
    h.Cancel();
  }
  state.counters["pending"] = static_cast<double>(f.timer.Pending());
}

// After() + RunDue() firing it (pop, weak_ptr lock, post to the actor) while
// 100k others are pending.
void TimerAddFire(benchmark::State& state) {
  TimerFixture f;
  for (auto _ : state) {
    f.timer.After(f.actor, std::chrono::nanoseconds(1), [] {});
    f.clock.Advance(std::chrono::nanoseconds(1));
    benchmark::DoNotOptimize(f.timer.RunDue());
  }
  state.counters["pending"] = static_cast<double>(f.timer.Pending());
}

// After() + Cancel() with delays spread from 1 s to 2 h (a game server's mix of
// request timeouts, cooldowns and respawns), so a tree or heap cannot stay at
// its hot leftmost edge.
std::vector<int64_t> SpreadDelaysNs() {
  std::vector<int64_t> delays(4096);
  uint64_t x = 0x9e3779b97f4a7c15;
  for (int64_t& d : delays) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d = 1'000'000'000 + static_cast<int64_t>(x % 7'200'000'000'000);
  }
  return delays;
}

void TimerAddCancelSpread(benchmark::State& state) {
  TimerFixture f;
  const std::vector<int64_t> delays = SpreadDelaysNs();
  std::size_t i = 0;
  for (auto _ : state) {
    keel::job::TimerHandle h = f.timer.After(
        f.actor, std::chrono::nanoseconds(delays[i++ & (delays.size() - 1)]), [] {});
    h.Cancel();
  }
  state.counters["pending"] = static_cast<double>(f.timer.Pending());
}

// The same operations on a std::multimap keyed by due time (erase by
// iterator to cancel), the usual hand-rolled timer queue.
void MultimapAddCancel(benchmark::State& state) {
  std::multimap<int64_t, keel::job::Job> timers;
  for (int i = 0; i < kPendingTimers; ++i) timers.emplace(3'600'000'000'000 + i, [] {});
  for (auto _ : state) {
    auto it = timers.emplace(60'000'000'000, [] {});
    timers.erase(it);
  }
}
void MultimapAddCancelSpread(benchmark::State& state) {
  std::multimap<int64_t, keel::job::Job> timers;
  for (int i = 0; i < kPendingTimers; ++i) timers.emplace(3'600'000'000'000 + i, [] {});
  const std::vector<int64_t> delays = SpreadDelaysNs();
  std::size_t i = 0;
  for (auto _ : state) {
    auto it = timers.emplace(delays[i++ & (delays.size() - 1)], [] {});
    timers.erase(it);
  }
}
void MultimapAddFire(benchmark::State& state) {
  std::multimap<int64_t, keel::job::Job> timers;
  for (int i = 0; i < kPendingTimers; ++i) timers.emplace(3'600'000'000'000 + i, [] {});
  int64_t now = 0;
  for (auto _ : state) {
    timers.emplace(++now, [] {});
    auto it = timers.begin();
    keel::job::Job job = std::move(it->second);
    timers.erase(it);
    job();
  }
}

// ---- the two workloads, generic over the system ----

template <typename System>
void Finish(benchmark::State& state, int64_t cpu_ns) {
  const double jobs = static_cast<double>(state.iterations() * kJobsPerIteration);
  state.SetItemsProcessed(state.iterations() * kJobsPerIteration);
  state.counters["jobs_per_s"] = benchmark::Counter(jobs, benchmark::Counter::kIsRate);
  state.counters["cpu_ns_per_job"] = static_cast<double>(cpu_ns) / jobs;
}

// `pairs` pairs of actors bounce one message each way until every pair has
// moved kJobsPerIteration / pairs messages.
template <typename System>
void PingPong(benchmark::State& state, size_t pairs) {
  System system(pairs * 2);
  for (size_t p = 0; p < pairs; ++p) system.Pair(2 * p, 2 * p + 1);
  const int64_t per_pair = kJobsPerIteration / static_cast<int64_t>(pairs);
  int64_t cpu_ns = 0;
  for (auto _ : state) {
    std::latch done(static_cast<std::ptrdiff_t>(pairs));
    const int64_t cpu0 = ProcessCpuNs();
    for (size_t p = 0; p < pairs; ++p) system.StartPing(2 * p, per_pair - 1, &done);
    done.wait();
    cpu_ns += ProcessCpuNs() - cpu0;
  }
  Finish<System>(state, cpu_ns);
}

// Two producer threads post kJobsPerIteration / 2 jobs each, round-robin over
// `actors` actors; then one marker per actor tells the waiter all have run.
template <typename System>
void FanIn(benchmark::State& state, size_t n) {
  System system(n);
  int64_t cpu_ns = 0;
  for (auto _ : state) {
    const int64_t cpu0 = ProcessCpuNs();
    std::vector<std::thread> producers;
    for (size_t p = 0; p < 2; ++p) {
      producers.emplace_back([&system, n, p] {
        size_t next = p % n;
        for (int64_t i = 0; i < kJobsPerIteration / 2; ++i) {
          system.PostCount(next);
          if (++next == n) next = 0;
        }
      });
    }
    for (auto& t : producers) t.join();
    std::latch done(static_cast<std::ptrdiff_t>(n));
    for (size_t i = 0; i < n; ++i) system.PostDone(i, &done);
    done.wait();
    cpu_ns += ProcessCpuNs() - cpu0;
  }
  Finish<System>(state, cpu_ns);
}

template <typename System>
void Register(const std::string& impl) {
  for (size_t pairs : {size_t{1}, size_t{100}}) {
    benchmark::RegisterBenchmark(("pingpong/" + impl + "/pairs:" + std::to_string(pairs)).c_str(),
                                 PingPong<System>, pairs)
        ->UseRealTime()
        ->MeasureProcessCPUTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (size_t actors : {size_t{1}, size_t{1000}}) {
    benchmark::RegisterBenchmark(("fanin/" + impl + "/actors:" + std::to_string(actors)).c_str(),
                                 FanIn<System>, actors)
        ->UseRealTime()
        ->MeasureProcessCPUTime()
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("baseline.pingpong", "mutex_pool");
  benchmark::AddCustomContext("baseline.fanin", "mutex_pool");
  benchmark::AddCustomContext("jobs_per_iteration", std::to_string(kJobsPerIteration));
  benchmark::AddCustomContext("workers", std::to_string(kWorkers));
  benchmark::AddCustomContext("baseline.timer", "std_multimap");
  benchmark::RegisterBenchmark("timer/std_multimap/add_cancel:100k", MultimapAddCancel);
  benchmark::RegisterBenchmark("timer/std_multimap/add_cancel_spread:100k",
                               MultimapAddCancelSpread);
  benchmark::RegisterBenchmark("timer/std_multimap/add_fire:100k", MultimapAddFire);
  benchmark::RegisterBenchmark("timer/keel/add_cancel:100k", TimerAddCancel);
  benchmark::RegisterBenchmark("timer/keel/add_cancel_spread:100k", TimerAddCancelSpread);
  benchmark::RegisterBenchmark("timer/keel/add_fire:100k", TimerAddFire);
  Register<PoolSystem>("mutex_pool");
  Register<KeelSystem<20>>("keel");
  Register<KeelSystem<0>>("keel_nospin");
  Register<AsioSystem>("asio_strand");
#if KEEL_JOB_BENCH_CAF
  Register<CafSystem>("caf");
#else
  benchmark::AddCustomContext("caf", "not built: libcaf_core not found");
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
