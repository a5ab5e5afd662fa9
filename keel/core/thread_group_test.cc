#include "keel/core/thread_group.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>

#include "keel/core/pool_sizing.h"
#include "keel/core/thread_context.h"

namespace keel::core {
namespace {

TEST(ThreadGroup, NamesItsThreadsAfterTheGroup) {
  ThreadGroup group({.name = "logic", .threads = 3});
  std::mutex mu;
  std::set<std::string> names;
  std::set<uint32_t> indexes;
  group.Start([&](std::stop_token) {
    std::lock_guard lock(mu);
    names.emplace(ThisThread::Name());
    indexes.insert(ThisThread::IndexInGroup());
    EXPECT_EQ(ThisThread::Group(), "logic");
  });
  group.Join();
  EXPECT_EQ(names, (std::set<std::string>{"logic-0", "logic-1", "logic-2"}));
  EXPECT_EQ(indexes, (std::set<uint32_t>{0, 1, 2}));
}

TEST(ThreadGroup, StopRequestReachesEveryBody) {
  ThreadGroup group({.name = "io", .threads = 2});
  std::atomic<int> stopped{0};
  group.Start([&](std::stop_token stop) {
    while (!stop.stop_requested()) std::this_thread::yield();
    ++stopped;
  });
  group.RequestStop();
  group.Join();
  EXPECT_EQ(stopped, 2);
  EXPECT_EQ(group.Running(), 0u);
}

TEST(ThreadGroup, JoinRethrowsNamingTheFailingThread) {
  ThreadGroup group({.name = "db", .threads = 3});
  group.Start([](std::stop_token) {
    if (ThisThread::IndexInGroup() == 1) throw std::runtime_error("connection refused");
  });
  try {
    group.Join();
    FAIL() << "Join did not throw";
  } catch (const ThreadGroupError& e) {
    ASSERT_EQ(e.failures().size(), 1u);
    EXPECT_EQ(e.failures()[0].thread, "db-1");
    EXPECT_EQ(e.failures()[0].what, "connection refused");
    EXPECT_NE(std::string(e.what()).find("[db-1] connection refused"), std::string::npos) << e.what();
  }
}

TEST(ThreadGroup, DestructorStopsAndJoinsWithoutThrowing) {
  std::atomic<int> exited{0};
  {
    ThreadGroup group({.name = "bots", .threads = 2});
    group.Start([&](std::stop_token stop) {
      while (!stop.stop_requested()) std::this_thread::yield();
      ++exited;
      throw std::runtime_error("late failure");
    });
  }
  EXPECT_EQ(exited, 2);
}

TEST(ThreadGroup, PinsThreadsToTheGivenCpus) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  uint32_t first_cpu = 0;
  while (!CPU_ISSET(first_cpu, &allowed)) ++first_cpu;
  ThreadGroup group({.name = "pinned", .threads = 2, .cpus = {first_cpu}});
  std::atomic<int> on_cpu{0};
  group.Start([&](std::stop_token) {
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof(mine), &mine) == 0 && CPU_COUNT(&mine) == 1 &&
        CPU_ISSET(first_cpu, &mine)) {
      ++on_cpu;
    }
  });
  group.Join();
  EXPECT_EQ(on_cpu, 2);
}

TEST(ThreadGroup, RejectsBadOptions) {
  EXPECT_THROW(ThreadGroup({.name = "", .threads = 1}), std::invalid_argument);
  EXPECT_THROW(ThreadGroup({.name = "x", .threads = 0}), std::invalid_argument);
  EXPECT_THROW(ThreadGroup({.name = "x", .threads = 1, .cpus = {CPU_SETSIZE + 1u}}),
               std::invalid_argument);
}

TEST(ThreadGroup, RefusesToStartTwice) {
  ThreadGroup group({.name = "once", .threads = 1});
  group.Start([](std::stop_token) {});
  EXPECT_THROW(group.Start([](std::stop_token) {}), std::logic_error);
  group.Join();
}

}  // namespace
}  // namespace keel::core
