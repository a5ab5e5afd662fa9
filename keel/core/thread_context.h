#pragma once
// Per-thread context: a small integer id, a name and a group, readable from
// any code on that thread (logging, lock-order checks, per-thread caches).
//
// Ids are dense, start at 1 and are never reused within a process; a thread
// gets its id on first use. The process's main thread is named "main"; other
// threads are "thread-<id>" until named (ThreadGroup names its threads
// "<group>-<index>"). Every function here touches only the calling thread's
// own state and is safe to call from any thread.

#include <cstdint>
#include <string>
#include <string_view>

namespace keel::core {
namespace internal {
// The calling thread's id, 0 until assigned; read inline on lock paths.
// initial-exec: a direct %fs-relative load even in -fPIC code (Keel's
// libraries are linked into programs, not dlopen'ed).
extern constinit thread_local uint32_t tls_thread_id __attribute__((tls_model("initial-exec")));
uint32_t AssignThreadId() noexcept;
}  // namespace internal

class ThisThread {
 public:
  // Small dense id of the calling thread (>= 1).
  static uint32_t Id() noexcept {
    const uint32_t id = internal::tls_thread_id;
    return id != 0 ? id : internal::AssignThreadId();
  }
  static std::string_view Name() noexcept;
  // Group name ("" for threads outside any ThreadGroup).
  static std::string_view Group() noexcept;
  // Index of this thread inside its group (0 outside any group).
  static uint32_t IndexInGroup() noexcept;

  // Names the calling thread; also sets the kernel's thread name (first 15
  // bytes), so the name shows in top, gdb and perf.
  static void SetName(std::string name, std::string group = {}, uint32_t index = 0);

  // Number of thread ids handed out so far (an upper bound on Id()).
  static uint32_t IdsIssued() noexcept;
};

}  // namespace keel::core
