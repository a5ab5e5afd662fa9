#include "keel/net/disconnect_reason.h"

namespace keel::net {

std::string_view ToString(DisconnectReason reason) noexcept {
  switch (reason) {
    case DisconnectReason::kNone: return "none";
    case DisconnectReason::kLocalClose: return "local close";
    case DisconnectReason::kPeerClosed: return "peer closed";
    case DisconnectReason::kPeerReset: return "peer reset";
    case DisconnectReason::kIoError: return "io error";
    case DisconnectReason::kSlowConsumer: return "slow consumer";
    case DisconnectReason::kRecvBufferFull: return "recv buffer full";
    case DisconnectReason::kServerShutdown: return "server shutdown";
    case DisconnectReason::kConnectFailed: return "connect failed";
    case DisconnectReason::kConnectTimeout: return "connect timeout";
    case DisconnectReason::kTooManySessions: return "too many sessions";
    case DisconnectReason::kProtocolError: return "protocol error";
    case DisconnectReason::kHookFailed: return "hook failed";
    case DisconnectReason::kCount: break;
  }
  return "unknown";
}

}  // namespace keel::net
