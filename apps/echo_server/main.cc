// keel_echo_server: raw TCP echo on Keel's proactor, the engine side of the
// echo benchmark (bench/echo/run_echo_bench.py).
//
//   keel_echo_server --port 7000 --threads 1 --io auto|uring|epoll
//
// Every read is sent back as it came (one SendBuffer per read, no framing).
// SIGINT/SIGTERM stop it cleanly; the counters are logged at exit.

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <string>

#include "keel/core/log.h"
#include "keel/net/service.h"

namespace {

class EchoSession final : public keel::net::Session {
 protected:
  std::size_t OnRecv(std::span<const uint8_t> bytes) override {
    SendReceived(bytes);  // 1 KiB and more: sent from the receive buffer, no copy
    return bytes.size();
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Keel echo server"};
  uint16_t port = 7000;
  std::size_t threads = 1;
  std::string io = "auto";
  std::string host = "127.0.0.1";
  std::string log_level = "info";
  app.add_option("--port", port, "TCP port (0: any)");
  app.add_option("--host", host, "address to bind");
  app.add_option("--threads", threads, "IO threads")->check(CLI::Range(1, 256));
  app.add_option("--io", io, "backend: auto|uring|epoll")->check(CLI::IsMember({"auto", "uring", "epoll"}));
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off");
  uint32_t busy_poll_us = 0;
  app.add_option("--busy-poll-us", busy_poll_us, "spin this long for completions before an IO loop sleeps (0: never)");
  std::size_t recv_share_min = keel::net::NetConfig{}.recv_share_min;
  app.add_option("--recv-share-min", recv_share_min,
                 "echo this many bytes and more from the receive buffer without a copy (0: always copy)");
  CLI11_PARSE(app, argc, argv);

  spdlog::level::level_enum level;
  if (keel::core::ParseLogLevel(log_level, level)) keel::core::SetLogLevel(level);

  keel::net::NetConfig cfg;
  cfg.io_threads = threads;
  cfg.backend = *keel::net::ParseIoBackend(io);
  cfg.busy_poll_us = busy_poll_us;
  cfg.recv_share_min = recv_share_min == 0 ? SIZE_MAX : recv_share_min;
  // An IO loop whose backend failed for good (ADR 0011): stop like on a
  // signal, and exit non-zero below.
  cfg.on_loop_failed = [](uint32_t, int) { ::kill(::getpid(), SIGTERM); };

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  // Blocked before the IO threads start, so they inherit the mask and only
  // sigwait below sees the signals.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  keel::net::Service service(cfg, [] { return keel::net::MakeRef<EchoSession>(); });
  std::string err;
  if (!service.Start(&err) || !service.Listen(host, port, &err)) {
    std::fprintf(stderr, "keel_echo_server: %s\n", err.c_str());
    return 1;
  }
  KEEL_LOG_INFO("echo server on {}:{} ({} thread(s), {})", host, service.port(), threads,
                keel::net::ToString(service.backend()));
  int sig = 0;
  sigwait(&stop_signals, &sig);
  KEEL_LOG_INFO("signal {}: stopping", sig);
  service.Stop();
  const keel::net::NetStats s = service.stats();
  KEEL_LOG_INFO("accepted {} sessions, received {} B in {} reads, sent {} B in {} writes", s.sessions_accepted,
                s.bytes_received, s.recv_ops, s.bytes_sent, s.send_ops);
  KEEL_LOG_INFO("echoed {} B from the receive buffers without a copy; {} receive block switches",
                s.recv_shared_bytes, s.recv_block_switches);
  if (service.Failed()) {
    KEEL_LOG_ERROR("{} io loop(s) failed (see above)", s.loops_failed);
    return 1;
  }
  return 0;
}
