#pragma once
// SendBuffer: bytes to send, written once and then shared. One buffer can be
// queued on a thousand sessions without a copy (a room's broadcast): each
// queue holds a SendBufferRef, and the memory goes back to its pool when the
// last session has written it.
//
//   SendBufferRef buf = SendBuffer::Allocate(n);   // n writable bytes
//   std::memcpy(buf->data(), src, n);              // fill it, then share it:
//   for (auto& s : members) s->Send(buf);          // no copies
//
// Memory: buffers up to kMaxPooledSize are carved from 64 KiB chunks owned
// by the allocating thread (a bump pointer, no lock); a chunk is reference
// counted by the buffers carved from it and is recycled through a pool when
// the last of them is released, on whichever thread that is. Larger buffers
// come from the system allocator.
//
// Rules: fill a buffer before its first Send; never write it after. data()
// is mutable only so that the creator can fill it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "keel/net/ref_ptr.h"

namespace keel::net {

class SendBuffer;
using SendBufferRef = RefPtr<SendBuffer>;

// Process-wide counters of the buffer pools (relaxed).
struct SendBufferStats {
  uint64_t buffers_live = 0;     // SendBuffers not yet released
  uint64_t chunks_live = 0;      // 64 KiB chunks allocated and not returned to the system
  uint64_t chunks_pooled = 0;    // of those, idle in the pool
  uint64_t large_allocations = 0;
};

class SendBuffer : public RefCounted {
 public:
  static constexpr std::size_t kChunkSize = 64 * 1024;
  static constexpr std::size_t kMaxPooledSize = 16 * 1024;

  // A buffer of exactly `size` writable bytes (uninitialised).
  static SendBufferRef Allocate(std::size_t size);
  // A buffer holding a copy of `bytes`.
  static SendBufferRef Copy(std::span<const uint8_t> bytes);
  // A buffer over `bytes` without a copy: they belong to `owner`, which the
  // buffer keeps alive. The bytes must not change while the buffer lives
  // (RecvBuffer::Share keeps that promise for received bytes). Never write
  // through data() of such a buffer.
  //
  // `live_mark` (optional, inside `owner`) lets the owner tell whether the
  // buffer it made last is still alive without holding it: releasing the
  // buffer sets *live_mark to 0 if it still holds `tag` (release order).
  static SendBufferRef Wrap(RefPtr<const RefCounted> owner, std::span<const uint8_t> bytes,
                            std::atomic<uint64_t>* live_mark = nullptr, uint64_t tag = 0);

  uint8_t* data() noexcept { return data_; }
  const uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<const uint8_t> bytes() const noexcept { return {data_, size_}; }

  // Shrinks the buffer to its first `size` bytes (after writing fewer bytes
  // than allocated). Only before the first Send.
  void Truncate(std::size_t size) noexcept {
    if (size < size_) size_ = size;
  }

  static SendBufferStats Stats() noexcept;

 protected:
  SendBuffer(uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
  ~SendBuffer() override = default;

 private:
  uint8_t* data_;
  std::size_t size_;
};

// The writable bytes of `buf`: lets keel::proto::BuildFrame serialize a
// message straight into a pooled buffer (found by ADL).
inline std::span<uint8_t> FrameBytes(SendBufferRef& buf) noexcept { return {buf->data(), buf->size()}; }

}  // namespace keel::net
