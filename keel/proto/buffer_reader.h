#pragma once
// BufferReader / BufferWriter: bounds-checked little-endian binary structs,
// for hot packets that skip protobuf.
//
// Layout they are made for: a fixed part, then variable-length parts found
// through (offset, count) headers in the fixed part, read in place:
//
//   +-------------------------------+-----------+-----------+
//   | fixed part: u32 player, ...   | names...  | items...  |
//   |  u16 names_off, u16 names_n   |           |           |
//   |  u16 items_off, u16 items_n   |           |           |
//   +-------------------------------+-----------+-----------+
//   offsets count from the start of the payload
//
// Every read checks its bounds and fails (returns false / nullopt / empty)
// instead of reading past the payload; a failed reader stays failed, so a
// handler can read everything and check ok() once. Views returned point into
// the payload (no copies): valid while the payload is.
// Not thread-safe; cheap to copy.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace keel::proto {

class BufferReader {
 public:
  explicit BufferReader(std::span<const uint8_t> data) noexcept : data_(data) {}

  template <typename T>
    requires std::is_arithmetic_v<T>
  bool Read(T& out) noexcept {
    if (!Need(sizeof(T))) return false;
    std::memcpy(&out, data_.data() + pos_, sizeof(T));  // x86-64 and aarch64: little-endian
    pos_ += sizeof(T);
    return true;
  }
  template <typename T>
    requires std::is_arithmetic_v<T>
  std::optional<T> Read() noexcept {
    T v{};
    if (!Read(v)) return std::nullopt;
    return v;
  }

  // `count` elements of T at `offset` from the start, viewed in place. T
  // must be trivially copyable and the data suitably aligned; otherwise use
  // ReadArrayCopy.
  template <typename T>
    requires std::is_trivially_copyable_v<T>
  std::span<const T> ViewArray(size_t offset, size_t count) noexcept {
    if (!InRange(offset, count, sizeof(T)) ||
        reinterpret_cast<uintptr_t>(data_.data() + offset) % alignof(T) != 0) {
      ok_ = false;
      return {};
    }
    return {reinterpret_cast<const T*>(data_.data() + offset), count};
  }
  template <typename T>
    requires std::is_trivially_copyable_v<T>
  bool ReadArrayCopy(size_t offset, size_t count, std::vector<T>& out) {
    if (!InRange(offset, count, sizeof(T))) return ok_ = false;
    out.resize(count);
    std::memcpy(out.data(), data_.data() + offset, count * sizeof(T));
    return true;
  }
  // Bytes [offset, offset + size) as a string view (not validated as UTF-8).
  std::string_view ViewString(size_t offset, size_t size) noexcept {
    if (!InRange(offset, size, 1)) {
      ok_ = false;
      return {};
    }
    return {reinterpret_cast<const char*>(data_.data() + offset), size};
  }

  bool ok() const noexcept { return ok_; }
  size_t position() const noexcept { return pos_; }
  size_t remaining() const noexcept { return ok_ ? data_.size() - pos_ : 0; }

 private:
  bool Need(size_t n) noexcept {
    if (!ok_ || data_.size() - pos_ < n) return ok_ = false;
    return true;
  }
  bool InRange(size_t offset, size_t count, size_t elem) const noexcept {
    if (!ok_ || offset > data_.size()) return false;
    // count * elem without overflow, then against what is left after offset.
    return count <= (data_.size() - offset) / elem;
  }

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

class BufferWriter {
 public:
  explicit BufferWriter(std::span<uint8_t> out) noexcept : out_(out) {}

  template <typename T>
    requires std::is_arithmetic_v<T>
  bool Write(T v) noexcept {
    if (!Need(sizeof(T))) return false;
    std::memcpy(out_.data() + pos_, &v, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool WriteBytes(std::span<const uint8_t> bytes) noexcept {
    if (!Need(bytes.size())) return false;
    if (!bytes.empty()) std::memcpy(out_.data() + pos_, bytes.data(), bytes.size());
    pos_ += bytes.size();
    return true;
  }
  bool WriteString(std::string_view s) noexcept {
    return WriteBytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  }
  // Overwrites an earlier field (an offset/count header filled in later).
  template <typename T>
    requires std::is_arithmetic_v<T>
  bool WriteAt(size_t offset, T v) noexcept {
    if (!ok_ || offset > pos_ || pos_ - offset < sizeof(T)) return ok_ = false;
    std::memcpy(out_.data() + offset, &v, sizeof(T));
    return true;
  }

  bool ok() const noexcept { return ok_; }
  size_t size() const noexcept { return pos_; }

 private:
  bool Need(size_t n) noexcept {
    if (!ok_ || out_.size() - pos_ < n) return ok_ = false;
    return true;
  }
  std::span<uint8_t> out_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace keel::proto
