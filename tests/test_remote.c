/* test_remote.c - workers of other hosts (bh_run_opts.listen, bh_join):
 * worker processes started apart from the queen join her over TCP with
 * the hive's key and serve her tasks; one killed, or frozen so that only
 * its heartbeat's silence tells, is mourned with its cause and its host,
 * and its tasks go to the others; remote_loss fails the hive when asked;
 * a wrong key and garbage are turned away by name while the hive works
 * on; too few joiners end the run with a clear error; the options are
 * checked. The joiners are this test program, exec'd with BH_JOIN (its
 * main() runs bh_worker_main first). Here on loopback; across network
 * namespaces as hosts, with a link cut, in test_netns_hive.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include "fixture.h"
#include "runner.h"

#define MAX_JOINERS 4

/* ---- the worker class ----------------------------------------------------- */

/* True once process pid is dead (a zombie, or gone) or stopped. */
static bool
down(pid_t pid) {
  char path[64], state = 'X';
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if ((f = fopen(path, "r")) == NULL)
    return true;
  if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
    state = 'X';
  fclose(f);
  return state == 'Z' || state == 'T' || state == 't' || state == 'X';
}

/* Says its pid. A joiner started with BH_TEST_VICTIM dies ("kill":
 * SIGKILL; "term": SIGTERM, as a launcher stops it) or freezes ("stop":
 * SIGSTOP, a host that stops answering) instead, in the middle of its
 * first task. One started with
 * BH_TEST_AFTER=pid answers its first task only once that process is
 * down, so that the victim surely gets a task of its own (every worker
 * takes one at a time). */
static int
w_die_if(bh_task *t) {
  static bool waited;
  const char *how = getenv("BH_TEST_VICTIM");
  const char *after = getenv("BH_TEST_AFTER");

  if (how != NULL)
    raise(strcmp(how, "stop") == 0   ? SIGSTOP
          : strcmp(how, "term") == 0 ? SIGTERM
                                     : SIGKILL);
  /* A condition polled, not a sleep for synchronisation: the victim's
   * state is only in /proc. */
  while (after != NULL && !waited && !down((pid_t)atoi(after)))
    bh_sleep(t, 5);
  waited = true;
  return bh_return(t, "i", (int)getpid());
}

/* [path of a FIFO]: says its pid there, naps for ever, then says there
 * what the nap returned, as a task's cleanup would run after its wait. */
static int
w_nap_and_tell(bh_task *t) {
  char path[256];
  int64_t pid = getpid();
  int fd, rc;

  if (bh_task_unpack(t, "[s]", path, sizeof(path)) != 0)
    return BH_ERAISED;
  if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
    return bh_raise(t, "OSError", "%s: %s", path, strerror(errno));
  (void)!write(fd, &pid, sizeof(pid));
  rc = bh_sleep(t, 1000000);
  (void)!write(fd, &rc, sizeof(rc));
  close(fd);
  return bh_return(t, "i", rc);
}

/* The TCP_USER_TIMEOUT of this worker's link to its queen (its only TCP
 * socket), in ms; -1 if none is found. */
static int
w_user_timeout(bh_task *t) {
  unsigned v = 0;
  socklen_t len = sizeof(v);
  int fd, found = -1;

  for (fd = 3; fd < 256 && found < 0; fd++)
    if (getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, &len) == 0)
      found = (int)v;
  return bh_return(t, "i", found);
}

static const bh_task_def w_tasks[] = {{"die_if", w_die_if},
                                      {"nap_and_tell", w_nap_and_tell},
                                      {"user_timeout", w_user_timeout},
                                      {NULL, NULL}};

/* A joiner started with BH_TEST_DIE_IN_INIT dies in its class's init:
 * after the queen counted it as joined, before any task. */
static int
w_init(bh_bee *bee, const msgpack_object *args,
       const msgpack_object *kwargs) {
  (void)bee;
  (void)args;
  (void)kwargs;
  if (getenv("BH_TEST_DIE_IN_INIT") != NULL)
    raise(SIGKILL);
  return 0;
}

static const bh_class remote_worker = {.name = "Remote", .tasks = w_tasks,
                                       .init = w_init};

/* ---- the queen's tasks ---------------------------------------------------- */

/* [n]: n die_if tasks at once, each retried twice; returns [the pids
 * that answered, deaths, the last dead child's cause, its host, the first
 * failure's root message]. */
static int
q_spread(bh_task *t) {
  int64_t n, i;
  int pids[64];
  bh_deleg_opts o = {.retries = 2};
  bh_group *g = bh_group_new(t);
  bh_future *f[64];
  char errmsg[512] = "";
  const char *cause = NULL, *host = NULL;
  bh_stats st;
  int rc;

  if (bh_task_unpack(t, "[I]", &n) != 0 || n > 64)
    return BH_ERAISED;
  bh_group_set_opts(g, &o);
  for (i = 0; i < n; i++)
    bh_group_delegate(g, &f[i], NULL, "die_if", NULL);
  for (i = 0; i < n; i++) {
    const bh_result *r;

    pids[i] = 0;
    if (f[i] == NULL || bh_future_wait(f[i], -1) != 0)
      continue;
    r = bh_future_result(f[i]);
    if (bh_result_status(r) == BH_SUCCEEDED)
      bh_result_unpack(r, NULL, 0, "i", &pids[i]);
    else if (errmsg[0] == '\0')
      snprintf(errmsg, sizeof(errmsg), "%s: %s", bh_result_root_errtype(r),
               bh_result_root_errmsg(r));
  }
  bh_bee_stats(bh_task_bee(t), &st);
  for (i = 0; i < (int64_t)st.n_children; i++)
    if (!st.children[i].alive && st.children[i].deaths) {
      cause = st.children[i].cause;
      host = st.children[i].host;
    }
  rc = bh_return(t, "[#i U s s s]", pids, (size_t)n, st.deaths, cause, host,
                 errmsg[0] ? errmsg : NULL);
  for (i = 0; i < n; i++)
    bh_future_free(f[i]);
  bh_group_free(g);
  return rc;
}

/* The descriptor q_read_to_end reads; the one q_started writes. */
static int read_fd = -1, started_fd = -1;

/* Reads read_fd to its end (a joiner's stderr, which ends when it exits),
 * waiting on the loop so that the door goes on answering; returns what
 * it read. */
static int
q_read_to_end(bh_task *t) {
  char buf[2048];
  size_t have = 0;
  int fd = read_fd;

  for (;;) {
    ssize_t k;

    if (bh_wait_fd(t, fd, BH_READABLE, bh_now() + 20000) < 0)
      break;
    k = read(fd, buf + have, sizeof(buf) - 1 - have);
    if (k <= 0)
      break;
    have += (size_t)k;
  }
  buf[have] = '\0';
  return bh_return(t, "s", buf);
}

/* The last joiner on_listen started. */
static pid_t last_joiner;

/* Says the last joiner's pid on started_fd, then waits for read_fd to
 * end. */
static int
q_started(bh_task *t) {
  (void)!write(started_fd, &last_joiner, sizeof(last_joiner));
  return q_read_to_end(t);
}

/* [path]: a worker naps and tells there (w_nap_and_tell). */
static int
q_nap_and_tell(bh_task *t) {
  char path[256];
  bh_result *r = NULL;

  if (bh_task_unpack(t, "[s]", path, sizeof(path)) != 0)
    return BH_ERAISED;
  bh_delegate(t, &r, "nap_and_tell", "[s]", path);
  bh_result_free(r);
  return bh_return(t, "n");
}

/* [name]: the int task `name` answers. */
static int
q_ask(bh_task *t) {
  char name[64];
  bh_result *r = NULL;
  int v = 0, rc;

  if (bh_task_unpack(t, "[s]", name, sizeof(name)) != 0)
    return BH_ERAISED;
  rc = bh_delegate(t, &r, name, NULL);
  if (rc == 0)
    bh_result_unpack(r, NULL, 0, "i", &v);
  bh_result_free(r);
  return rc != 0 ? bh_raise(t, "RuntimeError", "%s failed", name)
                 : bh_return(t, "i", v);
}

static const bh_task_def q_tasks[] = {{"spread", q_spread},
                                      {"ask", q_ask},
                                      {"nap_and_tell", q_nap_and_tell},
                                      {"read_to_end", q_read_to_end},
                                      {"started", q_started},
                                      {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = q_tasks,
                               .worker_class = &remote_worker};

/* ---- joiners -------------------------------------------------------------- */

typedef struct joiners {
  int n;                      /* to start once the queen listens */
  const char *key_file[MAX_JOINERS];
  const char *victim[MAX_JOINERS]; /* BH_TEST_VICTIM, or NULL */
  int after[MAX_JOINERS];     /* 1 + the joiner it waits for (0: none) */
  pid_t pid[MAX_JOINERS];
  int err[MAX_JOINERS];       /* the read end of each one's stderr */
  bool garbage;               /* also send garbage to the door */
  char addr[64];
} joiners;

static char key_path[64], bad_key_path[64];

static char self_path[PATH_MAX];

/* Starts this program as a joining worker of addr with key_file. */
static pid_t
start_joiner(const char *addr, const char *key_file, const char *victim,
             pid_t after, int *err) {
  int p[2];
  pid_t pid;

  if (self_path[0] == '\0' &&
      readlink("/proc/self/exe", self_path, sizeof(self_path) - 1) < 0)
    return -1;
  if (pipe2(p, O_CLOEXEC) != 0)
    return -1;
  if ((pid = fork()) == 0) {
    dup2(p[1], 2);
    setenv("BH_JOIN", addr, 1);
    setenv("BH_KEY_FILE", key_file, 1);
    if (victim != NULL && strcmp(victim, "init") == 0)
      setenv("BH_TEST_DIE_IN_INIT", "1", 1);
    else if (victim != NULL)
      setenv("BH_TEST_VICTIM", victim, 1);
    if (after > 0) {
      char n[16];

      snprintf(n, sizeof(n), "%d", (int)after);
      setenv("BH_TEST_AFTER", n, 1);
    }
    /* The path, not /proc/self/exe: under valgrind that is valgrind's
     * own program, while readlink tells the test's. */
    execl(self_path, "test_remote", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  *err = p[0];
  return pid;
}

/* What a port scanner or a confused client sends: the door must refuse it
 * and go on. */
static void
send_garbage(const char *addr) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  const char *colon = strrchr(addr, ':');
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  sa.sin_port = htons((uint16_t)atoi(colon + 1));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
    (void)!write(fd, "GET / HTTP/1.0\r\n\r\n", 18);
  close(fd); /* the bytes are in the door's socket already */
}

static void
on_listen(void *udata, const char *address) {
  joiners *j = udata;
  int i;

  snprintf(j->addr, sizeof(j->addr), "%s", address);
  if (j->garbage)
    send_garbage(address);
  for (i = 0; i < j->n; i++)
    j->pid[i] = start_joiner(address, j->key_file[i], j->victim[i],
                             j->after[i] ? j->pid[j->after[i] - 1] : 0,
                             &j->err[i]);
  last_joiner = j->n > 0 ? j->pid[j->n - 1] : 0;
  read_fd = j->n > 0 ? j->err[j->n - 1] : -1;
}

static void
reap_all(joiners *j) {
  int i;

  for (i = 0; i < j->n; i++)
    if (j->pid[i] > 0) {
      kill(j->pid[i], SIGKILL);
      bh_test_exit_code(j->pid[i]);
      close(j->err[i]);
    }
}

/* Two keys in files only their owner reads, made once per process. */
static int
make_keys(void) {
  static const char *const hex[2] = {
      "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
      "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"};
  char *paths[2] = {key_path, bad_key_path};
  int i;

  snprintf(key_path, sizeof(key_path), "/tmp/bh_remote_key_%d", (int)getpid());
  snprintf(bad_key_path, sizeof(bad_key_path), "/tmp/bh_remote_bad_%d",
           (int)getpid());
  for (i = 0; i < 2; i++) {
    int fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0 || write(fd, hex[i], 65) != 65)
      return -1;
    close(fd);
  }
  return 0;
}

static void
drop_keys(void) {
  unlink(key_path);
  unlink(bad_key_path);
}

/* A hive of remote workers only, waiting for want joiners. */
static bh_run_opts
remote_opts(joiners *j, int want, const char *task, const bh_value *args) {
  bh_run_opts o = {.queen_class = &queen, .task_name = task,
                   .task_args = args, .workers = BH_NONE,
                   .max_concurrency = 1, .listen = "127.0.0.1:0",
                   .key_file = key_path, .remote_workers = want,
                   .on_listen = on_listen, .listen_udata = j};

  return o;
}

/* The spread's answer: pids (n of them) and the rest. */
typedef struct spread {
  int pids[64];
  uint32_t n;
  uint64_t deaths;
  char cause[256], host[64], errmsg[512];
} spread;

static void
copy_str(const msgpack_object *o, char *out, size_t len) {
  out[0] = '\0';
  if (o->type == MSGPACK_OBJECT_STR)
    snprintf(out, len, "%.*s", (int)o->via.str.size, o->via.str.ptr);
}

static void
read_spread(const bh_result *r, spread *s) {
  const msgpack_object *v = bh_result_value(r), *a = v->via.array.ptr;
  uint32_t i;

  s->n = a[0].via.array.size;
  for (i = 0; i < s->n && i < 64; i++)
    s->pids[i] = (int)a[0].via.array.ptr[i].via.i64;
  s->deaths = a[1].via.u64;
  copy_str(&a[2], s->cause, sizeof(s->cause));
  copy_str(&a[3], s->host, sizeof(s->host));
  copy_str(&a[4], s->errmsg, sizeof(s->errmsg));
}

static int
run_spread(bh_run_opts *o, int n, spread *s) {
  bh_value *args = bh_value_pack(NULL, "[i]", n);
  bh_result *r = NULL;
  int rc;

  o->task_name = "spread";
  o->task_args = args;
  rc = run_hive(o, &r);
  if (rc == 0)
    read_spread(r, s);
  bh_result_free(r);
  bh_value_free(args);
  return rc;
}

static bool
is_joiner(const joiners *j, int pid) {
  int i;

  for (i = 0; i < j->n; i++)
    if (j->pid[i] == pid)
      return true;
  return false;
}

/* ---- tests ---------------------------------------------------------------- */

/* Two workers join from elsewhere and answer every task (the queen's own
 * process has no worker); when the run ends, the joiners end normally. */
TEST(joined_workers_serve_the_queen) {
  joiners j = {.n = 2, .key_file = {key_path, key_path}};
  bh_run_opts o = remote_opts(&j, 2, NULL, NULL);
  spread s;
  uint32_t i;

  ASSERT_INT_EQ(make_keys(), 0);
  ASSERT_INT_EQ(run_spread(&o, 16, &s), 0);
  ASSERT_INT_EQ(s.n, 16);
  ASSERT_INT_EQ(s.deaths, 0);
  for (i = 0; i < s.n; i++)
    ASSERT(is_joiner(&j, s.pids[i]));
  /* Both joined (the task waited for two), and both were told to die at
   * the end: a joiner that never joined exits 2. Which one ran what is
   * the offers' race. */
  ASSERT_INT_EQ(bh_test_exit_code(j.pid[0]), 0);
  ASSERT_INT_EQ(bh_test_exit_code(j.pid[1]), 0);
  close(j.err[0]);
  close(j.err[1]);
  drop_keys();
  return 0;
}

/* One of two joiners goes as `how` says in the middle of its first task:
 * every task is still answered, by the other, and the dead one is
 * mourned with its host and a cause that contains `cause`. */
static int
lose_one(const char *how, int64_t heartbeat_ms, const char *cause) {
  joiners j = {.n = 2, .key_file = {key_path, key_path},
               .victim = {how, NULL}, .after = {0, 1}};
  bh_run_opts o = remote_opts(&j, 2, NULL, NULL);
  spread s;
  uint32_t i;

  ASSERT_INT_EQ(make_keys(), 0);
  o.heartbeat_ms = heartbeat_ms;
  ASSERT_INT_EQ(run_spread(&o, 8, &s), 0);
  ASSERT_INT_EQ(s.n, 8);
  for (i = 0; i < s.n; i++)
    ASSERT_INT_EQ(s.pids[i], j.pid[1]);
  ASSERT_INT_EQ(s.deaths, 1);
  ASSERT(strstr(s.cause, cause) != NULL);
  ASSERT(strncmp(s.host, "127.0.0.1:", 10) == 0);
  ASSERT_INT_EQ(bh_test_exit_code(j.pid[1]), 0);
  j.pid[1] = 0;
  reap_all(&j);
  drop_keys();
  return 0;
}

TEST(a_killed_remote_worker_is_mourned_and_its_task_retried) {
  return lose_one("kill", 0, "connection lost");
}

/* A frozen host keeps its connection open: only the heartbeat's silence
 * tells, within three intervals. */
TEST(a_silent_remote_worker_is_mourned_by_its_heartbeat) {
  return lose_one("stop", 100, "no heartbeat for 300 ms");
}

static int
expect_population_error(const char *how, int n, int loss, const char *text) {
  joiners j = {.n = n, .key_file = {key_path, key_path},
               .victim = {how, NULL}, .after = {0, 1}};
  bh_run_opts o = remote_opts(&j, n, NULL, NULL);
  spread s;

  ASSERT_INT_EQ(make_keys(), 0);
  o.remote_loss = loss;
  ASSERT_INT_EQ(run_spread(&o, 4, &s), 0);
  ASSERT_INT_EQ(s.deaths, 1);
  if (strstr(s.errmsg, text) == NULL) {
    fprintf(stderr, "got: %s\n", s.errmsg);
    return 1;
  }
  reap_all(&j);
  drop_keys();
  return 0;
}

/* BH_REMOTE_FAIL: the first loss fails what is not done, naming the
 * worker, its host and the cause. */
TEST(remote_loss_fail_gives_up_at_the_first_loss) {
  return expect_population_error(
      "kill", 2, BH_REMOTE_FAIL,
      "PopulationError: The queen gave up: remote worker ");
}

/* BH_REMOTE_CONTINUE with nobody left and no worker allowed here: a
 * clear error, not a hive that waits for ever. */
TEST(with_every_worker_lost_and_none_here_the_queen_gives_up) {
  return expect_population_error(
      "kill", 1, BH_REMOTE_CONTINUE,
      "PopulationError: The queen gave up: every worker is lost (the last, "
      "remote worker ");
}

/* Joiners started by the queen's own words: n of them, at the first log
 * line that contains `when` (a logger's bh_log_fn). */
typedef struct rejoin {
  joiners *j;
  const char *when;
  int n;
  pid_t pid[2];
  int err[2];
} rejoin;

static void
rejoin_log(void *udata, bh_log_level level, int indent, const char *line) {
  rejoin *r = udata;
  int i;

  (void)level;
  (void)indent;
  if (r->pid[0] == 0 && strstr(line, r->when) != NULL)
    for (i = 0; i < r->n; i++)
      r->pid[i] = start_joiner(r->j->addr, key_path, NULL, 0, &r->err[i]);
}

/* BH_REMOTE_WAIT: the queen's warning that every worker is lost starts a
 * new joiner, which gets the retried tasks. */
TEST(remote_loss_wait_waits_for_a_worker_to_join) {
  joiners j = {.n = 1, .key_file = {key_path}, .victim = {"kill"}};
  rejoin rj = {.j = &j, .when = "tasks wait for a worker to join", .n = 1};
  bh_run_opts o = remote_opts(&j, 1, NULL, NULL);
  spread s;
  uint32_t i;

  ASSERT_INT_EQ(make_keys(), 0);
  o.remote_loss = BH_REMOTE_WAIT;
  o.logger = bh_logger_new(BH_LOG_WARNING, rejoin_log, &rj);
  ASSERT_INT_EQ(run_spread(&o, 4, &s), 0);
  bh_logger_free(o.logger);
  ASSERT(rj.pid[0] > 0);
  ASSERT_INT_EQ(s.deaths, 1);
  for (i = 0; i < s.n; i++)
    ASSERT_INT_EQ(s.pids[i], rj.pid[0]);
  ASSERT_INT_EQ(bh_test_exit_code(rj.pid[0]), 0);
  close(rj.err[0]);
  reap_all(&j);
  drop_keys();
  return 0;
}


/* A joiner with another key exits 2 saying it was refused, and garbage
 * sent to the door is refused too; both are logged with the peer's
 * address, and the hive serves its good worker meanwhile. */
TEST(a_wrong_key_and_garbage_are_refused_by_name) {
  joiners j = {.n = 2, .key_file = {key_path, bad_key_path},
               .garbage = true};
  bh_run_opts o = remote_opts(&j, 1, "read_to_end", NULL);
  loglines log = {.len = 0};
  bh_result *r = NULL;
  char said[2048];
  const char *p;
  int refusals = 0;

  ASSERT_INT_EQ(make_keys(), 0);
  o.logger = bh_logger_new(BH_LOG_WARNING, loglines_keep, &log);
  /* read_to_end reads the bad joiner's stderr (on_listen leaves the last
   * one's in read_fd) to its end: the bad joiner has exited by then. */
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  bh_logger_free(o.logger);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "s", said, sizeof(said)), 0);
  bh_result_free(r);
  ASSERT(strstr(said, "beehive worker: could not join: authentication "
                      "failed with 127.0.0.1:") != NULL);
  ASSERT(strstr(said, "refused") != NULL);
  ASSERT_INT_EQ(bh_test_exit_code(j.pid[1]), 2);
  ASSERT_INT_EQ(bh_test_exit_code(j.pid[0]), 0);
  for (p = log.text; (p = strstr(p, "authentication failed from "
                                    "127.0.0.1:")) != NULL; p++)
    refusals++;
  if (refusals != 2) {
    fprintf(stderr, "the queen logged:\n%s", log.text);
    return 1;
  }
  close(j.err[0]);
  close(j.err[1]);
  drop_keys();
  return 0;
}

/* Nobody joins: the run ends at the deadline with what happened. */
TEST(too_few_joiners_end_the_run_with_a_clear_error) {
  joiners j = {.n = 0};
  bh_run_opts o = remote_opts(&j, 1, "spread", NULL);
  bh_result *r = NULL;

  ASSERT_INT_EQ(make_keys(), 0);
  o.join_timeout_ms = 200;
  ASSERT_INT_EQ(bh_run(&o, &r), BH_ESPAWN);
  ASSERT_STR_EQ(bh_result_errtype(r), "SpawnError");
  ASSERT(strstr(bh_result_errmsg(r), "only 0 of 1 remote workers joined at "
                                     "127.0.0.1:") != NULL);
  ASSERT(strstr(bh_result_errmsg(r), "within 200 ms") != NULL);
  bh_result_free(r);
  drop_keys();
  return 0;
}

/* The queen's process is killed while her worker serves: the worker
 * exits 3 (it lost its queen) instead of waiting for ever. */
TEST(a_worker_that_loses_its_queen_exits_3) {
  int ready[2], hold[2];
  joiners j = {.n = 1, .key_file = {key_path}};
  pid_t q, worker = 0;

  ASSERT_INT_EQ(make_keys(), 0);
  ASSERT_INT_EQ(pipe(ready), 0);
  ASSERT_INT_EQ(pipe(hold), 0);
  /* The worker is the queen's child: orphaned, it becomes ours. */
  ASSERT_INT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  if ((q = fork()) == 0) {
    bh_run_opts o = remote_opts(&j, 1, "started", NULL);
    bh_result *r = NULL;

    close(ready[0]);
    close(hold[1]);
    started_fd = ready[1];
    read_fd = hold[0];
    bh_run(&o, &r);
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  /* Her task started: her worker joined. */
  ASSERT_INT_EQ(read(ready[0], &worker, sizeof(worker)), sizeof(worker));
  ASSERT(worker > 0);
  ASSERT_INT_EQ(kill(q, SIGKILL), 0);
  ASSERT_INT_EQ(bh_test_exit_code(q), 128 + SIGKILL);
  ASSERT_INT_EQ(bh_test_exit_code(worker), 3);
  close(ready[0]);
  close(hold[1]);
  drop_keys();
  return 0;
}

/* Reads n bytes of fd within 10 s: 0, or -1 (its end, or none in time). */
static int
read_within(int fd, void *p, size_t n) {
  struct pollfd pl = {.fd = fd, .events = POLLIN};

  if (poll(&pl, 1, 10000) != 1)
    return -1;
  return read(fd, p, n) == (ssize_t)n ? 0 : -1;
}

/* The queen's process is killed while her worker's task waits: the
 * worker, orphaned, cancels the task, whose code after the wait runs (the
 * wait returns BH_ECANCELLED), then exits 3. (It used to exit with the
 * task still suspended: its cleanup never ran and its fiber leaked.) */
TEST(an_orphaned_worker_ends_its_tasks_cancelled) {
  char dir[] = "/tmp/bh_orphan_XXXXXX", path[64];
  int64_t worker = 0;
  int said = 0, fd;
  pid_t q;

  ASSERT_INT_EQ(make_keys(), 0);
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, sizeof(path), "%s/fifo", dir);
  ASSERT_INT_EQ(mkfifo(path, 0600), 0);
  fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT(fd >= 0);
  /* The worker is the queen's child: orphaned, it becomes ours. */
  ASSERT_INT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  if ((q = fork()) == 0) {
    joiners j = {.n = 1, .key_file = {key_path}};
    bh_value *args = bh_value_pack(NULL, "[s]", path);
    bh_run_opts o = remote_opts(&j, 1, "nap_and_tell", args);
    bh_result *r = NULL;

    close(fd);
    bh_run(&o, &r);
    _exit(0);
  }
  ASSERT_INT_EQ(read_within(fd, &worker, sizeof(worker)), 0);
  ASSERT_INT_EQ(kill(q, SIGKILL), 0);
  ASSERT_INT_EQ(bh_test_exit_code(q), 128 + SIGKILL);
  ASSERT_INT_EQ(read_within(fd, &said, sizeof(said)), 0);
  ASSERT_INT_EQ(said, BH_ECANCELLED);
  ASSERT_INT_EQ(bh_test_exit_code((int)worker), 3);
  close(fd);
  unlink(path);
  rmdir(dir);
  drop_keys();
  return 0;
}

/* bh_run refuses, with a ValueError naming the option, before anything
 * starts. */
static int
refused(const bh_run_opts *o, const char *text) {
  bh_result *r = NULL;
  int rc = bh_run(o, &r);

  if (rc != BH_EINVAL || strstr(bh_result_errmsg(r), text) == NULL) {
    fprintf(stderr, "rc %s, message: %s\nwanted: %s\n", bh_err_name(rc),
            bh_result_errmsg(r), text);
    bh_result_free(r);
    return 1;
  }
  bh_result_free(r);
  return 0;
}

TEST(bad_remote_options_are_refused_by_name) {
  joiners j = {.n = 0};
  bh_run_opts o = remote_opts(&j, 0, "spread", NULL), p;
  char open_key[96];
  int fd;

  ASSERT_INT_EQ(make_keys(), 0);
  p = o, p.key_file = NULL;
  ASSERT_INT_EQ(refused(&p, "listen needs the hive's key: key_file or key"),
                0);
  p = o, p.key = (const unsigned char *)"0123456789abcdef0123456789abcdef";
  ASSERT_INT_EQ(refused(&p, "key and key_file are both set"), 0);
  p = o, p.listen = NULL, p.workers = 0, p.on_listen = NULL;
  ASSERT_INT_EQ(refused(&p, "key_file is set, but listen is NULL"), 0);
  p.key_file = NULL, p.workers = BH_NONE;
  ASSERT_INT_EQ(refused(&p, "workers -1 is out of range"), 0);
  p = o, p.remote_loss = 7;
  ASSERT_INT_EQ(refused(&p, "remote_loss 7 is out of range"), 0);
  p = o, p.heartbeat_ms = 5;
  ASSERT_INT_EQ(refused(&p, "heartbeat_ms 5 is out of range"), 0);
  p = o, p.remote_workers = -2;
  ASSERT_INT_EQ(refused(&p, "remote_workers -2 is out of range"), 0);
  p = o, p.min_workers = 2;
  ASSERT_INT_EQ(refused(&p, "workers -1 (none on this host) leaves no room "
                            "for min_workers 2"), 0);
  p = o, p.listen = "nonsense";
  ASSERT_INT_EQ(refused(&p, "address 'nonsense': expected host:port"), 0);
  /* A key others may read is no secret. */
  snprintf(open_key, sizeof(open_key), "%s_open", key_path);
  fd = open(open_key, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT(fd >= 0);
  ASSERT_INT_EQ(fchmod(fd, 0644), 0);
  ASSERT_INT_EQ(write(fd, "00112233445566778899aabbccddeeff00112233445566778899"
                          "aabbccddeeff\n", 65), 65);
  close(fd);
  p = o, p.key_file = open_key;
  ASSERT_INT_EQ(refused(&p, "chmod 600"), 0);
  unlink(open_key);
  drop_keys();
  return 0;
}

/* A missing key file is made, mode 0600, for the joiners to copy. */
TEST(a_missing_key_file_is_made_private) {
  joiners j = {.n = 1, .key_file = {NULL}};
  bh_run_opts o = remote_opts(&j, 1, NULL, NULL);
  char path[64];
  struct stat st;
  spread s;

  snprintf(path, sizeof(path), "/tmp/bh_remote_new_%d", (int)getpid());
  unlink(path);
  j.key_file[0] = path;
  o.key_file = path;
  ASSERT_INT_EQ(run_spread(&o, 2, &s), 0);
  ASSERT_INT_EQ(s.pids[0], j.pid[0]);
  ASSERT_INT_EQ(stat(path, &st), 0);
  ASSERT_INT_EQ(st.st_mode & 0777, 0600);
  ASSERT_INT_EQ(bh_test_exit_code(j.pid[0]), 0);
  close(j.err[0]);
  unlink(path);
  return 0;
}

/* What a joiner prints on stderr and exits with, run as fn. */
static int
joiner_says(int (*fn)(void), char *said, size_t len) {
  int p[2], st;
  ssize_t k;
  size_t have = 0;
  pid_t pid;

  if (pipe(p) != 0)
    return -1;
  if ((pid = fork()) == 0) {
    dup2(p[1], 2);
    _exit(fn());
  }
  close(p[1]);
  while (have + 1 < len && (k = read(p[0], said + have, len - 1 - have)) > 0)
    have += (size_t)k;
  said[have] = '\0';
  close(p[0]);
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
join_nobody(void) {
  bh_join_opts o = {.address = "127.0.0.1:1", .key_file = key_path,
                    .timeout_ms = 1000};

  return bh_join(&o, (const bh_class *const[]){&remote_worker, NULL});
}

static int
join_without_key(void) {
  bh_join_opts o = {.address = "127.0.0.1:1"};

  return bh_join(&o, (const bh_class *const[]){&remote_worker, NULL});
}

/* Nobody listens (within the timeout, retried), or no key: exit 2 and a
 * line that says why. A refused connection is tried again, as a worker
 * started with its queen (mpirun, srun) finds nobody listening yet: so
 * the joiner gives up only when its next try would come after its
 * timeout (1 s; the pauses between tries grow to 200 ms), saying it was
 * refused. */
TEST(a_joiner_that_cannot_join_exits_2_saying_why) {
  char said[512];
  int64_t t0;

  ASSERT_INT_EQ(make_keys(), 0);
  t0 = bh_now();
  ASSERT_INT_EQ(joiner_says(join_nobody, said, sizeof(said)), 2);
  ASSERT(bh_now() - t0 >= 800);
  ASSERT(strstr(said, "beehive worker: could not join: ") != NULL);
  ASSERT(strstr(said, "cannot connect to 127.0.0.1:1: Connection refused") !=
         NULL);
  ASSERT_INT_EQ(joiner_says(join_without_key, said, sizeof(said)), 2);
  ASSERT(strstr(said, "bh_join: a key or a key_file is required") != NULL);
  drop_keys();
  return 0;
}

/* A launcher's SIGTERM ends a joined worker (it has no queen on its host
 * to lead): mourned, its task retried, instead of a worker that cannot
 * be stopped but by SIGKILL. */
TEST(a_joined_worker_stops_at_sigterm) {
  return lose_one("term", 0, "connection lost");
}

/* SIGINT while the queen waits for her workers ends the run cancelled at
 * once, rather than at the join deadline (or never, with none). */
static void
interrupt_me(void *udata, const char *address) {
  (void)udata;
  (void)address;
  kill(getpid(), SIGINT);
}

TEST(sigint_while_waiting_for_joiners_cancels_the_run) {
  joiners j = {.n = 0};
  bh_run_opts o = remote_opts(&j, 1, "spread", NULL);
  bh_result *r = NULL;

  ASSERT_INT_EQ(make_keys(), 0);
  o.join_timeout_ms = BH_NONE;
  o.on_listen = interrupt_me;
  ASSERT_INT_EQ(bh_run(&o, &r), BH_ECANCELLED);
  ASSERT(strstr(bh_result_reason(r), "interrupted by SIGINT") != NULL);
  bh_result_free(r);
  drop_keys();
  return 0;
}

/* A worker lost after it joined and before the task started: the queen
 * waits for another (its loss is no reason to give up yet). The next two
 * joiners start only once she said so. */
TEST(a_worker_lost_before_the_start_is_waited_for) {
  joiners j = {.n = 1, .key_file = {key_path}, .victim = {"init"}};
  rejoin l = {.j = &j, .when = "was lost before her task started", .n = 2};
  bh_run_opts o = remote_opts(&j, 2, NULL, NULL);
  spread s;
  int i;

  ASSERT_INT_EQ(make_keys(), 0);
  o.join_timeout_ms = 20000;
  o.logger = bh_logger_new(BH_LOG_WARNING, rejoin_log, &l);
  ASSERT_INT_EQ(run_spread(&o, 4, &s), 0);
  bh_logger_free(o.logger);
  ASSERT(l.pid[0] > 0 && l.pid[1] > 0);
  ASSERT_INT_EQ(s.n, 4);
  for (i = 0; i < 4; i++)
    ASSERT(s.pids[i] == l.pid[0] || s.pids[i] == l.pid[1]);
  ASSERT_INT_EQ(bh_test_exit_code(j.pid[0]), 128 + SIGKILL);
  for (i = 0; i < 2; i++) {
    ASSERT_INT_EQ(bh_test_exit_code(l.pid[i]), 0);
    close(l.err[i]);
  }
  close(j.err[0]);
  drop_keys();
  return 0;
}

/* A long heartbeat (100 s) is taken (the kernel's keepalive has ceilings
 * the settings must keep within), and the joined worker's kernel timeout
 * follows the queen's interval: twice three heartbeats, 600,000 ms. */
TEST(the_queens_heartbeat_sets_the_joiners_timeouts) {
  joiners j = {.n = 1, .key_file = {key_path}};
  bh_run_opts o = remote_opts(&j, 1, "ask", NULL);
  bh_value *args = bh_value_pack(NULL, "[s]", "user_timeout");
  bh_result *r = NULL;
  int v = 0;

  ASSERT_INT_EQ(make_keys(), 0);
  o.task_args = args;
  o.heartbeat_ms = 100000;
  o.join_timeout_ms = 10000;
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "i", &v), 0);
  ASSERT_INT_EQ(v, 600000);
  bh_result_free(r);
  bh_value_free(args);
  ASSERT_INT_EQ(bh_test_exit_code(j.pid[0]), 0);
  close(j.err[0]);
  drop_keys();
  return 0;
}

TEST_MAIN_WORKER(
    remote_worker, TEST_ENTRY_T(joined_workers_serve_the_queen, 60),
    TEST_ENTRY_T(a_killed_remote_worker_is_mourned_and_its_task_retried, 60),
    TEST_ENTRY_T(a_silent_remote_worker_is_mourned_by_its_heartbeat, 60),
    TEST_ENTRY_T(remote_loss_fail_gives_up_at_the_first_loss, 60),
    TEST_ENTRY_T(with_every_worker_lost_and_none_here_the_queen_gives_up, 60),
    TEST_ENTRY_T(remote_loss_wait_waits_for_a_worker_to_join, 60),
    TEST_ENTRY_T(a_wrong_key_and_garbage_are_refused_by_name, 60),
    TEST_ENTRY_T(too_few_joiners_end_the_run_with_a_clear_error, 30),
    TEST_ENTRY_T(a_worker_that_loses_its_queen_exits_3, 30),
    TEST_ENTRY_T(an_orphaned_worker_ends_its_tasks_cancelled, 30),
    TEST_ENTRY_T(bad_remote_options_are_refused_by_name, 30),
    TEST_ENTRY_T(a_missing_key_file_is_made_private, 30),
    TEST_ENTRY_T(a_joiner_that_cannot_join_exits_2_saying_why, 30),
    TEST_ENTRY_T(a_joined_worker_stops_at_sigterm, 60),
    TEST_ENTRY_T(sigint_while_waiting_for_joiners_cancels_the_run, 30),
    TEST_ENTRY_T(a_worker_lost_before_the_start_is_waited_for, 60),
    TEST_ENTRY_T(the_queens_heartbeat_sets_the_joiners_timeouts, 30))
