#pragma once
// The frame on the wire (../shared/DESIGN.md, "Wire format"):
//
//   0       2       4                     size
//   +-------+-------+----------------------+
//   | size  |  id   | payload (size - 4)   |    size, id: u16 little-endian
//   +-------+-------+----------------------+    size counts the 4-byte header
//
// This is the framing of the IOCP "ServerCore" servers and their Unity/C#
// clients, so those clients talk to Keel unchanged. Functions here are pure.

#include <cstddef>
#include <cstdint>

namespace keel::proto {

inline constexpr size_t kFrameHeaderSize = 4;
inline constexpr size_t kMaxFrameSize = 0xFFFF;  // a u16 size field can say no more

inline constexpr uint16_t LoadU16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

inline constexpr void StoreU16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

inline constexpr void StoreFrameHeader(uint8_t* p, uint16_t size, uint16_t id) noexcept {
  StoreU16(p, size);
  StoreU16(p + 2, id);
}

}  // namespace keel::proto
