#pragma once
// MemoryPool: size-classed pool for small blocks (16 B .. 4 KiB); larger
// requests go to the system allocator.
//
// Threading: every method may be called from any thread; a block may be freed
// on a thread other than the one that allocated it. Each size class keeps one
// shared lock-free free list (a Treiber stack).
//
// Reclamation / ABA: the list head is a tagged 64-bit word, the block address
// in the low 48 bits and a generation in the upper 16 bits, bumped by every
// successful push and pop. A pop that read head A and next B, then lost the
// CPU while others popped A, popped B and pushed A back, sees a different
// generation and its CAS fails. Blocks come from chunks that are never
// returned to the OS while the pool lives, so reading a popped node's next
// is always a mapped read (possibly stale, then the CAS fails).
//
// Debug builds with the CMake option KEEL_STOMP send every pooled block to
// StompAllocator (guard pages, never reused) instead of the free lists.
//
// Not done yet: per-thread caches (see docs/memory.md).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace keel::memory {

struct PoolOptions {
  std::size_t chunk_bytes = 64 * 1024;  // Carved into blocks of one class.
};

struct ClassStats {
  std::size_t block_size = 0;
  std::size_t in_use = 0;  // Handed out, not yet freed.
  std::size_t cached = 0;  // Carved and sitting on the free list.
  std::size_t peak = 0;    // Highest in_use seen.
};

class MemoryPool {
 public:
  static constexpr std::size_t kMaxBlock = 4096;
  static constexpr std::size_t kClassCount = 9;  // 16, 32, ..., 4096.

  explicit MemoryPool(PoolOptions options = {});
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  // The process-wide pool; never destroyed.
  static MemoryPool& Default();

  void* Allocate(std::size_t size);
  // `size` must be the size passed to Allocate.
  void Deallocate(void* ptr, std::size_t size) noexcept;

  ClassStats Stats(std::size_t class_index) const;
  static std::size_t ClassOf(std::size_t size) noexcept;

  // Test hook: runs inside Pop between reading head/next and the CAS.
  using PopHook = void (*)(void* arg);
  static void SetPopHookForTest(PopHook hook, void* arg) noexcept;

 private:
  struct Node {
    Node* next;
  };
  struct SizeClass {
    std::atomic<std::uint64_t> head{0};
    std::atomic<std::size_t> in_use{0};
    std::atomic<std::size_t> cached{0};
    std::atomic<std::size_t> peak{0};
  };

  Node* Pop(SizeClass& sc) noexcept;
  void Push(SizeClass& sc, Node* node) noexcept;
  bool Refill(std::size_t class_index);

  PoolOptions options_;
  std::array<SizeClass, kClassCount> classes_;
  std::mutex chunks_mu_;
  std::vector<void*> chunks_;  // Guarded by chunks_mu_.
};

}  // namespace keel::memory
