#include "keel/job/internal/job_list.h"

#include <vector>

#include "keel/core/lock_guard.h"
#include "keel/core/spin_lock.h"
#include "keel/core/thread_annotations.h"

namespace keel::job::internal {
namespace {

// Nodes move between threads in batches ("magazines"): in fan-in the
// producers allocate and the worker frees, so a purely per-thread cache
// would leave producers calling malloc for every job and the worker freeing
// memory malloc'd elsewhere. A thread whose cache passes 2 x kBatch hands
// kBatch nodes to the depot; a thread with an empty cache takes a batch.
constexpr std::size_t kBatch = 256;
constexpr std::size_t kMaxDepotBatches = kMaxCachedNodes / kBatch * 16;

struct Batch {
  JobNode* head;
  std::size_t size;
};

void DeleteChain(JobNode* head) noexcept {
  while (head != nullptr) {
    JobNode* next = head->next;
    delete head;
    head = next;
  }
}

class Depot {
 public:
  bool TryPut(Batch batch) noexcept {
    core::LockGuard lock(mu_);
    if (batches_.size() >= kMaxDepotBatches) return false;
    batches_.push_back(batch);  // capacity reserved: no allocation
    return true;
  }
  bool TryTake(Batch& out) noexcept {
    core::LockGuard lock(mu_);
    if (batches_.empty()) return false;
    out = batches_.back();
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

struct NodeCache {
  JobNode* head = nullptr;
  std::size_t size = 0;
  ~NodeCache() { DeleteChain(head); }
};

thread_local NodeCache tls_cache;

}  // namespace

JobNode* AllocNode() {
  NodeCache& cache = tls_cache;
  if (cache.head == nullptr) {
    Batch batch{};
    if (TheDepot().TryTake(batch)) {
      cache.head = batch.head;
      cache.size = batch.size;
    }
  }
  if (JobNode* node = cache.head) {
    cache.head = node->next;
    --cache.size;
    node->next = nullptr;
    node->label = "job";
    return node;
  }
  return new JobNode();
}

void FreeNode(JobNode* node) noexcept {
  NodeCache& cache = tls_cache;
  node->next = cache.head;
  cache.head = node;
  ++cache.size;
  if (cache.size < 2 * kBatch) return;
  // Split off kBatch nodes for the depot (or malloc if the depot is full).
  JobNode* first = cache.head;
  JobNode* last = first;
  for (std::size_t i = 1; i < kBatch; ++i) last = last->next;
  cache.head = last->next;
  cache.size -= kBatch;
  last->next = nullptr;
  if (!TheDepot().TryPut({first, kBatch})) DeleteChain(first);
}

}  // namespace keel::job::internal
