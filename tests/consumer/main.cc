// Uses the installed headers and libraries; exits 0 only if they work.
#include <keel/core/lock_guard.h>
#include <keel/core/spin_lock.h>
#include <keel/core/thread_group.h>

#include <atomic>
#include <cstdio>

int main() {
  keel::core::SpinLock lock("consumer");
  long count = 0;
  {
    keel::core::ThreadGroup group({.name = "consumer", .threads = 2});
    group.Start([&](std::stop_token) {
      for (int i = 0; i < 1000; ++i) {
        keel::core::LockGuard g(lock);
        ++count;
      }
    });
    group.Join();
  }
  std::printf("count=%ld\n", count);
  return count == 2000 ? 0 : 1;
}
