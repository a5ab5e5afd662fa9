#include "keel/job/internal/timer_wheel.h"

#include <algorithm>
#include <bit>
#include <limits>

namespace keel::job::internal {

TimerWheel::TimerWheel(int64_t now) noexcept : origin_(now) {
  for (auto& level : slots_) {
    for (TimerLink& head : level) InitList(head);
  }
  InitList(expired_);
  InitList(todo_);
}

void TimerWheel::PushBack(TimerLink& head, TimerLink* n) noexcept {
  n->prev = head.prev;
  n->next = &head;
  head.prev->next = n;
  head.prev = n;
}

void TimerWheel::Unlink(TimerLink* n) noexcept {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = nullptr;
}

void TimerWheel::Splice(TimerLink& to, TimerLink& from) noexcept {
  if (ListEmpty(from)) return;
  TimerLink* first = from.next;
  TimerLink* last = from.prev;
  first->prev = to.prev;
  to.prev->next = first;
  last->next = &to;
  to.prev = last;
  InitList(from);
}

void TimerWheel::File(TimerNode* node) noexcept {
  // Offsets from origin_; a due before the origin is simply due.
  const uint64_t due = Offset(node->due);
  if (due <= cur_) {
    node->where = TimerNode::kExpired;
    PushBack(expired_, node);
    return;
  }
  const int high_bit = 63 - std::countl_zero(due ^ cur_);
  const int level = high_bit / kBits;
  const auto slot = static_cast<int>((due >> (level * kBits)) & (kSlots - 1));
  node->where = static_cast<uint16_t>(level * kSlots + slot);
  PushBack(slots_[static_cast<std::size_t>(level)][static_cast<std::size_t>(slot)], node);
  occupied_[static_cast<std::size_t>(level)] |= uint64_t{1} << slot;
}

void TimerWheel::Insert(TimerNode* node) noexcept {
  File(node);
  ++size_;
}

void TimerWheel::Remove(TimerNode* node) noexcept {
  const uint16_t where = node->where;
  Unlink(node);
  node->where = TimerNode::kUnlinked;
  --size_;
  if (where == TimerNode::kExpired) return;
  const std::size_t level = where / kSlots;
  const std::size_t slot = where % kSlots;
  if (ListEmpty(slots_[level][slot])) occupied_[level] &= ~(uint64_t{1} << slot);
}

void TimerWheel::Advance(int64_t now, std::vector<TimerNode*>& out) {
  const uint64_t target = std::max(cur_, Offset(now));
  // Take every slot `target` has reached. On level L the nodes share cur_'s
  // bits above 6L+6; if target's differ, the whole level is due or must drop.
  for (int level = 0; level < kLevels; ++level) {
    const auto l = static_cast<std::size_t>(level);
    if (occupied_[l] == 0) continue;
    const int shift = level * kBits;
    const int high = shift + kBits;
    const bool same_span = high >= 64 || (cur_ >> high) == (target >> high);
    uint64_t take = occupied_[l];
    if (same_span) {
      const auto reached = static_cast<int>((target >> shift) & (kSlots - 1));
      if (reached < kSlots - 1) take &= (uint64_t{1} << (reached + 1)) - 1;
    }
    occupied_[l] &= ~take;
    while (take != 0) {
      const int slot = std::countr_zero(take);
      take &= take - 1;
      Splice(todo_, slots_[l][static_cast<std::size_t>(slot)]);
    }
  }
  Splice(todo_, expired_);
  cur_ = target;

  const std::size_t first = out.size();
  while (!ListEmpty(todo_)) {
    auto* node = static_cast<TimerNode*>(todo_.next);
    Unlink(node);
    const uint64_t due = Offset(node->due);
    if (due <= cur_) {
      node->where = TimerNode::kUnlinked;
      --size_;
      out.push_back(node);
    } else {
      File(node);  // lands on a lower level than it came from
    }
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
            [](const TimerNode* a, const TimerNode* b) {
              return a->due != b->due ? a->due < b->due : a->seq < b->seq;
            });
}

int64_t TimerWheel::NextDueLowerBound() const noexcept {
  if (!ListEmpty(expired_)) return std::numeric_limits<int64_t>::min();
  uint64_t best = std::numeric_limits<uint64_t>::max();
  for (int level = 0; level < kLevels; ++level) {
    const uint64_t mask = occupied_[static_cast<std::size_t>(level)];
    if (mask == 0) continue;
    const int shift = level * kBits;
    const int high = shift + kBits;
    const uint64_t base = high >= 64 ? 0 : (cur_ >> high) << high;
    const auto slot = static_cast<uint64_t>(std::countr_zero(mask));
    best = std::min(best, base | (slot << shift));
  }
  if (best == std::numeric_limits<uint64_t>::max()) return std::numeric_limits<int64_t>::max();
  const uint64_t at = static_cast<uint64_t>(origin_) + best;  // wraps only past INT64_MAX
  if (static_cast<int64_t>(at) < origin_) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(at);
}

}  // namespace keel::job::internal
