#pragma once
// ChatConfig: every knob of keel_chat_server, from a TOML file (--config
// file.toml) and command-line flags; flags override the file. Keys in the
// file are the flag names with '_' for '-' ("max_room_members = 200").

#include <cstdint>
#include <optional>
#include <string>

#include "apps/chat_server/names.h"
#include "apps/chat_server/room_state.h"
#include "keel/net/net_config.h"

namespace keel::chat {

struct ChatConfig {
  std::string host = "0.0.0.0";
  uint32_t port = 7777;
  uint32_t io_threads = 2;
  std::string io_backend = "auto";  // auto|uring|epoll
  uint32_t worker_threads = 2;
  std::string log_level = "info";
  uint32_t stats_interval_s = 5;
  uint32_t shutdown_deadline_ms = 5000;

  NameLimits names;
  RoomLimits room;
  uint32_t max_rooms = 1000;
  std::string create_rooms;          // comma-separated rooms that exist from the start
  uint32_t login_deadline_ms = 10000;
  uint32_t idle_timeout_ms = 60000;  // no frame at all (heartbeats count) for this long: kicked; 0: never
  uint32_t pre_login_max_frame = 4096;
  uint32_t max_frame = 65535;
  uint32_t say_per_second = 20;      // per user
  uint32_t say_burst = 40;
  uint32_t frames_per_second = 2000; // per session, any frame (the framer's limit)
  // Per room: Says and Joins posted and not yet taken by the room's worker,
  // and the text bytes of those Says. Past either, a Say or Join is refused
  // with ERROR_ROOM_BUSY (counted: room_busy). 0: no limit.
  uint32_t room_backlog = 10000;
  uint64_t room_backlog_bytes = 8 * 1024 * 1024;
  // A room broadcast wakes each IO loop once per this many members
  // (net::WakeBatch) instead of at the first Send to each idle member.
  // 0: off (a wake-up per Send to an idle member). Measured quiet: less CPU
  // and a p99 no worse, lower at 100 members (docs/chat.md, "Broadcast
  // wake batch").
  uint32_t broadcast_wake_batch = 64;

  // keel::net limits and socket options.
  uint64_t send_soft_limit = 256 * 1024;
  uint32_t send_soft_grace_ms = 2000;
  uint64_t send_hard_limit = 1024 * 1024;
  uint64_t max_sessions = 10000;
  int32_t socket_send_buffer = 0;
  int32_t socket_recv_buffer = 0;
  uint32_t busy_poll_us = 0;  // NetConfig::busy_poll_us

  net::NetConfig ToNetConfig() const;
};

// Parses flags and the config file. Returns an exit code when the program
// must stop now (0 after --help, 2 on a bad flag or file, with the message
// printed), or nullopt to run.
std::optional<int> ParseChatConfig(int argc, char** argv, ChatConfig& config);

}  // namespace keel::chat
