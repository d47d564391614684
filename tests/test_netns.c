/* test_netns.c - the tests' "hosts" (tests/netns.c): a process in a host
 * reaches the test through the host's own link, from the host's own
 * address; a cut link cuts it off until it is up again; nothing is left
 * after. The hive's tests across hosts stand on these. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"
#include "runner.h"

/* A listening socket on addr, any port; *port gets it. */
static int
listen_on(const char *addr, int *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
      bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(fd, 4) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    return -1;
  *port = ntohs(sa.sin_port);
  return fd;
}

typedef struct dial {
  const char *addr;
  int port;
  int wait_ms; /* how long connect may take before the child gives up */
} dial;

/* In the host: connects and says hello. Exit 0 once said, 2 when connect
 * failed, 3 when it did not finish within wait_ms. */
static int
say_hello(void *arg) {
  const dial *d = arg;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)d->port)};
  struct pollfd p;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), err = 0;
  socklen_t len = sizeof(err);

  inet_pton(AF_INET, d->addr, &sa.sin_addr);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
      errno != EINPROGRESS)
    return 2;
  p = (struct pollfd){.fd = fd, .events = POLLOUT};
  if (poll(&p, 1, d->wait_ms) != 1)
    return 3;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
    return 2;
  return write(fd, "hello", 5) == 5 ? 0 : 2;
}

/* Accepts one connection within 5 s; its peer's address into peer. */
static int
accept_hello(int lfd, char *peer, size_t len) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  struct pollfd p = {.fd = lfd, .events = POLLIN};
  char buf[8] = {0};
  int fd;

  if (poll(&p, 1, 5000) != 1)
    return -1;
  fd = accept(lfd, (struct sockaddr *)&sa, &sl);
  if (fd < 0)
    return -1;
  inet_ntop(AF_INET, &sa.sin_addr, peer, (socklen_t)len);
  p = (struct pollfd){.fd = fd, .events = POLLIN};
  if (poll(&p, 1, 5000) != 1 || read(fd, buf, 5) != 5) {
    close(fd);
    return -1;
  }
  close(fd);
  return strcmp(buf, "hello") == 0 ? 0 : -1;
}

/* Skips the case, saying why, where hosts cannot be made (not root, no
 * `ip`). */
#define NEED_HOSTS()                                                         \
  do {                                                                       \
    char why_[128];                                                          \
                                                                             \
    if (bh_test_netns_usable(why_, sizeof(why_)) != 0)                       \
      SKIP("hosts cannot be made here: %s", why_);                           \
  } while (0)

TEST(a_host_reaches_the_test_from_its_own_address) {
  bh_test_host h;
  char peer[32];
  int lfd, port;
  dial d = {.wait_ms = 5000};

  NEED_HOSTS();
  ASSERT_INT_EQ(bh_test_host_make(&h, 1), 0);
  lfd = listen_on(h.gateway, &port);
  ASSERT(lfd >= 0);
  d.addr = h.gateway;
  d.port = port;
  pid_t pid = bh_test_host_run(&h, say_hello, &d);
  ASSERT(pid > 0);
  ASSERT_INT_EQ(accept_hello(lfd, peer, sizeof(peer)), 0);
  ASSERT_STR_EQ(peer, h.addr); /* not loopback: through the link */
  ASSERT_INT_EQ(bh_test_exit_code(pid), 0);
  close(lfd);
  bh_test_host_free(&h);
  return 0;
}

/* A cut link: the host's connect goes nowhere (it gives up after 300 ms;
 * nothing answers, so nothing could arrive sooner or later); up again, it
 * gets through. */
TEST(a_cut_link_cuts_the_host_off) {
  bh_test_host h;
  char peer[32], path[64];
  struct stat st;
  int lfd, port;
  dial d = {.wait_ms = 300};
  pid_t pid;

  NEED_HOSTS();
  ASSERT_INT_EQ(bh_test_host_make(&h, 2), 0);
  lfd = listen_on(h.gateway, &port);
  ASSERT(lfd >= 0);
  d.addr = h.gateway;
  d.port = port;
  ASSERT_INT_EQ(bh_test_host_link(&h, false), 0);
  pid = bh_test_host_run(&h, say_hello, &d);
  ASSERT(pid > 0);
  ASSERT(bh_test_exit_code(pid) >= 2);
  ASSERT_INT_EQ(bh_test_host_link(&h, true), 0);
  d.wait_ms = 5000;
  pid = bh_test_host_run(&h, say_hello, &d);
  ASSERT_INT_EQ(accept_hello(lfd, peer, sizeof(peer)), 0);
  ASSERT_INT_EQ(bh_test_exit_code(pid), 0);
  close(lfd);
  snprintf(path, sizeof(path), "/run/netns/%s", h.ns);
  ASSERT(stat(path, &st) == 0);
  bh_test_host_free(&h);
  ASSERT(stat(path, &st) != 0 && errno == ENOENT);
  return 0;
}

TEST_MAIN(TEST_ENTRY(a_host_reaches_the_test_from_its_own_address),
          TEST_ENTRY(a_cut_link_cuts_the_host_off))
