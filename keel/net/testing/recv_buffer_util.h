#pragma once
// Helpers for the RecvBuffer unit tests. Test-only.

#include <cstring>
#include <string>

#include "keel/net/recv_buffer.h"
#include "keel/net/send_buffer.h"

namespace keel::net::testing {

// Makes room for `s` and writes it as one read.
inline void Put(RecvBuffer& b, const char* s) {
  const std::size_t n = std::strlen(s);
  b.PrepareWrite(n);
  std::memcpy(b.Writable().data(), s, n);
  b.CommitWrite(n);
}

inline std::string Str(const RecvBuffer& b) {
  auto r = b.Readable();
  return {reinterpret_cast<const char*>(r.data()), r.size()};
}

inline std::string Str(const SendBufferRef& b) { return {reinterpret_cast<const char*>(b->data()), b->size()}; }

}  // namespace keel::net::testing
