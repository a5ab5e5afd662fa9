#include "keel/core/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "keel/core/thread_context.h"

namespace keel::core {
namespace {

// %N in the pattern: the keel thread name of the writing thread.
class ThreadNameFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view name = ThisThread::Name();
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ThreadNameFlag>();
  }
};

std::unique_ptr<spdlog::formatter> MakeFormatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<ThreadNameFlag>('N').set_pattern("%Y-%m-%d %H:%M:%S.%e [%^%l%$] [%N] %v");
  return formatter;
}

std::shared_ptr<spdlog::logger> MakeLogger() {
  auto logger = std::make_shared<spdlog::logger>(
      "keel", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_formatter(MakeFormatter());
  spdlog::level::level_enum level = spdlog::level::info;
  if (const char* env = std::getenv("KEEL_LOG_LEVEL")) {
    ParseLogLevel(env, level);
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  return logger;
}

}  // namespace

spdlog::logger& Log() noexcept {
  static const std::shared_ptr<spdlog::logger> logger = MakeLogger();
  return *logger;
}

bool ParseLogLevel(std::string_view name, spdlog::level::level_enum& out) noexcept {
  const spdlog::level::level_enum level = spdlog::level::from_str(std::string(name));
  // from_str answers "off" for anything it does not know.
  if (level == spdlog::level::off && name != "off") return false;
  out = level;
  return true;
}

void SetLogLevel(spdlog::level::level_enum level) noexcept { Log().set_level(level); }

void AddLogSink(spdlog::sink_ptr sink) {
  sink->set_formatter(MakeFormatter());
  Log().sinks().push_back(std::move(sink));
}

void RemoveLogSink(const spdlog::sink_ptr& sink) {
  auto& sinks = Log().sinks();
  std::erase(sinks, sink);
}

}  // namespace keel::core
