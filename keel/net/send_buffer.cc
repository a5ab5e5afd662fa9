// SendBuffer memory: pooled 64 KiB chunks carved by a per-thread bump
// pointer, and plain allocations for large buffers.
//
//   chunk:  [ChunkHeader | PooledSendBuffer | bytes... | PooledSendBuffer | bytes... | free ]
//                                                                                ^ bump
//
// A chunk's count holds one reference for the thread that carves it (while it
// is that thread's current chunk) and one per live buffer carved from it.
// When the count drops to zero the chunk goes back to a global pool (a
// SpinLock'd free list, capped) or to the system.

#include "keel/net/send_buffer.h"

#include <atomic>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "keel/core/lock_guard.h"
#include "keel/core/spin_lock.h"

namespace keel::net {
namespace {

constexpr std::size_t kAlign = 16;
constexpr std::size_t kMaxPooledChunks = 256;  // 16 MiB idle at most

constexpr std::size_t AlignUp(std::size_t n) noexcept { return (n + kAlign - 1) & ~(kAlign - 1); }

struct Counters {
  std::atomic<uint64_t> buffers_live{0};
  std::atomic<uint64_t> chunks_live{0};
  std::atomic<uint64_t> chunks_pooled{0};
  std::atomic<uint64_t> large_allocations{0};
};
Counters& counters() noexcept {
  static Counters c;
  return c;
}

struct alignas(kAlign) ChunkHeader {
  std::atomic<uint32_t> refs{0};
};
constexpr std::size_t kHeaderSize = AlignUp(sizeof(ChunkHeader));
constexpr std::size_t kChunkBytes = kHeaderSize + SendBuffer::kChunkSize;

class ChunkPool {
 public:
  ChunkHeader* Get() {
    {
      core::LockGuard<core::SpinLock> g(mu_);
      if (!free_.empty()) {
        ChunkHeader* c = free_.back();
        free_.pop_back();
        counters().chunks_pooled.fetch_sub(1, std::memory_order_relaxed);
        return c;
      }
    }
    void* mem = ::operator new(kChunkBytes, std::align_val_t(kAlign));
    counters().chunks_live.fetch_add(1, std::memory_order_relaxed);
    return new (mem) ChunkHeader();
  }
  void Put(ChunkHeader* c) noexcept {
    {
      core::LockGuard<core::SpinLock> g(mu_);
      if (free_.size() < kMaxPooledChunks) {
        free_.push_back(c);
        counters().chunks_pooled.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    c->~ChunkHeader();
    ::operator delete(c, std::align_val_t(kAlign));
    counters().chunks_live.fetch_sub(1, std::memory_order_relaxed);
  }
  // Never destroyed: threads may release buffers during static destruction.
  static ChunkPool& Instance() {
    static ChunkPool* pool = new ChunkPool();
    return *pool;
  }

 private:
  core::SpinLock mu_{"SendBuffer.chunks"};
  std::vector<ChunkHeader*> free_ KEEL_GUARDED_BY(mu_);
};

void ReleaseChunk(ChunkHeader* c) noexcept {
  // acq_rel: the last releaser sees every write into the chunk's buffers.
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) ChunkPool::Instance().Put(c);
}

// The calling thread's current chunk and bump offset.
struct ThreadChunk {
  ChunkHeader* chunk = nullptr;
  std::size_t used = 0;
  ~ThreadChunk() {
    if (chunk) ReleaseChunk(chunk);
  }
};
thread_local ThreadChunk tls_chunk;

}  // namespace

class PooledSendBuffer final : public SendBuffer {
 public:
  PooledSendBuffer(ChunkHeader* chunk, uint8_t* data, std::size_t size) noexcept
      : SendBuffer(data, size), chunk_(chunk) {}

 private:
  void Destroy() const noexcept override {
    ChunkHeader* chunk = chunk_;
    this->~PooledSendBuffer();
    counters().buffers_live.fetch_sub(1, std::memory_order_relaxed);
    ReleaseChunk(chunk);
  }
  ChunkHeader* chunk_;
};

// A slice of someone else's bytes (Wrap); the object itself is carved from
// the thread's chunk like a pooled buffer with no bytes of its own.
class WrappedSendBuffer final : public SendBuffer {
 public:
  WrappedSendBuffer(ChunkHeader* chunk, RefPtr<const RefCounted> owner, std::span<const uint8_t> bytes,
                    std::atomic<uint64_t>* live_mark, uint64_t tag) noexcept
      : SendBuffer(const_cast<uint8_t*>(bytes.data()), bytes.size()),
        chunk_(chunk),
        owner_(std::move(owner)),
        live_mark_(live_mark),
        tag_(tag) {}

 private:
  void Destroy() const noexcept override {
    ChunkHeader* chunk = chunk_;
    if (live_mark_ != nullptr) {
      // Before owner_ goes: the mark lives inside the owner. Release pairs
      // with the owner's acquire load of the mark.
      uint64_t expected = tag_;
      live_mark_->compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed);
    }
    this->~WrappedSendBuffer();  // releases owner_
    counters().buffers_live.fetch_sub(1, std::memory_order_relaxed);
    ReleaseChunk(chunk);
  }
  ChunkHeader* chunk_;
  RefPtr<const RefCounted> owner_;
  std::atomic<uint64_t>* live_mark_;
  uint64_t tag_;
};

class LargeSendBuffer final : public SendBuffer {
 public:
  LargeSendBuffer(uint8_t* data, std::size_t size) noexcept : SendBuffer(data, size) {}

 private:
  void Destroy() const noexcept override {
    void* mem = const_cast<LargeSendBuffer*>(this);
    this->~LargeSendBuffer();
    counters().buffers_live.fetch_sub(1, std::memory_order_relaxed);
    ::operator delete(mem, std::align_val_t(kAlign));
  }
};

namespace {

// `need` bytes from the calling thread's chunk, and a reference on it.
std::pair<ChunkHeader*, uint8_t*> Carve(std::size_t need) {
  ThreadChunk& tc = tls_chunk;
  if (tc.chunk == nullptr || tc.used + need > SendBuffer::kChunkSize) {
    if (tc.chunk) ReleaseChunk(tc.chunk);
    tc.chunk = ChunkPool::Instance().Get();
    tc.chunk->refs.store(1, std::memory_order_relaxed);  // the thread's own reference
    tc.used = 0;
  }
  uint8_t* base = reinterpret_cast<uint8_t*>(tc.chunk) + kHeaderSize + tc.used;
  tc.used += need;
  tc.chunk->refs.fetch_add(1, std::memory_order_relaxed);
  return {tc.chunk, base};
}

}  // namespace

SendBufferRef SendBuffer::Allocate(std::size_t size) {
  constexpr std::size_t kObj = AlignUp(sizeof(PooledSendBuffer));
  counters().buffers_live.fetch_add(1, std::memory_order_relaxed);
  if (size > kMaxPooledSize) {
    constexpr std::size_t kLargeObj = AlignUp(sizeof(LargeSendBuffer));
    auto* mem = static_cast<uint8_t*>(::operator new(kLargeObj + size, std::align_val_t(kAlign)));
    counters().large_allocations.fetch_add(1, std::memory_order_relaxed);
    return SendBufferRef(new (mem) LargeSendBuffer(mem + kLargeObj, size));
  }
  auto [chunk, base] = Carve(kObj + AlignUp(size));
  return SendBufferRef(new (base) PooledSendBuffer(chunk, base + kObj, size));
}

SendBufferRef SendBuffer::Wrap(RefPtr<const RefCounted> owner, std::span<const uint8_t> bytes,
                               std::atomic<uint64_t>* live_mark, uint64_t tag) {
  counters().buffers_live.fetch_add(1, std::memory_order_relaxed);
  auto [chunk, base] = Carve(AlignUp(sizeof(WrappedSendBuffer)));
  return SendBufferRef(new (base) WrappedSendBuffer(chunk, std::move(owner), bytes, live_mark, tag));
}

SendBufferRef SendBuffer::Copy(std::span<const uint8_t> bytes) {
  SendBufferRef buf = Allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(buf->data(), bytes.data(), bytes.size());
  return buf;
}

SendBufferStats SendBuffer::Stats() noexcept {
  const Counters& c = counters();
  return {c.buffers_live.load(std::memory_order_relaxed), c.chunks_live.load(std::memory_order_relaxed),
          c.chunks_pooled.load(std::memory_order_relaxed), c.large_allocations.load(std::memory_order_relaxed)};
}

}  // namespace keel::net
