/* bench_remote.c - delegation to workers of other hosts (bh_run_opts.listen;
 * the workers are this program exec'd with BH_JOIN, as tests/test_remote.c
 * starts them) against the raw TCP round trip of the same link, on three
 * links:
 *
 *   tcp_*        loopback: queen and workers on 127.0.0.1
 *   netns_*      across network namespaces (tests/netns.h): each worker
 *                in a host of its own, over its veth link to this one
 *   netns_1ms_*  the same through a relay (bench/relay.h) that holds
 *                every chunk 1 ms each way, the stand-in for `tc netem
 *                delay 1ms`, which this kernel lacks
 * The namespaces' figures are skipped (said on a "skipped:" line) where
 * namespaces cannot be made, e.g. not root.
 *
 * For each link (L the prefix):
 *   L_rtt_us, L_rtt_p99_us   floor: a 1-byte ping-pong over one TCP
 *          connection (TCP_NODELAY) between two processes on the same
 *          link: the pinging end where the queen is, the echoing one
 *          where a worker is
 *   L_delegate_seq_p50_us, _p99_us   bh_delegate of "noop" to one joined
 *          worker, one at a time, timed call by call in the queen's task
 *   L_delegate_seq_ratio   L_delegate_seq_p50_us / L_rtt_us (one round
 *          trip, the direct offer and its answer, is 1.0)
 *   L_burst_tasks_per_s_w2   "noop" with 4,096 in flight over two joined
 *          workers (bh_group_delegate + bh_group_next), from the first
 *          delegation to the last answer
 * and on loopback the round trip and the sequential delegation also with
 * both ends pinned to one CPU (tcp_rtt_same_cpu_us,
 * tcp_delegate_seq_same_cpu_p50_us, tcp_delegate_seq_ratio_same_cpu), as
 * bench_seq measures the socketpair.
 *
 * Usage: bench_remote [seq] [burst]  (env BENCH_REMOTE_SEQ_N, default
 * 20000 round trips and delegations, a twentieth of it across the delayed
 * link; BENCH_REMOTE_BURST_N, default 500000 tasks; BENCH_REMOTE_PATHS,
 * which of tcp, netns and netns_1ms to measure, default all three). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "netns.h"
#include "relay.h"

#define DELAY_US 1000
#define WINDOW 4096

static struct {
  char self[PATH_MAX]; /* this program, exec'd as the joiners */
  char key[64];        /* the hive's key file (the queen makes it) */
  double *us;          /* the round trips or delegations timed */
  size_t n, warm;
  size_t count; /* the burst's tasks */
  double secs;  /* the burst's time */
} S;

/* A link between the queen's end and the workers' ends. */
typedef struct path {
  const char *name;    /* the keys' prefix */
  bh_test_host *hosts; /* the workers' 2 hosts, or NULL: this one */
  int64_t delay_us;    /* > 0: through a relay that holds each chunk
                        * this long each way (hosts only) */
  int cpu;             /* -1: unpinned; else every end on this CPU */
  bench_relay relay;   /* the workers' way to the queen's end */
  pid_t joiner[2];
  int joiners; /* workers to start */
} path;

/* ---- the raw round trip ------------------------------------------------- */

/* The echoing end: connects to `arg` ("HOST:PORT") and sends every byte
 * back until the end of the stream. Runs in a child; returns its status. */
static int
echo_main(void *arg) {
  char host[64], *colon, b;
  struct sockaddr_in sa = {.sin_family = AF_INET};
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  snprintf(host, sizeof(host), "%s", (const char *)arg);
  if ((colon = strrchr(host, ':')) == NULL)
    return 2;
  *colon = '\0';
  sa.sin_port = htons((uint16_t)atoi(colon + 1));
  if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
      connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    perror("bench_remote: echo");
    return 2;
  }
  while (bench_read_all(fd, &b, 1) == 0)
    bench_write_all(fd, &b, 1);
  close(fd);
  return 0;
}

/* Runs fn(arg) in a child on the workers' side of the link: in its first
 * host, or here pinned as the link says. */
static pid_t
spawn_far(path *l, int (*fn)(void *), void *arg) {
  pid_t pid;

  if (l->hosts != NULL)
    return bh_test_host_run(&l->hosts[0], fn, arg);
  if ((pid = fork()) == 0) {
    if (l->cpu >= 0)
      bench_pin(l->cpu);
    _exit(fn(arg));
  }
  return pid;
}

/* Where the queen's end listens: loopback, where the relay forwards
 * from, or the first host's gateway, where the hosts reach this one. */
static const char *
near_host(const path *l) {
  return l->hosts != NULL && l->delay_us == 0 ? l->hosts[0].gateway
                                              : "127.0.0.1";
}

/* A listening socket on the queen's end, a free port; its address in
 * addr. */
static int
listen_near(const path *l, char *addr, size_t len) {
  int fd = bench_listen(near_host(l), addr, len);

  if (fd < 0)
    exit(2);
  return fd;
}

static void
reap(pid_t pid, const char *what) {
  int st;

  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      bench_die_errno(what);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "bench_remote: %s failed (status %d)\n", what, st);
    exit(2);
  }
}

/* The far end's way to the queen's end at `addr`: addr itself, or the
 * relay forwarding to it. */
static const char *
far_addr(path *l, const char *addr) {
  if (l->delay_us == 0)
    return addr;
  if (bench_relay_to(&l->relay, addr) != 0)
    bench_die_errno("the relay");
  return l->relay.addr;
}

static void
relay_start(path *l) {
  if (l->delay_us > 0 &&
      bench_relay_start(&l->relay, l->hosts[0].gateway, l->delay_us) != 0)
    exit(2);
}

static void
relay_stop(path *l) {
  if (l->delay_us > 0 && bench_relay_stop(&l->relay) != 0)
    exit(2);
}

/* S.warm + S.n round trips; the last S.n into S.us. */
static void
ping(path *l) {
  char addr[64], b = 'x';
  int one = 1, lfd, fd;
  pid_t pid;
  size_t i;

  relay_start(l);
  lfd = listen_near(l, addr, sizeof(addr));
  if ((pid = spawn_far(l, echo_main, (void *)far_addr(l, addr))) < 0 ||
      (fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
    bench_die_errno("the echo end");
  if (l->cpu >= 0)
    bench_pin(l->cpu);
  for (i = 0; i < S.warm + S.n; i++) {
    int64_t t0 = bench_now_ns();

    bench_write_all(fd, &b, 1);
    if (bench_read_all(fd, &b, 1) != 0)
      bench_die("the echo end quit", BH_EPIPE, NULL);
    if (i >= S.warm)
      S.us[i - S.warm] = (double)(bench_now_ns() - t0) / 1e3;
  }
  bench_pin(-1);
  close(fd);
  close(lfd);
  reap(pid, "the echo end");
  relay_stop(l);
}

/* ---- the hive ----------------------------------------------------------- */

static int
q_seq(bh_task *t) {
  return bench_seq_loop(t, S.us, S.warm, S.n);
}

static int
q_burst(bh_task *t) {
  bh_group *g = bh_group_new(t);
  size_t started = 0, done = 0;
  int64_t t0 = bench_now_ns();
  int rc = 0;

  if (g == NULL)
    return BH_ENOMEM;
  while (rc == 0 && done < S.count) {
    if (started < S.count && bh_group_pending(g) < WINDOW) {
      rc = bh_group_delegate(g, NULL, NULL, "noop", NULL);
      started++;
    } else {
      rc = bench_collect(t, g);
      done++;
    }
  }
  S.secs = (double)(bench_now_ns() - t0) / 1e9;
  bh_group_free(g);
  return rc;
}

static const bh_task_def queen_tasks[] = {
    {"seq", q_seq}, {"burst", q_burst}, {NULL, NULL}};
static const bh_class queen = {
    .name = "RemoteQueen", .tasks = queen_tasks, .worker_class = &bench_worker};

/* Starts joiner i: this program with BH_JOIN=addr, in its host or here. */
static pid_t
start_joiner(path *l, int i, const char *addr) {
  char join[96], key[96];
  char *argv[] = {(char *)"bench_remote", NULL};
  char *envp[] = {join, key, NULL};
  pid_t pid;

  snprintf(join, sizeof(join), "BH_JOIN=%s", addr);
  snprintf(key, sizeof(key), "BH_KEY_FILE=%s", S.key);
  if (l->hosts != NULL)
    return bh_test_host_exec(&l->hosts[i], S.self, argv, envp);
  if ((pid = fork()) == 0) {
    if (l->cpu >= 0)
      bench_pin(l->cpu);
    putenv(join);
    putenv(key);
    execv(S.self, argv);
    _exit(127);
  }
  return pid;
}

static void
on_listen(void *udata, const char *address) {
  path *l = udata;
  const char *addr = far_addr(l, address);
  int i;

  for (i = 0; i < l->joiners; i++)
    l->joiner[i] = start_joiner(l, i, addr);
}

/* Runs the queen's `task` with `joiners` workers joined over the link. */
static void
run(path *l, const char *task, int joiners) {
  char listen[40];
  bh_run_opts o = {.queen_class = &queen,
                   .task_name = task,
                   .listen = listen,
                   .key_file = S.key,
                   .workers = BH_NONE,
                   .remote_workers = joiners,
                   .join_timeout_ms = 30000,
                   .on_listen = on_listen,
                   .listen_udata = l};
  bh_result *r = NULL;
  int i, rc;

  snprintf(listen, sizeof(listen), "%s:0", near_host(l));
  l->joiners = joiners;
  relay_start(l);
  if (l->cpu >= 0)
    bench_pin(l->cpu);
  rc = bh_run(&o, &r);
  bench_pin(-1);
  if (rc != 0)
    bench_die(task, rc, r);
  bh_result_free(r);
  for (i = 0; i < joiners; i++)
    reap(l->joiner[i], "a joined worker");
  relay_stop(l);
}

/* ---- figures ------------------------------------------------------------ */

/* Prints the samples' median as KEY_us (q50 "_p50": KEY_p50_us) and their
 * 99th percentile as KEY_p99_us; returns the median. */
static double
out_us(const char *key, const char *q50) {
  char k[96];
  double p50 = bench_quantile(S.us, S.n, 0.5);

  snprintf(k, sizeof(k), "%s%s_us", key, q50);
  bench_out(k, p50, "us");
  snprintf(k, sizeof(k), "%s_p99_us", key);
  bench_out(k, bench_quantile(S.us, S.n, 0.99), "us");
  return p50;
}

/* The round trip and the sequential delegation on one link and
 * placement; `tail` ("" or "_same_cpu") follows the figure's name. */
static void
seq_vs_rtt(path *l, const char *tail, size_t n) {
  char key[96];
  double rtt, seq;

  S.n = n;
  S.warm = n / 10 > 500 ? 500 : n / 10;
  ping(l);
  /* No round trip beats the delay both ways: else the relay is broken. */
  if (l->delay_us > 0 &&
      bench_quantile(S.us, S.n, 0) < 2.0 * (double)l->delay_us) {
    fprintf(stderr,
            "bench_remote: a round trip through the relay took "
            "%.0f us, under 2 x %lld us\n",
            bench_quantile(S.us, S.n, 0), (long long)l->delay_us);
    exit(2);
  }
  snprintf(key, sizeof(key), "%s_rtt%s", l->name, tail);
  rtt = out_us(key, "");
  run(l, "seq", 1);
  snprintf(key, sizeof(key), "%s_delegate_seq%s", l->name, tail);
  seq = out_us(key, "_p50");
  snprintf(key, sizeof(key), "%s_delegate_seq_ratio%s", l->name, tail);
  bench_out(key, seq / rtt, "ratio");
}

static void
burst(path *l) {
  char key[96];

  run(l, "burst", 2);
  snprintf(key, sizeof(key), "%s_burst_tasks_per_s_w2", l->name);
  bench_out(key, (double)S.count / S.secs, "tasks/s");
}

/* Whether `name` is one of the comma-separated names in `list`. */
static bool
wanted(const char *list, const char *name) {
  size_t n = strlen(name);

  for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
    if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
      return true;
  return false;
}

/* The workers' hosts, or a "skipped:" line saying why not. */
static int
hosts_make(bh_test_host *h) {
  char why[200];
  int i;

  if (bh_test_netns_usable(why, sizeof(why)) != 0) {
    printf("skipped: netns_*: %s\n", why);
    fflush(stdout);
    return -1;
  }
  for (i = 0; i < 2; i++)
    if (bh_test_host_make(&h[i], i + 1) != 0)
      exit(2);
  return 0;
}

int
main(int argc, char **argv) {
  const bh_class *const classes[] = {&bench_worker, NULL};
  bh_test_host h[2];
  path lo = {.name = "tcp", .cpu = -1};
  path veth = {.name = "netns", .hosts = h, .cpu = -1};
  path far = {.name = "netns_1ms", .hosts = h, .delay_us = DELAY_US, .cpu = -1};
  char dir[] = "/tmp/bh_bench_remote_XXXXXX";
  const char *only;
  size_t seq_n;
  int i;

  bh_worker_main(argc, argv, classes); /* a joiner serves, and exits */
  seq_n = (size_t)bench_arg(argc, argv, 1, "BENCH_REMOTE_SEQ_N", 20000);
  S.count = (size_t)bench_arg(argc, argv, 2, "BENCH_REMOTE_BURST_N", 500000);
  if (seq_n < 20 || S.count == 0 ||
      (S.us = malloc(seq_n * sizeof(*S.us))) == NULL)
    return 2;
  if (realpath("/proc/self/exe", S.self) == NULL || mkdtemp(dir) == NULL)
    bench_die_errno("set-up");
  snprintf(S.key, sizeof(S.key), "%s/key", dir);

  if ((only = getenv("BENCH_REMOTE_PATHS")) == NULL || *only == '\0')
    only = "tcp,netns,netns_1ms";
  if (wanted(only, "tcp")) {
    seq_vs_rtt(&lo, "", seq_n);
    lo.cpu = bench_cpu(0);
    seq_vs_rtt(&lo, "_same_cpu", seq_n);
    lo.cpu = -1;
    burst(&lo);
  }
  if ((wanted(only, "netns") || wanted(only, "netns_1ms")) &&
      hosts_make(h) == 0) {
    if (wanted(only, "netns")) {
      seq_vs_rtt(&veth, "", seq_n);
      burst(&veth);
    }
    if (wanted(only, "netns_1ms")) {
      seq_vs_rtt(&far, "", seq_n / 20);
      burst(&far);
    }
    for (i = 0; i < 2; i++)
      bh_test_host_free(&h[i]);
  }
  unlink(S.key);
  rmdir(dir);
  free(S.us);
  return 0;
}
