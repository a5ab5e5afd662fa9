#include "keel/core/thread_context.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace keel::core {
namespace {

std::atomic<uint32_t> g_next_id{1};

struct Context {
  uint32_t id = 0;
  uint32_t index = 0;
  std::string name;
  std::string group;
};

Context& Current() noexcept {
  thread_local Context ctx;
  if (ctx.id == 0) [[unlikely]] {
    ctx.id = g_next_id.fetch_add(1, std::memory_order_relaxed);
    internal::tls_thread_id = ctx.id;
    const bool is_main = ::syscall(SYS_gettid) == ::getpid();
    ctx.name = is_main ? "main" : "thread-" + std::to_string(ctx.id);
  }
  return ctx;
}

}  // namespace

namespace internal {
__attribute__((tls_model("initial-exec"))) constinit thread_local uint32_t tls_thread_id = 0;
uint32_t AssignThreadId() noexcept { return Current().id; }
}  // namespace internal

std::string_view ThisThread::Name() noexcept { return Current().name; }
std::string_view ThisThread::Group() noexcept { return Current().group; }
uint32_t ThisThread::IndexInGroup() noexcept { return Current().index; }
uint32_t ThisThread::IdsIssued() noexcept {
  return g_next_id.load(std::memory_order_relaxed) - 1;
}

void ThisThread::SetName(std::string name, std::string group, uint32_t index) {
  Context& ctx = Current();
  ctx.name = std::move(name);
  ctx.group = std::move(group);
  ctx.index = index;
  const std::string kernel_name = ctx.name.substr(0, 15);  // kernel limit: 16 with NUL
  ::pthread_setname_np(::pthread_self(), kernel_name.c_str());
}

}  // namespace keel::core
