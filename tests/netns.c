/* netns.c - see netns.h. */
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NETNS_DIR "/run/netns"

/* Runs `ip` with the arguments given, its output silenced unless
 * `loud`; returns its exit status, or -1. */
static int
ip(bool loud, const char *first, ...) {
  const char *argv[24];
  va_list ap;
  int n = 0, status;
  pid_t pid;

  argv[n++] = "ip";
  argv[n++] = first;
  va_start(ap, first);
  while (n < 23 && (argv[n] = va_arg(ap, const char *)) != NULL)
    n++;
  va_end(ap);
  argv[n] = NULL;
  pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (!loud) {
      int null = open("/dev/null", O_WRONLY);

      dup2(null, 1);
      dup2(null, 2);
    }
    execvp("ip", (char *const *)argv);
    _exit(127);
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int
bh_test_netns_usable(char *why, size_t len) {
  char ns[32];

  if (geteuid() != 0) {
    snprintf(why, len, "network namespaces need root");
    return -1;
  }
  snprintf(ns, sizeof(ns), "bh%dprobe", (int)getpid());
  if (ip(false, "netns", "add", ns, NULL) != 0) {
    snprintf(why, len, "`ip netns add` failed (iproute2 missing, or "
                       "namespaces refused here)");
    return -1;
  }
  ip(false, "netns", "del", ns, NULL);
  return 0;
}

/* Removes the namespaces and links of test processes that are gone. */
static void
sweep(void) {
  DIR *d = opendir(NETNS_DIR);
  struct dirent *e;

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    int pid, idx;
    char veth[16];

    if (sscanf(e->d_name, "bh%dh%d", &pid, &idx) != 2)
      continue;
    if (kill(pid, 0) == 0 || errno != ESRCH)
      continue; /* its test still runs */
    snprintf(veth, sizeof(veth), "bh%dv%d", pid % 100000, idx);
    ip(false, "link", "del", veth, NULL);
    ip(false, "netns", "del", e->d_name, NULL);
  }
  closedir(d);
}

static int
fail(bh_test_host *h, const char *what) {
  fprintf(stderr, "netns: %s for host %s failed\n", what, h->ns);
  bh_test_host_free(h);
  return -1;
}

int
bh_test_host_make(bh_test_host *h, int idx) {
  int pid = (int)getpid(), r = 20 + pid % 200;
  char peer[16], cidr[24], gw[24];

  memset(h, 0, sizeof(*h));
  if (idx < 1 || idx > 250)
    return -1;
  sweep();
  snprintf(h->ns, sizeof(h->ns), "bh%dh%d", pid, idx);
  snprintf(h->veth, sizeof(h->veth), "bh%dv%d", pid % 100000, idx);
  snprintf(peer, sizeof(peer), "bh%dp%d", pid % 100000, idx);
  snprintf(h->addr, sizeof(h->addr), "10.%d.%d.2", r, idx);
  snprintf(h->gateway, sizeof(h->gateway), "10.%d.%d.1", r, idx);
  snprintf(cidr, sizeof(cidr), "%s/24", h->addr);
  snprintf(gw, sizeof(gw), "%s/24", h->gateway);
  if (ip(true, "netns", "add", h->ns, NULL) != 0)
    return fail(h, "ip netns add");
  h->made = true;
  if (ip(true, "link", "add", h->veth, "type", "veth", "peer", "name", peer,
         NULL) != 0 ||
      ip(true, "link", "set", peer, "netns", h->ns, NULL) != 0 ||
      ip(true, "addr", "add", gw, "dev", h->veth, NULL) != 0 ||
      ip(true, "link", "set", h->veth, "up", NULL) != 0 ||
      ip(true, "-n", h->ns, "addr", "add", cidr, "dev", peer, NULL) != 0 ||
      ip(true, "-n", h->ns, "link", "set", peer, "up", NULL) != 0 ||
      ip(true, "-n", h->ns, "link", "set", "lo", "up", NULL) != 0 ||
      ip(true, "-n", h->ns, "route", "add", "default", "via", h->gateway,
         NULL) != 0)
    return fail(h, "its link");
  return 0;
}

int
bh_test_host_link(const bh_test_host *h, bool up) {
  return ip(true, "link", "set", h->veth, up ? "up" : "down", NULL) == 0
             ? 0
             : -1;
}

/* In a forked child: moves it into the host's namespace, or exits. */
static void
enter(const bh_test_host *h) {
  char path[64];
  int fd;

  snprintf(path, sizeof(path), NETNS_DIR "/%s", h->ns);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    fprintf(stderr, "netns: cannot enter %s: %s\n", h->ns, strerror(errno));
    _exit(126);
  }
  close(fd);
}

pid_t
bh_test_host_run(const bh_test_host *h, int (*fn)(void *), void *arg) {
  pid_t pid = fork();

  if (pid == 0) {
    enter(h);
    _exit(fn(arg));
  }
  return pid;
}

pid_t
bh_test_host_exec(const bh_test_host *h, const char *path,
                  char *const argv[], char *const envp[]) {
  pid_t pid = fork();

  if (pid == 0) {
    enter(h);
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
      putenv(envp[i]);
    execv(path, argv);
    fprintf(stderr, "netns: exec %s: %s\n", path, strerror(errno));
    _exit(127);
  }
  return pid;
}

void
bh_test_host_free(bh_test_host *h) {
  if (!h->made)
    return;
  ip(false, "link", "del", h->veth, NULL);
  ip(false, "netns", "del", h->ns, NULL);
  h->made = false;
}
