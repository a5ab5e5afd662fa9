#pragma once
// TaggedStack<Node>: the lock-free core of LockFreeStack, a Treiber stack of
// caller-owned nodes (each Node has a `std::atomic<Node*> next`).
//
// ABA: a Pop reads head A and A->next B, then CASes head from A to B. If,
// in between, other threads pop A, pop B and push A back, head is A again and
// a plain pointer CAS would succeed and install B, a node no longer in the
// stack. Here the head is one 64-bit word holding the node address and a
// generation tag, and every successful Push or Pop increments the tag. The
// stale CAS compares the tag too, so it fails and the Pop retries with fresh
// values. Nodes are 16-byte aligned and user-space addresses fit in 48 bits
// (x86-64 and AArch64 Linux), so the address needs 44 bits and the tag gets
// 20: a stale CAS could only succeed wrongly if its Pop were stalled between
// read and CAS while exactly a multiple of 2^20 (about a million) other
// operations completed and left the same node on top; docs/lockfree.md
// puts a number on that.
//
// Reading A->next while A may concurrently be popped and pushed again is
// safe only because nodes are never freed while any thread may still be in
// Pop: the owner (LockFreeStack's node free list, or a test) keeps every
// node alive for the stack's whole life. `next` is atomic, so that stale read
// is not a data race either; its value is discarded when the CAS fails.
//
// Thread-safe: any thread may Push and Pop. Read/TryCommit split Pop into
// its two halves so a test can run other operations between them.

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>

namespace keel::lockfree::internal {

template <typename Node>
class TaggedStack {
 public:
  // What a Pop has read before its CAS.
  struct Snapshot {
    uint64_t head;  // packed tag and pointer, as read
    Node* node;     // the node on top (nullptr: empty)
    Node* next;     // node->next as read
  };

  static constexpr int kAddressBits = 48;  // user space on x86-64 and AArch64 Linux
  static constexpr int kAlignBits = 4;     // nodes are 16-byte aligned
  static constexpr int kTagBits = 64 - (kAddressBits - kAlignBits);
  static constexpr uint64_t kTagMask = (uint64_t{1} << kTagBits) - 1;

  TaggedStack() = default;
  TaggedStack(const TaggedStack&) = delete;
  TaggedStack& operator=(const TaggedStack&) = delete;

  void Push(Node* node) noexcept {
    // Relaxed: a guess that the CAS validates; node->next is published by
    // the CAS's release.
    uint64_t old = head_.load(std::memory_order_relaxed);
    uint64_t desired;
    do {
      node->next.store(PointerOf(old), std::memory_order_relaxed);
      desired = Pack(node, TagOf(old) + 1);
      // Release publishes node->next and the caller's writes to the node;
      // pairs with the acquire loads and CASes in Read and TryCommit.
    } while (!head_.compare_exchange_weak(old, desired, std::memory_order_release,
                                          std::memory_order_relaxed));
  }

  Node* Pop() noexcept {
    Snapshot snap = Read();
    while (snap.node != nullptr && !TryCommit(snap)) {
    }
    return snap.node;
  }

  // First half of Pop: the head and its next, as this thread sees them now.
  Snapshot Read() const noexcept {
    // Acquire pairs with Push's release CAS: node->next is the pushed value.
    return Describe(head_.load(std::memory_order_acquire));
  }

  // Second half: installs snap.next if the head (pointer and tag) is still
  // snap.head. On failure, refreshes `snap` for a retry.
  bool TryCommit(Snapshot& snap) noexcept {
    const uint64_t desired = Pack(snap.next, TagOf(snap.head) + 1);
    // Success acquires the pusher's writes to the node (the release sequence
    // headed by its CAS); failure acquires like Read, for the next attempt.
    if (head_.compare_exchange_strong(snap.head, desired, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
      return true;
    }
    snap = Describe(snap.head);
    return false;
  }

  // A snapshot of the head word for tests and Empty(); racy by nature.
  uint64_t HeadWord() const noexcept { return head_.load(std::memory_order_relaxed); }
  bool Empty() const noexcept { return PointerOf(HeadWord()) == nullptr; }

  static Node* PointerOf(uint64_t word) noexcept {
    return reinterpret_cast<Node*>(static_cast<uintptr_t>((word >> kTagBits) << kAlignBits));
  }
  static uint64_t TagOf(uint64_t word) noexcept { return word & kTagMask; }

 private:
  static_assert(sizeof(uintptr_t) == 8, "the tagged head needs 64-bit pointers");
  static_assert(alignof(Node) >= (std::size_t{1} << kAlignBits), "nodes must be 16-byte aligned");

  // The tag wraps modulo 2^kTagBits.
  static uint64_t Pack(Node* node, uint64_t tag) noexcept {
    const auto address = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(node));
    // Linux hands user space addresses below 2^48 (2^47 on x86-64) unless a
    // program asks mmap for higher ones (5-level paging); Keel never does.
    assert((address >> kAddressBits) == 0 && "node address above 48 bits");
    assert((address & ((uint64_t{1} << kAlignBits) - 1)) == 0 && "node not 16-byte aligned");
    return ((address >> kAlignBits) << kTagBits) | (tag & kTagMask);
  }

  static Snapshot Describe(uint64_t word) noexcept {
    Node* node = PointerOf(word);
    // Relaxed: ordered after the acquire that produced `word`; if the node
    // was popped and reused since, the value is stale and the CAS fails.
    Node* next = node != nullptr ? node->next.load(std::memory_order_relaxed) : nullptr;
    return {word, node, next};
  }

  std::atomic<uint64_t> head_{0};
};

}  // namespace keel::lockfree::internal
