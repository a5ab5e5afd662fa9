// WithFaultForTest (internal/backend_testing.h): a forwarding Backend whose
// failure a test triggers, to exercise IoLoop's handling of a fatal backend
// error (ADR 0011) without breaking a real ring or epoll fd.
#include <utility>

#include "keel/net/internal/backend_testing.h"

namespace keel::net::internal {
namespace {

class FaultBackend final : public ForwardingBackend {
 public:
  FaultBackend(std::unique_ptr<Backend> inner, std::shared_ptr<BackendFault> fault)
      : ForwardingBackend(std::move(inner)), fault_(std::move(fault)) {
    fault_->backend.store(this, std::memory_order_release);
  }
  ~FaultBackend() override { fault_->backend.store(nullptr, std::memory_order_release); }

  std::size_t Wait(std::span<Completion> out, int timeout_ms) override {
    if (fault_->error.load(std::memory_order_acquire) != 0) return 0;
    return ForwardingBackend::Wait(out, timeout_ms);
  }
  int error() const noexcept override {
    const int e = fault_->error.load(std::memory_order_acquire);
    return e != 0 ? e : ForwardingBackend::error();
  }

 private:
  std::shared_ptr<BackendFault> fault_;
};

}  // namespace

std::unique_ptr<Backend> WithFaultForTest(std::unique_ptr<Backend> inner, std::shared_ptr<BackendFault> fault) {
  return std::make_unique<FaultBackend>(std::move(inner), std::move(fault));
}

}  // namespace keel::net::internal
