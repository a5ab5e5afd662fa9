// libFuzzer target: frame -> parse -> dispatch against a fake session, with
// the sample protocol (tests/proto/sample_v1.proto). Whatever the bytes, the
// framer and the generated dispatch must refuse or deliver, never crash,
// leak, or allocate past the malloc limit.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "keel/proto/packet_framer.h"
#include "sample_v1.keel.h"

namespace {

struct FakeSession {
  uint64_t logins = 0, says = 0, moves = 0;
  size_t text_bytes = 0;
};
using FakeSessionPtr = std::shared_ptr<FakeSession>;

class Handler final : public sample::v1::SampleV1Handler<FakeSessionPtr> {
 public:
  void HandleLogin(const FakeSessionPtr& s, const sample::v1::Login& m) override {
    ++s->logins;
    s->text_bytes += m.nickname().size();
  }
  void HandleSay(const FakeSessionPtr& s, const sample::v1::Say& m) override {
    ++s->says;
    s->text_bytes += m.text().size();
  }
  void HandleMove(const FakeSessionPtr& s, const sample::v1::Move&) override { ++s->moves; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Handler handler;
  auto session = std::make_shared<FakeSession>();
  keel::proto::PacketFramer framer(sample::v1::SampleV1ProtocolTable(),
                                   {.max_frame = 4096, .frames_per_second = 0}, nullptr);
  framer.SetState(1);
  const auto result =
      framer.Parse(std::span(data, size), 0, [&](const keel::proto::Frame& f) {
        const auto r = handler.Dispatch(session, f);
        if (r == keel::proto::RejectReason::kNone && f.id == sample::v1::kLoginId) {
          framer.SetState(2);  // logged in: the rest of the stream may chat
        }
        return r;
      });
  if (result.consumed > size) __builtin_trap();
  return 0;
}
