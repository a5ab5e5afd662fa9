// libFuzzer target: the PacketFramer fed hostile bytes in random chunk
// sizes, with state changes between reads, as a session's receive path does.
// Invariants checked on every delivered frame; any breach traps.
//
// Input layout: [u32 seed][bytes...]; the seed drives chunk sizes and state.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "keel/proto/packet_framer.h"

namespace {

const keel::proto::ProtocolTable& Table() {
  static const keel::proto::ProtocolTable table = [] {
    keel::proto::ProtocolTable t;
    t.Allow(1, 1).Allow(2, 2).Allow(3, 3).Allow(7, 3, 50).Allow(0xFFFE, 2);
    return t;
  }();
  return table;
}

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t seed;
  std::memcpy(&seed, data, 4);
  data += 4;
  size -= 4;
  const uint16_t max_frame = static_cast<uint16_t>(64 + (seed >> 20));  // 64..4159
  keel::proto::ProtoStats stats;
  keel::proto::PacketFramer framer(
      Table(), {.max_frame = max_frame, .max_frames_per_read = 32, .frames_per_second = 1000,
                .frames_burst = 100},
      &stats);
  std::vector<uint8_t> pending;
  size_t offset = 0;
  int64_t now = 0;
  uint32_t rng = seed | 1;
  while (offset < size) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    const size_t chunk = 1 + rng % 97;
    const size_t take = chunk < size - offset ? chunk : size - offset;
    pending.insert(pending.end(), data + offset, data + offset + take);
    offset += take;
    now += rng % 5'000'000;
    if (rng % 7 == 0) framer.SetState(static_cast<uint8_t>(1 + rng % 2));
    const uint8_t state = framer.state();
    size_t seen = 0;
    const auto result = framer.Parse(pending, now, [&](const keel::proto::Frame& f) {
      Check(Table().AllowedIn(f.id, state));
      Check(f.payload.size() + keel::proto::kFrameHeaderSize <= max_frame);
      Check(f.payload.data() >= pending.data() + seen);
      seen += f.payload.size() + keel::proto::kFrameHeaderSize;
      return keel::proto::RejectReason::kNone;
    });
    Check(result.consumed == seen);
    Check(result.consumed <= pending.size());
    Check(result.frames <= 32);
    if (result.error != keel::proto::RejectReason::kNone) {
      Check(stats.Rejects(result.error) == 1);
      return 0;  // the session would be closed here
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<long>(result.consumed));
    // A partial frame left over never exceeds what a valid frame may hold.
    Check(pending.size() < max_frame);
  }
  return 0;
}
