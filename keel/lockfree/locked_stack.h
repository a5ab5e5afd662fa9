#pragma once
// LockedStack<T>: the mutex twin of LockFreeStack<T>: the same interface and
// tests, a std::vector under a keel::core::Mutex. It is the reference the
// lock-free version is measured and tested against, and the simpler choice
// when contention is low. Thread-safe: any thread may call anything.

#include <cstddef>
#include <utility>
#include <vector>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"

namespace keel::lockfree {

template <typename T>
class LockedStack {
 public:
  LockedStack() = default;
  LockedStack(const LockedStack&) = delete;
  LockedStack& operator=(const LockedStack&) = delete;

  void Push(const T& value) {
    core::MutexLock lock(mu_);
    items_.push_back(value);
  }
  void Push(T&& value) {
    core::MutexLock lock(mu_);
    items_.push_back(std::move(value));
  }

  bool TryPop(T& out) {
    core::MutexLock lock(mu_);
    if (items_.empty()) return false;
    out = std::move(items_.back());
    items_.pop_back();
    return true;
  }

  bool Empty() const {
    core::MutexLock lock(mu_);
    return items_.empty();
  }

  void Reserve(std::size_t count) {
    core::MutexLock lock(mu_);
    items_.reserve(items_.size() + count);
  }

 private:
  mutable core::Mutex mu_{"LockedStack"};
  std::vector<T> items_ KEEL_GUARDED_BY(mu_);
};

}  // namespace keel::lockfree
