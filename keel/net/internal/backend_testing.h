#pragma once
// Test hooks of the backends (internal/backend.h): constructors that only
// tests call, to reach code paths the machine running the tests would not
// take on its own. Defined with their backend; not for production code.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "keel/net/internal/backend.h"

namespace keel::net::internal {

// The io_uring backend with every 5.19+ feature turned off (single accept
// re-armed after each connection, per-op cancel, timeout-SQE waits, no
// COOP_TASKRUN/DEFER_TASKRUN ring flags), to exercise the pre-5.19 fallbacks
// on a new kernel. Defined in io/uring_backend_setup.cc (built with liburing only).
std::unique_ptr<Backend> MakeUringBackendCompatForTest(unsigned entries, std::string* error);

// Fault injection: a Backend that forwards to `inner` until `fault->Fail(err)`
// (any thread), after which its Wait returns 0 and error() returns err, as a
// real backend does after a fatal io_uring_enter/epoll_wait error. The inner
// backend's operations stay pending until the wrapper is destroyed.
struct BackendFault {
  std::atomic<int> error{0};
  std::atomic<Backend*> backend{nullptr};  // the wrapper, set when wrapping
  void Fail(int err) noexcept {
    error.store(err, std::memory_order_release);
    if (Backend* b = backend.load(std::memory_order_acquire)) b->Wake();
  }
};
std::unique_ptr<Backend> WithFaultForTest(std::unique_ptr<Backend> inner, std::shared_ptr<BackendFault> fault);

// Service::Start passes each backend it makes through `wrapper` (loop index
// given) while one is set; pass nullptr to clear. Process-wide.
using BackendWrapper = std::function<std::unique_ptr<Backend>(std::unique_ptr<Backend>, uint32_t loop)>;
void SetBackendWrapperForTest(BackendWrapper wrapper);

}  // namespace keel::net::internal
