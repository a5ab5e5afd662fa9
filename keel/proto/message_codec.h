#pragma once
// Protobuf payloads in Keel frames: parse with limits, serialize once.
//
//   ParsePayload(msg, frame.payload)       bounded: recursion limit, no reads
//                                          past the payload, whole payload used
//   BuildFrame(msg, alloc)                 computes the size once, asks alloc
//                                          for exactly header + payload bytes
//                                          and serializes straight into them
//
// `alloc(n)` returns a buffer B for which FrameBytes(B&) (found by ADL)
// gives its n writable bytes: std::vector<uint8_t> works here; the net
// layer's pooled SendBuffer provides its own, so a message for a whole room
// is serialized once into one shared buffer. MessageId<M> is specialised by
// generated code (protoc-gen-keel). Thread-safe (no shared state).

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/message_lite.h>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/proto/wire.h"

namespace keel::proto {

// Small on purpose: game messages are flat; deep nesting is an attack.
inline constexpr int kDefaultRecursionLimit = 16;

template <typename Message>
struct MessageId;  // generated: static constexpr uint16_t value

inline bool ParsePayload(google::protobuf::MessageLite& msg, std::span<const uint8_t> payload,
                         int recursion_limit = kDefaultRecursionLimit) {
  google::protobuf::io::CodedInputStream in(payload.data(), static_cast<int>(payload.size()));
  in.SetRecursionLimit(recursion_limit);
  return msg.ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
}

inline std::span<uint8_t> FrameBytes(std::vector<uint8_t>& buffer) noexcept { return buffer; }

// Header + payload size of `msg` as a frame; throws std::length_error past
// the u16 size field. Caches sizes inside msg for the serialization after.
inline size_t FrameSize(const google::protobuf::MessageLite& msg) {
  const size_t size = kFrameHeaderSize + msg.ByteSizeLong();
  if (size > kMaxFrameSize) {
    throw std::length_error("keel frame of " + std::to_string(size) + " bytes for " +
                            msg.GetTypeName() + " exceeds 65535");
  }
  return size;
}

// Writes the frame into exactly FrameSize(msg) bytes (call FrameSize first).
inline void EncodeFrameInto(uint16_t id, const google::protobuf::MessageLite& msg,
                            std::span<uint8_t> out) noexcept {
  StoreFrameHeader(out.data(), static_cast<uint16_t>(out.size()), id);
  msg.SerializeWithCachedSizesToArray(out.data() + kFrameHeaderSize);
}

template <typename Message, typename Alloc>
auto BuildFrame(const Message& msg, Alloc&& alloc) {
  const size_t size = FrameSize(msg);
  auto buffer = alloc(size);
  EncodeFrameInto(MessageId<Message>::value, msg, FrameBytes(buffer));
  return buffer;
}

template <typename Message>
std::vector<uint8_t> BuildFrame(const Message& msg) {
  return BuildFrame(msg, [](size_t n) { return std::vector<uint8_t>(n); });
}

}  // namespace keel::proto
