#include "apps/bots/slow_reader.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "chat.keel.h"
#include "keel/proto/message_codec.h"
#include "keel/proto/wire.h"

namespace keel::bots {
namespace {

using Clock = std::chrono::steady_clock;

template <typename M>
bool SendMsg(int fd, const M& msg) {
  const auto frame = proto::BuildFrame(msg);
  return ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size());
}

int ConnectSmallWindow(const std::string& host, uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int rcvbuf = 4096;  // before connect, so the window stays small
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

SlowReaders::~SlowReaders() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
  for (auto& r : readers_) {
    if (r.fd >= 0) ::close(r.fd);
  }
}

bool SlowReaders::ReadSome(Reader& r, std::size_t max) {
  char buf[4096];
  std::size_t total = 0;
  while (!r.closed && (max == 0 || total < max)) {
    const std::size_t want = max == 0 ? sizeof buf : std::min(sizeof buf, max - total);
    const ssize_t n = ::recv(r.fd, buf, want, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      r.closed = true;
      break;
    }
    if (n < 0) break;
    total += static_cast<std::size_t>(n);
    r.bytes += static_cast<uint64_t>(n);
    r.pending.append(buf, static_cast<std::size_t>(n));
    std::size_t at = 0;
    while (r.pending.size() - at >= 4) {
      const auto* p = reinterpret_cast<const uint8_t*>(r.pending.data() + at);
      const uint16_t size = proto::LoadU16(p);
      if (size < 4 || r.pending.size() - at < size) break;
      if (proto::LoadU16(p + 2) == chat::kKickedId) {
        chat::Kicked k;
        if (k.ParseFromArray(p + 4, size - 4) && k.reason() == "slow consumer") r.kicked = true;
      }
      at += size;
    }
    r.pending.erase(0, at);
  }
  return !r.closed;
}

bool SlowReaders::Connect(const std::string& host, uint16_t port, uint32_t count, uint32_t rooms,
                          const std::string& prefix, std::string* error) {
  for (uint32_t i = 0; i < count; ++i) {
    Reader r;
    r.never = i % 2 == 0;
    r.fd = ConnectSmallWindow(host, port);
    if (r.fd < 0) {
      *error = "slow reader: connect failed";
      return false;
    }
    chat::Login login;
    login.set_nickname(prefix + "slow" + std::to_string(i));
    chat::JoinRoom join;
    join.set_name("room" + std::to_string(i % rooms));
    SendMsg(r.fd, login);
    SendMsg(r.fd, join);
    readers_.push_back(std::move(r));
  }
  // Read normally until each is in its room.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (auto& r : readers_) {
    bool joined = false;
    while (!joined && Clock::now() < deadline) {
      pollfd p{r.fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char header[4];
      if (::recv(r.fd, header, 4, MSG_WAITALL) != 4) break;
      const uint16_t size = proto::LoadU16(reinterpret_cast<const uint8_t*>(header));
      std::string payload(size >= 4 ? size - 4u : 0u, '\0');
      if (!payload.empty() && ::recv(r.fd, payload.data(), payload.size(), MSG_WAITALL) !=
                                  static_cast<ssize_t>(payload.size())) {
        break;
      }
      joined = proto::LoadU16(reinterpret_cast<const uint8_t*>(header) + 2) == chat::kRoomJoinedId;
    }
    if (!joined) {
      *error = "slow reader: not in its room within 10 s";
      return false;
    }
  }
  return true;
}

void SlowReaders::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Pace(stop); });
}

void SlowReaders::Pace(std::stop_token stop) {
  auto next_beat = Clock::now() + std::chrono::seconds(5);
  while (!stop.stop_requested()) {
    for (auto& r : readers_) {
      if (!r.never) ReadSome(r, 1024);
    }
    if (Clock::now() >= next_beat) {
      for (auto& r : readers_) {
        if (!r.closed) SendMsg(r.fd, chat::Heartbeat());
      }
      next_beat += std::chrono::seconds(5);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

SlowReaderResults SlowReaders::Finish(double drain_s) {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
  // Read everything left; a reader still open with nothing more to read for
  // 300 ms is taken as not disconnected.
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(drain_s));
  for (auto& r : readers_) {
    auto quiet_since = Clock::now();
    while (!r.closed && Clock::now() < deadline && Clock::now() - quiet_since < std::chrono::milliseconds(300)) {
      const uint64_t before = r.bytes;
      pollfd p{r.fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) ReadSome(r, 0);
      if (r.bytes != before) quiet_since = Clock::now();
    }
  }
  SlowReaderResults out;
  for (const auto& r : readers_) {
    ++out.readers;
    out.never_readers += r.never ? 1u : 0u;
    out.disconnected += r.closed ? 1u : 0u;
    out.never_disconnected += r.never && r.closed ? 1u : 0u;
    out.kick_notices += r.kicked ? 1u : 0u;
  }
  return out;
}

}  // namespace keel::bots
