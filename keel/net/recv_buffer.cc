#include "keel/net/recv_buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <new>
#include <utility>

namespace keel::net {

// One allocation: the reference count, then the bytes.
class RecvBuffer::Block final : public RefCounted {
 public:
  static RefPtr<Block> New(std::size_t capacity) {
    void* mem = ::operator new(kHeader + capacity, std::align_val_t(kAlign));
    return RefPtr<Block>(new (mem) Block());
  }
  uint8_t* bytes() noexcept { return reinterpret_cast<uint8_t*>(this) + kHeader; }

 private:
  static constexpr std::size_t kAlign = 16;
  static constexpr std::size_t kHeader = (sizeof(RefCounted) + kAlign - 1) & ~(kAlign - 1);

  Block() = default;
  ~Block() override = default;
  void Destroy() const noexcept override {
    void* mem = const_cast<Block*>(this);
    this->~Block();
    ::operator delete(mem, std::align_val_t(kAlign));
  }
};

RecvBuffer::RecvBuffer(std::size_t capacity)
    : block_(Block::New(std::max<std::size_t>(capacity, 64))),
      data_(block_->bytes()),
      capacity_(std::max<std::size_t>(capacity, 64)),
      end_(capacity_) {}

RecvBuffer::~RecvBuffer() = default;

RecvBuffer::RecvBuffer(RecvBuffer&& o) noexcept { *this = std::move(o); }

RecvBuffer& RecvBuffer::operator=(RecvBuffer&& o) noexcept {
  if (this != &o) {
    block_ = std::move(o.block_);
    spare_ = std::move(o.spare_);
    last_ = std::move(o.last_);
    last_begin_ = std::exchange(o.last_begin_, 0);
    last_end_ = std::exchange(o.last_end_, 0);
    data_ = std::exchange(o.data_, nullptr);
    capacity_ = std::exchange(o.capacity_, 0);
    end_ = std::exchange(o.end_, 0);
    read_ = std::exchange(o.read_, 0);
    write_ = std::exchange(o.write_, 0);
  }
  return *this;
}

bool RecvBuffer::Shared() const noexcept {
  if (!block_) return false;
  const std::size_t held = last_ && last_->RefCount() == 1 ? 1 : 0;  // only our hold on it
  return Slices() > held;
}

std::size_t RecvBuffer::Slices() const noexcept {
  // Acquire pairs with the release in RefCounted::Release: once a slice is
  // gone, every use of its bytes (the kernel's write included, which
  // completed before the slice was released) happened before ours.
  return block_->RefCount() - 1;
}

RecvBuffer::Pinned RecvBuffer::Pin() noexcept {
  if (last_ && last_->RefCount() == 1) last_.reset();  // only we hold it: written
  const std::size_t slices = Slices();
  if (slices == 0) return Pinned::kNothing;
  return slices == 1 && last_ ? Pinned::kLastSlice : Pinned::kUnknown;
}

void RecvBuffer::Consume(std::size_t n) noexcept {
  read_ += std::min(n, write_ - read_);
  // Empty: start over at the front for free, unless a slice still points
  // into the block.
  if (read_ == write_ && Pin() == Pinned::kNothing) {
    read_ = write_ = 0;
    end_ = capacity_;
  }
}

bool RecvBuffer::PrepareWrite(std::size_t min_writable) {
  if (end_ - write_ >= min_writable) return false;
  const std::size_t readable = write_ - read_;
  const Pinned pinned = Pin();
  if (pinned == Pinned::kNothing) {
    end_ = capacity_;
    if (end_ - write_ >= min_writable) return false;
    if (read_ > 0) {
      std::memmove(data_, data_ + read_, readable);
      read_ = 0;
      write_ = readable;
      if (end_ - write_ >= min_writable) return false;
    }
  } else if (pinned == Pinned::kLastSlice) {
    // Only the last slice is still queued: read on after it to the end of
    // the block, or move the unread bytes to the front and read up to it.
    if (write_ >= last_end_ && capacity_ - write_ >= min_writable) {
      end_ = capacity_;
      return false;
    }
    if (readable + min_writable <= last_begin_) {
      // [0, last_begin_) is clear of the slice; the unread bytes may lie
      // over it, they are only read.
      std::memmove(data_, data_ + read_, readable);
      read_ = 0;
      write_ = readable;
      end_ = last_begin_;
      return false;
    }
  }
  // Another block: the readable bytes need more room, or the current block
  // holds bytes a slice still refers to. Only the readable bytes move.
  const bool shared = pinned != Pinned::kNothing;
  std::size_t cap = capacity_;
  while (cap - readable < min_writable) cap *= 2;
  RefPtr<Block> next;
  if (shared && cap == capacity_ && spare_ && spare_->RefCount() == 1) {
    next = std::move(spare_);  // its slices are gone: reuse it
  } else {
    next = Block::New(cap);
  }
  if (readable > 0) std::memcpy(next->bytes(), data_ + read_, readable);
  // A shared block becomes the spare (kept, or freed by its last slice if a
  // fresh spare replaces it first); an unshared one is simply dropped.
  if (cap != capacity_) spare_.reset();  // a smaller block: never used again
  else if (shared) spare_ = std::move(block_);
  last_.reset();  // a slice of the old block
  block_ = std::move(next);
  data_ = block_->bytes();
  capacity_ = end_ = cap;
  read_ = 0;
  write_ = readable;
  return shared;
}

SendBufferRef RecvBuffer::Share(std::span<const uint8_t> bytes) {
  assert(Contains(bytes));
  last_ = SendBuffer::Wrap(block_, bytes);
  last_begin_ = static_cast<std::size_t>(bytes.data() - data_);
  last_end_ = last_begin_ + bytes.size();
  return last_;
}

}  // namespace keel::net
