#include "keel/job/global_queue.h"

#include "keel/job/job_queue.h"

namespace keel::job {

void GlobalQueue::Push(JobQueue* queue, std::size_t wake_if_more_than) {
  bool wake = false;
  {
    core::MutexLock lock(mu_);
    queue->next_ready_ = nullptr;
    if (tail_ != nullptr) {
      tail_->next_ready_ = queue;
    } else {
      head_ = queue;
    }
    tail_ = queue;
    ++size_;
    wake = sleepers_ > 0 && size_ > wake_if_more_than;
  }
  if (wake) cv_.NotifyOne();
}

JobQueue* GlobalQueue::PopLocked() {
  JobQueue* queue = head_;
  if (queue == nullptr) return nullptr;
  head_ = queue->next_ready_;
  if (head_ == nullptr) tail_ = nullptr;
  queue->next_ready_ = nullptr;
  --size_;
  return queue;
}

JobQueue* GlobalQueue::Pop() {
  core::MutexLock lock(mu_);
  for (;;) {
    if (closed_ && !drain_) return nullptr;
    if (JobQueue* queue = PopLocked()) return queue;
    if (closed_) return nullptr;
    ++sleepers_;
    cv_.Wait(mu_);
    --sleepers_;
  }
}

JobQueue* GlobalQueue::TryPop() {
  core::MutexLock lock(mu_);
  return PopLocked();
}

void GlobalQueue::Close(bool drain) {
  {
    core::MutexLock lock(mu_);
    closed_ = true;
    drain_ = drain;
  }
  cv_.NotifyAll();
}

std::size_t GlobalQueue::Size() const {
  core::MutexLock lock(mu_);
  return size_;
}

bool GlobalQueue::Closed() const {
  core::MutexLock lock(mu_);
  return closed_;
}

}  // namespace keel::job
