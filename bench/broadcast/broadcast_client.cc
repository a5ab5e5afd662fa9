// broadcast_client: the load side of the room broadcast benchmark.
//
// M member connections join one room; P of them also publish, flat out with
// at most W messages of their own in flight (a message is done when it comes
// back to its publisher, who is a member too; for redis, when PUBLISH is
// answered). That closed loop measures the most a server delivers, and its
// latency is mostly queueing: Little's law, P*W*M deliveries in flight over the
// delivery rate, set by whichever side is the bottleneck (on a 2-core machine
// usually this client). With --rate R the publishers instead send R messages/s
// between them on a fixed schedule (open loop), each stamped with the time it
// was due, not the time it went out, so a server (or client) that falls behind
// is charged for the wait (no coordinated omission); W then only caps how far
// a publisher may run ahead of its deliveries (due messages it held back are
// counted as "held"; "unfinished" counts what was due or in flight at the
// end, since latency only covers what arrived; "send_lag" is how late the
// client itself sent, charged as latency too). Every message carries (publisher, seq, send time); every member
// checks that each publisher's messages arrive once, in order, and records
// the delivery latency. After a warm-up it measures for T seconds and prints
// one JSON line: messages in/s, deliveries/s, latency percentiles, losses,
// and client and (with --server-pid) server CPU in the window.
//
// Speaks the protocol of the server under test (--protocol):
//   asio   Boost.Asio's chat example: [4 ASCII digits body length][body]
//   redis  redis-server SUBSCRIBE/PUBLISH (RESP)
//   keel   keel_chat_server: Keel frames, chat.proto messages (hand-encoded
//          here, so this client needs no protobuf); the room "bench" must
//          exist (keel_chat_server --create-rooms bench); the stamp travels
//          hex-encoded (a proto3 string must be UTF-8)
// One thread, edge-triggered epoll; pin it with taskset.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "keel/core/histogram.h"

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "broadcast_client: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

double CpuSecondsOfProcess(int pid) {
  if (pid <= 0) return 0;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double CpuSecondsOfSelf() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// What every message carries at the start of its body.
struct Stamp {
  uint32_t publisher;
  uint32_t magic;
  uint64_t seq;
  int64_t sent_ns;
};
constexpr uint32_t kMagic = 0x4B45454C;  // "KEEL"
// Sent once before the run: a member is in the room once it has seen it
// (servers that replay history, like Asio's example, replay it to late joiners).
constexpr uint32_t kSyncMagic = 0x53594E43;  // "SYNC"

struct Member {
  int fd = -1;
  std::string in;                      // bytes not yet parsed
  size_t in_off = 0;
  std::string out;                     // bytes not yet written
  std::vector<uint64_t> next_seq;      // per publisher: the seq expected next
  int publisher = -1;                  // index if this member publishes
  uint32_t in_flight = 0;
  uint64_t sent = 0;
  bool ready = false;                  // subscribed / joined
  bool confirmed = false;              // the server confirmed the join
  // In the measured window: deliveries, their summed and largest latency.
  uint64_t got = 0;
  int64_t lag_sum_ns = 0;
  int64_t lag_max_ns = 0;
  // Publishers: since when m.out has waited for the socket (0: not waiting),
  // how often and for how long at most.
  int64_t blocked_since_ns = 0;
  uint64_t blocked_times = 0;
  int64_t blocked_max_ns = 0;
};

// A wire protocol: how to join, how to publish, and how to cut the stream
// into deliveries (bodies) and acknowledgements.
class Protocol {
 public:
  virtual ~Protocol() = default;
  virtual std::string Join() = 0;
  virtual void Publish(std::string& out, const std::string& body) = 0;
  // Parses what is complete in m.in from m.in_off; calls on_body for each
  // message body, on_ack for each publish acknowledged. False: garbage.
  template <typename OnBody, typename OnAck>
  bool Parse(Member& m, OnBody&& on_body, OnAck&& on_ack);
  virtual bool ParseOne(Member& m, std::string_view& body, bool& ack, bool& need_more) = 0;
  virtual bool AcksPublishes() const = 0;
};

template <typename OnBody, typename OnAck>
bool Protocol::Parse(Member& m, OnBody&& on_body, OnAck&& on_ack) {
  while (true) {
    std::string_view body;
    bool ack = false, need_more = false;
    if (!ParseOne(m, body, ack, need_more)) return false;
    if (need_more) break;
    if (ack) {
      on_ack();
    } else if (!body.empty()) {
      on_body(body);
    }
  }
  if (m.in_off > 0 && m.in_off * 2 > m.in.size()) {
    m.in.erase(0, m.in_off);
    m.in_off = 0;
  }
  return true;
}

// Boost.Asio chat example: "%4d" body length, then the body (<= 512 bytes).
class AsioChat final : public Protocol {
 public:
  std::string Join() override { return {}; }  // connecting joins the one room
  void Publish(std::string& out, const std::string& body) override {
    char header[8];
    std::snprintf(header, sizeof(header), "%4d", static_cast<int>(body.size()));
    out.append(header, 4);
    out += body;
  }
  bool ParseOne(Member& m, std::string_view& body, bool&, bool& need_more) override {
    const size_t avail = m.in.size() - m.in_off;
    if (avail < 4) return need_more = true;
    const int len = std::atoi(std::string(m.in.data() + m.in_off, 4).c_str());
    if (len < 0 || len > 512) return false;
    if (avail < 4 + static_cast<size_t>(len)) return need_more = true;
    body = std::string_view(m.in.data() + m.in_off + 4, static_cast<size_t>(len));
    m.in_off += 4 + static_cast<size_t>(len);
    return true;
  }
  bool AcksPublishes() const override { return false; }
};

// redis-server: members SUBSCRIBE to channel "room"; a subscribed connection
// cannot PUBLISH, so publishers are connections of their own (see main), and
// a publish is done when redis answers it (after queuing it to every
// subscriber).
class Redis final : public Protocol {
 public:
  std::string Join() override { return "*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nroom\r\n"; }
  void Publish(std::string& out, const std::string& body) override {
    out += "*3\r\n$7\r\nPUBLISH\r\n$4\r\nroom\r\n$" + std::to_string(body.size()) + "\r\n";
    out += body;
    out += "\r\n";
  }
  bool ParseOne(Member& m, std::string_view& body, bool& ack, bool& need_more) override {
    const std::string_view in(m.in.data() + m.in_off, m.in.size() - m.in_off);
    size_t pos = 0;
    auto line = [&](std::string_view& out_line) {
      const size_t end = in.find("\r\n", pos);
      if (end == std::string_view::npos) return false;
      out_line = in.substr(pos, end - pos);
      pos = end + 2;
      return true;
    };
    std::string_view head;
    if (!line(head)) return need_more = true;
    if (head.empty()) return false;
    if (head[0] == ':') {  // PUBLISH reply: receivers
      ack = true;
      m.in_off += pos;
      return true;
    }
    if (head[0] != '*') return false;
    const int n = ToInt(head.substr(1));
    std::string_view last;
    for (int i = 0; i < n; ++i) {
      std::string_view item;
      if (!line(item)) return need_more = true;
      if (item.empty()) return false;
      if (item[0] == '$') {
        const size_t len = static_cast<size_t>(ToInt(item.substr(1)));
        if (in.size() - pos < len + 2) return need_more = true;
        last = in.substr(pos, len);
        pos += len + 2;
      } else if (item[0] != ':') {
        return false;
      }
    }
    m.in_off += pos;
    const std::string_view kind = in.substr(0, 20);
    if (n == 3 && kind.find("message") != std::string_view::npos) body = last;
    if (n == 3 && kind.find("subscribe") != std::string_view::npos) m.confirmed = true;
    return true;
  }
  bool AcksPublishes() const override { return true; }

 private:
  static int ToInt(std::string_view digits) {
    int v = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), v);
    return v;
  }
};


// keel_chat_server: [u16 size][u16 id][protobuf], little-endian. Login (1)
// and JoinRoom (12) to join, Say (20) to publish; RoomMessage (120) carries
// the body in field 3; RoomJoined (112) confirms the join.
class KeelChat final : public Protocol {
 public:
  std::string Join() override {
    std::string out;
    Frame(out, 1, Field1("b" + std::to_string(next_member_++)));
    Frame(out, 12, Field1("bench"));
    return out;
  }
  void Publish(std::string& out, const std::string& body) override {
    static const char* hex = "0123456789abcdef";
    std::string text;
    for (size_t i = 0; i < sizeof(Stamp); ++i) {
      const auto b = static_cast<unsigned char>(body[i]);
      text += hex[b >> 4];
      text += hex[b & 15];
    }
    if (body.size() > text.size()) text.append(body.size() - text.size(), 'x');
    Frame(out, 20, Field1(text));
  }
  bool ParseOne(Member& m, std::string_view& body, bool&, bool& need_more) override {
    const size_t avail = m.in.size() - m.in_off;
    if (avail < 4) return need_more = true;
    const auto* p = reinterpret_cast<const unsigned char*>(m.in.data() + m.in_off);
    const size_t size = static_cast<size_t>(p[0]) | (static_cast<size_t>(p[1]) << 8);
    const unsigned id = static_cast<unsigned>(p[2]) | (static_cast<unsigned>(p[3]) << 8);
    if (size < 4) return false;
    if (avail < size) return need_more = true;
    std::string_view payload(m.in.data() + m.in_off + 4, size - 4);
    m.in_off += size;
    if (id == 112) m.confirmed = true;
    if (id == 101 || id == 122 || id == 131) return true;  // login result, presence, notice
    if (id == 132 || id == 133) return false;               // an error or a kick: the run is void
    if (id != 120) return true;
    std::string_view text;
    if (!FindField3(payload, text) || text.size() < 2 * sizeof(Stamp)) return false;
    // Only the stamp is read back (on_body looks at sizeof(Stamp) bytes).
    for (size_t i = 0; i < sizeof(Stamp); ++i) {
      decoded_[i] = static_cast<char>(kNibble[static_cast<unsigned char>(text[2 * i])] << 4 |
                                      kNibble[static_cast<unsigned char>(text[2 * i + 1])]);
    }
    body = std::string_view(decoded_, sizeof(Stamp));
    return true;
  }
  bool AcksPublishes() const override { return false; }

 private:
  static std::string Varint(uint64_t v) {
    std::string out;
    while (v >= 0x80) {
      out += static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    out += static_cast<char>(v);
    return out;
  }
  static std::string Field1(const std::string& text) { return "\x0A" + Varint(text.size()) + text; }
  static void Frame(std::string& out, unsigned id, const std::string& payload) {
    const size_t size = 4 + payload.size();
    out += static_cast<char>(size & 0xFF);
    out += static_cast<char>(size >> 8);
    out += static_cast<char>(id & 0xFF);
    out += static_cast<char>(id >> 8);
    out += payload;
  }
  static constexpr auto kNibble = [] {
    std::array<uint8_t, 256> t{};
    for (size_t c = 0; c < 10; ++c) t['0' + c] = static_cast<uint8_t>(c);
    for (size_t c = 0; c < 6; ++c) t['a' + c] = static_cast<uint8_t>(10 + c);
    return t;
  }();
  static bool ReadVarint(std::string_view& in, uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
      const auto b = static_cast<unsigned char>(in[0]);
      in.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  // The string field 3 (RoomMessage.text) of a protobuf message.
  static bool FindField3(std::string_view in, std::string_view& out) {
    while (!in.empty()) {
      uint64_t tag = 0, v = 0;
      if (!ReadVarint(in, tag)) return false;
      if ((tag & 7) == 0) {
        if (!ReadVarint(in, v)) return false;
      } else if ((tag & 7) == 2) {
        if (!ReadVarint(in, v) || v > in.size()) return false;
        if ((tag >> 3) == 3) {
          out = in.substr(0, v);
          return true;
        }
        in.remove_prefix(v);
      } else {
        return false;
      }
    }
    return false;
  }

  int next_member_ = 0;
  char decoded_[sizeof(Stamp)];
};
// One message's fan-out: when it was stamped, first and last delivered.
struct Fanout {
  int64_t first_ns, last_ns, sent_ns;
};

// Whether a late delivery was late before the fan-out started (publisher
// socket, server receive, room worker) or during it (one member after
// another): per message, latency of its first delivery and first-to-last spread.
void PrintFanout(const std::vector<std::vector<Fanout>>& fanout, int64_t window_start_ns) {
  keel::core::Histogram first, spread;
  for (size_t p = 0; p < fanout.size(); ++p) {
    int64_t worst = 0, worst_at = 0;
    uint64_t late = 0, n = 0;
    for (const Fanout& f : fanout[p]) {
      if (f.sent_ns == 0) continue;
      ++n;
      first.Record(static_cast<uint64_t>(f.first_ns - f.sent_ns));
      spread.Record(static_cast<uint64_t>(f.last_ns - f.first_ns));
      if (f.first_ns - f.sent_ns > 100'000'000) ++late;
      if (f.first_ns - f.sent_ns > worst) {
        worst = f.first_ns - f.sent_ns;
        worst_at = f.sent_ns - window_start_ns;
      }
    }
    std::fprintf(stderr, "publisher %zu: %llu messages, %llu first delivered after > 100 ms, worst %.1f ms (sent at %.1f ms)\n", p,
                 static_cast<unsigned long long>(n), static_cast<unsigned long long>(late),
                 static_cast<double>(worst) / 1e6, static_cast<double>(worst_at) / 1e6);
  }
  std::fprintf(stderr, "per-message: first delivery ms p50 %.1f p99 %.1f max %.1f; first-to-last spread ms p50 %.1f p99 %.1f max %.1f\n",
               static_cast<double>(first.Percentile(0.5)) / 1e6, static_cast<double>(first.Percentile(0.99)) / 1e6,
               static_cast<double>(first.Max()) / 1e6, static_cast<double>(spread.Percentile(0.5)) / 1e6,
               static_cast<double>(spread.Percentile(0.99)) / 1e6, static_cast<double>(spread.Max()) / 1e6);
}

// Which members lag: mean latency by join-order decile (publishers join
// first), the worst members, how many messages each still had coming at the
// end, and whether latency grew over the window (a backlog building up).
void PrintPerMember(const std::vector<Member>& conns, int members, const std::vector<Member*>& by_publisher,
                    const keel::core::Histogram& first, const keel::core::Histogram& second) {
  std::vector<double> mean_ms;
  std::vector<uint64_t> backlog;
  for (int i = 0; i < members; ++i) {
    const Member& m = conns[static_cast<size_t>(i)];
    mean_ms.push_back(m.got ? static_cast<double>(m.lag_sum_ns) / static_cast<double>(m.got) / 1e6 : 0);
    uint64_t owed = 0;
    for (size_t p = 0; p < by_publisher.size(); ++p) owed += by_publisher[p]->sent - (m.next_seq[p] - 1);
    backlog.push_back(owed);
  }
  std::fprintf(stderr, "per-member: mean latency ms by join-order decile:");
  const int tenth = std::max(1, members / 10);
  for (int d = 0; d * tenth < members; ++d) {
    double sum = 0;
    int n = 0;
    for (int i = d * tenth; i < std::min(members, (d + 1) * tenth); ++i, ++n) sum += mean_ms[static_cast<size_t>(i)];
    std::fprintf(stderr, " %.1f", sum / n);
  }
  std::vector<int> order(static_cast<size_t>(members));
  for (int i = 0; i < members; ++i) order[static_cast<size_t>(i)] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return mean_ms[static_cast<size_t>(a)] > mean_ms[static_cast<size_t>(b)]; });
  std::vector<double> sorted = mean_ms;
  std::sort(sorted.begin(), sorted.end());
  std::vector<uint64_t> sorted_backlog = backlog;
  std::sort(sorted_backlog.begin(), sorted_backlog.end());
  std::fprintf(stderr, "\nper-member: member mean latency ms p50 %.1f p90 %.1f max %.1f; messages still owed at end p50 %llu p90 %llu max %llu\n",
               sorted[sorted.size() / 2], sorted[sorted.size() * 9 / 10], sorted.back(),
               static_cast<unsigned long long>(sorted_backlog[sorted_backlog.size() / 2]),
               static_cast<unsigned long long>(sorted_backlog[sorted_backlog.size() * 9 / 10]),
               static_cast<unsigned long long>(sorted_backlog.back()));
  std::fprintf(stderr, "per-member: worst (index mean_ms max_ms owed):");
  for (size_t k = 0; k < std::min<size_t>(8, order.size()); ++k) {
    const auto i = static_cast<size_t>(order[k]);
    std::fprintf(stderr, " [%zu %.1f %.1f %llu]", i, mean_ms[i], static_cast<double>(conns[i].lag_max_ns) / 1e6,
                 static_cast<unsigned long long>(backlog[i]));
  }
  std::fprintf(stderr, "\nper-member: latency p50/p99 ms first half %.1f/%.1f, second half %.1f/%.1f\n",
               static_cast<double>(first.Percentile(0.5)) / 1e6, static_cast<double>(first.Percentile(0.99)) / 1e6,
               static_cast<double>(second.Percentile(0.5)) / 1e6, static_cast<double>(second.Percentile(0.99)) / 1e6);
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Room broadcast load client"};
  std::string protocol_name = "asio";
  int port = 0, server_pid = 0, members = 100, publishers = 4;
  uint32_t window = 16;
  size_t size = 64;
  double seconds = 5, warmup = 1;
  app.add_option("--protocol", protocol_name)->check(CLI::IsMember({"asio", "redis", "keel"}));
  app.add_option("--port", port)->required();
  app.add_option("--members", members)->check(CLI::Range(1, 15000));
  app.add_option("--publishers", publishers)->check(CLI::Range(1, 64));
  auto* window_opt = app.add_option("--window", window, "messages in flight per publisher (open loop: 4096 unless given)")
                         ->check(CLI::Range(1u, 65536u));
  app.add_option("--size", size, "message body bytes")->check(CLI::Range(sizeof(Stamp), size_t{500}));
  app.add_option("--seconds", seconds)->check(CLI::Range(0.1, 600.0));
  app.add_option("--warmup", warmup)->check(CLI::Range(0.0, 60.0));
  app.add_option("--server-pid", server_pid);
  double rate = 0;
  app.add_option("--rate", rate, "open loop: messages/s offered by all publishers together (0: closed loop)")
      ->check(CLI::Range(0.0, 1e7));
  bool per_member = false;
  app.add_flag("--per-member", per_member, "also print, to stderr, which members lag (by join order)");
  CLI11_PARSE(app, argc, argv);
  if (publishers > members) publishers = members;
  if (rate > 0 && window_opt->count() == 0) window = 4096;

  std::unique_ptr<Protocol> protocol;
  if (protocol_name == "asio") {
    protocol = std::make_unique<AsioChat>();
  } else if (protocol_name == "keel") {
    protocol = std::make_unique<KeelChat>();
  } else {
    protocol = std::make_unique<Redis>();
  }
  // Redis publishers cannot also be subscribers: they get connections of
  // their own after the members.
  const bool separate_publishers = protocol_name == "redis";
  const int connections = members + (separate_publishers ? publishers : 0);

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<Member> conns(static_cast<size_t>(connections));
  for (size_t i = 0; i < conns.size(); ++i) {
    Member& m = conns[i];
    m.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m.fd < 0 || connect(m.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Die("connect");
    const int one = 1;
    setsockopt(m.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(m.fd, F_SETFL, fcntl(m.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, m.fd, &ev) != 0) Die("epoll_ctl");
    m.next_seq.assign(static_cast<size_t>(publishers), 1);
    const bool is_member = static_cast<int>(i) < members;
    if (is_member) m.out = protocol->Join();
    m.ready = !is_member || m.out.empty();
    const int pub_index = separate_publishers ? static_cast<int>(i) - members : static_cast<int>(i);
    if (pub_index >= 0 && pub_index < publishers) m.publisher = pub_index;
  }
  std::vector<Member*> by_publisher(static_cast<size_t>(publishers));
  for (auto& m : conns) {
    if (m.publisher >= 0) by_publisher[static_cast<size_t>(m.publisher)] = &m;
  }

  keel::core::Histogram latency, latency_first, latency_second;  // whole window, its halves
  int64_t half_ns = 0, window_start_ns = 0;
  std::vector<std::vector<Fanout>> fanout(static_cast<size_t>(publishers));  // [publisher][seq]
  uint64_t deliveries = 0, published = 0, lost = 0, duplicated = 0, garbage = 0;
  uint64_t held = 0;  // open loop: messages sent late because the window was full
  keel::core::Histogram send_lag;  // open loop: when each message went out after it was due
  std::string body(size, 'x');
  auto flush = [&](Member& m) {
    while (!m.out.empty()) {
      const ssize_t n = send(m.fd, m.out.data(), m.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        m.out.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (m.blocked_since_ns == 0) {
          m.blocked_since_ns = NowNs();
          ++m.blocked_times;
        }
        return;
      } else {
        Die("send");
      }
    }
    if (m.blocked_since_ns != 0) {
      m.blocked_max_ns = std::max(m.blocked_max_ns, NowNs() - m.blocked_since_ns);
      m.blocked_since_ns = 0;
    }
  };
  bool measuring = false;
  auto publish_one = [&](Member& m, int64_t stamp_ns) {
    if (rate > 0 && measuring) send_lag.Record(static_cast<uint64_t>(std::max<int64_t>(0, NowNs() - stamp_ns)));
    Stamp s{static_cast<uint32_t>(m.publisher), kMagic, ++m.sent, stamp_ns};
    std::memcpy(body.data(), &s, sizeof(s));
    protocol->Publish(m.out, body);
    ++m.in_flight;
    ++published;
  };
  // Closed loop: keep the window full.
  auto publish = [&](Member& m) {
    while (m.in_flight < window) publish_one(m, NowNs());
    flush(m);
  };
  // Open loop: publisher p's k-th message is due at start + (k * P + p) / R
  // (the publishers take turns, so the room sees one message every 1/R s),
  // computed from k each time so the rate does not drift.
  int64_t start_ns = 0;
  std::vector<uint64_t> next_k(static_cast<size_t>(publishers), 0);
  std::vector<int64_t> next_due(static_cast<size_t>(publishers), 0);
  std::vector<bool> holding(static_cast<size_t>(publishers), false);
  auto due_at = [&](size_t p, uint64_t k) {
    return start_ns + std::llround(static_cast<double>(k * static_cast<uint64_t>(publishers) + p) * 1e9 / rate);
  };
  auto pace = [&](int64_t now_ns) {
    for (Member* p : by_publisher) {
      const auto i = static_cast<size_t>(p->publisher);
      const bool was_holding = holding[i];
      bool sent = false;
      while (next_due[i] <= now_ns) {
        if (p->in_flight >= window) {
          holding[i] = true;
          break;
        }
        holding[i] = false;
        held += was_holding;  // due while the window was full: sent late
        publish_one(*p, next_due[i]);
        next_due[i] = due_at(i, ++next_k[i]);
        sent = true;
      }
      if (sent) flush(*p);
    }
  };
  auto next_wait_ns = [&](int64_t now_ns) {
    int64_t soonest = now_ns + 100'000'000;
    for (size_t i = 0; i < next_due.size(); ++i) {
      if (!holding[i]) soonest = std::min(soonest, next_due[i]);
    }
    return std::max<int64_t>(0, soonest - now_ns);
  };

  // Wait until every member has joined (redis: subscribe confirmed).
  const auto join_deadline = Clock::now() + std::chrono::seconds(30);
  std::vector<epoll_event> events(1024);
  char buf[64 * 1024];
  auto read_all = [&](Member& m, auto&& on_body, auto&& on_ack) {
    while (true) {
      const ssize_t r = recv(m.fd, buf, sizeof(buf), 0);
      if (r == 0) Die("server closed a connection");
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        Die("recv");
      }
      m.in.append(buf, static_cast<size_t>(r));
      // A short read drained the socket: with edge-triggered epoll, bytes that
      // arrive after it raise a new event, so the EAGAIN read is not needed
      // (one syscall less per delivery; the same for every protocol).
      if (static_cast<size_t>(r) < sizeof(buf)) break;
    }
    if (!protocol->Parse(m, on_body, on_ack)) {
      ++garbage;
      Die("unparsable data from the server");
    }
  };
  if (protocol_name == "asio") {
    // Connecting is not joining: the server may not have accepted everyone
    // yet. Members are ready once they have seen the sync message.
    for (int i = 0; i < members; ++i) conns[static_cast<size_t>(i)].ready = false;
    Stamp sync{0, kSyncMagic, 0, 0};
    std::memcpy(body.data(), &sync, sizeof(sync));
    protocol->Publish(conns[0].out, body);
    flush(conns[0]);
  }
  size_t ready = 0;
  for (auto& m : conns) ready += m.ready;
  while (ready < conns.size()) {
    if (Clock::now() > join_deadline) Die("members did not all join in 30 s");
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int e = 0; e < n; ++e) {
      Member& m = conns[events[static_cast<size_t>(e)].data.u64];
      flush(m);
      const bool was = m.ready;
      read_all(
          m,
          [&](std::string_view b) {
            Stamp st;
            if (b.size() >= sizeof(st)) {
              std::memcpy(&st, b.data(), sizeof(st));
              if (st.magic == kSyncMagic) m.confirmed = true;
            }
          },
          [] {});
      if (!m.ready && m.out.empty() && m.confirmed) m.ready = true;
      ready += m.ready && !was;
    }
  }

  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  const auto measure_to = measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  double client_cpu0 = 0, server_cpu0 = 0;
  Clock::time_point window_start;
  uint64_t published0 = 0, held0 = 0;
  if (rate > 0) {
    // Paced sends wake on time: the default 50 µs timer slack would make each
    // one up to 50 µs late, and the lateness counts as latency.
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    start_ns = NowNs();
    for (size_t i = 0; i < next_due.size(); ++i) next_due[i] = due_at(i, 0);
    pace(start_ns);
  } else {
    for (Member* p : by_publisher) publish(*p);
  }

  bool has_pwait2 = true;
  while (true) {
    const auto now = Clock::now();
    if (!measuring && now >= measure_from) {
      measuring = true;
      window_start = now;
      client_cpu0 = CpuSecondsOfSelf();
      server_cpu0 = CpuSecondsOfProcess(server_pid);
      deliveries = 0;
      published0 = published;
      held0 = held;
      latency.Clear();
      send_lag.Clear();
      window_start_ns = NowNs();
      half_ns = window_start_ns + static_cast<int64_t>(seconds * 0.5e9);
    }
    if (now >= measure_to) break;
    int n = -1;
    if (rate > 0 && has_pwait2) {
      const int64_t wait_ns = next_wait_ns(NowNs());
      const timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
      n = epoll_pwait2(ep, events.data(), static_cast<int>(events.size()), &ts, nullptr);
      if (n < 0 && errno == ENOSYS) has_pwait2 = false;  // before Linux 5.11: milliseconds below
    }
    if (rate == 0) {
      n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    } else if (!has_pwait2) {
      const int64_t wait_ns = next_wait_ns(NowNs());
      n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), static_cast<int>((wait_ns + 999'999) / 1'000'000));
    }
    if (n < 0 && errno != EINTR) Die("epoll_wait");
    for (int e = 0; e < n; ++e) {
      Member& m = conns[events[static_cast<size_t>(e)].data.u64];
      flush(m);
      const int64_t t = NowNs();
      read_all(
          m,
          [&](std::string_view b) {
            Stamp s;
            if (b.size() < sizeof(s)) return;
            std::memcpy(&s, b.data(), sizeof(s));
            if (s.magic != kMagic || s.publisher >= static_cast<uint32_t>(publishers)) return;
            uint64_t& expect = m.next_seq[s.publisher];
            if (s.seq < expect) {
              ++duplicated;
              return;
            }
            if (s.seq > expect) lost += s.seq - expect;
            expect = s.seq + 1;
            ++deliveries;
            if (measuring) {
              const int64_t lag = t - s.sent_ns;
              latency.Record(static_cast<uint64_t>(lag));
              (t < half_ns ? latency_first : latency_second).Record(static_cast<uint64_t>(lag));
              ++m.got;
              m.lag_sum_ns += lag;
              m.lag_max_ns = std::max(m.lag_max_ns, lag);
              if (per_member) {
                auto& seen = fanout[s.publisher];
                if (seen.size() <= s.seq) seen.resize(s.seq + 1, {INT64_MAX, 0, 0});
                Fanout& f = seen[s.seq];
                f.first_ns = std::min(f.first_ns, t);
                f.last_ns = std::max(f.last_ns, t);
                f.sent_ns = s.sent_ns;
              }
            }
            if (!protocol->AcksPublishes() && static_cast<int>(s.publisher) == m.publisher) {
              --m.in_flight;
              if (rate == 0) publish(m);
            }
          },
          [&] {
            --m.in_flight;
            if (rate == 0) publish(m);
          });
    }
    if (rate > 0) pace(NowNs());
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - window_start).count();
  const double client_cpu = CpuSecondsOfSelf() - client_cpu0;
  const double server_cpu = server_pid > 0 ? CpuSecondsOfProcess(server_pid) - server_cpu0 : -1;
  const double rate_out = static_cast<double>(deliveries) / elapsed;
  // What the window's latencies do not cover: messages in flight (not yet
  // back to their publisher, or not acknowledged) and, open loop, due but
  // not yet sent.
  uint64_t unfinished = 0;
  const int64_t end_ns = NowNs();
  for (const Member* p : by_publisher) {
    unfinished += p->in_flight;
    if (rate > 0) {
      const auto i = static_cast<size_t>(p->publisher);
      for (uint64_t k = next_k[i]; due_at(i, k) <= end_ns; ++k) ++unfinished;
    }
  }
  std::printf(
      "{\"protocol\": \"%s\", \"members\": %d, \"publishers\": %d, \"size\": %zu, \"seconds\": %.3f, "
      "\"msgs_in_per_s\": %.0f, \"deliveries_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
      "\"p999_us\": %.1f, \"max_us\": %.1f, \"lost\": %llu, \"duplicated\": %llu, "
      "\"client_cpu_s\": %.3f, \"server_cpu_s\": %.3f, \"server_cpu_us_per_delivery\": %.4f, "
      "\"offered_msgs_per_s\": %.3f, \"held\": %llu, \"unfinished\": %llu, \"send_lag_p99_us\": %.1f}\n",
      protocol_name.c_str(), members, publishers, size, elapsed,
      static_cast<double>(published - published0) / elapsed, rate_out,
      static_cast<double>(latency.Percentile(0.5)) / 1e3, static_cast<double>(latency.Percentile(0.99)) / 1e3,
      static_cast<double>(latency.Percentile(0.999)) / 1e3, static_cast<double>(latency.Max()) / 1e3,
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(duplicated), client_cpu,
      server_cpu, server_pid > 0 && deliveries > 0 ? server_cpu * 1e6 / static_cast<double>(deliveries) : -1.0, rate,
      static_cast<unsigned long long>(held - held0), static_cast<unsigned long long>(unfinished),
      static_cast<double>(send_lag.Percentile(0.99)) / 1e3);
  if (per_member) {
    PrintPerMember(conns, members, by_publisher, latency_first, latency_second);
    PrintFanout(fanout, window_start_ns);
    for (const Member* p : by_publisher) {
      std::fprintf(stderr, "publisher %d: send blocked %llu times, longest %.1f ms\n", p->publisher,
                   static_cast<unsigned long long>(p->blocked_times), static_cast<double>(p->blocked_max_ns) / 1e6);
    }
  }
  for (auto& m : conns) close(m.fd);
  return lost == 0 && duplicated == 0 && garbage == 0 ? 0 : 3;
}
