#include "keel/net/service.h"

#include <atomic>
#include <cassert>
#include <mutex>
#include <vector>

#include "keel/core/log.h"
#include "keel/core/mutex.h"
#include "keel/core/thread_context.h"
#include "keel/core/thread_group.h"
#include "keel/net/internal/backend.h"
#include "keel/net/internal/backend_testing.h"
#include "keel/net/internal/net_counters.h"
#include "keel/net/internal/session_core.h"
#include "keel/net/io_loop.h"
#include "keel/net/listener.h"
#include "keel/net/socket_options.h"
#include "keel/net/wake_batch.h"

namespace keel::net {

namespace {
constexpr unsigned kUringEntries = 4096;

std::mutex& WrapperMu() {
  static std::mutex mu;
  return mu;
}
internal::BackendWrapper& Wrapper() {
  static internal::BackendWrapper w;
  return w;
}

// Creates one backend of the chosen kind; for kAuto, `*chosen` is resolved
// by the first call.
std::unique_ptr<internal::Backend> MakeBackend(IoBackend* chosen, std::string* error) {
  if (*chosen == IoBackend::kAuto) {
#ifdef KEEL_NET_HAVE_URING
    std::string reason;
    if (internal::UringSelfTest(&reason)) {
      *chosen = IoBackend::kUring;
    } else {
      KEEL_LOG_WARN("io_uring self-test failed ({}); using epoll", reason);
      *chosen = IoBackend::kEpoll;
    }
#else
    KEEL_LOG_INFO("io_uring backend not built into this Keel (liburing missing); using epoll");
    *chosen = IoBackend::kEpoll;
#endif
  }
  if (*chosen == IoBackend::kUring) {
#ifdef KEEL_NET_HAVE_URING
    return internal::MakeUringBackend(kUringEntries, error);
#else
    if (error) *error = "io_uring backend requested but not built into this Keel (liburing missing)";
    return nullptr;
#endif
  }
  return internal::MakeEpollBackend(error);
}
}  // namespace

struct Service::Impl {
  NetConfig config;
  SessionFactory factory;
  std::shared_ptr<internal::NetCounters> counters = std::make_shared<internal::NetCounters>();
  IoBackend chosen = IoBackend::kAuto;
  std::string_view backend_name = "none";
  std::vector<std::unique_ptr<IoLoop>> loops;
  std::unique_ptr<core::ThreadGroup> threads;
  // Stop clears `running` under this lock, so a Listen, StopAccepting or
  // Connect that holds it and sees `running` posts to live loops. It also
  // guards the listeners (freed after the loops: posted work may name them).
  mutable core::Mutex mu{"Service"};
  std::vector<std::unique_ptr<Listener>> listeners KEEL_GUARDED_BY(mu);
  uint32_t next_listener_id KEEL_GUARDED_BY(mu) = 0;
  std::atomic<bool> running{false};
  std::atomic<std::size_t> next_loop{0};
  bool stopped = false;
};

Service::Service(NetConfig config, SessionFactory factory) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->factory = std::move(factory);
  if (impl_->config.io_threads == 0) impl_->config.io_threads = 1;
  impl_->counters = std::make_shared<internal::NetCounters>(impl_->config.io_threads);
  if (impl_->config.max_gather == 0) impl_->config.max_gather = 1;
  impl_->chosen = impl_->config.backend;
}

Service::~Service() { Stop(); }

bool Service::Start(std::string* error) {
  Impl& m = *impl_;
  if (m.running.load() || m.stopped) {
    if (error) *error = "service already started";
    return false;
  }
  for (std::size_t i = 0; i < m.config.io_threads; ++i) {
    std::string err;
    auto backend = MakeBackend(&m.chosen, &err);
    if (!backend) {
      if (error) *error = err;
      m.loops.clear();
      return false;
    }
    m.backend_name = backend->name();
    {
      std::lock_guard<std::mutex> g(WrapperMu());
      if (Wrapper()) backend = Wrapper()(std::move(backend), static_cast<uint32_t>(i));
    }
    m.loops.push_back(std::make_unique<IoLoop>(static_cast<uint32_t>(i), m.config, std::move(backend), m.counters));
  }
  core::ThreadGroupOptions opts{.name = m.config.thread_name, .threads = static_cast<uint32_t>(m.config.io_threads)};
  for (int cpu : m.config.io_cpus) opts.cpus.push_back(static_cast<uint32_t>(cpu));
  try {
    m.threads = std::make_unique<core::ThreadGroup>(std::move(opts));
    m.threads->Start([this](std::stop_token) { impl_->loops[core::ThisThread::IndexInGroup()]->Run(); });
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    m.threads.reset();
    m.loops.clear();
    return false;
  }
  m.running.store(true);
  KEEL_LOG_INFO("net: {} io thread(s), backend {}", m.config.io_threads, m.backend_name);
  return true;
}

bool Service::Listen(const std::string& host, uint16_t port, std::string* error) {
  return Listen(host, port, error, nullptr);
}

bool Service::Listen(const std::string& host, uint16_t port, std::string* error, SessionFactory factory) {
  Impl& m = *impl_;
  std::vector<IoLoop*> loops;
  IoLoop* loop = nullptr;
  uint32_t id = 0;
  {
    core::MutexLock lock(m.mu);
    if (!m.running.load()) {
      if (error) *error = "service not running";
      return false;
    }
    for (auto& l : m.loops) loops.push_back(l.get());
    id = m.next_listener_id++;
    // Listeners are spread over the loops (each accepts on its own),
    // skipping failed ones: a listener there would never be armed.
    for (std::size_t i = 0; i < loops.size() && loop == nullptr; ++i) {
      IoLoop* l = loops[(id + i) % loops.size()];
      if (!l->failed()) loop = l;
    }
  }
  if (loop == nullptr) {
    if (error) *error = "every IO loop has failed";
    return false;
  }
  // Bound outside the lock (it may resolve a name); touches no loop.
  auto listener =
      std::make_unique<Listener>(id, loop, loops, factory ? std::move(factory) : m.factory, m.counters);
  if (!listener->Bind(host, port, m.config.listen_backlog, error)) return false;
  const uint16_t bound = listener->port();
  {
    core::MutexLock lock(m.mu);
    if (!m.running.load()) {  // Stop ran meanwhile: the loops may be gone
      if (error) *error = "service stopped";
      return false;  // the listener closes its socket
    }
    Listener* raw = listener.get();
    m.listeners.push_back(std::move(listener));
    loop->PostLoopWork([loop, raw] {
      if (loop->stopping()) {
        raw->StopOnLoop();  // never attached: closes its socket
        return;
      }
      loop->AttachListenerOnLoop(raw);
      raw->ArmOnLoop();
    });
  }
  KEEL_LOG_INFO("net: listening on {}:{}", host, bound);
  return true;
}

uint16_t Service::port(std::size_t listener) const {
  core::MutexLock lock(impl_->mu);
  return listener < impl_->listeners.size() ? impl_->listeners[listener]->port() : 0;
}

std::size_t Service::listeners() const {
  core::MutexLock lock(impl_->mu);
  return impl_->listeners.size();
}

SessionRef Service::Connect(const std::string& host, uint16_t port) {
  Impl& m = *impl_;
  if (!m.running.load()) return nullptr;
  SessionRef s = m.factory();
  if (!s) return nullptr;
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string err;
  if (!ResolveAddress(host, port, &addr, &len, &err)) {  // outside the lock: may block
    KEEL_LOG_WARN("connect: {}", err);
    len = 0;  // ConnectOnLoop reports kConnectFailed
  }
  core::MutexLock lock(m.mu);  // the loops stay until Stop, which needs it
  if (!m.running.load()) return nullptr;
  IoLoop* loop = nullptr;
  for (std::size_t tries = 0; tries < m.loops.size(); ++tries) {
    IoLoop* l = m.loops[m.next_loop.fetch_add(1, std::memory_order_relaxed) % m.loops.size()].get();
    if (!l->failed()) {
      loop = l;
      break;
    }
  }
  if (loop == nullptr) return nullptr;  // every loop failed
  s->peer_ = host + ":" + std::to_string(port);
  s->loop_ = loop;
  loop->PostLoopWork([loop, s, addr, len] { loop->ConnectOnLoop(s, addr, len); });
  return s;
}

void Service::StopAccepting() {
  Impl& m = *impl_;
  core::MutexLock lock(m.mu);
  if (!m.running.load()) return;
  for (auto& l : m.listeners) {
    Listener* raw = l.get();
    raw->loop()->PostLoopWork([raw] { raw->StopOnLoop(); });
  }
}

void Service::Stop() {
  Impl& m = *impl_;
  {
    core::MutexLock lock(m.mu);  // see Impl::mu
    if (!m.running.exchange(false)) return;
  }
  // A batch would hold pointers to the loops freed below (wake_batch.h).
  assert(!WakeBatch::Active() && "Service::Stop inside a WakeBatch");
  m.stopped = true;
  for (auto& loop : m.loops) loop->Shutdown();
  try {
    m.threads->Join();
  } catch (const std::exception& e) {
    KEEL_LOG_ERROR("net: io thread failed: {}", e.what());
  }
  m.threads.reset();
  m.loops.clear();  // drains late posted work, which may still name a listener
  {
    core::MutexLock lock(m.mu);
    m.listeners.clear();
  }
  KEEL_LOG_INFO("net: stopped");
}

NetStats Service::stats() const noexcept {
  NetStats s = impl_->counters->Snapshot();
  s.backend = impl_->backend_name;
  return s;
}

// Acquire: pairs with the release at the end of IoLoop::FailOnLoop.
bool Service::Failed() const noexcept {
  return impl_->counters->loops_failed.load(std::memory_order_acquire) > 0;
}

IoBackend Service::backend() const noexcept { return impl_->chosen; }
const NetConfig& Service::config() const noexcept { return impl_->config; }

namespace internal {
void SetBackendWrapperForTest(BackendWrapper wrapper) {
  std::lock_guard<std::mutex> g(WrapperMu());
  Wrapper() = std::move(wrapper);
}
}  // namespace internal

}  // namespace keel::net
