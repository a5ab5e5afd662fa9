#include "apps/chat_server/names.h"

#include "keel/proto/utf.h"

namespace keel::chat {

ErrorCode CheckName(std::string_view name, const NameLimits& limits, ErrorCode invalid) noexcept {
  if (!proto::IsValidUtf8(name)) return invalid;
  const size_t n = proto::CountCodePoints(name);
  if (n < limits.min_code_points || n > limits.max_code_points) return invalid;
  if (name.empty()) return ERROR_NONE;  // allowed only with min_code_points == 0
  if (name.front() == ' ' || name.back() == ' ') return invalid;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == '@' || c == '#') return invalid;
  }
  return ERROR_NONE;
}

}  // namespace keel::chat
