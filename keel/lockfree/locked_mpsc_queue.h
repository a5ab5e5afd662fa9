#pragma once
// LockedMpscQueue: the mutex twin of MpscQueue: the same interface,
// parking included, and the same tests; an intrusive list under a
// keel::core::Mutex. Push from any thread; Pop and TryPark from the one
// consumer (as for MpscQueue; the lock would allow more, the contract does
// not). The queue does not own its nodes.

#include <atomic>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"
#include "keel/lockfree/mpsc_node.h"

namespace keel::lockfree {

class LockedMpscQueue {
 public:
  LockedMpscQueue() = default;
  LockedMpscQueue(const LockedMpscQueue&) = delete;
  LockedMpscQueue& operator=(const LockedMpscQueue&) = delete;

  // Returns true if the queue was parked: the caller schedules the consumer.
  bool Push(MpscNode* node) {
    node->next.store(nullptr, std::memory_order_relaxed);  // guarded by mu_
    core::MutexLock lock(mu_);
    if (back_ != nullptr) {
      back_->next.store(node, std::memory_order_relaxed);  // guarded by mu_
    } else {
      front_ = node;
    }
    back_ = node;
    const bool was_parked = parked_;
    parked_ = false;
    return was_parked;
  }

  MpscNode* Pop() {
    core::MutexLock lock(mu_);
    MpscNode* node = front_;
    if (node == nullptr) return nullptr;
    front_ = node->next.load(std::memory_order_relaxed);  // guarded by mu_
    if (front_ == nullptr) back_ = nullptr;
    return node;
  }

  bool TryPark() {
    core::MutexLock lock(mu_);
    if (front_ != nullptr) return false;
    parked_ = true;
    return true;
  }

 private:
  core::Mutex mu_{"LockedMpscQueue"};
  MpscNode* front_ KEEL_GUARDED_BY(mu_) = nullptr;
  MpscNode* back_ KEEL_GUARDED_BY(mu_) = nullptr;
  bool parked_ KEEL_GUARDED_BY(mu_) = true;
};

}  // namespace keel::lockfree
