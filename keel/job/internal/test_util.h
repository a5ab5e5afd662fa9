#pragma once
// Helpers shared by the job layer's tests: a waiting loop with a deadline and
// a minimal actor.

#include <chrono>
#include <string>
#include <thread>

#include "keel/job/job_queue.h"

namespace keel::job::testing {

// Polls `done` until it returns true or `limit` passes; returns done().
template <typename Pred>
bool WaitFor(Pred done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

class TestActor : public JobQueue {
 public:
  TestActor(WorkerGroup& group, std::string name) : JobQueue(group, std::move(name)) {}
  // State touched only by this actor's jobs.
  int value = 0;
  void Add(int n) { value += n; }
};

}  // namespace keel::job::testing
