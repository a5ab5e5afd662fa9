#pragma once
// PacketSession: a net::Session that speaks Keel frames. It runs a
// PacketFramer over the received bytes and hands each whole frame to
// OnFrame() (a program forwards it to its generated <Proto>Handler::Dispatch).
// Any rejection, by the framer or by OnFrame, closes the session with
// DisconnectReason::kProtocolError; the named RejectReason is logged, counted
// in ProtoStats and kept (reject_reason()).
//
// Threads: OnFrame runs on the session's IO thread (net::Session hooks).
// SetState may be called from any thread: from a handler on the IO thread it
// applies to the very next frame of the same read; from elsewhere, from the
// next read on. Send(message) may be called from any thread: it serializes
// the message once into a pooled SendBuffer (BuildFrame) and queues it.

#include <atomic>
#include <concepts>
#include <cstdint>
#include <span>

#include <google/protobuf/message_lite.h>

#include "keel/net/send_buffer.h"
#include "keel/net/session.h"
#include "keel/proto/message_codec.h"
#include "keel/proto/packet_framer.h"

namespace keel::proto {

// Serializes `msg` once into a pooled buffer that can be sent to many
// sessions (a room's broadcast).
template <std::derived_from<google::protobuf::MessageLite> Message>
net::SendBufferRef BuildSendBuffer(const Message& msg) {
  return BuildFrame(msg, [](size_t n) { return net::SendBuffer::Allocate(n); });
}

class PacketSession : public net::Session {
 public:
  // `table` and `stats` (may be null) must outlive the session.
  PacketSession(const ProtocolTable& table, FramerLimits limits, ProtoStats* stats);

  using net::Session::Send;
  template <std::derived_from<google::protobuf::MessageLite> Message>
  bool Send(const Message& msg) {
    return net::Session::Send(BuildSendBuffer(msg));
  }

  // The state bit (which ids the peer may send) and, if non-zero, the max
  // frame size from now on. Any thread.
  void SetState(uint8_t state, uint16_t max_frame = 0) noexcept;
  uint8_t state() const noexcept { return state_.load(std::memory_order_relaxed); }
  // Why the packet layer closed the session (kNone if it did not).
  RejectReason reject_reason() const noexcept { return reject_.load(std::memory_order_relaxed); }

 protected:
  // One whole frame; return kNone to go on, any other reason to close.
  virtual RejectReason OnFrame(const Frame& frame) = 0;
  // The session is being closed for `reason` (already logged and counted).
  virtual void OnRejected(RejectReason /*reason*/) {}

  std::size_t OnRecv(std::span<const uint8_t> bytes) final;

 private:
  void ApplyState() noexcept;

  PacketFramer framer_;
  // Relaxed: a plain hand-over of two small values; the framer picks them up
  // between frames on the IO thread, order with other data does not matter.
  std::atomic<uint8_t> state_;
  std::atomic<uint16_t> max_frame_{0};
  std::atomic<RejectReason> reject_{RejectReason::kNone};
};

}  // namespace keel::proto
