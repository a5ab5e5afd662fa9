#pragma once
// Why a session ended. Every disconnect carries exactly one reason; it is
// logged, counted per reason in NetStats, and passed to OnDisconnected.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keel::net {

enum class DisconnectReason : uint8_t {
  kNone = 0,
  kLocalClose,       // the application called Disconnect()
  kPeerClosed,       // the peer shut down its side (read returned 0 / FIN)
  kPeerReset,        // ECONNRESET, EPIPE
  kIoError,          // any other socket error (errno logged)
  kSlowConsumer,     // queued bytes over the hard limit, or over the soft limit past its grace
  kRecvBufferFull,   // the application left more than max_recv_buffer unconsumed
  kServerShutdown,   // Service::Stop
  kConnectFailed,    // client side: connect() refused or unreachable
  kConnectTimeout,   // client side: no connection within connect_timeout
  kTooManySessions,  // accepted over max_sessions, closed at once
  kProtocolError,    // a layer above (PacketSession) refused the peer's bytes
  kHookFailed,       // a hook of the session threw (the exception is logged and counted)
  kCount
};

inline constexpr std::size_t kDisconnectReasonCount = static_cast<std::size_t>(DisconnectReason::kCount);

std::string_view ToString(DisconnectReason reason) noexcept;

}  // namespace keel::net
