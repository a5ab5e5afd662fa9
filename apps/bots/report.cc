#include "apps/bots/report.h"

#include <fmt/format.h>

#include <string>

namespace keel::bots {
namespace {

double Us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string Rate(double per_second) {
  if (per_second >= 1e6) return fmt::format("{:.2f}M", per_second / 1e6);
  if (per_second >= 1e3) return fmt::format("{:.1f}k", per_second / 1e3);
  return fmt::format("{:.0f}", per_second);
}

std::string Ms(uint64_t ns) { return fmt::format("{:.3f} ms", static_cast<double>(ns) / 1e6); }

}  // namespace

std::string SummaryTable(const FleetReport& r) {
  const auto& h = r.latency_ns;
  std::string out;
  auto line = [&out](std::string_view name, const std::string& value) {
    out += fmt::format("  {:<22} {}\n", name, value);
  };
  out += fmt::format("bots: scenario {} | {} bots, {} rooms, {:.1f} s\n", r.scenario, r.bots,
                     r.rooms, r.seconds);
  line("logins ok / failed", fmt::format("{} / {}", r.logins_ok, r.login_errors));
  line("messages sent", fmt::format("{} ({}/s)", r.sent, Rate(r.SentPerSecond())));
  line("deliveries", fmt::format("{} ({}/s)", r.deliveries.delivered, Rate(r.DeliveriesPerSecond())));
  line("own messages seen back", fmt::format("{} of {}", r.own_echoes, r.sent));
  line("lost / dup / stray", fmt::format("{} / {} / {}", r.deliveries.lost, r.deliveries.duplicates,
                                         r.deliveries.strays));
  line("whispers sent / got", fmt::format("{} / {}", r.whispers_sent, r.whispers_received));
  line("errors / kicks / drops", fmt::format("{} / {} / {}", r.server_errors, r.kicks, r.disconnects));
  line("malformed bots kicked", fmt::format("{} of {}", r.malformed_kicked, r.malformed_bots));
  if (r.churn_moves > 0) {
    line("room moves / creates", fmt::format("{} / {}", r.churn_moves, r.rooms_created));
  }
  if (r.slow_readers > 0) {
    line("slow readers closed", fmt::format("{} of {} ({} of {} never-readers)", r.slow_disconnected,
                                            r.slow_readers, r.never_disconnected, r.never_readers));
    line("slow kick notices read", fmt::format("{}", r.slow_kick_notices));
  }
  line("latency p50 / p90", fmt::format("{} / {}", Ms(h.Percentile(0.50)), Ms(h.Percentile(0.90))));
  line("latency p99 / p999", fmt::format("{} / {}", Ms(h.Percentile(0.99)), Ms(h.Percentile(0.999))));
  line("latency max", Ms(h.Max()));
  line("verdict", r.Clean() ? "clean: every message delivered once, in order"
                            : "NOT CLEAN: see lost / dup / stray, seen back, kicked, closed");
  return out;
}

std::string ToJson(const FleetReport& r) {
  const auto& h = r.latency_ns;
  return fmt::format(
      "{{\"scenario\": {}, \"seconds\": {:.3f}, \"bots\": {}, \"rooms\": {}, "
      "\"logins_ok\": {}, \"login_errors\": {}, \"sent\": {}, \"sent_per_s\": {:.1f}, "
      "\"own_echoes\": {}, \"delivered\": {}, \"deliveries_per_s\": {:.1f}, \"lost\": {}, "
      "\"duplicates\": {}, \"strays\": {}, \"whispers_sent\": {}, \"whispers_received\": {}, "
      "\"server_errors\": {}, \"kicks\": {}, \"disconnects\": {}, "
      "\"malformed_bots\": {}, \"malformed_kicked\": {}, \"churn_moves\": {}, "
      "\"rooms_created\": {}, \"slow_readers\": {}, \"never_readers\": {}, "
      "\"slow_disconnected\": {}, \"never_disconnected\": {}, \"slow_kick_notices\": {}, "
      "\"latency_us\": {{\"count\": {}, \"p50\": {:.1f}, \"p90\": {:.1f}, \"p99\": {:.1f}, "
      "\"p999\": {:.1f}, \"max\": {:.1f}, \"mean\": {:.1f}}}, \"clean\": {}}}",
      Quoted(r.scenario), r.seconds, r.bots, r.rooms, r.logins_ok, r.login_errors, r.sent,
      r.SentPerSecond(), r.own_echoes, r.deliveries.delivered, r.DeliveriesPerSecond(),
      r.deliveries.lost, r.deliveries.duplicates, r.deliveries.strays, r.whispers_sent,
      r.whispers_received, r.server_errors, r.kicks, r.disconnects, r.malformed_bots,
      r.malformed_kicked, r.churn_moves, r.rooms_created, r.slow_readers, r.never_readers,
      r.slow_disconnected, r.never_disconnected, r.slow_kick_notices, h.Count(), Us(h.Percentile(0.50)),
      Us(h.Percentile(0.90)), Us(h.Percentile(0.99)), Us(h.Percentile(0.999)), Us(h.Max()),
      h.Mean() / 1000.0, r.Clean() ? "true" : "false");
}

std::string ProgressLine(double at_seconds, const FleetReport& w) {
  return fmt::format(
      "t={:>5.1f}s  sent {:>7}/s  deliveries {:>7}/s  p99 {}  lost {}  dup {}  stray {}  errors {}  kicks {}",
      at_seconds, Rate(w.SentPerSecond()), Rate(w.DeliveriesPerSecond()), Ms(w.latency_ns.Percentile(0.99)),
      w.deliveries.lost, w.deliveries.duplicates, w.deliveries.strays, w.server_errors, w.kicks);
}

}  // namespace keel::bots
