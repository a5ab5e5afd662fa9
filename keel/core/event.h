#pragma once
// Event: a thread signal in the style of Win32 events, which IOCP-era
// server code is written against.
//
//  - Manual reset: Set() releases every waiter, now and later, until Reset().
//  - Auto reset: Set() releases exactly one waiter (now or the next to come),
//    then the event resets itself.
//  - Pulse(): wakes only threads waiting at that moment (all of them for a
//    manual-reset event, one for auto-reset) and leaves the event unset;
//    threads that start waiting afterwards are not woken by it.
//
// All members are thread-safe. Waits block the thread (mutex + condition
// variable); never wait on an IO thread or inside a job.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace keel::core {

class Event {
 public:
  enum class Mode { kManualReset, kAutoReset };

  explicit Event(Mode mode, bool initially_set = false) noexcept
      : mode_(mode), signaled_(initially_set) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void Set();
  void Reset();
  void Pulse();

  void Wait();
  // Returns false if the timeout passed without the event releasing us.
  bool WaitFor(std::chrono::nanoseconds timeout);
  // Non-blocking: consumes the signal of an auto-reset event.
  bool TryWait();

  // Threads currently blocked in Wait/WaitFor (for tests and diagnostics).
  size_t Waiters() const;

 private:
  bool ReleasedLocked(uint64_t ticket, uint64_t pulse_gen);
  bool WaitUntil(std::chrono::steady_clock::time_point deadline, bool timed);

  const Mode mode_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool signaled_;
  size_t waiters_ = 0;
  uint64_t next_ticket_ = 0;    // each waiter draws one on arrival
  uint64_t pulse_gen_ = 0;      // manual pulses: a waiter is released if it changed
  uint64_t pulse_before_ = 0;   // auto pulses: tickets below this may take a token
  size_t pulse_tokens_ = 0;     // auto pulses not yet taken
};

}  // namespace keel::core
