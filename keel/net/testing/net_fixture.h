#pragma once
// The parameterized fixture of the net tests: one server Service per test,
// on each backend in TestBackends(). Test-only.

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "keel/net/testing/net_test_util.h"

// 1 under ASan or TSan (clang's __has_feature), else 0.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define KEEL_NET_TEST_HAS_SANITIZER 1
#endif
#endif
#ifndef KEEL_NET_TEST_HAS_SANITIZER
#define KEEL_NET_TEST_HAS_SANITIZER 0
#endif

namespace keel::net::testing {

class NetTest : public ::testing::TestWithParam<IoBackend> {
 protected:
  template <typename S>
  void StartServer(NetConfig cfg) {
    server_ = std::make_unique<Service>(cfg, FactoryFor<S>(&log_));
    std::string err;
    ASSERT_TRUE(server_->Start(&err)) << err;
    ASSERT_TRUE(server_->Listen("127.0.0.1", 0, &err)) << err;
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }
  template <typename S>
  void StartServer() {
    StartServer<S>(TestConfig(GetParam()));
  }
  void TearDown() override {
    if (server_) server_->Stop();
    EXPECT_EQ(log_.late_hooks.load(), 0);
    EXPECT_EQ(log_.double_disconnect.load(), 0);
  }

  HookLog log_;
  std::unique_ptr<Service> server_;
  uint16_t port_ = 0;
};

// How many distinct loops the kept sessions live on.
inline uint64_t LoopsOf(HookLog& log) {
  std::lock_guard<std::mutex> g(log.mu);
  std::set<IoLoop*> loops;
  for (auto& s : log.sessions) loops.insert(s->loop());
  return loops.size();
}

inline std::string ParamName(const ::testing::TestParamInfo<IoBackend>& info) {
  return BackendName(info.param);
}

}  // namespace keel::net::testing
