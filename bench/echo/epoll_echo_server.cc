// Peer: a plain edge-triggered epoll echo server, one thread, the floor any
// engine has to clear (TARGETS.md). Reads until EAGAIN into a per-connection
// buffer and writes it straight back; what the socket does not take is kept
// and flushed on EPOLLOUT. TCP_NODELAY on accepted sockets.
//   epoll_echo_server --port N
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;

struct Conn {
  int fd;
  std::vector<char> pending;  // echoed bytes the socket has not taken yet
};

bool Flush(Conn& c) {
  size_t off = 0;
  while (off < c.pending.size()) {
    const ssize_t n = send(c.fd, c.pending.data() + off, c.pending.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  c.pending.erase(c.pending.begin(), c.pending.begin() + static_cast<long>(off));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
  }
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(lfd, 4096) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  std::vector<char> buf(64 * 1024);
  std::vector<epoll_event> events(1024);
  while (!g_stop) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[static_cast<size_t>(i)].data.ptr);
      if (c == nullptr) {
        while (true) {
          const int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
          ev.data.ptr = new Conn{fd, {}};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      bool alive = Flush(*c);
      while (alive) {
        const ssize_t r = recv(c->fd, buf.data(), buf.size(), 0);
        if (r > 0) {
          if (c->pending.empty()) {
            ssize_t off = 0;
            while (off < r) {
              const ssize_t w = send(c->fd, buf.data() + off, static_cast<size_t>(r - off), MSG_NOSIGNAL);
              if (w > 0) {
                off += w;
              } else if (w < 0 && errno == EINTR) {
                continue;
              } else if (w < 0 && errno == EAGAIN) {
                break;
              } else {
                alive = false;
                break;
              }
            }
            if (off < r) c->pending.insert(c->pending.end(), buf.data() + off, buf.data() + r);
          } else {
            c->pending.insert(c->pending.end(), buf.data(), buf.data() + r);
          }
        } else if (r == 0) {
          alive = false;
        } else if (errno == EAGAIN) {
          break;
        } else if (errno != EINTR) {
          alive = false;
        }
      }
      if (!alive) {
        close(c->fd);
        delete c;
      }
    }
  }
  return 0;
}
