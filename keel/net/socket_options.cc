#include "keel/net/socket_options.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cstring>

#include "keel/core/log.h"

namespace keel::net {
namespace {

void SetInt(int fd, int level, int name, int value, const char* what) noexcept {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    KEEL_LOG_DEBUG("setsockopt {}={} on fd {}: {}", what, value, fd, std::strerror(errno));
  }
}

}  // namespace

void ApplySocketOptions(int fd, const NetConfig& config) noexcept {
  if (config.tcp_nodelay) SetInt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
  if (config.keepalive) {
    SetInt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
    if (config.keepalive_idle_s > 0) SetInt(fd, IPPROTO_TCP, TCP_KEEPIDLE, config.keepalive_idle_s, "TCP_KEEPIDLE");
  }
  if (config.socket_send_buffer > 0) SetInt(fd, SOL_SOCKET, SO_SNDBUF, config.socket_send_buffer, "SO_SNDBUF");
  if (config.socket_recv_buffer > 0) SetInt(fd, SOL_SOCKET, SO_RCVBUF, config.socket_recv_buffer, "SO_RCVBUF");
}

std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

bool ResolveAddress(const std::string& host, uint16_t port, sockaddr_storage* out, socklen_t* len,
                    std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    if (error) *error = "resolve " + host + ": " + ::gai_strerror(rc);
    return false;
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return true;
}

}  // namespace keel::net
