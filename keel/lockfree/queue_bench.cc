// Queues and stacks of 8-byte items: Keel's lock-free containers and their
// mutex twins against moodycamel::ConcurrentQueue (the baseline),
// boost::lockfree::queue, tbb::concurrent_queue and std::mutex + std::deque.
// Names read group/impl/case; bench/compare.py pairs each impl with the
// group's baseline and prints the ratio of CPU time per item. Results and
// the command line: docs/lockfree.md.
//
// queue/<impl>/1p1c, queue/<impl>/2p1c: one consumer and 1 or 2 producers,
// long-lived threads (created once per benchmark, woken per batch). One
// benchmark iteration is one item. In each batch every producer pushes
// kPerProducer items and the consumer pops them all, polling (a few CPU
// pauses, then yield) when the queue is empty; producers of the bounded
// rings poll the same way when full. Reported times, per item:
//   CPU  = process CPU time (every thread: producers, consumer, and the
//          benchmark's own thread, which only sleeps while a batch runs),
//   wall = real time of the batches.
// Counters: items_per_second (wall), and consumer_cpu_ns / producer_cpu_ns
// per item from each role's CLOCK_THREAD_CPUTIME_ID, to show where it goes.
// The intrusive MPSC queues get preallocated nodes, one per item of a batch,
// reused every batch, as the engine embeds the node in its job or buffer:
// no allocation per push. MpscQueue packs 16-byte nodes side by side (4 to
// a cache line); MpscQueue_scattered uses them in a shuffled order (nodes
// from a pool are not adjacent); MpscQueue_line gives each node its own
// 64-byte line, as a job or buffer has. Boost's queue gets a node pool as
// large as a batch.
//
// stack/<impl>/threads:N: every thread pushes then pops one item per
// iteration on one shared stack; Google Benchmark sums CPU over threads.
#include <time.h>

#include <benchmark/benchmark.h>
#include <boost/lockfree/queue.hpp>
#include <concurrentqueue/concurrentqueue.h>
#include <tbb/concurrent_queue.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/deadlock_detector.h"
#include "keel/core/internal/backoff.h"
#include "keel/lockfree/lock_free_stack.h"
#include "keel/lockfree/locked_mpmc_queue.h"
#include "keel/lockfree/locked_mpsc_queue.h"
#include "keel/lockfree/locked_stack.h"
#include "keel/lockfree/mpmc_queue.h"
#include "keel/lockfree/mpsc_queue.h"

namespace {

using namespace keel::lockfree;

constexpr uint32_t kPerProducer = 1u << 16;
constexpr std::size_t kRingCapacity = 1u << 14;

uint64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The same polling policy for every implementation: a few pauses, then
// give the core away (there are more threads than the 2 cores).
class Idle {
 public:
  void Wait() {
    if (++misses_ < 64) {
      keel::core::internal::CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
  void Reset() { misses_ = 0; }

 private:
  uint32_t misses_ = 0;
};

// Long-lived threads that each run `work(index)` once per RunBatch().
class Crew {
 public:
  Crew(uint32_t threads, std::function<void(uint32_t)> work)
      : work_(std::move(work)), cpu_ns_(threads, 0) {
    for (uint32_t i = 0; i < threads; ++i) threads_.emplace_back([this, i] { Loop(i); });
  }
  ~Crew() {
    stop_.store(true);
    generation_.fetch_add(1);
    generation_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void RunBatch() {
    done_.store(0);
    ready_.store(0);
    generation_.fetch_add(1);
    generation_.notify_all();
    for (uint32_t d = done_.load(); d != threads_.size(); d = done_.load()) done_.wait(d);
  }
  // CPU time thread `i` spent in work, over every batch so far.
  uint64_t CpuNs(uint32_t i) const { return cpu_ns_[i]; }

 private:
  void Loop(uint32_t i) {
    uint64_t seen = 0;
    for (;;) {
      generation_.wait(seen);
      seen = generation_.load();
      if (stop_.load()) return;
      const uint64_t start = ThreadCpuNs();
      // Start together, so producers and consumer really overlap (a futex
      // wake-up takes tens of microseconds here, a batch a few hundred).
      ready_.fetch_add(1);
      while (ready_.load() != threads_.size()) std::this_thread::yield();
      work_(i);
      cpu_ns_[i] += ThreadCpuNs() - start;
      done_.fetch_add(1);
      done_.notify_one();
    }
  }

  std::function<void(uint32_t)> work_;
  std::vector<uint64_t> cpu_ns_;  // written by thread i between batches
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint32_t> ready_{0};
  std::atomic<uint32_t> done_{0};
  std::atomic<bool> stop_{false};
};

// --- Adapters: Push(producer, seq, value) and Pop(value) ------------------

struct ValueNode : MpscNode {
  uint64_t value = 0;
};
// A node the size of a cache line, as a job or send buffer is at least:
// neighbours no longer share a line.
struct alignas(64) LineNode : MpscNode {
  uint64_t value = 0;
};

// kScattered: nodes are used in a shuffled order, as jobs taken from a pool
// would be, instead of walking memory in order (which the prefetcher loves).
template <typename Queue, typename Node = ValueNode, bool kScattered = false>
class IntrusiveAdapter {
 public:
  explicit IntrusiveAdapter(uint32_t producers) {
    std::mt19937 rng(42);
    for (uint32_t p = 0; p < producers; ++p) {
      nodes_.push_back(std::make_unique<Node[]>(kPerProducer));
      if constexpr (kScattered) {
        std::vector<Node*> order(kPerProducer);
        for (uint32_t i = 0; i < kPerProducer; ++i) order[i] = &nodes_.back()[i];
        std::shuffle(order.begin(), order.end(), rng);
        order_.push_back(std::move(order));
      }
    }
  }
  void Push(uint32_t producer, uint32_t seq, uint64_t value) {
    Node* node;
    if constexpr (kScattered) {
      node = order_[producer][seq];
    } else {
      node = &nodes_[producer][seq];
    }
    node->value = value;
    queue_.Push(node);
  }
  bool Pop(uint64_t& value) {
    MpscNode* node = queue_.Pop();
    if (node == nullptr) return false;
    value = static_cast<Node*>(node)->value;
    return true;
  }

 private:
  std::vector<std::unique_ptr<Node[]>> nodes_;
  std::vector<std::vector<Node*>> order_;
  Queue queue_;
};

template <typename Ring>
class RingAdapter {
 public:
  explicit RingAdapter(uint32_t) : ring_(kRingCapacity) {}
  void Push(uint32_t, uint32_t, uint64_t value) {
    Idle idle;
    while (!ring_.TryPush(value)) idle.Wait();
  }
  bool Pop(uint64_t& value) { return ring_.TryPop(value); }

 private:
  Ring ring_;
};

class MoodycamelAdapter {
 public:
  explicit MoodycamelAdapter(uint32_t) {}
  void Push(uint32_t, uint32_t, uint64_t value) { queue_.enqueue(value); }
  bool Pop(uint64_t& value) { return queue_.try_dequeue(value); }

 private:
  moodycamel::ConcurrentQueue<uint64_t> queue_;
};

class BoostAdapter {
 public:
  explicit BoostAdapter(uint32_t producers) : queue_(producers * kPerProducer) {}
  void Push(uint32_t, uint32_t, uint64_t value) { queue_.push(value); }
  bool Pop(uint64_t& value) { return queue_.pop(value); }

 private:
  boost::lockfree::queue<uint64_t> queue_;
};

class TbbAdapter {
 public:
  explicit TbbAdapter(uint32_t) {}
  void Push(uint32_t, uint32_t, uint64_t value) { queue_.push(value); }
  bool Pop(uint64_t& value) { return queue_.try_pop(value); }

 private:
  tbb::concurrent_queue<uint64_t> queue_;
};

class StdMutexDequeAdapter {
 public:
  explicit StdMutexDequeAdapter(uint32_t) {}
  void Push(uint32_t, uint32_t, uint64_t value) {
    std::lock_guard lock(mu_);
    queue_.push_back(value);
  }
  bool Pop(uint64_t& value) {
    std::lock_guard lock(mu_);
    if (queue_.empty()) return false;
    value = queue_.front();
    queue_.pop_front();
    return true;
  }

 private:
  std::mutex mu_;
  std::deque<uint64_t> queue_;
};

// --- Producer/consumer ---------------------------------------------------

uint64_t ValueOf(uint32_t producer, uint32_t seq) { return (uint64_t{producer} << 32) | seq; }

template <typename Adapter>
void ProducersConsumer(benchmark::State& state, uint32_t producers) {
  Adapter queue(producers);
  const uint64_t per_batch = uint64_t{producers} * kPerProducer;
  uint64_t expected_sum = 0;
  for (uint32_t p = 0; p < producers; ++p) {
    for (uint32_t s = 0; s < kPerProducer; ++s) expected_sum += ValueOf(p, s);
  }
  std::atomic<uint64_t> bad_batches{0};
  Crew crew(producers + 1, [&](uint32_t i) {
    if (i < producers) {
      for (uint32_t s = 0; s < kPerProducer; ++s) queue.Push(i, s, ValueOf(i, s));
      return;
    }
    uint64_t got = 0;
    uint64_t sum = 0;
    uint64_t value = 0;
    Idle idle;
    while (got < per_batch) {
      if (queue.Pop(value)) {
        sum += value;
        ++got;
        idle.Reset();
      } else {
        idle.Wait();
      }
    }
    if (sum != expected_sum) bad_batches.fetch_add(1);
  });

  uint64_t items = 0;
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(per_batch))) {
    crew.RunBatch();
    items += per_batch;
  }
  if (bad_batches.load() != 0) state.SkipWithError("items lost or duplicated");
  uint64_t producer_cpu = 0;
  for (uint32_t p = 0; p < producers; ++p) producer_cpu += crew.CpuNs(p);
  const auto per_item = [&](uint64_t ns) {
    return static_cast<double>(ns) / static_cast<double>(items);
  };
  state.SetItemsProcessed(static_cast<int64_t>(items));
  state.counters["consumer_cpu_ns"] = per_item(crew.CpuNs(producers));
  state.counters["producer_cpu_ns"] = per_item(producer_cpu);
}

template <typename Adapter>
void RegisterQueue(const std::string& impl) {
  for (uint32_t producers : {1u, 2u}) {
    const std::string name = "queue/" + impl + "/" + std::to_string(producers) + "p1c";
    benchmark::RegisterBenchmark(
        name.c_str(),
        [producers](benchmark::State& s) { ProducersConsumer<Adapter>(s, producers); })
        ->MeasureProcessCPUTime()
        ->UseRealTime()
        ->Unit(benchmark::kNanosecond);
  }
}

// --- Stack ----------------------------------------------------------------

class StdMutexVectorStack {
 public:
  void Push(uint64_t value) {
    std::lock_guard lock(mu_);
    items_.push_back(value);
  }
  bool TryPop(uint64_t& out) {
    std::lock_guard lock(mu_);
    if (items_.empty()) return false;
    out = items_.back();
    items_.pop_back();
    return true;
  }

 private:
  std::mutex mu_;
  std::vector<uint64_t> items_;
};

template <typename Stack>
void RegisterStack(const std::string& impl) {
  static Stack stack;
  for (int threads : {1, 2}) {
    const std::string name = "stack/" + impl;
    benchmark::RegisterBenchmark(name.c_str(), [](benchmark::State& state) {
      uint64_t value = static_cast<uint64_t>(state.thread_index());
      uint64_t out = 0;
      for (auto _ : state) {
        stack.Push(value);
        benchmark::DoNotOptimize(stack.TryPop(out));
      }
      state.SetItemsProcessed(state.iterations());
    })->Threads(threads);
  }
}

}  // namespace

int main(int argc, char** argv) {
  keel::core::DeadlockDetector::SetEnabled(false);  // measure the containers alone
  RegisterQueue<IntrusiveAdapter<MpscQueue>>("MpscQueue");
  RegisterQueue<IntrusiveAdapter<MpscQueue, ValueNode, true>>("MpscQueue_scattered");
  RegisterQueue<IntrusiveAdapter<MpscQueue, LineNode>>("MpscQueue_line");
  RegisterQueue<IntrusiveAdapter<LockedMpscQueue>>("LockedMpscQueue");
  RegisterQueue<RingAdapter<MpmcQueue<uint64_t>>>("MpmcQueue");
  RegisterQueue<RingAdapter<LockedMpmcQueue<uint64_t>>>("LockedMpmcQueue");
  RegisterQueue<MoodycamelAdapter>("moodycamel");
  RegisterQueue<BoostAdapter>("boost_lockfree");
  RegisterQueue<TbbAdapter>("tbb");
  RegisterQueue<StdMutexDequeAdapter>("std_mutex_deque");
  RegisterStack<LockFreeStack<uint64_t>>("LockFreeStack");
  RegisterStack<LockedStack<uint64_t>>("LockedStack");
  RegisterStack<StdMutexVectorStack>("std_mutex_vector");
  benchmark::AddCustomContext("baseline.queue", "moodycamel");
  benchmark::AddCustomContext("baseline.stack", "std_mutex_vector");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
