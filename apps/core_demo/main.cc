// keel_core_demo: the core layer at work until the chat server exists.
//
// A "world" of player records guarded by an RwLock is read by a group of
// pinned logic threads and written now and then; a Semaphore bounds how many
// run a "database save" at once; an Event starts everyone together. Then two
// threads take two named locks in opposite orders, once each, and the
// DeadlockDetector names the cycle (in continue mode, so the demo goes on).
// Exits non-zero if any invariant broke.
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "keel/core/deadlock_detector.h"
#include "keel/core/event.h"
#include "keel/core/lock_guard.h"
#include "keel/core/log.h"
#include "keel/core/pool_sizing.h"
#include "keel/core/rw_lock.h"
#include "keel/core/semaphore.h"
#include "keel/core/spin_lock.h"
#include "keel/core/thread_context.h"
#include "keel/core/thread_group.h"

namespace {

using namespace keel::core;

struct World {
  RwLock lock{"world"};
  std::vector<int64_t> gold KEEL_GUARDED_BY(lock);
  int64_t total KEEL_GUARDED_BY(lock) = 0;  // always the sum of gold
};

int RunWorld(uint32_t threads, double seconds, uint32_t save_slots) {
  World world;
  {
    LockGuard w(world.lock);
    world.gold.assign(1000, 100);
    world.total = 100 * 1000;
  }
  Event start(Event::Mode::kManualReset);
  Semaphore saves(save_slots);
  std::atomic<uint64_t> reads{0}, writes{0}, torn{0}, saves_done{0};
  std::atomic<uint32_t> saving{0}, peak_saving{0};

  const std::vector<uint32_t> cpus = AllowedCpus();
  ThreadGroup logic({.name = "logic", .threads = threads, .cpus = cpus});
  logic.Start([&](std::stop_token stop) {
    start.Wait();
    uint64_t i = ThisThread::IndexInGroup();
    while (!stop.stop_requested()) {
      if (++i % 16 == 0) {  // a trade: move gold between two players
        LockGuard w(world.lock);
        const size_t from = i % world.gold.size(), to = (i * 7) % world.gold.size();
        world.gold[from] -= 3;
        world.gold[to] += 3;
        writes.fetch_add(1, std::memory_order_relaxed);
      } else {  // an audit: the books must balance
        ReadGuard r(world.lock);
        int64_t sum = 0;
        for (int64_t g : world.gold) sum += g;
        if (sum != world.total) torn.fetch_add(1, std::memory_order_relaxed);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
      if (i % 512 == 0 && saves.TryAcquireFor(std::chrono::milliseconds(1))) {
        const uint32_t now = saving.fetch_add(1) + 1;
        uint32_t peak = peak_saving.load();
        while (now > peak && !peak_saving.compare_exchange_weak(peak, now)) {
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // the "save"
        saving.fetch_sub(1);
        saves.Release();
        saves_done.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  KEEL_LOG_INFO("{} logic threads ready (pool sizing for 1:1 wait/compute would give {})",
                threads, ThreadsForPool({.wait_per_compute = 1.0}));
  start.Set();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  logic.RequestStop();
  logic.Join();
  KEEL_LOG_INFO("world: {} audits, {} trades, {} saves (at most {} at once, limit {}), {} torn reads",
                reads.load(), writes.load(), saves_done.load(), peak_saving.load(), save_slots,
                torn.load());
  return torn.load() == 0 && peak_saving.load() <= save_slots ? 0 : 1;
}

int ShowDeadlockDetector() {
  const bool was = DeadlockDetector::Enabled();
  DeadlockDetector::SetEnabled(true);
  DeadlockDetector::SetAction(DeadlockDetector::Action::kContinue);
  const uint64_t before = DeadlockDetector::CyclesReported();
  SpinLock inventory("inventory");
  SpinLock wallet("wallet");
  // The two threads run one after the other, so they never actually
  // deadlock; the detector still sees the inverted order and names it.
  ThreadGroup buy({.name = "buyer", .threads = 1});
  buy.Start([&](std::stop_token) {
    LockGuard a(inventory);
    LockGuard b(wallet);
  });
  buy.Join();
  ThreadGroup sell({.name = "seller", .threads = 1});
  sell.Start([&](std::stop_token) {
    LockGuard b(wallet);
    LockGuard a(inventory);
  });
  sell.Join();
  const uint64_t found = DeadlockDetector::CyclesReported() - before;
  DeadlockDetector::SetAction(DeadlockDetector::Action::kAbort);
  DeadlockDetector::SetEnabled(was);
  KEEL_LOG_INFO("deadlock detector: {} lock-order cycle(s) found (expected 1)", found);
  return found == 1 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Keel core demo: locks, events, semaphores, thread groups, deadlock detection"};
  uint32_t threads = 4;
  double seconds = 2.0;
  uint32_t save_slots = 2;
  std::string log_level = "info";
  app.add_option("--threads", threads, "logic threads")->check(CLI::Range(1u, 256u));
  app.add_option("--seconds", seconds, "how long the world runs")->check(CLI::Range(0.0, 3600.0));
  app.add_option("--save-slots", save_slots, "concurrent saves allowed")->check(CLI::Range(1u, 64u));
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off");
  CLI11_PARSE(app, argc, argv);
  spdlog::level::level_enum level;
  if (!ParseLogLevel(log_level, level)) {
    KEEL_LOG_ERROR("unknown log level '{}'", log_level);
    return 2;
  }
  SetLogLevel(level);

  const int world = RunWorld(threads, seconds, save_slots);
  const int detector = ShowDeadlockDetector();
  if (world != 0 || detector != 0) {
    KEEL_LOG_ERROR("core demo FAILED");
    return 1;
  }
  KEEL_LOG_INFO("core demo OK");
  return 0;
}
