#pragma once
// WakeBatch: while one is alive on a thread, work that thread posts to IO
// loops (a Session::Send, Disconnect, IoLoop::Post* from outside the loop)
// is queued as usual but the loops are not woken until the outermost
// WakeBatch on the thread ends; then each loop is woken once.
//
// For logic that sends to many sessions in one go, a room broadcast above
// all: without it, each Send to an idle session wakes its loop, and when the
// loop's thread shares the core the wake-up preempts the sender, so the loop
// writes one session, sleeps, and is woken again by the next Send (the chat
// room's worker was preempted ~3 times per message broadcast to 100 members
// at 10,000 messages/s; docs/net.md "Waking a loop once per batch").
//
//   {
//     net::WakeBatch batch;
//     for (auto& member : members) member->Send(buf);
//   }  // every loop with new work is woken here, once
//
// The cost is latency: nothing posted inside the batch is written before the
// batch ends, so keep a batch to one burst of sends, not a long computation.
// Nested batches collect into the outermost and must end innermost first.
// A batch records at most kMaxLoops distinct loops; a post to one more wakes
// it at once (correct, only unbatched). Not movable; it must end on the
// thread that began it, so no co_await inside one. It holds plain pointers
// to the loops: it must not outlive their Service nor span Service::Stop
// (asserted there; IoLoop::Shutdown wakes at once, batch or not).

#include <array>
#include <cstdint>

namespace keel::net {

class IoLoop;

class WakeBatch {
 public:
  static constexpr uint32_t kMaxLoops = 32;

  WakeBatch() noexcept;
  ~WakeBatch();
  WakeBatch(const WakeBatch&) = delete;
  WakeBatch& operator=(const WakeBatch&) = delete;

  // Whether a batch is open on the calling thread.
  static bool Active() noexcept;

 private:
  friend class IoLoop;
  // Called by IoLoop when it would wake itself from this thread: true if a
  // batch on this thread took the wake (the loop is woken when it ends).
  static bool Defer(IoLoop* loop) noexcept;

  WakeBatch* outer_;
  uint32_t count_ = 0;
  std::array<IoLoop*, kMaxLoops> loops_{};
};

}  // namespace keel::net
