#pragma once
// DeliveryCheck: what one bot knows about the messages of one room, enough
// to prove "every message delivered exactly once, in order, to every member
// present".
//
// The server numbers each room's messages 1, 2, 3, ... (RoomMessage.seq). A
// member that joined after message J must then see J+1, J+2, ... with no gap
// and no repeat until it leaves. RoomJoined's history ends with message J
// (when the room keeps history; otherwise the first live message sets the
// start and only later gaps are caught, which the fleet-level check closes:
// at the end every member still present must have reached the room's last
// seq).
//
//   seq == last + 1   delivered
//   seq >  last + 1   delivered, and seq - last - 1 messages lost
//   seq <= last       duplicate or out of order (counted, not delivered)
//   not a member      stray: the room sent it to someone not present
//
// A member that moves between rooms keeps one DeliveryCheck per room; each
// membership runs from RoomJoined.last_seq to RoomLeft.last_seq (the room's
// last message queued before the member left), so a lost tail is caught at
// the leave, not only at the end of the run.

#include <cstdint>
#include <optional>

namespace keel::bots {

struct DeliveryCounts {
  uint64_t delivered = 0;
  uint64_t lost = 0;        // sequence numbers skipped
  uint64_t duplicates = 0;  // a seq at or below one already seen
  uint64_t strays = 0;      // received while not a member of the room
  DeliveryCounts& operator+=(const DeliveryCounts& o) noexcept {
    delivered += o.delivered;
    lost += o.lost;
    duplicates += o.duplicates;
    strays += o.strays;
    return *this;
  }
};

class DeliveryCheck {
 public:
  enum class Verdict : unsigned char { kInOrder, kGap, kDuplicate, kStray };

  // The member joined; `last_seq` is the last message before it joined, if
  // known (the end of the history it was sent).
  void Joined(std::optional<uint64_t> last_seq) noexcept {
    last_ = last_seq;
    in_room_ = true;
  }
  // The member left; `room_last_seq` (RoomLeft.last_seq), if known, is the
  // last message it was owed: a shortfall counts as lost.
  void Left(std::optional<uint64_t> room_last_seq = std::nullopt) noexcept {
    if (in_room_ && room_last_seq && last_.value_or(0) < *room_last_seq) {
      counts_.lost += *room_last_seq - last_.value_or(0);
      last_ = room_last_seq;
    }
    in_room_ = false;
  }

  Verdict OnMessage(uint64_t seq) noexcept {
    if (!in_room_) {
      ++counts_.strays;
      return Verdict::kStray;
    }
    if (last_.has_value() && seq <= *last_) {
      ++counts_.duplicates;
      return Verdict::kDuplicate;
    }
    Verdict verdict = Verdict::kInOrder;
    if (last_.has_value() && seq > *last_ + 1) {
      counts_.lost += seq - *last_ - 1;
      verdict = Verdict::kGap;
    }
    last_ = seq;
    ++counts_.delivered;
    return verdict;
  }

  // At the end: the room's last seq (the highest any member saw). A member
  // still present that stopped short lost the tail.
  void Finish(uint64_t room_last_seq) noexcept {
    if (in_room_ && last_.value_or(0) < room_last_seq) counts_.lost += room_last_seq - last_.value_or(0);
  }

  bool in_room() const noexcept { return in_room_; }
  std::optional<uint64_t> last_seq() const noexcept { return last_; }
  const DeliveryCounts& counts() const noexcept { return counts_; }

 private:
  std::optional<uint64_t> last_;
  bool in_room_ = false;
  DeliveryCounts counts_;
};

}  // namespace keel::bots
