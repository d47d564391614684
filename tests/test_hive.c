/* test_hive.c - whole hives through bh_run(): every outcome, workers that
 * crash, max_concurrency seen from inside the tasks, spreading a burst,
 * a two-level hive, an idle hive's CPU, local fibers, fds and contexts. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "base/base.h"
#include "runner.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

/* ---- worker tasks ------------------------------------------------------ */

static int
w_echo(bh_task *t) {
  return bh_return_object(t, bh_task_args(t));
}

static int
w_fail(bh_task *t) {
  char what[64];

  if (bh_task_unpack(t, "[s]", what, sizeof(what)) != 0)
    return BH_ERAISED;
  return bh_raise(t, "ValueError", "bad input: %s", what);
}

/* Recurses until the fiber's guard page stops it. */
static int
overflow(volatile char *prev, int depth) {
  volatile char frame[4096];

  frame[0] = (char)depth;
  frame[4095] = prev ? prev[0] : 0;
  return depth > 1000000 ? frame[1] : overflow(frame, depth + 1) + frame[0];
}

static int
w_crash(bh_task *t) {
  char how[16];
  volatile int *null = NULL;

  if (bh_task_unpack(t, "[s]", how, sizeof(how)) != 0)
    return BH_ERAISED;
  if (strcmp(how, "kill") == 0)
    kill(getpid(), SIGKILL);
  else if (strcmp(how, "abort") == 0)
    abort();
  else if (strcmp(how, "overflow") == 0)
    return overflow(NULL, 0);
  else if (strcmp(how, "exit") == 0)
    _exit(7); /* not exit(): LeakSanitizer would turn it into an abort */
  else
    *null = 1;
  return 0;
}

/* Sleeps ms and returns [bee id, most tasks seen running at once]. */
static int
w_nap(bh_task *t) {
  int64_t ms;
  size_t before, after;

  if (bh_task_unpack(t, "[I]", &ms) != 0)
    return BH_ERAISED;
  before = bh_bee_running(bh_task_bee(t));
  bh_sleep(t, ms);
  after = bh_bee_running(bh_task_bee(t));
  return bh_return(t, "[I I]", bh_bee_id(bh_task_bee(t)),
                   (int64_t)(before > after ? before : after));
}

static int
w_pids(bh_task *t) {
  return bh_return(t, "[I I]", (int64_t)getpid(), (int64_t)getppid());
}

/* The parent of process pid, from /proc; -1 if unknown. */
static int64_t
parent_of(int64_t pid) {
  char path[64];
  long pp = -1;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
  f = fopen(path, "r");
  if (f != NULL) {
    if (fscanf(f, "%*d (%*[^)]) %*c %ld", &pp) != 1)
      pp = -1;
    fclose(f);
  }
  return pp;
}

/* [my pid, my parent, the pids a delegation of "pids" saw] */
static int
w_chain(bh_task *t) {
  bh_result *r;
  int64_t pid = -1, ppid = -1;

  if (bh_delegate(t, &r, "pids", NULL) == 0)
    bh_result_unpack(r, NULL, 0, "[I I]", &pid, &ppid);
  bh_result_free(r);
  return bh_return(t, "[I I I I I]", (int64_t)getpid(), (int64_t)getppid(),
                   pid, ppid, parent_of(ppid));
}

static int
w_cpu_us(bh_task *t) {
  struct timespec ts;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return bh_return(t, "I", (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* [sockets held, whether any fd here opens the file named args[0]] */
static int
w_fds(bh_task *t) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int64_t sockets = 0;
  int found = 0;
  char path[300], link[300] = "", probe[256];
  ssize_t n;

  if (bh_task_unpack(t, "[s]", probe, sizeof(probe)) != 0)
    return BH_ERAISED;
  while (d != NULL && (e = readdir(d)) != NULL) {
    snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
    n = readlink(path, link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    sockets += strncmp(link, "socket:", 7) == 0;
    found |= strcmp(link, probe) == 0;
  }
  if (d != NULL)
    closedir(d);
  return bh_return(t, "[I b]", sockets, found);
}

static int
w_context(bh_task *t) {
  const bh_context *c = bh_task_context(t);
  const char *user = c->user;

  return bh_return(t, "[b s s b b]", c->async, c->s3_profile, user,
                   c->s3_client != NULL, c->http_session != NULL);
}

static int
w_init_seen(bh_task *t) {
  int64_t *st = bh_bee_state(bh_task_bee(t));

  return bh_return(t, "[I I]", st[0], st[1]);
}

static int
w_big(bh_task *t) {
  int64_t n;
  char *buf;
  int rc;

  if (bh_task_unpack(t, "[I]", &n) != 0)
    return BH_ERAISED;
  buf = calloc(1, (size_t)n);
  rc = bh_return(t, "y#", buf, (size_t)n);
  free(buf);
  return rc;
}

static int
w_init(bh_bee *bee, const msgpack_object *args, const msgpack_object *kwargs) {
  int64_t *st = bh_bee_state(bee);

  (void)kwargs;
  if (args->via.array.size == 2)
    return bh_unpack(args, NULL, 0, "[I I]", &st[0], &st[1]);
  return 0;
}

static void *
w_ctx_new(bh_bee *bee, const char *s3_profile) {
  (void)bee;
  (void)s3_profile;
  return (void *)"made by the hook";
}

static const bh_task_def worker_tasks[] = {
    {"echo", w_echo},       {"fail", w_fail},   {"crash", w_crash},
    {"nap", w_nap},         {"pids", w_pids},   {"cpu_us", w_cpu_us},
    {"fds", w_fds},       {"context", w_context},
    {"init_seen", w_init_seen}, {"big", w_big}, {NULL, NULL}};
static const bh_class worker = {.name = "W",
                                .tasks = worker_tasks,
                                .state_size = 2 * sizeof(int64_t),
                                .init = w_init,
                                .context_new = w_ctx_new};

/* ---- queen tasks ------------------------------------------------------- */

static int
q_raise(bh_task *t) {
  return bh_raise(t, "KeyError", "queen says no");
}

static int
q_cancel(bh_task *t) {
  bh_cancel_reason(t, "because");
  return BH_ECANCELLED;
}

/* Delegates n naps of ms and returns [max running seen, count by bee 0,
 * count by bee 1]. */
static int
q_naps(bh_task *t) {
  int64_t n, ms, i, most = 0, by[2] = {0, 0}, id, seen;
  bh_group *g = bh_group_new(t);
  bh_future *f;

  if (bh_task_unpack(t, "[I I]", &n, &ms) != 0)
    return BH_ERAISED;
  for (i = 0; i < n; i++)
    bh_group_delegate(g, NULL, NULL, "nap", "[I]", ms);
  while (bh_group_next(g, &f, -1) == 0) {
    if (bh_result_unpack(bh_future_result(f), NULL, 0, "[I I]", &id,
                         &seen) == 0) {
      most = seen > most ? seen : most;
      by[id & 1]++;
    }
    bh_future_free(f);
  }
  bh_group_free(g);
  return bh_return(t, "[I I I]", most, by[0], by[1]);
}

/* Returns the worker's CPU time used over a 500 ms idle stretch, and the
 * queen's own. */
static int
q_idle(bh_task *t) {
  struct timespec a, b;
  int64_t w0, w1;
  bh_result *r;

  bh_delegate(t, &r, "cpu_us", NULL);
  bh_result_unpack(r, NULL, 0, "I", &w0);
  bh_result_free(r);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
  bh_sleep(t, 500);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
  bh_delegate(t, &r, "cpu_us", NULL);
  bh_result_unpack(r, NULL, 0, "I", &w1);
  bh_result_free(r);
  return bh_return(t, "[I I]", w1 - w0,
                   (int64_t)((b.tv_sec - a.tv_sec) * 1000000 +
                             (b.tv_nsec - a.tv_nsec) / 1000));
}

static int
local_nap(bh_task *t, void *arg) {
  bh_sleep(t, (int64_t)(intptr_t)arg);
  return bh_return(t, "I", (int64_t)(intptr_t)arg);
}

/* Three local fibers: returns their values in completion order. */
static int
q_local(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int64_t order[3], i = 0;

  bh_group_go(g, NULL, NULL, local_nap, (void *)(intptr_t)60);
  bh_group_go(g, NULL, NULL, local_nap, (void *)(intptr_t)5);
  bh_group_go(g, NULL, NULL, local_nap, (void *)(intptr_t)30);
  while (i < 3 && bh_group_next(g, &f, -1) == 0) {
    bh_result_unpack(bh_future_result(f), NULL, 0, "I", &order[i++]);
    bh_future_free(f);
  }
  bh_group_free(g);
  return bh_return(t, "[I I I]", order[0], order[1], order[2]);
}

static int
local_write(bh_task *t, void *arg) {
  bh_sleep(t, 20);
  return write((int)(intptr_t)arg, "x", 1) == 1 ? 0 : BH_EPIPE;
}

/* Waits for a pipe to become readable while a local fiber writes to it. */
static int
q_fd(bh_task *t) {
  int p[2], ev, timed;
  bh_group *g = bh_group_new(t);
  bh_future *f;

  if (pipe(p) != 0)
    return bh_raise(t, "OSError", "pipe");
  timed = bh_wait_fd(t, p[0], BH_READABLE, bh_now() + 5);
  bh_group_go(g, NULL, NULL, local_write, (void *)(intptr_t)p[1]);
  ev = bh_wait_fd(t, p[0], BH_READABLE, -1);
  bh_group_next(g, &f, -1);
  bh_future_free(f);
  bh_group_free(g);
  close(p[0]);
  close(p[1]);
  return bh_return(t, "[i i]", timed, ev);
}

/* Waits on p[0] forever; slot 2 of arg says 2 while it waits, then the
 * wait's code. */
static int
local_wait(bh_task *t, void *arg) {
  int *p = arg;

  p[2] = 2;
  p[2] = bh_wait_fd(t, p[0], BH_READABLE, -1);
  return 0;
}

/* bh_wait_fd's errors: events it does not know, a descriptor that is not
 * open or that epoll cannot watch, one another task waits on, and a
 * cancellation. Returns [events 0, events 4, the message, EBADF, EPERM,
 * EEXIST, cancelled]. */
static int
q_fd_errors(bh_task *t) {
  char file[] = "/tmp/bh_test_fd_XXXXXX", why[128];
  int p[3] = {-1, -1, 1}, e0, e4, bad, perm, exist, reg, closed;
  bh_group *g = bh_group_new(t);
  bh_future *f;

  if (pipe(p) != 0 || (reg = mkstemp(file)) < 0 || (closed = dup(p[0])) < 0)
    return bh_raise(t, "OSError", "pipe");
  unlink(file);
  e0 = bh_wait_fd(t, p[0], 0, -1);
  e4 = bh_wait_fd(t, p[0], 4, -1);
  snprintf(why, sizeof(why), "%s", bh_task_errmsg(t));
  close(closed); /* a number nothing holds now */
  bad = bh_wait_fd(t, closed, BH_READABLE, -1);
  perm = bh_wait_fd(t, reg, BH_READABLE, -1);
  bh_group_go(g, &f, NULL, local_wait, p);
  /* A yield: the new fiber runs at the end of this turn, before the
   * timer can wake this one. */
  bh_sleep(t, 0);
  if (p[2] != 2)
    return bh_raise(t, "RuntimeError", "the local fiber is not waiting");
  exist = bh_wait_fd(t, p[0], BH_READABLE, bh_now() + 1000);
  bh_future_cancel(f);
  bh_future_wait(f, -1);
  bh_future_free(f); /* waited for: the caller's to free */
  bh_group_free(g);
  close(p[0]);
  close(p[1]);
  close(reg);
  return bh_return(t, "[i i s i i i i]", e0, e4, why, bad, perm, exist,
                   p[2]);
}

/* Delegates busy_status; returns the answer as it is. */
static int
q_busy_raw(bh_task *t) {
  bh_result *r;
  int rc = bh_delegate(t, &r, "busy_status", NULL);

  if (rc == 0)
    rc = bh_return_object(t, bh_result_value(r));
  bh_result_free(r);
  return rc;
}

/* A deadline on one delegation: returns the wait's code, then the value
 * once it is done. */
static int
q_deadline(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int64_t id, seen;
  int rc, rc2;

  bh_group_delegate(g, &f, NULL, "nap", "[I]", (int64_t)200);
  rc = bh_future_wait(f, bh_now() + 20);
  rc2 = bh_future_wait(f, -1);
  bh_result_unpack(bh_future_result(f), NULL, 0, "[I I]", &id, &seen);
  bh_future_free(f);
  bh_group_free(g);
  return bh_return(t, "[i i I]", rc, rc2, seen);
}

/* Cancels its delegation at once and raises the cancelled result. */
static int
q_raise_cancelled(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int rc;

  bh_group_delegate(g, &f, NULL, "nap", "[I]", (int64_t)100000);
  bh_future_cancel(f);
  rc = bh_raise_result(t, bh_future_result(f));
  bh_group_free(g);
  return rc;
}

/* Sends the worker's pid down fd args[0], then naps forever. */
static int
q_report_and_hang(bh_task *t) {
  int64_t fd, wpid, ppid;
  bh_result *r;

  bh_task_unpack(t, "[I]", &fd);
  bh_delegate(t, &r, "pids", NULL);
  bh_result_unpack(r, NULL, 0, "[I I]", &wpid, &ppid);
  bh_result_free(r);
  if (write((int)fd, &wpid, sizeof(wpid)) != sizeof(wpid))
    return BH_EPIPE;
  bh_sleep(t, 1000000);
  return 0;
}

static int
local_long_sleep(bh_task *t, void *arg) {
  *(int *)arg = bh_sleep(t, 10000);
  return 0;
}

/* Frees a group while its local fiber sleeps: the fiber wakes cancelled. */
static int
q_cancel_local(bh_task *t) {
  static int code = 1;
  bh_group *g = bh_group_new(t);
  int64_t t0 = bh_now();

  bh_group_go(g, NULL, NULL, local_long_sleep, &code);
  bh_sleep(t, 10);
  bh_group_free(g);
  bh_sleep(t, 10);
  return bh_return(t, "[i I]", code, bh_now() - t0);
}

/* [n] -> busy_status of the worker while n naps of 60 s run there. */
static int
q_busy_with(bh_task *t) {
  bh_group *g = bh_group_new(t);
  int64_t n, i;
  bh_result *r;
  double busy = -1;
  int rc;

  if (bh_task_unpack(t, "[I]", &n) != 0)
    return BH_ERAISED;
  for (i = 0; i < n; i++)
    bh_group_delegate(g, NULL, NULL, "nap", "[I]", (int64_t)60000);
  rc = bh_delegate(t, &r, "busy_status", NULL);
  if (rc == 0)
    rc = bh_result_unpack(r, NULL, 0, "f", &busy);
  bh_result_free(r);
  bh_group_free(g);
  return rc != 0 ? rc : bh_return(t, "f", busy);
}

static const bh_task_def queen_tasks[] = {
    {"busy_with", q_busy_with}, {"busy_raw", q_busy_raw},
    {"fd_errors", q_fd_errors},
    {"cancel_local", q_cancel_local},
    {"pass", fixture_pass},     {"raise", q_raise}, {"cancel", q_cancel},
    {"naps", q_naps},     {"idle", q_idle},   {"local", q_local},
    {"fd", q_fd},         {"deadline", q_deadline},
    {"raise_cancelled", q_raise_cancelled},
    {"report_and_hang", q_report_and_hang}, {"chain", w_chain},
    {NULL, NULL}};
static const bh_class queen = {.name = "Q",
                               .tasks = queen_tasks,
                               .worker_class = &worker};

/* A worker class with a task named busy_status of its own. */
static int
w_my_busy_status(bh_task *t) {
  return bh_return(t, "s", "the class's own");
}

static const bh_task_def shadow_tasks[] = {
    {"busy_status", w_my_busy_status}, {NULL, NULL}};
static const bh_class shadow_worker = {.name = "Shadow", .base = &worker,
                                       .tasks = shadow_tasks};
static const bh_class shadow_queen = {.name = "SQ", .tasks = queen_tasks,
                                      .worker_class = &shadow_worker};

/* A queen class whose workers are themselves queens (of `worker`). */
static const bh_class subqueen = {.name = "SubQ",
                                  .base = &queen,
                                  .worker_class = &worker,
                                  .workers = 1};
static const bh_class topqueen = {.name = "TopQ",
                                  .tasks = queen_tasks,
                                  .worker_class = &subqueen};

/* ---- helpers ----------------------------------------------------------- */

/* Runs task `name` with packed args on `q` and one worker. */
static int
run(const bh_class *q, int workers, bh_result **out, const char *name,
    const char *fmt, ...) {
  bh_run_opts o = {.queen_class = q, .task_name = name, .workers = workers};
  va_list ap;
  int rc;

  va_start(ap, fmt);
  o.task_args = bh_value_vpack(NULL, fmt, ap);
  va_end(ap);
  rc = bh_run(&o, out);
  bh_value_free((bh_value *)o.task_args);
  return rc;
}

static bool
contains(const char *hay, const char *needle) {
  return hay != NULL && strstr(hay, needle) != NULL;
}

/* ---- tests ------------------------------------------------------------- */

TEST(run_returns_value) {
  bh_result *r;
  int64_t a, b;

  ASSERT_INT_EQ(run(&queen, 1, &r, "pass", "[s I I]", "echo", 3, 4), 0);
  ASSERT_INT_EQ(bh_result_status(r), BH_SUCCEEDED);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &a, &b), 0);
  ASSERT_INT_EQ(a * 10 + b, 34);
  bh_result_free(r);
  return 0;
}

TEST(run_raised_carries_the_chain) {
  char text[4096];
  bh_result *r;

  ASSERT_INT_EQ(run(&queen, 1, &r, "pass", "[s s]", "fail", "x"),
                BH_ERAISED);
  /* The queen re-raised it with bh_raise_result(): the wrapped result's
   * own type and message. */
  ASSERT_STR_EQ(bh_result_errtype(r), "RuntimeError");
  ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task raised an exception.");
  ASSERT_STR_EQ(bh_result_root_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "bad input: x");
  bh_result_format(r, text, sizeof(text));
  ASSERT(contains(text, "test_hive.c\", line"));
  ASSERT(contains(text, "in w_fail"));
  ASSERT(contains(text, "in task 'fail' (id 0) of bee 0 (class W)"));
  ASSERT(contains(text, "in task 'pass' (id 0) of bee 10000 (class Q)"));
  bh_result_free(r);
  return 0;
}

/* bh_raise_result() of a delegation cancelled on the queen's side raises
 * the result's own type and message, CancelledError and the reason (a
 * child's raise: run_raised_carries_the_chain). */
TEST(raise_result_of_a_cancelled_delegation) {
  bh_result *r;

  ASSERT_INT_EQ(run(&queen, 1, &r, "raise_cancelled", "[]"), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_errtype(r), "CancelledError");
  ASSERT_STR_EQ(bh_result_errmsg(r), "Cancelled by the delegating bee.");
  bh_result_free(r);
  return 0;
}

TEST(run_queen_raises) {
  bh_result *r;

  ASSERT_INT_EQ(run(&queen, 1, &r, "raise", "[]"), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_errtype(r), "KeyError");
  ASSERT_STR_EQ(bh_result_errmsg(r), "queen says no");
  bh_result_free(r);
  return 0;
}

TEST(run_queen_cancels) {
  bh_result *r;

  ASSERT_INT_EQ(run(&queen, 1, &r, "cancel", "[]"), BH_ECANCELLED);
  ASSERT_INT_EQ(bh_result_status(r), BH_CANCELLED);
  ASSERT_STR_EQ(bh_result_reason(r),
                "The queen bee cancelled the task. Reason: because");
  bh_result_free(r);
  return 0;
}

TEST(run_refuses_sync_mode) {
  bh_context ctx = {.async = 0};
  bh_run_opts o = {.queen_class = &queen, .task_name = "raise",
                   .context_vars = &ctx};
  bh_result *r;

  ASSERT_INT_EQ(bh_run(&o, &r), BH_EINVAL);
  ASSERT_STR_EQ(bh_result_errmsg(r),
                "The function can only be run in asynchronous mode.");
  bh_result_free(r);
  o.context_vars = NULL;
  o.task_name = NULL;
  ASSERT_INT_EQ(bh_run(&o, &r), BH_EINVAL);
  ASSERT_STR_EQ(bh_result_errmsg(r), "bh_run: task_name is required");
  bh_result_free(r);
  return 0;
}

TEST(unknown_task_names) {
  bh_result *r;

  ASSERT_INT_EQ(run(&queen, 1, &r, "no_such_task", "[]"), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_errtype(r), "AttributeError");
  ASSERT_STR_EQ(bh_result_errmsg(r), "Bee class 'Q' has no task "
                                     "'no_such_task'.");
  bh_result_free(r);
  ASSERT_INT_EQ(run(&queen, 1, &r, "pass", "[s]", "nope"), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "AttributeError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "Bee class 'W' has no task "
                                          "'nope'.");
  bh_result_free(r);
  return 0;
}

TEST(malformed_argument_names_position) {
  bh_result *r;

  ASSERT_INT_EQ(run(&queen, 1, &r, "pass", "[s I]", "fail", 5), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "TypeError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "args[0]: expected str, got int");
  bh_result_free(r);
  return 0;
}

/* A worker that dies mid-task: the delegation is answered, raised, with
 * the cause of death. */
static int
crash_case(const char *how, const char *cause) {
  bh_result *r;

  ASSERT_INT_EQ(run(&queen, 1, &r, "pass", "[s s]", "crash", how),
                BH_ERAISED);
  ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task cancelled as the "
                                     "delegated bee has been killed.");
  ASSERT_STR_EQ(bh_result_root_errtype(r), "BeeDied");
  if (!contains(bh_result_root_errmsg(r), cause)) {
    fprintf(stderr, "cause: %s\n", bh_result_root_errmsg(r));
    return 1;
  }
  bh_result_free(r);
  return 0;
}

TEST(worker_killed_mid_task) {
  return crash_case("kill", "killed by signal SIGKILL");
}

TEST(worker_segfault) {
  /* ASan catches the fault itself, reports it, and exits with status 1. */
  return crash_case("segv", UNDER_ASAN ? "without sending a last wish"
                                       : "killed by signal SIGSEGV");
}

TEST(worker_abort) {
  return crash_case("abort", "killed by signal SIGABRT");
}

TEST(worker_exit) {
  return crash_case("exit", "exited with status 7");
}

/* 40 naps of 10 ms on one worker with max_concurrency 4: the most tasks
 * seen running at once, from inside them, must be exactly 4. */
static int
limit_case(int prefetch) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "naps",
                   .workers = 1, .max_workers = 1, .max_concurrency = 4,
                   .prefetch = prefetch};
  bh_result *r;
  int64_t most, by0, by1;

  o.task_args = bh_value_pack(NULL, "[I I]", (int64_t)40, (int64_t)10);
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I I]", &most, &by0, &by1),
                0);
  ASSERT_INT_EQ(most, 4);
  ASSERT_INT_EQ(by0, 40);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  return 0;
}

TEST(max_concurrency_is_a_real_limit) {
  return limit_case(0);
}

/* With prefetch the worker holds more tasks than it runs: the running
 * count still never passes max_concurrency. */
TEST(prefetch_keeps_the_limit) {
  return limit_case(4);
}

TEST(burst_spreads_over_workers) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "naps",
                   .workers = 2, .max_workers = 2, .max_concurrency = 8};
  bh_result *r;
  int64_t most, by0, by1;

  o.task_args = bh_value_pack(NULL, "[I I]", (int64_t)400, (int64_t)5);
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I I]", &most, &by0, &by1),
                0);
  ASSERT_INT_EQ(by0 + by1, 400);
  ASSERT(most <= 8);
  ASSERT(by0 >= 100 && by1 >= 100);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  return 0;
}

/* The top queen delegates "pass pids" to a worker that is itself a queen,
 * which delegates "pids" to her own worker: three processes deep. */
TEST(two_level_hive) {
  bh_result *r;
  int64_t sub, sub_parent, leaf, leaf_parent, leaf_grandparent;

  ASSERT_INT_EQ(run(&topqueen, 1, &r, "pass", "[s]", "chain"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I I I I]", &sub,
                                 &sub_parent, &leaf, &leaf_parent,
                                 &leaf_grandparent), 0);
  ASSERT_INT_EQ(sub_parent, getpid());
  ASSERT_INT_EQ(leaf_parent, sub);
  ASSERT_INT_EQ(leaf_grandparent, getpid());
  ASSERT(leaf != sub && leaf != getpid());
  bh_result_free(r);
  return 0;
}

TEST(two_level_errors_chain) {
  char text[8192];
  bh_result *r;

  ASSERT_INT_EQ(run(&topqueen, 1, &r, "pass", "[s s s]", "pass", "fail",
                    "deep"), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "bad input: deep");
  bh_result_format(r, text, sizeof(text));
  ASSERT(contains(text, "of bee 0 (class SubQ)"));
  ASSERT(contains(text, "of bee 0 (class W)"));
  bh_result_free(r);
  return 0;
}

TEST(idle_hive_uses_no_cpu) {
  bh_result *r;
  int64_t worker_us, queen_us;

  ASSERT_INT_EQ(run(&queen, 1, &r, "idle", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &worker_us,
                                 &queen_us), 0);
  /* Half a second idle: a polling loop would burn far more than this. */
  fprintf(stderr, "idle cpu: worker %lld us, queen %lld us\n",
          (long long)worker_us, (long long)queen_us);
  ASSERT(worker_us < 5000);
  ASSERT(queen_us < 5000);
  bh_result_free(r);
  return 0;
}

TEST(local_fibers_complete_in_order) {
  bh_result *r;
  int64_t a, b, c;

  ASSERT_INT_EQ(run(&queen, 1, &r, "local", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I I]", &a, &b, &c), 0);
  ASSERT_INT_EQ(a, 5);
  ASSERT_INT_EQ(b, 30);
  ASSERT_INT_EQ(c, 60);
  bh_result_free(r);
  return 0;
}

TEST(wait_fd) {
  bh_result *r;
  int timed, ev;

  ASSERT_INT_EQ(run(&queen, 1, &r, "fd", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i]", &timed, &ev), 0);
  ASSERT_INT_EQ(timed, BH_ETIMEDOUT);
  ASSERT_INT_EQ(ev, BH_READABLE);
  bh_result_free(r);
  return 0;
}

TEST(wait_fd_errors) {
  char why[128];
  int e0, e4, bad, perm, exist, cancelled;
  bh_result *r;

  ASSERT_INT_EQ(run(&queen, 1, &r, "fd_errors", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i s i i i i]", &e0, &e4,
                                 why, sizeof(why), &bad, &perm, &exist,
                                 &cancelled), 0);
  bh_result_free(r);
  ASSERT_INT_EQ(e0, BH_EINVAL);
  ASSERT_INT_EQ(e4, BH_EINVAL);
  ASSERT_STR_EQ(why, "bh_wait_fd: events 4: give BH_READABLE, BH_WRITABLE "
                     "or both");
  ASSERT_INT_EQ(bad, UV_EBADF);
  ASSERT_INT_EQ(perm, UV_EPERM);
  ASSERT_INT_EQ(exist, UV_EEXIST);
  ASSERT_INT_EQ(cancelled, BH_ECANCELLED);
  return 0;
}

TEST(future_deadline) {
  bh_result *r;
  int rc, rc2;
  int64_t seen;

  ASSERT_INT_EQ(run(&queen, 1, &r, "deadline", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i I]", &rc, &rc2, &seen),
                0);
  ASSERT_INT_EQ(rc, BH_ETIMEDOUT);
  ASSERT_INT_EQ(rc2, 0);
  ASSERT_INT_EQ(seen, 1);
  bh_result_free(r);
  return 0;
}

/* The worker's busy_status while n naps of its 4 slots run: it does not
 * count itself. The naps are offered before it, on the same channel, so
 * they run when it does; freeing the group cancels them. */
static double
busy_with(int64_t naps) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "busy_with",
                   .workers = 1, .min_workers = 1, .max_workers = 1,
                   .max_concurrency = 4};
  bh_result *r;
  double busy = -1;

  o.task_args = bh_value_pack(NULL, "[I]", naps);
  if (bh_run(&o, &r) == 0)
    bh_result_unpack(r, NULL, 0, "f", &busy);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  return busy;
}

TEST(busy_status_builtin) {
  ASSERT(busy_with(0) == 0.0);  /* free: not itself */
  ASSERT(busy_with(2) == 0.5);  /* 2 of 4 */
  ASSERT(busy_with(3) == 0.75); /* 3 of 4, the fourth slot its own */
  return 0;
}

/* A class task named busy_status shadows the built-in one. */
TEST(busy_status_shadowed_by_the_class) {
  bh_result *r;
  char text[32];
  double busy = -1;

  ASSERT_INT_EQ(run(&queen, 1, &r, "busy_raw", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "f", &busy), 0);
  ASSERT(busy == 0.0);
  bh_result_free(r);
  ASSERT_INT_EQ(run(&shadow_queen, 1, &r, "busy_raw", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "s", text, sizeof(text)), 0);
  ASSERT_STR_EQ(text, "the class's own");
  bh_result_free(r);
  return 0;
}

/* A HOME whose ~/.aws/credentials has profile [research]. */
static int
research_home(char *home) {
  char path[128];
  FILE *f;

  if (mkdtemp(home) == NULL)
    return -1;
  snprintf(path, sizeof(path), "%s/.aws", home);
  if (mkdir(path, 0700) != 0)
    return -1;
  snprintf(path, sizeof(path), "%s/.aws/credentials", home);
  if ((f = fopen(path, "w")) == NULL)
    return -1;
  fputs("[research]\naws_access_key_id = AKIA\n"
        "aws_secret_access_key = secret\n", f);
  fclose(f);
  setenv("HOME", home, 1);
  unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  unsetenv("AWS_CONFIG_FILE");
  return 0;
}

TEST(context_vars_and_init_args) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "pass",
                   .workers = 1, .s3_profile = "research"};
  char prof[32], user[32], home[] = "/tmp/bh_test_hive_XXXXXX", cmd[64];
  bh_result *r;
  int async, s3, http;
  int64_t a, b;

  ASSERT_INT_EQ(research_home(home), 0);
  o.task_args = bh_value_pack(NULL, "[s]", "context");
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[b s s b b]", &async, prof,
                                 sizeof(prof), user, sizeof(user), &s3,
                                 &http), 0);
  ASSERT_INT_EQ(async, 1);
  ASSERT_INT_EQ(s3, 1);   /* an S3 client made from the profile */
  ASSERT_INT_EQ(http, 1); /* and an HTTP session */
  ASSERT_STR_EQ(prof, "research");
  ASSERT_STR_EQ(user, "made by the hook");
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  o.task_args = bh_value_pack(NULL, "[s]", "init_seen");
  o.worker_init_args = bh_value_pack(NULL, "[I I]", (int64_t)11,
                                     (int64_t)22);
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &a, &b), 0);
  ASSERT_INT_EQ(a * 100 + b, 1122);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  bh_value_free((bh_value *)o.worker_init_args);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
  ASSERT_INT_EQ(system(cmd), 0);
  return 0;
}

/* Two workers: the second must not hold the first one's channel, nor a
 * file the queen's process had open. */
TEST(worker_holds_only_its_channel) {
  bh_result *r;
  int64_t sockets;
  int open_there;
  char name[] = "/tmp/bh_test_fd_XXXXXX";
  int fd = mkstemp(name); /* not close-on-exec */

  ASSERT(fd >= 0);
  ASSERT_INT_EQ(run(&queen, 2, &r, "pass", "[s s]", "fds", name), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I b]", &sockets, &open_there),
                0);
  ASSERT_INT_EQ(sockets, 1);
  ASSERT_INT_EQ(open_there, 0);
  bh_result_free(r);
  close(fd);
  unlink(name);
  return 0;
}

TEST(frame_limit_is_an_error) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "pass",
                   .workers = 1, .max_frame = 64 << 10};
  bh_result *r;
  char *big = calloc(1, 100 << 10);

  o.task_args = bh_value_pack(NULL, "[s y#]", "echo", big, (size_t)100 << 10);
  ASSERT_INT_EQ(bh_run(&o, &r), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "FrameSizeError");
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  o.task_args = bh_value_pack(NULL, "[s I]", "big", (int64_t)100 << 10);
  ASSERT_INT_EQ(bh_run(&o, &r), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "FrameSizeError");
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  free(big);
  return 0;
}

/* SIGKILL the queen's process: her worker must follow within a second. */
TEST(workers_die_with_the_queen) {
  int p[2], pfd;
  int64_t wpid = 0;
  pid_t q;
  struct pollfd pl;

  ASSERT(pipe(p) == 0);
  q = fork();
  if (q == 0) {
    bh_result *r;

    close(p[0]);
    run(&queen, 1, &r, "report_and_hang", "[I]", (int64_t)p[1]);
    _exit(0);
  }
  close(p[1]);
  ASSERT(read(p[0], &wpid, sizeof(wpid)) == sizeof(wpid));
  pfd = pidfd_open((pid_t)wpid, 0);
  ASSERT(pfd >= 0);
  kill(q, SIGKILL);
  waitpid(q, NULL, 0);
  pl = (struct pollfd){.fd = pfd, .events = POLLIN};
  ASSERT_INT_EQ(poll(&pl, 1, 1000), 1);
  close(pfd);
  close(p[0]);
  return 0;
}

/* Exec starts: the helper program re-runs itself in worker mode; its
 * worker reports its pid, parent, command line, init args and id. */
TEST(exec_start) {
  char out[1024] = "", cmd[512];
  long long self = 0, wpid = 0, parent = 0, tag = 0, id = -1;
  char exe[64] = "";
  FILE *p;
  size_t n;

  snprintf(cmd, sizeof(cmd), "%s/exec_hive", BH_HELPER_DIR);
  p = popen(cmd, "r");
  ASSERT(p != NULL);
  n = fread(out, 1, sizeof(out) - 1, p);
  out[n] = '\0';
  ASSERT_INT_EQ(pclose(p), 0);
  ASSERT_INT_EQ(sscanf(out, "self %lld worker %lld parent %lld exe %63s "
                       "tag %lld id %lld", &self, &wpid, &parent, exe,
                       &tag, &id), 6);
  ASSERT(wpid != self);
  ASSERT_INT_EQ(parent, self);
  ASSERT_STR_EQ(exe, "beehive-worker");
  ASSERT_INT_EQ(tag, 4242);
  ASSERT_INT_EQ(id, 0);
  return 0;
}

TEST(worker_stack_overflow) {
  return crash_case("overflow", UNDER_ASAN ? "without sending a last wish"
                                           : "killed by signal SIGSEGV");
}

TEST(cancel_wakes_the_fiber) {
  bh_result *r;
  int code;
  int64_t ms;

  ASSERT_INT_EQ(run(&queen, 1, &r, "cancel_local", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i I]", &code, &ms), 0);
  ASSERT_INT_EQ(code, BH_ECANCELLED);
  ASSERT(ms < 5000);
  bh_result_free(r);
  return 0;
}

typedef struct captured {
  char lines[64][160];
  int indent[64];
  int n;
} captured;

static void
capture(void *ud, bh_log_level level, int indent, const char *line) {
  captured *c = ud;

  if (level != BH_LOG_DEBUG || c->n >= 64)
    return;
  snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s", line);
  c->indent[c->n++] = indent;
}

static int
find_line(const captured *c, const char *prefix) {
  int i;

  for (i = 0; i < c->n; i++)
    if (strncmp(c->lines[i], prefix, strlen(prefix)) == 0)
      return i;
  return -1;
}

/* A raised outcome is logged through bh_logger_debug_msg, nested causes
 * one block deeper each. */
TEST(run_logs_raised_message) {
  static captured c;
  bh_logger *lg = bh_logger_new(BH_LOG_DEBUG, capture, &c);
  bh_run_opts o = {.queen_class = &queen, .task_name = "pass",
                   .workers = 1, .logger = lg};
  bh_result *r;
  int tb, exc, inner;

  o.task_args = bh_value_pack(NULL, "[s s]", "fail", "logged");
  ASSERT_INT_EQ(bh_run(&o, &r), BH_ERAISED);
  tb = find_line(&c, "Traceback:");
  exc = find_line(&c, "Exception:");
  inner = find_line(&c, "ValueError: bad input: logged");
  ASSERT(tb >= 0 && exc >= 0 && inner >= 0);
  ASSERT(c.indent[inner] > c.indent[exc]);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  bh_logger_free(lg);
  return 0;
}

TEST_MAIN(TEST_ENTRY(run_logs_raised_message), TEST_ENTRY(cancel_wakes_the_fiber), TEST_ENTRY(exec_start), TEST_ENTRY(worker_stack_overflow), TEST_ENTRY(run_returns_value), TEST_ENTRY(run_raised_carries_the_chain),
          TEST_ENTRY(raise_result_of_a_cancelled_delegation),
          TEST_ENTRY(run_queen_raises), TEST_ENTRY(run_queen_cancels),
          TEST_ENTRY(run_refuses_sync_mode), TEST_ENTRY(unknown_task_names),
          TEST_ENTRY(malformed_argument_names_position),
          TEST_ENTRY(worker_killed_mid_task), TEST_ENTRY(worker_segfault),
          TEST_ENTRY(worker_abort), TEST_ENTRY(worker_exit),
          TEST_ENTRY(max_concurrency_is_a_real_limit),
          TEST_ENTRY(prefetch_keeps_the_limit),
          TEST_ENTRY(burst_spreads_over_workers), TEST_ENTRY(two_level_hive),
          TEST_ENTRY(two_level_errors_chain),
          TEST_ENTRY(idle_hive_uses_no_cpu),
          TEST_ENTRY(local_fibers_complete_in_order), TEST_ENTRY(wait_fd),
          TEST_ENTRY(future_deadline), TEST_ENTRY(busy_status_builtin),
          TEST_ENTRY(busy_status_shadowed_by_the_class),
          TEST_ENTRY(wait_fd_errors),
          TEST_ENTRY(context_vars_and_init_args),
          TEST_ENTRY(worker_holds_only_its_channel),
          TEST_ENTRY(frame_limit_is_an_error),
          TEST_ENTRY(workers_die_with_the_queen))
