#pragma once
// FleetReport: what a bot run measured, as a summary table for people and
// JSON for scripts (bench/, CI artefacts).

#include <cstdint>
#include <string>

#include "apps/bots/delivery_check.h"
#include "keel/core/histogram.h"

namespace keel::bots {

struct FleetReport {
  std::string scenario;
  double seconds = 0;          // measured interval
  uint32_t bots = 0;
  uint32_t rooms = 0;
  uint64_t logins_ok = 0;
  uint64_t login_errors = 0;
  uint64_t sent = 0;           // Say messages sent
  uint64_t own_echoes = 0;     // own messages seen back
  uint64_t whispers_sent = 0;
  uint64_t whispers_received = 0;
  uint64_t server_errors = 0;  // Error messages received
  uint64_t kicks = 0;          // Kicked messages received
  uint64_t disconnects = 0;    // connections the server closed
  uint64_t malformed_bots = 0;    // bots that sent garbage on purpose
  uint64_t malformed_kicked = 0;  // ... and were disconnected for it
  uint64_t churn_moves = 0;       // room-churn: joins, leaves and creates sent
  uint64_t rooms_created = 0;     // ... of which creates
  uint64_t slow_readers = 0;      // slow-readers: clients that read slowly or never
  uint64_t never_readers = 0;     // ... of which never read
  uint64_t slow_disconnected = 0; // ... closed by the server
  uint64_t never_disconnected = 0;
  uint64_t slow_kick_notices = 0; // Kicked{"slow consumer"} they read before the close
  DeliveryCounts deliveries;   // RoomMessage deliveries over every member
  core::Histogram latency_ns;  // send -> delivery, every delivery

  double DeliveriesPerSecond() const noexcept {
    return seconds > 0 ? static_cast<double>(deliveries.delivered) / seconds : 0;
  }
  double SentPerSecond() const noexcept {
    return seconds > 0 ? static_cast<double>(sent) / seconds : 0;
  }
  // No loss, no duplicates, no strays, every sent message seen back by its
  // sender, every malformed bot kicked, every never-reader disconnected.
  bool Clean() const noexcept {
    return deliveries.lost == 0 && deliveries.duplicates == 0 && deliveries.strays == 0 &&
           own_echoes == sent && malformed_kicked == malformed_bots &&
           never_disconnected == never_readers;
  }
};

// A fixed-width table, one metric a line.
std::string SummaryTable(const FleetReport& r);
// One JSON object (latencies in microseconds).
std::string ToJson(const FleetReport& r);
// The live line: "t=3s sent 1.2k/s deliveries 61k/s p99 1.3 ms lost 0 dup 0".
std::string ProgressLine(double at_seconds, const FleetReport& window);

}  // namespace keel::bots
