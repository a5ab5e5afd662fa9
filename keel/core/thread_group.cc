#include "keel/core/thread_group.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <utility>

#include "keel/core/log.h"
#include "keel/core/thread_context.h"

namespace keel::core {
namespace {

std::string DescribeFailures(const std::vector<ThreadFailure>& failures) {
  std::string text = std::to_string(failures.size()) + " thread(s) failed:";
  for (const ThreadFailure& f : failures) text += " [" + f.thread + "] " + f.what + ";";
  return text;
}

void CheckOptions(const ThreadGroupOptions& options) {
  if (options.name.empty()) throw std::invalid_argument("ThreadGroup: empty name");
  if (options.threads == 0) {
    throw std::invalid_argument("ThreadGroup '" + options.name + "': zero threads");
  }
  if (options.cpus.empty()) return;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  for (uint32_t cpu : options.cpus) {
    if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
      throw std::invalid_argument("ThreadGroup '" + options.name + "': CPU " +
                                  std::to_string(cpu) + " is not in this process's affinity mask");
    }
  }
}

}  // namespace

ThreadGroupError::ThreadGroupError(std::vector<ThreadFailure> failures)
    : std::runtime_error(DescribeFailures(failures)), failures_(std::move(failures)) {}

ThreadGroup::ThreadGroup(ThreadGroupOptions options) : options_(std::move(options)) {
  CheckOptions(options_);
}

ThreadGroup::~ThreadGroup() {
  RequestStop();
  JoinAll();
}

void ThreadGroup::Start(Body body) {
  if (!threads_.empty()) throw std::logic_error("ThreadGroup '" + options_.name + "': started twice");
  body_ = std::move(body);
  threads_.reserve(options_.threads);
  for (uint32_t i = 0; i < options_.threads; ++i) {
    running_.fetch_add(1, std::memory_order_relaxed);
    threads_.emplace_back([this, i](std::stop_token stop) { RunThread(i, std::move(stop)); });
  }
}

void ThreadGroup::RunThread(uint32_t index, std::stop_token stop) {
  ThisThread::SetName(options_.name + "-" + std::to_string(index), options_.name, index);
  if (!options_.cpus.empty()) {
    const uint32_t cpu = options_.cpus[index % options_.cpus.size()];
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (const int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); err != 0) {
      KEEL_LOG_WARN("could not pin to CPU {}: {}", cpu, std::strerror(err));
    }
  }
  try {
    body_(std::move(stop));
  } catch (const std::exception& e) {
    KEEL_LOG_ERROR("thread group '{}': body threw: {}", options_.name, e.what());
    MutexLock lock(mu_);
    failures_.push_back({std::string(ThisThread::Name()), e.what()});
  } catch (...) {
    KEEL_LOG_ERROR("thread group '{}': body threw a non-std exception", options_.name);
    MutexLock lock(mu_);
    failures_.push_back({std::string(ThisThread::Name()), "unknown exception"});
  }
  running_.fetch_sub(1, std::memory_order_relaxed);
}

void ThreadGroup::RequestStop() noexcept {
  for (auto& t : threads_) t.request_stop();
}

void ThreadGroup::JoinAll() noexcept {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void ThreadGroup::Join() {
  JoinAll();
  std::vector<ThreadFailure> failures = Failures();
  if (!failures.empty()) throw ThreadGroupError(std::move(failures));
}

std::vector<ThreadFailure> ThreadGroup::Failures() const {
  MutexLock lock(mu_);
  return failures_;
}

}  // namespace keel::core
