#pragma once
// MemoryPool: size-classed pool for small blocks (16 B .. 4 KiB); larger
// requests go to the system allocator.
//
// Threading: every method may be called from any thread; a block may be freed
// on a thread other than the one that allocated it (it then goes to the
// freeing thread's cache). Each thread keeps, per pool and size class, a
// bounded cache of two magazines (current + spare) of up to BatchOf(class)
// blocks; an empty cache refills by popping one batch from the class's shared
// lock-free list (one CAS), a cache with both magazines full flushes the
// spare as one batch (one CAS). A thread's caches go back to the shared lists
// when it exits; a pool destroyed first is never touched by them (ownership:
// docs/memory.md, "Thread caches").
//
// Reclamation / ABA on the shared lists: the head is a tagged 64-bit word,
// the batch address >> 4 in the low 44 bits (blocks are 16-aligned and below
// 2^48, which Carve checks per chunk) and a 20-bit generation above it,
// bumped by every successful push and pop. Chunks are never returned to the
// OS while the pool lives, so reading a listed batch's link is always a
// mapped read (possibly stale, then the CAS fails).
//
// Debug builds with the CMake option KEEL_STOMP send every pooled block to
// StompAllocator (guard pages, never reused) instead of caches and lists.

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace keel::memory {

namespace internal {
struct PoolCache;
class ThreadCaches;
}  // namespace internal

struct PoolOptions {
  std::size_t chunk_bytes = 64 * 1024;  // Carved into blocks of one class.
  // Most blocks moved between a thread cache and the shared list at once; a
  // class's batch is also capped at 32 KiB of blocks (4 KiB: 8). A thread
  // caches at most two batches per class. 0: no thread caches, every
  // allocate and free is one CAS on the shared list.
  std::size_t max_batch = 32;
};

// One size class at one moment. Counters of other threads are read without
// stopping them: exact when the pool is quiescent, a close snapshot otherwise.
struct ClassStats {
  std::size_t block_size = 0;
  std::size_t batch = 0;          // BatchOf(class); 0 without thread caches.
  std::size_t in_use = 0;         // Handed out, not yet freed.
  std::size_t thread_cached = 0;  // Free, in the caches of live threads.
  std::size_t shared_cached = 0;  // Free, on the shared list.
  std::size_t cached = 0;         // thread_cached + shared_cached.
  // Highest number of blocks ever off the shared list (in use + in thread
  // caches); a block counts from its pop until just before its push, and
  // freshly carved blocks never count. Without thread caches (max_batch 0)
  // that is the exact in-use peak, also while threads race; with them it
  // exceeds the in-use peak by at most what the caches held then (2 x batch
  // per thread).
  std::size_t peak = 0;
  std::size_t carved = 0;  // Blocks cut from chunks so far.
};

class MemoryPool {
 public:
  static constexpr std::size_t kMaxBlock = 4096;
  static constexpr std::size_t kClassCount = 9;  // 16, 32, ..., 4096.

  explicit MemoryPool(PoolOptions options = {});
  // Blocks still in use or cached by live threads die with the chunks; those
  // threads' caches for this pool are marked dead and dropped untouched.
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  // The process-wide pool; never destroyed.
  static MemoryPool& Default();

  void* Allocate(std::size_t size);
  // `size` must be the size passed to Allocate.
  void Deallocate(void* ptr, std::size_t size) noexcept;

  ClassStats Stats(std::size_t class_index) const;
  static std::size_t ClassOf(std::size_t size) noexcept {
    return size <= 16 ? 0 : static_cast<std::size_t>(std::bit_width(size - 1)) - 4;
  }
  std::size_t BatchOf(std::size_t class_index) const noexcept;
  // Returns this thread's cached blocks of this pool to the shared lists;
  // creates no cache on a thread that never used this pool.
  void FlushThreadCache() noexcept;

  // Test hook: runs inside a shared-list pop between reading head/link and the CAS.
  using PopHook = void (*)(void* arg);
  static void SetPopHookForTest(PopHook hook, void* arg) noexcept;

 private:
  friend class internal::ThreadCaches;
  friend struct internal::PoolCache;

  struct SizeClass {
    std::atomic<std::uint64_t> head{0};  // Tagged pointer to the first batch.
    // Relaxed counters (statistics only; nothing is ordered by them).
    std::atomic<std::size_t> off_shared{0};  // Blocks not on the shared list.
    std::atomic<std::size_t> carved{0};
    std::atomic<std::size_t> peak{0};
    std::atomic<std::uint64_t> allocs{0};  // By exited threads and uncached paths.
    std::atomic<std::uint64_t> frees{0};
  };

  internal::PoolCache* LocalCache() noexcept;
  [[gnu::noinline]] internal::PoolCache* LocalCacheSlow() noexcept;
  [[gnu::noinline]] void* AllocateSlow(std::size_t class_index);
  [[gnu::noinline]] void DeallocateSlow(std::size_t class_index, void* ptr) noexcept;
  void* AllocateShared(std::size_t class_index);
  void DeallocateShared(std::size_t class_index, void* ptr) noexcept;
  // Batches: a chain of `count` blocks linked through their first word.
  void* PopBatch(std::size_t class_index, std::uint32_t* count);
  void PushBatch(std::size_t class_index, void* first, std::uint32_t count) noexcept;
  // PushBatch without counting the blocks back (fresh blocks from Carve).
  void PushChain(std::size_t class_index, void* first, std::uint32_t count) noexcept;
  bool Carve(std::size_t class_index);

  PoolOptions options_;
  std::uint64_t id_;  // Never reused; thread caches key on it.
  std::array<std::uint32_t, kClassCount> batch_{};
  std::array<SizeClass, kClassCount> classes_;
  std::mutex chunks_mu_;
  std::vector<void*> chunks_;  // Guarded by chunks_mu_.
  // Caches of live threads for this pool; guarded by the registry mutex
  // (thread_cache.cc), which is not nameable in an annotation here.
  std::vector<internal::PoolCache*> caches_;
};

}  // namespace keel::memory
