// keel_bots: the chat server's load tester (docs/chat.md, "Bots").
//   keel_bots --connect 127.0.0.1:7777 --bots 50 --rooms 5 --rate 5/s
//             --duration 10 --scenario steady --json report.json
// Exits 0 only if the run was clean: every message delivered exactly once,
// in order, to every member present and to no one else; every own message
// seen back; no kicks or drops of well-behaved bots; in the malformed
// scenario every malformed bot kicked; in slow-readers every never-reader
// disconnected by the server.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "apps/bots/fleet.h"
#include "apps/bots/report.h"
#include "keel/core/log.h"

int main(int argc, char** argv) {
  keel::bots::FleetOptions o;
  std::string connect = "127.0.0.1:7777";
  std::string rate = "5/s";
  std::string json;
  CLI::App app{"keel_bots: chat bots that load-test keel_chat_server and check every delivery"};
  app.add_option("--connect", connect, "host:port of the server")->capture_default_str();
  app.add_option("--bots", o.bots, "clients")->capture_default_str();
  app.add_option("--rooms", o.rooms, "rooms (bot i joins room i % rooms)")->capture_default_str();
  app.add_option("--rate", rate, "messages per second per bot, e.g. 5/s")->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds of chat")->capture_default_str();
  app.add_option("--scenario", o.scenario, "steady|login-storm|malformed|room-churn|slow-readers")
      ->check(CLI::IsMember({"steady", "login-storm", "malformed", "room-churn", "slow-readers"}))
      ->capture_default_str();
  app.add_option("--nick-prefix", o.nick_prefix, "nicknames are <prefix><i>")->capture_default_str();
  app.add_option("--io-threads", o.io_threads, "client IO threads")->capture_default_str();
  app.add_option("--text-bytes", o.text_bytes, "pad each message to about this many bytes")
      ->capture_default_str();
  app.add_option("--json", json, "write the report as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  const auto colon = connect.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "keel_bots: --connect wants host:port\n";
    return 2;
  }
  o.host = connect.substr(0, colon);
  try {
    o.port = static_cast<uint16_t>(std::stoul(connect.substr(colon + 1)));
    o.rate = std::stod(rate.substr(0, rate.find('/')));
  } catch (const std::exception&) {
    std::cerr << "keel_bots: bad --connect port or --rate\n";
    return 2;
  }
  if (o.rooms == 0 || o.bots == 0) {
    std::cerr << "keel_bots: --bots and --rooms must be > 0\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  o.progress = true;
  const keel::bots::FleetReport r = keel::bots::RunFleet(o);
  std::printf("%s", keel::bots::SummaryTable(r).c_str());
  if (!json.empty()) {
    std::ofstream(json) << keel::bots::ToJson(r) << "\n";
  }
  const uint32_t good = o.bots - keel::bots::MalformedBots(o) - keel::bots::SlowReaderBots(o);
  const bool clean = r.Clean() && r.logins_ok == good && r.kicks == 0 && r.disconnects == 0 &&
                     r.login_errors == 0;
  std::printf("%s\n", clean ? "CLEAN: every message delivered exactly once, in order"
                            : "NOT CLEAN: see the table above");
  return clean ? 0 : 1;
}
