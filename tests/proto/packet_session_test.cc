#include "keel/proto/packet_session.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <mutex>
#include <thread>

#include "keel/net/service.h"
#include "keel/net/testing/net_test_util.h"
#include "keel/proto/testing/framer_cases.h"

// The malformed-frame table of keel/proto/packet_framer_test.cc, replayed
// over real loopback sockets against a running Service: each invalid case
// closes the connection with kProtocolError and the right counted
// RejectReason, each valid case delivers exactly its frames.

namespace keel::proto {
namespace {

using namespace std::chrono_literals;
using testing::Case;
using FrameList = std::vector<std::pair<uint16_t, size_t>>;

struct Record {
  std::mutex mu;
  FrameList frames;
  bool done = false;
  net::DisconnectReason reason = net::DisconnectReason::kNone;
  RejectReason reject = RejectReason::kNone;
};

class TableSession : public PacketSession {
 public:
  TableSession(const Case& c, ProtoStats* stats, std::shared_ptr<Record> record)
      : PacketSession(testing::Table(), c.limits, stats), record_(std::move(record)) {
    SetState(c.state);
  }

 protected:
  RejectReason OnFrame(const Frame& frame) override {
    std::lock_guard lock(record_->mu);
    record_->frames.emplace_back(frame.id, frame.payload.size());
    return RejectReason::kNone;
  }
  void OnDisconnected(net::DisconnectReason reason) override {
    std::lock_guard lock(record_->mu);
    record_->reason = reason;
    record_->reject = reject_reason();
    record_->done = true;
  }

 private:
  std::shared_ptr<Record> record_;
};

// One server for the whole table; each case gets its own connection, and
// the factory gives that connection's session the case's limits and state.
class PacketSessionOverSockets : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    net::NetConfig cfg;
    cfg.io_threads = 1;
    service_ = new net::Service(cfg, [] {
      std::lock_guard lock(mu_);
      return net::SessionRef(net::MakeRef<TableSession>(*current_, &stats_, record_));
    });
    std::string err;
    ASSERT_TRUE(service_->Start(&err)) << err;
    ASSERT_TRUE(service_->Listen("127.0.0.1", 0, &err)) << err;
  }
  static void TearDownTestSuite() {
    delete service_;
    service_ = nullptr;
  }

  static inline net::Service* service_ = nullptr;
  static inline ProtoStats stats_;
  static inline std::mutex mu_;
  static inline const Case* current_ = nullptr;
  static inline std::shared_ptr<Record> record_;
};

// A socket may coalesce what the client wrote in many pieces into one read:
// a valid case that relies on separate reads to stay under the per-read
// frame cap gets a cap of its size (the cap's own cases send in one piece).
Case OverSockets(Case c) {
  if (c.error == RejectReason::kNone && c.frames.size() > c.limits.max_frames_per_read) {
    c.limits.max_frames_per_read = static_cast<uint32_t>(c.frames.size());
  }
  return c;
}

TEST_P(PacketSessionOverSockets, ClosesWithTheCountedReasonOrDeliversExactlyItsFrames) {
  const Case c = OverSockets(GetParam());
  auto record = std::make_shared<Record>();
  {
    std::lock_guard lock(mu_);
    current_ = &c;
    record_ = record;
  }
  const uint64_t rejects_before = c.error == RejectReason::kNone ? 0 : stats_.Rejects(c.error);
  const int fd = net::testing::ConnectClient(service_->port());
  ASSERT_GE(fd, 0);
  std::vector<size_t> chunks = c.chunks.empty() ? std::vector<size_t>{c.input.size()} : c.chunks;
  size_t offset = 0;
  for (size_t chunk : chunks) {
    if (chunk == 0) continue;
    // The peer may already have closed on an invalid case: a failed send is fine then.
    if (!net::testing::SendAll(fd, c.input.data() + offset, chunk)) break;
    offset += chunk;
    if (chunks.size() < 10) std::this_thread::sleep_for(2ms);  // separate reads, mostly
  }
  auto done = [&] {
    std::lock_guard lock(record->mu);
    return record->done;
  };
  if (c.error != RejectReason::kNone) {
    ASSERT_TRUE(net::testing::WaitFor(done, 10s)) << "the server did not close the session";
    uint8_t byte;
    EXPECT_LE(::recv(fd, &byte, 1, 0), 0) << "the client did not see the close";
  } else {
    auto got_all = [&] {
      std::lock_guard lock(record->mu);
      return record->frames.size() >= c.frames.size();
    };
    EXPECT_TRUE(net::testing::WaitFor(got_all, 10s));
    std::this_thread::sleep_for(20ms);  // any extra frame would show up now
    ::shutdown(fd, SHUT_RDWR);
    ASSERT_TRUE(net::testing::WaitFor(done, 10s));
  }
  ::close(fd);
  std::lock_guard lock(record->mu);
  EXPECT_EQ(record->frames, c.frames);
  EXPECT_EQ(record->reject, c.error) << RejectReasonName(record->reject);
  if (c.error != RejectReason::kNone) {
    EXPECT_EQ(record->reason, net::DisconnectReason::kProtocolError);
    EXPECT_EQ(stats_.Rejects(c.error), rejects_before + 1) << "rejection not counted";
  } else {
    EXPECT_NE(record->reason, net::DisconnectReason::kProtocolError);
  }
}

INSTANTIATE_TEST_SUITE_P(Malformed, PacketSessionOverSockets, ::testing::ValuesIn(testing::Cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           std::string name;
                           for (char ch : param_info.param.name) {
                             name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           }
                           return std::to_string(param_info.index) + "_" + name;
                         });

}  // namespace
}  // namespace keel::proto
