#pragma once
// RecvBuffer: the bytes a session has received and not yet consumed, with
// room for the next read. Owned by one session, used only on its IO thread.
//
//   +-----------------+====================+-----------------+
//   |  consumed       |  readable          |  writable       |
//   |  (reclaimable)  |  (given to OnRecv) |  (next read)    |
//   +-----------------+====================+-----------------+
//   0              read_               write_            end_ (= capacity, see below)
//
// A read lands in the writable region (CommitWrite), OnRecv consumes from
// the front (Consume). PrepareWrite moves the readable bytes to the front
// (compaction) when that frees enough room, and grows the storage only when
// the readable bytes themselves need it. Grown storage goes back to the
// initial size after a run of small reads that found the buffer empty, so
// one large frame does not cost an active session its size for ever (a
// session that goes quiet after it keeps the grown block until it reads
// again).
//
// Sharing without a copy: Share(bytes) turns readable bytes into a
// SendBuffer that points into this buffer's storage (an echo, a relay). The
// storage is reference counted, and the buffer never writes over bytes a
// live slice refers to:
//
// - an empty buffer rewinds to the front only when no slice is left;
// - when only the last slice handed out is still queued (an echo: the
//   previous ones are written), reads go on after it, or wrap to the front
//   up to it (the writable region then ends at the slice, not at capacity):
//
//     [ writable (next read) ... | last slice, queued | consumed ]
//     0                       last_begin_          last_end_   capacity
//
//   When everything received was consumed (an echo's whole message), the
//   next read goes to the half of the block the slice does not touch: the
//   front, or the middle. A ping-pong then alternates between two places
//   and touches two messages' worth of the block, not all of it;
//
//   The buffer does not hold that slice: the block carries a mark that the
//   slice clears when it is released (SendBuffer::Wrap's live mark), so an
//   idle session pins nothing;
// - otherwise (several slices alive, or the unread bytes overlap a slice)
//   it moves to another block of the initial size (larger only if the
//   unconsumed bytes need it), copying only those bytes, and keeps the old
//   one as its spare if it is of the initial size; the next such move
//   reuses the spare if its slices are gone, else takes a fresh block and
//   leaves the old one to its slices, freed by the last of them. The spare
//   is dropped once nothing is queued.
//
// Memory: a ping-pong echo stays in one block. A session whose slices pile
// up (a pipelining peer, a slow reader) holds a spare and every block it
// left while shared, each until its last slice is written. Those slices are
// queued bytes, bounded by the send limits, but one small slice pins a
// whole block: that is why Session::SendReceived copies small pieces
// (NetConfig::recv_share_min). docs/net.md gives the bound in bytes.

#include <cstddef>
#include <cstdint>
#include <span>

#include "keel/net/ref_ptr.h"
#include "keel/net/send_buffer.h"

namespace keel::net {

class RecvBuffer {
 public:
  explicit RecvBuffer(std::size_t capacity = 16 * 1024);
  ~RecvBuffer();
  // A moved-from RecvBuffer may only be assigned to or destroyed.
  RecvBuffer(RecvBuffer&&) noexcept;
  RecvBuffer& operator=(RecvBuffer&&) noexcept;

  std::span<const uint8_t> Readable() const noexcept { return {data_ + read_, write_ - read_}; }
  std::span<uint8_t> Writable() noexcept { return {data_ + write_, end_ - write_}; }
  std::size_t ReadableBytes() const noexcept { return write_ - read_; }
  std::size_t capacity() const noexcept { return capacity_; }

  void CommitWrite(std::size_t n) noexcept {
    write_ += n;
    last_read_ = n;
  }
  void Consume(std::size_t n) noexcept;
  // Makes at least `min_writable` bytes writable: compacts first, grows
  // (doubling) only if that is not enough. Returns true when it had to move
  // to another block because slices still pin the current one (see Share).
  bool PrepareWrite(std::size_t min_writable);

  // A SendBuffer over `bytes`, which must lie within Readable(); no copy.
  // The bytes stay valid and unchanged while the SendBuffer lives, wherever
  // it is released. Consuming them is still up to the caller.
  SendBufferRef Share(std::span<const uint8_t> bytes);
  // Whether `bytes` lie within Readable() (what Share accepts); `bytes`
  // may point anywhere.
  bool Contains(std::span<const uint8_t> bytes) const noexcept;
  // Whether a SendBuffer from Share still refers to the current block.
  bool Shared() const noexcept;

 private:
  class Block;
  enum class Pinned { kNothing, kLastSlice, kUnknown };

  std::size_t Slices() const noexcept;  // SendBuffers from Share alive on block_
  // What slices keep from being overwritten: nothing, only the bytes of the
  // last one handed out (last_begin_..last_end_), or anything in the block.
  Pinned Pin() const noexcept;
  // The buffer is empty but not at the front (a slice kept Consume from
  // rewinding): places the next read clear of what is pinned, in one of the
  // block's two halves. False if neither half has the room.
  bool PlaceEmptyRead(std::size_t min_writable) noexcept;
  // Empty and nothing pinned: reads start over at the front.
  void Rewind() noexcept;
  // A block of `capacity` bytes: the spare if it has that size and no slice
  // is left on it, else a new one.
  RefPtr<Block> BlockOf(std::size_t capacity);
  // Reads move to `next`, whose first `readable` bytes are the unread ones.
  void UseBlock(RefPtr<Block> next, std::size_t readable) noexcept;
  // A block grown past the initial size (a large frame) goes back to the
  // initial size once the buffer was empty before kShrinkAfterEmptyReads
  // reads in a row, each of which a block of the initial size would have
  // taken (slices of the old block keep it alive on their own). A peer
  // whose frames keep needing the room, arriving in pieces or whole, keeps
  // it: no allocation per frame.
  void ShrinkWhenIdle(std::size_t min_writable);
  static constexpr uint32_t kShrinkAfterEmptyReads = 16;

  RefPtr<Block> block_;
  // A block of the initial size that reads left while it was still shared;
  // reused once its slices are gone, dropped when nothing is queued.
  RefPtr<Block> spare_;
  uint8_t* data_ = nullptr;  // block_'s bytes
  std::size_t base_capacity_ = 0;  // the initial capacity: every new block starts from it
  std::size_t capacity_ = 0;
  std::size_t end_ = 0;  // end of the writable region: capacity_, or last_begin_ after a wrap
  std::size_t read_ = 0;
  std::size_t write_ = 0;
  // The last slice handed out: its tag (Block::live_last holds it while the
  // slice lives) and its bytes.
  uint64_t last_tag_ = 0;
  std::size_t last_begin_ = 0;
  std::size_t last_end_ = 0;
  uint32_t empty_reads_ = 0;  // see ShrinkWhenIdle
  std::size_t last_read_ = 0;  // the last CommitWrite's bytes
};

}  // namespace keel::net
