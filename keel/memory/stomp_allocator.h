#pragma once
// StompAllocator: debugging allocator. Each allocation gets its own pages;
// the object ends flush against a PROT_NONE guard page, so an overflow faults
// at the bad access. Freed pages become PROT_NONE and are never reused (the
// address range is kept mapped), so a use-after-free faults too. Slow and
// memory-hungry by design. Any thread may allocate and free.

#include <cstddef>

namespace keel::memory {

class StompAllocator {
 public:
  static void* Allocate(std::size_t size);
  static void Deallocate(void* ptr, std::size_t size) noexcept;
};

}  // namespace keel::memory
