// The code protoc-gen-keel generates for tests/proto/sample_v{1,2}.proto:
// ids, protocol table, typed dispatch over all 65,536 ids, builders.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "keel/core/log.h"
#include "keel/proto/packet_framer.h"
#include "keel/proto/protobuf_log.h"
#include "sample_v1.keel.h"
#include "sample_v2.keel.h"

namespace {

using keel::proto::RejectReason;

// Ids are fixed by option: version 2 added a message in front, and no old
// message moved.
static_assert(sample::v1::kLoginId == sample::v2::kLoginId);
static_assert(sample::v1::kLoginOkId == sample::v2::kLoginOkId);
static_assert(sample::v1::kSayId == sample::v2::kSayId);
static_assert(sample::v1::kMoveId == sample::v2::kMoveId);
static_assert(sample::v2::kEmoteId == 12);
static_assert(keel::proto::MessageId<sample::v1::Say>::value == 10);

struct FakeSession {
  std::string name;
};
using FakeSessionPtr = std::shared_ptr<FakeSession>;

class Recorder final : public sample::v1::SampleV1Handler<FakeSessionPtr> {
 public:
  void HandleLogin(const FakeSessionPtr& s, const sample::v1::Login& m) override {
    calls.push_back(s->name + " login " + m.nickname());
  }
  void HandleSay(const FakeSessionPtr& s, const sample::v1::Say& m) override {
    calls.push_back(s->name + " say " + m.text());
  }
  void HandleMove(const FakeSessionPtr& s, const sample::v1::Move& m) override {
    calls.push_back(s->name + " move " + std::to_string(static_cast<int>(m.x())) + "," +
                    std::to_string(static_cast<int>(m.y())));
  }
  std::vector<std::string> calls;
};

TEST(ProtocPlugin, TableSaysWhoMaySendWhat) {
  const auto& table = sample::v1::SampleV1ProtocolTable();
  EXPECT_TRUE(table.AllowedIn(sample::v1::kLoginId, 1));
  EXPECT_FALSE(table.AllowedIn(sample::v1::kLoginId, 2));
  EXPECT_TRUE(table.AllowedIn(sample::v1::kSayId, 2));
  EXPECT_FALSE(table.AllowedIn(sample::v1::kSayId, 1));
  EXPECT_FALSE(table.Known(sample::v1::kLoginOkId)) << "server-to-client messages are refused";
  EXPECT_EQ(table.RateOf(sample::v1::kSayId), 5u);
  EXPECT_FALSE(table.RateOf(sample::v1::kMoveId).has_value());
  int known = 0;
  for (uint32_t id = 0; id <= 0xFFFF; ++id) known += table.Known(static_cast<uint16_t>(id));
  EXPECT_EQ(known, 3);
}

TEST(ProtocPlugin, FramesReachTheirTypedHandlers) {
  Recorder handler;
  auto session = std::make_shared<FakeSession>(FakeSession{"s1"});
  sample::v1::Login login;
  login.set_nickname("kim");
  sample::v1::Say say;
  say.set_text("hello room");
  sample::v1::Move move;
  move.set_x(3);
  move.set_y(4);
  std::vector<uint8_t> stream;
  for (const auto& frame : {keel::proto::BuildFrame(login), keel::proto::BuildFrame(say),
                            keel::proto::BuildFrame(move)}) {
    stream.insert(stream.end(), frame.begin(), frame.end());
  }
  keel::proto::PacketFramer framer(sample::v1::SampleV1ProtocolTable(), {}, nullptr);
  framer.SetState(1);
  size_t consumed = 0;
  // Login is allowed before login; the rest after. Parse one frame at a time,
  // switching state after the login, as a server would.
  auto result = framer.Parse(std::span(stream).first(keel::proto::BuildFrame(login).size()), 0,
                             [&](const keel::proto::Frame& f) { return handler.Dispatch(session, f); });
  ASSERT_EQ(result.error, RejectReason::kNone);
  consumed += result.consumed;
  framer.SetState(2);
  result = framer.Parse(std::span(stream).subspan(consumed), 0,
                        [&](const keel::proto::Frame& f) { return handler.Dispatch(session, f); });
  ASSERT_EQ(result.error, RejectReason::kNone);
  EXPECT_EQ(handler.calls,
            (std::vector<std::string>{"s1 login kim", "s1 say hello room", "s1 move 3,4"}));
}

TEST(ProtocPlugin, DispatchRefusesEveryIdClientsMayNotSend) {
  Recorder handler;
  auto session = std::make_shared<FakeSession>();
  int dispatched = 0;
  for (uint32_t id = 0; id <= 0xFFFF; ++id) {
    const keel::proto::Frame frame{static_cast<uint16_t>(id), {}};
    const RejectReason r = handler.Dispatch(session, frame);
    if (r == RejectReason::kNone) {
      ++dispatched;
    } else {
      EXPECT_EQ(r, RejectReason::kUnknownId) << id;
    }
  }
  EXPECT_EQ(dispatched, 3);  // an empty payload is a valid (default) message
  EXPECT_EQ(handler.calls.size(), 3u);
}

TEST(ProtocPlugin, MalformedPayloadIsRefused) {
  Recorder handler;
  auto session = std::make_shared<FakeSession>();
  const std::vector<uint8_t> garbage{0xFF, 0xFF, 0xFF, 0xFF, 0x0F};
  EXPECT_EQ(handler.Dispatch(session, {sample::v1::kSayId, garbage}), RejectReason::kBadPayload);
  // A string field that is not UTF-8 (proto3 strings must be).
  sample::v1::Say say;
  say.set_text(std::string("\xc3\x28", 2));
  const auto frame = keel::proto::BuildFrame(say);
  EXPECT_EQ(handler.Dispatch(session, {sample::v1::kSayId, std::span(frame).subspan(4)}),
            RejectReason::kBadPayload);
  EXPECT_TRUE(handler.calls.empty());
}

TEST(ProtocPlugin, DeepNestingIsRefused) {
  Recorder handler;
  auto session = std::make_shared<FakeSession>();
  sample::v1::Move move;
  sample::v1::Nested* node = move.mutable_path();
  for (int depth = 0; depth < 100; ++depth) node = node->mutable_child();
  const auto frame = keel::proto::BuildFrame(move);
  EXPECT_EQ(handler.Dispatch(session, {sample::v1::kMoveId, std::span(frame).subspan(4)}),
            RejectReason::kBadPayload);
  sample::v1::Move shallow;
  shallow.mutable_path()->mutable_child();
  const auto ok = keel::proto::BuildFrame(shallow);
  EXPECT_EQ(handler.Dispatch(session, {sample::v1::kMoveId, std::span(ok).subspan(4)}),
            RejectReason::kNone);
}

TEST(ProtocPlugin, BuildFrameWritesHeaderAndPayloadOnce) {
  sample::v1::Say say;
  say.set_text("abc");
  const auto frame = keel::proto::BuildFrame(say);
  ASSERT_EQ(frame.size(), 4u + say.ByteSizeLong());
  EXPECT_EQ(keel::proto::LoadU16(frame.data()), frame.size());
  EXPECT_EQ(keel::proto::LoadU16(frame.data() + 2), sample::v1::kSayId);
  sample::v1::Say back;
  ASSERT_TRUE(keel::proto::ParsePayload(back, std::span(frame).subspan(4)));
  EXPECT_EQ(back.text(), "abc");
}

TEST(ProtocPlugin, OversizedMessageIsRefusedAtBuild) {
  sample::v1::Say say;
  say.set_text(std::string(70000, 'x'));
  EXPECT_THROW(keel::proto::BuildFrame(say), std::length_error);
}

TEST(ProtobufLog, HostilePayloadsCannotFloodTheLog) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  keel::core::AddLogSink(sink);
  keel::proto::InstallProtobufLogHandler({.lines_per_second = 1, .burst = 3});
  const auto before = keel::proto::GetProtobufLogStats();
  Recorder handler;
  auto session = std::make_shared<FakeSession>();
  sample::v1::Say say;
  say.set_text(std::string("\xc3\x28", 2));  // invalid UTF-8: protobuf logs an error per parse
  const auto frame = keel::proto::BuildFrame(say);
  constexpr int kAttacks = 200;
  for (int i = 0; i < kAttacks; ++i) {
    ASSERT_EQ(handler.Dispatch(session, {sample::v1::kSayId, std::span(frame).subspan(4)}),
              RejectReason::kBadPayload);
  }
  const auto after = keel::proto::GetProtobufLogStats();
  keel::core::RemoveLogSink(sink);
  keel::proto::InstallProtobufLogHandler();  // back to the defaults
  EXPECT_GE(after.lines - before.lines, static_cast<uint64_t>(kAttacks));  // every one counted
  const std::string text = out.str();
  size_t written = 0;
  for (size_t at = text.find("invalid UTF-8"); at != std::string::npos;
       at = text.find("invalid UTF-8", at + 1)) {
    ++written;
  }
  EXPECT_GE(written, 1u) << text;
  EXPECT_LE(written, 4u) << text;  // the burst, and one more if a second ticked over
  EXPECT_EQ(after.suppressed - before.suppressed, after.lines - before.lines - written);
}

}  // namespace
