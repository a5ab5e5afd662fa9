#pragma once
// UTF-8 validation at the edge, and UTF-8 <-> UTF-16 for clients that speak
// UTF-16 (C# strings). Strict: overlong forms, surrogates encoded in UTF-8,
// code points above U+10FFFF and unpaired UTF-16 surrogates are invalid.
// Pure functions, thread-safe.

#include <optional>
#include <string>
#include <string_view>

namespace keel::proto {

bool IsValidUtf8(std::string_view text) noexcept;

// nullopt if `utf8` is not valid UTF-8.
std::optional<std::u16string> Utf8ToUtf16(std::string_view utf8);
// nullopt if `utf16` has an unpaired surrogate.
std::optional<std::string> Utf16ToUtf8(std::u16string_view utf16);

// Code points in valid UTF-8 (for length limits on nicknames and messages).
size_t CountCodePoints(std::string_view utf8) noexcept;

}  // namespace keel::proto
