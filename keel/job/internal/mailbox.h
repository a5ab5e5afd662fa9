#pragma once
// Mailbox: JobQueue's lock-free queue of jobs. Any thread pushes; one
// consumer at a time pops. It is Dmitry Vyukov's intrusive MPSC queue with
// parking, the algorithm of keel::lockfree::MpscQueue (docs/lockfree.md has
// the proof sketch and the memory orders, which are the same here), with two
// changes for the job system (docs/job.md, "The mailbox"):
//
// - Compact: the back pointer, the stub and the consumer's cursor are 24
//   bytes in one cache line, which JobQueue shares with the rest of what a
//   hand-off touches (depth counter, keep-alive, ready stamp, run-queue link).
//   An actor that gets one job per turn (fan-in over many actors, ping-pong)
//   then moves one line from the poster to the worker. MpscQueue gives each
//   of the three its own line, which is right for one queue streamed by a
//   busy consumer and costs three line transfers per hand-off here.
// - A consumer role: Acquire() takes the stored cursor and sets its bit 0
//   (one atomic RMW), the consumer pops through its own copy (no shared
//   write per job, so producers pushing to a busy actor do not fight it for
//   the line), and Release() stores the cursor back and clears the bit. The
//   worker holds the role for a slice; Clear() from another thread takes it
//   for a moment.
//
// Parking, as in MpscQueue: a new mailbox is parked. Push returns true when
// it found the mailbox parked (exactly once per parking): that caller must
// schedule the consumer. The consumer pops until Pop returns nullptr, then
// TryPark(); false means a push is half done (between its exchange and its
// link) and the consumer still owns the mailbox and must come back to it.

#include <atomic>
#include <cassert>
#include <cstdint>

#include "keel/core/internal/backoff.h"
#include "keel/job/internal/job_list.h"
#include "keel/lockfree/mpsc_node.h"

namespace keel::job::internal {

struct MailboxTestPeer;

class Mailbox {
 public:
  // The consumer's cursor, private to the thread that holds the role.
  struct Consumer {
    lockfree::MpscNode* tail = nullptr;
  };

  Mailbox() noexcept : tail_(reinterpret_cast<uintptr_t>(&stub_)) {}
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Any thread. Appends `node`; true if the mailbox was parked.
  bool Push(JobNode* node) noexcept { return Link(Exchange(node), node); }

  // Takes the consumer role, waiting (pauses, then yields, then short sleeps)
  // while another thread holds it.
  Consumer Acquire() noexcept {
    uintptr_t t = tail_.fetch_or(kHeld, std::memory_order_acquire);
    if ((t & kHeld) != 0) [[unlikely]] {
      core::internal::Backoff backoff;
      do {
        do {
          backoff.Pause();
        } while ((tail_.load(std::memory_order_relaxed) & kHeld) != 0);
        t = tail_.fetch_or(kHeld, std::memory_order_acquire);
      } while ((t & kHeld) != 0);
    }
    return Consumer{reinterpret_cast<lockfree::MpscNode*>(t)};
  }
  // Takes the consumer role if no one holds it; never waits.
  bool TryAcquire(Consumer& out) noexcept {
    const uintptr_t t = tail_.fetch_or(kHeld, std::memory_order_acquire);
    if ((t & kHeld) != 0) return false;  // held: the bit was already set, nothing changed
    out = Consumer{reinterpret_cast<lockfree::MpscNode*>(t)};
    return true;
  }
  // Gives the role back. After a successful TryPark the caller may still
  // call this (it must keep the owner alive until then).
  void Release(const Consumer& c) noexcept {
    // Release: the next holder's Acquire sees the cursor and every node
    // this holder popped (pairs with the acquire RMW in Acquire).
    tail_.store(reinterpret_cast<uintptr_t>(c.tail), std::memory_order_release);
  }

  // Role holder only. The front job, or nullptr when none can be taken now
  // (empty, or a push is half done).
  JobNode* Pop(Consumer& c) noexcept {
    lockfree::MpscNode* tail = c.tail;
    // Acquire pairs with the release store in Link.
    lockfree::MpscNode* next = tail->next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (next == nullptr) return nullptr;
      c.tail = next;
      tail = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      c.tail = next;
      return static_cast<JobNode*>(tail);
    }
    // `tail` is the last linked node. Unless it is also the back (a push is
    // half done), put the stub behind it so it can be handed out.
    if (tail != back_.load(std::memory_order_acquire)) return nullptr;
    PushStub();
    next = tail->next.load(std::memory_order_acquire);
    if (next != nullptr) {
      c.tail = next;
      return static_cast<JobNode*>(tail);
    }
    return nullptr;  // a push got in before the stub and is not linked yet
  }

  // Role holder only. Parks the mailbox if it is empty with no push half
  // done. True: the next Push schedules the consumer anew.
  bool TryPark(const Consumer& c) noexcept {
    if (c.tail != &stub_) return false;
    lockfree::MpscNode* expected = &stub_;
    // Release pairs with the acquire of the Exchange that finds nullptr.
    return back_.compare_exchange_strong(expected, nullptr, std::memory_order_release,
                                         std::memory_order_relaxed);
  }

 private:
  friend struct MailboxTestPeer;
  static constexpr uintptr_t kHeld = 1;  // nodes are at least 8-aligned

  lockfree::MpscNode* Exchange(lockfree::MpscNode* node) noexcept {
    node->next.store(nullptr, std::memory_order_relaxed);  // published by the exchange
    return back_.exchange(node, std::memory_order_acq_rel);
  }
  bool Link(lockfree::MpscNode* prev, lockfree::MpscNode* node) noexcept {
    const bool was_parked = prev == nullptr;
    if (was_parked) prev = &stub_;
    prev->next.store(node, std::memory_order_release);  // pairs with Pop's acquire loads
    return was_parked;
  }
  void PushStub() noexcept {
    lockfree::MpscNode* prev = Exchange(&stub_);
    assert(prev != nullptr && "the stub is re-pushed only while the mailbox is not parked");
    prev->next.store(&stub_, std::memory_order_release);
  }

  std::atomic<lockfree::MpscNode*> back_{nullptr};  // nullptr: parked
  lockfree::MpscNode stub_;
  std::atomic<uintptr_t> tail_;  // the cursor while no one holds the role; bit 0: held
};

}  // namespace keel::job::internal
