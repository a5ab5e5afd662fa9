#include "keel/core/thread_context.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace keel::core {
namespace {

TEST(ThisThread, MainThreadIsNamedMain) { EXPECT_EQ(ThisThread::Name(), "main"); }

TEST(ThisThread, IdsAreDistinctAndStable) {
  const uint32_t mine = ThisThread::Id();
  EXPECT_EQ(ThisThread::Id(), mine);
  std::vector<uint32_t> ids(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); ++i) threads.emplace_back([&, i] { ids[i] = ThisThread::Id(); });
  for (auto& t : threads) t.join();
  std::set<uint32_t> unique(ids.begin(), ids.end());
  unique.insert(mine);
  EXPECT_EQ(unique.size(), ids.size() + 1);
  for (uint32_t id : unique) EXPECT_LE(id, ThisThread::IdsIssued());
}

TEST(ThisThread, UnnamedThreadsAreNamedById) {
  std::thread([] {
    EXPECT_EQ(ThisThread::Name(), "thread-" + std::to_string(ThisThread::Id()));
    EXPECT_EQ(ThisThread::Group(), "");
  }).join();
}

TEST(ThisThread, SetNameReachesTheKernel) {
  std::thread([] {
    ThisThread::SetName("dungeon-worker-12", "dungeon", 12);
    EXPECT_EQ(ThisThread::Name(), "dungeon-worker-12");
    EXPECT_EQ(ThisThread::Group(), "dungeon");
    EXPECT_EQ(ThisThread::IndexInGroup(), 12u);
    char kernel_name[16] = {};
    ASSERT_EQ(pthread_getname_np(pthread_self(), kernel_name, sizeof(kernel_name)), 0);
    EXPECT_STREQ(kernel_name, "dungeon-worker-");  // truncated to 15 bytes
  }).join();
}

}  // namespace
}  // namespace keel::core
