#pragma once
// SendBatch: a scope that defers the loop wake-ups of the Sends made on this
// thread until the scope ends, then wakes each IoLoop it touched once.
//
//   void Room::Broadcast(const SendBufferRef& buf) {
//     net::SendBatch batch;               // one wake per loop, not per member
//     for (auto& m : members_) m->Send(buf);
//   }
//
// Why: a Send to a session with nothing queued posts a flush and wakes the
// loop. In a broadcast from a worker thread that meant up to one eventfd
// write per member, and a woken IO thread that shares the worker's core
// preempts the broadcast, flushes the few sessions posted so far and sleeps
// again (docs/benchmarks.md, room broadcast). Inside a batch the flushes are
// posted at once (the loop may still run them early if it happens to be
// awake); only the wake-up waits, for at most the length of the scope.
//
// Threads: thread-local; nests (the outermost scope wakes). Only for worker
// threads: on a loop's own thread Send never wakes anyway. Keep the scope
// short (no blocking inside): the loops it touched sleep until it ends, or
// up to their 500 ms wait bound. Every loop touched must outlive the scope,
// as for Send itself.

namespace keel::net {

class SendBatch {
 public:
  SendBatch() noexcept;
  ~SendBatch();
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;
};

}  // namespace keel::net
