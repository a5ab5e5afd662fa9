// UringSelfTest (internal/backend.h): it passes here, and it fails with the
// reason in words where seccomp forbids io_uring_setup.
#include "keel/net/internal/backend.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>
#include <iterator>
#include <string>

namespace keel::net::internal {
namespace {

// A child process where seccomp makes io_uring_setup fail with EPERM, as a
// container runtime's default profile does.
TEST(UringSelfTest, ReportsWhyWhenIoUringIsForbidden) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipe_fds[0]);
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      _exit(2);
    std::string reason;
    const bool ok = UringSelfTest(&reason);
    const ssize_t w = write(pipe_fds[1], reason.data(), reason.size());
    _exit(ok ? 1 : (w >= 0 ? 0 : 3));
  }
  close(pipe_fds[1]);
  std::string reason;
  char chunk[256];
  ssize_t n;
  while ((n = read(pipe_fds[0], chunk, sizeof(chunk))) > 0) reason.append(chunk, std::size_t(n));
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_NE(WEXITSTATUS(status), 2) << "could not install the seccomp filter";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "self-test passed although io_uring_setup fails";
  EXPECT_NE(reason.find("Operation not permitted"), std::string::npos) << reason;
  EXPECT_NE(reason.find("io_uring_queue_init"), std::string::npos) << reason;
}

TEST(UringSelfTest, PassesOnThisMachine) {
  std::string reason;
  const bool ok = UringSelfTest(&reason);
  EXPECT_TRUE(ok) << reason;
  if (!ok) std::fprintf(stderr, "UringSelfTest: %s\n", reason.c_str());
}

}  // namespace
}  // namespace keel::net::internal
