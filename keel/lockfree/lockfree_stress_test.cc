// Several threads, millions of operations in all (fewer under TSan), on each
// lock-free container and on its mutex twin. Every item carries an ownership
// stamp (producer, sequence) and the tests prove that each pushed item comes
// out exactly once and, for the queues, in each producer's order. Under the
// tsan preset a missing happens-before edge is reported even when the
// counts happen to come out right.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/lockfree/lock_free_stack.h"
#include "keel/lockfree/locked_mpmc_queue.h"
#include "keel/lockfree/locked_mpsc_queue.h"
#include "keel/lockfree/locked_stack.h"
#include "keel/lockfree/mpmc_queue.h"
#include "keel/lockfree/mpsc_queue.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KEEL_LOCKFREE_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define KEEL_LOCKFREE_TSAN 1
#endif

namespace keel::lockfree {
namespace {

#ifdef KEEL_LOCKFREE_TSAN
constexpr uint32_t kScale = 4;  // TSan runs these ~5-15x slower
#else
constexpr uint32_t kScale = 1;
#endif

// An item's stamp: who made it and its place in that producer's sequence.
constexpr uint64_t Stamp(uint32_t producer, uint32_t seq) {
  return (uint64_t{producer} << 32) | seq;
}
constexpr uint32_t ProducerOf(uint64_t stamp) { return static_cast<uint32_t>(stamp >> 32); }
constexpr uint32_t SeqOf(uint64_t stamp) { return static_cast<uint32_t>(stamp); }

// Marks each stamp delivered; counts duplicates and ids never made.
class Ledger {
 public:
  Ledger(uint32_t producers, uint32_t per_producer)
      : per_producer_(per_producer), seen_(size_t{producers} * per_producer) {}

  void Deliver(uint64_t stamp) {
    const size_t index = size_t{ProducerOf(stamp)} * per_producer_ + SeqOf(stamp);
    if (SeqOf(stamp) >= per_producer_ || index >= seen_.size()) {
      bogus_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (seen_[index].exchange(1, std::memory_order_relaxed) != 0) {
      duplicates_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void ExpectEveryItemExactlyOnce() const {
    EXPECT_EQ(duplicates_.load(), 0u);
    EXPECT_EQ(bogus_.load(), 0u);
    size_t missing = 0;
    for (const auto& s : seen_) missing += s.load() == 0 ? size_t{1} : size_t{0};
    EXPECT_EQ(missing, 0u);
  }

 private:
  const uint32_t per_producer_;
  std::vector<std::atomic<uint8_t>> seen_;
  std::atomic<uint64_t> duplicates_{0};
  std::atomic<uint64_t> bogus_{0};
};

template <typename Fn>
void RunThreads(uint32_t n, Fn fn) {
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < n; ++i) threads.emplace_back(fn, i);
  for (auto& t : threads) t.join();
}

// --- Stack ----------------------------------------------------------------

struct LockFreeStackKind {
  using Stack = LockFreeStack<uint64_t>;
};
struct LockedStackKind {
  using Stack = LockedStack<uint64_t>;
};
template <typename Kind>
class StackStress : public ::testing::Test {};
using StackKinds = ::testing::Types<LockFreeStackKind, LockedStackKind>;
TYPED_TEST_SUITE(StackStress, StackKinds);

// Each thread pushes bursts of its own stamps and pops as many, so nodes are
// recycled constantly between threads (where ABA would bite).
TYPED_TEST(StackStress, EveryPushedItemIsPoppedExactlyOnce) {
  constexpr uint32_t kThreads = 4;
  constexpr uint32_t kPerThread = 1'000'000 / kScale;
  typename TypeParam::Stack stack;
  Ledger ledger(kThreads, kPerThread);
  RunThreads(kThreads, [&](uint32_t t) {
    uint32_t seq = 0;
    uint64_t out = 0;
    while (seq < kPerThread) {
      const uint32_t burst = 1 + (seq + t) % 4;
      uint32_t pushed = 0;
      for (; pushed < burst && seq < kPerThread; ++pushed) stack.Push(Stamp(t, seq++));
      for (uint32_t i = 0; i < pushed; ++i) {
        if (stack.TryPop(out)) ledger.Deliver(out);
      }
    }
  });
  uint64_t out = 0;
  while (stack.TryPop(out)) ledger.Deliver(out);
  ledger.ExpectEveryItemExactlyOnce();
}

// --- MPSC -----------------------------------------------------------------

struct StampedNode : MpscNode {
  uint64_t stamp = 0;
};

template <typename Queue>
class MpscStress : public ::testing::Test {};
using MpscKinds = ::testing::Types<MpscQueue, LockedMpscQueue>;
TYPED_TEST_SUITE(MpscStress, MpscKinds);

// Per-producer nodes, stamped; the consumer checks FIFO per producer.
struct MpscFixture {
  MpscFixture(uint32_t producers, uint32_t count)
      : per_producer(count),
        nodes(size_t{producers} * count),
        next_seq(producers, 0),
        ledger(producers, count) {
    for (uint32_t p = 0; p < producers; ++p) {
      for (uint32_t s = 0; s < count; ++s) Node(p, s).stamp = Stamp(p, s);
    }
  }
  StampedNode& Node(uint32_t p, uint32_t s) { return nodes[size_t{p} * per_producer + s]; }
  // Consumer side (one at a time).
  void Deliver(MpscNode* node) {
    const uint64_t stamp = static_cast<StampedNode*>(node)->stamp;
    const uint32_t p = ProducerOf(stamp);
    if (p < next_seq.size()) {
      if (SeqOf(stamp) != next_seq[p]) ++out_of_order;
      next_seq[p] = SeqOf(stamp) + 1;
    }
    ledger.Deliver(stamp);
    ++delivered;
  }

  const uint32_t per_producer;
  std::vector<StampedNode> nodes;
  std::vector<uint32_t> next_seq;
  Ledger ledger;
  uint64_t out_of_order = 0;
  uint64_t delivered = 0;
};

TYPED_TEST(MpscStress, ManyProducersOneConsumerKeepProducerOrder) {
  constexpr uint32_t kProducers = 3;
  constexpr uint32_t kPerProducer = 1'000'000 / kScale;
  constexpr uint64_t kTotal = uint64_t{kProducers} * kPerProducer;
  TypeParam q;
  MpscFixture f(kProducers, kPerProducer);
  std::thread consumer([&] {
    while (f.delivered < kTotal) {
      if (MpscNode* node = q.Pop()) {
        f.Deliver(node);
      } else {
        std::this_thread::yield();
      }
    }
  });
  RunThreads(kProducers, [&](uint32_t p) {
    for (uint32_t s = 0; s < kPerProducer; ++s) q.Push(&f.Node(p, s));
  });
  consumer.join();
  EXPECT_EQ(q.Pop(), nullptr);
  EXPECT_EQ(f.out_of_order, 0u);
  f.ledger.ExpectEveryItemExactlyOnce();
}

// The actor pattern: producers schedule the mailbox when Push says so, two
// workers run it, and the run parks the queue when it finds it empty. Two
// runs must never overlap, and nothing may be stranded in a parked queue.
TYPED_TEST(MpscStress, ParkedMailboxIsScheduledOnceAndRunsOnOneWorkerAtATime) {
  constexpr uint32_t kProducers = 2;
  constexpr uint32_t kWorkers = 2;
  constexpr uint32_t kPerProducer = 1'000'000 / kScale;
  constexpr uint64_t kTotal = uint64_t{kProducers} * kPerProducer;
  TypeParam q;
  MpscFixture f(kProducers, kPerProducer);
  std::atomic<int> scheduled{0};  // runs asked for and not yet started
  std::atomic<bool> running{false};
  std::atomic<uint64_t> overlaps{0};
  std::atomic<uint64_t> schedules{0};
  std::atomic<uint64_t> parks{0};
  std::atomic<uint64_t> delivered{0};

  auto run_mailbox = [&] {
    if (running.exchange(true)) overlaps.fetch_add(1);
    for (;;) {
      if (MpscNode* node = q.Pop()) {
        f.Deliver(node);
        delivered.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      running.store(false);
      if (q.TryPark()) {
        parks.fetch_add(1);
        return;
      }
      // Not parked: no Push said "schedule", so this run still owns it.
      if (running.exchange(true)) overlaps.fetch_add(1);
      std::this_thread::yield();
    }
  };
  std::vector<std::thread> workers;
  for (uint32_t w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&] {
      while (delivered.load(std::memory_order_relaxed) < kTotal || scheduled.load() > 0) {
        int n = scheduled.load();
        if (n > 0 && scheduled.compare_exchange_weak(n, n - 1)) {
          run_mailbox();
        } else {
          std::this_thread::yield();
        }
      }
    });
  }
  RunThreads(kProducers, [&](uint32_t p) {
    for (uint32_t s = 0; s < kPerProducer; ++s) {
      if (q.Push(&f.Node(p, s))) {
        schedules.fetch_add(1);
        scheduled.fetch_add(1);
      }
      // Pause now and then so the mailbox drains and parks often.
      if ((s + p) % 8 == 0) std::this_thread::yield();
    }
  });
  for (auto& w : workers) w.join();
  EXPECT_EQ(overlaps.load(), 0u);
  EXPECT_EQ(schedules.load(), parks.load());  // every run ended parked
  EXPECT_GT(schedules.load(), 0u);
  this->RecordProperty("schedules", std::to_string(schedules.load()));
  EXPECT_EQ(f.out_of_order, 0u);
  f.ledger.ExpectEveryItemExactlyOnce();
}

// --- MPMC -----------------------------------------------------------------

struct LockFreeMpmcKind {
  using Queue = MpmcQueue<uint64_t>;
};
struct LockedMpmcKind {
  using Queue = LockedMpmcQueue<uint64_t>;
};
template <typename Kind>
class MpmcStress : public ::testing::Test {};
using MpmcKinds = ::testing::Types<LockFreeMpmcKind, LockedMpmcKind>;
TYPED_TEST_SUITE(MpmcStress, MpmcKinds);

// A small ring so producers often find it full and cells go round many laps.
TYPED_TEST(MpmcStress, ManyProducersManyConsumersDeliverEachItemOnceInOrder) {
  constexpr uint32_t kProducers = 2;
  constexpr uint32_t kConsumers = 2;
  constexpr uint32_t kPerProducer = 1'000'000 / kScale;
  constexpr uint64_t kTotal = uint64_t{kProducers} * kPerProducer;
  typename TypeParam::Queue q(256);
  Ledger ledger(kProducers, kPerProducer);
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> out_of_order{0};

  std::vector<std::thread> consumers;
  for (uint32_t c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&] {
      // One consumer sees each producer's items in increasing order.
      std::vector<int64_t> last(kProducers, -1);
      uint64_t out = 0;
      while (delivered.load(std::memory_order_relaxed) < kTotal) {
        if (!q.TryPop(out)) {
          std::this_thread::yield();
          continue;
        }
        const uint32_t p = ProducerOf(out);
        if (p < kProducers) {
          if (int64_t{SeqOf(out)} <= last[p]) out_of_order.fetch_add(1);
          last[p] = SeqOf(out);
        }
        ledger.Deliver(out);
        delivered.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  RunThreads(kProducers, [&](uint32_t p) {
    for (uint32_t s = 0; s < kPerProducer; ++s) {
      while (!q.TryPush(Stamp(p, s))) std::this_thread::yield();
    }
  });
  for (auto& c : consumers) c.join();
  uint64_t out = 0;
  EXPECT_FALSE(q.TryPop(out));
  EXPECT_EQ(out_of_order.load(), 0u);
  ledger.ExpectEveryItemExactlyOnce();
}

}  // namespace
}  // namespace keel::lockfree
