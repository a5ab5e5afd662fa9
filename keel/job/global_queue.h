#pragma once
// GlobalQueue: a WorkerGroup's run queue of actors that have work (skynet's
// global queue). A JobQueue is in it at most once, from the moment it becomes
// runnable until a worker takes it; a worker that ends a slice with jobs left
// pushes it to the back, so a flooded actor waits its turn behind the others.
//
// Thread-safe. Pop blocks: a worker with nothing to do first spins for
// `idle_spin` (real time, pauses then yields), then sleeps on the condition
// variable. Push wakes one sleeper only when one is asleep and more queues
// wait than workers spin (a spinner takes a queue without a futex wake); a spinner
// that finds work, and every worker that takes a queue, wakes a sleeper if
// more queues wait than there are spinners to take them, so a skipped wake
// is passed on rather than lost: spinning saves the wake-up of a hand-off
// without leaving runnable actors waiting behind sleeping workers.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"

namespace keel::job {

class JobQueue;

class GlobalQueue {
 public:
  GlobalQueue() = default;
  explicit GlobalQueue(std::chrono::nanoseconds idle_spin) : idle_spin_(idle_spin) {}
  GlobalQueue(const GlobalQueue&) = delete;
  GlobalQueue& operator=(const GlobalQueue&) = delete;

  // `wake_if_more_than`: wake a sleeper only if more than this many queues
  // are waiting after the push (a worker that requeues its own actor and is
  // about to Pop passes 1, so it does not wake a peer for work it will take).
  void Push(JobQueue* queue, std::size_t wake_if_more_than = 0);
  // Waits for a queue; returns nullptr once Close() was called and, if
  // `drain` is false, at once, else when empty. `*waited` (if given) is set
  // when the caller spun or slept, i.e. time passed that no job accounts for.
  JobQueue* Pop(bool* waited = nullptr);
  JobQueue* TryPop();
  void Close(bool drain);
  std::size_t Size() const;
  bool Closed() const;

 private:
  JobQueue* PopLocked() KEEL_REQUIRES(mu_);
  // Spins up to idle_spin_ (or until a push or Close may have happened).
  void SpinForWork();
  // The next queue, passing a wake on if more wait than spinners will take;
  // nullptr with `stop` set when Pop must return nullptr (closed).
  JobQueue* TakeLocked(bool& stop) KEEL_REQUIRES(mu_);

  const std::chrono::nanoseconds idle_spin_{0};
  // Mirrors size_ for spinners (written under mu_, read without it).
  std::atomic<std::size_t> size_hint_{0};
  // Workers inside SpinForWork; read by Push under mu_.
  std::atomic<uint32_t> spinning_{0};
  std::atomic<bool> closed_hint_{false};  // mirrors closed_ for spinners

  mutable core::Mutex mu_{"GlobalQueue"};
  core::CondVar cv_;
  JobQueue* head_ KEEL_GUARDED_BY(mu_) = nullptr;
  JobQueue* tail_ KEEL_GUARDED_BY(mu_) = nullptr;
  std::size_t size_ KEEL_GUARDED_BY(mu_) = 0;
  uint32_t sleepers_ KEEL_GUARDED_BY(mu_) = 0;
  bool closed_ KEEL_GUARDED_BY(mu_) = false;
  bool drain_ KEEL_GUARDED_BY(mu_) = false;
};

}  // namespace keel::job
