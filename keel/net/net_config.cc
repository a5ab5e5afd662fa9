#include "keel/net/net_config.h"

#include <cstdlib>

namespace keel::net {

std::optional<IoBackend> ParseIoBackend(std::string_view text) noexcept {
  if (text == "auto") return IoBackend::kAuto;
  if (text == "uring" || text == "io_uring") return IoBackend::kUring;
  if (text == "epoll") return IoBackend::kEpoll;
  return std::nullopt;
}

std::string_view ToString(IoBackend backend) noexcept {
  switch (backend) {
    case IoBackend::kAuto: return "auto";
    case IoBackend::kUring: return "uring";
    case IoBackend::kEpoll: return "epoll";
  }
  return "unknown";
}

std::optional<std::string> NetConfig::ApplyEnvironment() {
  const char* io = std::getenv("KEEL_IO");
  if (io == nullptr || *io == '\0') return std::nullopt;
  auto parsed = ParseIoBackend(io);
  if (!parsed) return "KEEL_IO must be auto, uring or epoll, not '" + std::string(io) + "'";
  backend = *parsed;
  return std::nullopt;
}

}  // namespace keel::net
