#pragma once
// LockFreeStack<T>: an unbounded LIFO stack (Treiber) that any thread may
// Push to and TryPop from without a lock. Its twin LockedStack<T> has the
// same interface and passes the same tests.
//
// Each value lives in a node. Popped nodes go to an internal free list (a
// second Treiber stack) and are reused by later Pushes; they are returned to
// the allocator only when the stack is destroyed. That is what makes the
// lock-free Pop safe: it reads the top node's `next` before its CAS, and that
// node may meanwhile have been popped by another thread, but its memory is
// still a node of this stack, never freed or handed to someone else. ABA (the
// same node back on top with a different `next`) is caught by a 20-bit
// generation tag packed with the node address in the 64-bit head word; see
// internal/tagged_stack.h and docs/lockfree.md.
//
// Push allocates a node only when the free list is empty (Reserve() fills it
// up front). Memory stays at the high-water mark of live items until
// destruction. The destructor must not run concurrently with anything.

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

#include "keel/lockfree/internal/cache_line.h"
#include "keel/lockfree/internal/tagged_stack.h"

namespace keel::lockfree {
namespace internal {
struct LockFreeStackTestPeer;
}  // namespace internal

template <typename T>
class LockFreeStack {
 public:
  LockFreeStack() = default;
  LockFreeStack(const LockFreeStack&) = delete;
  LockFreeStack& operator=(const LockFreeStack&) = delete;
  ~LockFreeStack() {
    while (Node* node = items_.Pop()) {
      std::destroy_at(&node->value);
      delete node;
    }
    while (Node* node = free_.Pop()) delete node;
  }

  void Push(const T& value) { Emplace(value); }
  void Push(T&& value) { Emplace(std::move(value)); }

  // Moves the top value into `out`; false when the stack is empty.
  bool TryPop(T& out) {
    Node* node = items_.Pop();
    if (node == nullptr) return false;
    // The node is recycled even if T's move assignment throws.
    struct Recycle {
      LockFreeStack* self;
      Node* node;
      ~Recycle() {
        std::destroy_at(&node->value);
        self->free_.Push(node);
      }
    } recycle{this, node};
    out = std::move(node->value);
    return true;
  }

  // A moment's answer: another thread may change it before the caller looks.
  bool Empty() const noexcept { return items_.Empty(); }

  // Puts `count` more nodes on the free list so that as many Pushes do not
  // allocate.
  void Reserve(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) free_.Push(new Node);
  }

 private:
  friend struct internal::LockFreeStackTestPeer;

  struct alignas(16) Node {  // TaggedStack packs 16-byte aligned addresses
    Node() noexcept {}
    ~Node() {}
    std::atomic<Node*> next{nullptr};
    union {
      T value;  // alive only while the node is on items_
    };
  };

  template <typename U>
  void Emplace(U&& value) {
    Node* node = free_.Pop();
    if (node == nullptr) node = new Node;
    try {
      std::construct_at(&node->value, std::forward<U>(value));
    } catch (...) {
      free_.Push(node);
      throw;
    }
    items_.Push(node);
  }

  // Pushers and poppers hammer items_; free_ is touched by the same threads
  // but at other moments, so the two heads sit on separate lines.
  alignas(internal::kCacheLineSize) internal::TaggedStack<Node> items_;
  alignas(internal::kCacheLineSize) internal::TaggedStack<Node> free_;
};

}  // namespace keel::lockfree
