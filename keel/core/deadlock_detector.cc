#include "keel/core/deadlock_detector.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "keel/core/log.h"
#include "keel/core/thread_context.h"

namespace keel::core {
namespace {

#if defined(KEEL_CHECKED)
constexpr bool kCheckedBuild = true;
#else
constexpr bool kCheckedBuild = false;
#endif

bool InitialEnabled() noexcept {
  if (const char* env = std::getenv("KEEL_DEADLOCK_DETECTOR")) return std::strcmp(env, "0") != 0;
  return kCheckedBuild;
}

DeadlockDetector::Action InitialAction() noexcept {
  const char* env = std::getenv("KEEL_DEADLOCK_ACTION");
  if (env != nullptr && std::strcmp(env, "continue") == 0) return DeadlockDetector::Action::kContinue;
  return DeadlockDetector::Action::kAbort;
}

struct Node {
  std::string name;
  std::unordered_map<LockId, std::string> out;  // to -> thread that first made the edge
  std::unordered_set<LockId> in;
};

struct Graph {
  std::mutex mu;  // a plain mutex: the detector must not watch itself
  std::unordered_map<LockId, Node> nodes;
  std::set<std::pair<LockId, LockId>> reported;
  DeadlockDetector::Reporter reporter;
};

// Leaked on purpose: locks in other static objects may be destroyed after it.
Graph& TheGraph() {
  static Graph* graph = new Graph;
  return *graph;
}

std::atomic<LockId> g_next_lock_id{1};
std::atomic<uint64_t> g_enable_epoch{1};
std::atomic<uint64_t> g_graph_generation{1};
std::atomic<uint64_t> g_cycles{0};
std::atomic<DeadlockDetector::Action> g_action{InitialAction()};

struct PairHash {
  size_t operator()(const std::pair<LockId, LockId>& p) const noexcept {
    return std::hash<LockId>()(p.first * 0x9E3779B97F4A7C15ULL ^ p.second);
  }
};

struct Held {
  LockId id;
  const char* name;
};

// Where this thread's ThreadState is in its life. Trivially destructible, so it
// stays readable after the thread's thread_local destructors have run: a lock
// taken then (by a static object's destructor on the main thread, or by another
// thread_local's destructor) is simply not tracked instead of touching a dead
// vector.
enum class TlsPhase : uint8_t { kUnborn, kLive, kGone };
constinit thread_local TlsPhase t_phase = TlsPhase::kUnborn;

struct ThreadState {
  ThreadState() noexcept { t_phase = TlsPhase::kLive; }
  ~ThreadState() { t_phase = TlsPhase::kGone; }
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;

  uint64_t epoch = 0;
  uint64_t generation = 0;
  std::vector<Held> held;
  std::unordered_set<std::pair<LockId, LockId>, PairHash> known_edges;

  // Drops what a previous enable period or graph left behind.
  void Sync() {
    const uint64_t epoch_now = g_enable_epoch.load(std::memory_order_acquire);
    if (epoch != epoch_now) {
      epoch = epoch_now;
      held.clear();
    }
    const uint64_t gen_now = g_graph_generation.load(std::memory_order_acquire);
    if (generation != gen_now || known_edges.size() > 4096) {
      generation = gen_now;
      known_edges.clear();
    }
  }
};

// Null once this thread's state has been destroyed.
ThreadState* Tls() {
  if (t_phase == TlsPhase::kGone) [[unlikely]] return nullptr;
  thread_local ThreadState state;
  return &state;
}

Node& NodeLocked(Graph& g, LockId id, const char* name) {
  auto [it, inserted] = g.nodes.try_emplace(id);
  if (inserted) it->second.name = name;
  return it->second;
}

// Depth-first search for a path from -> to; returns the locks on it, from first.
bool FindPathLocked(Graph& g, LockId from, LockId to, std::vector<LockId>& path) {
  std::unordered_set<LockId> seen;
  std::vector<std::pair<LockId, std::unordered_map<LockId, std::string>::const_iterator>> stack;
  auto push = [&](LockId id) {
    seen.insert(id);
    path.push_back(id);
    stack.emplace_back(id, g.nodes[id].out.cbegin());
  };
  push(from);
  while (!stack.empty()) {
    auto& [id, it] = stack.back();
    if (id == to) return true;
    const Node& node = g.nodes[id];
    if (it == node.out.cend()) {
      stack.pop_back();
      path.pop_back();
      continue;
    }
    const LockId next = (it++)->first;
    if (!seen.contains(next)) push(next);
  }
  return false;
}

// Records held -> acquired; returns the cycle to report, if this edge closes one
// that was not reported before.
bool AddEdge(const Held& held, LockId id, const char* name, LockOrderCycle& cycle) {
  Graph& g = TheGraph();
  std::lock_guard lock(g.mu);
  Node& from = NodeLocked(g, held.id, held.name);
  NodeLocked(g, id, name);
  if (from.out.contains(id)) return false;
  std::vector<LockId> path;
  if (!FindPathLocked(g, id, held.id, path)) {
    g.nodes[held.id].out.emplace(id, std::string(ThisThread::Name()));
    g.nodes[id].in.insert(held.id);
    return false;
  }
  if (!g.reported.emplace(held.id, id).second) return false;
  // The cycle: held -> id (this thread), then id -> ... -> held along the path.
  cycle.hops.push_back({g.nodes[held.id].name, std::string(ThisThread::Name())});
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    cycle.hops.push_back({g.nodes[path[i]].name, g.nodes[path[i]].out[path[i + 1]]});
  }
  return true;
}

void Report(const LockOrderCycle& cycle) {
  g_cycles.fetch_add(1, std::memory_order_relaxed);
  const auto action = g_action.load(std::memory_order_relaxed);
  KEEL_LOG_ERROR("potential deadlock: {}{}", cycle.ToString(),
                 action == DeadlockDetector::Action::kAbort ? " (aborting)" : "");
  DeadlockDetector::Reporter reporter;
  {
    std::lock_guard lock(TheGraph().mu);
    reporter = TheGraph().reporter;
  }
  if (reporter) reporter(cycle);
  if (action == DeadlockDetector::Action::kAbort) {
    Log().flush();
    std::abort();
  }
}

}  // namespace

std::atomic<bool> DeadlockDetector::enabled_{InitialEnabled()};

std::string LockOrderCycle::ToString() const {
  if (hops.empty()) return "lock-order cycle: (empty)";
  std::string out = "lock-order cycle: " + hops[0].lock;
  for (size_t i = 0; i < hops.size(); ++i) {
    out += " -> " + hops[(i + 1) % hops.size()].lock + " (thread " + hops[i].thread + ")";
  }
  return out;
}

void DeadlockDetector::SetEnabled(bool on) noexcept {
  // A new epoch makes every thread drop held lists from an earlier period,
  // which may be stale (releases while off were not seen).
  if (on && !enabled_.load(std::memory_order_relaxed)) {
    g_enable_epoch.fetch_add(1, std::memory_order_release);  // pairs with Sync()'s acquire
  }
  enabled_.store(on, std::memory_order_relaxed);
}

void DeadlockDetector::SetAction(Action action) noexcept {
  g_action.store(action, std::memory_order_relaxed);
}

void DeadlockDetector::SetReporter(Reporter reporter) {
  std::lock_guard lock(TheGraph().mu);
  TheGraph().reporter = std::move(reporter);
}

uint64_t DeadlockDetector::CyclesReported() noexcept {
  return g_cycles.load(std::memory_order_relaxed);
}

void DeadlockDetector::ClearGraph() {
  Graph& g = TheGraph();
  std::lock_guard lock(g.mu);
  g.nodes.clear();
  g.reported.clear();
  g_graph_generation.fetch_add(1, std::memory_order_release);  // pairs with Sync()'s acquire
}

LockId DeadlockDetector::NewLockId() noexcept {
  return g_next_lock_id.fetch_add(1, std::memory_order_relaxed);
}

void DeadlockDetector::BeforeAcquire(LockId id, const char* name) {
  ThreadState* state = Tls();
  if (state == nullptr) return;
  ThreadState& tls = *state;
  tls.Sync();
  bool reentry = false;
  for (const Held& h : tls.held) reentry |= h.id == id;
  if (!reentry) {
    for (size_t i = 0; i < tls.held.size(); ++i) {
      const Held& h = tls.held[i];
      bool seen_before = false;  // the same lock held twice gives one edge
      for (size_t j = 0; j < i; ++j) seen_before |= tls.held[j].id == h.id;
      if (seen_before || !tls.known_edges.emplace(h.id, id).second) continue;
      LockOrderCycle cycle;
      if (AddEdge(h, id, name, cycle)) Report(cycle);
    }
  }
  tls.held.push_back({id, name});
}

void DeadlockDetector::AfterTryAcquire(LockId id, const char* name) {
  // A try-lock never waits, so it adds no edge; blocking acquisitions made
  // while it is held still order themselves after it.
  ThreadState* tls = Tls();
  if (tls == nullptr) return;
  tls->Sync();
  tls->held.push_back({id, name});
}

void DeadlockDetector::OnRelease(LockId id) noexcept {
  ThreadState* tls = Tls();
  if (tls == nullptr) return;
  for (auto it = tls->held.rbegin(); it != tls->held.rend(); ++it) {
    if (it->id == id) {
      tls->held.erase(std::next(it).base());
      return;
    }
  }
}

void DeadlockDetector::OnDestroy(LockId id) {
  Graph& g = TheGraph();
  std::lock_guard lock(g.mu);
  auto it = g.nodes.find(id);
  if (it == g.nodes.end()) return;
  for (LockId from : it->second.in) g.nodes[from].out.erase(id);
  for (const auto& [to, thread] : it->second.out) g.nodes[to].in.erase(id);
  g.nodes.erase(it);
}

}  // namespace keel::core
