#include "keel/core/event.h"

namespace keel::core {

void Event::Set() {
  {
    std::lock_guard lock(mu_);
    signaled_ = true;
  }
  if (mode_ == Mode::kManualReset) {
    cv_.notify_all();
  } else {
    cv_.notify_one();
  }
}

void Event::Reset() {
  std::lock_guard lock(mu_);
  signaled_ = false;
}

void Event::Pulse() {
  {
    std::lock_guard lock(mu_);
    if (mode_ == Mode::kManualReset) {
      ++pulse_gen_;
    } else {
      // One token for the waiters present now, unless tokens already cover them.
      if (waiters_ <= pulse_tokens_) return;
      ++pulse_tokens_;
      pulse_before_ = next_ticket_;
    }
  }
  // notify_all even for auto: only an eligible waiter can take the token.
  cv_.notify_all();
}

bool Event::ReleasedLocked(uint64_t ticket, uint64_t pulse_gen) {
  if (signaled_) {
    if (mode_ == Mode::kAutoReset) signaled_ = false;
    return true;
  }
  if (mode_ == Mode::kManualReset) return pulse_gen != pulse_gen_;
  if (pulse_tokens_ > 0 && ticket < pulse_before_) {
    --pulse_tokens_;
    return true;
  }
  return false;
}

bool Event::WaitUntil(std::chrono::steady_clock::time_point deadline, bool timed) {
  std::unique_lock lock(mu_);
  const uint64_t ticket = next_ticket_++;
  const uint64_t pulse_gen = pulse_gen_;
  ++waiters_;
  bool released = ReleasedLocked(ticket, pulse_gen);
  while (!released) {
    if (timed) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
        released = ReleasedLocked(ticket, pulse_gen);
        break;
      }
    } else {
      cv_.wait(lock);
    }
    released = ReleasedLocked(ticket, pulse_gen);
  }
  --waiters_;
  // A token that no present waiter can take any more must not linger.
  if (pulse_tokens_ > waiters_) pulse_tokens_ = waiters_;
  return released;
}

void Event::Wait() { WaitUntil({}, false); }

bool Event::WaitFor(std::chrono::nanoseconds timeout) {
  return WaitUntil(std::chrono::steady_clock::now() + timeout, true);
}

bool Event::TryWait() {
  std::lock_guard lock(mu_);
  if (!signaled_) return false;
  if (mode_ == Mode::kAutoReset) signaled_ = false;
  return true;
}

size_t Event::Waiters() const {
  std::lock_guard lock(mu_);
  return waiters_;
}

}  // namespace keel::core
