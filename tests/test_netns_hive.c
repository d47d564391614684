/* test_netns_hive.c - the hive across hosts, on one machine: each "host"
 * is a network namespace this test makes (tests/netns.h), joined to the
 * test's own by a veth link the test can cut. The queen listens in the
 * test's namespace on every address; her workers are this program (its
 * main() runs bh_worker_main first) or bin/beehive-predict, started in
 * the hosts with the host's gateway as the queen's address, so that all
 * they say crosses a real link from the host's own address.
 * test_remote.c has the loopback cases; these are the ones a link makes.
 *
 * Workers on three hosts serve every task, each host named in the stats;
 * a link cut while its worker runs a task is mourned by the heartbeat
 * within its bound, a worker killed on its host by its connection, and
 * either's task is answered on another host, every task exactly once; the
 * cut-off worker exits 3 by its own heartbeat; a wrong key, garbage and a
 * peer that sends one byte a second are turned away by their host's
 * address while the hive serves; the main job's CSV from three hosts,
 * also with a link cut in its middle, is the local run's byte for byte.
 *
 * The links have no delay: this kernel has no sch_netem, so `tc netem`
 * cannot slow them (a delay would need a relay in user space). Where
 * hosts cannot be made (not root, no `ip`), every case skips, saying why.
 * Nothing waits by sleeping: every wait is on a pipe, a pidfd, a socket
 * or a fanotify event, each with a deadline. */
#include <beehive.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "netns.h"
#include "runner.h"
#define WORKDIR_NAME "bh_netns_hive"
#include "workdir.h"

#define MAX_HOSTS 3
#define MAX_TASKS 16
#define MAX_KIDS 8

/* ---- the workers: this program, joined from a host ------------------------ */

/* A joiner's descriptors beyond stderr (exec_launch puts them there). */
#define ARRIVE_FD 3 /* its first task says here that it runs */
#define GO_FD 4     /* a gate's first task goes on after a byte from here */
#define DONE_FD 5   /* "i pid" appended per task answered */

/* What a first task says on ARRIVE_FD (one write: atomic in a pipe). */
typedef struct arrival {
  char role; /* 'v' the victim, 'g' a gate; 'c' the victim's task ended
              * cancelled */
  int pid;
  int task;  /* its index */
} arrival;

/* One byte of GO_FD, which the gates of every host share (non-blocking):
 * a gate that loses the race for it waits again. */
static int
take_go(bh_task *t) {
  char c;

  for (;;) {
    int rc = bh_wait_fd(t, GO_FD, BH_READABLE, -1);
    ssize_t k;

    if (rc < 0)
      return rc;
    if ((k = read(GO_FD, &c, 1)) == 1)
      return 0;
    if (k == 0 || errno != EAGAIN)
      return BH_EPIPE; /* the watcher is gone */
  }
}

/* [i] -> this worker's pid. A joiner started with BH_TEST_ROLE runs its
 * first task otherwise: it says it arrived, then a "victim" runs on until
 * its host is gone (it never answers; cancelled when its worker loses
 * the queen, it says so), and a "gate" waits for its byte on GO_FD: so
 * the test knows which host runs what, with every worker busy, before
 * anything is answered. */
static int
w_serve(bh_task *t) {
  static bool arrived;
  const char *role = getenv("BH_TEST_ROLE");
  char line[48];
  int64_t i;
  int n;

  if (bh_task_unpack(t, "[I]", &i) != 0)
    return BH_ERAISED;
  if (role != NULL && !arrived) {
    arrival a = {role[0], (int)getpid(), (int)i};

    arrived = true;
    if (write(ARRIVE_FD, &a, sizeof(a)) != (ssize_t)sizeof(a))
      return bh_raise(t, "OSError", "arrival: %s", strerror(errno));
    if (a.role == 'v') {
      while (bh_sleep(t, 60000) == 0)
        ; /* a long task: its host goes first */
      a.role = 'c';
      (void)!write(ARRIVE_FD, &a, sizeof(a));
      return bh_raise(t, "RuntimeError", "task %lld: cancelled",
                      (long long)i);
    }
    if (take_go(t) != 0)
      return bh_raise(t, "RuntimeError", "task %lld was not let go",
                      (long long)i);
  }
  n = snprintf(line, sizeof(line), "%lld %d\n", (long long)i, (int)getpid());
  (void)!write(DONE_FD, line, (size_t)n);
  return bh_return(t, "i", (int)getpid());
}

static const bh_task_def w_tasks[] = {{"serve", w_serve}, {NULL, NULL}};
static const bh_class host_worker = {.name = "HostWorker", .tasks = w_tasks};

/* ---- the queen's tasks (in this process) ---------------------------------- */

typedef struct kid {
  int64_t id;
  char host[64], cause[128];
  int alive;
  uint64_t done, deaths;
} kid;

/* What the queen's task saw, for the test to check once bh_run is over. */
static struct seen {
  int n;
  int pid[MAX_TASKS];       /* who answered task i (0: it failed) */
  int64_t child[MAX_TASKS]; /* ...as the queen's child id */
  char failure[256];        /* the first task that failed, and why */
  uint64_t deaths, retried;
  size_t nkids;
  kid kids[MAX_KIDS];
  long served;              /* serve_while: tasks answered */
  int server;               /* ...by this pid */
  bool one_server;          /* ...and no other */
} seen;

static void
copy_or_empty(char *out, size_t len, const char *s) {
  snprintf(out, len, "%s", s != NULL ? s : "");
}

static void
keep_stats(bh_task *t) {
  bh_stats st;
  size_t i;

  bh_bee_stats(bh_task_bee(t), &st);
  seen.deaths = st.deaths;
  seen.retried = st.retried;
  seen.nkids = st.n_children < MAX_KIDS ? st.n_children : MAX_KIDS;
  for (i = 0; i < seen.nkids; i++) {
    const bh_child_stats *c = &st.children[i];
    kid *k = &seen.kids[i];

    k->id = c->id;
    copy_or_empty(k->host, sizeof(k->host), c->host);
    copy_or_empty(k->cause, sizeof(k->cause), c->cause);
    k->alive = c->alive;
    k->done = c->done;
    k->deaths = c->deaths;
  }
}

static void
keep_answer(int i, const bh_result *r) {
  seen.child[i] = bh_result_child_id(r);
  if (bh_result_status(r) == BH_SUCCEEDED &&
      bh_result_unpack(r, NULL, 0, "i", &seen.pid[i]) == 0)
    return;
  if (seen.failure[0] == '\0')
    snprintf(seen.failure, sizeof(seen.failure), "task %d: %s: %s", i,
             bh_result_root_errtype(r), bh_result_root_errmsg(r));
}

/* [n]: n serve tasks at once, each retried twice if its worker is lost. */
static int
q_spread(bh_task *t) {
  bh_deleg_opts o = {.retries = 2};
  bh_future *f[MAX_TASKS];
  bh_group *g;
  int64_t n, i;

  if (bh_task_unpack(t, "[I]", &n) != 0)
    return BH_ERAISED;
  if (n < 1 || n > MAX_TASKS)
    return bh_raise(t, "ValueError", "spread: %lld tasks", (long long)n);
  g = bh_group_new(t);
  bh_group_set_opts(g, &o);
  seen.n = (int)n;
  for (i = 0; i < n; i++)
    if (bh_group_delegate(g, &f[i], NULL, "serve", "[I]", i) != 0)
      f[i] = NULL;
  for (i = 0; i < n; i++)
    if (f[i] != NULL && bh_future_wait(f[i], -1) == 0)
      keep_answer((int)i, bh_future_result(f[i]));
  keep_stats(t);
  for (i = 0; i < n; i++)
    bh_future_free(f[i]);
  bh_group_free(g);
  return bh_return(t, "n");
}

/* The processes serve_while waits for (pidfds, set by on_listen). */
static int watched[MAX_HOSTS], n_watched;

static bool
all_ended(void) {
  struct pollfd p[MAX_HOSTS];
  int i;

  for (i = 0; i < n_watched; i++)
    p[i] = (struct pollfd){.fd = watched[i], .events = POLLIN};
  return poll(p, (nfds_t)n_watched, 0) == n_watched;
}

/* True once every watched process has ended, waiting up to ms on the
 * first that has not: the pace of serve_while. */
static bool
ended_within(bh_task *t, int64_t ms) {
  int i;

  for (i = 0; i < n_watched; i++) {
    struct pollfd p = {.fd = watched[i], .events = POLLIN};

    if (poll(&p, 1, 0) != 1)
      break;
  }
  return i == n_watched ||
         (bh_wait_fd(t, watched[i], BH_READABLE, bh_now() + ms) > 0 &&
          all_ended());
}

/* Serves tasks, one every 100 ms or so, until every watched process has
 * ended (peers the door refuses or cuts off): the hive goes on
 * meanwhile. */
static int
q_serve_while(bh_task *t) {
  int64_t deadline = bh_now() + 30000;

  seen.one_server = true;
  do {
    bh_result *r = NULL;
    int pid = 0;

    if (bh_delegate(t, &r, "serve", "[I]", (int64_t)seen.served) != 0 ||
        bh_result_unpack(r, NULL, 0, "i", &pid) != 0) {
      if (r != NULL)
        keep_answer(0, r);
      bh_result_free(r);
      return bh_raise(t, "RuntimeError", "serve_while: %s", seen.failure);
    }
    bh_result_free(r);
    if (seen.served++ == 0)
      seen.server = pid;
    seen.one_server = seen.one_server && pid == seen.server;
  } while (!ended_within(t, 100) && bh_now() < deadline);
  keep_stats(t);
  return bh_return(t, "n");
}

static const bh_task_def q_tasks[] = {{"spread", q_spread},
                                      {"serve_while", q_serve_while},
                                      {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = q_tasks,
                               .worker_class = &host_worker};

/* ---- files ---------------------------------------------------------------- */

/* The file's text (NUL-terminated, at most len - 1 bytes), or "". */
static char *
slurp(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  size_t have = 0;
  ssize_t k;

  while (fd >= 0 && have + 1 < len &&
         (k = read(fd, buf + have, len - 1 - have)) > 0)
    have += (size_t)k;
  buf[have] = '\0';
  if (fd >= 0)
    close(fd);
  return buf;
}

static int
write_key(const char *path, char c) {
  char hex[65];
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  memset(hex, c, 64);
  hex[64] = '\n';
  if (fd < 0 || write(fd, hex, 65) != 65)
    return -1;
  close(fd);
  return 0;
}

/* ---- processes ------------------------------------------------------------ */

/* The exit status of child pid (as bh_test_exit_code says it), or -2 when
 * it has not ended within ms. */
static int
exit_within(pid_t pid, int ms) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0), ready;
  int64_t until = bh_now() + ms;
  struct pollfd p = {.fd = fd, .events = POLLIN};

  if (fd < 0)
    return -1;
  do
    ready = poll(&p, 1, (int)(until - bh_now() > 0 ? until - bh_now() : 0));
  while (ready < 0 && errno == EINTR);
  close(fd);
  return ready == 1 ? bh_test_exit_code(pid) : -2;
}

/* A program to start in a host: argv, "K=V" additions to its
 * environment, and what its descriptors 0 to 5 are to be (-1: 0 to 2 as
 * they are, 3 to 5 /dev/null). */
typedef struct launch {
  char *argv[28];
  char *env[4];
  int fd[6];
  char strs[4][192]; /* room for the strings above */
} launch;

/* In a forked child (in a host's namespace, by bh_test_host_run, or in
 * the test's, start_here): places the descriptors and execs. Each is first moved above them all, so that placing one cannot
 * overwrite another before it is placed. */
static int
exec_launch(void *arg) {
  launch *l = arg;
  int moved[6], i;

  for (i = 0; i < 6; i++) {
    int fd = l->fd[i];

    if (fd < 0 && i >= 3)
      fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    moved[i] = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 16) : -1;
  }
  for (i = 0; i < 6; i++)
    if (moved[i] >= 0 && dup2(moved[i], i) < 0)
      return 126;
  for (i = 0; l->env[i] != NULL; i++)
    putenv(l->env[i]);
  execv(l->argv[0], l->argv);
  fprintf(stderr, "exec %s: %s\n", l->argv[0], strerror(errno));
  return 127;
}

/* A file of the work directory, open for a process's output. */
static int
out_file(const char *name) {
  return open(in_work(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

/* The name of the file of host h's process's output ext ("err", "out"). */
static const char *
output_of(const bh_test_host *h, const char *ext) {
  static char name[48];

  snprintf(name, sizeof(name), "%.31s.%s", h->ns, ext);
  return name;
}

/* Starts this program in host h as a worker joining addr with key_file,
 * BH_TEST_ROLE role (or none), descriptors 3 to 5 from fds (-1s for
 * none) and its stderr into the work file "<host's ns>.err". */
static pid_t
start_joiner(const bh_test_host *h, const char *addr, const char *key_file,
             const char *role, const int fds[3]) {
  launch l = {.argv = {(char *)"/proc/self/exe", NULL},
              .fd = {-1, -1, -1, fds[0], fds[1], fds[2]}};
  pid_t pid;
  int i = 0;

  l.fd[2] = out_file(output_of(h, "err"));
  snprintf(l.strs[0], sizeof(l.strs[0]), "BH_JOIN=%s", addr);
  snprintf(l.strs[1], sizeof(l.strs[1]), "BH_KEY_FILE=%s", key_file);
  snprintf(l.strs[2], sizeof(l.strs[2]), "BH_TEST_ROLE=%s", role ? role : "");
  l.env[i++] = l.strs[0];
  l.env[i++] = l.strs[1];
  if (role != NULL)
    l.env[i++] = l.strs[2];
  l.env[i] = NULL;
  pid = bh_test_host_run(h, exec_launch, &l);
  close(l.fd[2]);
  return pid;
}

/* ---- peers that are no workers -------------------------------------------- */

/* Where a peer in a host finds the queen's door. */
typedef struct door {
  char gateway[20];
  int port;
} door;

static int
dial_door(const door *d) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)d->port)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 || inet_pton(AF_INET, d->gateway, &sa.sin_addr) != 1 ||
      connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    return -1;
  return fd;
}

/* Reads what the door says (its hello) until it hangs up (the end of the
 * stream, or a reset): true if it did within ms. */
static bool
hung_up(int fd, int ms) {
  int64_t until = bh_now() + ms;
  char buf[256];

  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t left = until - bh_now();

    if (left <= 0 || poll(&p, 1, (int)left) != 1)
      return false;
    if (read(fd, buf, sizeof(buf)) <= 0)
      return true;
  }
}

/* In a host: what a port scanner or a confused client sends, where the
 * worker's proof should be. Exits 0 once the door hung up (within 5 s),
 * 3 if it did not, 2 without a connection. */
static int
send_garbage(void *arg) {
  static const char get[] = "GET / HTTP/1.0\r\n\r\n";
  int fd = dial_door(arg);

  if (fd < 0 || send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL) < 0)
    return 2;
  return hung_up(fd, 5000) ? 0 : 3;
}

/* In a host: a peer that sends the start of a worker's proof ("BHA1P",
 * then its nonce) one byte a second, never enough to finish: the door
 * must cut it off at its handshake deadline. Waiting for the hang-up a
 * second at a time is the pace of the drip, not a synchronisation. Exits
 * 100 + the bytes sent once cut off, 1 if still on after 20, 2 without a
 * connection. */
static int
drip(void *arg) {
  static const char proof[] = "BHA1P";
  int fd = dial_door(arg), sent = 0;

  if (fd < 0)
    return 2;
  while (sent < 20) {
    char b = sent < 5 ? proof[sent] : 0;

    if (send(fd, &b, 1, MSG_NOSIGNAL) != 1)
      return 100 + sent; /* reset: cut off */
    sent++;
    if (hung_up(fd, 1000))
      return 100 + sent;
  }
  return 1;
}

/* ---- a scene: hosts, their processes, the queen's log --------------------- */

typedef struct scene {
  bh_test_host h[MAX_HOSTS];
  int nh;
  char key[256], bad_key[256]; /* the hive's key file, and another */
  /* Per host, what on_listen starts there: a joiner with key_of[i] (and
   * role[i]), or peer[i] run with the door, or nothing. */
  const char *key_of[MAX_HOSTS];
  const char *role[MAX_HOSTS];
  int (*peer[MAX_HOSTS])(void *);
  bool watch[MAX_HOSTS];     /* serve_while waits for its end */
  door door[MAX_HOSTS];
  pid_t pid[MAX_HOSTS];
  int arrive[2], go[2];      /* the gates' pipes */
  int done;                  /* the done log, appended by every worker */
  int port;                  /* the door's */
  /* The queen's log, and when she mourned a worker of host gone_of. */
  char log[16384];
  size_t log_len;
  const bh_test_host *gone_of;
  int64_t gone_at;
} scene;

static void
hear(void *udata, bh_log_level level, int indent, const char *line) {
  scene *s = udata;
  int n;

  (void)level;
  (void)indent;
  if (s->gone_of != NULL && s->gone_at == 0 && strstr(line, " is gone") &&
      strstr(line, s->gone_of->addr))
    s->gone_at = bh_now();
  n = snprintf(s->log + s->log_len, sizeof(s->log) - s->log_len, "%s\n",
               line);
  if (n > 0 && (size_t)n < sizeof(s->log) - s->log_len)
    s->log_len += (size_t)n;
}

/* How many lines of the queen's log hold both a and b. */
static int
logged(const scene *s, const char *a, const char *b) {
  const char *line = s->log;
  int n = 0;

  while (*line != '\0') {
    const char *eol = strchr(line, '\n');
    size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
    char one[512];

    snprintf(one, sizeof(one), "%.*s", (int)len, line);
    n += strstr(one, a) != NULL && strstr(one, b) != NULL;
    line += len + (eol != NULL);
  }
  return n;
}

/* The queen listens: everyone of the scene is started in the hosts, with
 * the door's port on the host's side of its link. */
static void
on_listen(void *udata, const char *address) {
  scene *s = udata;
  int fds[3] = {s->arrive[1], s->go[0], s->done}, i;

  s->port = atoi(strrchr(address, ':') + 1);
  for (i = 0; i < s->nh; i++) {
    char addr[48];

    memcpy(s->door[i].gateway, s->h[i].gateway, sizeof(s->door[i].gateway));
    s->door[i].port = s->port;
    snprintf(addr, sizeof(addr), "%s:%d", s->h[i].gateway, s->port);
    if (s->key_of[i] != NULL)
      s->pid[i] = start_joiner(&s->h[i], addr, s->key_of[i], s->role[i],
                               fds);
    else if (s->peer[i] != NULL)
      s->pid[i] = bh_test_host_run(&s->h[i], s->peer[i], &s->door[i]);
    if (s->watch[i] && s->pid[i] > 0)
      watched[n_watched++] = (int)syscall(SYS_pidfd_open, s->pid[i], 0);
  }
}

/* A hive of remote workers only, max_concurrency 1 each, of which want
 * join before the task starts. */
static bh_run_opts
hive_opts(scene *s, int want, const char *task, bh_value *args) {
  bh_run_opts o = {.queen_class = &queen, .task_name = task,
                   .task_args = args, .workers = BH_NONE,
                   .max_concurrency = 1, .listen = "0.0.0.0:0",
                   .key_file = s->key, .remote_workers = want,
                   .join_timeout_ms = 20000, .on_listen = on_listen,
                   .listen_udata = s};

  return o;
}

static int
run_scene(scene *s, bh_run_opts *o) {
  bh_result *r = NULL;
  int rc;

  o->logger = bh_logger_new(BH_LOG_WARNING, hear, s);
  rc = run_hive(o, &r);
  bh_logger_free(o->logger);
  bh_result_free(r);
  if (rc != 0 || seen.failure[0] != '\0')
    fprintf(stderr, "the queen: %s\nher log:\n%s", seen.failure, s->log);
  return rc;
}

static void
scene_end(scene *s) {
  int i;

  for (i = 0; i < s->nh; i++) {
    if (s->pid[i] > 0 && kill(s->pid[i], SIGKILL) == 0)
      bh_test_exit_code(s->pid[i]);
    bh_test_host_free(&s->h[i]);
  }
  for (i = 0; i < n_watched; i++)
    close(watched[i]);
  n_watched = 0;
  if (s->arrive[0] >= 0)
    close(s->arrive[0]);
  rm_tree(work_dir());
}

/* Makes nh hosts and the keys, runs body, then removes everything it
 * left whatever it returned. Skips where hosts cannot be made. */
static int
with_hosts(int nh, int (*body)(scene *)) {
  static scene s; /* the log makes it large */
  char why[160];
  int i, rc = 1;

  if (bh_test_netns_usable(why, sizeof(why)) != 0)
    SKIP("hosts cannot be made here: %s", why);
  memset(&s, 0, sizeof(s));
  memset(&seen, 0, sizeof(seen));
  s.nh = nh;
  snprintf(s.key, sizeof(s.key), "%s", in_work("key"));
  snprintf(s.bad_key, sizeof(s.bad_key), "%s", in_work("bad_key"));
  s.arrive[0] = s.arrive[1] = s.go[0] = s.go[1] = s.done = -1;
  for (i = 0; i < nh; i++)
    if (bh_test_host_make(&s.h[i], i + 1) != 0)
      break;
  if (i < nh || write_key(s.key, 'a') != 0 || write_key(s.bad_key, 'b') != 0)
    fprintf(stderr, "the hosts or the keys could not be made\n");
  else
    rc = body(&s);
  scene_end(&s);
  return rc;
}

/* ---- the watcher: what the test does once the hosts' tasks run ------------ */

/* Whom the watcher waits for, and what it does then. */
typedef struct plan {
  int gates;                  /* gates' arrivals to wait for */
  char act;                   /* on the victim: 'c' cut its host's link,
                               * 'k' kill it; 0: there is no victim */
  const bh_test_host *victim; /* its host */
} plan;

typedef struct report {
  int ok;
  arrival victim;
  int gate[MAX_HOSTS];
  int64_t before, after; /* bh_now() on either side of the act */
  char why[160];
} report;

/* The next arrival within ms. */
static int
next_arrival(int fd, arrival *a, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};

  if (poll(&p, 1, ms) != 1)
    return -1;
  return read(fd, a, sizeof(*a)) == (ssize_t)sizeof(*a) ? 0 : -1;
}

/* Waits until every gate and the victim run a task (each worker runs one
 * at a time: so each host has one), acts on the victim, then lets the
 * gates go. */
static report
watch(scene *s, const plan *p) {
  report r = {.ok = 0};
  int gates = 0, victims = 0, i;

  while (gates < p->gates || victims < (p->act != 0)) {
    arrival a;

    if (next_arrival(s->arrive[0], &a, 20000) != 0) {
      snprintf(r.why, sizeof(r.why), "after %d gates and %d victims, no "
               "arrival within 20 s", gates, victims);
      return r;
    }
    if (a.role == 'v')
      r.victim = a, victims++;
    else if (gates < MAX_HOSTS)
      r.gate[gates++] = a.pid;
  }
  r.before = bh_now();
  if (p->act == 'c' && bh_test_host_link(p->victim, false) != 0)
    snprintf(r.why, sizeof(r.why), "the link could not be cut");
  if (p->act == 'k' && kill(r.victim.pid, SIGKILL) != 0)
    snprintf(r.why, sizeof(r.why), "kill: %s", strerror(errno));
  r.after = bh_now();
  for (i = 0; i < p->gates; i++)
    if (write(s->go[1], "g", 1) != 1)
      snprintf(r.why, sizeof(r.why), "go: %s", strerror(errno));
  r.ok = r.why[0] == '\0';
  return r;
}

/* Makes the gates' pipes and the done log, and starts the watcher; its
 * report comes on *rep. */
static pid_t
start_watcher(scene *s, const plan *p, int *rep) {
  int r[2];
  pid_t pid;

  if (pipe2(s->arrive, O_CLOEXEC) != 0 ||
      pipe2(s->go, O_CLOEXEC | O_NONBLOCK) != 0 || pipe2(r, O_CLOEXEC) != 0)
    return -1;
  s->done = open(in_work("done"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                 0600);
  if ((pid = fork()) == 0) {
    report rp;

    close(s->arrive[1]);
    close(s->go[0]);
    rp = watch(s, p);
    _exit(write(r[1], &rp, sizeof(rp)) == (ssize_t)sizeof(rp) ? 0 : 1);
  }
  close(r[1]);
  *rep = r[0];
  return pid;
}

static int
end_watcher(scene *s, pid_t pid, int rep, report *r) {
  struct pollfd p = {.fd = rep, .events = POLLIN};
  int ok = poll(&p, 1, 20000) == 1 &&
           read(rep, r, sizeof(*r)) == (ssize_t)sizeof(*r);

  close(rep);
  close(s->arrive[1]); /* (arrive[0] stays for the victim's end) */
  close(s->go[0]);
  close(s->go[1]);
  close(s->done);
  if (exit_within(pid, 20000) != 0 || !ok) {
    fprintf(stderr, "the watcher failed\n");
    return -1;
  }
  if (!r->ok)
    fprintf(stderr, "the watcher: %s\n", r->why);
  return r->ok ? 0 : -1;
}

/* ---- checks --------------------------------------------------------------- */

/* Host i's process ends with status want within ms (else what it said on
 * stderr is shown); it is forgotten either way. */
static int
ends_with(scene *s, int i, int want, int ms) {
  static char said[8192];
  int got = exit_within(s->pid[i], ms);

  if (got == -2)
    kill(s->pid[i], SIGKILL), bh_test_exit_code(s->pid[i]);
  s->pid[i] = 0;
  if (got == want)
    return 0;
  fprintf(stderr, "host %d's process exited %d, not %d; its stderr:\n%s\n",
          i + 1, got, want,
          slurp(in_work(output_of(&s->h[i], "err")), said, sizeof(said)));
  return -1;
}

/* Every task was answered, each by one of pids (n of them), and the done
 * log holds each task exactly once, with the pid that answered it. */
static int
answered_once(const int *pids, int n) {
  static char text[8192];
  int count[MAX_TASKS] = {0}, i, k, ok;
  const char *p;

  for (i = 0; i < seen.n; i++) {
    for (ok = 0, k = 0; k < n; k++)
      ok |= seen.pid[i] == pids[k];
    if (!ok) {
      fprintf(stderr, "task %d answered by pid %d\n", i, seen.pid[i]);
      return -1;
    }
  }
  slurp(in_work("done"), text, sizeof(text));
  for (p = text; *p != '\0'; p = strchr(p, '\n') + 1) {
    int task, pid;

    if (sscanf(p, "%d %d", &task, &pid) != 2 || task < 0 ||
        task >= seen.n || seen.pid[task] != pid || ++count[task] > 1) {
      fprintf(stderr, "the done log:\n%s", text);
      return -1;
    }
  }
  for (i = 0; i < seen.n; i++)
    if (count[i] != 1) {
      fprintf(stderr, "task %d done %d times:\n%s", i, count[i], text);
      return -1;
    }
  return 0;
}

/* The queen's child on host h ("10.R.i.2:port"), or NULL. */
static const kid *
kid_on(const bh_test_host *h) {
  size_t n = strlen(h->addr), i;

  for (i = 0; i < seen.nkids; i++)
    if (strncmp(seen.kids[i].host, h->addr, n) == 0 &&
        seen.kids[i].host[n] == ':')
      return &seen.kids[i];
  return NULL;
}

/* The tasks the worker with this pid answered. */
static uint64_t
tasks_of(int pid) {
  uint64_t n = 0;
  int i;

  for (i = 0; i < seen.n; i++)
    n += seen.pid[i] == pid;
  return n;
}

/* ---- (a) workers on three hosts --------------------------------------------- */

/* The three gates run a task at once, one per host; once let go, they
 * answer the rest. Every child the stats name is on its host's address,
 * and has done what that host's worker says it did. */
static int
three_hosts(scene *s) {
  plan p = {.gates = 3};
  bh_value *args = bh_value_pack(NULL, "[i]", 12);
  bh_run_opts o = hive_opts(s, 3, "spread", args);
  report r;
  int rep, i;
  pid_t w;

  for (i = 0; i < 3; i++)
    s->key_of[i] = s->key, s->role[i] = "gate";
  ASSERT((w = start_watcher(s, &p, &rep)) > 0);
  ASSERT_INT_EQ(run_scene(s, &o), 0);
  bh_value_free(args);
  ASSERT_INT_EQ(end_watcher(s, w, rep, &r), 0);
  ASSERT_INT_EQ(answered_once(s->pid, 3), 0);
  ASSERT_INT_EQ(seen.deaths, 0);
  ASSERT_INT_EQ(seen.nkids, 3);
  for (i = 0; i < 3; i++) {
    const kid *k = kid_on(&s->h[i]);

    ASSERT(k != NULL); /* the stats name the host */
    ASSERT(k->alive);
    ASSERT(k->done >= 1);
    ASSERT_INT_EQ(k->done, tasks_of(s->pid[i]));
  }
  for (i = 0; i < 3; i++)
    ASSERT_INT_EQ(ends_with(s, i, 0, 10000), 0);
  return 0;
}

TEST(workers_on_three_hosts_serve_every_task) {
  return with_hosts(3, three_hosts);
}

/* ---- (b), (c) a worker lost with its task ----------------------------------- */

/* Host 1's worker (the victim) runs a task, and hosts 2 and 3's too, when
 * the watcher acts on the victim (`act`): the victim's task is answered
 * on another host, every task once, and the victim is mourned on its
 * host's address with a cause that contains `cause`. */
static int
lose_victim(scene *s, char act, int64_t heartbeat_ms, const char *cause,
            report *r) {
  plan p = {.gates = 2, .act = act, .victim = &s->h[0]};
  bh_value *args = bh_value_pack(NULL, "[i]", 12);
  bh_run_opts o = hive_opts(s, 3, "spread", args);
  int rep, fds0;
  const kid *k;
  pid_t w;

  s->key_of[0] = s->key_of[1] = s->key_of[2] = s->key;
  s->role[0] = "victim";
  s->role[1] = s->role[2] = "gate";
  s->gone_of = &s->h[0];
  o.heartbeat_ms = heartbeat_ms;
  ASSERT((w = start_watcher(s, &p, &rep)) > 0);
  fds0 = open_fds();
  ASSERT_INT_EQ(run_scene(s, &o), 0);
  bh_value_free(args);
  /* Nothing of the hive is left open: not the door, nor any link. */
  ASSERT_INT_EQ(open_fds(), fds0);
  ASSERT_INT_EQ(end_watcher(s, w, rep, r), 0);
  ASSERT_INT_EQ(r->victim.pid, s->pid[0]);
  ASSERT((r->gate[0] == s->pid[1] && r->gate[1] == s->pid[2]) ||
         (r->gate[0] == s->pid[2] && r->gate[1] == s->pid[1]));
  ASSERT_INT_EQ(answered_once(s->pid + 1, 2), 0);
  ASSERT(seen.retried >= 1);
  ASSERT_INT_EQ(seen.deaths, 1);
  ASSERT((k = kid_on(&s->h[0])) != NULL);
  ASSERT(!k->alive && k->deaths == 1 && k->done == 0);
  if (strstr(k->cause, cause) == NULL) {
    fprintf(stderr, "the cause: %s\n", k->cause);
    return 1;
  }
  /* Its task went to another host's worker. */
  ASSERT(seen.pid[r->victim.task] == s->pid[1] ||
         seen.pid[r->victim.task] == s->pid[2]);
  ASSERT(seen.child[r->victim.task] != k->id);
  return 0;
}

static int
cut_link(scene *s) {
  arrival last;
  report r;
  int64_t late;

  ASSERT_INT_EQ(lose_victim(s, 'c', 100, "no heartbeat for 300 ms", &r), 0);
  /* Mourned within the bound (3 beats of 100 ms), with a beat's tick and
   * a loaded machine's delays; the cause says it was the heartbeat, not
   * TCP's own timeouts, which come later. */
  ASSERT(s->gone_at > 0);
  late = s->gone_at - r.after;
  fprintf(stderr, "# mourned %lld ms after the cut\n", (long long)late);
  ASSERT(late <= 300 + 200 + 500);
  ASSERT(logged(s, " is gone: no heartbeat for 300 ms", s->h[0].addr) == 1);
  /* The cut-off worker hears nothing either: its own heartbeat ends it,
   * with the link still down, exit 3 (it lost its queen), its task
   * cancelled first. */
  ASSERT_INT_EQ(ends_with(s, 0, 3, 5000), 0);
  ASSERT_INT_EQ(next_arrival(s->arrive[0], &last, 0), 0);
  ASSERT(last.role == 'c' && last.pid == r.victim.pid);
  ASSERT_INT_EQ(bh_test_host_link(&s->h[0], true), 0);
  ASSERT_INT_EQ(ends_with(s, 1, 0, 10000), 0);
  ASSERT_INT_EQ(ends_with(s, 2, 0, 10000), 0);
  return 0;
}

TEST(a_cut_link_is_mourned_by_the_heartbeat_and_its_task_retried) {
  return with_hosts(3, cut_link);
}

static int
kill_remote(scene *s) {
  report r;

  ASSERT_INT_EQ(lose_victim(s, 'k', 0, "connection lost", &r), 0);
  ASSERT(logged(s, " is gone: connection lost", s->h[0].addr) == 1);
  ASSERT_INT_EQ(ends_with(s, 0, 128 + SIGKILL, 5000), 0);
  ASSERT_INT_EQ(ends_with(s, 1, 0, 10000), 0);
  ASSERT_INT_EQ(ends_with(s, 2, 0, 10000), 0);
  return 0;
}

TEST(a_worker_killed_on_its_host_is_mourned_and_its_task_retried) {
  return with_hosts(3, kill_remote);
}

/* ---- (d), (e) peers the door turns away ------------------------------------- */

/* Host 1's good worker serves while the others' peers are turned away
 * (serve_while ends once they have ended). */
static int
serve_while_refused(scene *s) {
  bh_run_opts o = hive_opts(s, 1, "serve_while", NULL);

  s->key_of[0] = s->key;
  ASSERT_INT_EQ(run_scene(s, &o), 0);
  ASSERT(seen.served >= 1);
  ASSERT(seen.one_server && seen.server == s->pid[0]);
  ASSERT_INT_EQ(seen.deaths, 0);
  ASSERT_INT_EQ(ends_with(s, 0, 0, 10000), 0);
  return 0;
}

/* The queen logged a line naming host h's address and holding text. */
static int
logged_of(const scene *s, const bh_test_host *h, const char *text) {
  char from[40];

  snprintf(from, sizeof(from), "from %s:", h->addr);
  if (logged(s, from, text) == 1)
    return 0;
  fprintf(stderr, "no line \"%s...%s\" in the queen's log:\n%s", from, text,
          s->log);
  return -1;
}

static int
wrong_key(scene *s) {
  char said[1024], want[128];

  s->key_of[1] = s->bad_key;
  s->watch[1] = true;
  ASSERT_INT_EQ(serve_while_refused(s), 0);
  ASSERT_INT_EQ(logged_of(s, &s->h[1], "authentication failed"), 0);
  ASSERT_INT_EQ(ends_with(s, 1, 2, 10000), 0);
  slurp(in_work(output_of(&s->h[1], "err")), said, sizeof(said));
  snprintf(want, sizeof(want), "beehive worker: could not join: "
           "authentication failed with %s:%d: ", s->h[1].gateway, s->port);
  if (strstr(said, want) == NULL || strstr(said, "refused") == NULL) {
    fprintf(stderr, "the joiner said: %s\n", said);
    return 1;
  }
  return 0;
}

TEST(a_wrong_key_from_a_host_is_refused_by_its_address) {
  return with_hosts(2, wrong_key);
}

static int
garbage_and_drip(scene *s) {
  int code;

  s->peer[1] = send_garbage;
  s->peer[2] = drip;
  s->watch[1] = s->watch[2] = true;
  ASSERT_INT_EQ(serve_while_refused(s), 0);
  ASSERT_INT_EQ(logged_of(s, &s->h[1], "authentication failed"), 0);
  ASSERT_INT_EQ(logged_of(s, &s->h[2], "not done within 5000 ms: cut off"),
                0);
  ASSERT_INT_EQ(ends_with(s, 1, 0, 10000), 0); /* hung up on */
  /* The drip was held its 5 s (a byte a second) and then cut off. */
  code = exit_within(s->pid[2], 10000);
  s->pid[2] = 0;
  fprintf(stderr, "# the drip sent %d bytes; %ld tasks were served "
          "meanwhile\n", code - 100, seen.served);
  ASSERT(code >= 103 && code <= 110);
  ASSERT(seen.served >= 10); /* every 100 ms or so for 5 s */
  return 0;
}

TEST(garbage_and_a_slow_peer_from_hosts_are_cut_off_by_address) {
  return with_hosts(3, garbage_and_drip);
}

/* ---- (f) the main job across hosts ------------------------------------------ */

#define ROWS 5000
#define ROWS_S "5000"

/* bin/beehive-predict of this build (BH_HELPER_DIR is
 * <build>/tests/helpers), and the source tree's data. */
static char *
predict_bin(void) {
  static char path[4096];

  snprintf(path, sizeof(path), "%s/../../bin/beehive-predict",
           BH_HELPER_DIR);
  return path;
}

static char *
data_dir(void) {
  static char path[4096];

  snprintf(path, sizeof(path), "%s/../data", BH_TEST_SRC_DIR);
  return path;
}

/* Starts l in the test's own namespace. */
static pid_t
start_here(launch *l) {
  pid_t pid = fork();

  if (pid == 0)
    _exit(exec_launch(l));
  return pid;
}

static void
close_outputs(launch *l) {
  close(l->fd[1]);
  close(l->fd[2]);
}

/* The job on this host alone, with its two local workers: the CSV every
 * run across hosts must write. Its queen also fills the image cache. */
static int
predict_local(void) {
  launch l = {.argv = {predict_bin(), (char *)"--rows", (char *)ROWS_S,
                       (char *)"--out", (char *)in_work("local.csv"),
                       (char *)"--data", data_dir(), (char *)"--cache",
                       (char *)in_work("cache"), (char *)"--quiet", NULL},
              .fd = {-1, out_file("local.out"), out_file("local.err"), -1,
                     -1, -1}};
  pid_t pid = start_here(&l);
  int rc;

  close_outputs(&l);
  if ((rc = exit_within(pid, 60000)) != 0)
    fprintf(stderr, "the local run exited %d\n", rc);
  return rc;
}

/* The queen of the job across hosts: no worker here, three to join. */
typedef struct job {
  pid_t queen;
  int err;          /* her stderr, a pipe */
  char said[8192];  /* what she said there */
  size_t len;
} job;

static int
start_queen(scene *s, job *j, const char *retries) {
  launch l = {.argv = {predict_bin(), (char *)"--listen",
                       (char *)"0.0.0.0:0", (char *)"--key-file",
                       (char *)s->key, (char *)"--workers", (char *)"0",
                       (char *)"--min-remote", (char *)"3", (char *)"--rows",
                       (char *)ROWS_S, (char *)"--out",
                       (char *)in_work("hosts.csv"), (char *)"--data",
                       data_dir(), (char *)"--cache", (char *)in_work("cache"),
                       (char *)"--quiet", (char *)"--stats", NULL},
              .fd = {-1, out_file("queen.out"), -1, -1, -1, -1}};
  int p[2], n = 0;

  while (l.argv[n] != NULL)
    n++;
  if (retries != NULL) {
    l.argv[n++] = (char *)"--retries";
    l.argv[n++] = (char *)retries;
    l.argv[n] = NULL;
  }
  if (pipe2(p, O_CLOEXEC) != 0)
    return -1;
  l.fd[2] = p[1];
  j->queen = start_here(&l);
  close_outputs(&l);
  j->err = p[0];
  j->len = 0;
  j->said[0] = '\0';
  return j->queen > 0 ? 0 : -1;
}

/* Reads more of her stderr, waiting until `until` (bh_now()): 1 while
 * it goes on, 0 at its end, -1 at the deadline. */
static int
hear_queen(job *j, int64_t until) {
  struct pollfd p = {.fd = j->err, .events = POLLIN};
  int64_t left = until - bh_now();
  ssize_t k;

  if (left <= 0 || poll(&p, 1, (int)left) != 1)
    return -1;
  k = read(j->err, j->said + j->len, sizeof(j->said) - 1 - j->len);
  if (k <= 0)
    return 0;
  j->len += (size_t)k;
  j->said[j->len] = '\0';
  return 1;
}

/* The port she says the workers may join at (within 20 s), or -1. */
static int
read_port(job *j) {
  static const char head[] = "predict: workers may join at ";
  int64_t until = bh_now() + 20000;
  const char *at;
  int port;

  while ((at = strstr(j->said, head)) == NULL || strchr(at, '\n') == NULL)
    if (hear_queen(j, until) <= 0) {
      fprintf(stderr, "the queen said no port:\n%s", j->said);
      return -1;
    }
  return sscanf(at + sizeof(head) - 1, "%*[^:]:%d", &port) == 1 ? port : -1;
}

/* Her stderr to its end, then her exit status, within ms. */
static int
finish_queen(job *j, int ms) {
  int64_t until = bh_now() + ms;
  int rc;

  while ((rc = hear_queen(j, until)) > 0)
    ;
  close(j->err);
  rc = rc < 0 ? -2 : exit_within(j->queen, (int)(until - bh_now()));
  if (rc != 0)
    fprintf(stderr, "the queen exited %d, saying:\n%s", rc, j->said);
  return rc;
}

/* `beehive-predict --join GATEWAY:port` in host i. */
static pid_t
start_predict_worker(scene *s, int i, int port) {
  launch l = {.argv = {predict_bin(), (char *)"--join", NULL,
                       (char *)"--key-file", (char *)s->key, NULL},
              .fd = {-1, -1, -1, -1, -1, -1}};
  pid_t pid;

  snprintf(l.strs[0], sizeof(l.strs[0]), "%s:%d", s->h[i].gateway, port);
  l.argv[2] = l.strs[0];
  l.fd[1] = out_file(output_of(&s->h[i], "out"));
  l.fd[2] = out_file(output_of(&s->h[i], "err"));
  pid = bh_test_host_run(&s->h[i], exec_launch, &l);
  close_outputs(&l);
  return pid;
}

/* 0 when the files hold the same bytes, as cmp(1) says; else -1, saying
 * where they part. */
static int
same_bytes(const char *a, const char *b) {
  FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
  long at = 0, line = 1;
  int ca = EOF, cb = EOF;

  while (fa != NULL && fb != NULL && (ca = getc(fa)) == (cb = getc(fb)) &&
         ca != EOF) {
    at++;
    line += ca == '\n';
  }
  if (fa != NULL)
    fclose(fa);
  if (fb != NULL)
    fclose(fb);
  if (fa != NULL && fb != NULL && ca == EOF && cb == EOF)
    return 0;
  fprintf(stderr, "%s and %s differ: byte %ld, line %ld\n", a, b, at + 1,
          line);
  return -1;
}

/* The line of text that holds needle, into out; NULL if none. */
static const char *
line_with(const char *text, const char *needle, char *out, size_t len) {
  const char *at = strstr(text, needle), *bol, *eol;

  if (at == NULL)
    return NULL;
  for (bol = at; bol > text && bol[-1] != '\n'; bol--)
    ;
  eol = strchr(at, '\n');
  snprintf(out, len, "%.*s", (int)(eol ? eol - bol : (long)strlen(bol)),
           bol);
  return out;
}

/* The queen's --stats line of the worker on host h, into out. */
static const char *
stats_of(const char *text, const bh_test_host *h, char *out, size_t len) {
  char on[40];

  snprintf(on, sizeof(on), "(on %s:", h->addr);
  return line_with(text, on, out, len);
}

/* Runs the job across the three hosts (cut is the cutter or NULL) and
 * checks its CSV against the local run's; out gets its stdout. */
static int
job_across_hosts(scene *s, const char *retries, char *out, size_t len) {
  job j;
  int port, i;

  ASSERT_INT_EQ(start_queen(s, &j, retries), 0);
  ASSERT((port = read_port(&j)) > 0);
  for (i = 0; i < 3; i++)
    ASSERT((s->pid[i] = start_predict_worker(s, i, port)) > 0);
  ASSERT_INT_EQ(finish_queen(&j, 40000), 0);
  slurp(in_work("queen.out"), out, len);
  fprintf(stderr, "%s", out); /* shown if the case fails */
  ASSERT_INT_EQ(same_bytes(in_work("hosts.csv"), in_work("local.csv")), 0);
  return 0;
}

static int
main_job(scene *s) {
  static char out[8192];
  char line[256];
  int i;

  ASSERT_INT_EQ(predict_local(), 0);
  ASSERT_INT_EQ(job_across_hosts(s, NULL, out, sizeof(out)), 0);
  ASSERT(strstr(out, "predict: rows " ROWS_S ", accuracy ") != NULL);
  ASSERT(line_with(out, "stats: queen: ", line, sizeof(line)) != NULL);
  ASSERT(strstr(line, ", deaths 0, ") != NULL);
  for (i = 0; i < 3; i++) {
    ASSERT(stats_of(out, &s->h[i], line, sizeof(line)) != NULL);
    ASSERT(strstr(line, ", deaths 0") != NULL);
    ASSERT_INT_EQ(ends_with(s, i, 0, 10000), 0);
  }
  return 0;
}

TEST(the_main_job_on_three_hosts_writes_the_local_csv) {
  return with_hosts(3, main_job);
}

/* The link cut in the main job's middle. A fanotify listener on the image
 * cache holds every open of an image until it answers, and knows who
 * opens (the process, and by its network namespace its host). Once the
 * hosts' workers have opened `after` images, it holds the next one's open
 * while it cuts that host's link: so the host surely runs a task at the
 * cut, in the run's middle, and that task is lost with it. (Which host:
 * the offers go to every worker with room and the first to accept takes
 * the task, so one host may get none for a while.) */
typedef struct cutter {
  const bh_test_host *hosts;
  int nh;
  long after;
  pid_t pid;
  int up;   /* from the cutter: a byte once it listens, then its report */
  int stop; /* to it: closed once the run is over */
} cutter;

typedef struct cut_report {
  int cut;               /* 1 once the link is cut */
  int host;              /* whose link (an index of hosts) */
  int pid;               /* whose open it held meanwhile */
  long opens;            /* opens by the hosts' workers, in all */
  int64_t before, after; /* bh_now() on either side of the cut */
  char why[160];
} cut_report;

static bool
same_ns(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The host whose namespace process pid is in (ns: the hosts'), or -1. */
static int
host_of(int pid, const struct stat *ns, int nh) {
  char path[64];
  struct stat st;
  int i;

  snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
  for (i = 0; stat(path, &st) == 0 && i < nh; i++)
    if (same_ns(&st, &ns[i]))
      return i;
  return -1;
}

static void
cut_answer(const cutter *c, int fan, const struct fanotify_event_metadata *m,
           const struct stat *ns, cut_report *r) {
  struct fanotify_response allow = {.fd = m->fd, .response = FAN_ALLOW};
  int host;

  if (m->fd < 0 || !(m->mask & FAN_OPEN_PERM))
    return;
  if ((host = host_of((int)m->pid, ns, c->nh)) >= 0 &&
      ++r->opens > c->after && !r->cut) {
    r->host = host;
    r->pid = (int)m->pid;
    r->before = bh_now();
    r->cut = bh_test_host_link(&c->hosts[host], false) == 0;
    r->after = bh_now();
  }
  if (write(fan, &allow, sizeof(allow)) != (ssize_t)sizeof(allow))
    snprintf(r->why, sizeof(r->why), "fanotify answer: %s", strerror(errno));
  close(m->fd);
}

/* Answers opens until told to stop (60 s at most). ns: the hosts'. */
static void
cut_loop(const cutter *c, int fan, int stop, const struct stat *ns,
         cut_report *r) {
  union {
    struct fanotify_event_metadata m;
    char bytes[8192];
  } buf;
  int64_t until = bh_now() + 60000;

  for (;;) {
    struct pollfd p[2] = {{.fd = fan, .events = POLLIN},
                          {.fd = stop, .events = POLLIN}};
    int64_t left = until - bh_now();
    const struct fanotify_event_metadata *m = &buf.m;
    ssize_t n;

    if (left <= 0 || poll(p, 2, (int)left) <= 0) {
      snprintf(r->why, sizeof(r->why), "not stopped within 60 s");
      return;
    }
    if (!(p[0].revents & POLLIN))
      return; /* stopped, and no open waits */
    if ((n = read(fan, buf.bytes, sizeof(buf.bytes))) <= 0)
      continue;
    for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n))
      cut_answer(c, fan, m, ns, r);
  }
}

/* The hosts' namespaces, as their files' (dev, ino). */
static int
hosts_ns(const cutter *c, struct stat *ns) {
  char path[64];
  int i;

  for (i = 0; i < c->nh; i++) {
    snprintf(path, sizeof(path), "/run/netns/%s", c->hosts[i].ns);
    if (stat(path, &ns[i]) != 0)
      return -1;
  }
  return 0;
}

static int
cut_run(const cutter *c, int up, int stop) {
  cut_report r = {.cut = 0};
  struct stat ns[MAX_HOSTS];
  int fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC,
                          O_RDONLY | O_CLOEXEC);

  if (fan < 0 ||
      fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD,
                    AT_FDCWD, in_work("cache")) != 0 ||
      hosts_ns(c, ns) != 0) {
    snprintf(r.why, sizeof(r.why), "fanotify on %s: %s", in_work("cache"),
             strerror(errno));
    (void)!write(up, "n", 1);
  } else {
    (void)!write(up, "y", 1);
    cut_loop(c, fan, stop, ns, &r);
  }
  return write(up, &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1;
}

/* Starts the cutter and waits (10 s at most) until it listens. */
static int
start_cutter(cutter *c) {
  int up[2], down[2];
  struct pollfd p;
  char ok = 'n';

  if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0)
    return -1;
  if ((c->pid = fork()) == 0) {
    close(up[0]);
    close(down[1]);
    _exit(cut_run(c, up[1], down[0]));
  }
  close(up[1]);
  close(down[0]);
  c->up = up[0];
  c->stop = down[1];
  p = (struct pollfd){.fd = c->up, .events = POLLIN};
  if (poll(&p, 1, 10000) != 1 || read(c->up, &ok, 1) != 1 || ok != 'y') {
    fprintf(stderr, "the cutter could not listen\n");
    return -1;
  }
  return 0;
}

static int
end_cutter(cutter *c, cut_report *r) {
  struct pollfd p = {.fd = c->up, .events = POLLIN};
  int ok;

  close(c->stop);
  ok = poll(&p, 1, 10000) == 1 &&
       read(c->up, r, sizeof(*r)) == (ssize_t)sizeof(*r);
  close(c->up);
  if (exit_within(c->pid, 10000) != 0 || !ok || r->why[0] != '\0') {
    fprintf(stderr, "the cutter failed: %s\n", ok ? r->why : "no report");
    return -1;
  }
  return 0;
}

static int
main_job_cut(scene *s) {
  static char out[8192];
  cutter c = {.hosts = s->h, .nh = 3, .after = ROWS / 2};
  unsigned long long retried, deaths;
  cut_report r;
  char line[256];
  const char *q;
  int v, i;

  ASSERT_INT_EQ(predict_local(), 0);
  ASSERT_INT_EQ(start_cutter(&c), 0);
  ASSERT_INT_EQ(job_across_hosts(s, "2", out, sizeof(out)), 0);
  ASSERT_INT_EQ(end_cutter(&c, &r), 0);
  fprintf(stderr, "# host %d cut after %ld of %ld opens by the hosts' "
          "workers\n", r.host + 1, c.after, r.opens);
  ASSERT(r.cut);
  v = r.host;
  ASSERT_INT_EQ(r.pid, s->pid[v]);
  /* The victim's tasks were lost and retried: the CSV is the same. */
  ASSERT(line_with(out, "stats: queen: ", line, sizeof(line)) != NULL);
  ASSERT((q = strstr(line, ", retried ")) != NULL);
  ASSERT_INT_EQ(sscanf(q, ", retried %llu, deaths %llu", &retried, &deaths),
                2);
  ASSERT(retried >= 1);
  ASSERT_INT_EQ(deaths, 1);
  ASSERT(stats_of(out, &s->h[v], line, sizeof(line)) != NULL);
  ASSERT(strstr(line, ", deaths 1: no heartbeat for 3000 ms") != NULL);
  /* Cut off, its worker ends by its own heartbeat, the link still down;
   * the others end normally. */
  ASSERT_INT_EQ(ends_with(s, v, 3, 10000), 0);
  ASSERT_INT_EQ(bh_test_host_link(&s->h[v], true), 0);
  for (i = 0; i < 3; i++)
    if (i != v) {
      ASSERT_INT_EQ(ends_with(s, i, 0, 10000), 0);
      }
  return 0;
}

TEST(a_link_cut_in_the_main_job_changes_no_byte_of_its_csv) {
  return with_hosts(3, main_job_cut);
}

TEST_MAIN_WORKER(
    host_worker, TEST_ENTRY_T(workers_on_three_hosts_serve_every_task, 30),
    TEST_ENTRY_T(a_cut_link_is_mourned_by_the_heartbeat_and_its_task_retried,
                 30),
    TEST_ENTRY_T(a_worker_killed_on_its_host_is_mourned_and_its_task_retried,
                 30),
    TEST_ENTRY_T(a_wrong_key_from_a_host_is_refused_by_its_address, 30),
    TEST_ENTRY_T(garbage_and_a_slow_peer_from_hosts_are_cut_off_by_address,
                 30),
    TEST_ENTRY_T(the_main_job_on_three_hosts_writes_the_local_csv, 60),
    TEST_ENTRY_T(a_link_cut_in_the_main_job_changes_no_byte_of_its_csv, 60))
