#include "keel/memory/stomp_allocator.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>

namespace keel::memory {
namespace {

std::size_t PageSize() noexcept {
  static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

std::size_t DataPages(std::size_t size) noexcept {
  const std::size_t page = PageSize();
  return (size + page - 1) / page;
}

}  // namespace

void* StompAllocator::Allocate(std::size_t size) {
  if (size == 0) size = 1;
  const std::size_t page = PageSize();
  const std::size_t data = DataPages(size) * page;
  void* base = mmap(nullptr, data + page, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) throw std::bad_alloc();
  auto* bytes = static_cast<std::byte*>(base);
  mprotect(bytes + data, page, PROT_NONE);
  // The last byte touches the guard page. data - size is aligned to the
  // largest power of two dividing size, which is >= alignof(T) for sizeof(T).
  return bytes + (data - size);
}

void StompAllocator::Deallocate(void* ptr, std::size_t size) noexcept {
  if (ptr == nullptr) return;
  if (size == 0) size = 1;
  const std::size_t page = PageSize();
  const auto addr = reinterpret_cast<std::uintptr_t>(ptr);
  auto* base = reinterpret_cast<void*>(addr - addr % page);
  // Never unmapped: the range stays reserved so a later use faults.
  mprotect(base, DataPages(size) * page, PROT_NONE);
}

}  // namespace keel::memory
