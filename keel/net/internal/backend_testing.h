#pragma once
// Test hooks of the backends (internal/backend.h): constructors that only
// tests call, to reach code paths the machine running the tests would not
// take on its own. Defined with their backend; not for production code.

#include <memory>
#include <string>

#include "keel/net/internal/backend.h"

namespace keel::net::internal {

// The io_uring backend with every 5.19+ feature turned off (single accept
// re-armed after each connection, per-op cancel, timeout-SQE waits, no
// COOP_TASKRUN/DEFER_TASKRUN ring flags), to exercise the pre-5.19 fallbacks
// on a new kernel. Defined in io/uring_backend.cc (built with liburing only).
std::unique_ptr<Backend> MakeUringBackendCompatForTest(unsigned entries, std::string* error);

}  // namespace keel::net::internal
