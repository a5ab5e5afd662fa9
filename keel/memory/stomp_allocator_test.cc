#include "keel/memory/stomp_allocator.h"

#include <gtest/gtest.h>

#include <cstring>

#include "keel/memory/testing/stomp_fault.h"

namespace keel::memory {
namespace {

using keel::memory::testing::Faulted;
using keel::memory::testing::kFault;

TEST(StompAllocator, AllocationIsUsable) {
  auto* p = static_cast<char*>(StompAllocator::Allocate(100));
  std::memset(p, 1, 100);
  StompAllocator::Deallocate(p, 100);
}

TEST(StompAllocatorDeathTest, OverflowFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        auto* p = static_cast<volatile char*>(StompAllocator::Allocate(64));
        p[64] = 1;
      },
      Faulted, kFault);
}

TEST(StompAllocatorDeathTest, UseAfterFreeFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        auto* p = static_cast<volatile char*>(StompAllocator::Allocate(64));
        StompAllocator::Deallocate(const_cast<char*>(p), 64);
        p[0] = 1;
      },
      Faulted, kFault);
}

}  // namespace
}  // namespace keel::memory
