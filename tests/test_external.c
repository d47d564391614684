/* test_external.c - worker programs in any language (bh_program): the
 * Python worker of examples/worker.py (run through tests/helpers/
 * pyworker.py, which adds test tasks) driven by a C queen, and by a
 * scripted parent over the raw protocol, exit statuses included; programs
 * that are missing or cannot run, exit at once, write garbage or never
 * answer; the options that name a program; examples/pyqueen. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "hive/spawn.h"
#include "hive/wcfg.h"
#include "proto_fixture.h"

/* Debian's interpreter, which python3-msgpack serves (a python3 earlier
 * in PATH, pyenv's say, may lack msgpack). */
#define PYTHON "/usr/bin/python3"
#define PYWORKER BH_TEST_SRC_DIR "/helpers/pyworker.py"

static const char *const py_argv[] = {"python3", PYWORKER, NULL};
static const bh_program py = {.path = PYTHON, .argv = py_argv};
static const bh_class probe = {.name = "Probe", .program = &py};

/* ---- queen tasks -------------------------------------------------------- */

/* The cause of the last child that died, or NULL; and the tasks the
 * children answered cancelled. */
static const char *
last_cause(bh_task *t, int64_t *cancelled) {
  const char *cause = NULL;
  bh_stats st;
  size_t i;

  bh_bee_stats(bh_task_bee(t), &st);
  *cancelled = 0;
  for (i = 0; i < st.n_children; i++) {
    *cancelled += (int64_t)st.children[i].cancelled;
    if (!st.children[i].alive && st.children[i].cause != NULL)
      cause = st.children[i].cause;
  }
  return cause;
}

/* Delegates "pid" (the worker is up: a deadline counts from a running
 * worker), then [name, args, kwargs, deadline ms (-1: none)] once, then
 * "pid" again, which the worker answers only after what it had to say of
 * the second; returns [rc (a wait's, a refusal's, or the
 * bh_status), value or nil, root exception type, its message (a
 * refusal's: bh_task_errmsg), reason, deaths, the last death's cause,
 * tasks the workers answered cancelled]. */
static int
q_try(bh_task *t) {
  const msgpack_object *args, *kwargs;
  bh_deleg_opts o = {.retries = -1};
  bh_group *g = bh_group_new(t);
  bh_future *f = NULL;
  const bh_result *fr;
  bh_result *r;
  bh_stats st;
  char name[64], refusal[256] = "";
  const char *cause;
  int64_t cancelled, deaths;
  int rc;

  if (bh_task_unpack(t, "[s o o I]", name, sizeof(name), &args, &kwargs,
                     &o.timeout_ms) != 0)
    return BH_ERAISED;
  bh_group_set_opts(g, &o);
  bh_delegate(t, &r, "pid", NULL);
  bh_result_free(r);
  if ((rc = bh_group_delegate_value(g, &f, NULL, name, args, kwargs)) != 0)
    snprintf(refusal, sizeof(refusal), "%s", bh_task_errmsg(t));
  else if ((rc = bh_future_wait(f, -1)) == 0)
    rc = (int)bh_result_status(bh_future_result(f));
  bh_delegate(t, &r, "pid", NULL);
  bh_result_free(r);
  bh_bee_stats(bh_task_bee(t), &st);
  deaths = (int64_t)st.deaths;
  cause = last_cause(t, &cancelled);
  fr = f != NULL ? bh_future_result(f) : NULL;
  rc = bh_return(t, "[i o s s s I s I]", rc, bh_result_value(fr),
                 bh_result_root_errtype(fr),
                 fr ? bh_result_root_errmsg(fr) : refusal,
                 bh_result_reason(fr), deaths, cause, cancelled);
  bh_future_free(f);
  bh_group_free(g);
  return rc;
}

/* The lines read so far from fd into buf (len bytes, have held). */
static int
lines_in(int fd, char *buf, size_t len, size_t *have) {
  ssize_t k = read(fd, buf + *have, len - 1 - *have);
  int n = 0;
  size_t i;

  if (k > 0)
    *have += (size_t)k;
  for (i = 0; i < *have; i++)
    n += buf[i] == '\n';
  return n;
}

/* n gather tasks at once: each says its pid on one FIFO and waits for a
 * byte on another, which comes once all n have said theirs, so all n ran
 * at once. Returns their values (pids). */
static int
q_gather(bh_task *t) {
  char dir[] = "/tmp/bh_external_XXXXXX", arrived[64], go[64], buf[512];
  int64_t n, i, pids[16];
  bh_future *f[16];
  bh_group *g = bh_group_new(t);
  size_t have = 0;
  int afd, gfd, rc = 0;

  if (bh_task_unpack(t, "[I]", &n) != 0 || n > 16 || mkdtemp(dir) == NULL)
    return BH_ERAISED;
  snprintf(arrived, sizeof(arrived), "%s/arrived", dir);
  snprintf(go, sizeof(go), "%s/go", dir);
  if (mkfifo(arrived, 0600) != 0 || mkfifo(go, 0600) != 0)
    return -errno;
  afd = open(arrived, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  gfd = open(go, O_RDWR | O_CLOEXEC);
  for (i = 0; i < n; i++)
    bh_group_delegate(g, &f[i], NULL, "gather", "[s s]", arrived, go);
  while (rc >= 0 && lines_in(afd, buf, sizeof(buf), &have) < n)
    rc = bh_wait_fd(t, afd, BH_READABLE, bh_now() + 20000);
  if (rc >= 0 && write(gfd, "gggggggggggggggg", (size_t)n) != n)
    rc = -errno;
  for (i = 0; i < n; i++) {
    if (rc >= 0 && (rc = bh_future_wait(f[i], -1)) == 0 &&
        bh_result_unpack(bh_future_result(f[i]), NULL, 0, "I", &pids[i]))
      rc = bh_raise_result(t, bh_future_result(f[i]));
    bh_future_free(f[i]);
  }
  bh_group_free(g);
  close(afd);
  close(gfd);
  unlink(arrived);
  unlink(go);
  rmdir(dir);
  return rc < 0 ? rc : bh_return(t, "#I", pids, (size_t)n);
}

/* busy_status while two meet(3) tasks wait in the worker, then the third
 * meet(3) that lets them go. */
static int
q_busy(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_result *r;
  double busy = -1;
  int i;

  for (i = 0; i < 2; i++)
    bh_group_delegate(g, NULL, NULL, "meet", "[i]", 3);
  bh_delegate(t, &r, "busy_status", NULL);
  bh_result_unpack(r, NULL, 0, "f", &busy);
  bh_result_free(r);
  bh_delegate(t, &r, "meet", "[i]", 3);
  bh_result_free(r);
  bh_group_free(g);
  return bh_return(t, "f", busy);
}

/* bh_map_new of square over 1..5 with chunk args[0]: the squares, or the
 * refusal's message. */
static int
q_map(bh_task *t) {
  static const int64_t xs[] = {1, 2, 3, 4, 5};
  int64_t out[5], chunk;
  bh_map_opts o = {0};
  bh_map_item it;
  bh_map *m;
  int rc, n = 0;

  if (bh_task_unpack(t, "[I]", &chunk) != 0)
    return BH_ERAISED;
  o.chunk = (int)chunk;
  if ((rc = bh_map_new(t, &m, "square", &o, "#I", xs, (size_t)5)) != 0)
    return bh_return(t, "s", bh_task_errmsg(t));
  while ((rc = bh_map_next(m, &it, -1)) == 0 && n < 5 &&
         it.status == BH_SUCCEEDED)
    bh_unpack(it.value, NULL, 0, "I", &out[n++]);
  if (rc == 0) /* an item failed */
    rc = bh_return(t, "s", bh_result_root_errmsg(it.result));
  else
    rc = bh_return(t, "#I", out, (size_t)n);
  bh_map_free(m);
  return rc;
}

static const bh_task_def qtasks[] = {
    {"script", fixture_script}, {"pass", fixture_pass}, {"try", q_try},
    {"gather", q_gather},           {"busy", q_busy},       {"map", q_map},
    {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = qtasks};

/* The queen's task `task` with the args `fmt` packs, on `workers` Python
 * workers of class wc (NULL: Probe); o's other fields as given. */
static int
run_on(bh_run_opts o, const bh_class *wc, int workers, bh_result **r,
       const char *task, const char *fmt, ...) {
  bh_value *args;
  va_list ap;
  int rc;

  va_start(ap, fmt);
  args = bh_value_vpack(NULL, fmt, ap);
  va_end(ap);
  o.queen_class = &queen;
  o.worker_class = wc ? wc : &probe;
  o.task_name = task;
  o.task_args = args;
  o.workers = o.min_workers = workers;
  o.max_workers = o.max_workers ? o.max_workers : workers;
  rc = bh_run(&o, r);
  bh_value_free(args);
  return rc;
}

/* True if o is a str that holds `part`, whatever its length. */
static bool
holds(const msgpack_object *o, const char *part) {
  return o != NULL && o->type == MSGPACK_OBJECT_STR &&
         memmem(o->via.str.ptr, o->via.str.size, part, strlen(part)) != NULL;
}

/* holds, saying what o is when it fails. */
#define ASSERT_HAS(o, part)                                                  \
  do {                                                                       \
    if (!holds((o), (part)))                                                 \
      fprintf(stderr, "%s lacks \"%s\"\n", repr(o), (part));               \
    ASSERT(holds((o), (part)));                                              \
  } while (0)

static const msgpack_object *
item(const bh_result *r, uint32_t i) {
  const msgpack_object *v = bh_result_value(r);

  return v->type == MSGPACK_OBJECT_ARRAY && i < v->via.array.size
             ? &v->via.array.ptr[i]
             : NULL;
}

/* ---- a C queen and the Python worker ------------------------------------ */

#define BIG (300 << 10) /* over the blob threshold: it travels as a memfd */

/* Values, kwargs, init kwargs, a large bin each way, raised exceptions and
 * an unknown name: with one worker (direct offers, started from the
 * offer) and with two (every offer to both, task_info to the first). */
static int
results_on(int workers) {
  static char big[BIG];
  bh_value *init = bh_value_pack(NULL, "{s:s}", "greeting", "Hi");
  bh_run_opts o = {.worker_init_kwargs = init};
  const msgpack_object *v;
  bh_result *r;
  int rc;

  fill(big, sizeof(big));
  rc = run_on(o, NULL, workers, &r, "script",
              "[[[s [I]] [s [s] {s:s}] [s [i s n b f [i i]] {s:{s:i}}]"
              " [s [y#]] [s [y#]] [s [i i]] [s [i]] [s []]]]",
              "square", (int64_t)7, "greet", "bee", "punctuation", "?",
              "echo", 1, "a", 1, 2.5, 1, 2, "k", "n", -3, "length", big,
              (size_t)BIG, "echo", big, (size_t)BIG, "divide", 1, 0, "sqare",
              2, "busy_status");
  bh_value_free(init);
  ASSERT_INT_EQ(rc, 0);
  ASSERT(same(item(r, 0), "I", (int64_t)49));
  ASSERT(same(item(r, 1), "s", "Hi, bee?"));
  ASSERT(same(item(r, 2), "[[i s n b f [i i]] {s:{s:i}}]", 1, "a", 1, 2.5,
              1, 2, "k", "n", -3));
  ASSERT(same(item(r, 3), "I", (int64_t)BIG));
  v = item(r, 4);
  ASSERT(v != NULL && v->type == MSGPACK_OBJECT_ARRAY &&
         v->via.array.size == 2);
  v = &v->via.array.ptr[0].via.array.ptr[0];
  ASSERT(v->type == MSGPACK_OBJECT_BIN && v->via.bin.size == BIG &&
         holds_pattern(v->via.bin.ptr, BIG));
  ASSERT(same(item(r, 5), "[s s]", "ZeroDivisionError", "division by zero"));
  ASSERT(same(item(r, 6), "[s s]", "AttributeError",
              "Bee class 'Probe' has no task 'sqare'. Did you mean "
              "'square'?"));
  ASSERT(same(item(r, 7), "f", 0.0));
  bh_result_free(r);
  return 0;
}

TEST(results_with_one_worker) {
  return results_on(1);
}

TEST(results_with_two_workers) {
  return results_on(2);
}

/* The exception travels with its Python traceback, under the worker's
 * "in task" line, to the caller of bh_run. */
TEST(raised_exception_carries_its_traceback) {
  char text[4096];
  bh_result *r;

  ASSERT_INT_EQ(run_on((bh_run_opts){0}, NULL, 1, &r, "pass", "[s i i]",
                       "divide", 1, 0),
                BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "ZeroDivisionError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "division by zero");
  bh_result_format(r, text, sizeof(text));
  ASSERT(strstr(text, "examples/worker.py\", line ") != NULL);
  ASSERT(strstr(text, ", in divide") != NULL);
  ASSERT(strstr(text, "return a / b") != NULL);
  ASSERT(strstr(text, "in task 'divide' (id 0) of bee 0 (class Probe)") !=
         NULL);
  bh_result_free(r);
  return 0;
}

/* With tasks listed, the queen refuses a name the program lacks before
 * sending anything, in the program's own words; busy_status passes. */
static const bh_task_def listed[] = {
    {"square", NULL}, {"greet", NULL}, {NULL, NULL}};
static const bh_class probe_listed = {.name = "Probe", .tasks = listed,
                                      .program = &py};

TEST(listed_tasks_are_checked_before_sending) {
  bh_result *r;

  ASSERT_INT_EQ(run_on((bh_run_opts){0}, &probe_listed, 1, &r, "try",
                       "[s [i] {} i]", "sqare", 2, -1),
                0);
  ASSERT(same(item(r, 0), "i", BH_ENOTASK));
  ASSERT(same(item(r, 3), "s",
              "Bee class 'Probe' has no task 'sqare'. Did you mean "
              "'square'?"));
  bh_result_free(r);
  ASSERT_INT_EQ(run_on((bh_run_opts){0}, &probe_listed, 1, &r, "script",
                       "[[[s [i]] [s []]]]", "square", 9, "busy_status"),
                0);
  ASSERT(same(bh_result_value(r), "[i f]", 81, 0.0));
  bh_result_free(r);
  return 0;
}

/* Two workers of four slots, eight tasks that each return only once all
 * eight run at once: each worker runs four concurrently. */
TEST(workers_run_tasks_concurrently) {
  const msgpack_object *v;
  bh_result *r;
  int64_t a;
  uint32_t i, same_as_a = 0;

  ASSERT_INT_EQ(run_on((bh_run_opts){.max_concurrency = 4}, NULL, 2, &r,
                       "gather", "[i]", 8),
                0);
  v = bh_result_value(r);
  ASSERT(v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 8);
  a = v->via.array.ptr[0].via.i64;
  for (i = 0; i < 8; i++)
    same_as_a += v->via.array.ptr[i].via.i64 == a;
  ASSERT_INT_EQ(same_as_a, 4);
  bh_result_free(r);
  return 0;
}

/* busy_status does not count itself: 2 others running of 4 slots. */
TEST(busy_status_counts_the_other_tasks) {
  bh_result *r;

  ASSERT_INT_EQ(run_on((bh_run_opts){.max_concurrency = 4,
                                     .task_timeout_ms = 20000},
                       NULL, 1, &r, "busy", NULL),
                0);
  ASSERT(same(bh_result_value(r), "f", 0.5));
  bh_result_free(r);
  return 0;
}

/* A worker killed while it runs a task: the task comes back raised with
 * the signal, or, with a retry, runs again on a new worker. */
TEST(worker_killed_mid_task) {
  char dir[] = "/tmp/bh_external_XXXXXX", path[64];
  bh_result *r;

  ASSERT_INT_EQ(run_on((bh_run_opts){0}, NULL, 1, &r, "try", "[s [] {} i]",
                       "suicide", -1),
                0);
  ASSERT(same(item(r, 0), "i", BH_RAISED));
  ASSERT(same(item(r, 2), "s", "BeeDied"));
  ASSERT_HAS(item(r, 3), "killed by signal SIGKILL");
  ASSERT(same(item(r, 5), "I", (int64_t)1));
  bh_result_free(r);
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, sizeof(path), "%s/once", dir);
  ASSERT_INT_EQ(run_on((bh_run_opts){.retries = 1}, NULL, 1, &r, "try",
                       "[s [s] {} i]", "once_die", path, -1),
                0);
  ASSERT(same(item(r, 0), "i", BH_SUCCEEDED));
  ASSERT(item(r, 1)->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
  ASSERT(same(item(r, 5), "I", (int64_t)1));
  ASSERT_HAS(item(r, 6), "killed by signal SIGKILL");
  bh_result_free(r);
  unlink(path);
  rmdir(dir);
  return 0;
}

/* A deadline sends cancel_task, which the program answers (its coroutine
 * cancelled, the answer before the next task's): no death. A task that
 * holds the whole worker cannot answer, and the worker is killed after
 * the grace period, as a C worker is. */
TEST(cancellation_reaches_the_program) {
  bh_run_opts o = {.kill_grace_ms = 300};
  bh_result *r;

  ASSERT_INT_EQ(run_on(o, NULL, 1, &r, "try", "[s [i] {} i]", "nap", 30,
                       300),
                0);
  ASSERT(same(item(r, 0), "i", BH_CANCELLED));
  ASSERT_HAS(item(r, 4), "deadline of 300 ms");
  ASSERT(same(item(r, 5), "I", (int64_t)0));
  ASSERT(same(item(r, 7), "I", (int64_t)1));
  bh_result_free(r);
  ASSERT_INT_EQ(run_on(o, NULL, 1, &r, "try", "[s [] {} i]", "block", 300),
                0);
  ASSERT(same(item(r, 0), "i", BH_CANCELLED));
  ASSERT(same(item(r, 5), "I", (int64_t)1));
  ASSERT_HAS(item(r, 6), "it did not answer the cancellation of task 1 "
                             "within 300 ms");
  bh_result_free(r);
  return 0;
}

/* A fault in the interpreter: faulthandler's words on the last-words page
 * come before the signal in the cause. */
TEST(last_words_of_a_crash) {
  bh_result *r;

  ASSERT_INT_EQ(run_on((bh_run_opts){0}, NULL, 1, &r, "try", "[s [] {} i]",
                       "segfault", -1),
                0);
  ASSERT(same(item(r, 2), "s", "BeeDied"));
  ASSERT_HAS(item(r, 3), "Fatal Python error: Segmentation fault");
  ASSERT_HAS(item(r, 6), "Fatal Python error: Segmentation fault");
  ASSERT_HAS(item(r, 6), "in segfault");
  ASSERT_HAS(item(r, 6), "; killed by signal SIGSEGV");
  bh_result_free(r);
  return 0;
}

/* An __init__ that raises: dead killed with InitError, every time, until
 * the queen gives up naming it. */
static const bh_class bad_init = {.name = "BadInit", .program = &py};

TEST(init_failure_is_a_killed_death) {
  char text[4096];
  bh_result *r;

  ASSERT(run_on((bh_run_opts){.max_restarts = 2}, &bad_init, 1, &r, "pass",
                "[s]", "square") != 0);
  bh_result_format(r, text, sizeof(text));
  ASSERT(strstr(text, "InitError") != NULL);
  ASSERT(strstr(text, "ValueError: no configuration") != NULL);
  bh_result_free(r);
  return 0;
}

/* bh_map_new: a chunk of several items needs __map_chunk__, which the
 * program does not list; chunk 1 sends each item as a task. */
TEST(map_over_a_program) {
  bh_result *r;

  ASSERT_INT_EQ(run_on((bh_run_opts){0}, NULL, 1, &r, "map", "[i]", 1), 0);
  ASSERT(same(bh_result_value(r), "[I I I I I]", (int64_t)1, (int64_t)4,
              (int64_t)9, (int64_t)16, (int64_t)25));
  bh_result_free(r);
  ASSERT_INT_EQ(run_on((bh_run_opts){0}, NULL, 1, &r, "map", "[i]", 2), 0);
  ASSERT(same(bh_result_value(r), "s",
              "bh_map_new: chunk 2 needs the built-in task __map_chunk__, "
              "which worker class 'Probe' (an external program) does not "
              "list: give chunk 1"));
  bh_result_free(r);
  return 0;
}

/* ---- a scripted parent and the Python worker ---------------------------- */

/* Starts one worker of class c as the queen would (bh__spawn_worker: the
 * reference's subprocess_workerbee), max_concurrency conc. */
static int
spawn_one(const bh_class *c, int conc, pid_t *pid, int *fd) {
  bh__spawn_opts o = {.cls = c, .max_concurrency = conc};
  bh__wcfg cfg;
  bh__spawn s;
  char *why = NULL;
  int rc = bh__wcfg_from_spawn(&cfg, &o);

  if (rc != 0)
    return rc;
  s = (bh__spawn){.cls = c, .id = 7, .cfg = &cfg, .start = BH_START_EXEC};
  rc = bh__spawn_worker(&s, pid, fd, NULL, &why);
  bh__free(why);
  bh__wcfg_clear(&cfg);
  return rc;
}

typedef struct raw {
  peer p;
  pid_t pid;
} raw;

/* Starts the Python worker of class `cls` with max_concurrency `conc`. */
static int
raw_start(raw *w, const char *cls, int conc) {
  bh_class c = {.name = cls, .program = &py};
  int fd;

  *w = (raw){.p = {.fd = -1}};
  ASSERT_INT_EQ(spawn_one(&c, conc, &w->pid, &fd), 0);
  w->p.fd = fd;
  msgpack_zone_init(&w->p.zone, 4096);
  return 0;
}

/* Waits for the worker's end: 0 if it exited with `status`. */
static int
raw_end(raw *w, int status) {
  int st;

  close(w->p.fd);
  bh__buf_free(&w->p.in);
  bh__buf_free(&w->p.cur);
  msgpack_zone_destroy(&w->p.zone);
  ASSERT_INT_EQ(waitpid(w->pid, &st, 0), w->pid);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != status)
    fprintf(stderr, "worker status 0x%x, want exit %d\n", (unsigned)st,
            status);
  ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == status);
  return 0;
}

static int
info(peer *p, int64_t tid, const char *name, int64_t arg) {
  return send_map(p, "{s:s s:I s:s s:[I] s:{}}", "msg_type", "task_info",
                  "task_id", tid, "name", name, "args", arg, "kwargs");
}

/* task_done for tid, succeeded with the int `value`. */
static int
expect_value(peer *p, int64_t tid, int64_t value) {
  if (expect(p, BH__MSG_TASK_DONE, tid) != 0)
    return 1;
  CHECK(p->m.status == BH_SUCCEEDED && same(p->m.returning_value, "I",
                                            value),
        "task_done %s", repr(p->m.root));
  return 0;
}

/* Section 9.1 in order: the accept rule at max_concurrency 3, die while a
 * task runs and two wait for their task_info (all still done, a new offer
 * denied, and dead only after the last), and exit status 0. */
TEST(die_finishes_the_work_then_exits_0) {
  raw w;
  peer *p = &w.p;

  ASSERT_INT_EQ(raw_start(&w, "Probe", 3), 0);
  ASSERT_INT_EQ(offer(p, 1, BH__MSG_TASK_ACCEPTED), 0);
  ASSERT_INT_EQ(offer(p, 2, BH__MSG_TASK_ACCEPTED), 0);
  ASSERT_INT_EQ(offer(p, 3, BH__MSG_TASK_ACCEPTED), 0);
  ASSERT_INT_EQ(offer(p, 4, BH__MSG_TASK_DENIED), 0);
  ASSERT_INT_EQ(info(p, 1, "meet", 2), 0);
  ASSERT_INT_EQ(send_map(p, "{s:s}", "msg_type", "die"), 0);
  ASSERT_INT_EQ(offer(p, 5, BH__MSG_TASK_DENIED), 0);
  ASSERT_INT_EQ(info(p, 2, "meet", 2), 0);
  ASSERT_INT_EQ(expect(p, BH__MSG_TASK_DONE, -1), 0);
  ASSERT_INT_EQ(expect(p, BH__MSG_TASK_DONE, -1), 0);
  ASSERT_INT_EQ(info(p, 3, "square", 4), 0);
  ASSERT_INT_EQ(expect_value(p, 3, 16), 0);
  ASSERT_INT_EQ(expect_dead(p, DIE_CODE), 0);
  return raw_end(&w, 0);
}

/* task_taken frees a slot; cancel_task of a task waiting for a slot
 * answers it cancelled at once. */
TEST(taken_and_cancelled_tasks_free_their_slots) {
  raw w;
  peer *p = &w.p;

  ASSERT_INT_EQ(raw_start(&w, "Probe", 1), 0);
  ASSERT_INT_EQ(offer(p, 1, BH__MSG_TASK_ACCEPTED), 0);
  ASSERT_INT_EQ(offer(p, 2, BH__MSG_TASK_DENIED), 0);
  ASSERT_INT_EQ(send_simple(p, BH__MSG_TASK_TAKEN, 1), 0);
  ASSERT_INT_EQ(offer(p, 2, BH__MSG_TASK_ACCEPTED), 0);
  ASSERT_INT_EQ(info(p, 2, "square", 5), 0);
  ASSERT_INT_EQ(expect_value(p, 2, 25), 0);
  ASSERT_INT_EQ(offer(p, 3, BH__MSG_TASK_ACCEPTED), 0);
  ASSERT_INT_EQ(info(p, 3, "nap", 30), 0);
  ASSERT_INT_EQ(send_simple(p, BH__MSG_CANCEL_TASK, 3), 0);
  ASSERT_INT_EQ(expect(p, BH__MSG_TASK_DONE, 3), 0);
  ASSERT(p->m.status == BH_CANCELLED &&
         str_is(p->m.reason, "Cancelled by the parent bee."));
  ASSERT_INT_EQ(send_map(p, "{s:s}", "msg_type", "die"), 0);
  ASSERT_INT_EQ(expect_dead(p, DIE_CODE), 0);
  return raw_end(&w, 0);
}

/* Section 9.3: an unknown message ends the bee gracefully, status 0. */
TEST(unknown_message_ends_gracefully) {
  raw w;

  ASSERT_INT_EQ(raw_start(&w, "Probe", 4), 0);
  ASSERT_INT_EQ(send_map(&w.p, "{s:s s:i}", "msg_type", "bogus", "task_id",
                         1),
                0);
  ASSERT_INT_EQ(expect_dead(&w.p, "Unknown message with type 'bogus'."), 0);
  ASSERT_INT_EQ(raw_end(&w, 0), 0);
  ASSERT_INT_EQ(raw_start(&w, "Probe", 4), 0);
  ASSERT_INT_EQ(info(&w.p, 5, "square", 1), 0);
  ASSERT_INT_EQ(expect_dead(&w.p, "Protocol error: task_info for task 5, "
                                  "which was not accepted."),
                0);
  return raw_end(&w, 0);
}

/* Section 9.4: end of stream or a frame that breaks the protocol, and the
 * worker exits 3 without dead. */
TEST(lost_parent_exits_3) {
  static const unsigned char not_a_map[] = {0, 0, 0, 1, 0x2a};
  raw w;

  ASSERT_INT_EQ(raw_start(&w, "Probe", 4), 0);
  ASSERT_INT_EQ(offer(&w.p, 1, BH__MSG_TASK_ACCEPTED), 0);
  ASSERT_INT_EQ(raw_end(&w, 3), 0);
  ASSERT_INT_EQ(raw_start(&w, "Probe", 4), 0);
  ASSERT_INT_EQ(send_raw(&w.p, not_a_map, sizeof(not_a_map)), 0);
  ASSERT_INT_EQ(expect_eof(&w.p), 0);
  return raw_end(&w, 3);
}

/* Section 6 and 9.2: a class the program lacks, exit 2 with nothing said;
 * an __init__ that raises, dead killed and exit 1. */
TEST(bootstrap_failures_exit_2_and_1) {
  raw w;

  ASSERT_INT_EQ(raw_start(&w, "Nope", 4), 0);
  ASSERT_INT_EQ(expect_eof(&w.p), 0);
  ASSERT_INT_EQ(raw_end(&w, 2), 0);
  ASSERT_INT_EQ(raw_start(&w, "BadInit", 4), 0);
  ASSERT_INT_EQ(expect(&w.p, BH__MSG_DEAD, -1), 0);
  ASSERT(w.p.m.death_type == BH__DEATH_KILLED);
  ASSERT(same(w.p.m.exception, "{s:s s:s}", "type", "InitError", "message",
              "ValueError: no configuration"));
  ASSERT_INT_EQ(expect_eof(&w.p), 0);
  return raw_end(&w, 1);
}

/* ---- programs that are not workers -------------------------------------- */

/* bh_run with workers of `program`: rc, and its result's text in text. */
static int
run_program(const bh_program *program, bh_run_opts o, char *text,
            size_t len) {
  bh_class c = {.name = "Ext", .program = program};
  bh_result *r;
  int rc = run_on(o, &c, 1, &r, "pass", "[s i]", "square", 3);

  bh_result_format(r, text, len);
  bh_result_free(r);
  return rc;
}

/* A program that cannot be started fails bh_run at once: BH_ESPAWN with
 * the program and the system's reason. */
static int
refused_start(const char *path, const char *why) {
  const bh_program p = {.path = path};
  bh_class c = {.name = "Ext", .program = &p};
  char want[512];
  bh_result *r;

  ASSERT_INT_EQ(run_on((bh_run_opts){0}, &c, 1, &r, "pass", "[s i]",
                       "square", 3),
                BH_ESPAWN);
  snprintf(want, sizeof(want), "class 'Ext': its program '%s' %s", path,
           why);
  ASSERT_STR_EQ(bh_result_errtype(r), "SpawnError");
  ASSERT_STR_EQ(bh_result_errmsg(r), want);
  bh_result_free(r);
  return 0;
}

/* A file of mode `mode` holding `text`, in a new directory (dir). */
static int
make_file(char *dir, char *path, size_t len, const char *text, mode_t mode) {
  int fd;

  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, len, "%s/prog", dir);
  ASSERT((fd = open(path, O_CREAT | O_WRONLY, mode)) >= 0);
  ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
  return 0;
}

TEST(program_that_cannot_start) {
  char d1[] = "/tmp/bh_external_XXXXXX", d2[] = "/tmp/bh_external_XXXXXX";
  char plain[64], garbage[64];
  bh_class c = {.name = "Ext"};
  bh_program p = {.path = "/nonexistent/bh-worker"};
  int fd, fds0 = open_fds();
  pid_t pid;

  ASSERT_INT_EQ(refused_start("/nonexistent/bh-worker",
                              "could not be started: ENOENT: No such file "
                              "or directory (errno 2)"),
                0);
  ASSERT_INT_EQ(make_file(d1, plain, sizeof(plain), "#!/bin/sh\n", 0644), 0);
  ASSERT_INT_EQ(refused_start(plain, "could not be started: EACCES: "
                                     "Permission denied (errno 13) (is it "
                                     "an executable file? chmod +x)"),
                0);
  ASSERT_INT_EQ(make_file(d2, garbage, sizeof(garbage), "\x01\x02 not a "
                          "program\n", 0755), 0);
  ASSERT_INT_EQ(refused_start(garbage, "could not be started: ENOEXEC: Exec "
                                       "format error (errno 8) (a script "
                                       "needs a #! line naming its "
                                       "interpreter)"),
                0);
  ASSERT_INT_EQ(refused_start("/tmp", "could not be started: EACCES: "
                                      "Permission denied (errno 13) (is it "
                                      "an executable file? chmod +x)"),
                0);
  setenv("PATH", "/nonexistent:/also/not", 1);
  ASSERT_INT_EQ(refused_start("bh-no-such-program",
                              "was not found in PATH (/nonexistent:/also/"
                              "not): give its whole path"),
                0);
  c.program = &p;
  ASSERT_INT_EQ(spawn_one(&c, 0, &pid, &fd), BH_ESPAWN);
  ASSERT_INT_EQ(open_fds(), fds0); /* the exec's report pipe too */
  unlink(plain);
  unlink(garbage);
  rmdir(d1);
  rmdir(d2);
  return 0;
}

/* A bare name found in PATH runs; so does an environment of its own, to
 * which the library adds BH_WORKER. */
TEST(program_from_path_with_its_environment) {
  static const char *const env[] = {"PYTHONDONTWRITEBYTECODE=1", NULL};
  static const bh_program bare = {.path = "python3", .argv = py_argv,
                                  .env = env};
  bh_class c = {.name = "Probe", .program = &bare};
  bh_result *r;

  setenv("PATH", "/usr/bin", 1);
  ASSERT_INT_EQ(run_on((bh_run_opts){0}, &c, 1, &r, "pass", "[s i]",
                       "square", 12),
                0);
  ASSERT(same(bh_result_value(r), "i", 144));
  bh_result_free(r);
  return 0;
}

/* A program that exits at once dies as a crashing worker does: replaced
 * until the queen gives up, naming its status. Its init arguments make a
 * bootstrap frame larger than the socket holds, so the queen is still
 * writing it when the program has gone (EPIPE): a death all the same. */
TEST(program_that_exits_at_once) {
  static const bh_program p = {.path = "/bin/true"};
  static char x[1 << 20];
  bh_value *init;
  char text[4096];

  memset(x, 'x', sizeof(x));
  init = bh_value_pack(NULL, "[s#]", x, sizeof(x));
  ASSERT(run_program(&p, (bh_run_opts){.max_restarts = 2,
                                       .worker_init_args = init},
                     text, sizeof(text)) != 0);
  bh_value_free(init);
  ASSERT(strstr(text, "exited with status 0") != NULL);
  return 0;
}

/* A program that writes garbage is killed for its protocol error. */
TEST(program_that_writes_garbage) {
  static const char *const argv[] = {"sh", "-c",
                                     "printf 'garbage' >&3; exec sleep 60",
                                     NULL};
  static const bh_program p = {.path = "/bin/sh", .argv = argv};
  char text[4096];

  ASSERT(run_program(&p, (bh_run_opts){.max_restarts = 2}, text,
                     sizeof(text)) != 0);
  ASSERT(strstr(text, "protocol error") != NULL);
  return 0;
}

/* Lines the hive logs at WARNING or above, one string. */
static void
keep_line(void *udata, bh_log_level level, int indent, const char *line) {
  char *all = udata;

  (void)level;
  (void)indent;
  strncat(all, line, 4095 - strlen(all));
  strncat(all, "\n", 4095 - strlen(all));
}

/* A program that never answers: its offer times out like any unanswered
 * offer, and told to die it is killed after the shutdown grace. */
TEST(program_that_never_answers) {
  static const char *const argv[] = {"sh", "-c", "exec sleep 60", NULL};
  static const bh_program p = {.path = "/bin/sh", .argv = argv};
  static char logged[4096];
  bh_logger *lg = bh_logger_new(BH_LOG_WARNING, keep_line, logged);
  char text[4096];

  ASSERT_INT_EQ(run_program(&p, (bh_run_opts){.pickup_timeout_ms = 300,
                                              .shutdown_grace_ms = 300,
                                              .logger = lg},
                            text, sizeof(text)),
                BH_ERAISED);
  bh_logger_free(lg);
  ASSERT(strstr(text, "No child bee has picked up the task for 300 ms.") !=
         NULL);
  ASSERT(strstr(logged, "it did not end within 300 ms of being told to "
                        "die") != NULL);
  return 0;
}

/* ---- options ------------------------------------------------------------ */

static int
refused_opts(const bh_class *qc, const bh_class *wc, const char *why) {
  bh_run_opts o = {.queen_class = qc, .worker_class = wc,
                   .task_name = "pass"};
  bh_result *r;

  ASSERT_INT_EQ(bh_run(&o, &r), BH_EINVAL);
  ASSERT_STR_EQ(bh_result_errmsg(r), why);
  bh_result_free(r);
  return 0;
}

TEST(program_options_are_checked) {
  static const char *const no_args[] = {NULL};
  static const char *const bad_env[] = {"A=1", "JUSTANAME", NULL};
  static const bh_program no_path = {.path = ""};
  static const bh_program empty_argv = {.path = "/bin/true",
                                        .argv = no_args};
  static const bh_program env = {.path = "/bin/true", .env = bad_env};
  static const bh_class c1 = {.name = "X", .program = &no_path};
  static const bh_class c2 = {.name = "X", .program = &empty_argv};
  static const bh_class c3 = {.name = "X", .program = &env};
  static const bh_class c4 = {.program = &py};
  static const bh_class c5 = {.name = "X", .program = &py,
                              .worker_class = &probe};
  static const bh_class q = {.name = "Q", .tasks = qtasks, .program = &py};

  ASSERT_INT_EQ(refused_opts(&queen, &c1, "bh_run: class 'X': its program "
                             "has no path"), 0);
  ASSERT_INT_EQ(refused_opts(&queen, &c2, "bh_run: class 'X': its "
                             "program's argv is empty: it must hold "
                             "argv[0] at least, or be NULL ({path})"), 0);
  ASSERT_INT_EQ(refused_opts(&queen, &c3, "bh_run: class 'X': its "
                             "program's env[1] \"JUSTANAME\" is not "
                             "NAME=value"), 0);
  ASSERT_INT_EQ(refused_opts(&queen, &c4, "bh_run: a class with a program "
                             "needs a name: the program's bootstrap frame "
                             "names its class"), 0);
  ASSERT_INT_EQ(refused_opts(&queen, &c5, "bh_run: class 'X' has a program "
                             "and a worker_class: an external program "
                             "starts its own workers, if any; set one of "
                             "the two"), 0);
  return refused_opts(&q, &probe, "bh_run: queen_class 'Q' has a program: "
                      "the queen runs in this process, so her class cannot "
                      "be external");
}

/* ---- the example -------------------------------------------------------- */

/* examples/pyqueen, built beside the tests: its answer. */
TEST(example_pyqueen_runs) {
  char path[PATH_MAX], line[256] = "";
  const char *h = BH_HELPER_DIR;
  FILE *f;

  snprintf(path, sizeof(path), "%s/../../examples/pyqueen 10", h);
  ASSERT((f = popen(path, "r")) != NULL);
  ASSERT(fgets(line, sizeof(line), f) != NULL);
  ASSERT_STR_EQ(line, "sum of squares 1..10 on Python workers: 385\n");
  ASSERT(fgets(line, sizeof(line), f) != NULL);
  ASSERT_STR_EQ(line, "Hello, queen!\n");
  ASSERT_INT_EQ(pclose(f), 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY_T(results_with_one_worker, 30),
          TEST_ENTRY_T(results_with_two_workers, 30),
          TEST_ENTRY_T(raised_exception_carries_its_traceback, 30),
          TEST_ENTRY_T(listed_tasks_are_checked_before_sending, 30),
          TEST_ENTRY_T(workers_run_tasks_concurrently, 30),
          TEST_ENTRY_T(busy_status_counts_the_other_tasks, 30),
          TEST_ENTRY_T(worker_killed_mid_task, 30),
          TEST_ENTRY_T(cancellation_reaches_the_program, 30),
          TEST_ENTRY_T(last_words_of_a_crash, 30),
          TEST_ENTRY_T(init_failure_is_a_killed_death, 30),
          TEST_ENTRY_T(map_over_a_program, 30),
          TEST_ENTRY_T(die_finishes_the_work_then_exits_0, 30),
          TEST_ENTRY_T(taken_and_cancelled_tasks_free_their_slots, 30),
          TEST_ENTRY_T(unknown_message_ends_gracefully, 30),
          TEST_ENTRY_T(lost_parent_exits_3, 30),
          TEST_ENTRY_T(bootstrap_failures_exit_2_and_1, 30),
          TEST_ENTRY_T(program_that_cannot_start, 30),
          TEST_ENTRY_T(program_from_path_with_its_environment, 30),
          TEST_ENTRY_T(program_that_exits_at_once, 30),
          TEST_ENTRY_T(program_that_writes_garbage, 30),
          TEST_ENTRY_T(program_that_never_answers, 30),
          TEST_ENTRY(program_options_are_checked),
          TEST_ENTRY_T(example_pyqueen_runs, 30))
