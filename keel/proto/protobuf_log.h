#pragma once
// Protobuf's own log, routed into Keel's and rate limited.
//
// libprotobuf writes a line to stderr for some hostile payloads (a string
// field with invalid UTF-8 logs "String field ... contains invalid UTF-8
// data" on every parse). A client can send thousands of those a second, so
// left alone they flood the log and cost a formatted write each. Once
// installed, protobuf's lines go to keel::core::Log() at a bounded rate;
// the rest are counted and summarised ("suppressed N") in the next line
// that passes. Every line is counted either way.
//
// PacketFramer installs it with the defaults the first time one is built;
// a program may call InstallProtobufLogHandler() earlier with its own rate.
// Thread-safe.

#include <cstdint>

namespace keel::proto {

struct ProtobufLogLimits {
  uint32_t lines_per_second = 5;
  uint32_t burst = 20;
};

// Replaces protobuf's log handler (process-wide).
void InstallProtobufLogHandler(ProtobufLogLimits limits = {});

struct ProtobufLogStats {
  uint64_t lines = 0;       // lines protobuf produced since installation
  uint64_t suppressed = 0;  // of those, not written
};
ProtobufLogStats GetProtobufLogStats() noexcept;

}  // namespace keel::proto
