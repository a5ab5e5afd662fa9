#pragma once
// Rules for the names users choose: nicknames and room names. Checked at the
// edge, before any name reaches a room or a log line.

#include <cstdint>
#include <string_view>

#include "chat.pb.h"

namespace keel::chat {

struct NameLimits {
  uint32_t min_code_points = 2;
  uint32_t max_code_points = 16;
};

// ERROR_NONE if `name` is valid UTF-8 of [min, max] code points with no
// control characters, no leading/trailing space and no '@' or '#' (kept for
// mentions and channels); otherwise `invalid`.
ErrorCode CheckName(std::string_view name, const NameLimits& limits, ErrorCode invalid) noexcept;

inline ErrorCode CheckNickname(std::string_view name, const NameLimits& limits) noexcept {
  return CheckName(name, limits, ERROR_NICKNAME_INVALID);
}
inline ErrorCode CheckRoomName(std::string_view name, const NameLimits& limits) noexcept {
  return CheckName(name, limits, ERROR_ROOM_NAME_INVALID);
}

}  // namespace keel::chat
