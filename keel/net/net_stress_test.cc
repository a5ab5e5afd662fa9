// Long runs of the net tests' nastiest cases (label: stress).
#include "keel/net/service.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "keel/net/testing/net_fixture.h"

namespace keel::net::testing {
namespace {

// 10,000 cycles of FIN, RST, half-close, close during a pending read and RST
// during a large send, spread over 4 client threads.
TEST_P(NetTest, TenThousandChurnCyclesLeaveFdsAndGaugesAtStart) {
  StartServer<EchoSession>();
  const int fds_before = CountOpenFds();
  constexpr int kThreads = 4;
  constexpr int kCycles = 10000;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kCycles; i += kThreads) {
        const int fd = ConnectClient(port_);
        if (fd < 0) {
          failures.fetch_add(1);
          continue;
        }
        char buf[4] = {'p', 'i', 'n', 'g'};
        switch (i % 5) {
          case 1: {
            linger lg{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
          }
          case 2:
            if (!SendAll(fd, buf, 4)) failures.fetch_add(1);
            ::shutdown(fd, SHUT_WR);
            if (!RecvAll(fd, buf, 4)) failures.fetch_add(1);
            break;
          case 3:
            if (!SendAll(fd, buf, 4) || !RecvAll(fd, buf, 4)) failures.fetch_add(1);
            break;
          case 4: {
            std::vector<uint8_t> big(128 * 1024, 1);
            if (!SendAll(fd, big.data(), big.size())) failures.fetch_add(1);
            linger lg{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
          }
          default: break;
        }
        ::close(fd);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  // Every connection must have been accepted and finished, not only the ones
  // accepted so far: the last clients' connections may still sit in the
  // listen backlog when the threads are joined (sessions_open is 0 then too).
  EXPECT_TRUE(WaitFor([&] {
    const NetStats s = server_->stats();
    return s.sessions_accepted == static_cast<uint64_t>(kCycles) &&
           log_.disconnected.load() == kCycles && s.sessions_open == 0 && s.queued_bytes == 0 &&
           CountOpenFds() == fds_before;
  }, std::chrono::seconds(30)));
  EXPECT_EQ(server_->stats().sessions_accepted, static_cast<uint64_t>(kCycles));
  EXPECT_EQ(log_.disconnected.load(), kCycles);
  EXPECT_EQ(CountOpenFds(), fds_before);
}

INSTANTIATE_TEST_SUITE_P(Backends, NetTest, ::testing::ValuesIn(TestBackends()), ParamName);

}  // namespace
}  // namespace keel::net::testing
