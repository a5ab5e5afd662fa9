#include "keel/proto/protobuf_log.h"

#include <google/protobuf/stubs/logging.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "keel/core/log.h"
#include "keel/proto/rate_limiter.h"

namespace keel::proto {
namespace {

struct State {
  std::mutex mu;  // protobuf may log from any thread
  RateLimiter limiter{5, 20};
  uint64_t pending_suppressed = 0;
  std::atomic<uint64_t> lines{0};
  std::atomic<uint64_t> suppressed{0};
};

// Leaked on purpose: protobuf may log during static destruction.
State& TheState() {
  static State* state = new State;
  return *state;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

spdlog::level::level_enum LevelOf(google::protobuf::LogLevel level) {
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      return spdlog::level::info;
    case google::protobuf::LOGLEVEL_WARNING:
      return spdlog::level::warn;
    case google::protobuf::LOGLEVEL_ERROR:
      return spdlog::level::err;
    case google::protobuf::LOGLEVEL_FATAL:
      return spdlog::level::critical;
  }
  return spdlog::level::err;
}

void Handle(google::protobuf::LogLevel level, const char* filename, int line,
            const std::string& message) {
  State& s = TheState();
  s.lines.fetch_add(1, std::memory_order_relaxed);
  uint64_t summary = 0;
  {
    std::lock_guard lock(s.mu);
    // A fatal line always passes: protobuf aborts right after it.
    if (level != google::protobuf::LOGLEVEL_FATAL && !s.limiter.TryTake(NowNs())) {
      ++s.pending_suppressed;
      s.suppressed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    summary = s.pending_suppressed;
    s.pending_suppressed = 0;
  }
  if (summary != 0) {
    core::Log().log(LevelOf(level), "protobuf ({}:{}): {} (and {} lines suppressed before it)",
                    filename, line, message, summary);
  } else {
    core::Log().log(LevelOf(level), "protobuf ({}:{}): {}", filename, line, message);
  }
}

}  // namespace

void InstallProtobufLogHandler(ProtobufLogLimits limits) {
  State& s = TheState();
  {
    std::lock_guard lock(s.mu);
    s.limiter = RateLimiter(limits.lines_per_second, limits.burst);
    s.pending_suppressed = 0;
  }
  google::protobuf::SetLogHandler(&Handle);
}

ProtobufLogStats GetProtobufLogStats() noexcept {
  const State& s = TheState();
  return {s.lines.load(std::memory_order_relaxed), s.suppressed.load(std::memory_order_relaxed)};
}

}  // namespace keel::proto
