/* test_fault.c - the queen against failing workers: retries, poison tasks,
 * the restart limit, replacement, deadlines, hung workers, cancellation,
 * recycling, growth and shrinking, signals, and 1,000 spawn/kill cycles. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "hive/bee.h"
#include "runner.h"

/* ---- worker tasks ------------------------------------------------------ */

/* Kills its worker the first time path args[0] does not exist. */
static int
w_once_die(bh_task *t) {
  char path[256];
  int fd;

  if (bh_task_unpack(t, "[s]", path, sizeof(path)) != 0)
    return BH_ERAISED;
  fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
  if (fd >= 0) {
    close(fd);
    kill(getpid(), SIGKILL);
  }
  return bh_return(t, "I", (int64_t)getpid());
}

static int
w_suicide(bh_task *t) {
  (void)t;
  kill(getpid(), SIGKILL);
  return 0;
}

static int
w_nap(bh_task *t) {
  int64_t ms;
  int rc;

  if (bh_task_unpack(t, "[I]", &ms) != 0)
    return BH_ERAISED;
  rc = bh_sleep(t, ms);
  if (rc != 0)
    return rc;
  return bh_return(t, "I", (int64_t)getpid());
}

static int
w_spin(bh_task *t) {
  volatile uint64_t n = 0;

  (void)t;
  for (;;)
    n++;
  return 0;
}

static int
w_pid(bh_task *t) {
  return bh_return(t, "I", (int64_t)getpid());
}

static const bh_task_def wtasks[] = {
    {"once_die", w_once_die}, {"suicide", w_suicide}, {"nap", w_nap},
    {"spin", w_spin},         {"pid", w_pid},         {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = wtasks};

/* ---- queen tasks ------------------------------------------------------- */

/* Delegates args[0] (with the rest as args) once; returns the status, the
 * root error type and message (or ""), and the stats that follow. */
static int
q_once(bh_task *t) {
  const msgpack_object *a = bh_task_args(t);
  msgpack_object rest = {.type = MSGPACK_OBJECT_ARRAY};
  char name[64];
  bh_result *r;
  bh_stats st;
  int rc;

  bh_unpack(&a->via.array.ptr[0], NULL, 0, "s", name, sizeof(name));
  rest.via.array.ptr = a->via.array.ptr + 1;
  rest.via.array.size = a->via.array.size - 1;
  rc = bh_delegate_value(t, &r, name, &rest, NULL);
  if (r == NULL)
    return rc;
  bh_bee_stats(bh_task_bee(t), &st);
  rc = bh_return(t, "[i s s s I I I I]", (int)bh_result_status(r),
                 bh_result_root_errtype(r) ? bh_result_root_errtype(r) : "",
                 bh_result_root_errmsg(r) ? bh_result_root_errmsg(r) : "",
                 bh_result_reason(r) ? bh_result_reason(r) : "",
                 (int64_t)st.retried, (int64_t)st.deaths,
                 (int64_t)st.spawned, (int64_t)st.alive);
  bh_result_free(r);
  return rc;
}

/* Delegates "suicide" n times in a row; returns the last error message
 * and how many came back raised by death. */
static int
q_suicides(bh_task *t) {
  int64_t n, i, killed = 0;
  char last[512] = "";
  bh_result *r;

  bh_task_unpack(t, "[I]", &n);
  for (i = 0; i < n; i++) {
    bh_delegate(t, &r, "suicide", NULL);
    if (r == NULL)
      break;
    killed += bh_result_root_errtype(r) &&
              strcmp(bh_result_root_errtype(r), "BeeDied") == 0;
    snprintf(last, sizeof(last), "%s: %s",
             bh_result_root_errtype(r) ? bh_result_root_errtype(r) : "",
             bh_result_errmsg(r) ? bh_result_errmsg(r) : "");
    bh_result_free(r);
  }
  return bh_return(t, "[I s]", killed, last);
}

/* The cause of death of the first child that has one, or "". */
static const char *
first_cause(const bh_stats *st) {
  size_t i;

  for (i = 0; i < st->n_children; i++)
    if (st->children[i].cause != NULL)
      return st->children[i].cause;
  return "";
}

/* One delegation of "nap 10 s" with a deadline of ms; then "pid" must
 * still work. Returns [status, first cause of death, ms taken, pid ok,
 * deaths]. */
static int
q_deadline(bh_task *t) {
  int64_t ms, t0, took;
  char name[16];
  bh_group *g = bh_group_new(t);
  bh_deleg_opts o = {.retries = -1};
  bh_future *f;
  bh_result *r;
  bh_stats st;
  int status, pid_ok;

  bh_task_unpack(t, "[s I]", name, sizeof(name), &ms);
  o.timeout_ms = ms;
  bh_group_set_opts(g, &o);
  t0 = bh_now();
  bh_group_delegate(g, NULL, NULL, name, "[I]", (int64_t)10000);
  bh_group_next(g, &f, -1);
  took = bh_now() - t0;
  status = (int)bh_result_status(bh_future_result(f));
  bh_cancel_reason(t, "%s", bh_result_reason(bh_future_result(f))
                                ? bh_result_reason(bh_future_result(f))
                                : "");
  bh_future_free(f);
  bh_group_free(g);
  pid_ok = bh_delegate(t, &r, "pid", NULL) == 0;
  bh_result_free(r);
  bh_bee_stats(bh_task_bee(t), &st);
  return bh_return(t, "[i s I b I]", status, first_cause(&st), took, pid_ok,
                   (int64_t)st.deaths);
}

/* Cancels a running nap: returns [rc of cancel, status, ms taken]. */
static int
q_cancel(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int64_t t0;
  int rc, status;

  bh_group_delegate(g, &f, NULL, "nap", "[I]", (int64_t)10000);
  bh_sleep(t, 50);
  t0 = bh_now();
  rc = bh_future_cancel(f);
  bh_future_wait(f, -1);
  status = (int)bh_result_status(bh_future_result(f));
  bh_future_free(f);
  bh_group_free(g);
  return bh_return(t, "[i i I]", rc, status, bh_now() - t0);
}

/* n tasks of `name` with arg ms at once; returns [distinct pids, all ok,
 * spawned, alive]. */
static int
q_many(bh_task *t) {
  int64_t n, ms, i, pids[64], np = 0, pid, j;
  char name[16];
  bh_group *g = bh_group_new(t);
  bh_future *f;
  bh_stats st;
  int ok = 1;

  bh_task_unpack(t, "[s I I]", name, sizeof(name), &n, &ms);
  for (i = 0; i < n; i++)
    bh_group_delegate(g, NULL, NULL, name, "[I]", ms);
  while (bh_group_next(g, &f, -1) == 0) {
    if (bh_result_unpack(bh_future_result(f), NULL, 0, "I", &pid) != 0)
      ok = 0;
    for (j = 0; j < np && pids[j] != pid; j++)
      ;
    if (j == np && np < 64)
      pids[np++] = pid;
    bh_future_free(f);
  }
  bh_group_free(g);
  bh_bee_stats(bh_task_bee(t), &st);
  return bh_return(t, "[I b I I]", np, ok, (int64_t)st.spawned,
                   (int64_t)st.alive);
}

/* A worker dies ("suicide"), then "pid" is delegated. Returns [the first
 * one's root error type, the second's error type and message ("" when it
 * succeeded), spawned, alive]. */
static int
q_after_death(bh_task *t) {
  bh_result *r1, *r2;
  bh_stats st;
  int rc;

  bh_delegate(t, &r1, "suicide", NULL);
  bh_delegate(t, &r2, "pid", NULL);
  bh_bee_stats(bh_task_bee(t), &st);
  rc = bh_return(t, "[s s s I I]",
                 bh_result_root_errtype(r1) ? bh_result_root_errtype(r1) : "",
                 bh_result_errtype(r2) ? bh_result_errtype(r2) : "",
                 bh_result_errmsg(r2) ? bh_result_errmsg(r2) : "",
                 (int64_t)st.spawned, (int64_t)st.alive);
  bh_result_free(r1);
  bh_result_free(r2);
  return rc;
}

/* Active timers that repeat on the bee's loop: the population manager's
 * cadence is the only one (run.c's progress timer runs only with a
 * progress hook). */
static void
count_repeating(uv_handle_t *h, void *arg) {
  if (h->type == UV_TIMER && uv_is_active(h) &&
      uv_timer_get_repeat((uv_timer_t *)h) > 0)
    ++*(int64_t *)arg;
}

static int
q_cadence_timers(bh_task *t) {
  int64_t n = 0;

  uv_walk(bh_task_bee(t)->loop, count_repeating, &n);
  return bh_return(t, "I", n);
}

/* Idles ms; returns the number of living workers then. */
static int
q_idle_alive(bh_task *t) {
  int64_t ms;
  bh_stats st;

  bh_task_unpack(t, "[I]", &ms);
  bh_sleep(t, ms);
  bh_bee_stats(bh_task_bee(t), &st);
  return bh_return(t, "I", (int64_t)st.alive);
}

/* Says "ready" on fd args[0], then sleeps args[1] ms or until cancelled. */
static int
q_wait_signal(bh_task *t) {
  int64_t fd, ms;
  int rc;

  bh_task_unpack(t, "[I I]", &fd, &ms);
  if (write((int)fd, "r", 1) != 1)
    return BH_EPIPE;
  rc = bh_sleep(t, ms);

  return rc == BH_ECANCELLED ? rc : bh_return(t, "i", rc);
}

static int64_t
count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int64_t n = 0;

  while (d != NULL && readdir(d) != NULL)
    n++;
  if (d != NULL)
    closedir(d);
  return n;
}

static int64_t
rss_kib(void) {
  char line[128];
  long long kb = -1;
  FILE *f = fopen("/proc/self/status", "r");

  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    sscanf(line, "VmRSS: %lld", &kb);
  if (f != NULL)
    fclose(f);
  return kb;
}

/* n spawn/kill cycles; returns [fds, rss] after 100 and after n. */
static int
q_cycles(bh_task *t) {
  int64_t n, i, fd100 = 0, rss100 = 0;
  bh_result *r;

  bh_task_unpack(t, "[I]", &n);
  for (i = 1; i <= n; i++) {
    bh_delegate(t, &r, "suicide", NULL);
    bh_result_free(r);
    if (i == 100) {
      fd100 = count_fds();
      rss100 = rss_kib();
    }
  }
  bh_delegate(t, &r, "pid", NULL); /* a replacement is there */
  bh_result_free(r);
  return bh_return(t, "[I I I I]", fd100, rss100, count_fds(), rss_kib());
}

static const bh_task_def qtasks[] = {
    {"once", q_once},         {"suicides", q_suicides},
    {"deadline", q_deadline}, {"cancel", q_cancel},
    {"many", q_many},         {"idle_alive", q_idle_alive},
    {"wait_signal", q_wait_signal}, {"cycles", q_cycles},
    {"after_death", q_after_death}, {"cadence_timers", q_cadence_timers},
    {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = qtasks,
                               .worker_class = &worker};

/* A worker class whose init always fails, and a queen of it. */
static int
bad_init(bh_bee *bee, const msgpack_object *args,
         const msgpack_object *kwargs) {
  (void)bee;
  (void)args;
  (void)kwargs;
  return -1;
}

static const bh_class bad_worker = {.name = "Bad", .tasks = wtasks,
                                    .init = bad_init};
static const bh_class bad_queen = {.name = "BadQ", .tasks = qtasks,
                                   .worker_class = &bad_worker};

/* ---- helpers ----------------------------------------------------------- */

static int
run(bh_run_opts *o, bh_result **out, const char *name, const char *fmt,
    ...) {
  va_list ap;
  int rc;

  o->queen_class = &queen;
  o->task_name = name;
  va_start(ap, fmt);
  o->task_args = bh_value_vpack(NULL, fmt, ap);
  va_end(ap);
  rc = bh_run(o, out);
  bh_value_free((bh_value *)o->task_args);
  return rc;
}

typedef struct once_out {
  int status;
  char type[64], msg[512], reason[256];
  int64_t retried, deaths, spawned, alive;
} once_out;

static int
unpack_once(bh_result *r, once_out *u) {
  return bh_result_unpack(r, NULL, 0, "[i s s s I I I I]", &u->status,
                          u->type, sizeof(u->type), u->msg, sizeof(u->msg),
                          u->reason, sizeof(u->reason), &u->retried,
                          &u->deaths, &u->spawned, &u->alive);
}

static void
marker(char *buf, size_t len) {
  snprintf(buf, len, "/tmp/bh_fault_%d_%lld", (int)getpid(),
           (long long)bh_now());
}

/* ---- tests ------------------------------------------------------------- */

TEST(retry_after_a_worker_dies) {
  bh_run_opts o = {.workers = 2, .max_workers = 2, .retries = 2};
  char path[128];
  once_out u;
  bh_result *r;

  marker(path, sizeof(path));
  ASSERT_INT_EQ(run(&o, &r, "once", "[s s]", "once_die", path), 0);
  ASSERT_INT_EQ(unpack_once(r, &u), 0);
  ASSERT_INT_EQ(u.status, BH_SUCCEEDED);
  ASSERT_INT_EQ(u.retried, 1);
  ASSERT_INT_EQ(u.deaths, 1);
  bh_result_free(r);
  unlink(path);
  return 0;
}

TEST(no_retry_by_default) {
  bh_run_opts o = {.workers = 2, .max_workers = 2};
  char path[128];
  once_out u;
  bh_result *r;

  marker(path, sizeof(path));
  ASSERT_INT_EQ(run(&o, &r, "once", "[s s]", "once_die", path), 0);
  ASSERT_INT_EQ(unpack_once(r, &u), 0);
  ASSERT_INT_EQ(u.status, BH_RAISED);
  ASSERT_STR_EQ(u.type, "BeeDied");
  ASSERT(strstr(u.msg, "killed by signal SIGKILL") != NULL);
  ASSERT_INT_EQ(u.retried, 0);
  bh_result_free(r);
  unlink(path);
  return 0;
}

TEST(poison_task_is_refused) {
  bh_run_opts o = {.workers = 2, .max_workers = 2, .retries = 5,
                   .poison_kills = 2};
  once_out u;
  bh_result *r;

  ASSERT_INT_EQ(run(&o, &r, "once", "[s]", "suicide"), 0);
  ASSERT_INT_EQ(unpack_once(r, &u), 0);
  ASSERT_INT_EQ(u.status, BH_RAISED);
  ASSERT_INT_EQ(u.deaths, 2);
  ASSERT_INT_EQ(u.retried, 1);
  bh_result_free(r);
  return 0;
}

/* Workers whose init fails die with a killed dead message: that counts as
 * a death, so the queen gives up instead of respawning forever, and the
 * init's error is the cause. */
TEST(failing_init_hits_the_restart_limit) {
  bh_run_opts o = {.queen_class = &bad_queen, .task_name = "once",
                   .workers = 1, .max_workers = 1, .max_restarts = 3};
  once_out u;
  bh_result *r;

  o.task_args = bh_value_pack(NULL, "[s]", "pid");
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  bh_value_free((bh_value *)o.task_args);
  ASSERT_INT_EQ(unpack_once(r, &u), 0);
  ASSERT_INT_EQ(u.status, BH_RAISED);
  ASSERT_STR_EQ(u.type, "PopulationError");
  if (strstr(u.msg, "it died by an error: InitError: The init of bee class "
                    "'Bad' failed.") == NULL) {
    fprintf(stderr, "msg: %s\n", u.msg);
    return 1;
  }
  ASSERT_INT_EQ(u.deaths, 4);
  bh_result_free(r);
  return 0;
}

/* q_suicides of n: how many were killed, and the last "type: message"
 * (512 bytes). */
static int
suicides(bh_run_opts *o, int64_t n, int64_t *killed, char *last) {
  bh_result *r;

  ASSERT_INT_EQ(run(o, &r, "suicides", "[I]", n), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I s]", killed, last,
                                 (size_t)512), 0);
  bh_result_free(r);
  fprintf(stderr, "killed %lld, last: %s\n", (long long)*killed, last);
  return 0;
}

TEST(dead_workers_are_replaced) {
  bh_run_opts o = {.workers = 1, .max_workers = 1};
  int64_t killed;
  char last[512];

  ASSERT_INT_EQ(suicides(&o, 5, &killed, last), 0);
  ASSERT_INT_EQ(killed, 5);
  return 0;
}

TEST(restart_limit_gives_up_with_causes) {
  bh_run_opts o = {.workers = 1, .max_workers = 1, .max_restarts = 3,
                   .restart_period_ms = 60000};
  int64_t killed;
  char last[512];

  ASSERT_INT_EQ(suicides(&o, 8, &killed, last), 0);
  ASSERT_INT_EQ(killed, 4);
  ASSERT(strstr(last, "PopulationError: The queen gave up: more than 3 "
                      "workers died within 60000 ms") != NULL);
  ASSERT(strstr(last, "killed by signal SIGKILL") != NULL);
  return 0;
}

/* What q_deadline says of task `name` with a deadline of 100 ms. */
typedef struct deadline_out {
  int status, pid_ok;
  int64_t took, deaths;
  char cause[256]; /* the first dead worker's */
} deadline_out;

static int
deadline_case(bh_run_opts *o, const char *name, deadline_out *u) {
  bh_result *r;

  ASSERT_INT_EQ(run(o, &r, "deadline", "[s I]", name, (int64_t)100), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i s I b I]", &u->status,
                                 u->cause, sizeof(u->cause), &u->took,
                                 &u->pid_ok, &u->deaths), 0);
  bh_result_free(r);
  return 0;
}

TEST(deadline_answers_on_time) {
  bh_run_opts o = {.workers = 1, .max_workers = 1};
  deadline_out u;

  ASSERT_INT_EQ(deadline_case(&o, "nap", &u), 0);
  ASSERT_INT_EQ(u.status, BH_CANCELLED);
  ASSERT(u.took >= 100 && u.took < 2000);
  ASSERT_INT_EQ(u.pid_ok, 1);
  ASSERT_INT_EQ(u.deaths, 0); /* the nap answered the cancellation */
  return 0;
}

TEST(hung_worker_is_killed_after_grace) {
  bh_run_opts o = {.workers = 1, .max_workers = 1, .kill_grace_ms = 200};
  deadline_out u;

  ASSERT_INT_EQ(deadline_case(&o, "spin", &u), 0);
  ASSERT_INT_EQ(u.status, BH_CANCELLED);
  ASSERT(u.took >= 100 && u.took < 2000);
  ASSERT_INT_EQ(u.pid_ok, 1); /* on the replacement */
  ASSERT_INT_EQ(u.deaths, 1);
  ASSERT(strstr(u.cause, "it did not answer the cancellation of task 0 "
                         "within 200 ms") == u.cause);
  return 0;
}

TEST(cancel_a_running_task) {
  bh_run_opts o = {.workers = 1, .max_workers = 1};
  bh_result *r;
  int rc, status;
  int64_t took;

  ASSERT_INT_EQ(run(&o, &r, "cancel", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i I]", &rc, &status, &took),
                0);
  ASSERT_INT_EQ(rc, 0);
  ASSERT_INT_EQ(status, BH_CANCELLED);
  ASSERT(took < 1000);
  bh_result_free(r);
  return 0;
}

TEST(recycling_retires_workers) {
  bh_run_opts o = {.workers = 1, .max_workers = 1, .max_concurrency = 1,
                   .recycle_after = 5};
  bh_result *r;
  int64_t pids, spawned, alive;
  int ok;

  ASSERT_INT_EQ(run(&o, &r, "many", "[s I I]", "nap", (int64_t)20,
                    (int64_t)1), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I b I I]", &pids, &ok,
                                 &spawned, &alive), 0);
  ASSERT_INT_EQ(ok, 1);
  ASSERT(pids >= 4);
  bh_result_free(r);
  return 0;
}

TEST(saturation_grows_at_once) {
  bh_run_opts o = {.workers = 1, .min_workers = 1, .max_workers = 3,
                   .max_concurrency = 2};
  bh_result *r;
  int64_t pids, spawned, alive;
  int ok;

  ASSERT_INT_EQ(run(&o, &r, "many", "[s I I]", "nap", (int64_t)30,
                    (int64_t)50), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I b I I]", &pids, &ok,
                                 &spawned, &alive), 0);
  ASSERT_INT_EQ(ok, 1);
  ASSERT_INT_EQ(spawned, 3);
  ASSERT_INT_EQ(pids, 3);
  bh_result_free(r);
  return 0;
}

/* The int64 answer of queen task `name` run with [ms], or -1. */
static int64_t
answer_of(bh_run_opts *o, const char *name, int64_t ms) {
  bh_result *r;
  int64_t v = -1;

  if (run(o, &r, name, "[I]", ms) == 0)
    bh_result_unpack(r, NULL, 0, "I", &v);
  bh_result_free(r);
  return v;
}

TEST(cadence_grows_to_the_maximum) {
  bh_run_opts o = {.workers = 1, .min_workers = 1, .max_workers = 3,
                   .pop_interval_ms = 50, .cpu_high = 1.0, .mem_high = 1.0};

  ASSERT_INT_EQ(answer_of(&o, "idle_alive", 400), 3);
  return 0;
}

TEST(cadence_shrinks_under_pressure) {
  /* A memory threshold no machine stays under: the manager sheds
   * workers, the least loaded first, down to the minimum. */
  bh_run_opts o = {.workers = 3, .min_workers = 1, .max_workers = 3,
                   .pop_interval_ms = 50, .cpu_high = 1.0, .mem_high = 1e-9};

  ASSERT_INT_EQ(answer_of(&o, "idle_alive", 500), 1);
  return 0;
}

/* A logger callback that passes each line down a pipe. */
static void
log_to_fd(void *ud, bh_log_level level, int indent, const char *line) {
  (void)level;
  (void)indent;
  dprintf(*(int *)ud, "%s\n", line);
}

/* Runs a hive whose queen naps `ms` in a child process, sends it `sig`
 * `times` times once the queen's task runs, and checks what bh_run
 * returned: `want_rc` and a reason containing `want`. */
static int
signal_case(int sig, int policy, int times, int64_t ms, int want_rc,
            const char *want) {
  int p[2], ready[2], logs[2], status, i;
  pid_t pid;
  char buf[256] = "";
  ssize_t n;

  ASSERT(pipe(p) == 0);
  ASSERT(pipe(ready) == 0);
  ASSERT(pipe(logs) == 0);
  pid = fork();
  if (pid == 0) {
    bh_run_opts o = {.workers = 2, .max_workers = 2, .on_signal = policy};
    bh_result *r;
    int rc;

    close(p[0]);
    close(ready[0]);
    close(logs[0]);
    o.logger = bh_logger_new(BH_LOG_WARNING, log_to_fd, &logs[1]);
    rc = run(&o, &r, "wait_signal", "[I I]", (int64_t)ready[1], ms);
    bh_logger_free(o.logger);
    dprintf(p[1], "%d %s\n", rc, bh_result_reason(r) ? bh_result_reason(r)
                                                     : "-");
    bh_result_free(r);
    _exit(0);
  }
  close(p[1]);
  close(ready[1]);
  close(logs[1]);
  ASSERT(read(ready[0], buf, 1) == 1); /* the queen's task is running */
  for (i = 0; i < times; i++) {
    kill(pid, sig);
    /* Signals do not queue: wait until the hive has logged this one. */
    ASSERT(read(logs[0], buf, sizeof(buf)) > 0);
  }
  n = read(p[0], buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = '\0';
  ASSERT(waitpid(pid, &status, 0) == pid);
  ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (atoi(buf) != want_rc || strstr(buf, want) == NULL) {
    fprintf(stderr, "got: %s", buf);
    return 1;
  }
  close(p[0]);
  close(ready[0]);
  close(logs[0]);
  return 0;
}

TEST(sigterm_shuts_the_hive_down) {
  return signal_case(SIGTERM, BH_SIGNALS_CANCEL, 1, 60000, BH_ECANCELLED,
                     "The hive was interrupted by SIGTERM.");
}

TEST(sigint_shuts_the_hive_down) {
  return signal_case(SIGINT, BH_SIGNALS_CANCEL, 1, 60000, BH_ECANCELLED,
                     "The hive was interrupted by SIGINT.");
}

/* BH_SIGNALS_FINISH: one signal lets the work finish... */
TEST(sigterm_lets_the_work_finish) {
  return signal_case(SIGTERM, BH_SIGNALS_FINISH, 1, 300, 0, "-");
}

/* ...and a second one cancels it. */
TEST(second_sigterm_cancels) {
  return signal_case(SIGTERM, BH_SIGNALS_FINISH, 2, 60000, BH_ECANCELLED,
                     "The hive was interrupted by SIGTERM.");
}

TEST(spawn_kill_cycles_stay_flat) {
  bh_run_opts o = {.workers = 1, .max_workers = 1,
                   .max_restarts = 1000000};
  bh_result *r;
  int64_t fd100, rss100, fd_end, rss_end;

  ASSERT_INT_EQ(run(&o, &r, "cycles", "[I]", (int64_t)1000), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I I I]", &fd100, &rss100,
                                 &fd_end, &rss_end), 0);
  fprintf(stderr, "fds %lld -> %lld, rss %lld -> %lld KiB\n",
          (long long)fd100, (long long)fd_end, (long long)rss100,
          (long long)rss_end);
  bh_result_free(r);
  /* Every worker was reaped: this process has no child left, not even a
   * zombie. */
  ASSERT(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
  ASSERT_INT_EQ(fd_end, fd100);
#ifndef __SANITIZE_ADDRESS__
  /* Under ASan freed memory sits in its quarantine: RSS says nothing. */
  ASSERT(rss_end - rss100 < 1024);
#endif
  return 0;
}

/* ---- BH_NONE (-1) in the fault-tolerance options ----------------------- */

/* max_restarts -1: no restarts. The first worker that dies is not
 * replaced and the queen gives up at once: the next delegation fails
 * with the cause, though the other worker lives on. */
TEST(no_restarts_gives_up_at_the_first_death) {
  bh_run_opts o = {.workers = 2, .max_workers = 2, .max_restarts = BH_NONE};
  char first[64], type[64], msg[512];
  int64_t spawned, alive;
  bh_result *r;

  ASSERT_INT_EQ(run(&o, &r, "after_death", "[]"), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[s s s I I]", first,
                                 sizeof(first), type, sizeof(type), msg,
                                 sizeof(msg), &spawned, &alive), 0);
  bh_result_free(r);
  fprintf(stderr, "%s: %s\n", type, msg);
  ASSERT_STR_EQ(first, "BeeDied");
  ASSERT_STR_EQ(type, "PopulationError");
  ASSERT(strstr(msg, "The queen gave up: a worker died, and max_restarts "
                     "-1 allows no restarts. Last causes: ") == msg);
  ASSERT(strstr(msg, "killed by signal SIGKILL") != NULL);
  ASSERT_INT_EQ(spawned, 2);
  ASSERT_INT_EQ(alive, 1);
  return 0;
}

/* restart_period_ms -1: the deaths of the whole run count. */
TEST(restart_period_none_counts_the_whole_run) {
  bh_run_opts o = {.workers = 1, .max_workers = 1, .max_restarts = 3,
                   .restart_period_ms = BH_NONE};
  int64_t killed;
  char last[512];

  ASSERT_INT_EQ(suicides(&o, 8, &killed, last), 0);
  ASSERT_INT_EQ(killed, 4);
  ASSERT(strstr(last, "PopulationError: The queen gave up: more than 3 "
                      "workers died in this run. Last causes: ") != NULL);
  return 0;
}

/* poison_kills -1: never refused as poison; retries alone bound it (here
 * 3 re-offers: 4 workers die, and the last death is the answer). */
TEST(poison_kills_none_never_refuses) {
  bh_run_opts o = {.workers = 2, .max_workers = 2, .retries = 3,
                   .poison_kills = BH_NONE};
  once_out u;
  bh_result *r;

  ASSERT_INT_EQ(run(&o, &r, "once", "[s]", "suicide"), 0);
  ASSERT_INT_EQ(unpack_once(r, &u), 0);
  bh_result_free(r);
  ASSERT_INT_EQ(u.status, BH_RAISED);
  ASSERT_STR_EQ(u.type, "BeeDied");
  ASSERT_INT_EQ(u.deaths, 4);
  ASSERT_INT_EQ(u.retried, 3);
  return 0;
}

/* retries, task_timeout_ms and recycle_after -1 are their 0: none. */
TEST(none_is_zero_for_retries_deadline_and_recycling) {
  bh_run_opts o = {.workers = 2, .max_workers = 2, .retries = BH_NONE,
                   .task_timeout_ms = BH_NONE, .recycle_after = BH_NONE,
                   .max_concurrency = 1};
  char path[128];
  int64_t pids, spawned, alive;
  once_out u;
  bh_result *r;
  int ok;

  marker(path, sizeof(path));
  ASSERT_INT_EQ(run(&o, &r, "once", "[s s]", "once_die", path), 0);
  ASSERT_INT_EQ(unpack_once(r, &u), 0);
  bh_result_free(r);
  unlink(path);
  ASSERT_INT_EQ(u.status, BH_RAISED);
  ASSERT_INT_EQ(u.retried, 0);
  o.workers = o.max_workers = 1;
  ASSERT_INT_EQ(run(&o, &r, "many", "[s I I]", "nap", (int64_t)8,
                    (int64_t)30), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I b I I]", &pids, &ok,
                                 &spawned, &alive), 0);
  bh_result_free(r);
  ASSERT_INT_EQ(ok, 1);     /* no deadline cut a nap */
  ASSERT_INT_EQ(pids, 1);   /* nobody was recycled */
  ASSERT_INT_EQ(spawned, 1);
  return 0;
}

/* kill_grace_ms -1: no grace. A spinning worker past its deadline is
 * killed at once, and its cause says so. */
TEST(kill_grace_none_kills_at_once) {
  bh_run_opts o = {.workers = 1, .max_workers = 1,
                   .kill_grace_ms = BH_NONE};
  deadline_out u;

  ASSERT_INT_EQ(deadline_case(&o, "spin", &u), 0);
  ASSERT_INT_EQ(u.status, BH_CANCELLED);
  ASSERT_INT_EQ(u.pid_ok, 1);
  ASSERT_INT_EQ(u.deaths, 1);
  if (strstr(u.cause, "it was killed at once on the cancellation of task 0 "
                      "(kill_grace_ms -1: no grace)") != u.cause) {
    fprintf(stderr, "cause: %s\n", u.cause);
    return 1;
  }
  return 0;
}

/* pop_interval_ms -1: no cadence, so no repeating timer on the loop;
 * with an interval there is one. */
TEST(pop_interval_none_has_no_cadence) {
  bh_run_opts o = {.workers = 1, .max_workers = 1, .pop_interval_ms = 50};

  ASSERT_INT_EQ(answer_of(&o, "cadence_timers", 0), 1);
  o.pop_interval_ms = BH_NONE;
  ASSERT_INT_EQ(answer_of(&o, "cadence_timers", 0), 0);
  return 0;
}

/* cpu_high and mem_high -1: never under pressure. Where mem_high 1e-9
 * sheds two of three workers (cadence_shrinks_under_pressure), -1 keeps
 * them all. */
TEST(pressure_none_never_shrinks) {
  bh_run_opts o = {.workers = 3, .min_workers = 1, .max_workers = 3,
                   .pop_interval_ms = 50, .cpu_high = BH_NONE,
                   .mem_high = BH_NONE};

  ASSERT_INT_EQ(answer_of(&o, "idle_alive", 500), 3);
  return 0;
}

TEST_MAIN(TEST_ENTRY(retry_after_a_worker_dies), TEST_ENTRY(no_retry_by_default),
          TEST_ENTRY(poison_task_is_refused),
          TEST_ENTRY(dead_workers_are_replaced),
          TEST_ENTRY(failing_init_hits_the_restart_limit),
          TEST_ENTRY(restart_limit_gives_up_with_causes),
          TEST_ENTRY(deadline_answers_on_time),
          TEST_ENTRY(hung_worker_is_killed_after_grace),
          TEST_ENTRY(cancel_a_running_task),
          TEST_ENTRY(recycling_retires_workers),
          TEST_ENTRY(saturation_grows_at_once),
          TEST_ENTRY(cadence_grows_to_the_maximum),
          TEST_ENTRY(cadence_shrinks_under_pressure),
          TEST_ENTRY(no_restarts_gives_up_at_the_first_death),
          TEST_ENTRY(restart_period_none_counts_the_whole_run),
          TEST_ENTRY(poison_kills_none_never_refuses),
          TEST_ENTRY(none_is_zero_for_retries_deadline_and_recycling),
          TEST_ENTRY(kill_grace_none_kills_at_once),
          TEST_ENTRY(pop_interval_none_has_no_cadence),
          TEST_ENTRY(pressure_none_never_shrinks),
          TEST_ENTRY(sigterm_shuts_the_hive_down),
          TEST_ENTRY(sigint_shuts_the_hive_down),
          TEST_ENTRY(sigterm_lets_the_work_finish),
          TEST_ENTRY(second_sigterm_cancels),
          TEST_ENTRY_T(spawn_kill_cycles_stay_flat, 60))
