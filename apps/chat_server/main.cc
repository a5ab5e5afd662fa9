// keel_chat_server: rooms, whispers, history and limits over Keel
// (docs/chat.md). Flags and a TOML file (chat_config.h); SIGINT/SIGTERM shut
// it down gracefully: stop accepting, broadcast what was accepted, tell the
// clients, flush, exit 0 within --shutdown-deadline-ms.
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "apps/chat_server/chat_config.h"
#include "apps/chat_server/chat_server.h"
#include "keel/core/log.h"
#include "keel/job/scheduler.h"
#include "keel/net/send_buffer.h"
#include "keel/net/service.h"

namespace {

using keel::chat::ChatConfig;
using keel::chat::ChatServer;

struct Totals {
  uint64_t in = 0, out = 0;
};

void LogStats(ChatServer& server, keel::net::Service& service, Totals& last, double seconds) {
  const auto net = service.stats();
  auto& c = server.counters();
  const uint64_t in = c.messages_in.load(std::memory_order_relaxed);
  const uint64_t out = c.deliveries_out.load(std::memory_order_relaxed);
  KEEL_LOG_INFO(
      "stats: sessions {} users {} rooms {} msgs/s in {:.0f} out {:.0f} queued {} B kicks {} "
      "(idle {} slow {}) room busy {} protocol errors {} slow consumers {} hook errors {}",
      net.sessions_open, server.Users(), server.Rooms(), static_cast<double>(in - last.in) / seconds,
      static_cast<double>(out - last.out) / seconds, net.queued_bytes,
      c.kicks.load(std::memory_order_relaxed), c.idle_kicks.load(std::memory_order_relaxed),
      c.slow_consumer_kicks.load(std::memory_order_relaxed), c.room_busy.load(std::memory_order_relaxed),
      net.Disconnects(keel::net::DisconnectReason::kProtocolError),
      net.Disconnects(keel::net::DisconnectReason::kSlowConsumer), net.hook_exceptions);
  last = {in, out};
}

}  // namespace

int main(int argc, char** argv) {
  ChatConfig config;
  if (auto code = keel::chat::ParseChatConfig(argc, argv, config)) return *code;
  spdlog::level::level_enum level;
  if (!keel::core::ParseLogLevel(config.log_level, level)) {
    std::fprintf(stderr, "keel_chat_server: unknown --log-level %s\n", config.log_level.c_str());
    return 2;
  }
  keel::core::SetLogLevel(level);

  // Signals are taken synchronously by the main thread (sigtimedwait): block
  // them before any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  keel::job::SchedulerOptions sched_options;
  sched_options.groups.push_back({.name = "logic", .threads = config.worker_threads, .cpus = {}});
  keel::job::Scheduler scheduler(sched_options);
  ChatServer server(config, scheduler.Group("logic"));
  keel::net::NetConfig net_config = config.ToNetConfig();
  if (auto err = net_config.ApplyEnvironment()) {
    KEEL_LOG_ERROR("{}", *err);
    return 2;
  }
  keel::net::Service service(net_config, [&server] { return server.MakeSession(); });
  server.Attach(&service);
  std::string error;
  if (!service.Start(&error) || !service.Listen(config.host, static_cast<uint16_t>(config.port), &error)) {
    KEEL_LOG_ERROR("keel_chat_server: {}", error);
    return 1;
  }
  KEEL_LOG_INFO("keel_chat_server listening on {}:{} (io {} x{}, workers {})", config.host,
                service.port(), ToString(service.backend()), config.io_threads, config.worker_threads);
  std::printf("listening on port %u\n", service.port());
  std::fflush(stdout);

  Totals last;
  auto last_stats = std::chrono::steady_clock::now();
  while (true) {
    timespec wait{0, 200'000'000};
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) {
      KEEL_LOG_INFO("signal {}: shutting down", sig);
      break;
    }
    server.Tick();
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_stats).count();
    if (config.stats_interval_s > 0 && since >= config.stats_interval_s) {
      LogStats(server, service, last, since);
      last_stats = now;
    }
  }
  const bool clean = server.Shutdown(scheduler, std::chrono::milliseconds(config.shutdown_deadline_ms));
  LogStats(server, service, last, 1.0);
  KEEL_LOG_INFO("keel_chat_server stopped ({})", clean ? "every client flushed" : "deadline hit");
  return 0;
}
