#pragma once
// MpscQueue: an unbounded, intrusive, multi-producer single-consumer FIFO
// (Dmitry Vyukov's node-based MPSC queue): the mailbox of an actor and the
// send queue of a session. Any thread may Push; one consumer at a time Pops.
// The twin LockedMpscQueue has the same interface and passes the same tests.
//
// Push is wait-free: one atomic exchange on the back pointer, then one store
// that links the previous back node to the new one. Between the two, the
// chain from the front is broken at that point: a producer preempted there
// (rare, but a 2-vCPU VM preempts often) hides its node and every node
// pushed after it. Pop never waits for it: it returns nullptr ("nothing I can
// take now"), and the items appear once the producer runs its next
// instruction. Nothing is lost or reordered.
//
// Parking, for "schedule the consumer only when the queue becomes
// non-empty": a new queue is parked. The consumer drains with Pop and, when
// Pop returns nullptr, calls TryPark(). TryPark succeeds only if every pushed
// node has been popped and no Push is half-done; the consumer must then stop
// touching the queue. The one Push that finds the queue parked returns true,
// and its caller must schedule the consumer (exactly one true per parking).
// If TryPark fails, the queue still belongs to the consumer, which must come
// back later (retry after a pause, or requeue itself): no Push will have
// returned true. A consumer that never parks simply polls with Pop.
//
// Threads: Push from any thread; Pop and TryPark from the consumer only.
// The queue does not own its nodes. See docs/lockfree.md.

#include <atomic>
#include <cassert>

#include "keel/lockfree/internal/cache_line.h"
#include "keel/lockfree/mpsc_node.h"

namespace keel::lockfree {
namespace internal {
struct MpscQueueTestPeer;
}  // namespace internal

class MpscQueue {
 public:
  MpscQueue() = default;
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  // Appends `node`. Returns true if the queue was parked: the caller must
  // schedule the consumer.
  bool Push(MpscNode* node) noexcept { return Link(Exchange(node), node); }

  // Consumer only. The front node, or nullptr when none can be taken now
  // (empty, or a producer is between its exchange and its link).
  MpscNode* Pop() noexcept {
    MpscNode* tail = tail_;
    // Acquire pairs with the release store in Link: the node's contents and
    // its own `next` initialisation are visible once it is reachable.
    MpscNode* next = tail->next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (next == nullptr) return nullptr;
      tail_ = next;
      tail = next;
      next = next->next.load(std::memory_order_acquire);  // pairs with Link
    }
    if (next != nullptr) {
      tail_ = next;
      return tail;
    }
    // `tail` is the last linked node. Unless it is also the back (then a
    // producer has exchanged but not linked yet), put the stub behind it so
    // that `tail` can be handed out while the queue keeps a node.
    if (tail != back_.load(std::memory_order_acquire)) return nullptr;  // pairs with Exchange
    PushStub();
    next = tail->next.load(std::memory_order_acquire);  // pairs with Link
    if (next != nullptr) {
      tail_ = next;
      return tail;
    }
    return nullptr;  // a producer got in before the stub and has not linked yet
  }

  // Consumer only. Parks the queue if it is empty with no Push half-done;
  // see the banner. False: the consumer keeps the queue.
  bool TryPark() noexcept {
    if (tail_ != &stub_) return false;
    MpscNode* expected = &stub_;
    // Release hands the consumer's writes (tail_, stub_.next) to the
    // producer whose Exchange acquires the nullptr and schedules the next
    // consumer run.
    return back_.compare_exchange_strong(expected, nullptr, std::memory_order_release,
                                         std::memory_order_relaxed);
  }

 private:
  friend struct internal::MpscQueueTestPeer;

  // The two halves of Push; a test runs Pop between them.
  MpscNode* Exchange(MpscNode* node) noexcept {
    node->next.store(nullptr, std::memory_order_relaxed);  // published by the exchange
    // Release publishes node->next = nullptr (and the caller's writes) to
    // the next producer, which links behind this node; acquire gets the
    // same from the previous producer, or from TryPark.
    return back_.exchange(node, std::memory_order_acq_rel);
  }
  bool Link(MpscNode* prev, MpscNode* node) noexcept {
    const bool was_parked = prev == nullptr;
    if (was_parked) prev = &stub_;  // parked: tail_ is the stub, and the stub was the back
    // Release pairs with the consumer's acquire loads of `next` in Pop.
    prev->next.store(node, std::memory_order_release);
    return was_parked;
  }
  void PushStub() noexcept {
    MpscNode* prev = Exchange(&stub_);
    assert(prev != nullptr && "the consumer re-pushes the stub only while the queue is not parked");
    prev->next.store(&stub_, std::memory_order_release);  // pairs with Pop's acquire loads
  }

  // Producers exchange the back; the consumer owns the front and the stub.
  // Three lines in all (192 bytes per queue).
  alignas(internal::kCacheLineSize) std::atomic<MpscNode*> back_{nullptr};  // nullptr: parked
  alignas(internal::kCacheLineSize) MpscNode* tail_ = &stub_;
  // Producers link behind the stub (stub_.next) whenever the consumer has
  // caught up, so it does not share the line the consumer writes on every
  // Pop (measured: 10-15% less CPU per item when the consumer keeps pace).
  alignas(internal::kCacheLineSize) MpscNode stub_;
};

}  // namespace keel::lockfree
