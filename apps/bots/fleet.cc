#include "apps/bots/fleet.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "apps/bots/bot.h"
#include "apps/bots/slow_reader.h"
#include "keel/core/log.h"
#include "keel/net/service.h"

namespace keel::bots {
namespace {

using Clock = std::chrono::steady_clock;

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// room-churn: every churning bot (odd index) makes a move every 0.5..1.5 s:
// join another known room (60 %), create a new one (20 %, at most 3 per
// bot), or leave and stay out until its next move (20 %). Rooms a bot
// created are offered to the others once their creator is in them.
class Churn {
 public:
  Churn(const FleetOptions& o, uint32_t seed) : rng_(seed) {
    for (uint32_t r = 0; r < o.rooms; ++r) known_.push_back("room" + std::to_string(r));
  }

  void Step(std::vector<BotRef>& bots, uint32_t first_index, Clock::time_point now) {
    if (due_.size() != bots.size()) due_.assign(bots.size(), now + Seconds(Jitter()));
    if (creates_.size() != bots.size()) creates_.assign(bots.size(), 0);
    for (auto& [name, creator] : created_) {
      if (creator != nullptr && creator->HasJoined(name)) {
        known_.push_back(name);
        creator = nullptr;
      }
    }
    std::erase_if(created_, [](const auto& c) { return c.second == nullptr; });
    for (std::size_t i = 0; i < bots.size(); ++i) {
      Bot& bot = *bots[i];
      if ((first_index + i) % 2 == 0 || now < due_[i] || bot.closed.load() || bot.Busy()) continue;
      due_[i] = now + Seconds(Jitter());
      const std::string at = bot.target();
      const uint32_t roll = Pick(100);
      const std::string name = "churn" + std::to_string(first_index + i) + "x" + std::to_string(creates_[i]);
      if (roll < 20 && creates_[i] < 3) {
        ++creates_[i];
        bot.CreateRoom(name);
        created_.emplace_back(name, &bot);
      } else if (roll < 40 && !at.empty()) {
        bot.LeaveRoom();
      } else {
        std::string to = known_[Pick(static_cast<uint32_t>(known_.size()))];
        if (to == at) to = known_[(Pick(static_cast<uint32_t>(known_.size() - 1)) + 1) % known_.size()];
        if (to != at) bot.MoveTo(to);
      }
    }
  }

 private:
  double Jitter() { return 0.5 + std::uniform_real_distribution<double>(0, 1)(rng_); }
  uint32_t Pick(uint32_t n) { return n == 0 ? 0 : std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }

  std::mt19937 rng_;
  std::vector<std::string> known_;
  std::vector<std::pair<std::string, Bot*>> created_;  // created, creator not in it yet
  std::vector<Clock::time_point> due_;
  std::vector<uint32_t> creates_;
};

FleetReport Window(std::vector<BotRef>& bots) {
  FleetReport w;
  for (auto& b : bots) {
    std::lock_guard lock(b->mu);
    w.sent += b->window.sent;
    w.deliveries += b->window.deliveries;
    w.latency_ns.Merge(b->window.latency_ns);
    w.server_errors += b->window.server_errors;
    w.kicks += b->window.kicks;
    w.disconnects += b->window.disconnects;
    b->window = FleetReport{};
  }
  w.seconds = 1;
  return w;
}

}  // namespace

FleetReport RunFleet(const FleetOptions& o) {
  net::NetConfig cfg;
  cfg.io_threads = o.io_threads;
  cfg.thread_name = "bots-io";
  cfg.max_recv_buffer = 4 * 1024 * 1024;
  FleetReport report;
  report.scenario = o.scenario;
  report.bots = o.bots;
  report.rooms = o.rooms;
  const uint32_t bad = MalformedBots(o);
  const uint32_t slow = SlowReaderBots(o);  // bots 0..slow-1 are raw slow readers
  std::vector<BotRef> bots;
  bots.reserve(o.bots - slow);
  for (uint32_t i = slow; i < o.bots; ++i) {
    bots.push_back(net::MakeRef<Bot>(o.nick_prefix + std::to_string(i), "room" + std::to_string(i % o.rooms),
                                      o.text_bytes));
  }
  const auto n = static_cast<uint32_t>(bots.size());
  // Service::Connect makes its session with the factory: it hands out the
  // prepared bots one by one.
  std::atomic<uint32_t> next{0};
  net::Service client(cfg, [&] { return net::SessionRef(bots[next.fetch_add(1)]); });
  std::string err;
  if (!client.Start(&err)) {
    KEEL_LOG_ERROR("bots: {}", err);
    ++report.login_errors;
    return report;
  }
  for (uint32_t i = 0; i < n; ++i) {
    client.Connect(o.host, o.port);
    if (o.scenario != "login-storm" && i % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Everyone in a room (or gone) within 10 s.
  const auto join_deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < join_deadline) {
    uint32_t ready = 0;
    for (auto& b : bots) ready += b->in_room.load() || b->closed.load();
    if (ready == n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  SlowReaders slow_readers;
  if (slow > 0 && !slow_readers.Connect(o.host, o.port, slow, o.rooms, o.nick_prefix, &err)) {
    KEEL_LOG_ERROR("bots: {}", err);
    ++report.login_errors;
  }
  if (o.on_ready) o.on_ready();

  const auto start = Clock::now();
  const auto end = start + Seconds(o.duration_s);
  const double interval_s = o.rate > 0 ? 1.0 / o.rate : 1e9;
  // Bots start spread over one interval so the load is smooth.
  std::vector<Clock::time_point> due(n);
  for (uint32_t i = 0; i < n; ++i) due[i] = start + Seconds(interval_s * i / std::max<uint32_t>(n, 1));
  if (slow > 0) slow_readers.Start();
  Churn churn(o, 7);
  auto next_progress = start + std::chrono::seconds(1);
  auto next_heartbeat = start + Seconds(o.heartbeat_s);
  bool garbage_sent = false;
  while (Clock::now() < end) {
    const auto now = Clock::now();
    for (uint32_t i = 0; i < n; ++i) {
      if (now < due[i] || bots[i]->closed.load() || !bots[i]->Settled()) continue;
      bots[i]->SaySomething();
      due[i] += Seconds(interval_s);
      if (due[i] < now) due[i] = now;  // never replay a backlog in a burst
    }
    if (o.scenario == "room-churn") churn.Step(bots, slow, now);
    if (now >= next_heartbeat) {
      for (auto& b : bots) b->SendHeartbeat();
      next_heartbeat += Seconds(o.heartbeat_s);
    }
    if (!garbage_sent && bad > 0 && now >= start + std::chrono::milliseconds(300)) {
      for (uint32_t i = 0; i < bad; ++i) bots[i]->SendGarbage();
      garbage_sent = true;
    }
    if (o.progress && now >= next_progress) {
      std::printf("%s\n", ProgressLine(std::chrono::duration<double>(now - start).count(), Window(bots)).c_str());
      std::fflush(stdout);
      next_progress += std::chrono::seconds(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // Drain: wait until every sent message is back at its sender and no move
  // is in flight (or the drain time passes), then judge the tail against
  // each room's last seq.
  const auto drain_end = Clock::now() + Seconds(o.drain_s);
  while (Clock::now() < drain_end) {
    bool all = true;
    for (uint32_t i = bad; i < n && all; ++i) {
      if (bots[i]->closed.load()) continue;
      if (bots[i]->Busy()) all = false;
      std::lock_guard lock(bots[i]->mu);
      if (bots[i]->stats.own_echoes < bots[i]->stats.sent) all = false;
    }
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the last broadcasts to the others
  if (slow > 0) {
    const SlowReaderResults s = slow_readers.Finish(o.drain_s);
    report.slow_readers = s.readers;
    report.never_readers = s.never_readers;
    report.slow_disconnected = s.disconnected;
    report.never_disconnected = s.never_disconnected;
    report.slow_kick_notices = s.kick_notices;
  }
  for (auto& b : bots) b->closing_by_us.store(true, std::memory_order_release);
  std::map<std::string, uint64_t> room_last;
  for (uint32_t i = bad; i < n; ++i) {
    std::lock_guard lock(bots[i]->mu);
    for (const auto& [room, check] : bots[i]->checks) {
      auto& last = room_last[room];
      last = std::max(last, check.last_seq().value_or(0));
    }
  }
  uint64_t malformed_kicked = 0;
  for (uint32_t i = 0; i < n; ++i) {
    std::lock_guard lock(bots[i]->mu);
    if (i < bad) {
      malformed_kicked += bots[i]->closed.load() ? 1u : 0u;
      continue;
    }
    if (!bots[i]->closed.load() || bots[i]->saw_shutdown.load()) {
      for (auto& [room, check] : bots[i]->checks) check.Finish(room_last[room]);
    }
    const FleetReport& s = bots[i]->stats;
    report.logins_ok += s.logins_ok;
    report.login_errors += s.login_errors;
    report.sent += s.sent;
    report.own_echoes += s.own_echoes;
    report.whispers_received += s.whispers_received;
    report.server_errors += s.server_errors;
    report.kicks += s.kicks;
    report.disconnects += s.disconnects;
    report.churn_moves += s.churn_moves;
    report.rooms_created += s.rooms_created;
    report.deliveries += bots[i]->CountsLocked();
    report.latency_ns.Merge(s.latency_ns);
  }
  report.malformed_bots = bad;
  report.malformed_kicked = malformed_kicked;
  client.Stop();
  return report;
}

}  // namespace keel::bots
