#pragma once
// MpscNode: the link that MpscQueue and LockedMpscQueue thread through the
// items they carry. The item embeds it (`struct Job : MpscNode { ... }`) so
// queueing never allocates; the consumer gets the item back with
// static_cast<Job*>(queue.Pop()). A node is in at most one queue at a time,
// and its owner keeps it alive until the consumer has popped it.

#include <atomic>

namespace keel::lockfree {

struct MpscNode {
  std::atomic<MpscNode*> next{nullptr};
};

}  // namespace keel::lockfree
