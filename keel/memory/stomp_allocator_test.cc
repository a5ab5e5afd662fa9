#include "keel/memory/stomp_allocator.h"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <csignal>
#include <cstring>

namespace keel::memory {
namespace {

// A plain build dies by SIGSEGV with no message; sanitizer builds catch the
// SEGV, print a report and exit non-zero. Accept both, never a clean exit.
bool Faulted(int status) {
  // ASAN_OPTIONS=abort_on_error=1 (the asan preset) turns the report into SIGABRT.
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) != 0;
}
constexpr const char* kFault = "|SEGV|Segmentation|AddressSanitizer|ThreadSanitizer";

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
