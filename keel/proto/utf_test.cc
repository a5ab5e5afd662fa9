#include "keel/proto/utf.h"

#include <gtest/gtest.h>

namespace keel::proto {
namespace {

TEST(Utf8, AcceptsValidText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("hello"));
  EXPECT_TRUE(IsValidUtf8("\xed\x95\x9c\xea\xb8\x80"));      // 한글
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x8e\xae"));               // U+1F3AE
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));               // U+10FFFF
}

TEST(Utf8, RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\x80"));                  // stray continuation
  EXPECT_FALSE(IsValidUtf8("\xc3"));                  // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));              // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));          // UTF-16 surrogate in UTF-8
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));      // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8(std::string_view("a\xe2\x82", 3)));
}

TEST(Utf16, RoundTripsThroughUtf8) {
  const std::string text = "Keel \xed\x95\x9c \xf0\x9f\x8e\xae!";
  const auto utf16 = Utf8ToUtf16(text);
  ASSERT_TRUE(utf16.has_value());
  EXPECT_EQ(utf16->size(), 10u);  // the emoji is a surrogate pair
  EXPECT_EQ((*utf16)[6], 0x20u);
  EXPECT_EQ(Utf16ToUtf8(*utf16), text);
}

TEST(Utf16, RejectsUnpairedSurrogates) {
  EXPECT_FALSE(Utf16ToUtf8(u"\xD800").has_value());
  EXPECT_FALSE(Utf16ToUtf8(std::u16string{0xDC00, u'a'}).has_value());
  EXPECT_FALSE(Utf16ToUtf8(std::u16string{0xD800, u'a'}).has_value());
  EXPECT_FALSE(Utf8ToUtf16("\xc3").has_value());
}

TEST(Utf8, CountsCodePoints) {
  EXPECT_EQ(CountCodePoints("abc"), 3u);
  EXPECT_EQ(CountCodePoints("\xed\x95\x9c\xea\xb8\x80"), 2u);
  EXPECT_EQ(CountCodePoints("\xf0\x9f\x8e\xae"), 1u);
}

}  // namespace
}  // namespace keel::proto
