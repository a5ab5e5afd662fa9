#include "keel/job/internal/job_list.h"

namespace keel::job::internal {
namespace {

// A per-thread stack of spare nodes. Fan-in moves nodes from producers to the
// worker that frees them; the cap keeps a consumer's cache bounded and the
// surplus goes back to malloc.
struct NodeCache {
  JobNode* head = nullptr;
  std::size_t size = 0;
  ~NodeCache() {
    while (head != nullptr) {
      JobNode* next = head->next;
      delete head;
      head = next;
    }
  }
};

thread_local NodeCache tls_cache;

}  // namespace

JobNode* AllocNode() {
  NodeCache& cache = tls_cache;
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
  if (cache.size >= kMaxCachedNodes) {
    delete node;
    return;
  }
  node->next = cache.head;
  cache.head = node;
  ++cache.size;
}

}  // namespace keel::job::internal
