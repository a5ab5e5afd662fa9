#include "keel/proto/buffer_reader.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace keel::proto {
namespace {

// A hand-rolled "inventory" packet: fixed part, then names and item ids.
struct Inventory {
  uint32_t player;
  std::string_view name;
  std::vector<uint32_t> items;
};

std::vector<uint8_t> Encode(const Inventory& inv) {
  std::vector<uint8_t> out(256);
  BufferWriter w(out);
  w.Write(inv.player);
  const size_t header = w.size();
  w.Write<uint16_t>(0);  // name offset, filled below
  w.Write<uint16_t>(static_cast<uint16_t>(inv.name.size()));
  w.Write<uint16_t>(0);  // items offset
  w.Write<uint16_t>(static_cast<uint16_t>(inv.items.size()));
  w.WriteAt<uint16_t>(header, static_cast<uint16_t>(w.size()));
  w.WriteString(inv.name);
  w.WriteAt<uint16_t>(header + 4, static_cast<uint16_t>(w.size()));
  for (uint32_t item : inv.items) w.Write(item);
  EXPECT_TRUE(w.ok());
  out.resize(w.size());
  return out;
}

TEST(BufferReader, ReadsFixedThenVariablePartsInPlace) {
  const auto bytes = Encode({42, "kim", {7, 8, 9}});
  BufferReader r(bytes);
  const auto player = r.Read<uint32_t>();
  const auto name_off = r.Read<uint16_t>(), name_n = r.Read<uint16_t>();
  const auto items_off = r.Read<uint16_t>(), items_n = r.Read<uint16_t>();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*player, 42u);
  EXPECT_EQ(r.ViewString(*name_off, *name_n), "kim");
  std::vector<uint32_t> items;
  ASSERT_TRUE(r.ReadArrayCopy(*items_off, *items_n, items));
  EXPECT_EQ(items, (std::vector<uint32_t>{7, 8, 9}));
  EXPECT_TRUE(r.ok());
}

TEST(BufferReader, RefusesReadsPastTheEnd) {
  const std::array<uint8_t, 3> bytes{1, 2, 3};
  BufferReader r(bytes);
  EXPECT_TRUE(r.Read<uint16_t>().has_value());
  EXPECT_FALSE(r.Read<uint16_t>().has_value());
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.Read<uint8_t>().has_value()) << "a failed reader stays failed";
}

TEST(BufferReader, RefusesForgedOffsetsAndCounts) {
  const auto bytes = Encode({1, "ab", {5}});
  {
    BufferReader r(bytes);
    EXPECT_TRUE(r.ViewString(bytes.size() + 1, 0).empty());
    EXPECT_FALSE(r.ok());
  }
  {
    BufferReader r(bytes);
    std::vector<uint32_t> out;
    EXPECT_FALSE(r.ReadArrayCopy<uint32_t>(0, SIZE_MAX / 2, out)) << "count * size must not wrap";
    EXPECT_TRUE(out.empty());
  }
  {
    BufferReader r(bytes);
    EXPECT_TRUE(r.ViewArray<uint32_t>(bytes.size() - 2, 1).empty());
    EXPECT_FALSE(r.ok());
  }
}

TEST(BufferReader, ViewsAlignedArraysWithoutCopying) {
  alignas(4) std::array<uint8_t, 12> bytes{};
  bytes[4] = 7;
  BufferReader r(bytes);
  const auto view = r.ViewArray<uint32_t>(4, 2);
  ASSERT_EQ(view.size(), 2u);
  EXPECT_EQ(view[0], 7u);
  EXPECT_EQ(static_cast<const void*>(view.data()), static_cast<const void*>(bytes.data() + 4));
  EXPECT_TRUE(r.ViewArray<uint32_t>(1, 1).empty()) << "misaligned view refused";
}

TEST(BufferWriter, RefusesToOverflowItsBuffer) {
  std::array<uint8_t, 5> out{};
  BufferWriter w(out);
  EXPECT_TRUE(w.Write<uint32_t>(1));
  EXPECT_FALSE(w.Write<uint16_t>(2));
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 4u);
  BufferWriter w2(out);
  EXPECT_FALSE(w2.WriteAt<uint32_t>(0, 1)) << "WriteAt only rewrites what was written";
}

}  // namespace
}  // namespace keel::proto
