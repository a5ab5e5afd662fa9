// RecvBuffer without sharing: cursors, compaction, growth and the shrink
// back to the initial size.
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

TEST(RecvBuffer, ConsumesFromTheFrontAndResetsWhenEmpty) {
  RecvBuffer b(64);
  Put(b, "hello world");
  b.Consume(6);
  EXPECT_EQ(Str(b), "world");
  b.Consume(5);
  EXPECT_EQ(b.ReadableBytes(), 0u);
  EXPECT_EQ(b.Writable().size(), 64u);  // back at the front
}

TEST(RecvBuffer, CompactsBeforeGrowing) {
  RecvBuffer b(64);
  std::string s(60, 'a');
  Put(b, s.c_str());
  b.Consume(50);
  b.PrepareWrite(40);  // 10 readable + 40 fits in 64 after compaction
  EXPECT_EQ(b.capacity(), 64u);
  EXPECT_EQ(Str(b), std::string(10, 'a'));
  EXPECT_GE(b.Writable().size(), 40u);
}

TEST(RecvBuffer, GrowsKeepingUnconsumedBytes) {
  RecvBuffer b(64);
  Put(b, "0123456789");
  b.PrepareWrite(100);
  EXPECT_GE(b.capacity(), 110u);
  EXPECT_EQ(Str(b), "0123456789");
}

// Unconsumed bytes past the initial capacity (a frame still arriving) keep
// growing the buffer: the new size counts them, not the initial capacity.
TEST(RecvBuffer, GrowsAgainWhileTheUnreadBytesExceedTheInitialCapacity) {
  RecvBuffer b(64);
  Put(b, std::string(60, 'a').c_str());
  Put(b, std::string(100, 'b').c_str());  // 160 unread
  Put(b, std::string(200, 'c').c_str());  // 360 unread
  EXPECT_GE(b.capacity(), 360u);
  EXPECT_EQ(Str(b), std::string(60, 'a') + std::string(100, 'b') + std::string(200, 'c'));
}

TEST(RecvBuffer, ConsumeNeverPassesTheWriteCursor) {
  RecvBuffer b(64);
  Put(b, "abc");
  b.Consume(10);
  EXPECT_EQ(b.ReadableBytes(), 0u);
}

// One large frame grows the buffer; once the frame is consumed and the
// buffer has been empty before a run of reads, it goes back to the initial
// size (memory does not stay at the largest frame a peer ever sent).
TEST(RecvBuffer, ShrinksBackToTheInitialSizeAfterALargeFrame) {
  RecvBuffer b(64);
  Put(b, std::string(500, 'L').c_str());
  ASSERT_GE(b.capacity(), 500u);
  b.Consume(500);
  // The read after the large one does not count (a block of the initial
  // size could not have taken that one); 16 small ones do.
  for (int i = 0; i < 16; ++i) {
    Put(b, "small");
    EXPECT_EQ(Str(b), "small");
    b.Consume(5);
  }
  EXPECT_GE(b.capacity(), 500u) << "shrunk before the run of empty reads";
  Put(b, "small");
  EXPECT_EQ(b.capacity(), 64u) << "the grown block was kept";
  EXPECT_EQ(Str(b), "small");
}

// A peer whose frames keep needing the room (each arrives in two reads)
// keeps the grown block: no allocation per frame.
TEST(RecvBuffer, KeepsTheGrownSizeWhileFramesNeedIt) {
  RecvBuffer b(256);
  const std::string half(150, 'h');  // a frame (300) needs more than 256
  Put(b, half.c_str());
  Put(b, half.c_str());
  b.Consume(300);
  const std::size_t grown = b.capacity();
  ASSERT_GE(grown, 300u);
  for (int frame = 1; frame < 40; ++frame) {
    Put(b, half.c_str());
    ASSERT_EQ(b.capacity(), grown) << "frame " << frame << ": shrunk between frames";
    Put(b, half.c_str());
    ASSERT_EQ(Str(b), half + half);
    b.Consume(300);
  }
}

// Frames larger than the initial block that arrive whole, one read each,
// find the buffer empty before every read: the grown block is still needed
// and kept (no allocation per frame).
TEST(RecvBuffer, KeepsTheGrownSizeForLargeFramesThatArriveWhole) {
  RecvBuffer b(256);
  const std::string frame(400, 'w');
  Put(b, frame.c_str());
  b.Consume(400);
  const std::size_t grown = b.capacity();
  ASSERT_GE(grown, 400u);
  for (int i = 0; i < 40; ++i) {
    b.PrepareWrite(128);  // what the loop asks for: half the initial size
    ASSERT_EQ(b.capacity(), grown) << "frame " << i << ": shrunk between whole frames";
    ASSERT_GE(b.Writable().size(), frame.size());
    std::memcpy(b.Writable().data(), frame.data(), frame.size());
    b.CommitWrite(frame.size());
    ASSERT_EQ(Str(b), frame);
    b.Consume(frame.size());
  }
}

// A slice of the grown block outlives the shrink (ASan: no use after free).
TEST(RecvBuffer, ASliceOfTheGrownBlockOutlivesTheShrink) {
  RecvBuffer b(64);
  Put(b, std::string(300, 'L').c_str());  // grows to 512; 212 bytes left after it
  SendBufferRef big = b.Share(b.Readable());
  b.Consume(300);
  // The read after the large one does not count; 16 small ones do.
  for (int i = 0; i < 16; ++i) {
    Put(b, "s");
    b.Consume(1);
  }
  ASSERT_GE(b.capacity(), 300u) << "left the grown block before the shrink";
  Put(b, "s");
  EXPECT_EQ(b.capacity(), 64u) << "not shrunk";
  EXPECT_EQ(Str(b), "s");
  EXPECT_EQ(Str(big), std::string(300, 'L'));
}

}  // namespace
}  // namespace keel::net
