#include "keel/net/recv_buffer.h"

#include <gtest/gtest.h>

#include <cstring>

namespace keel::net {
namespace {

void Put(RecvBuffer& b, const char* s) {
  const std::size_t n = std::strlen(s);
  b.PrepareWrite(n);
  std::memcpy(b.Writable().data(), s, n);
  b.CommitWrite(n);
}

std::string Str(const RecvBuffer& b) {
  auto r = b.Readable();
  return {reinterpret_cast<const char*>(r.data()), r.size()};
}

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

TEST(RecvBuffer, ConsumeNeverPassesTheWriteCursor) {
  RecvBuffer b(64);
  Put(b, "abc");
  b.Consume(10);
  EXPECT_EQ(b.ReadableBytes(), 0u);
}

}  // namespace
}  // namespace keel::net
