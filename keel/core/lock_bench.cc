// SpinLock vs std::mutex, RwLock vs std::shared_mutex, and the cost of the
// DeadlockDetector. Names read group/impl/case; bench/compare.py pairs each
// impl with the group's baseline (recorded in the run's context) and prints
// the ratio of CPU time per operation. See docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "keel/core/deadlock_detector.h"
#include "keel/core/lock_guard.h"
#include "keel/core/rw_lock.h"
#include "keel/core/spin_lock.h"

namespace {

using keel::core::DeadlockDetector;

// Shared state the critical sections touch: a few cache lines of work, as a
// session table or free-list splice would.
struct alignas(64) Shared {
  uint64_t values[8] = {};
};

template <typename Mutex>
void Exclusive(benchmark::State& state, Mutex& mu, Shared& shared) {
  for (auto _ : state) {
    std::lock_guard lock(mu);
    for (auto& v : shared.values) ++v;
  }
  state.SetItemsProcessed(state.iterations());
}

// Every 1/write_every operations writes; the rest read.
template <typename Mutex>
void ReadMostly(benchmark::State& state, Mutex& mu, Shared& shared, uint32_t write_every) {
  uint32_t i = static_cast<uint32_t>(state.thread_index());
  uint64_t sum = 0;
  for (auto _ : state) {
    if (++i % write_every == 0) {
      std::unique_lock lock(mu);
      for (auto& v : shared.values) ++v;
    } else {
      std::shared_lock lock(mu);
      for (const auto& v : shared.values) sum += v;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}

template <typename Mutex>
void RegisterLock(const std::string& impl) {
  static Mutex mu;
  static Shared shared;
  for (int threads : {1, 2, 4}) {
    const std::string name = "lock/" + impl;
    benchmark::RegisterBenchmark(name.c_str(), [](benchmark::State& s) { Exclusive(s, mu, shared); })
        ->Threads(threads);
  }
}

template <typename Mutex>
void RegisterRw(const std::string& impl) {
  static Mutex mu;
  static Shared shared;
  for (const auto& mix : {std::pair{"read95", 20u}, std::pair{"read50", 2u}}) {
    const char* label = mix.first;
    const uint32_t write_every = mix.second;
    for (int threads : {1, 2, 4}) {
      const std::string name =
          std::string("rwlock_") + label + "/" + impl;
      benchmark::RegisterBenchmark(name.c_str(), [write_every](benchmark::State& s) {
        ReadMostly(s, mu, shared, write_every);
      })->Threads(threads);
    }
  }
}

// Detector cost: one lock, and two nested locks (an edge check per pair).
void Detector(benchmark::State& state, bool on, bool nested) {
  static keel::core::SpinLock outer("bench-outer");
  static keel::core::SpinLock inner("bench-inner");
  const bool was = DeadlockDetector::Enabled();
  DeadlockDetector::SetEnabled(on);
  uint64_t n = 0;
  for (auto _ : state) {
    keel::core::LockGuard a(outer);
    if (nested) {
      keel::core::LockGuard b(inner);
      benchmark::DoNotOptimize(++n);
    } else {
      benchmark::DoNotOptimize(++n);
    }
  }
  DeadlockDetector::SetEnabled(was);
  state.SetItemsProcessed(state.iterations());
}

void RegisterDetector() {
  for (bool on : {false, true}) {
    for (bool nested : {false, true}) {
      const std::string name = std::string("detector/") + (on ? "on" : "off") + "/" +
                               (nested ? "nested2" : "single");
      benchmark::RegisterBenchmark(name.c_str(),
                                   [on, nested](benchmark::State& s) { Detector(s, on, nested); });
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Lock benchmarks compare the locks alone; the detector group switches it.
  DeadlockDetector::SetEnabled(false);
  RegisterLock<keel::core::SpinLock>("SpinLock");
  RegisterLock<std::mutex>("std_mutex");
  RegisterRw<keel::core::RwLock>("RwLock");
  RegisterRw<std::shared_mutex>("std_shared_mutex");
  RegisterDetector();
  benchmark::AddCustomContext("baseline.lock", "std_mutex");
  benchmark::AddCustomContext("baseline.rwlock_read95", "std_shared_mutex");
  benchmark::AddCustomContext("baseline.rwlock_read50", "std_shared_mutex");
  benchmark::AddCustomContext("baseline.detector", "off");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
