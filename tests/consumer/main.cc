// Uses the installed headers, libraries and protocol generator; exits 0 only
// if they work.
#include <keel/core/lock_guard.h>
#include <keel/core/spin_lock.h>
#include <keel/core/thread_group.h>
#include <keel/net/service.h>
#include <keel/proto/message_codec.h>
#include <keel/proto/packet_framer.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "game.keel.h"

namespace {

struct Player {
  std::string name;
};
using PlayerPtr = std::shared_ptr<Player>;

class Handler final : public game::GameHandler<PlayerPtr> {
 public:
  void HandleHello(const PlayerPtr& p, const game::Hello& m) override { p->name = m.name(); }
  void HandleMove(const PlayerPtr&, const game::Move&) override {}
};

bool LocksWork() {
  keel::core::SpinLock lock("consumer");
  long count = 0;
  {
    keel::core::ThreadGroup group({.name = "consumer", .threads = 2});
    group.Start([&](std::stop_token) {
      for (int i = 0; i < 1000; ++i) {
        keel::core::LockGuard g(lock);
        ++count;
      }
    });
    group.Join();
  }
  std::printf("count=%ld\n", count);
  return count == 2000;
}

bool ProtocolWorks() {
  game::Hello hello;
  hello.set_name("ada");
  const auto frame = keel::proto::BuildFrame(hello);
  keel::proto::PacketFramer framer(game::GameProtocolTable(), {}, nullptr);
  framer.SetState(1);
  Handler handler;
  auto player = std::make_shared<Player>();
  const auto result = framer.Parse(frame, 0, [&](const keel::proto::Frame& f) {
    return handler.Dispatch(player, f);
  });
  std::printf("frames=%zu name=%s\n", result.frames, player->name.c_str());
  return result.error == keel::proto::RejectReason::kNone && result.frames == 1 &&
         player->name == "ada" && game::kMoveId == 2;
}

class NullSession final : public keel::net::Session {
 protected:
  std::size_t OnRecv(std::span<const uint8_t> bytes) override { return bytes.size(); }
};

// keel::net links from the installed package (its io_uring backend, when
// built in, pulls liburing by name).
bool NetWorks() {
  keel::net::NetConfig cfg;
  cfg.backend = keel::net::IoBackend::kAuto;
  keel::net::Service svc(cfg, [] { return keel::net::MakeRef<NullSession>(); });
  std::string err;
  const bool ok = svc.Start(&err) && svc.Listen("127.0.0.1", 0, &err) && svc.port() != 0;
  std::printf("net=%s backend=%s %s\n", ok ? "ok" : "failed", std::string(svc.stats().backend).c_str(), err.c_str());
  svc.Stop();
  const auto buf = keel::net::SendBuffer::Copy(std::span<const uint8_t>());
  return ok && buf->size() == 0;
}

}  // namespace

int main() { return LocksWork() && ProtocolWorks() && NetWorks() ? 0 : 1; }
