// WithFaultForTest (internal/backend_testing.h): a forwarding Backend whose
// failure a test triggers, to exercise IoLoop's handling of a fatal backend
// error (ADR 0011) without breaking a real ring or epoll fd.
#include <utility>

#include "keel/net/internal/backend_testing.h"

namespace keel::net::internal {
namespace {

class FaultBackend final : public Backend {
 public:
  FaultBackend(std::unique_ptr<Backend> inner, std::shared_ptr<BackendFault> fault)
      : inner_(std::move(inner)), fault_(std::move(fault)) {
    fault_->backend.store(this, std::memory_order_release);
  }
  ~FaultBackend() override { fault_->backend.store(nullptr, std::memory_order_release); }

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
  std::size_t Wait(std::span<Completion> out, int timeout_ms) override {
    if (fault_->error.load(std::memory_order_acquire) != 0) return 0;
    return inner_->Wait(out, timeout_ms);
  }
  int error() const noexcept override {
    const int e = fault_->error.load(std::memory_order_acquire);
    return e != 0 ? e : inner_->error();
  }
  void Wake() noexcept override { inner_->Wake(); }

 private:
  std::unique_ptr<Backend> inner_;
  std::shared_ptr<BackendFault> fault_;
};

}  // namespace

std::unique_ptr<Backend> WithFaultForTest(std::unique_ptr<Backend> inner, std::shared_ptr<BackendFault> fault) {
  return std::make_unique<FaultBackend>(std::move(inner), std::move(fault));
}

}  // namespace keel::net::internal
