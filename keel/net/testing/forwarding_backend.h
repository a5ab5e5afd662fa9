#pragma once
// Test backends: ForwardingBackend (internal/backend_testing.h) to derive
// from, and a scope that installs one for a test. Test-only.

#include <utility>

#include "keel/net/internal/backend_testing.h"

namespace keel::net::testing {

using internal::ForwardingBackend;

// Installs a backend wrapper for the test's scope and clears the
// process-wide setting when it ends, even after a failed ASSERT.
struct BackendWrapperScope {
  explicit BackendWrapperScope(internal::BackendWrapper wrapper) {
    internal::SetBackendWrapperForTest(std::move(wrapper));
  }
  ~BackendWrapperScope() { internal::SetBackendWrapperForTest(nullptr); }
  BackendWrapperScope(const BackendWrapperScope&) = delete;
  BackendWrapperScope& operator=(const BackendWrapperScope&) = delete;
};

}  // namespace keel::net::testing
