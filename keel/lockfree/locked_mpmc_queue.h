#pragma once
// LockedMpmcQueue<T>: the mutex twin of MpmcQueue<T>: a bounded FIFO with
// the same interface, capacity rule and tests; a std::deque under a
// keel::core::Mutex. TryPush and TryPop fail instead of waiting when the
// queue is full or empty (they do wait for the lock). Thread-safe: any
// thread may call anything.

#include <cstddef>
#include <deque>
#include <stdexcept>
#include <utility>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"

namespace keel::lockfree {

template <typename T>
class LockedMpmcQueue {
 public:
  // Throws std::invalid_argument unless capacity is a power of two >= 2.
  explicit LockedMpmcQueue(std::size_t capacity) : capacity_(capacity) {
    if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
      throw std::invalid_argument("LockedMpmcQueue capacity must be a power of two >= 2");
    }
  }
  LockedMpmcQueue(const LockedMpmcQueue&) = delete;
  LockedMpmcQueue& operator=(const LockedMpmcQueue&) = delete;

  bool TryPush(const T& value) {
    core::MutexLock lock(mu_);
    if (items_.size() == capacity_) return false;
    items_.push_back(value);
    return true;
  }
  bool TryPush(T&& value) {
    core::MutexLock lock(mu_);
    if (items_.size() == capacity_) return false;
    items_.push_back(std::move(value));
    return true;
  }

  bool TryPop(T& out) {
    core::MutexLock lock(mu_);
    if (items_.empty()) return false;
    out = std::move(items_.front());
    items_.pop_front();
    return true;
  }

  std::size_t Capacity() const noexcept { return capacity_; }

 private:
  const std::size_t capacity_;
  core::Mutex mu_{"LockedMpmcQueue"};
  std::deque<T> items_ KEEL_GUARDED_BY(mu_);
};

}  // namespace keel::lockfree
