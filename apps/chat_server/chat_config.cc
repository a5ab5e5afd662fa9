#include "apps/chat_server/chat_config.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <cstring>
#include <iostream>
#include <string_view>
#include <variant>
#include <vector>

namespace keel::chat {
namespace {

using Target = std::variant<uint32_t*, uint64_t*, int32_t*, std::string*>;

struct Field {
  const char* name;  // flag name without "--"
  const char* help;
  Target target;
};

std::vector<Field> Fields(ChatConfig& c) {
  return {
      {"host", "address to listen on", &c.host},
      {"port", "TCP port (0: any free one)", &c.port},
      {"io-threads", "IO threads (one event loop each)", &c.io_threads},
      {"io", "IO backend: auto|uring|epoll", &c.io_backend},
      {"worker-threads", "worker threads running the room actors", &c.worker_threads},
      {"log-level", "trace|debug|info|warn|error", &c.log_level},
      {"stats-interval", "seconds between stats lines (0: none)", &c.stats_interval_s},
      {"shutdown-deadline-ms", "graceful shutdown deadline", &c.shutdown_deadline_ms},
      {"nickname-min", "shortest name, in code points", &c.names.min_code_points},
      {"nickname-max", "longest name, in code points", &c.names.max_code_points},
      {"max-room-members", "room size limit", &c.room.max_members},
      {"history", "messages sent to a member on join", &c.room.history},
      {"max-text-bytes", "message length limit", &c.room.max_text_bytes},
      {"max-rooms", "rooms limit", &c.max_rooms},
      {"create-rooms", "comma-separated rooms created at start", &c.create_rooms},
      {"login-deadline-ms", "kick sessions not logged in by then", &c.login_deadline_ms},
      {"idle-timeout-ms", "kick sessions that send nothing (heartbeats count) this long; 0: never",
       &c.idle_timeout_ms},
      {"pre-login-max-frame", "largest frame before login", &c.pre_login_max_frame},
      {"max-frame", "largest frame after login (<= 65535)", &c.max_frame},
      {"say-per-second", "per-user message rate", &c.say_per_second},
      {"say-burst", "per-user message burst", &c.say_burst},
      {"frames-per-second", "per-session frame rate before a kick", &c.frames_per_second},
      {"room-backlog", "Says and Joins waiting for a room's worker before ROOM_BUSY (0: no limit)",
       &c.room_backlog},
      {"room-backlog-bytes", "text bytes of Says waiting for a room's worker before ROOM_BUSY (0: no limit)",
       &c.room_backlog_bytes},
      {"broadcast-wake-batch", "members queued per IO loop wake-up in a room broadcast (0: wake per Send; default 64)",
       &c.broadcast_wake_batch},
      {"send-soft-limit", "queued bytes allowed past the grace time", &c.send_soft_limit},
      {"send-soft-grace-ms", "time allowed over the soft limit", &c.send_soft_grace_ms},
      {"send-hard-limit", "queued bytes that disconnect at once", &c.send_hard_limit},
      {"max-sessions", "connections limit", &c.max_sessions},
      {"socket-send-buffer", "SO_SNDBUF bytes (0: kernel default)", &c.socket_send_buffer},
      {"socket-recv-buffer", "SO_RCVBUF bytes (0: kernel default)", &c.socket_recv_buffer},
      {"busy-poll-us", "spin this long for completions before an IO loop sleeps (0: never)", &c.busy_poll_us},
  };
}

std::string Key(const char* flag) {
  std::string key(flag);
  for (char& ch : key) {
    if (ch == '-') ch = '_';
  }
  return key;
}

// Applies a TOML file; returns an error text or "".
std::string LoadToml(const std::string& path, ChatConfig& config) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return path + ": " + std::string(e.description());
  }
  auto fields = Fields(config);
  for (const auto& entry : table) {
    const auto& key = entry.first;
    const toml::node& node = entry.second;  // a plain reference: lambdas capture it (clang 14)
    const Field* field = nullptr;
    for (const auto& f : fields) {
      if (Key(f.name) == key.str()) field = &f;
    }
    if (field == nullptr) return path + ": unknown key '" + std::string(key.str()) + "'";
    const bool ok = std::visit(
        [&](auto* target) {
          using T = std::remove_pointer_t<decltype(target)>;
          if constexpr (std::is_same_v<T, std::string>) {
            if (auto v = node.value<std::string>()) return *target = *v, true;
          } else {
            if (auto v = node.value<int64_t>(); v && *v >= 0) {
              return *target = static_cast<T>(*v), true;
            }
          }
          return false;
        },
        field->target);
    if (!ok) return path + ": bad value for '" + std::string(key.str()) + "'";
  }
  return "";
}

}  // namespace

net::NetConfig ChatConfig::ToNetConfig() const {
  net::NetConfig net;
  net.io_threads = io_threads;
  net.backend = net::ParseIoBackend(io_backend).value_or(net::IoBackend::kAuto);
  net.send_soft_limit = send_soft_limit;
  net.send_soft_grace_ms = send_soft_grace_ms;
  net.send_hard_limit = send_hard_limit;
  net.max_sessions = max_sessions;
  net.socket_send_buffer = socket_send_buffer;
  net.socket_recv_buffer = socket_recv_buffer;
  net.busy_poll_us = busy_poll_us;
  return net;
}

std::optional<int> ParseChatConfig(int argc, char** argv, ChatConfig& config) {
  // The file first, so that flags parsed after it override its values.
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) config_path = argv[i + 1];
    if (arg.starts_with("--config=")) config_path = std::string(arg.substr(9));
  }
  if (!config_path.empty()) {
    if (const std::string err = LoadToml(config_path, config); !err.empty()) {
      std::cerr << "keel_chat_server: " << err << "\n";
      return 2;
    }
  }
  CLI::App app{"keel_chat_server: a chat server on Keel (rooms, whispers, history, limits)"};
  app.option_defaults()->always_capture_default();
  std::string ignored;
  app.add_option("--config", ignored, "TOML file with any of the options below");
  for (auto& f : Fields(config)) {
    std::visit([&](auto* target) { app.add_option(std::string("--") + f.name, *target, f.help); },
               f.target);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!net::ParseIoBackend(config.io_backend)) {
    std::cerr << "keel_chat_server: --io must be auto, uring or epoll\n";
    return 2;
  }
  if (config.max_frame > 65535 || config.max_frame < 64 || config.pre_login_max_frame > config.max_frame) {
    std::cerr << "keel_chat_server: need 64 <= --pre-login-max-frame <= --max-frame <= 65535\n";
    return 2;
  }
  if (config.room_backlog_bytes != 0 && config.room_backlog_bytes < config.room.max_text_bytes) {
    std::cerr << "keel_chat_server: --room-backlog-bytes must be 0 or >= --max-text-bytes\n";
    return 2;
  }
  if (config.port > 65535) {
    std::cerr << "keel_chat_server: --port must be <= 65535\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace keel::chat
