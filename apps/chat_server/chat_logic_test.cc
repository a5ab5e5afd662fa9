// The chat server's rules that need no sockets or threads: names, rooms.
#include <gtest/gtest.h>

#include "chat.keel.h"
#include "apps/chat_server/names.h"
#include "apps/chat_server/room_state.h"

namespace keel::chat {
namespace {

TEST(ChatNames, AcceptsOrdinaryNicknames) {
  const NameLimits limits;
  EXPECT_EQ(CheckNickname("kim", limits), ERROR_NONE);
  EXPECT_EQ(CheckNickname("\xed\x95\x9c\xea\xb8\x80", limits), ERROR_NONE);  // 2 code points
  EXPECT_EQ(CheckNickname("player one", limits), ERROR_NONE);
}

TEST(ChatNames, RefusesBadNicknames) {
  const NameLimits limits;
  for (const char* bad : {"", "a", "seventeen-chars-x", " kim", "kim ", "k\nm", "k\x7fm", "@kim",
                          "#room", "\xc3\x28xx"}) {
    EXPECT_EQ(CheckNickname(bad, limits), ERROR_NICKNAME_INVALID) << bad;
  }
  EXPECT_EQ(CheckRoomName("", limits), ERROR_ROOM_NAME_INVALID);
}

TEST(ChatRoom, JoinSendsMembersAndHistory) {
  RoomState room("lobby", {.max_members = 10, .history = 2});
  RoomJoined joined;
  ASSERT_EQ(room.Join(1, "kim", joined), ERROR_NONE);
  EXPECT_EQ(joined.last_seq(), 0u);
  RoomMessage m;
  Say say;
  for (const char* text : {"one", "two", "three"}) {
    say.set_text(text);
    ASSERT_EQ(room.Say(1, say, m), ERROR_NONE);
  }
  RoomJoined second;
  ASSERT_EQ(room.Join(2, "lee", second), ERROR_NONE);
  ASSERT_EQ(second.members_size(), 2);
  ASSERT_EQ(second.history_size(), 2);
  EXPECT_EQ(second.history(0).text(), "two");
  EXPECT_EQ(second.history(1).text(), "three");
  EXPECT_EQ(second.history(1).seq(), 3u);
  EXPECT_EQ(second.last_seq(), 3u);  // the next message lee sees is 4
}

TEST(ChatRoom, SequenceNumbersHaveNoGaps) {
  RoomState room("lobby", {});
  RoomJoined joined;
  room.Join(1, "kim", joined);
  Say say;
  say.set_text("x");
  RoomMessage m;
  for (uint64_t i = 1; i <= 100; ++i) {
    ASSERT_EQ(room.Say(1, say, m), ERROR_NONE);
    ASSERT_EQ(m.seq(), i);
  }
  EXPECT_EQ(room.messages(), 100u);
}

TEST(ChatRoom, EnforcesItsLimits) {
  RoomState room("small", {.max_members = 1, .max_text_bytes = 4});
  RoomJoined joined;
  EXPECT_EQ(room.Join(1, "kim", joined), ERROR_NONE);
  EXPECT_EQ(room.Join(1, "kim", joined), ERROR_ALREADY_IN_ROOM);
  EXPECT_EQ(room.Join(2, "lee", joined), ERROR_ROOM_FULL);
  Say say;
  say.set_text("hello");
  RoomMessage m;
  EXPECT_EQ(room.Say(1, say, m), ERROR_MESSAGE_TOO_LONG);
  EXPECT_EQ(room.Say(2, say, m), ERROR_NOT_IN_ROOM);
  EXPECT_EQ(room.Leave(2), ERROR_NOT_IN_ROOM);
  EXPECT_EQ(room.Leave(1), ERROR_NONE);
  EXPECT_EQ(room.size(), 0u);
}

TEST(ChatProtocol, ClientsMaySendOnlyClientMessages) {
  const auto& table = ChatProtocolTable();
  EXPECT_TRUE(table.AllowedIn(kLoginId, 1));
  EXPECT_FALSE(table.AllowedIn(kSayId, 1)) << "no chatting before login";
  EXPECT_TRUE(table.AllowedIn(kSayId, 2));
  EXPECT_TRUE(table.AllowedIn(kHeartbeatId, 1));
  EXPECT_FALSE(table.Known(kRoomMessageId));
  EXPECT_FALSE(table.Known(kKickedId));
}

}  // namespace
}  // namespace keel::chat
