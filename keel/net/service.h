#pragma once
// Service: a set of IO threads (one IoLoop each) and the sessions on them,
// server side (Listen), client side (Connect), or both.
//
//   keel::net::NetConfig cfg;             // limits, backend, threads
//   keel::net::Service svc(cfg, [] { return keel::net::MakeRef<EchoSession>(); });
//   std::string err;
//   if (!svc.Start(&err) || !svc.Listen("127.0.0.1", 0, &err)) { ...err... }
//   uint16_t port = svc.port();           // the bound port (0 asked: chosen)
//   ...
//   svc.Stop();                           // close everything, wait, free
//
// Sessions are spread over the loops round-robin. Stop() stops accepting,
// disconnects every session with kServerShutdown, waits for every operation
// in flight to complete (cancellation included), runs every
// OnDisconnected, and joins the threads; after it no hook runs. The
// destructor calls Stop().

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "keel/net/net_config.h"
#include "keel/net/net_stats.h"
#include "keel/net/session.h"

namespace keel::net {

using SessionFactory = std::function<SessionRef()>;

class Service {
 public:
  Service(NetConfig config, SessionFactory factory);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Picks the backend (auto: io_uring self-test, else epoll with the reason
  // logged) and starts the IO threads. False with `*error` set on failure.
  bool Start(std::string* error);

  // Binds and listens on host:port (SO_REUSEADDR; port 0 picks one).
  // May be called again for more ports (a game port and an admin port, IPv4
  // and IPv6): each listener accepts on its own loop (spread round-robin),
  // and its sessions are made by `factory`, or by the Service's factory when
  // none is given. Every listener shares the Service's loops and limits
  // (max_sessions counts them all). Listeners are numbered in the order
  // their Listen succeeded. Any thread; false after Stop.
  bool Listen(const std::string& host, uint16_t port, std::string* error);
  bool Listen(const std::string& host, uint16_t port, std::string* error, SessionFactory factory);
  // The bound port of listener `listener` (0 asked: the one chosen); 0 if
  // there is no such listener.
  uint16_t port(std::size_t listener = 0) const;
  std::size_t listeners() const;

  // Client side: connects asynchronously; the new session gets OnConnected,
  // or OnDisconnected(kConnectFailed / kConnectTimeout). Returns the session
  // (null only if the service is not running).
  SessionRef Connect(const std::string& host, uint16_t port);

  // Stops accepting new connections on every listener; existing sessions
  // continue.
  void StopAccepting();
  // See the banner. Idempotent.
  void Stop();

  // True once any IO loop has failed (its backend hit a fatal error; its
  // sessions were disconnected with kIoError and it stopped). The other
  // loops keep running; the program decides (ADR 0011): typically log, stop
  // and exit non-zero, or restart the Service.
  bool Failed() const noexcept;

  NetStats stats() const noexcept;
  IoBackend backend() const noexcept;  // the one chosen by Start
  const NetConfig& config() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::net
