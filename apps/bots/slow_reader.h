#pragma once
// SlowReaders: the slow-readers scenario's misbehaving clients. Plain
// blocking sockets with a small SO_RCVBUF (not Keel sessions: a Keel session
// always reads what arrives), logged in and joined to a room like the other
// bots; then half of them never read and half read 1 KiB every 100 ms. All
// send a heartbeat every 5 s, so only their reading is at fault. At the end
// each reads whatever is left (bounded) to learn whether the server closed it
// and whether a Kicked notice came first.
//
// Threads: Connect, Start and Finish are called by one thread (the fleet's
// driver); the pacing runs on a thread of its own between Start and Finish.

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace keel::bots {

struct SlowReaderResults {
  uint64_t readers = 0;
  uint64_t never_readers = 0;
  uint64_t disconnected = 0;        // the server closed them
  uint64_t never_disconnected = 0;  // ... of which never-readers
  uint64_t kick_notices = 0;        // Kicked{"slow consumer"} read before the close
};

class SlowReaders {
 public:
  SlowReaders() = default;
  ~SlowReaders();
  SlowReaders(const SlowReaders&) = delete;
  SlowReaders& operator=(const SlowReaders&) = delete;

  // Connects `count` readers named <prefix>slow<i> into room<i % rooms>;
  // waits (10 s at most) until each is in its room. False with `error` set
  // if one could not get there.
  bool Connect(const std::string& host, uint16_t port, uint32_t count, uint32_t rooms,
               const std::string& prefix, std::string* error);
  void Start();
  // Stops the pacing and reads what is left, at most `drain_s` in all.
  SlowReaderResults Finish(double drain_s);

 private:
  struct Reader {
    int fd = -1;
    bool never = false;
    bool closed = false;
    bool kicked = false;
    uint64_t bytes = 0;   // read so far
    std::string pending;  // bytes read, not yet a whole frame
  };
  // Reads what the socket has (at most `max` bytes; 0: all); false on close.
  bool ReadSome(Reader& r, std::size_t max);
  void Pace(std::stop_token stop);

  std::vector<Reader> readers_;
  std::jthread thread_;
};

}  // namespace keel::bots
