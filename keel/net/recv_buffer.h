#pragma once
// RecvBuffer: the bytes a session has received and not yet consumed, with
// room for the next read. Owned by one session, used only on its IO thread.
//
//   +-----------------+====================+-----------------+
//   |  consumed       |  readable          |  writable       |
//   |  (reclaimable)  |  (given to OnRecv) |  (next read)    |
//   +-----------------+====================+-----------------+
//   0              read_               write_            capacity
//
// A read lands in the writable region (CommitWrite), OnRecv consumes from
// the front (Consume). PrepareWrite moves the readable bytes to the front
// (compaction) when that frees enough room, and grows the storage only when
// the readable bytes themselves need it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace keel::net {

class RecvBuffer {
 public:
  explicit RecvBuffer(std::size_t capacity = 16 * 1024);

  std::span<const uint8_t> Readable() const noexcept { return {data_.get() + read_, write_ - read_}; }
  std::span<uint8_t> Writable() noexcept { return {data_.get() + write_, capacity_ - write_}; }
  std::size_t ReadableBytes() const noexcept { return write_ - read_; }
  std::size_t capacity() const noexcept { return capacity_; }

  void CommitWrite(std::size_t n) noexcept { write_ += n; }
  void Consume(std::size_t n) noexcept;
  // Makes at least `min_writable` bytes writable: compacts first, grows
  // (doubling) only if that is not enough.
  void PrepareWrite(std::size_t min_writable);

 private:
  std::unique_ptr<uint8_t[]> data_;
  std::size_t capacity_;
  std::size_t read_ = 0;
  std::size_t write_ = 0;
};

}  // namespace keel::net
