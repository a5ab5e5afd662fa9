#include "keel/net/wake_batch.h"

#include <algorithm>
#include <cassert>

#include "keel/net/io_loop.h"

namespace keel::net {
namespace {

// The outermost batch alive on this thread, or null.
thread_local WakeBatch* t_batch = nullptr;
// Batches open on this thread, outermost included (debug checks only).
thread_local uint32_t t_depth = 0;

}  // namespace

WakeBatch::WakeBatch() noexcept : outer_(t_batch) {
  if (outer_ == nullptr) t_batch = this;
  ++t_depth;
}

WakeBatch::~WakeBatch() {
  // Ended on the thread that began it (its outermost batch is still open).
  assert(t_depth > 0 && (outer_ == nullptr ? t_batch == this : t_batch == outer_));
  --t_depth;
  if (outer_ != nullptr) return;  // nested: the outermost wakes
  assert(t_depth == 0 && "the outermost WakeBatch ended before a nested one");
  t_batch = nullptr;
  for (uint32_t i = 0; i < count_; ++i) loops_[i]->WakeNow();
}

bool WakeBatch::Active() noexcept { return t_batch != nullptr; }

bool WakeBatch::Defer(IoLoop* loop) noexcept {
  WakeBatch* b = t_batch;
  if (b == nullptr) return false;
  const auto end = b->loops_.begin() + b->count_;
  if (std::find(b->loops_.begin(), end, loop) != end) return true;
  if (b->count_ == kMaxLoops) return false;
  b->loops_[b->count_++] = loop;
  return true;
}

}  // namespace keel::net
