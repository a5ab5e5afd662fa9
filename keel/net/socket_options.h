#pragma once
// Socket options every Keel socket gets (NetConfig: TCP_NODELAY, keepalive,
// SO_SNDBUF/SO_RCVBUF), and small address helpers. Thread-safe (no state).

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "keel/net/net_config.h"

namespace keel::net {

// Applies the options to a connected (or connecting) TCP socket. Failures
// are logged at debug level and otherwise ignored (an option is a wish).
void ApplySocketOptions(int fd, const NetConfig& config) noexcept;

// "127.0.0.1:53412" for a socket's peer ("?" if unknown).
std::string PeerName(int fd);

// Resolves host:port to an address (numeric or by name, blocking).
bool ResolveAddress(const std::string& host, uint16_t port, sockaddr_storage* out, socklen_t* len,
                    std::string* error);

}  // namespace keel::net
