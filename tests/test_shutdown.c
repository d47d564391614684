/* test_shutdown.c - the end of a hive, whatever happens on the way: SIGINT
 * and SIGTERM sent to the whole process group (a terminal's Ctrl-C,
 * systemd) or to the queen alone, with fork and exec starts and a
 * sub-hive; a cancellation the queen's handler cannot swallow; workers
 * stuck in C code when their delegation is dropped; workers that will not
 * die when told to. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "fixture.h"
#include "runner.h"

#define MAX_PIDS 16

static int64_t
now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Makes a FIFO in a new temporary directory; returns its reader, opened
 * read-write so that it never sees an end of file between writers. */
static int
make_fifo(char *path, size_t len) {
  char dir[] = "/tmp/bh_shutdown_XXXXXX";

  if (mkdtemp(dir) == NULL)
    return -1;
  snprintf(path, len, "%s/fifo", dir);
  if (mkfifo(path, 0600) != 0)
    return -1;
  return open(path, O_RDWR | O_CLOEXEC);
}

static void
drop_fifo(const char *path, int fd) {
  char dir[256];

  close(fd);
  unlink(path);
  snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(path, '/') - path), path);
  rmdir(dir);
}

/* Reads n lines of process ids from fd into pids. */
static int
read_pids(int fd, pid_t *pids, int n) {
  char buf[512];
  size_t have = 0;
  int got = 0;

  while (got < n) {
    char *nl;
    ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);

    if (r <= 0)
      return -1;
    have += (size_t)r;
    buf[have] = '\0';
    while (got < n && (nl = strchr(buf, '\n')) != NULL) {
      pids[got++] = (pid_t)atoi(buf);
      memmove(buf, nl + 1, have - (size_t)(nl + 1 - buf) + 1);
      have -= (size_t)(nl + 1 - buf);
    }
  }
  return 0;
}

static void
read_all(int fd, char *buf, size_t len) {
  size_t have = 0;
  ssize_t r;

  while (have + 1 < len && (r = read(fd, buf + have, len - 1 - have)) > 0)
    have += (size_t)r;
  buf[have] = '\0';
}

/* True when every process of pidfds has ended by deadline (ms). */
static int
all_gone_by(const int *pidfds, int n, int64_t deadline) {
  int i;

  for (i = 0; i < n; i++) {
    struct pollfd p = {.fd = pidfds[i], .events = POLLIN};
    int64_t left = deadline - now_ms();

    if (poll(&p, 1, left > 0 ? (int)left : 0) != 1) {
      fprintf(stderr, "process %d of the hive is still there\n", i);
      return 0;
    }
  }
  return 1;
}

typedef struct group_run {
  int sig;
  const char *start; /* "fork" or "exec" */
  int sub;           /* workers are sub-queens */
  const char *mode;  /* "nap" or "spin" */
  int to_group;      /* the signal goes to the process group, not the
                      * queen alone */
} group_run;

/* Starts sig_hive in a session of its own, waits until every one of its
 * tasks runs, signals it, and checks: the exit status (130 or 143), the
 * reason, no assertion on stderr, the time it took (within the default
 * kill grace + shutdown grace), and that no process of the hive is left
 * two seconds after the queen's exit. */
static int
group_case(const group_run *g) {
  int n = g->sub ? 4 : 2, pidfds[MAX_PIDS], out[2], err[2], fifo, status;
  int want = g->sig == SIGINT ? 130 : 143, i;
  pid_t pid, pids[MAX_PIDS];
  char path[256], text[4096], errs[8192], want_reason[64];
  int64_t t0, took;

  /* Orphans of the hive (a sub-queen's workers) come to this process,
   * which can then tell when they are gone and reap them. */
  ASSERT(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  ASSERT((fifo = make_fifo(path, sizeof(path))) >= 0);
  ASSERT(pipe(out) == 0 && pipe(err) == 0);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    setsid(); /* a process group of its own, as a terminal's job */
    /* Gone with this test if it fails or times out: a hive that
     * cannot be stopped must not spin on after the test. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execl(BH_HELPER_DIR "/sig_hive", "sig_hive", g->start,
          g->sub ? "1" : "0", g->mode, path, (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  ASSERT(read_pids(fifo, pids, n) == 0); /* every task runs */
  for (i = 0; i < n; i++)
    ASSERT((pidfds[i] = pidfd_open(pids[i], 0)) >= 0);
  t0 = now_ms();
  ASSERT(kill(g->to_group ? -pid : pid, g->sig) == 0);
  ASSERT(waitpid(pid, &status, 0) == pid);
  took = now_ms() - t0;
  read_all(out[0], text, sizeof(text));
  read_all(err[0], errs, sizeof(errs));
  fprintf(stderr, "took %lld ms; said: %s", (long long)took, text);
  if (errs[0] != '\0')
    fprintf(stderr, "its stderr: %s\n", errs);
  ASSERT(strstr(errs, "ssertion") == NULL);
  ASSERT(WIFEXITED(status));
  ASSERT_INT_EQ(WEXITSTATUS(status), want);
  snprintf(want_reason, sizeof(want_reason), "interrupted by SIG%s.",
           sigabbrev_np(g->sig));
  ASSERT(strstr(text, "rc BH_ECANCELLED") != NULL);
  ASSERT(strstr(text, want_reason) != NULL);
  ASSERT(took < 1000 + 5000 + 1000);
  ASSERT(all_gone_by(pidfds, n, now_ms() + 2000));
  while (waitpid(-1, NULL, WNOHANG) > 0)
    ;
  ASSERT(kill(-pid, 0) == -1 && errno == ESRCH);
  for (i = 0; i < n; i++)
    close(pidfds[i]);
  drop_fifo(path, fifo);
  return 0;
}

#define GROUP_TEST(name, ...)                                                \
  TEST(name) {                                                               \
    group_run g = {__VA_ARGS__};                                             \
    return group_case(&g);                                                   \
  }

/* The terminal's Ctrl-C and a supervisor's SIGTERM reach every process. */
GROUP_TEST(ctrl_c_to_the_group_fork, SIGINT, "fork", 0, "nap", 1)
GROUP_TEST(sigterm_to_the_group_fork, SIGTERM, "fork", 0, "nap", 1)
GROUP_TEST(ctrl_c_to_the_group_exec, SIGINT, "exec", 0, "nap", 1)
GROUP_TEST(sigterm_to_the_group_exec, SIGTERM, "exec", 0, "nap", 1)
GROUP_TEST(ctrl_c_to_a_sub_hive_fork, SIGINT, "fork", 1, "nap", 1)
GROUP_TEST(sigterm_to_a_sub_hive_exec, SIGTERM, "exec", 1, "nap", 1)
/* Workers stuck in C code: the grace kill ends them. */
GROUP_TEST(sigterm_to_spinning_workers, SIGTERM, "fork", 0, "spin", 1)
GROUP_TEST(ctrl_c_to_a_spinning_sub_hive, SIGINT, "exec", 1, "spin", 1)
/* The queen alone: her handler stops at bh_group_next's code and returns
 * a count, and still the run reports the cancellation. */
GROUP_TEST(sigint_to_the_queen_is_not_swallowed, SIGINT, "fork", 0, "nap",
           0)
GROUP_TEST(sigterm_to_the_queen_stuck_workers, SIGTERM, "fork", 1, "spin",
           0)

/* ---- delegations dropped while their worker spins ---------------------- */

static int
w_spin(bh_task *t) {
  char fifo[256];
  char line[32];
  volatile unsigned long n = 0;
  int fd, len;

  if (bh_task_unpack(t, "[s]", fifo, sizeof(fifo)) != 0)
    return BH_ERAISED;
  fd = open(fifo, O_WRONLY);
  len = snprintf(line, sizeof(line), "%d\n", (int)getpid());
  if (fd < 0 || write(fd, line, (size_t)len) != len)
    return BH_EPIPE;
  close(fd);
  for (;;)
    n++;
  return 0;
}

static int
w_pid(bh_task *t) {
  return bh_return(t, "I", (int64_t)getpid());
}

/* A cleanup that never returns: the worker never says dead. */
static void
w_stuck_cleanup(bh_bee *bee) {
  volatile unsigned long n = 0;

  (void)bee;
  for (;;)
    n++;
}

static const bh_task_def wtasks[] = {
    {"spin", w_spin}, {"pid", w_pid}, {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = wtasks};
static const bh_class stuck_worker = {.name = "Stuck", .tasks = wtasks,
                                      .cleanup = w_stuck_cleanup};

/* [fifo path, reader fd]: starts "spin" in a group, waits until it runs,
 * frees the group, then delegates "pid": with one worker allowed, that
 * answer can only come once the spinning worker is killed and replaced.
 * Returns [spinner pid, answering pid]. */
static int
q_drop_group(bh_task *t) {
  char fifo[256];
  int64_t fd, answered = 0;
  pid_t spinner;
  bh_group *g = bh_group_new(t);
  bh_result *r;
  int rc;

  if (bh_task_unpack(t, "[s I]", fifo, sizeof(fifo), &fd) != 0)
    return BH_ERAISED;
  bh_group_delegate(g, NULL, NULL, "spin", "[s]", fifo);
  if ((rc = bh_wait_fd(t, (int)fd, BH_READABLE, -1)) < 0 ||
      read_pids((int)fd, &spinner, 1) != 0)
    return rc < 0 ? rc : BH_EPIPE;
  bh_group_free(g);
  rc = bh_delegate(t, &r, "pid", NULL);
  if (rc == 0)
    bh_result_unpack(r, NULL, 0, "I", &answered);
  bh_result_free(r);
  return rc != 0 ? rc : bh_return(t, "[I I]", (int64_t)spinner, answered);
}

/* Delegates "pid" once and returns. */
static int
q_once(bh_task *t) {
  bh_result *r;
  int rc = bh_delegate(t, &r, "pid", NULL);

  bh_result_free(r);
  return rc != 0 ? rc : bh_return(t, "s", "done");
}

static const bh_task_def qtasks[] = {
    {"drop_group", q_drop_group}, {"once", q_once}, {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = qtasks};

TEST(dropped_group_kills_a_stuck_worker) {
  bh_run_opts o = {.queen_class = &queen, .worker_class = &worker,
                   .task_name = "drop_group", .workers = 1,
                   .max_workers = 1, .max_concurrency = 1,
                   .kill_grace_ms = 200};
  char path[256];
  int fd = make_fifo(path, sizeof(path));
  int64_t spinner, answered;
  bh_value *args;
  bh_result *r;

  ASSERT(fd >= 0);
  ASSERT((args = bh_value_pack(NULL, "[s I]", path, (int64_t)fd)) != NULL);
  o.task_args = args;
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &spinner, &answered),
                0);
  ASSERT(spinner > 0 && answered > 0 && spinner != answered);
  bh_result_free(r);
  bh_value_free(args);
  drop_fifo(path, fd);
  return 0;
}


/* A hive whose worker never ends after die, with that shutdown grace:
 * bh_run returns the queen's answer; *took and l get how long it took and
 * what was logged (the cause the worker is mourned with). */
static int
stuck_worker_case(int64_t grace, int64_t *took, loglines *l) {
  bh_run_opts o = {.queen_class = &queen, .worker_class = &stuck_worker,
                   .task_name = "once", .workers = 1, .max_workers = 1,
                   .shutdown_grace_ms = grace};
  char value[16];
  bh_result *r;
  int64_t t0 = now_ms();

  o.logger = bh_logger_new(BH_LOG_WARNING, loglines_keep, l);
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  *took = now_ms() - t0;
  bh_logger_free(o.logger);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "s", value, sizeof(value)), 0);
  ASSERT_STR_EQ(value, "done");
  bh_result_free(r);
  fprintf(stderr, "took %lld ms; logged:\n%s", (long long)*took, l->text);
  return 0;
}

/* It is killed after the shutdown grace, and mourned with that cause. */
TEST(shutdown_grace_kills_a_worker_that_will_not_die) {
  loglines l = {.len = 0};
  int64_t took;

  ASSERT_INT_EQ(stuck_worker_case(300, &took, &l), 0);
  ASSERT(took >= 300);
  ASSERT(strstr(l.text, "it did not end within 300 ms of being told to "
                        "die") != NULL);
  return 0;
}

/* shutdown_grace_ms -1 (BH_NONE): no grace. It is killed as soon as it is
 * told to die, not after the default 5 s, and mourned with that cause. */
TEST(shutdown_grace_none_kills_at_once) {
  loglines l = {.len = 0};
  int64_t took;

  ASSERT_INT_EQ(stuck_worker_case(BH_NONE, &took, &l), 0);
  ASSERT(strstr(l.text, "it was killed at once when told to die "
                        "(shutdown_grace_ms -1: no grace)") != NULL);
  ASSERT(took < 5000);
  return 0;
}

TEST_MAIN(TEST_ENTRY_T(ctrl_c_to_the_group_fork, 30),
          TEST_ENTRY_T(sigterm_to_the_group_fork, 30),
          TEST_ENTRY_T(ctrl_c_to_the_group_exec, 30),
          TEST_ENTRY_T(sigterm_to_the_group_exec, 30),
          TEST_ENTRY_T(ctrl_c_to_a_sub_hive_fork, 30),
          TEST_ENTRY_T(sigterm_to_a_sub_hive_exec, 30),
          TEST_ENTRY_T(sigterm_to_spinning_workers, 30),
          TEST_ENTRY_T(ctrl_c_to_a_spinning_sub_hive, 30),
          TEST_ENTRY_T(sigint_to_the_queen_is_not_swallowed, 30),
          TEST_ENTRY_T(sigterm_to_the_queen_stuck_workers, 30),
          TEST_ENTRY_T(shutdown_grace_none_kills_at_once, 30),
          TEST_ENTRY_T(dropped_group_kills_a_stuck_worker, 20),
          TEST_ENTRY_T(shutdown_grace_kills_a_worker_that_will_not_die, 20))
