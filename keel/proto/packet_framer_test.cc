#include "keel/proto/packet_framer.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// Counts heap allocations made while g_track is set: the framer must make
// none, whatever sizes the frames declare. gcc flags the free() in a
// replacement operator delete as mismatched once inlined; it is not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
// TSan's runtime defines the global operators itself, so under TSan they are
// not replaced and allocations are not counted (release and asan count).
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KEEL_TEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define KEEL_TEST_TSAN 1
#endif

namespace {
thread_local bool g_track = false;
thread_local size_t g_allocations = 0;
}  // namespace

#if !defined(KEEL_TEST_TSAN)
void* operator new(size_t n) {
  if (g_track) ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#endif

namespace keel::proto {
namespace {

constexpr uint8_t kPreLogin = 1;
constexpr uint8_t kLoggedIn = 2;
constexpr uint16_t kLogin = 1;     // pre-login only
constexpr uint16_t kSay = 2;       // logged in only
constexpr uint16_t kPing = 3;      // any state
constexpr uint16_t kEmote = 7;     // any state, own limit 5/s (burst 10)
constexpr uint16_t kMax = 1024;
constexpr uint32_t kMaxPerRead = 16;

const ProtocolTable& Table() {
  static const ProtocolTable table = [] {
    ProtocolTable t;
    t.Allow(kLogin, kPreLogin).Allow(kSay, kLoggedIn).Allow(kPing, kPreLogin | kLoggedIn);
    t.Allow(kEmote, kPreLogin | kLoggedIn, 5);
    return t;
  }();
  return table;
}

using Bytes = std::vector<uint8_t>;

Bytes FrameBytes(uint16_t size, uint16_t id, size_t payload_bytes) {
  Bytes b(kFrameHeaderSize + payload_bytes, 0xAB);
  StoreFrameHeader(b.data(), size, id);
  return b;
}
Bytes Frame(uint16_t id, size_t payload) {
  return FrameBytes(static_cast<uint16_t>(kFrameHeaderSize + payload), id, payload);
}
Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes Repeat(const Bytes& b, int n) {
  Bytes out;
  for (int i = 0; i < n; ++i) out.insert(out.end(), b.begin(), b.end());
  return out;
}

struct Case {
  std::string name;
  Bytes input;
  std::vector<size_t> chunks;  // read sizes; empty: one read of everything
  uint8_t state = kLoggedIn;
  std::vector<std::pair<uint16_t, size_t>> frames;  // expected (id, payload bytes)
  RejectReason error = RejectReason::kNone;
  FramerLimits limits = {.max_frame = kMax, .max_frames_per_read = kMaxPerRead,
                         .frames_per_second = 0};
};

std::vector<size_t> Dribble(size_t n) { return std::vector<size_t>(n, 1); }

// Feeds the case's bytes in its chunks through a framer, as a session's
// receive path would, and records what came out.
struct Outcome {
  std::vector<std::pair<uint16_t, size_t>> frames;
  RejectReason error = RejectReason::kNone;
  size_t left_over = 0;
  size_t allocations = 0;
};

Outcome Feed(const Case& c, ProtoStats& stats) {
  PacketFramer framer(Table(), c.limits, &stats);
  framer.SetState(c.state);
  Outcome out;
  Bytes pending;
  std::vector<size_t> chunks = c.chunks.empty() ? std::vector<size_t>{c.input.size()} : c.chunks;
  size_t offset = 0;
  for (size_t chunk : chunks) {
    pending.insert(pending.end(), c.input.begin() + static_cast<long>(offset),
                   c.input.begin() + static_cast<long>(offset + chunk));
    offset += chunk;
    out.frames.reserve(200);
    g_track = true;
    const auto result = framer.Parse(pending, 0, [&](const keel::proto::Frame& f) {
      out.frames.emplace_back(f.id, f.payload.size());
      return RejectReason::kNone;
    });
    out.allocations += g_allocations;
    g_track = false;
    g_allocations = 0;
    pending.erase(pending.begin(), pending.begin() + static_cast<long>(result.consumed));
    if (result.error != RejectReason::kNone) {
      out.error = result.error;
      break;
    }
  }
  out.left_over = pending.size();
  return out;
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (uint16_t size : {uint16_t{0}, uint16_t{1}, uint16_t{2}, uint16_t{3}}) {
    cases.push_back({"size " + std::to_string(size), FrameBytes(size, kPing, 8), {}, kLoggedIn, {},
                     RejectReason::kFrameTooShort});
  }
  cases.push_back({"size 4: empty payload", Frame(kPing, 0), {}, kLoggedIn, {{kPing, 0}}});
  cases.push_back({"size 5", Frame(kPing, 1), {}, kLoggedIn, {{kPing, 1}}});
  cases.push_back({"size 0x7FFF", FrameBytes(0x7FFF, kPing, 16), {}, kLoggedIn, {},
                   RejectReason::kFrameTooLong});
  cases.push_back({"size 0xFFFF", FrameBytes(0xFFFF, kPing, 16), {}, kLoggedIn, {},
                   RejectReason::kFrameTooLong});
  cases.push_back({"size 0xFFFF with unknown id: size judged first",
                   FrameBytes(0xFFFF, 999, 0), {}, kLoggedIn, {}, RejectReason::kFrameTooLong});
  cases.push_back({"size max", Frame(kPing, kMax - 4), {}, kLoggedIn, {{kPing, kMax - 4}}});
  cases.push_back({"size max+1", Frame(kPing, kMax - 3), {}, kLoggedIn, {},
                   RejectReason::kFrameTooLong});
  cases.push_back({"too long, refused from its first 2 bytes", FrameBytes(kMax + 1, kPing, 0),
                   {2}, kLoggedIn, {}, RejectReason::kFrameTooLong});
  cases.push_back({"id 0", Frame(0, 4), {}, kLoggedIn, {}, RejectReason::kUnknownId});
  cases.push_back({"id 0xFFFF", Frame(0xFFFF, 4), {}, kLoggedIn, {}, RejectReason::kUnknownId});
  cases.push_back({"id not in table", Frame(4, 4), {}, kLoggedIn, {}, RejectReason::kUnknownId});
  cases.push_back({"unknown id refused from its header alone", Frame(500, 100), {4},
                   kLoggedIn, {}, RejectReason::kUnknownId});
  cases.push_back({"logged-in id before login", Frame(kSay, 4), {}, kPreLogin, {},
                   RejectReason::kIdNotAllowed});
  cases.push_back({"login id after login", Frame(kLogin, 4), {}, kLoggedIn, {},
                   RejectReason::kIdNotAllowed});
  cases.push_back({"login before login", Frame(kLogin, 4), {}, kPreLogin, {{kLogin, 4}}});
  for (size_t split = 1; split < 8; ++split) {
    cases.push_back({"split at " + std::to_string(split), Frame(kSay, 4), {split, 8 - split},
                     kLoggedIn, {{kSay, 4}}});
  }
  cases.push_back({"100 frames dribbled byte by byte", Repeat(Frame(kSay, 3), 100), Dribble(700),
                   kLoggedIn, std::vector<std::pair<uint16_t, size_t>>(100, {kSay, 3})});
  {
    Bytes two_and_half = Concat({Frame(kSay, 10), Frame(kPing, 10), Frame(kSay, 10)});
    Case c{"2.5 frames in one read, then the rest", two_and_half, {35, 7}, kLoggedIn,
           {{kSay, 10}, {kPing, 10}, {kSay, 10}}};
    cases.push_back(c);
    Case half{"2.5 frames: the half frame waits", two_and_half, {35}, kLoggedIn,
              {{kSay, 10}, {kPing, 10}}};
    cases.push_back(half);
  }
  cases.push_back({"valid frame then short garbage", Concat({Frame(kSay, 2), Bytes{1, 0, 9, 9}}),
                   {}, kLoggedIn, {{kSay, 2}}, RejectReason::kFrameTooShort});
  cases.push_back({"valid frame then unknown id", Concat({Frame(kSay, 2), Frame(4242, 2)}), {},
                   kLoggedIn, {{kSay, 2}}, RejectReason::kUnknownId});
  cases.push_back({"exactly the frames allowed per read", Repeat(Frame(kPing, 1), kMaxPerRead),
                   {}, kLoggedIn, std::vector<std::pair<uint16_t, size_t>>(kMaxPerRead, {kPing, 1})});
  cases.push_back({"one frame more than allowed per read", Repeat(Frame(kPing, 1), kMaxPerRead + 1),
                   {}, kLoggedIn, std::vector<std::pair<uint16_t, size_t>>(kMaxPerRead, {kPing, 1}),
                   RejectReason::kTooManyFrames});
  {
    Case c{"per-id rate: burst of 10 then refused", Repeat(Frame(kEmote, 1), 11), {}, kLoggedIn,
           std::vector<std::pair<uint16_t, size_t>>(10, {kEmote, 1}), RejectReason::kRateLimited};
    cases.push_back(c);
  }
  {
    Case c{"session rate: burst of 5 then refused", Repeat(Frame(kPing, 1), 6), {}, kLoggedIn,
           std::vector<std::pair<uint16_t, size_t>>(5, {kPing, 1}), RejectReason::kRateLimited};
    c.limits.frames_per_second = 1;
    c.limits.frames_burst = 5;
    cases.push_back(c);
  }
  {
    Case c{"pre-login max frame 64: 64 passes", Frame(kLogin, 60), {}, kPreLogin, {{kLogin, 60}}};
    c.limits.max_frame = 64;
    cases.push_back(c);
    Case d{"pre-login max frame 64: 65 refused", Frame(kLogin, 61), {}, kPreLogin, {},
           RejectReason::kFrameTooLong};
    d.limits.max_frame = 64;
    cases.push_back(d);
  }
  {
    Case c{"max frame 0xFFFF allows a 65535-byte frame", Frame(kPing, 0xFFFF - 4), {}, kLoggedIn,
           {{kPing, 0xFFFF - 4}}};
    c.limits.max_frame = 0xFFFF;
    cases.push_back(c);
  }
  cases.push_back({"nothing", {}, {}, kLoggedIn, {}});
  cases.push_back({"one byte of a size", Bytes{8}, {}, kLoggedIn, {}});
  cases.push_back({"a good size alone waits", Bytes{8, 0}, {}, kLoggedIn, {}});
  cases.push_back({"a full-size header alone waits", FrameBytes(kMax, kPing, 0), {}, kLoggedIn, {}});
  return cases;
}

class PacketFramerTable : public ::testing::TestWithParam<Case> {};

TEST_P(PacketFramerTable, DeliversExactlyItsFramesOrClosesWithTheRightReason) {
  const Case& c = GetParam();
  ProtoStats stats;
  const Outcome out = Feed(c, stats);
  EXPECT_EQ(out.frames, c.frames);
  EXPECT_EQ(out.error, c.error) << RejectReasonName(out.error);
  EXPECT_EQ(out.allocations, 0u) << "the framer allocated";
  if (c.error != RejectReason::kNone) {
    EXPECT_EQ(stats.Rejects(c.error), 1u) << "rejection not counted";
  }
  EXPECT_EQ(stats.Frames(), c.frames.size());
}

INSTANTIATE_TEST_SUITE_P(Malformed, PacketFramerTable, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           std::string name;
                           for (char ch : param_info.param.name) {
                             name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           }
                           return std::to_string(param_info.index) + "_" + name;
                         });

TEST(PacketFramer, CaseTableHasAboutFortyCases) { EXPECT_GE(Cases().size(), 40u); }

TEST(PacketFramer, HandlerRejectionClosesWithItsReason) {
  ProtoStats stats;
  PacketFramer framer(Table(), {.frames_per_second = 0}, &stats);
  framer.SetState(kLoggedIn);
  const Bytes input = Concat({Frame(kSay, 2), Frame(kSay, 2)});
  int seen = 0;
  const auto result = framer.Parse(input, 0, [&](const keel::proto::Frame&) {
    return ++seen == 2 ? RejectReason::kBadPayload : RejectReason::kNone;
  });
  EXPECT_EQ(result.error, RejectReason::kBadPayload);
  EXPECT_EQ(result.frames, 1u);
  EXPECT_EQ(result.consumed, 6u);
  EXPECT_EQ(stats.Rejects(RejectReason::kBadPayload), 1u);
}

TEST(PacketFramer, RateRefillsWithTime) {
  ProtoStats stats;
  PacketFramer framer(Table(), {.frames_per_second = 10, .frames_burst = 1}, &stats);
  const Bytes one = Frame(kPing, 0);
  auto ok = [](const keel::proto::Frame&) { return RejectReason::kNone; };
  EXPECT_EQ(framer.Parse(one, 0, ok).error, RejectReason::kNone);
  EXPECT_EQ(framer.Parse(one, 0, ok).error, RejectReason::kRateLimited);
  EXPECT_EQ(framer.Parse(one, 100'000'000, ok).error, RejectReason::kNone);  // +100 ms
}

TEST(PacketFramer, StateChangeOpensLoggedInIds) {
  PacketFramer framer(Table(), {}, nullptr);
  framer.SetState(kPreLogin);
  auto ok = [](const keel::proto::Frame&) { return RejectReason::kNone; };
  EXPECT_EQ(framer.Parse(Frame(kSay, 0), 0, ok).error, RejectReason::kIdNotAllowed);
  framer.SetState(kLoggedIn);
  EXPECT_EQ(framer.Parse(Frame(kSay, 0), 0, ok).error, RejectReason::kNone);
}

TEST(RejectReason, EveryReasonHasAName) {
  for (int r = 0; r < static_cast<int>(RejectReason::kCount); ++r) {
    EXPECT_NE(RejectReasonName(static_cast<RejectReason>(r)), "invalid reason");
  }
}

}  // namespace
}  // namespace keel::proto
