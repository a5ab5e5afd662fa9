#pragma once
// TimerWheel: a hierarchical timing wheel over nanoseconds, the index behind
// JobTimer. Not thread-safe (JobTimer holds its mutex around every call).
//
//   level 10 ... level 2   level 1        level 0
//   [64 slots]   [64]      [64 slots of   [64 slots of 1 ns]
//                           64 ns each]
//
// A node due at `d` is filed relative to the wheel's current time `cur`: the
// highest bit where d and cur differ picks the level L (6 bits per level, 11
// levels cover 64 bits), and bits [6L, 6L+6) of d pick the slot. So every node
// at level L shares cur's bits above 6L+6 and sits in a slot after cur's.
// Advance(now) takes, on each level, the slots that `now` has reached (all of
// them if now left the level's 64-slot span), and files each node again
// relative to `now`: it either is due (d <= now) or drops to a lower level.
// A node therefore moves at most 11 times in its life; Insert and Remove are
// O(1) (intrusive circular lists, one 64-bit occupancy mask per level), and
// Advance costs O(levels + nodes moved + k log k) for k nodes coming due,
// which it returns sorted by (due, seq): firing order is exact, not rounded
// to a tick.

#include <array>
#include <cstdint>
#include <vector>

namespace keel::job::internal {

struct TimerLink {
  TimerLink* prev = nullptr;
  TimerLink* next = nullptr;
};

struct TimerNode : TimerLink {
  int64_t due = 0;    // nanoseconds on the owner's clock
  uint64_t seq = 0;   // tie-break: creation order among equal dues
  uint16_t where = kUnlinked;

  static constexpr uint16_t kUnlinked = 0xffff;
  static constexpr uint16_t kExpired = 0xfffe;  // filed with due <= cur
  bool linked() const noexcept { return where != kUnlinked; }
};

class TimerWheel {
 public:
  static constexpr int kBits = 6;
  static constexpr int kSlots = 1 << kBits;
  static constexpr int kLevels = (64 + kBits - 1) / kBits;  // 11

  explicit TimerWheel(int64_t now) noexcept;
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Files an unlinked node by node->due (a due at or before the wheel's time
  // comes out of the next Advance).
  void Insert(TimerNode* node) noexcept;
  // Unlinks a linked node.
  void Remove(TimerNode* node) noexcept;

  // Moves the wheel to max(now, current time) and appends every node due by
  // then to `out`, unlinked, sorted by (due, seq).
  void Advance(int64_t now, std::vector<TimerNode*>& out);

  // No node is due before this time (INT64_MAX when empty); the earliest due
  // may be later: waking at this time and calling Advance is always safe.
  int64_t NextDueLowerBound() const noexcept;

  // Unlinks every node and hands each to `fn` (for teardown).
  template <typename Fn>
  void Drain(Fn&& fn) noexcept {
    DrainList(expired_, fn);
    for (auto& level : slots_) {
      for (TimerLink& head : level) DrainList(head, fn);
    }
    occupied_.fill(0);
  }

  std::size_t size() const noexcept { return size_; }
  int64_t now() const noexcept { return origin_ + static_cast<int64_t>(cur_); }

 private:
  // Offset of a due time from origin_ (0 for anything at or before it).
  uint64_t Offset(int64_t due) const noexcept {
    return due <= origin_ ? 0 : static_cast<uint64_t>(due) - static_cast<uint64_t>(origin_);
  }
  static void InitList(TimerLink& head) noexcept { head.prev = head.next = &head; }
  static bool ListEmpty(const TimerLink& head) noexcept { return head.next == &head; }
  static void PushBack(TimerLink& head, TimerLink* n) noexcept;
  static void Unlink(TimerLink* n) noexcept;
  // Moves every node of `from` to the end of `to`.
  static void Splice(TimerLink& to, TimerLink& from) noexcept;

  template <typename Fn>
  void DrainList(TimerLink& head, Fn& fn) noexcept {
    while (!ListEmpty(head)) {
      auto* node = static_cast<TimerNode*>(head.next);
      Unlink(node);
      node->where = TimerNode::kUnlinked;
      --size_;
      fn(node);
    }
  }

  void File(TimerNode* node) noexcept;

  int64_t origin_;  // cur_ and dues are kept as unsigned offsets from here
  uint64_t cur_ = 0;
  std::size_t size_ = 0;
  std::array<uint64_t, kLevels> occupied_{};
  std::array<std::array<TimerLink, kSlots>, kLevels> slots_;
  TimerLink expired_;
  TimerLink todo_;  // Advance's scratch list
};

}  // namespace keel::job::internal
