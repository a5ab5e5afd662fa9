#pragma once
// Sizing a thread pool from the work it runs.
//
// A thread that spends `wait` blocked for every `compute` on the CPU leaves
// the core idle wait/(wait+compute) of the time, so a pool keeps all cores
// busy with  cores x (1 + wait/compute)  threads (Goetz, "Java Concurrency in
// Practice", 8.2). Pure compute gives one thread per core; IO-bound work that
// waits 9x as long as it computes gives ten.
//
// Stateless and thread-safe.

#include <cstdint>
#include <vector>

namespace keel::core {

// Cores this process may run on (its affinity mask, so `taskset -c 0` gives
// 1), at least 1.
uint32_t AvailableCores() noexcept;
// The CPU numbers in this process's affinity mask, ascending (for pinning a
// ThreadGroup across them).
std::vector<uint32_t> AllowedCpus();

struct PoolSizing {
  double wait_per_compute = 0.0;  // time blocked / time on CPU, >= 0
  uint32_t cores = 0;             // 0: AvailableCores()
  uint32_t min_threads = 1;
  uint32_t max_threads = 1024;
};

// cores x (1 + wait_per_compute), rounded to nearest, clamped to
// [min_threads, max_threads]. Throws std::invalid_argument for a negative or
// non-finite ratio or min_threads > max_threads.
uint32_t ThreadsForPool(const PoolSizing& sizing);

}  // namespace keel::core
