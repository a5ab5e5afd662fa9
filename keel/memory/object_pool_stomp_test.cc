// Built with KEEL_STOMP=1 (see CMakeLists.txt): ObjectPool and MemoryPool
// blocks come from StompAllocator, so misuse faults at the bad access.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "keel/memory/object_pool.h"
#include "keel/memory/testing/stomp_fault.h"

namespace keel::memory {
namespace {

static_assert(KEEL_STOMP == 1, "this test must be compiled with KEEL_STOMP=1");

struct Widget {
  std::uint64_t value = 7;
  char name[40] = {};
};

using keel::memory::testing::Faulted;
using keel::memory::testing::kFault;

TEST(StompBuild, ObjectPoolStillWorksAndCounts) {
  MemoryPool pool;
  ObjectPool<Widget> objects(pool);
  Widget* w = objects.New();
  EXPECT_EQ(w->value, 7u);
  EXPECT_EQ(pool.Stats(MemoryPool::ClassOf(sizeof(Widget))).in_use, 1u);
  auto shared = objects.MakeShared();
  EXPECT_EQ(shared->value, 7u);
  objects.Delete(w);
  shared.reset();
  EXPECT_EQ(pool.Stats(MemoryPool::ClassOf(sizeof(Widget))).in_use, 0u);
}

// Each block ends against its guard page: the byte after the object faults.
TEST(StompBuild, PooledObjectEndsAgainstAGuardPage) {
  MemoryPool pool;
  auto* p = static_cast<char*>(pool.Allocate(sizeof(Widget)));
  const auto end = reinterpret_cast<std::uintptr_t>(p) + sizeof(Widget);
  EXPECT_EQ(end % 4096u, 0u);
  pool.Deallocate(p, sizeof(Widget));
}

TEST(StompBuildDeathTest, UseAfterFreeThroughObjectPoolFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ObjectPool<Widget> objects;
        Widget* w = objects.New();
        objects.Delete(w);
        static_cast<volatile std::uint64_t&>(w->value) = 1;
      },
      Faulted, kFault);
}

TEST(StompBuildDeathTest, OverflowPastAnObjectPoolObjectFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ObjectPool<Widget> objects;
        Widget* w = objects.New();
        reinterpret_cast<volatile char*>(w)[sizeof(Widget)] = 1;
      },
      Faulted, kFault);
}

}  // namespace
}  // namespace keel::memory
