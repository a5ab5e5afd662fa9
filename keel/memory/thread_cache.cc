// Per-thread caches of MemoryPool: the registry, first use, thread exit.
// Design and ownership: internal/thread_cache.h and docs/memory.md.
#include "keel/memory/internal/thread_cache.h"

#include <algorithm>
#include <new>

#include "keel/core/mutex.h"

namespace keel::memory::internal {
namespace {

// Trivially destructible, so it stays readable after ThreadCaches died: an
// allocation from a later thread_local destructor then takes the uncached path.
enum class Phase : std::uint8_t { kUnborn, kLive, kGone };
constinit thread_local Phase t_phase = Phase::kUnborn;

struct Registry {
  core::Mutex mu{"memory-pool-registry"};
  std::uint64_t next_id KEEL_GUARDED_BY(mu) = 1;
};

// Never destroyed: threads may exit, and pools die, during static destruction.
Registry& Reg() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

std::uint64_t ThreadCaches::Register(MemoryPool& /*pool*/) {
  core::MutexLock lock(Reg().mu);
  return Reg().next_id++;
}

void ThreadCaches::Unregister(MemoryPool& pool) noexcept {
  core::MutexLock lock(Reg().mu);
  // The owning threads drop these caches without touching their blocks,
  // which die with the pool's chunks.
  for (PoolCache* cache : pool.caches_) cache->pool = nullptr;
  pool.caches_.clear();
}

ThreadCaches::ThreadCaches() noexcept { t_phase = Phase::kLive; }

ThreadCaches::~ThreadCaches() {
  t_phase = Phase::kGone;
  ForgetHotCache();
  core::MutexLock lock(Reg().mu);
  for (PoolCache* cache : caches_) {
    if (MemoryPool* pool = cache->pool) {
      cache->Flush(*pool);
      for (std::size_t c = 0; c < MemoryPool::kClassCount; ++c) {
        // The pool keeps this thread's totals so in_use still adds up.
        pool->classes_[c].allocs.fetch_add(cache->classes[c].allocs.load(std::memory_order_relaxed),
                                           std::memory_order_relaxed);
        pool->classes_[c].frees.fetch_add(cache->classes[c].frees.load(std::memory_order_relaxed),
                                          std::memory_order_relaxed);
      }
      std::erase(pool->caches_, cache);
    }
    delete cache;
  }
}

ThreadCaches& ThreadCaches::Local() {
  thread_local ThreadCaches caches;
  return caches;
}

PoolCache* ThreadCaches::FindExisting(const MemoryPool& pool) noexcept {
  if (t_phase != Phase::kLive) return nullptr;  // kUnborn: no cache at all.
  for (PoolCache* cache : Local().caches_) {
    if (cache->pool_id == pool.id_) return cache;
  }
  return nullptr;
}

std::size_t ThreadCaches::CountForTest(const MemoryPool& pool) {
  core::MutexLock lock(Reg().mu);
  return pool.caches_.size();
}

// First use during teardown: a thread whose first pool use is in one of its
// thread_local destructors gets a ThreadCaches that glibc still destroys
// (__call_tls_dtors runs destructors registered while it runs). The thread
// that calls exit() is different: exit() runs its thread_local destructors
// first, then atexit handlers and static destructors; a first use there
// builds a ThreadCaches whose destructor never runs. Its blocks (at most
// 2 x batch per class) stay in that cache, counted as thread_cached, until
// the process ends; a pool destroyed meanwhile marks the cache dead as usual.
// Nothing portable tells this moment apart, so it is accepted (documented in
// docs/memory.md, "Ownership and reclamation").
PoolCache* ThreadCaches::Find(MemoryPool& pool) {
  if (t_phase == Phase::kGone) return nullptr;
  if (PoolCache* cache = FindExisting(pool)) return cache;
  ThreadCaches& caches = Local();
  auto* cache = new (std::nothrow) PoolCache();
  if (cache == nullptr) return nullptr;
  cache->pool_id = pool.id_;
  cache->pool = &pool;
  core::MutexLock lock(Reg().mu);
  // Drop caches of pools destroyed since (their pool cleared the pointer).
  std::erase_if(caches.caches_, [](PoolCache* dead) {
    if (dead->pool != nullptr) return false;
    delete dead;
    return true;
  });
  try {
    caches.caches_.reserve(caches.caches_.size() + 1);
    pool.caches_.reserve(pool.caches_.size() + 1);
  } catch (const std::bad_alloc&) {
    delete cache;
    return nullptr;  // The caller takes the uncached path.
  }
  caches.caches_.push_back(cache);
  pool.caches_.push_back(cache);
  return cache;
}

void ThreadCaches::SumInto(const MemoryPool& pool, std::size_t class_index, ClassStats& stats) {
  const MemoryPool::SizeClass& sc = pool.classes_[class_index];
  core::MutexLock lock(Reg().mu);
  auto allocs = static_cast<std::int64_t>(sc.allocs.load(std::memory_order_relaxed));
  auto frees = static_cast<std::int64_t>(sc.frees.load(std::memory_order_relaxed));
  std::int64_t cached = 0;
  for (const PoolCache* cache : pool.caches_) {
    const ClassCache& cc = cache->classes[class_index];
    const auto a = static_cast<std::int64_t>(cc.allocs.load(std::memory_order_relaxed));
    const auto f = static_cast<std::int64_t>(cc.frees.load(std::memory_order_relaxed));
    const auto got = static_cast<std::int64_t>(cc.got.load(std::memory_order_relaxed));
    const auto given = static_cast<std::int64_t>(cc.given.load(std::memory_order_relaxed));
    allocs += a;
    frees += f;
    cached += std::max<std::int64_t>(0, got + f - given - a);
  }
  // Counters of running threads are read one by one: clamp torn sums.
  stats.in_use = static_cast<std::size_t>(std::max<std::int64_t>(0, allocs - frees));
  stats.thread_cached = static_cast<std::size_t>(cached);
}

}  // namespace keel::memory::internal
