#pragma once
// The cache-line size Keel pads shared atomics to, so that state written by
// different threads (a queue's producer and consumer ends) never shares a
// line ("false sharing": every write would steal the line from the reader).
//
// std::hardware_destructive_interference_size would say this, but gcc 12
// warns (-Winterference-size) wherever it is used in a header, because its
// value depends on -mtune and so may differ between translation units. 64 is
// right for every x86-64 and most AArch64 cores Keel runs on; Apple M-series
// and some Neoverse parts prefetch pairs of lines (128), where padding to 64
// still removes most of the cost.

#include <cstddef>

namespace keel::lockfree::internal {

inline constexpr std::size_t kCacheLineSize = 64;

}  // namespace keel::lockfree::internal
