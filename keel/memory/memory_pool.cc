#include "keel/memory/memory_pool.h"

#include <cstdlib>
#include <cstring>
#include <new>

#if defined(KEEL_STOMP)
#include "keel/memory/stomp_allocator.h"
#endif

namespace keel::memory {
namespace {

constexpr std::uint64_t kPtrMask = (std::uint64_t{1} << 48) - 1;
constexpr int kTagShift = 48;

std::atomic<MemoryPool::PopHook> g_pop_hook{nullptr};
std::atomic<void*> g_pop_hook_arg{nullptr};

std::uint64_t Pack(void* ptr, std::uint64_t tag) noexcept {
  return (reinterpret_cast<std::uintptr_t>(ptr) & kPtrMask) | (tag << kTagShift);
}
template <typename T>
T* PtrOf(std::uint64_t word) noexcept {
  return reinterpret_cast<T*>(static_cast<std::uintptr_t>(word & kPtrMask));
}
std::uint64_t TagOf(std::uint64_t word) noexcept { return word >> kTagShift; }

// Reads a listed node's next. A popper that lost the race may read a block a
// new owner is already writing: the value is then stale and its CAS fails on
// the generation. That benign race is hidden from TSan here, and only here.
__attribute__((no_sanitize("thread"))) void* LoadNext(const void* node) noexcept {
  void* next;
  std::memcpy(&next, node, sizeof next);
  return next;
}

}  // namespace

MemoryPool::MemoryPool(PoolOptions options) : options_(options) {}

MemoryPool::~MemoryPool() {
  for (void* chunk : chunks_) std::free(chunk);
}

MemoryPool& MemoryPool::Default() {
  static MemoryPool* pool = new MemoryPool();
  return *pool;
}

std::size_t MemoryPool::ClassOf(std::size_t size) noexcept {
  std::size_t index = 0;
  std::size_t block = 16;
  while (block < size) {
    block <<= 1;
    ++index;
  }
  return index;
}

void MemoryPool::SetPopHookForTest(PopHook hook, void* arg) noexcept {
  g_pop_hook_arg.store(arg);
  g_pop_hook.store(hook);
}

MemoryPool::Node* MemoryPool::Pop(SizeClass& sc) noexcept {
  // Acquire pairs with the release CAS in Push: the pushed node's next is visible.
  std::uint64_t head = sc.head.load(std::memory_order_acquire);
  for (;;) {
    Node* node = PtrOf<Node>(head);
    if (node == nullptr) return nullptr;
    // Always a mapped read: chunks live as long as the pool.
    Node* next = static_cast<Node*>(LoadNext(node));
    if (PopHook hook = g_pop_hook.load(std::memory_order_relaxed)) {
      hook(g_pop_hook_arg.load(std::memory_order_relaxed));
    }
    // Acquire on both outcomes pairs with Push's release CAS.
    if (sc.head.compare_exchange_weak(head, Pack(next, TagOf(head) + 1),
                                      std::memory_order_acquire,
                                      std::memory_order_acquire)) {
      return node;
    }
  }
}

void MemoryPool::Push(SizeClass& sc, Node* node) noexcept {
  std::uint64_t head = sc.head.load(std::memory_order_relaxed);
  for (;;) {
    node->next = PtrOf<Node>(head);
    // Release pairs with the acquire load/CAS in Pop, publishing node->next.
    if (sc.head.compare_exchange_weak(head, Pack(node, TagOf(head) + 1),
                                      std::memory_order_release,
                                      std::memory_order_relaxed)) {
      return;
    }
  }
}

bool MemoryPool::Refill(std::size_t class_index) {
  const std::size_t block = std::size_t{16} << class_index;
  const std::size_t bytes = options_.chunk_bytes < block ? block : options_.chunk_bytes;
  void* chunk = std::aligned_alloc(16, bytes - bytes % 16);
  if (chunk == nullptr) return false;
  {
    std::lock_guard<std::mutex> lock(chunks_mu_);
    chunks_.push_back(chunk);
  }
  SizeClass& sc = classes_[class_index];
  auto* base = static_cast<std::byte*>(chunk);
  const std::size_t count = bytes / block;
  for (std::size_t i = 0; i < count; ++i) {
    Push(sc, new (base + i * block) Node{});
  }
  sc.cached.fetch_add(count, std::memory_order_relaxed);
  return true;
}

void* MemoryPool::Allocate(std::size_t size) {
  if (size > kMaxBlock) {
    void* p = std::malloc(size);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  const std::size_t index = ClassOf(size);
  SizeClass& sc = classes_[index];
#if defined(KEEL_STOMP)
  // Stomp build: every pooled block gets its own pages against a guard page,
  // and freed blocks are never reused, so use-after-free and overflow fault.
  void* stomped = StompAllocator::Allocate(size);
  const std::size_t in_use = sc.in_use.fetch_add(1, std::memory_order_relaxed) + 1;
  std::size_t high = sc.peak.load(std::memory_order_relaxed);
  while (in_use > high && !sc.peak.compare_exchange_weak(high, in_use, std::memory_order_relaxed)) {
  }
  return stomped;
#else
  Node* node = Pop(sc);
  while (node == nullptr) {
    if (!Refill(index)) throw std::bad_alloc();
    node = Pop(sc);
  }
  sc.cached.fetch_sub(1, std::memory_order_relaxed);
  const std::size_t now = sc.in_use.fetch_add(1, std::memory_order_relaxed) + 1;
  std::size_t peak = sc.peak.load(std::memory_order_relaxed);
  while (now > peak && !sc.peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return node;
#endif
}

void MemoryPool::Deallocate(void* ptr, std::size_t size) noexcept {
  if (ptr == nullptr) return;
  if (size > kMaxBlock) {
    std::free(ptr);
    return;
  }
  SizeClass& sc = classes_[ClassOf(size)];
  sc.in_use.fetch_sub(1, std::memory_order_relaxed);
#if defined(KEEL_STOMP)
  StompAllocator::Deallocate(ptr, size);
#else
  sc.cached.fetch_add(1, std::memory_order_relaxed);
  Push(sc, new (ptr) Node{});
#endif
}

ClassStats MemoryPool::Stats(std::size_t class_index) const {
  const SizeClass& sc = classes_[class_index];
  return ClassStats{std::size_t{16} << class_index, sc.in_use.load(std::memory_order_relaxed),
                    sc.cached.load(std::memory_order_relaxed),
                    sc.peak.load(std::memory_order_relaxed)};
}

}  // namespace keel::memory
