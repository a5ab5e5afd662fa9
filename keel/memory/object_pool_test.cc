#include "keel/memory/object_pool.h"

#include <gtest/gtest.h>

#include <vector>

#include "keel/memory/stl_allocator.h"

namespace keel::memory {
namespace {

struct Widget {
  explicit Widget(int v) : value(v) {}
  int value;
};

TEST(ObjectPool, NewAndDeleteCountInThePool) {
  MemoryPool pool;
  ObjectPool<Widget> objects(pool);
  Widget* w = objects.New(7);
  EXPECT_EQ(w->value, 7);
  EXPECT_EQ(pool.Stats(MemoryPool::ClassOf(sizeof(Widget))).in_use, 1u);
  objects.Delete(w);
  EXPECT_EQ(pool.Stats(MemoryPool::ClassOf(sizeof(Widget))).in_use, 0u);
}

TEST(ObjectPool, MakeSharedUsesOnePoolBlock) {
  MemoryPool pool;
  ObjectPool<Widget> objects(pool);
  std::size_t in_use = 0;
  {
    auto sp = objects.MakeShared(3);
    EXPECT_EQ(sp->value, 3);
    for (std::size_t c = 0; c < MemoryPool::kClassCount; ++c) in_use += pool.Stats(c).in_use;
    EXPECT_EQ(in_use, 1u);
  }
  in_use = 0;
  for (std::size_t c = 0; c < MemoryPool::kClassCount; ++c) in_use += pool.Stats(c).in_use;
  EXPECT_EQ(in_use, 0u);
}

TEST(StlAllocator, BacksAStandardVector) {
  MemoryPool pool;
  std::vector<int, StlAllocator<int>> v{StlAllocator<int>(pool)};
  for (int i = 0; i < 100; ++i) v.push_back(i);
  EXPECT_EQ(v[99], 99);
  EXPECT_EQ(pool.Stats(MemoryPool::ClassOf(v.capacity() * sizeof(int))).in_use, 1u);
}

}  // namespace
}  // namespace keel::memory
