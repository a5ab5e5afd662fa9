#include "keel/net/recv_buffer.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <new>
#include <utility>

namespace keel::net {

// One allocation: the header (reference count, capacity, the mark of the
// last slice handed out), then the bytes.
class RecvBuffer::Block final : public RefCounted {
 public:
  static RefPtr<Block> New(std::size_t capacity);
  static constexpr std::size_t HeaderSize() noexcept;
  uint8_t* bytes() noexcept;
  std::size_t capacity() const noexcept { return capacity_; }

  // The tag of the last slice handed out while that slice lives, else 0
  // (SendBuffer::Wrap's live mark).
  std::atomic<uint64_t> live_last{0};

 private:
  explicit Block(std::size_t capacity) : capacity_(capacity) {}
  ~Block() override = default;
  void Destroy() const noexcept override;

  const std::size_t capacity_;
};

namespace {
constexpr std::size_t kBlockAlign = 16;
}  // namespace

// The bytes start at the first aligned offset past the header. (A member
// function: the class is complete inside its bodies.)
constexpr std::size_t RecvBuffer::Block::HeaderSize() noexcept {
  return (sizeof(Block) + kBlockAlign - 1) & ~(kBlockAlign - 1);
}

RefPtr<RecvBuffer::Block> RecvBuffer::Block::New(std::size_t capacity) {
  void* mem = ::operator new(HeaderSize() + capacity, std::align_val_t(kBlockAlign));
  return RefPtr<Block>(new (mem) Block(capacity));
}

uint8_t* RecvBuffer::Block::bytes() noexcept { return reinterpret_cast<uint8_t*>(this) + HeaderSize(); }

void RecvBuffer::Block::Destroy() const noexcept {
  void* mem = const_cast<Block*>(this);
  this->~Block();
  ::operator delete(mem, std::align_val_t(kBlockAlign));
}

RecvBuffer::RecvBuffer(std::size_t capacity)
    : block_(Block::New(std::max<std::size_t>(capacity, 64))),
      data_(block_->bytes()),
      base_capacity_(block_->capacity()),
      capacity_(base_capacity_),
      end_(capacity_) {}

RecvBuffer::~RecvBuffer() = default;

RecvBuffer::RecvBuffer(RecvBuffer&& o) noexcept { *this = std::move(o); }

RecvBuffer& RecvBuffer::operator=(RecvBuffer&& o) noexcept {
  if (this != &o) {
    block_ = std::move(o.block_);
    spare_ = std::move(o.spare_);
    data_ = std::exchange(o.data_, nullptr);
    base_capacity_ = std::exchange(o.base_capacity_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    end_ = std::exchange(o.end_, 0);
    read_ = std::exchange(o.read_, 0);
    write_ = std::exchange(o.write_, 0);
    last_tag_ = std::exchange(o.last_tag_, 0);
    last_begin_ = std::exchange(o.last_begin_, 0);
    last_end_ = std::exchange(o.last_end_, 0);
    empty_reads_ = std::exchange(o.empty_reads_, 0);
    last_read_ = std::exchange(o.last_read_, 0);
  }
  return *this;
}

std::size_t RecvBuffer::Slices() const noexcept {
  // Acquire pairs with the release in RefCounted::Release: once a slice is
  // gone, every use of its bytes (the kernel's write included, which
  // completed before the slice was released) happened before ours.
  return block_ ? block_->RefCount() - 1 : 0;
}

bool RecvBuffer::Shared() const noexcept { return Slices() > 0; }

bool RecvBuffer::Contains(std::span<const uint8_t> bytes) const noexcept {
  // As integers: `bytes` may point anywhere.
  const auto begin = reinterpret_cast<std::uintptr_t>(data_ + read_);
  const auto end = reinterpret_cast<std::uintptr_t>(data_ + write_);
  const auto b = reinterpret_cast<std::uintptr_t>(bytes.data());
  return b >= begin && b <= end && bytes.size() <= end - b;
}

RecvBuffer::Pinned RecvBuffer::Pin() const noexcept {
  const std::size_t slices = Slices();
  if (slices == 0) return Pinned::kNothing;
  // The mark still holds the last tag only while that slice lives; if it is
  // the one slice alive, nothing else in the block is referenced.
  if (slices == 1 && last_tag_ != 0 && block_->live_last.load(std::memory_order_acquire) == last_tag_) {
    return Pinned::kLastSlice;
  }
  return Pinned::kUnknown;
}

void RecvBuffer::Consume(std::size_t n) noexcept {
  read_ += std::min(n, write_ - read_);
  // Empty: start over at the front for free, unless a slice still points
  // into the block. Nothing queued any more: the spare is not needed.
  if (read_ == write_ && Pin() == Pinned::kNothing) Rewind();
}

void RecvBuffer::Rewind() noexcept {
  read_ = write_ = 0;
  end_ = capacity_;
  spare_.reset();  // nothing is queued any more: the spare is not needed
}

RefPtr<RecvBuffer::Block> RecvBuffer::BlockOf(std::size_t capacity) {
  if (spare_ && spare_->capacity() == capacity && spare_->RefCount() == 1) {
    return std::move(spare_);  // its slices are gone: reuse it
  }
  return Block::New(capacity);
}

void RecvBuffer::UseBlock(RefPtr<Block> next, std::size_t readable) noexcept {
  block_ = std::move(next);
  data_ = block_->bytes();
  capacity_ = end_ = block_->capacity();
  read_ = 0;
  write_ = readable;
  empty_reads_ = 0;
}

bool RecvBuffer::PrepareWrite(std::size_t min_writable) {
  assert(block_ && "a moved-from RecvBuffer may only be assigned to");
  if (capacity_ != base_capacity_) ShrinkWhenIdle(min_writable);
  if (read_ == write_ && write_ != 0 && PlaceEmptyRead(min_writable)) return false;
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
  // Another block: the readable bytes need more room, or slices pin the
  // current one. Sized from the initial capacity (a block grown for one
  // large frame is not kept for ever); only the readable bytes move.
  const bool shared = pinned != Pinned::kNothing;
  std::size_t cap = base_capacity_;
  while (cap < readable || cap - readable < min_writable) cap *= 2;
  RefPtr<Block> next = BlockOf(cap);
  if (readable > 0) std::memcpy(next->bytes(), data_ + read_, readable);
  // A shared block of the initial size becomes the spare (kept, or freed by
  // its last slice if another replaces it first); any other old block is
  // dropped here and freed by its last slice, if any.
  if (shared && capacity_ == base_capacity_) spare_ = std::move(block_);
  UseBlock(std::move(next), readable);
  return shared;
}

void RecvBuffer::ShrinkWhenIdle(std::size_t min_writable) {
  // Still needed: a frame is arriving (unread bytes), the last read alone
  // was more than a block of the initial size takes (frames that arrive
  // whole), or such a block could not offer the room asked for.
  if (read_ != write_ || last_read_ > base_capacity_ || base_capacity_ < min_writable) {
    empty_reads_ = 0;
    return;
  }
  if (++empty_reads_ < kShrinkAfterEmptyReads) return;
  // The grown block is freed here, or by its last slice.
  UseBlock(BlockOf(base_capacity_), 0);
  spare_.reset();
}

bool RecvBuffer::PlaceEmptyRead(std::size_t min_writable) noexcept {
  const Pinned pinned = Pin();
  if (pinned == Pinned::kNothing) {  // the slices went after Consume
    Rewind();
    return end_ >= min_writable;
  }
  if (pinned != Pinned::kLastSlice) return false;
  // An echo: the next read goes to the half of the block the queued slice
  // does not touch, so a ping-pong keeps using the same two places (its
  // cache and TLB footprint is two messages, not the whole block).
  const std::size_t half = capacity_ / 2;
  if (last_begin_ >= half && last_begin_ >= min_writable) {
    read_ = write_ = 0;
    end_ = last_begin_;
    return true;
  }
  if (last_end_ <= half && capacity_ - half >= min_writable) {
    read_ = write_ = half;
    end_ = capacity_;
    return true;
  }
  return false;
}

SendBufferRef RecvBuffer::Share(std::span<const uint8_t> bytes) {
  assert(Contains(bytes));
  last_tag_ += 1;
  block_->live_last.store(last_tag_, std::memory_order_relaxed);  // published with the slice
  last_begin_ = static_cast<std::size_t>(bytes.data() - data_);
  last_end_ = last_begin_ + bytes.size();
  return SendBuffer::Wrap(block_, bytes, &block_->live_last, last_tag_);
}

}  // namespace keel::net
