// pingpong_client: the load side of the echo benchmark.
//
// Opens N connections to an echo server on 127.0.0.1 and keeps exactly one
// message of S bytes in flight on each (strict request/response): send S
// bytes, wait until S bytes came back, check them, send again. After a warm-up
// it measures for T seconds and prints one JSON line: round trips/s, latency
// percentiles, and the CPU the client and (with --server-pid) the server used
// in that window, so CPU per message is exact, not sampled.
//
// One thread, edge-triggered epoll, non-blocking sockets: the client itself
// must not be the bottleneck's mystery. Pin it with taskset.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  size_t sent = 0;       // bytes of the current message written
  size_t received = 0;   // bytes of the current echo read
  Clock::time_point started;
  uint8_t seed = 0;      // pattern of the current message
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "pingpong_client: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

double CpuSecondsOfProcess(int pid) {
  if (pid <= 0) return 0;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Resident set of a process in KiB (VmRSS), or -1.
long RssKbOfProcess(int pid) {
  if (pid <= 0) return -1;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double CpuSecondsOfSelf() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Echo ping-pong load client (one message in flight per connection)"};
  int port = 0, server_pid = 0;
  int connections = 100;
  size_t size = 16;
  double seconds = 5, warmup = 1;
  app.add_option("--port", port, "server port on 127.0.0.1")->required();
  app.add_option("--connections", connections)->check(CLI::Range(1, 15000));
  app.add_option("--size", size, "message bytes")->check(CLI::Range(size_t{1}, size_t{1} << 20));
  app.add_option("--seconds", seconds, "measured time")->check(CLI::Range(0.1, 600.0));
  app.add_option("--warmup", warmup, "unmeasured time first")->check(CLI::Range(0.0, 60.0));
  app.add_option("--server-pid", server_pid, "report this process's CPU over the window");
  CLI11_PARSE(app, argc, argv);

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) Die("epoll_create1");
  std::vector<Conn> conns(static_cast<size_t>(connections));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (size_t i = 0; i < conns.size(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) Die("socket");
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Die("connect");
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) Die("epoll_ctl");
    conns[i].fd = fd;
    conns[i].seed = static_cast<uint8_t>(i);
  }

  // Message with seed s is byte k = s + 31k (mod 256). 31 is odd, so that is
  // the sequence 31j shifted by j0 = 223s (223 = 31^-1 mod 256): every
  // message is a window of one precomputed buffer, sent and checked without
  // per-message work proportional to its size beyond memcmp.
  std::vector<uint8_t> pattern(size + 256), in(std::max<size_t>(size, 64 * 1024));
  for (size_t j = 0; j < pattern.size(); ++j) pattern[j] = static_cast<uint8_t>(j * 31);
  auto message = [&](const Conn& c) { return pattern.data() + ((c.seed * 223u) & 255u); };
  // Writes what is left of the current message; false on a hard error.
  auto pump_write = [&](Conn& c) {
    while (c.sent < size) {
      const ssize_t n = send(c.fd, message(c) + c.sent, size - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return true;
      } else {
        return false;
      }
    }
    return true;
  };

  std::vector<uint32_t> latencies_ns;
  latencies_ns.reserve(1 << 22);
  uint64_t round_trips = 0, mismatches = 0;
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(warmup));
  const auto measure_to = measure_from + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(seconds));
  bool measuring = false;
  double client_cpu0 = 0, server_cpu0 = 0;
  Clock::time_point window_start;

  for (auto& c : conns) {
    c.started = Clock::now();
    if (!pump_write(c)) Die("send");
  }
  std::vector<epoll_event> events(1024);
  while (true) {
    const auto now = Clock::now();
    if (!measuring && now >= measure_from) {
      measuring = true;
      window_start = now;
      client_cpu0 = CpuSecondsOfSelf();
      server_cpu0 = CpuSecondsOfProcess(server_pid);
      round_trips = 0;
      latencies_ns.clear();
    }
    if (now >= measure_to) break;
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    if (n < 0 && errno != EINTR) Die("epoll_wait");
    for (int e = 0; e < n; ++e) {
      Conn& c = conns[events[static_cast<size_t>(e)].data.u64];
      if (events[static_cast<size_t>(e)].events & (EPOLLERR | EPOLLHUP)) Die("connection dropped");
      if (c.sent < size && !pump_write(c)) Die("send");
      while (true) {
        const ssize_t r = recv(c.fd, in.data(), in.size(), 0);
        if (r == 0) Die("server closed a connection");
        if (r < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          Die("recv");
        }
        if (c.received + static_cast<size_t>(r) > size) Die("server sent more than was sent to it");
        // Check the echo against what was sent.
        if (std::memcmp(in.data(), message(c) + c.received, static_cast<size_t>(r)) != 0) {
          ++mismatches;
        }
        c.received += static_cast<size_t>(r);
        if (c.received == size) {
          const auto done = Clock::now();
          if (measuring) {
            ++round_trips;
            latencies_ns.push_back(static_cast<uint32_t>(
                std::min<int64_t>(UINT32_MAX, (done - c.started).count())));
          }
          c.received = 0;
          c.sent = 0;
          ++c.seed;
          c.started = done;
          if (!pump_write(c)) Die("send");
        }
      }
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - window_start).count();
  const double client_cpu = CpuSecondsOfSelf() - client_cpu0;
  const double server_cpu = server_pid > 0 ? CpuSecondsOfProcess(server_pid) - server_cpu0 : -1;
  const long server_rss_kb = RssKbOfProcess(server_pid);  // every connection still open
  std::sort(latencies_ns.begin(), latencies_ns.end());
  auto pct = [&](double p) -> double {
    if (latencies_ns.empty()) return 0;
    const size_t idx = std::min(latencies_ns.size() - 1,
                                static_cast<size_t>(p * static_cast<double>(latencies_ns.size())));
    return latencies_ns[idx] / 1000.0;
  };
  const double rate = static_cast<double>(round_trips) / elapsed;
  std::printf(
      "{\"connections\": %d, \"size\": %zu, \"seconds\": %.3f, \"round_trips\": %llu, "
      "\"msgs_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
      "\"client_cpu_s\": %.3f, \"server_cpu_s\": %.3f, \"server_cpu_us_per_msg\": %.3f, "
      "\"server_rss_kb\": %ld, \"mismatched_reads\": %llu}\n",
      connections, size, elapsed, static_cast<unsigned long long>(round_trips), rate, pct(0.50),
      pct(0.99), pct(0.999), client_cpu, server_cpu,
      server_pid > 0 && round_trips > 0 ? server_cpu * 1e6 / static_cast<double>(round_trips) : -1.0,
      server_rss_kb, static_cast<unsigned long long>(mismatches));
  for (auto& c : conns) close(c.fd);
  return mismatches == 0 ? 0 : 3;
}
