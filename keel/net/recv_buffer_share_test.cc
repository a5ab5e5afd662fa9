// RecvBuffer::Share: slices that point into the receive buffer, and the
// rule that no read lands on bytes a live slice refers to.
#include "keel/net/recv_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "keel/net/testing/recv_buffer_util.h"

namespace keel::net {
namespace {

using testing::Put;
using testing::Str;

// A shared slice pins its bytes: the buffer does not rewind under it, and
// when it must compact it moves to another block, carrying only the
// unconsumed bytes; the slice still reads what was received.
TEST(RecvBuffer, ASharedSliceKeepsItsBytesWhileTheBufferReadsOn) {
  RecvBuffer b(64);
  Put(b, "hello, world");
  SendBufferRef slice = b.Share(b.Readable().first(5));
  EXPECT_TRUE(b.Shared());
  EXPECT_EQ(slice->data(), b.Readable().data()) << "a slice is not a copy";
  b.Consume(12);
  EXPECT_EQ(b.Writable().size(), 64u - 12u) << "rewound over shared bytes";
  Put(b, std::string(40, 'x').c_str());
  b.Consume(30);
  EXPECT_TRUE(b.PrepareWrite(40)) << "compacting over a shared block must move to another";
  EXPECT_EQ(Str(b), std::string(10, 'x'));
  EXPECT_GE(b.Writable().size(), 40u);
  EXPECT_FALSE(b.Shared()) << "the new block has no slices";
  Put(b, std::string(50, 'y').c_str());  // overwrite everything writable
  EXPECT_EQ(Str(slice), "hello");
}

TEST(RecvBuffer, RewindsAndCompactsInPlaceOnceTheSlicesAreGone) {
  RecvBuffer b(64);
  Put(b, "hello");
  {
    SendBufferRef slice = b.Share(b.Readable());
    EXPECT_TRUE(b.Shared());
  }
  EXPECT_FALSE(b.Shared());
  b.Consume(5);
  EXPECT_EQ(b.Writable().size(), 64u) << "not rewound";
  const uint8_t* front = b.Writable().data();
  Put(b, std::string(60, 'a').c_str());
  b.Consume(50);
  EXPECT_FALSE(b.PrepareWrite(40));
  EXPECT_EQ(b.Readable().data(), front) << "compacted into another block";
}

// An echo's pattern: the block left while shared becomes the spare and is
// reused once its slice is gone, so two blocks alternate without new
// allocations; a spare still shared is left to its slice.
TEST(RecvBuffer, AlternatesTwoBlocksWhenTheOldOnesSlicesAreGone) {
  RecvBuffer b(64);
  auto fill = [&b](const char* s) {
    Put(b, s);
    SendBufferRef slice = b.Share(b.Readable());
    b.Consume(b.ReadableBytes());
    return slice;
  };
  const uint8_t* a = b.Readable().data();
  SendBufferRef s1 = fill(std::string(60, '1').c_str());
  EXPECT_TRUE(b.PrepareWrite(32));  // A shared: to a fresh block B
  const uint8_t* block_b = b.Writable().data();
  EXPECT_NE(block_b, a);
  s1.reset();  // A's slice written
  SendBufferRef s2 = fill(std::string(60, '2').c_str());
  EXPECT_TRUE(b.PrepareWrite(32));  // B shared: back to A
  EXPECT_EQ(b.Writable().data(), a);
  SendBufferRef s3 = fill(std::string(60, '3').c_str());  // in A; B's slice s2 still alive
  EXPECT_TRUE(b.PrepareWrite(32));  // neither A nor B free: a third block
  EXPECT_NE(b.Writable().data(), a);
  EXPECT_NE(b.Writable().data(), block_b);
  Put(b, std::string(60, '4').c_str());
  EXPECT_EQ(Str(s2), std::string(60, '2'));
  EXPECT_EQ(Str(s3), std::string(60, '3'));
}

// An echo's pattern: each message is shared and consumed, and the previous
// one's write completes before the next message arrives. Only the last slice
// is ever queued, so reads go on after it or wrap to the front up to it: one
// block, no moves, and the writable region never reaches into the slice.
TEST(RecvBuffer, AnEchoWrapsAroundItsLastSliceInOneBlock) {
  RecvBuffer b(64);
  const uint8_t* base = b.Writable().data();
  SendBufferRef queued;
  for (int i = 0; i < 40; ++i) {
    const std::string msg(20, static_cast<char>('a' + i % 26));
    EXPECT_FALSE(b.PrepareWrite(20)) << "round " << i << " left the block";
    auto w = b.Writable();
    ASSERT_GE(w.size(), 20u);
    ASSERT_GE(w.data(), base);
    ASSERT_LE(w.data() + w.size(), base + 64) << "round " << i;
    if (queued) {  // the writable region is clear of the queued slice
      const bool before = w.data() + w.size() <= queued->data();
      const bool after = w.data() >= queued->data() + queued->size();
      ASSERT_TRUE(before || after) << "round " << i << ": a read could overwrite the queued slice";
    }
    std::memcpy(w.data(), msg.data(), 20);
    b.CommitWrite(20);
    SendBufferRef slice = b.Share(b.Readable());
    b.Consume(20);
    if (queued) {
      const std::string prev(20, static_cast<char>('a' + (i - 1) % 26));
      ASSERT_EQ(Str(queued), prev) << "round " << i;
    }
    queued = slice;  // the previous write completes; this one is queued
  }
}

// The two cases the wrap must refuse: a last slice still queued after the
// reads wrapped below it (reading on to the end would cross it), and an
// older slice still queued in front (the last one alone does not say the
// front is free). Either way no writable byte may lie over a queued slice.
TEST(RecvBuffer, NeverReadsOverAnySliceStillQueued) {
  auto clear_of = [](std::span<uint8_t> w, const SendBufferRef& s) {
    return w.data() + w.size() <= s->data() || w.data() >= s->data() + s->size();
  };
  {
    RecvBuffer b(64);
    Put(b, std::string(40, 'a').c_str());
    SendBufferRef written = b.Share(b.Readable());  // [0, 40)
    b.Consume(40);
    Put(b, std::string(20, 'b').c_str());
    SendBufferRef queued = b.Share(b.Readable());  // [40, 60), stays queued
    written.reset();                               // [0, 40) is written
    b.Consume(20);
    EXPECT_FALSE(b.PrepareWrite(20));  // wraps: [0, 40)
    EXPECT_TRUE(clear_of(b.Writable(), queued));
    Put(b, std::string(40, 'c').c_str());
    b.Consume(40);
    b.PrepareWrite(20);  // the same slice is still queued, above the reads
    EXPECT_TRUE(clear_of(b.Writable(), queued)) << "reading on to the end crosses the queued slice";
    Put(b, std::string(20, 'd').c_str());
    EXPECT_EQ(Str(queued), std::string(20, 'b'));
  }
  // An older slice at [0, 10) still queued, then the last one at [30, 50).
  auto older_then_last = [](RecvBuffer& b, SendBufferRef* last) {
    Put(b, std::string(10, 'a').c_str());
    SendBufferRef older = b.Share(b.Readable());
    b.Consume(10);
    Put(b, std::string(20, 'x').c_str());
    b.Consume(20);
    Put(b, std::string(20, 'b').c_str());
    *last = b.Share(b.Readable());
    b.Consume(20);
    return older;
  };
  {
    RecvBuffer b(64);
    SendBufferRef last;
    SendBufferRef older = older_then_last(b, &last);  // both queued
    EXPECT_TRUE(b.PrepareWrite(20)) << "with two slices queued the block is not free below the last";
    EXPECT_TRUE(clear_of(b.Writable(), older));
    Put(b, std::string(20, 'c').c_str());
    EXPECT_EQ(Str(older), std::string(10, 'a'));
    EXPECT_EQ(Str(last), std::string(20, 'b'));
  }
  {
    // The last slice written, the older one still queued: one slice alive,
    // but not the last, so the front is not free either.
    RecvBuffer b(64);
    SendBufferRef last;
    SendBufferRef older = older_then_last(b, &last);
    last.reset();
    b.PrepareWrite(20);
    EXPECT_TRUE(clear_of(b.Writable(), older)) << "wrapped over an older slice still queued";
    Put(b, std::string(20, 'c').c_str());
    EXPECT_EQ(Str(older), std::string(10, 'a'));
  }
}

// The buffer does not hold the last slice it handed out: once that slice is
// released, the SendBuffer (and the send chunk it was carved from) is gone,
// so an idle session pins nothing but its own block.
TEST(RecvBuffer, AReleasedSliceIsNotKeptByTheBuffer) {
  RecvBuffer b(64);
  const SendBufferStats base = SendBuffer::Stats();
  Put(b, "hello");
  {
    SendBufferRef slice = b.Share(b.Readable());
    EXPECT_EQ(SendBuffer::Stats().buffers_live, base.buffers_live + 1);
  }
  EXPECT_EQ(SendBuffer::Stats().buffers_live, base.buffers_live) << "the buffer still holds its last slice";
  EXPECT_FALSE(b.Shared());
}

// A block grown for one large frame is not the size of every later block:
// a switch while shared starts again from the initial capacity, and a spare
// of the initial size is never reused for a frame that needs more.
TEST(RecvBuffer, BlocksGoBackToTheInitialSizeAndASpareIsOnlyReusedWhenItFits) {
  RecvBuffer b(64);
  Put(b, std::string(60, 'a').c_str());
  const uint8_t* block_a = b.Readable().data();
  SendBufferRef s1 = b.Share(b.Readable());
  b.Consume(60);
  EXPECT_TRUE(b.PrepareWrite(32));  // shared: to block B; A (64) becomes the spare
  s1.reset();                       // A is free again
  Put(b, std::string(40, 'b').c_str());
  SendBufferRef s2 = b.Share(b.Readable().first(10));  // B pinned by a slice
  b.Consume(10);                                       // 30 unread bytes of a large frame
  EXPECT_TRUE(b.PrepareWrite(100));                    // 30 + 100 > 64: a bigger block, not the spare
  EXPECT_NE(b.Readable().data(), block_a) << "the 64-byte spare was reused for 130 bytes";
  EXPECT_GE(b.Writable().size(), 100u);
  EXPECT_EQ(Str(b), std::string(30, 'b'));
  Put(b, std::string(100, 'c').c_str());
  b.Consume(b.ReadableBytes());
  EXPECT_EQ(b.capacity(), 256u);
  Put(b, std::string(240, 'd').c_str());
  SendBufferRef s3 = b.Share(b.Readable());
  b.Consume(240);
  EXPECT_TRUE(b.PrepareWrite(32));  // shared again: a block of the initial size
  EXPECT_EQ(b.capacity(), 64u) << "the large block's size was kept";
  EXPECT_EQ(Str(s2), std::string(10, 'b'));
  EXPECT_EQ(Str(s3), std::string(240, 'd'));
}

TEST(RecvBuffer, ContainsOnlyTheReadableBytes) {
  RecvBuffer b(64);
  Put(b, "0123456789");
  b.Consume(2);
  const auto r = b.Readable();
  EXPECT_TRUE(b.Contains(r));
  EXPECT_TRUE(b.Contains(r.subspan(3, 4)));
  EXPECT_FALSE(b.Contains({r.data() - 1, 2})) << "a consumed byte";
  EXPECT_FALSE(b.Contains({r.data(), r.size() + 1})) << "past the written bytes";
  const uint8_t elsewhere[4] = {};
  EXPECT_FALSE(b.Contains(elsewhere));
}

// The storage lives as long as its last slice, on whichever side that is.
TEST(RecvBuffer, ASliceOutlivesItsBuffer) {
  SendBufferRef slice;
  {
    RecvBuffer b(64);
    Put(b, "still here");
    slice = b.Share(b.Readable());
  }
  EXPECT_EQ(Str(slice), "still here");  // ASan: no use after free
}

// A ping-pong echo (each message consumed whole, its slice queued until the
// next one arrives) alternates between the front and the middle of the
// block: two places, whatever the message size up to half the block, so it
// keeps two messages' worth of the block warm instead of walking all of it.
TEST(RecvBuffer, AnEchoAlternatesBetweenTheFrontAndTheMiddle) {
  for (const std::size_t size : {std::size_t{1}, std::size_t{7}, std::size_t{20}, std::size_t{32}}) {
    RecvBuffer b(64);
    const uint8_t* base = b.Writable().data();
    SendBufferRef queued;
    for (int i = 0; i < 12; ++i) {
      EXPECT_FALSE(b.PrepareWrite(std::min<std::size_t>(size, 32)));
      const uint8_t* expected = base + (i % 2 == 0 ? 0 : 32);
      ASSERT_EQ(b.Writable().data(), expected) << "size " << size << ", round " << i;
      const std::string msg(size, static_cast<char>('a' + i));
      std::memcpy(b.Writable().data(), msg.data(), size);
      b.CommitWrite(size);
      SendBufferRef slice = b.Share(b.Readable());
      b.Consume(size);
      if (queued) {
        ASSERT_EQ(Str(queued), std::string(size, static_cast<char>('a' + i - 1)));
      }
      queued = slice;
    }
  }
}

}  // namespace
}  // namespace keel::net
