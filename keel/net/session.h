#pragma once
// Session: one TCP connection, proactor style. The application derives from
// Session and overrides the hooks; the engine calls them on the session's IO
// thread, one at a time, never concurrently:
//
//   OnConnected()                 once, before any other hook
//   OnRecv(bytes) -> consumed     bytes received and not yet consumed; return
//                                 how many were used (the rest stay in the
//                                 RecvBuffer and are offered again, with more,
//                                 after the next read)
//   OnSend(bytes)                 a gathered write of `bytes` completed
//   OnDisconnected(reason)        once, last; no hook runs after it
//
// Send() and Disconnect() may be called from any thread, any number of
// times. Send queues a reference to the buffer (no copy); at most one write
// is in flight per session, gathering everything queued (up to max_gather
// buffers). Disconnect is idempotent: the first reason wins.
//
// Lifetime: sessions are reference counted (SessionRef). The engine holds a
// reference while the session is registered on its loop and one per
// operation in flight; after OnDisconnected and the last completion it drops
// them, so a session the application no longer references is then freed.
// Holding a SessionRef after the disconnect is safe: Send() does nothing.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "keel/net/disconnect_reason.h"
#include "keel/net/ref_ptr.h"
#include "keel/net/send_buffer.h"

namespace keel::net {

class IoLoop;
class Service;
namespace internal {
struct SessionCore;
}

class Session : public RefCounted {
 public:
  Session();
  ~Session() override;

  // Queues `buf` for sending. Returns false if the session is closed or
  // closing (the buffer is not queued), or if queuing it went over the hard
  // limit (the session is then disconnected with kSlowConsumer).
  bool Send(SendBufferRef buf);
  // Copies `bytes` into a pooled SendBuffer and queues it.
  bool Send(std::span<const uint8_t> bytes);
  // Bytes this session received, as a SendBuffer, without a copy: call it
  // from OnRecv with a piece of the span OnRecv was given. From
  // NetConfig::recv_share_min bytes on, the buffer points into the receive
  // buffer, and no later read lands on those bytes while it lives
  // (RecvBuffer::Share). Smaller pieces, bytes that are not in the receive
  // buffer, and calls from any other thread get a copy. The buffer may be
  // queued on any session (a relay).
  SendBufferRef ShareReceived(std::span<const uint8_t> bytes);
  // Send(ShareReceived(bytes)): an echo without a copy.
  bool SendReceived(std::span<const uint8_t> bytes);

  // Ends the session: pending reads are cancelled, queued bytes not yet
  // written are dropped, the socket is closed, OnDisconnected(reason) runs on
  // the IO thread. Idempotent, any thread.
  void Disconnect(DisconnectReason reason = DisconnectReason::kLocalClose);

  // Ends the session after everything queued so far has been written (a
  // goodbye notice, a kick reason), or after `timeout_ms` at most; new Sends
  // are refused from now on. Any thread.
  void DisconnectAfterFlush(DisconnectReason reason, uint32_t timeout_ms = 1000);

  // Kick with a last word (a slow consumer's "you are too slow"): drops every
  // queued buffer not yet handed to the kernel, queues `notice`, and ends the
  // session once the notice is written, or after `timeout_ms` at most. New
  // Sends are refused from now on. Any thread.
  //
  // Whole buffers only: the write in flight completes first; of its buffers,
  // one the kernel has written in part is finished (never cut), the ones it
  // has not touched are dropped. So the peer reads a prefix of what was
  // queued that ends on a SendBuffer boundary, then `notice`, then EOF. A
  // protocol frame must therefore be one SendBuffer (or the notice may follow
  // half a frame). Dropped bytes are counted in NetStats::notice_dropped_bytes.
  //
  // Returns false (and queues nothing) when the session is already closing
  // or closed, or has no loop yet.
  bool DisconnectWithNotice(SendBufferRef notice, DisconnectReason reason, uint32_t timeout_ms = 1000);

  bool IsConnected() const noexcept;
  uint64_t id() const noexcept { return id_; }                // unique per process, never reused
  const std::string& peer() const noexcept { return peer_; }  // "127.0.0.1:53412"
  std::size_t QueuedBytes() const noexcept;                   // queued, not yet written
  IoLoop* loop() const noexcept { return loop_; }

 protected:
  virtual void OnConnected() {}
  virtual std::size_t OnRecv(std::span<const uint8_t> bytes) = 0;
  virtual void OnSend(std::size_t /*bytes*/) {}
  virtual void OnDisconnected(DisconnectReason /*reason*/) {}

 private:
  friend class IoLoop;
  friend class Service;
  friend struct internal::SessionCore;

  uint64_t id_ = 0;
  std::string peer_;
  IoLoop* loop_ = nullptr;
  internal::SessionCore* core_ = nullptr;  // engine state: socket, queues, buffers
};

using SessionRef = RefPtr<Session>;

}  // namespace keel::net
