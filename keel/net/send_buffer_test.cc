#include "keel/net/send_buffer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

namespace keel::net {
namespace {

TEST(SendBuffer, CopyHoldsTheBytes) {
  const uint8_t src[] = {1, 2, 3, 4, 5};
  SendBufferRef b = SendBuffer::Copy(src);
  ASSERT_EQ(b->size(), 5u);
  EXPECT_EQ(std::memcmp(b->data(), src, 5), 0);
  b->Truncate(3);
  EXPECT_EQ(b->size(), 3u);
  b->Truncate(9);
  EXPECT_EQ(b->size(), 3u);
}

TEST(SendBuffer, SmallBuffersShareChunksAndReturnToBaseline) {
  const SendBufferStats base = SendBuffer::Stats();
  std::vector<SendBufferRef> bufs;
  for (int i = 0; i < 1000; ++i) bufs.push_back(SendBuffer::Allocate(100));
  SendBufferStats mid = SendBuffer::Stats();
  EXPECT_EQ(mid.buffers_live, base.buffers_live + 1000);
  // 1000 x (100 + header) bytes fit in a handful of 64 KiB chunks.
  EXPECT_LE(mid.chunks_live - mid.chunks_pooled, base.chunks_live - base.chunks_pooled + 4);
  EXPECT_EQ(mid.large_allocations, base.large_allocations);
  bufs.clear();
  const SendBufferStats end = SendBuffer::Stats();
  EXPECT_EQ(end.buffers_live, base.buffers_live);
  EXPECT_LE(end.chunks_live - end.chunks_pooled, base.chunks_live - base.chunks_pooled + 1);
}

TEST(SendBuffer, LargeBuffersComeFromTheSystem) {
  const SendBufferStats base = SendBuffer::Stats();
  {
    SendBufferRef b = SendBuffer::Allocate(SendBuffer::kMaxPooledSize + 1);
    std::memset(b->data(), 7, b->size());
    EXPECT_EQ(SendBuffer::Stats().large_allocations, base.large_allocations + 1);
  }
  EXPECT_EQ(SendBuffer::Stats().buffers_live, base.buffers_live);
}

TEST(SendBuffer, ChunksAreRecycledAcrossThreads) {
  const SendBufferStats base = SendBuffer::Stats();
  std::vector<SendBufferRef> bufs;
  std::thread producer([&] {
    for (int i = 0; i < 2000; ++i) bufs.push_back(SendBuffer::Allocate(1000));
  });
  producer.join();  // the producer's thread-local chunk is released at exit
  bufs.clear();     // released here, on another thread
  const SendBufferStats end = SendBuffer::Stats();
  EXPECT_EQ(end.buffers_live, base.buffers_live);
  EXPECT_EQ(end.chunks_live - end.chunks_pooled, base.chunks_live - base.chunks_pooled);
  EXPECT_GT(end.chunks_pooled, 0u);
}

TEST(SendBuffer, RefCountSharesOneBuffer) {
  SendBufferRef a = SendBuffer::Allocate(10);
  SendBufferRef b = a;
  EXPECT_EQ(a->RefCountForTesting(), 2u);
  b.reset();
  EXPECT_EQ(a->RefCountForTesting(), 1u);
}

// Wrap: no copy, the owner lives while the buffer does, and the buffer is
// counted like any other (it is released on another thread here).
TEST(SendBuffer, WrapKeepsItsOwnerAliveWithoutCopying) {
  struct Owner : RefCounted {
    explicit Owner(bool* flag) : gone(flag) {}
    ~Owner() override { *gone = true; }
    uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    bool* gone;
  };
  bool gone = false;
  const SendBufferStats base = SendBuffer::Stats();
  SendBufferRef b;
  {
    RefPtr<Owner> owner = MakeRef<Owner>(&gone);
    b = SendBuffer::Wrap(owner, std::span<const uint8_t>(owner->bytes).subspan(2, 4));
    EXPECT_EQ(owner->RefCountForTesting(), 2u);
    EXPECT_EQ(b->data(), owner->bytes + 2);
    EXPECT_EQ(b->size(), 4u);
  }
  EXPECT_FALSE(gone) << "the buffer must keep its owner";
  EXPECT_EQ(b->bytes()[0], 3);
  EXPECT_EQ(SendBuffer::Stats().buffers_live, base.buffers_live + 1);
  std::thread([b = std::move(b)]() mutable { b.reset(); }).join();
  EXPECT_TRUE(gone);
  EXPECT_EQ(SendBuffer::Stats().buffers_live, base.buffers_live);
}

}  // namespace
}  // namespace keel::net
