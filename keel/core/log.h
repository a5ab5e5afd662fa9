#pragma once
// Logging through spdlog. Every line carries the time, level and the name of
// the thread that wrote it:
//   2026-11-22 16:20:01.123 [warn] [logic-0] room 7: mailbox at 90%
//
// The level comes from SetLogLevel() (programs wire their --log-level flag to
// it) or, before that, from the KEEL_LOG_LEVEL environment variable
// (trace|debug|info|warn|error|critical|off; default info). The logger is
// created on first use and is safe to use from any thread.

#include <spdlog/spdlog.h>

#include <string_view>

namespace keel::core {

// The engine's logger (never null).
spdlog::logger& Log() noexcept;

// Parses a level name; returns false (and leaves `out` alone) if unknown.
bool ParseLogLevel(std::string_view name, spdlog::level::level_enum& out) noexcept;

void SetLogLevel(spdlog::level::level_enum level) noexcept;

// Adds or removes a sink (a log file, a test's capture) with Keel's line
// format. Not synchronized with logging: call while no other thread logs
// (at start-up, at shutdown, in tests).
void AddLogSink(spdlog::sink_ptr sink);
void RemoveLogSink(const spdlog::sink_ptr& sink);

}  // namespace keel::core

#define KEEL_LOG_TRACE(...) ::keel::core::Log().trace(__VA_ARGS__)
#define KEEL_LOG_DEBUG(...) ::keel::core::Log().debug(__VA_ARGS__)
#define KEEL_LOG_INFO(...) ::keel::core::Log().info(__VA_ARGS__)
#define KEEL_LOG_WARN(...) ::keel::core::Log().warn(__VA_ARGS__)
#define KEEL_LOG_ERROR(...) ::keel::core::Log().error(__VA_ARGS__)
#define KEEL_LOG_CRITICAL(...) ::keel::core::Log().critical(__VA_ARGS__)
