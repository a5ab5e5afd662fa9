#pragma once
// Fleet: N chat clients on Keel's client side (Service::Connect) that log in,
// create or join their room (bot i is in room i % rooms), chat at a steady
// rate with the send time in each message, and check every RoomMessage they
// receive (DeliveryCheck: exactly once, in order, only while a member).
// Scenarios: steady, login-storm (everyone connects at once), malformed (one
// in ten sends garbage), room-churn (odd bots keep joining, leaving and
// creating rooms), slow-readers (one in ten is a raw socket that reads slowly
// or never: SlowReaders). Used by keel_bots and the integration tests.
//
// Threads: each bot's receive side runs on its IO thread and its sender on
// the fleet's driver thread; a bot's numbers are guarded by its own mutex.
// Run() is called by one thread and returns the report.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "apps/bots/report.h"

namespace keel::bots {

struct FleetOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7777;
  uint32_t bots = 50;
  uint32_t rooms = 5;
  double rate = 5;              // messages per second per bot
  double duration_s = 10;
  std::string scenario = "steady";  // steady | login-storm | malformed | room-churn | slow-readers
  std::string nick_prefix = "bot";
  uint32_t text_bytes = 0;      // pad each message to about this many bytes
  uint32_t io_threads = 2;
  bool progress = false;        // a live line a second on stdout
  double drain_s = 3;           // after the last send, wait for deliveries at most this long
  double heartbeat_s = 5;       // every bot sends a Heartbeat this often (idle timeout)
  // Called once everyone is in their room, before the chat starts.
  std::function<void()> on_ready;
};

// Runs the fleet for the duration and returns what it measured.
FleetReport RunFleet(const FleetOptions& options);

// Malformed scenario: how many bots send garbage (the first ones).
inline uint32_t MalformedBots(const FleetOptions& o) {
  return o.scenario == "malformed" ? (o.bots >= 10 ? o.bots / 10 : 1) : 0;
}

// Slow-readers scenario: how many of the bots are slow readers (the first
// ones; even ones never read, odd ones read 1 KiB every 100 ms).
inline uint32_t SlowReaderBots(const FleetOptions& o) {
  return o.scenario == "slow-readers" ? (o.bots >= 10 ? o.bots / 10 : 1) : 0;
}

}  // namespace keel::bots
