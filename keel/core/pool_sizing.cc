#include "keel/core/pool_sizing.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>

namespace keel::core {

uint32_t AvailableCores() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<uint32_t>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::vector<uint32_t> AllowedCpus() {
  std::vector<uint32_t> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (uint32_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

uint32_t ThreadsForPool(const PoolSizing& sizing) {
  if (!std::isfinite(sizing.wait_per_compute) || sizing.wait_per_compute < 0.0) {
    throw std::invalid_argument("ThreadsForPool: wait/compute must be finite and >= 0");
  }
  if (sizing.min_threads > sizing.max_threads) {
    throw std::invalid_argument("ThreadsForPool: min_threads > max_threads");
  }
  const uint32_t cores = sizing.cores == 0 ? AvailableCores() : sizing.cores;
  const double want = std::round(cores * (1.0 + sizing.wait_per_compute));
  if (want >= static_cast<double>(sizing.max_threads)) return sizing.max_threads;
  return std::max(sizing.min_threads, static_cast<uint32_t>(want));
}

}  // namespace keel::core
