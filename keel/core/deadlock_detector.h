#pragma once
// DeadlockDetector: a process-wide lock-order graph.
//
// Every engine lock has a name. While the detector is on, each blocking
// acquisition records, for every lock the thread already holds, the edge
// "held -> acquired" (which thread first took the locks in that order). An
// acquisition whose edge would close a cycle is a potential deadlock even if
// the threads never happened to collide: it is reported with the whole cycle,
// by lock names and threads, before the lock is taken:
//
//   lock-order cycle: A -> B (thread w-0) -> C (thread w-1) -> A (thread main)
//
// then the process aborts or goes on, by SetAction(). Re-entering a lock the
// thread already holds (RwLock's writer) is not a cycle; TryLock never blocks
// and so records no edge.
//
// On by default in checked builds (KEEL_CHECKED: debug, asan, tsan presets),
// off in release; KEEL_DEADLOCK_DETECTOR=0|1 in the environment or
// SetEnabled() switch it at run time. When off, a lock pays one predictable
// branch on a relaxed load. When on, the first time a thread sees an edge it
// takes a global mutex; afterwards a thread-local cache answers.
//
// Thread-safe: every function may be called from any thread. Switch it on
// before taking locks you care about: a lock already held when it is switched
// on is not in the thread's held list.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace keel::core {

using LockId = uint64_t;

struct LockOrderCycle {
  struct Hop {
    std::string lock;    // name of the lock
    std::string thread;  // thread that took `lock` and then the next hop's lock
  };
  // hops[i].lock was held when hops[i+1].lock (wrapping) was taken.
  std::vector<Hop> hops;

  std::string ToString() const;
};

class DeadlockDetector {
 public:
  enum class Action { kAbort, kContinue };
  using Reporter = std::function<void(const LockOrderCycle&)>;

  static bool Enabled() noexcept { return enabled_.load(std::memory_order_relaxed); }
  static void SetEnabled(bool on) noexcept;
  static void SetAction(Action action) noexcept;
  // Called with every cycle after it is logged and before the action; pass
  // nullptr to remove. Used by tests and to count cycles in metrics.
  static void SetReporter(Reporter reporter);
  static uint64_t CyclesReported() noexcept;
  // Forgets every edge (tests). Held-lock lists of threads are kept.
  static void ClearGraph();

  // Hooks called by the engine's locks; user code does not call these.
  static LockId NewLockId() noexcept;
  static void BeforeAcquire(LockId id, const char* name);
  static void AfterTryAcquire(LockId id, const char* name);
  static void OnRelease(LockId id) noexcept;
  static void OnDestroy(LockId id);

 private:
  static std::atomic<bool> enabled_;
};

namespace internal {

// The name and graph identity every engine lock carries.
class LockIdentity {
 public:
  // `name` must outlive the lock (a string literal, usually).
  explicit LockIdentity(const char* name) noexcept
      : name_(name), id_(DeadlockDetector::NewLockId()) {}
  ~LockIdentity() {
    if (DeadlockDetector::Enabled()) [[unlikely]] DeadlockDetector::OnDestroy(id_);
  }
  LockIdentity(const LockIdentity&) = delete;
  LockIdentity& operator=(const LockIdentity&) = delete;

  const char* name() const noexcept { return name_; }
  LockId id() const noexcept { return id_; }

  void BeforeAcquire() const {
    if (DeadlockDetector::Enabled()) [[unlikely]] DeadlockDetector::BeforeAcquire(id_, name_);
  }
  void AfterTryAcquire() const {
    if (DeadlockDetector::Enabled()) [[unlikely]] DeadlockDetector::AfterTryAcquire(id_, name_);
  }
  void OnRelease() const noexcept {
    if (DeadlockDetector::Enabled()) [[unlikely]] DeadlockDetector::OnRelease(id_);
  }

 private:
  const char* name_;
  LockId id_;
};

}  // namespace internal
}  // namespace keel::core
