#include "keel/job/internal/job_list.h"

#include <algorithm>
#include <array>
#include <vector>

#include "keel/core/lock_guard.h"
#include "keel/core/spin_lock.h"
#include "keel/core/thread_annotations.h"

namespace keel::job::internal {
namespace {

// Nodes move between threads in batches ("magazines"): in fan-in the
// producers allocate and the worker frees, so a purely per-thread cache
// would leave producers calling malloc for every job and the worker freeing
// memory malloc'd elsewhere. A thread whose cache is full (2 x kBatch) hands
// kBatch nodes to the depot; a thread with an empty cache takes a batch.
//
// Caches and batches are arrays of node pointers, not chains through
// node->next: a node freed on another core is a cache miss, and a chain makes
// every miss wait for the one before it (the producer read next, the worker
// walked kBatch nodes to split a batch). With arrays nothing is read from a
// node until the job is built in it, and the next node is prefetched.
constexpr std::size_t kBatch = 256;
constexpr std::size_t kMaxDepotBatches = kMaxCachedNodes / kBatch * 16;

using Batch = std::array<JobNode*, kBatch>;

void DeleteNodes(JobNode* const* nodes, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) delete nodes[i];
}

class Depot {
 public:
  bool TryPut(JobNode* const* nodes) noexcept {
    core::LockGuard lock(mu_);
    if (batches_.size() >= kMaxDepotBatches) return false;
    batches_.emplace_back();  // capacity reserved: no allocation
    std::copy_n(nodes, kBatch, batches_.back().begin());
    return true;
  }
  bool TryTake(JobNode** out) noexcept {
    core::LockGuard lock(mu_);
    if (batches_.empty()) return false;
    std::copy_n(batches_.back().begin(), kBatch, out);
    batches_.pop_back();
    return true;
  }
  Depot() { batches_.reserve(kMaxDepotBatches); }

 private:
  core::SpinLock mu_{"JobNodeDepot"};
  std::vector<Batch> batches_ KEEL_GUARDED_BY(mu_);
};

// Never destroyed: threads may free nodes during static destruction, and
// the lock's checked-build bookkeeping is gone by then. Its nodes stay
// reachable, so leak checkers do not report them.
Depot& TheDepot() {
  static Depot* depot = new Depot();
  return *depot;
}

// Set when this thread's cache is destroyed: thread_local and static
// destructors that run later (an actor posting or dropping jobs at exit) must
// not reach the destroyed cache, so they use plain new/delete.
constinit thread_local bool tls_cache_gone = false;

struct NodeCache {
  std::array<JobNode*, 2 * kBatch> nodes{};
  std::size_t size = 0;
  ~NodeCache() {
    DeleteNodes(nodes.data(), size);
    size = 0;
    tls_cache_gone = true;
  }
};

thread_local NodeCache tls_cache;

}  // namespace

JobNode* AllocNode() {
  if (tls_cache_gone) [[unlikely]] return new JobNode();
  NodeCache& cache = tls_cache;
  if (cache.size == 0) {
    if (!TheDepot().TryTake(cache.nodes.data())) return new JobNode();
    cache.size = kBatch;
  }
  JobNode* node = cache.nodes[--cache.size];
  if (cache.size != 0) __builtin_prefetch(cache.nodes[cache.size - 1], 1);
  node->next.store(nullptr, std::memory_order_relaxed);
  node->label = "job";
  return node;
}

void FreeNode(JobNode* node) noexcept {
  if (tls_cache_gone) [[unlikely]] {
    delete node;
    return;
  }
  NodeCache& cache = tls_cache;
  if (cache.size == cache.nodes.size()) {
    // Hand the newer half to the depot (or malloc if the depot is full).
    JobNode* const* upper = cache.nodes.data() + kBatch;
    if (!TheDepot().TryPut(upper)) DeleteNodes(upper, kBatch);
    cache.size = kBatch;
  }
  cache.nodes[cache.size++] = node;
}

}  // namespace keel::job::internal
