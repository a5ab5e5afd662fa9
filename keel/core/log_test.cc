#include "keel/core/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>
#include <thread>

#include "keel/core/thread_context.h"

namespace keel::core {
namespace {

TEST(Log, ParsesLevelNames) {
  spdlog::level::level_enum level = spdlog::level::info;
  EXPECT_TRUE(ParseLogLevel("debug", level));
  EXPECT_EQ(level, spdlog::level::debug);
  EXPECT_TRUE(ParseLogLevel("off", level));
  EXPECT_EQ(level, spdlog::level::off);
  EXPECT_FALSE(ParseLogLevel("loud", level));
  EXPECT_EQ(level, spdlog::level::off);
}

TEST(Log, EveryLineCarriesTheThreadName) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  AddLogSink(sink);
  const auto old_level = Log().level();
  SetLogLevel(spdlog::level::info);
  std::thread([] {
    ThisThread::SetName("io-3", "io", 3);
    KEEL_LOG_INFO("accepted {} sessions", 5);
  }).join();
  KEEL_LOG_DEBUG("filtered out");
  RemoveLogSink(sink);
  SetLogLevel(old_level);
  const std::string text = out.str();
  EXPECT_NE(text.find("[io-3] accepted 5 sessions"), std::string::npos) << text;
  EXPECT_NE(text.find("[info]"), std::string::npos) << text;
  EXPECT_EQ(text.find("filtered out"), std::string::npos) << text;
}

}  // namespace
}  // namespace keel::core
