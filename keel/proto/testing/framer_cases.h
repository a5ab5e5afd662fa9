#pragma once
// The malformed-frame table of issue 6, shared by the framer's unit test
// (bytes fed straight to a PacketFramer) and the PacketSession test (the same
// bytes over real loopback sockets against a running Service). Test-only.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "keel/proto/packet_framer.h"
#include "keel/proto/protocol_table.h"
#include "keel/proto/wire.h"

namespace keel::proto::testing {

constexpr uint8_t kPreLogin = 1;
constexpr uint8_t kLoggedIn = 2;
constexpr uint16_t kLogin = 1;     // pre-login only
constexpr uint16_t kSay = 2;       // logged in only
constexpr uint16_t kPing = 3;      // any state
constexpr uint16_t kEmote = 7;     // any state, own limit 5/s (burst 10)
constexpr uint16_t kMax = 1024;
constexpr uint32_t kMaxPerRead = 16;

inline const ProtocolTable& Table() {
  static const ProtocolTable table = [] {
    ProtocolTable t;
    t.Allow(kLogin, kPreLogin).Allow(kSay, kLoggedIn).Allow(kPing, kPreLogin | kLoggedIn);
    t.Allow(kEmote, kPreLogin | kLoggedIn, 5);
    return t;
  }();
  return table;
}

using Bytes = std::vector<uint8_t>;

inline Bytes FrameBytes(uint16_t size, uint16_t id, size_t payload_bytes) {
  Bytes b(kFrameHeaderSize + payload_bytes, 0xAB);
  StoreFrameHeader(b.data(), size, id);
  return b;
}
inline Bytes MakeFrame(uint16_t id, size_t payload) {
  return FrameBytes(static_cast<uint16_t>(kFrameHeaderSize + payload), id, payload);
}
inline Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
inline Bytes Repeat(const Bytes& b, int n) {
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

inline std::vector<size_t> Dribble(size_t n) { return std::vector<size_t>(n, 1); }

inline std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (uint16_t size : {uint16_t{0}, uint16_t{1}, uint16_t{2}, uint16_t{3}}) {
    cases.push_back({"size " + std::to_string(size), FrameBytes(size, kPing, 8), {}, kLoggedIn, {},
                     RejectReason::kFrameTooShort});
  }
  cases.push_back({"size 4: empty payload", MakeFrame(kPing, 0), {}, kLoggedIn, {{kPing, 0}}});
  cases.push_back({"size 5", MakeFrame(kPing, 1), {}, kLoggedIn, {{kPing, 1}}});
  cases.push_back({"size 0x7FFF", FrameBytes(0x7FFF, kPing, 16), {}, kLoggedIn, {},
                   RejectReason::kFrameTooLong});
  cases.push_back({"size 0xFFFF", FrameBytes(0xFFFF, kPing, 16), {}, kLoggedIn, {},
                   RejectReason::kFrameTooLong});
  cases.push_back({"size 0xFFFF with unknown id: size judged first",
                   FrameBytes(0xFFFF, 999, 0), {}, kLoggedIn, {}, RejectReason::kFrameTooLong});
  cases.push_back({"size max", MakeFrame(kPing, kMax - 4), {}, kLoggedIn, {{kPing, kMax - 4}}});
  cases.push_back({"size max+1", MakeFrame(kPing, kMax - 3), {}, kLoggedIn, {},
                   RejectReason::kFrameTooLong});
  cases.push_back({"too long, refused from its first 2 bytes", FrameBytes(kMax + 1, kPing, 0),
                   {2}, kLoggedIn, {}, RejectReason::kFrameTooLong});
  cases.push_back({"id 0", MakeFrame(0, 4), {}, kLoggedIn, {}, RejectReason::kUnknownId});
  cases.push_back({"id 0xFFFF", MakeFrame(0xFFFF, 4), {}, kLoggedIn, {}, RejectReason::kUnknownId});
  cases.push_back({"id not in table", MakeFrame(4, 4), {}, kLoggedIn, {}, RejectReason::kUnknownId});
  cases.push_back({"unknown id refused from its header alone", MakeFrame(500, 100), {4},
                   kLoggedIn, {}, RejectReason::kUnknownId});
  cases.push_back({"logged-in id before login", MakeFrame(kSay, 4), {}, kPreLogin, {},
                   RejectReason::kIdNotAllowed});
  cases.push_back({"login id after login", MakeFrame(kLogin, 4), {}, kLoggedIn, {},
                   RejectReason::kIdNotAllowed});
  cases.push_back({"login before login", MakeFrame(kLogin, 4), {}, kPreLogin, {{kLogin, 4}}});
  for (size_t split = 1; split < 8; ++split) {
    cases.push_back({"split at " + std::to_string(split), MakeFrame(kSay, 4), {split, 8 - split},
                     kLoggedIn, {{kSay, 4}}});
  }
  cases.push_back({"100 frames dribbled byte by byte", Repeat(MakeFrame(kSay, 3), 100), Dribble(700),
                   kLoggedIn, std::vector<std::pair<uint16_t, size_t>>(100, {kSay, 3})});
  {
    Bytes two_and_half = Concat({MakeFrame(kSay, 10), MakeFrame(kPing, 10), MakeFrame(kSay, 10)});
    Case c{"2.5 frames in one read, then the rest", two_and_half, {35, 7}, kLoggedIn,
           {{kSay, 10}, {kPing, 10}, {kSay, 10}}};
    cases.push_back(c);
    Case half{"2.5 frames: the half frame waits", two_and_half, {35}, kLoggedIn,
              {{kSay, 10}, {kPing, 10}}};
    cases.push_back(half);
  }
  cases.push_back({"valid frame then short garbage", Concat({MakeFrame(kSay, 2), Bytes{1, 0, 9, 9}}),
                   {}, kLoggedIn, {{kSay, 2}}, RejectReason::kFrameTooShort});
  cases.push_back({"valid frame then unknown id", Concat({MakeFrame(kSay, 2), MakeFrame(4242, 2)}), {},
                   kLoggedIn, {{kSay, 2}}, RejectReason::kUnknownId});
  cases.push_back({"exactly the frames allowed per read", Repeat(MakeFrame(kPing, 1), kMaxPerRead),
                   {}, kLoggedIn, std::vector<std::pair<uint16_t, size_t>>(kMaxPerRead, {kPing, 1})});
  cases.push_back({"one frame more than allowed per read", Repeat(MakeFrame(kPing, 1), kMaxPerRead + 1),
                   {}, kLoggedIn, std::vector<std::pair<uint16_t, size_t>>(kMaxPerRead, {kPing, 1}),
                   RejectReason::kTooManyFrames});
  {
    Case c{"per-id rate: burst of 10 then refused", Repeat(MakeFrame(kEmote, 1), 11), {}, kLoggedIn,
           std::vector<std::pair<uint16_t, size_t>>(10, {kEmote, 1}), RejectReason::kRateLimited};
    cases.push_back(c);
  }
  {
    Case c{"session rate: burst of 5 then refused", Repeat(MakeFrame(kPing, 1), 6), {}, kLoggedIn,
           std::vector<std::pair<uint16_t, size_t>>(5, {kPing, 1}), RejectReason::kRateLimited};
    c.limits.frames_per_second = 1;
    c.limits.frames_burst = 5;
    cases.push_back(c);
  }
  {
    Case c{"pre-login max frame 64: 64 passes", MakeFrame(kLogin, 60), {}, kPreLogin, {{kLogin, 60}}};
    c.limits.max_frame = 64;
    cases.push_back(c);
    Case d{"pre-login max frame 64: 65 refused", MakeFrame(kLogin, 61), {}, kPreLogin, {},
           RejectReason::kFrameTooLong};
    d.limits.max_frame = 64;
    cases.push_back(d);
  }
  {
    Case c{"max frame 0xFFFF allows a 65535-byte frame", MakeFrame(kPing, 0xFFFF - 4), {}, kLoggedIn,
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


}  // namespace keel::proto::testing
