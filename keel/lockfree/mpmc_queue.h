#pragma once
// MpmcQueue<T>: a bounded multi-producer multi-consumer FIFO ring (Dmitry
// Vyukov's bounded MPMC queue). TryPush and TryPop never block and never
// allocate: they fail when the ring is full or empty. Capacity is a power of
// two fixed at construction. The twin LockedMpmcQueue<T> has the same
// interface and passes the same tests.
//
// Each cell carries a sequence number that says whose turn it is: a cell at
// ring position p is free for the producer holding ticket p when seq == p,
// and holds a value for the consumer holding ticket p when seq == p + 1;
// the consumer then sets seq = p + capacity (the producer's next lap).
// Producers take tickets with a CAS on enqueue_pos_, consumers on
// dequeue_pos_, so the two ends share no cache line and a producer never
// waits for a consumer (or the other way round) except when full/empty.
//
// Not lock-free in the strict sense: a producer preempted between taking a
// ticket and publishing its cell holds back the consumers of that cell (they
// see it as empty) until it resumes; other cells go on. Thread-safe: any
// thread may call anything; the destructor must not run concurrently.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "keel/lockfree/internal/cache_line.h"

namespace keel::lockfree {

template <typename T>
class MpmcQueue {
 public:
  // Throws std::invalid_argument unless capacity is a power of two >= 2.
  explicit MpmcQueue(std::size_t capacity)
      : mask_(CheckedCapacity(capacity) - 1), cells_(std::make_unique<Cell[]>(capacity)) {
    for (std::size_t i = 0; i < capacity; ++i) {
      // Relaxed: no other thread sees the queue before it is constructed.
      cells_[i].seq.store(i, std::memory_order_relaxed);
    }
  }
  MpmcQueue(const MpmcQueue&) = delete;
  MpmcQueue& operator=(const MpmcQueue&) = delete;
  ~MpmcQueue() {
    // Relaxed: nothing runs concurrently with the destructor.
    const std::size_t end = enqueue_pos_.load(std::memory_order_relaxed);
    for (std::size_t pos = dequeue_pos_.load(std::memory_order_relaxed); pos != end; ++pos) {
      std::destroy_at(&cells_[pos & mask_].value);
    }
  }

  // Copies (or moves) `value` in; false when the queue is full, and then a
  // moved-from argument is left untouched.
  bool TryPush(const T& value) {
    T copy(value);  // a throwing copy happens before a ticket is taken
    return TryPush(std::move(copy));
  }
  bool TryPush(T&& value) noexcept {
    Cell* cell;
    // Relaxed ticket reads are guesses; the CAS below validates them.
    std::size_t pos = enqueue_pos_.load(std::memory_order_relaxed);
    for (;;) {
      cell = &cells_[pos & mask_];
      // Acquire pairs with the consumer's release store of seq: the
      // previous lap's value is gone.
      const std::size_t seq = cell->seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::intptr_t>(seq - pos);
      if (diff == 0) {
        // Relaxed: the ticket only orders producers among themselves; the
        // cell's seq carries the data.
        if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
      } else if (diff < 0) {
        return false;  // full (or the consumer of this cell is mid-pop)
      } else {
        pos = enqueue_pos_.load(std::memory_order_relaxed);
      }
    }
    std::construct_at(&cell->value, std::move(value));
    // Release pairs with the consumer's acquire load of seq.
    cell->seq.store(pos + 1, std::memory_order_release);
    return true;
  }

  // Moves the front value into `out`; false when the queue is empty.
  bool TryPop(T& out) {
    Cell* cell;
    std::size_t pos = dequeue_pos_.load(std::memory_order_relaxed);
    for (;;) {
      cell = &cells_[pos & mask_];
      // Acquire pairs with the producer's release store of seq: the value
      // is written.
      const std::size_t seq = cell->seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::intptr_t>(seq - (pos + 1));
      if (diff == 0) {
        // Relaxed: as in TryPush.
        if (dequeue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
      } else if (diff < 0) {
        return false;  // empty (or the producer of this cell is mid-push)
      } else {
        pos = dequeue_pos_.load(std::memory_order_relaxed);
      }
    }
    // The cell is freed even if T's move assignment throws.
    struct Release {
      Cell* cell;
      std::size_t next_lap;
      ~Release() {
        std::destroy_at(&cell->value);
        // Release pairs with the producer's acquire load of seq one lap
        // later: the cell is free and our reads of it are done.
        cell->seq.store(next_lap, std::memory_order_release);
      }
    } release{cell, pos + mask_ + 1};
    out = std::move(cell->value);
    return true;
  }

  std::size_t Capacity() const noexcept { return mask_ + 1; }

 private:
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "a producer holds a ticket while it moves the value in; that move cannot fail");

  struct Cell {
    Cell() noexcept {}
    ~Cell() {}
    std::atomic<std::size_t> seq{0};
    union {
      T value;  // alive while seq == ticket + 1
    };
  };

  static std::size_t CheckedCapacity(std::size_t capacity) {
    if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
      throw std::invalid_argument("MpmcQueue capacity must be a power of two >= 2");
    }
    return capacity;
  }

  const std::size_t mask_;
  const std::unique_ptr<Cell[]> cells_;
  alignas(internal::kCacheLineSize) std::atomic<std::size_t> enqueue_pos_{0};
  // The class is padded to a whole line after this, so no neighbour
  // object shares it.
  alignas(internal::kCacheLineSize) std::atomic<std::size_t> dequeue_pos_{0};
};

}  // namespace keel::lockfree
