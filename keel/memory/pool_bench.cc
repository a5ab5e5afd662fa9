// MemoryPool against glibc malloc (the baseline), jemalloc and mimalloc.
// Names read pool/<impl>/<case>; bench/compare.py prints the CPU-time ratio
// to glibc. Cases (single thread):
//   hot64, hot4096: one allocation and its free per iteration;
//   batch64:        1000 allocations of 64 B, then their 1000 frees, per
//                   iteration (divide by 2000 for ns per operation).
// Debian's libjemalloc exports unprefixed malloc, so linking it would replace
// glibc's for the whole process: it is dlopen'ed RTLD_LOCAL instead and only
// mallocx/sdallocx are used. Debian's libmimalloc.so exports malloc too
// (it overrides when linked), so it is dlopen'ed the same way for
// mi_malloc/mi_free. A check at start-up fails the run if malloc is not
// glibc's.
// Cross-thread free is not measured yet (docs/memory.md).
#include <dlfcn.h>

#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

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
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
