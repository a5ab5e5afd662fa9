#pragma once
// ProtocolTable: for each of the 65,536 possible ids, whether a client may
// send it and in which session states, and its own rate limit if any.
//
// States are bits of a uint8_t chosen by the program (e.g. 1 = before login,
// 2 = logged in); an id with no bits is unknown to clients. Generated code
// (protoc-gen-keel) fills one table per .proto from the messages' options;
// hand-written protocols call Allow(). A table is built once, then read
// concurrently by every session: it is immutable after construction.

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace keel::proto {

class ProtocolTable {
 public:
  // Lets clients send `id` in any state whose bit is in `states`;
  // `per_second` > 0 gives the id its own rate limit (burst = 2x).
  ProtocolTable& Allow(uint16_t id, uint8_t states, uint32_t per_second = 0) {
    states_[id] = states;
    if (per_second > 0) id_rates_.push_back({id, per_second});
    return *this;
  }
  bool Known(uint16_t id) const noexcept { return states_[id] != 0; }
  bool AllowedIn(uint16_t id, uint8_t state) const noexcept { return (states_[id] & state) != 0; }
  // The id's own limit in frames per second, if it has one.
  std::optional<uint32_t> RateOf(uint16_t id) const noexcept {
    for (const auto& r : id_rates_) {
      if (r.id == id) return r.per_second;
    }
    return std::nullopt;
  }
  const auto& RatedIds() const noexcept { return id_rates_; }

 private:
  struct IdRate {
    uint16_t id;
    uint32_t per_second;
  };
  std::array<uint8_t, 65536> states_{};
  std::vector<IdRate> id_rates_;
};

}  // namespace keel::proto
