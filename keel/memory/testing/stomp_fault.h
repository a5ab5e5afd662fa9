#pragma once
// Test helpers for StompAllocator death tests: what counts as "the bad access
// faulted". A plain build dies by SIGSEGV with no message; sanitizer builds
// catch the SEGV, print a report and exit non-zero (ASAN_OPTIONS=
// abort_on_error=1, as in the asan preset, turns the report into SIGABRT).
// Accept those, never a clean exit.

#include <sys/wait.h>

#include <csignal>

namespace keel::memory::testing {

inline bool Faulted(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) != 0;
}

// Matcher for EXPECT_EXIT's stderr: empty (plain build) or a sanitizer report.
inline constexpr const char* kFault = "|SEGV|Segmentation|AddressSanitizer|ThreadSanitizer";

}  // namespace keel::memory::testing
