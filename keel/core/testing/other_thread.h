#pragma once
// Test helpers: ask whether another thread could take a lock right now.
// A lock's owner is a thread, so "is it free for others?" needs one.

#include <thread>

namespace keel::core::testing {

// Runs fn() on a new thread, waits, and returns its result.
template <typename Fn>
auto OnOtherThread(Fn fn) {
  decltype(fn()) result{};
  std::thread([&] { result = fn(); }).join();
  return result;
}

// True if another thread can take `lock` exclusively now (it releases it at once).
template <typename Lock>
bool FreeForOthers(Lock& lock) {
  return OnOtherThread([&] {
    if (!lock.TryLock()) return false;
    lock.Unlock();
    return true;
  });
}

// True if another thread can take `lock` shared now (it releases it at once).
template <typename Lock>
bool ReadableByOthers(Lock& lock) {
  return OnOtherThread([&] {
    if (!lock.TryLockShared()) return false;
    lock.UnlockShared();
    return true;
  });
}

}  // namespace keel::core::testing
