#include "keel/proto/packet_framer.h"

#include "keel/proto/testing/framer_cases.h"

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

using namespace keel::proto::testing;  // NOLINT: the shared case table


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
  const Bytes input = Concat({MakeFrame(kSay, 2), MakeFrame(kSay, 2)});
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
  const Bytes one = MakeFrame(kPing, 0);
  auto ok = [](const keel::proto::Frame&) { return RejectReason::kNone; };
  EXPECT_EQ(framer.Parse(one, 0, ok).error, RejectReason::kNone);
  EXPECT_EQ(framer.Parse(one, 0, ok).error, RejectReason::kRateLimited);
  EXPECT_EQ(framer.Parse(one, 100'000'000, ok).error, RejectReason::kNone);  // +100 ms
}

TEST(PacketFramer, StateChangeOpensLoggedInIds) {
  PacketFramer framer(Table(), {}, nullptr);
  framer.SetState(kPreLogin);
  auto ok = [](const keel::proto::Frame&) { return RejectReason::kNone; };
  EXPECT_EQ(framer.Parse(MakeFrame(kSay, 0), 0, ok).error, RejectReason::kIdNotAllowed);
  framer.SetState(kLoggedIn);
  EXPECT_EQ(framer.Parse(MakeFrame(kSay, 0), 0, ok).error, RejectReason::kNone);
}

TEST(RejectReason, EveryReasonHasAName) {
  for (int r = 0; r < static_cast<int>(RejectReason::kCount); ++r) {
    EXPECT_NE(RejectReasonName(static_cast<RejectReason>(r)), "invalid reason");
  }
}

}  // namespace
}  // namespace keel::proto
