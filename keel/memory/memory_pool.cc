#include "keel/memory/memory_pool.h"

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>

#include "keel/memory/internal/thread_cache.h"

#if defined(KEEL_STOMP)
#include "keel/memory/stomp_allocator.h"
#endif

namespace keel::memory {
namespace {

using internal::ClassCache;
using internal::Magazine;
using internal::PoolCache;

// Every block lies below 2^48 (checked per chunk in Carve) and is 16-aligned,
// so a head word keeps address >> 4 in its low 44 bits and a 20-bit
// generation above them (wraps after 2^20 pushes and pops of one list).
constexpr int kAddrBits = 48;
constexpr std::uint64_t kAddrMask = (std::uint64_t{1} << kAddrBits) - 1;
constexpr int kAlignShift = 4;
constexpr int kTagShift = kAddrBits - kAlignShift;
constexpr std::uint64_t kPackedMask = (std::uint64_t{1} << kTagShift) - 1;
// A link word (second word of a listed batch's head block): next batch's
// plain address in the low 48 bits, the batch's count in the upper 16.
constexpr int kCountShift = kAddrBits;
constexpr std::size_t kBatchBytes = 32 * 1024;

std::atomic<MemoryPool::PopHook> g_pop_hook{nullptr};
std::atomic<void*> g_pop_hook_arg{nullptr};

// One-entry lookup of this thread's cache: trivially destructible, so no TLS
// guard on the hot path. Keyed by pool id (never reused), so a new pool at a
// dead pool's address never matches the dead pool's cache.
struct HotCache {
  std::uint64_t pool_id;
  PoolCache* cache;
};
constinit thread_local HotCache t_hot{0, nullptr};

// No check: PopBatch packs a next-batch address it read from a block that
// another thread may already own and overwrite. Such a value can be any
// bits, and is harmless: the head's tag has moved on, so the CAS fails.
std::uint64_t PackUnchecked(std::uint64_t addr, std::uint64_t tag) noexcept {
  return ((addr & kAddrMask) >> kAlignShift) | (tag << kTagShift);  // Tag bits past 64 drop: wraps.
}
// `ptr`: a real block (aligned, below 2^48).
std::uint64_t Pack(void* ptr, std::uint64_t tag) noexcept {
  const std::uint64_t addr = reinterpret_cast<std::uintptr_t>(ptr);
  assert((addr & ~kAddrMask) == 0 && (addr & ((1u << kAlignShift) - 1)) == 0);
  return PackUnchecked(addr, tag);
}
void* PtrOf(std::uint64_t word) noexcept {
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>((word & kPackedMask) << kAlignShift));
}
std::uint64_t TagOf(std::uint64_t word) noexcept { return word >> kTagShift; }

// A block's words: [0] next block of its batch or magazine; [1], on the head
// block of a listed batch only, the next batch (low 48 bits) and this batch's
// count (upper 16 bits).
void* NextOf(void* block) noexcept {
  void* next;
  std::memcpy(&next, block, sizeof next);
  return next;
}
void SetNext(void* block, void* next) noexcept { std::memcpy(block, &next, sizeof next); }

// Reads a listed batch's link word. A popper that lost the race may read a
// block a new owner is already writing: the value is then stale and its CAS
// fails on the generation. That benign race is hidden from TSan here, and
// only here.
__attribute__((no_sanitize("thread"))) std::uint64_t LoadLink(const void* batch) noexcept {
  std::uint64_t link;
  std::memcpy(&link, static_cast<const std::byte*>(batch) + sizeof(void*), sizeof link);
  return link;
}
void StoreLink(void* batch, std::uint64_t link) noexcept {
  std::memcpy(static_cast<std::byte*>(batch) + sizeof(void*), &link, sizeof link);
}

void RaisePeak(std::atomic<std::size_t>& peak, std::size_t now) noexcept {
  std::size_t high = peak.load(std::memory_order_relaxed);
  while (now > high && !peak.compare_exchange_weak(high, now, std::memory_order_relaxed)) {
  }
}

}  // namespace

void internal::ForgetHotCache() noexcept { t_hot = HotCache{0, nullptr}; }

MemoryPool::MemoryPool(PoolOptions options)
    : options_(options), id_(internal::ThreadCaches::Register(*this)) {
  for (std::size_t c = 0; c < kClassCount; ++c) {
    const std::size_t fit = kBatchBytes >> (c + 4);
    const std::size_t batch = options_.max_batch < fit ? options_.max_batch : fit;
    batch_[c] = static_cast<std::uint32_t>(batch > 0xffff ? 0xffff : batch);
  }
}

MemoryPool::~MemoryPool() {
  internal::ThreadCaches::Unregister(*this);
  for (void* chunk : chunks_) std::free(chunk);
}

MemoryPool& MemoryPool::Default() {
  static MemoryPool* pool = new MemoryPool();
  return *pool;
}

std::size_t MemoryPool::BatchOf(std::size_t class_index) const noexcept {
  return batch_[class_index];
}

void MemoryPool::SetPopHookForTest(PopHook hook, void* arg) noexcept {
  g_pop_hook_arg.store(arg);
  g_pop_hook.store(hook);
}

void* MemoryPool::PopBatch(std::size_t class_index, std::uint32_t* count) {
  SizeClass& sc = classes_[class_index];
  // Acquire pairs with the release CAS in PushBatch: the batch's words are visible.
  std::uint64_t head = sc.head.load(std::memory_order_acquire);
  for (;;) {
    void* batch = PtrOf(head);
    if (batch == nullptr) {
      if (!Carve(class_index)) throw std::bad_alloc();
      head = sc.head.load(std::memory_order_acquire);
      continue;
    }
    // Always a mapped read: chunks live as long as the pool.
    const std::uint64_t link = LoadLink(batch);
    if (PopHook hook = g_pop_hook.load(std::memory_order_relaxed)) {
      hook(g_pop_hook_arg.load(std::memory_order_relaxed));
    }
    // Acquire on both outcomes pairs with PushBatch's release CAS.
    // `link` may be stale (see PackUnchecked): then this CAS fails.
    if (sc.head.compare_exchange_weak(head, PackUnchecked(link & kAddrMask, TagOf(head) + 1),
                                      std::memory_order_acquire, std::memory_order_acquire)) {
      *count = static_cast<std::uint32_t>(link >> kCountShift);
      RaisePeak(sc.peak, sc.off_shared.fetch_add(*count, std::memory_order_relaxed) + *count);
      return batch;
    }
  }
}

void MemoryPool::PushBatch(std::size_t class_index, void* first, std::uint32_t count) noexcept {
  // Counted back before it is listed, so off_shared never exceeds the blocks
  // really off the list (peak stays exact without caches).
  classes_[class_index].off_shared.fetch_sub(count, std::memory_order_relaxed);
  PushChain(class_index, first, count);
}

void MemoryPool::PushChain(std::size_t class_index, void* first, std::uint32_t count) noexcept {
  SizeClass& sc = classes_[class_index];
  std::uint64_t head = sc.head.load(std::memory_order_relaxed);
  for (;;) {
    StoreLink(first, reinterpret_cast<std::uintptr_t>(PtrOf(head)) |
                         (std::uint64_t{count} << kCountShift));
    // Release pairs with the acquire load/CAS in PopBatch, publishing the
    // batch's words (chain and link).
    if (sc.head.compare_exchange_weak(head, Pack(first, TagOf(head) + 1),
                                      std::memory_order_release, std::memory_order_relaxed)) {
      return;
    }
  }
}

bool MemoryPool::Carve(std::size_t class_index) {
  const std::size_t block = std::size_t{16} << class_index;
  const std::size_t bytes = options_.chunk_bytes < block ? block : options_.chunk_bytes;
  void* chunk = std::aligned_alloc(16, bytes - bytes % 16);
  if (chunk == nullptr) return false;
  // Head and link words hold addresses below 2^48 only. malloc stays there
  // unless asked for more (5-level paging maps above 2^47 only on a hint);
  // a chunk above would corrupt the lists, so refuse it instead.
  if (((reinterpret_cast<std::uintptr_t>(chunk) + bytes) & ~kAddrMask) != 0) {
    std::free(chunk);
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(chunks_mu_);
    chunks_.push_back(chunk);
  }
  SizeClass& sc = classes_[class_index];
  auto* base = static_cast<std::byte*>(chunk);
  const std::size_t total = bytes / block;
  const std::size_t per_batch = batch_[class_index] == 0 ? 1 : batch_[class_index];
  for (std::size_t first = 0; first < total; first += per_batch) {
    const std::size_t n = total - first < per_batch ? total - first : per_batch;
    for (std::size_t i = 0; i < n; ++i) {
      SetNext(base + (first + i) * block, i + 1 < n ? base + (first + i + 1) * block : nullptr);
    }
    // Counted as carved (and so as shared_cached) one batch at a time, just
    // before it is listed; blocks not yet listed were never off the list, so
    // off_shared and peak do not see them.
    sc.carved.fetch_add(n, std::memory_order_relaxed);
    PushChain(class_index, base + first * block, static_cast<std::uint32_t>(n));
  }
  return true;
}

// Uncached path: pools without thread caches, and threads whose caches are
// already gone (thread_local destructors running at exit).
void* MemoryPool::AllocateShared(std::size_t class_index) {
  std::uint32_t count = 0;
  void* block = PopBatch(class_index, &count);
  if (count > 1) PushBatch(class_index, NextOf(block), count - 1);
  classes_[class_index].allocs.fetch_add(1, std::memory_order_relaxed);
  return block;
}

void MemoryPool::DeallocateShared(std::size_t class_index, void* ptr) noexcept {
  classes_[class_index].frees.fetch_add(1, std::memory_order_relaxed);
  SetNext(ptr, nullptr);
  PushBatch(class_index, ptr, 1);
}

inline PoolCache* MemoryPool::LocalCache() noexcept {
  if (t_hot.pool_id == id_) [[likely]] return t_hot.cache;
  return LocalCacheSlow();
}

PoolCache* MemoryPool::LocalCacheSlow() noexcept {
  if (options_.max_batch == 0) return nullptr;
  PoolCache* cache = internal::ThreadCaches::Find(*this);
  if (cache != nullptr) t_hot = HotCache{id_, cache};
  return cache;
}

// Slow paths: first use of the pool on this thread, an empty or full
// magazine, or no cache at all.
void* MemoryPool::AllocateSlow(std::size_t index) {
  PoolCache* cache = LocalCache();
  if (cache == nullptr) return AllocateShared(index);
  ClassCache& cc = cache->classes[index];
  Magazine& mag = cc.current;
  if (mag.count == 0) {
    if (cc.spare.count != 0) {
      mag = cc.spare;
      cc.spare = Magazine{};
    } else {
      mag.head = PopBatch(index, &mag.count);
      internal::Bump(cc.got, mag.count);
    }
  }
  void* block = mag.Pop();
  internal::Bump(cc.allocs, 1);
  return block;
}

void MemoryPool::DeallocateSlow(std::size_t index, void* ptr) noexcept {
  PoolCache* cache = LocalCache();
  if (cache == nullptr) return DeallocateShared(index, ptr);
  ClassCache& cc = cache->classes[index];
  Magazine& mag = cc.current;
  if (mag.count == batch_[index]) {
    if (cc.spare.count != 0) {
      PushBatch(index, cc.spare.head, cc.spare.count);
      internal::Bump(cc.given, cc.spare.count);
    }
    cc.spare = mag;
    mag = Magazine{};
  }
  mag.Push(ptr);
  internal::Bump(cc.frees, 1);
}

void* MemoryPool::Allocate(std::size_t size) {
  if (size > kMaxBlock) {
    void* p = std::malloc(size);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  const std::size_t index = ClassOf(size);
#if defined(KEEL_STOMP)
  // Stomp build: every pooled block gets its own pages against a guard page,
  // and freed blocks are never reused, so use-after-free and overflow fault.
  void* stomped = StompAllocator::Allocate(size);
  SizeClass& sc = classes_[index];
  sc.allocs.fetch_add(1, std::memory_order_relaxed);
  RaisePeak(sc.peak, sc.off_shared.fetch_add(1, std::memory_order_relaxed) + 1);
  return stomped;
#else
  // Fast path: this thread's cache for this pool, a non-empty magazine.
  if (t_hot.pool_id == id_) [[likely]] {
    ClassCache& cc = t_hot.cache->classes[index];
    Magazine& mag = cc.current;
    if (mag.count != 0) [[likely]] {
      void* block = mag.Pop();
      internal::Bump(cc.allocs, 1);
      return block;
    }
  }
  return AllocateSlow(index);
#endif
}

void MemoryPool::Deallocate(void* ptr, std::size_t size) noexcept {
  if (ptr == nullptr) return;
  if (size > kMaxBlock) {
    std::free(ptr);
    return;
  }
  const std::size_t index = ClassOf(size);
#if defined(KEEL_STOMP)
  SizeClass& sc = classes_[index];
  sc.frees.fetch_add(1, std::memory_order_relaxed);
  sc.off_shared.fetch_sub(1, std::memory_order_relaxed);
  StompAllocator::Deallocate(ptr, size);
#else
  if (t_hot.pool_id == id_) [[likely]] {
    ClassCache& cc = t_hot.cache->classes[index];
    Magazine& mag = cc.current;
    if (mag.count != batch_[index]) [[likely]] {
      mag.Push(ptr);
      internal::Bump(cc.frees, 1);
      return;
    }
  }
  DeallocateSlow(index, ptr);
#endif
}

void internal::PoolCache::Flush(MemoryPool& owner) noexcept {
  for (std::size_t c = 0; c < MemoryPool::kClassCount; ++c) {
    ClassCache& cc = classes[c];
    for (Magazine* mag : {&cc.current, &cc.spare}) {
      if (mag->count == 0) continue;
      owner.PushBatch(c, mag->head, mag->count);
      Bump(cc.given, mag->count);
      *mag = Magazine{};
    }
  }
}

void MemoryPool::FlushThreadCache() noexcept {
  // Never creates a cache: a thread that did not use this pool has nothing to flush.
  PoolCache* cache =
      t_hot.pool_id == id_ ? t_hot.cache : internal::ThreadCaches::FindExisting(*this);
  if (cache != nullptr) cache->Flush(*this);
}

ClassStats MemoryPool::Stats(std::size_t class_index) const {
  const SizeClass& sc = classes_[class_index];
  ClassStats stats;
  stats.block_size = std::size_t{16} << class_index;
  stats.batch = batch_[class_index];
  stats.carved = sc.carved.load(std::memory_order_relaxed);
  const std::size_t off = sc.off_shared.load(std::memory_order_relaxed);
  stats.shared_cached = off < stats.carved ? stats.carved - off : 0;
  stats.peak = sc.peak.load(std::memory_order_relaxed);
  internal::ThreadCaches::SumInto(*this, class_index, stats);
  stats.cached = stats.thread_cached + stats.shared_cached;
  return stats;
}

}  // namespace keel::memory
