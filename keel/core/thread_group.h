#pragma once
// ThreadGroup: a named set of threads that run one body and stop together
// (the IO threads, the job workers, a bot fleet's drivers).
//
//   ThreadGroup workers({.name = "logic", .threads = 4, .cpus = {0, 1}});
//   workers.Start([&](std::stop_token stop) { while (!stop.stop_requested()) RunSome(); });
//   ...
//   workers.RequestStop();
//   workers.Join();   // rethrows, as ThreadGroupError, what any thread threw
//
// Thread i is named "<name>-<i>" (ThisThread::Name(), the kernel's thread name
// and every log line) and, when `cpus` is given, pinned to cpus[i % size].
// An exception escaping the body is logged with the thread's name and kept;
// the other threads go on until stopped. The destructor requests stop and
// joins without throwing (failures were already logged).
//
// Start, RequestStop and Join are called by the owner thread; none may be
// called from inside the group. Running(), Failures() are thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/mutex.h"
#include "keel/core/thread_annotations.h"

namespace keel::core {

struct ThreadGroupOptions {
  std::string name = "worker";
  uint32_t threads = 1;
  std::vector<uint32_t> cpus;  // empty: no pinning
};

struct ThreadFailure {
  std::string thread;
  std::string what;
};

class ThreadGroupError : public std::runtime_error {
 public:
  explicit ThreadGroupError(std::vector<ThreadFailure> failures);
  const std::vector<ThreadFailure>& failures() const noexcept { return failures_; }

 private:
  std::vector<ThreadFailure> failures_;
};

class ThreadGroup {
 public:
  using Body = std::function<void(std::stop_token)>;

  // Throws std::invalid_argument for zero threads, an empty name, or a CPU
  // outside this process's affinity mask.
  explicit ThreadGroup(ThreadGroupOptions options);
  ~ThreadGroup();
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;

  // Launches the threads; throws std::logic_error if already started.
  void Start(Body body);
  void RequestStop() noexcept;
  // Waits for every thread; throws ThreadGroupError if any body threw.
  void Join();

  const std::string& name() const noexcept { return options_.name; }
  uint32_t size() const noexcept { return options_.threads; }
  // Threads started and not yet returned from their body.
  uint32_t Running() const noexcept { return running_.load(std::memory_order_relaxed); }
  std::vector<ThreadFailure> Failures() const;

 private:
  void RunThread(uint32_t index, std::stop_token stop);
  void JoinAll() noexcept;

  const ThreadGroupOptions options_;
  Body body_;
  std::vector<std::jthread> threads_;
  std::atomic<uint32_t> running_{0};
  mutable Mutex mu_{"ThreadGroup"};
  std::vector<ThreadFailure> failures_ KEEL_GUARDED_BY(mu_);
};

}  // namespace keel::core
