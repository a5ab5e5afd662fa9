// MemoryPool against glibc malloc (the baseline), jemalloc and mimalloc.
// Names read pool/<impl>/<case>; bench/compare.py prints the CPU-time ratio
// to glibc. Cases (single thread):
//   hot64, hot4096: one allocation and its free per iteration;
//   batch64:        1000 allocations of 64 B, then their 1000 frees, per
//                   iteration (divide by 2000 for ns per operation);
//   cross64:        1000 allocations of 64 B on the benchmark thread, then
//                   their 1000 frees on a second thread, per iteration
//                   (divide by 1000 for ns per block). Process CPU time, so
//                   both threads count; the benchmark thread is pinned to the
//                   first CPU of the process's affinity set and the freer to
//                   the last (taskset -c 1: same core; -c 0,1: two cores).
// keel_nocache is a MemoryPool without thread caches (max_batch 0): one CAS
// per allocate and per free, as before the caches.
// Debian's libjemalloc exports unprefixed malloc, so linking it would replace
// glibc's for the whole process: it is dlopen'ed RTLD_LOCAL instead and only
// mallocx/sdallocx are used. Debian's libmimalloc.so exports malloc too
// (it overrides when linked), so it is dlopen'ed the same way for
// mi_malloc/mi_free. A check at start-up fails the run if malloc is not
// glibc's.
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "keel/memory/memory_pool.h"

namespace {

using MallocX = void* (*)(std::size_t, int);
using SdallocX = void (*)(void*, std::size_t, int);

using MiMallocFn = void* (*)(std::size_t);
using MiFreeFn = void (*)(void*);

void* Sym(const char* lib_name, const char* name) {
  void* lib = dlopen(lib_name, RTLD_NOW | RTLD_LOCAL);
  void* sym = lib == nullptr ? nullptr : dlsym(lib, name);
  if (sym == nullptr) {
    std::fprintf(stderr, "%s:%s: %s\n", lib_name, name, dlerror());
    std::abort();
  }
  return sym;
}

struct Peers {
  MallocX mallocx = reinterpret_cast<MallocX>(Sym("libjemalloc.so.2", "mallocx"));
  SdallocX sdallocx = reinterpret_cast<SdallocX>(Sym("libjemalloc.so.2", "sdallocx"));
  MiMallocFn mi_malloc = reinterpret_cast<MiMallocFn>(Sym("libmimalloc.so.2", "mi_malloc"));
  MiFreeFn mi_free = reinterpret_cast<MiFreeFn>(Sym("libmimalloc.so.2", "mi_free"));
};

const Peers& Lib() {
  static const Peers peers;
  return peers;
}

struct Glibc {
  static void* Alloc(std::size_t n) { return std::malloc(n); }
  static void Free(void* p, std::size_t) { std::free(p); }
};
struct JeMalloc {
  static void* Alloc(std::size_t n) { return Lib().mallocx(n, 0); }
  static void Free(void* p, std::size_t n) { Lib().sdallocx(p, n, 0); }
};
struct MiMalloc {
  static void* Alloc(std::size_t n) { return Lib().mi_malloc(n); }
  static void Free(void* p, std::size_t) { Lib().mi_free(p); }
};
struct Keel {
  static void* Alloc(std::size_t n) { return keel::memory::MemoryPool::Default().Allocate(n); }
  static void Free(void* p, std::size_t n) { keel::memory::MemoryPool::Default().Deallocate(p, n); }
};

struct KeelNoCache {
  static keel::memory::MemoryPool& Pool() {
    static auto* pool = new keel::memory::MemoryPool(keel::memory::PoolOptions{.max_batch = 0});
    return *pool;
  }
  static void* Alloc(std::size_t n) { return Pool().Allocate(n); }
  static void Free(void* p, std::size_t n) { Pool().Deallocate(p, n); }
};

void PinTo(pthread_t thread, std::size_t cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  pthread_setaffinity_np(thread, sizeof one, &one);
}

// First and last CPU the process may run on (its taskset).
std::pair<std::size_t, std::size_t> AllowedEnds() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  std::size_t first = CPU_SETSIZE;
  std::size_t last = 0;
  for (std::size_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    if (first == CPU_SETSIZE) first = cpu;
    last = cpu;
  }
  return {first, last};
}

template <typename A>
void CrossThread(benchmark::State& state) {
  constexpr std::uint64_t kStop = ~std::uint64_t{0};
  std::array<void*, 1000> blocks{};
  // posted: round number published by the benchmark thread; freed: the last
  // round the freer finished. Release/acquire pairs publish the block array.
  std::atomic<std::uint64_t> posted{0};
  std::atomic<std::uint64_t> freed{0};
  const auto [first_cpu, last_cpu] = AllowedEnds();
  PinTo(pthread_self(), first_cpu);
  std::thread freer([&, cpu = last_cpu] {
    PinTo(pthread_self(), cpu);
    std::uint64_t seen = 0;
    for (;;) {
      posted.wait(seen, std::memory_order_acquire);
      seen = posted.load(std::memory_order_acquire);
      if (seen == kStop) return;
      for (void* b : blocks) A::Free(b, 64);
      freed.store(seen, std::memory_order_release);
      freed.notify_one();
    }
  });
  std::uint64_t round = 0;
  for (auto _ : state) {
    for (auto& b : blocks) b = A::Alloc(64);
    benchmark::DoNotOptimize(blocks.data());
    posted.store(++round, std::memory_order_release);
    posted.notify_one();
    for (std::uint64_t done = freed.load(std::memory_order_acquire); done != round;
         done = freed.load(std::memory_order_acquire)) {
      freed.wait(done, std::memory_order_acquire);
    }
  }
  posted.store(kStop, std::memory_order_release);
  posted.notify_one();
  freer.join();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(blocks.size()));
}

template <typename A>
void Hot(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = A::Alloc(size);
    benchmark::DoNotOptimize(p);
    A::Free(p, size);
  }
}

template <typename A>
void Batch(benchmark::State& state) {
  std::array<void*, 1000> blocks{};
  for (auto _ : state) {
    for (auto& b : blocks) b = A::Alloc(64);
    benchmark::DoNotOptimize(blocks.data());
    for (void* b : blocks) A::Free(b, 64);
  }
}

template <typename A>
void Register(const char* impl) {
  const std::string base = std::string("pool/") + impl + "/";
  benchmark::RegisterBenchmark((base + "hot64").c_str(), Hot<A>)->Arg(64);
  benchmark::RegisterBenchmark((base + "hot4096").c_str(), Hot<A>)->Arg(4096);
  benchmark::RegisterBenchmark((base + "batch64").c_str(), Batch<A>);
  benchmark::RegisterBenchmark((base + "cross64").c_str(), CrossThread<A>)->MeasureProcessCPUTime();
}

}  // namespace

int main(int argc, char** argv) {
  Lib();
  // The process's malloc must still be glibc's (nothing interposed it).
  void* global_malloc = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info{};
  if (global_malloc == nullptr || dladdr(global_malloc, &info) == 0 ||
      std::string(info.dli_fname).find("libc.so") == std::string::npos) {
    std::fprintf(stderr, "malloc is not glibc's (%s)\n", info.dli_fname ? info.dli_fname : "?");
    return 1;
  }
  benchmark::AddCustomContext("baseline.pool", "glibc");
  Register<Glibc>("glibc");
  Register<JeMalloc>("jemalloc");
  Register<MiMalloc>("mimalloc");
  Register<Keel>("keel");
  Register<KeelNoCache>("keel_nocache");
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
