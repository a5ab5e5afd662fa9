#include "keel/net/recv_buffer.h"

#include <algorithm>
#include <cstring>

namespace keel::net {

RecvBuffer::RecvBuffer(std::size_t capacity)
    : data_(std::make_unique_for_overwrite<uint8_t[]>(std::max<std::size_t>(capacity, 64))),
      capacity_(std::max<std::size_t>(capacity, 64)) {}

void RecvBuffer::Consume(std::size_t n) noexcept {
  read_ += std::min(n, write_ - read_);
  if (read_ == write_) read_ = write_ = 0;  // empty: start over at the front for free
}

void RecvBuffer::PrepareWrite(std::size_t min_writable) {
  if (capacity_ - write_ >= min_writable) return;
  const std::size_t readable = write_ - read_;
  if (read_ > 0) {
    std::memmove(data_.get(), data_.get() + read_, readable);
    read_ = 0;
    write_ = readable;
    if (capacity_ - write_ >= min_writable) return;
  }
  std::size_t cap = capacity_;
  while (cap - readable < min_writable) cap *= 2;
  auto bigger = std::make_unique_for_overwrite<uint8_t[]>(cap);
  std::memcpy(bigger.get(), data_.get(), readable);
  data_ = std::move(bigger);
  capacity_ = cap;
}

}  // namespace keel::net
