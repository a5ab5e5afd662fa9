#pragma once
// Test hooks of the backends (internal/backend.h): constructors that only
// tests call, to reach code paths the machine running the tests would not
// take on its own. Defined with their backend; not for production code.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "keel/net/internal/backend.h"

namespace keel::net::internal {

// A Backend that forwards every call to `inner`: test wrappers derive from
// it to watch or disturb one call (the fault wrapper below, and the test
// backends installed with SetBackendWrapperForTest).
class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  std::string_view name() const noexcept override { return inner_->name(); }
  void Accept(int listen_fd, uint64_t user_data) override { inner_->Accept(listen_fd, user_data); }
  void Connect(int fd, const sockaddr* addr, socklen_t len, uint64_t user_data) override {
    inner_->Connect(fd, addr, len, user_data);
  }
  void Recv(int fd, uint8_t* buf, std::size_t len, uint64_t user_data) override {
    inner_->Recv(fd, buf, len, user_data);
  }
  void Send(int fd, const iovec* iov, int iovcnt, uint64_t user_data) override {
    inner_->Send(fd, iov, iovcnt, user_data);
  }
  void Cancel(int fd) override { inner_->Cancel(fd); }
  std::size_t Wait(std::span<Completion> out, int timeout_ms) override { return inner_->Wait(out, timeout_ms); }
  int error() const noexcept override { return inner_->error(); }
  void Wake() noexcept override { inner_->Wake(); }

 private:
  std::unique_ptr<Backend> inner_;
};

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
