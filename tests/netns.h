/* netns.h - "hosts" on one machine for the tests and benchmarks of what
 * crosses a network: each host is a network namespace the test makes
 * itself, joined to the test's own namespace by a veth pair, so that its
 * traffic goes through a real link that can be cut (`ip link set down`)
 * rather than through loopback.
 *
 * Host i of process P is namespace "bh<P>h<i>" with address 10.R.i.2/24,
 * the test's side of its link 10.R.i.1 (R from P, 20 to 219), both ends up.
 * Made and cut with iproute2's `ip` (Debian's iproute2), which needs root:
 * bh_test_netns_usable() says why not where it cannot work. Namespaces
 * left by a test that died are removed by the next bh_test_host_make(). */
#ifndef BH_TEST_NETNS_H
#define BH_TEST_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct bh_test_host {
  char ns[32];        /* its namespace's name */
  char veth[16];      /* the test's end of its link */
  char addr[20];      /* its address, "10.R.i.2" */
  char gateway[20];   /* the test's end, "10.R.i.1" */
  bool made;
} bh_test_host;

/* 0 when hosts can be made here; else -1 with why (not root, no `ip`,
 * namespaces refused). */
int bh_test_netns_usable(char *why, size_t len);
/* Makes host idx (1 to 250). Returns 0, or -1 with a message on stderr. */
int bh_test_host_make(bh_test_host *h, int idx);
/* Brings the host's link up or down (both ends). 0 or -1. */
int bh_test_host_link(const bh_test_host *h, bool up);
/* Forks a child that enters the host's namespace and runs fn(arg); the
 * child exits with its return value. Returns the child's pid, or -1. */
pid_t bh_test_host_run(const bh_test_host *h, int (*fn)(void *), void *arg);
/* The same with execv(path, argv) in the namespace, envp added to the
 * environment (NULL-terminated "K=V" strings, or NULL). */
pid_t bh_test_host_exec(const bh_test_host *h, const char *path,
                        char *const argv[], char *const envp[]);
/* Removes the namespace and its link; accepts a host never made. */
void bh_test_host_free(bh_test_host *h);

#endif
