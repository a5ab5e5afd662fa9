#pragma once
// Listener: a listening socket and its multishot accept on one IoLoop.
// Accepted sockets are handed to the Service's loops round-robin, each to
// become a session made by the factory.
//
// Limits: over max_sessions an accepted socket is closed at once (counted as
// sessions_refused and as a kTooManySessions disconnect). When the process
// runs out of fds (EMFILE/ENFILE, or a new fd inside the fd_reserve)
// accepting pauses for accept_pause_ms and then resumes: it never spins.
//
// Threads: created and bound by Service on the caller's thread (so errors
// and the port come back synchronously); from Arm on, used only on its loop.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "keel/net/internal/backend.h"
#include "keel/net/internal/net_counters.h"
#include "keel/net/net_config.h"
#include "keel/net/session.h"

namespace keel::net {

class IoLoop;

class Listener {
 public:
  using Factory = std::function<SessionRef()>;

  // `id` tells this listener's accepts apart on its loop (unique per Service).
  Listener(uint32_t id, IoLoop* loop, std::vector<IoLoop*> loops, Factory factory,
           std::shared_ptr<internal::NetCounters> counters);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Caller's thread, before the loop uses it.
  bool Bind(const std::string& host, uint16_t port, int backlog, std::string* error);
  uint16_t port() const noexcept { return port_; }
  uint32_t id() const noexcept { return id_; }
  IoLoop* loop() const noexcept { return loop_; }

  // Loop only.
  void ArmOnLoop();
  void OnAcceptOnLoop(const internal::Completion& c);
  void StopOnLoop();
  // The loop's backend failed: the armed accept will never complete. Stop
  // without touching the backend. The socket stops listening at once (new
  // connections are refused instead of waiting in a backlog nobody
  // accepts); the destructor closes it.
  void AbandonOnLoop();

 private:
  static SessionRef NewSession(IoLoop* loop, const Factory& factory);
  void HandOff(int fd);
  void PauseOnLoop(const char* why);
  void CloseIfDoneOnLoop();

  const uint32_t id_;
  IoLoop* const loop_;
  const std::vector<IoLoop*> loops_;
  const Factory factory_;
  const std::shared_ptr<internal::NetCounters> counters_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::size_t next_loop_ = 0;
  uint64_t fd_limit_ = 0;  // RLIMIT_NOFILE soft limit, refreshed on each pause
  bool armed_ = false;     // an accept is pending in the backend
  bool pausing_ = false;   // cancelled to pause; resume by timer
  bool stopped_ = false;
  bool paused_before_ = false;  // the last accept attempt paused (log once per streak)
};

}  // namespace keel::net
