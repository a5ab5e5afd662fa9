#pragma once
// JobNode and JobList: the nodes of JobQueue's mailbox (a
// keel::lockfree::MpscQueue, linked through the MpscNode base) and a private
// FIFO of nodes already taken out of it (Clear, Abandon, destruction).
//
// JobList is not thread-safe: one thread owns it. AllocNode and FreeNode use
// the calling thread's free list and may be called from any thread; a node
// may be freed on a thread other than the one that made it.

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "keel/job/job.h"
#include "keel/lockfree/mpsc_node.h"

namespace keel::job::internal {

// `next` (from MpscNode) links the mailbox, then a JobList once taken out.
// A node is written by the posting thread and read by a worker on another
// core: its link, label, the job's ops pointer and the start of the callable
// come first, so a small job's node is one or two lines (80-byte malloc
// chunks, 16-aligned). Aligning nodes to 64 bytes was measured and lost:
// `new` of an over-aligned type goes to aligned_alloc, slow when producers
// outrun the workers and the node caches run dry (fan-in to 1000 actors
// 1.04-1.26x CPU in three runs; docs/job.md).
struct JobNode : lockfree::MpscNode {
  const char* label = "job";  // a string literal, for the stall watchdog
  Job job;
};
static_assert(sizeof(JobNode) == 72);

// Takes a node from this thread's free list (refilled in batches from a
// shared depot, else the heap) / returns it there (a thread caches at most
// 512 nodes; surplus batches go to the depot, which holds at most
// 16 x kMaxCachedNodes nodes; beyond that, malloc). After the thread's cache
// is destroyed (thread exit) both fall back to new/delete.
JobNode* AllocNode();
void FreeNode(JobNode* node) noexcept;
inline constexpr std::size_t kMaxCachedNodes = 4096;

class JobList {
 public:
  JobList() = default;
  JobList(const JobList&) = delete;
  JobList& operator=(const JobList&) = delete;
  JobList(JobList&& other) noexcept : head_(other.head_), tail_(other.tail_), size_(other.size_) {
    other.head_ = other.tail_ = nullptr;
    other.size_ = 0;
  }
  // Takes `other`'s nodes; this list must be empty.
  JobList& operator=(JobList&& other) noexcept {
    head_ = other.head_;
    tail_ = other.tail_;
    size_ = other.size_;
    other.head_ = other.tail_ = nullptr;
    other.size_ = 0;
    return *this;
  }

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

  void PushBack(JobNode* node) noexcept {
    node->next.store(nullptr, std::memory_order_relaxed);
    if (tail_ != nullptr) {
      tail_->next.store(node, std::memory_order_relaxed);
    } else {
      head_ = node;
    }
    tail_ = node;
    ++size_;
  }
  JobNode* PopFront() noexcept {
    JobNode* node = head_;
    if (node == nullptr) return nullptr;
    head_ = static_cast<JobNode*>(node->next.load(std::memory_order_relaxed));
    if (head_ == nullptr) tail_ = nullptr;
    --size_;
    return node;
  }
  // Destroys every job (outside any lock, by the caller) and frees the nodes.
  std::size_t DestroyAll() noexcept {
    std::size_t n = 0;
    while (JobNode* node = PopFront()) {
      node->job.Reset();
      FreeNode(node);
      ++n;
    }
    return n;
  }

 private:
  JobNode* head_ = nullptr;
  JobNode* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace keel::job::internal
