// Peer: a plain io_uring echo server, one thread, written the way liburing's
// examples recommend for a TCP server (TARGETS.md lists it beside epoll):
// multishot accept, batched submission, and one of two receive models:
//
//   --recv ring      multishot recv into a provided buffer ring (the kernel
//                    picks a buffer per completion; the echo is sent straight
//                    from it and the buffer goes back to the ring when the
//                    send completes). Memory: the ring, shared by every
//                    connection (--ring-buffers x --buffer-size).
//   --recv per-conn  one recv in flight per connection into that connection's
//                    own buffer (--buffer-size each; Keel's RecvBuffer model).
//
// Strict request/response traffic has at most one message in flight per
// connection, so a connection never has two sends outstanding. Partial sends
// are completed before anything else is sent on that connection.
//   uring_echo_server --port N [--recv ring|per-conn] [--buffer-size B]
//                     [--ring-buffers N] [--no-defer-taskrun]
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;

enum Op : uint64_t { kAccept = 1, kRecv = 2, kSend = 3 };
constexpr uint16_t kGroup = 7;

// user_data = op | conn index << 8 | buffer id << 40 (ring mode sends)
uint64_t Data(Op op, uint32_t conn, uint32_t bid = 0) {
  return op | (uint64_t{conn} << 8) | (uint64_t{bid} << 40);
}

struct Conn {
  int fd = -1;
  std::vector<char> buf;   // per-conn mode: the receive buffer
  uint32_t send_off = 0;   // bytes of the current echo already sent
  uint32_t send_len = 0;
  int bid = -1;            // ring mode: the buffer being echoed
  bool recv_armed = false;
  bool sending = false;
  std::deque<std::pair<uint16_t, uint32_t>> backlog;  // ring mode: (bid, len) not yet sent
};

struct Server {
  io_uring ring{};
  bool use_ring = true;
  uint32_t buffer_size = 16384;
  uint32_t ring_buffers = 4096;
  io_uring_buf_ring* br = nullptr;
  char* ring_mem = nullptr;
  std::deque<Conn> conns;  // stable addresses: the kernel holds pointers into Conn::buf
  std::vector<uint32_t> free_conns;
  int lfd = -1;

  io_uring_sqe* Sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) {
      io_uring_submit(&ring);
      sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
  }

  char* RingBuf(uint32_t bid) { return ring_mem + static_cast<size_t>(bid) * buffer_size; }

  void Recycle(uint32_t bid) {
    io_uring_buf_ring_add(br, RingBuf(bid), buffer_size, static_cast<uint16_t>(bid),
                          io_uring_buf_ring_mask(ring_buffers), 0);
    io_uring_buf_ring_advance(br, 1);
  }

  void SetupRing() {
    const size_t ring_bytes = sizeof(io_uring_buf) * ring_buffers;
    void* mem = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
    br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br);
    reg.ring_entries = ring_buffers;
    reg.bgid = kGroup;
    if (const int r = io_uring_register_buf_ring(&ring, &reg, 0); r != 0) {
      std::fprintf(stderr, "io_uring_register_buf_ring: %s\n", std::strerror(-r));
      std::exit(1);
    }
    ring_mem = static_cast<char*>(std::aligned_alloc(4096, size_t{ring_buffers} * buffer_size));
    for (uint32_t i = 0; i < ring_buffers; ++i) {
      io_uring_buf_ring_add(br, RingBuf(i), buffer_size, static_cast<uint16_t>(i),
                            io_uring_buf_ring_mask(ring_buffers), static_cast<int>(i));
    }
    io_uring_buf_ring_advance(br, static_cast<int>(ring_buffers));
  }

  void ArmAccept() {
    io_uring_sqe* sqe = Sqe();
    io_uring_prep_multishot_accept(sqe, lfd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, Data(kAccept, 0));
  }

  void ArmRecv(uint32_t ci) {
    Conn& c = conns[ci];
    io_uring_sqe* sqe = Sqe();
    if (use_ring) {
      io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kGroup;
    } else {
      io_uring_prep_recv(sqe, c.fd, c.buf.data(), c.buf.size(), 0);
    }
    io_uring_sqe_set_data64(sqe, Data(kRecv, ci));
    c.recv_armed = true;
  }

  void SendNext(uint32_t ci) {
    Conn& c = conns[ci];
    const char* base = use_ring ? RingBuf(static_cast<uint32_t>(c.bid)) : c.buf.data();
    io_uring_sqe* sqe = Sqe();
    io_uring_prep_send(sqe, c.fd, base + c.send_off, c.send_len - c.send_off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, Data(kSend, ci));
    c.sending = true;
  }

  void StartEcho(uint32_t ci, int bid, uint32_t len) {
    Conn& c = conns[ci];
    c.bid = bid;
    c.send_off = 0;
    c.send_len = len;
    SendNext(ci);
  }

  void Close(uint32_t ci) {
    Conn& c = conns[ci];
    if (c.fd < 0) return;
    shutdown(c.fd, SHUT_RDWR);  // ends a pending recv (close alone would not: it holds the file)
    close(c.fd);
    c.fd = -1;
  }

  void MaybeFree(uint32_t ci) {
    Conn& c = conns[ci];
    if (c.fd >= 0 || c.recv_armed || c.sending) return;
    if (use_ring) {
      for (auto& [bid, len] : c.backlog) Recycle(bid);
      c.backlog.clear();
    }
    free_conns.push_back(ci);
  }

  void OnAccept(int res, uint32_t flags) {
    if (!(flags & IORING_CQE_F_MORE)) ArmAccept();
    if (res < 0) return;
    const int one = 1;
    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint32_t ci;
    if (!free_conns.empty()) {
      ci = free_conns.back();
      free_conns.pop_back();
    } else {
      ci = static_cast<uint32_t>(conns.size());
      conns.emplace_back();
    }
    Conn& c = conns[ci];
    c = Conn{};
    c.fd = res;
    if (!use_ring) c.buf.resize(buffer_size);
    ArmRecv(ci);
  }

  void OnRecv(uint32_t ci, int res, uint32_t flags) {
    Conn& c = conns[ci];
    const bool more = use_ring && (flags & IORING_CQE_F_MORE);
    if (!more) c.recv_armed = false;
    if (res <= 0) {
      if (res == -ENOBUFS && c.fd >= 0) {  // ring ran dry: re-arm (buffers come back on send)
        ArmRecv(ci);
        return;
      }
      Close(ci);
      MaybeFree(ci);
      return;
    }
    const auto len = static_cast<uint32_t>(res);
    if (use_ring) {
      const auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
      if (c.fd < 0) {
        Recycle(bid);
      } else if (c.sending) {
        c.backlog.emplace_back(bid, len);
      } else {
        StartEcho(ci, bid, len);
      }
      if (!c.recv_armed && c.fd >= 0) ArmRecv(ci);
    } else {
      StartEcho(ci, -1, len);  // the next recv waits until this echo is sent
    }
    if (c.fd < 0) MaybeFree(ci);
  }

  void OnSend(uint32_t ci, int res) {
    Conn& c = conns[ci];
    c.sending = false;
    if (res <= 0 || c.fd < 0) {
      if (use_ring && c.bid >= 0) Recycle(static_cast<uint32_t>(c.bid));
      c.bid = -1;
      Close(ci);
      MaybeFree(ci);
      return;
    }
    c.send_off += static_cast<uint32_t>(res);
    if (c.send_off < c.send_len) {
      SendNext(ci);
      return;
    }
    if (use_ring) {
      Recycle(static_cast<uint32_t>(c.bid));
      c.bid = -1;
      if (!c.backlog.empty()) {
        const auto [bid, len] = c.backlog.front();
        c.backlog.pop_front();
        StartEcho(ci, bid, len);
      }
    } else {
      ArmRecv(ci);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  Server s;
  int port = 0;
  bool defer = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--port") {
      port = std::atoi(v);
      ++i;
    } else if (a == "--recv") {
      s.use_ring = std::strcmp(v, "per-conn") != 0;
      ++i;
    } else if (a == "--buffer-size") {
      s.buffer_size = static_cast<uint32_t>(std::atoi(v));
      ++i;
    } else if (a == "--ring-buffers") {
      s.ring_buffers = static_cast<uint32_t>(std::atoi(v));  // a power of two
      ++i;
    } else if (a == "--no-defer-taskrun") {
      defer = false;
    } else {
      std::fprintf(stderr, "usage: %s --port N [--recv ring|per-conn] [--buffer-size B] "
                   "[--ring-buffers N] [--no-defer-taskrun]\n", argv[0]);
      return 2;
    }
  }
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGPIPE, SIG_IGN);

  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  if (defer) params.flags |= IORING_SETUP_DEFER_TASKRUN;
  params.flags |= IORING_SETUP_CQSIZE;
  params.cq_entries = 16384;
  if (const int r = io_uring_queue_init_params(4096, &s.ring, &params); r != 0) {
    std::fprintf(stderr, "io_uring_queue_init_params: %s\n", std::strerror(-r));
    return 1;
  }
  if (s.use_ring) s.SetupRing();

  s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(s.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s.lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(s.lfd, 4096) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  s.ArmAccept();
  __kernel_timespec tick{.tv_sec = 0, .tv_nsec = 200'000'000};
  while (!g_stop) {
    io_uring_cqe* cqe = nullptr;
    const int r = io_uring_submit_and_wait_timeout(&s.ring, &cqe, 1, &tick, nullptr);
    if (r < 0 && r != -ETIME && r != -EINTR) {
      std::fprintf(stderr, "io_uring_submit_and_wait_timeout: %s\n", std::strerror(-r));
      return 1;
    }
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&s.ring, head, cqe) {
      ++seen;
      const uint64_t d = cqe->user_data;
      const auto ci = static_cast<uint32_t>((d >> 8) & 0xffffffff);
      switch (d & 0xff) {
        case kAccept:
          s.OnAccept(cqe->res, cqe->flags);
          break;
        case kRecv:
          s.OnRecv(ci, cqe->res, cqe->flags);
          break;
        case kSend:
          s.OnSend(ci, cqe->res);
          break;
        default:
          break;
      }
    }
    io_uring_cq_advance(&s.ring, seen);
  }
  return 0;
}
