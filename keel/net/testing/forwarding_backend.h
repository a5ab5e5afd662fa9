#pragma once
// A Backend that forwards every call to the real one: tests derive from it
// to watch or disturb one call (installed with SetBackendWrapperForTest).
// Test-only.

#include <memory>
#include <utility>
#include <span>
#include <string_view>

#include "keel/net/internal/backend.h"
#include "keel/net/internal/backend_testing.h"

namespace keel::net::testing {

class ForwardingBackend : public internal::Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<internal::Backend> inner) : inner_(std::move(inner)) {}

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
  std::size_t Wait(std::span<internal::Completion> out, int timeout_ms) override {
    return inner_->Wait(out, timeout_ms);
  }
  int error() const noexcept override { return inner_->error(); }
  void Wake() noexcept override { inner_->Wake(); }

 private:
  std::unique_ptr<internal::Backend> inner_;
};

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
