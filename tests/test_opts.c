/* test_opts.c - the ranges of bh_run_opts and of a worker's options (an
 * exec-started worker's bootstrap): every value out of range is refused at
 * once, BH_EINVAL with a message naming the option, before anything
 * starts; the edges of the ranges work, BH_NONE (-1) is taken wherever it
 * means none, and a hive at the smallest max_frame carries every message
 * of the protocol. */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "wire/wire.h"
#include "value/value.h"
#include "hive/bee.h"
#include "hive/opts.h"
#include "runner.h"

/* ---- classes ----------------------------------------------------------- */

static int queen_inits; /* the queen's init ran: the hive started */

static int
w_echo(bh_task *t) {
  return bh_return_object(t, bh_task_args(t));
}

static int
w_fail(bh_task *t) {
  return bh_raise(t, "ValueError", "bad input");
}

static int
w_nap(bh_task *t) {
  int64_t ms;

  if (bh_task_unpack(t, "[I]", &ms) != 0)
    return BH_ERAISED;
  return bh_sleep(t, ms);
}

/* Cancels itself with a reason of args[0] bytes. */
static int
w_cancel_long(bh_task *t) {
  int64_t n;
  char *why;

  if (bh_task_unpack(t, "[I]", &n) != 0)
    return BH_ERAISED;
  why = malloc((size_t)n + 1);
  memset(why, 'r', (size_t)n);
  why[n] = '\0';
  bh_cancel_reason(t, "%s", why);
  free(why);
  return BH_ECANCELLED;
}

static const bh_task_def worker_tasks[] = {
    {"echo", w_echo}, {"fail", w_fail}, {"nap", w_nap},
    {"cancel_long", w_cancel_long}, {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = worker_tasks};

/* Every kind of answer through the hive: a value, an exception with its
 * traceback, a cancellation by deadline (cancel_task, then the worker's
 * task_done cancelled), a worker's cancellation with a reason too long to
 * fit whole. Returns [value, root message, deadline status, worker's
 * reason length, its last three bytes]. */
static int
q_every_answer(bh_task *t) {
  bh_deleg_opts quick = {.retries = -1, .timeout_ms = 50};
  const msgpack_object *why;
  bh_group *g = bh_group_new(t);
  bh_result *ok, *bad, *cut;
  bh_future *late;
  int64_t v = 0;
  int st;

  bh_delegate(t, &ok, "echo", "[I]", (int64_t)42);
  bh_result_unpack(ok, NULL, 0, "[I]", &v);
  bh_delegate(t, &bad, "fail", NULL);
  bh_group_set_opts(g, &quick);
  bh_group_delegate(g, &late, NULL, "nap", "[I]", (int64_t)10000);
  bh_future_wait(late, -1);
  st = bh_result_status(bh_future_result(late));
  bh_delegate(t, &cut, "cancel_long", "[I]", (int64_t)20000);
  why = bh__map_get(bh__map_get(bh_result_message(cut), "other_details"),
                    "reason");
  st = bh_return(t, "[I s i I s#]", v, bh_result_root_errmsg(bad), st,
                 (int64_t)(why ? why->via.str.size : 0),
                 why ? why->via.str.ptr + why->via.str.size - 3 : "",
                 (size_t)(why ? 3 : 0));
  bh_future_free(late);
  bh_group_free(g);
  bh_result_free(ok);
  bh_result_free(bad);
  bh_result_free(cut);
  return st;
}

/* Re-raises a worker's exception: the whole chain goes up to bh_run. */
static int
q_reraise(bh_task *t) {
  bh_result *r;
  int rc = bh_delegate(t, &r, "fail", NULL);

  if (rc != 0)
    rc = bh_raise_result(t, r);
  bh_result_free(r);
  return rc;
}

static int
q_cancel_long(bh_task *t) {
  char why[20001];

  memset(why, 'q', sizeof(why) - 1);
  why[sizeof(why) - 1] = '\0';
  bh_cancel_reason(t, "%s", why);
  return BH_ECANCELLED;
}

static int
q_echo(bh_task *t) {
  bh_result *r;
  int rc = bh_delegate_value(t, &r, "echo", bh_task_args(t), NULL);

  if (rc == 0)
    rc = bh_return_object(t, bh_result_value(r));
  bh_result_free(r);
  return rc;
}

static int
q_init(bh_bee *bee, const msgpack_object *args, const msgpack_object *kw) {
  (void)bee;
  (void)args;
  (void)kw;
  queen_inits++;
  return 0;
}

static const bh_task_def queen_tasks[] = {
    {"every_answer", q_every_answer}, {"reraise", q_reraise},
    {"cancel_long", q_cancel_long}, {"echo", q_echo}, {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = queen_tasks,
                               .worker_class = &worker, .init = q_init};
static const bh_class lone = {.name = "Lone", .tasks = queen_tasks};

static int
q_bad_init(bh_bee *bee, const msgpack_object *args,
           const msgpack_object *kw) {
  (void)bee;
  (void)args;
  (void)kw;
  return -1;
}

static const bh_class failing_queen = {.name = "FailQ", .tasks = queen_tasks,
                                       .worker_class = &worker,
                                       .init = q_bad_init};
static const bh_class bad_queen = {.name = "BadQ", .tasks = queen_tasks,
                                   .worker_class = &worker, .workers = -2};
/* Stacks out of range, at the edges of the range, and a sub-queen (a
 * worker class with workers of its own) whose workers' is out. */
static const bh_class small_queen = {.name = "SmallQ", .tasks = queen_tasks,
                                     .worker_class = &worker,
                                     .stack_size = 1000};
static const bh_class huge_worker = {.name = "HugeW", .tasks = worker_tasks,
                                     .stack_size = ((size_t)1 << 30) + 1};
static const bh_class sub_queen = {.name = "SubQ", .tasks = worker_tasks,
                                   .worker_class = &huge_worker};
static const bh_class edge_worker = {.name = "EdgeW", .tasks = worker_tasks,
                                     .stack_size = (size_t)1 << 30};
static const bh_class edge_queen = {.name = "EdgeQ", .tasks = queen_tasks,
                                    .worker_class = &edge_worker,
                                    .stack_size = 64 << 10};

/* ---- helpers ----------------------------------------------------------- */

static bh_run_opts
base(void) {
  return (bh_run_opts){.queen_class = &queen, .task_name = "echo",
                       .workers = 1};
}

/* bh_run(o) is refused with `want`, and nothing started. */
static int
refused(const bh_run_opts *o, const char *want) {
  bh_result *r = NULL;

  queen_inits = 0;
  ASSERT_INT_EQ(bh_run(o, &r), BH_EINVAL);
  ASSERT(r != NULL);
  ASSERT_INT_EQ(bh_result_status(r), BH_RAISED);
  ASSERT_STR_EQ(bh_result_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_errmsg(r), want);
  ASSERT_INT_EQ(queen_inits, 0);
  bh_result_free(r);
  return 0;
}

/* One value out of range, written into the field at `off`. */
typedef enum { K_INT, K_I64, K_SIZE, K_DBL } kind;
typedef struct bad_opt {
  size_t off;
  kind k;
  long long v;
  double d;
  const char *want;
} bad_opt;

#define BAD(field, k, v, want)                                               \
  {offsetof(bh_run_opts, field), k, v, 0, "bh_run: " want}
#define BAD_D(field, d, want)                                                \
  {offsetof(bh_run_opts, field), K_DBL, 0, d, "bh_run: " want}

static const bad_opt bad_opts[] = {
    BAD(max_concurrency, K_INT, -7, "max_concurrency -7 is out of range: it "
        "must be -1 (no limit), 0 (default 1024) or at least 1"),
    BAD(max_concurrency, K_INT, INT_MIN, "max_concurrency -2147483648 is out "
        "of range: it must be -1 (no limit), 0 (default 1024) or at least 1"),
    BAD(prefetch, K_INT, -2, "prefetch -2 is out of range: it must be -1 "
        "(none), 0 (default: max_concurrency / 4) or more"),
    BAD(prefetch, K_INT, INT_MAX, "prefetch 2147483647 is out of range: "
        "max_concurrency (1024) + prefetch must be at most 2147483647"),
    BAD(direct_offer, K_INT, 1, "direct_offer 1 is out of range: it must be "
        "0 (on) or -1 (off)"),
    BAD(direct_offer, K_INT, -2, "direct_offer -2 is out of range: it must "
        "be 0 (on) or -1 (off)"),
    BAD(queen_max_concurrency, K_INT, -3, "queen_max_concurrency -3 is out "
        "of range: it must be 0 or -1 (no limit) or at least 1"),
    BAD(workers, K_INT, -1, "workers -1 is out of range: it must be 0 (the "
        "class's, else min_workers) or more; a hive starts with a worker (-1, none "
        "here, only with listen)"),
    BAD(start, K_INT, 2, "start 2 is out of range: it must be BH_START_FORK "
        "(0) or BH_START_EXEC (1)"),
    BAD(start, K_INT, -1, "start -1 is out of range: it must be "
        "BH_START_FORK (0) or BH_START_EXEC (1)"),
    BAD(pickup_timeout_ms, K_I64, -2, "pickup_timeout_ms -2 is out of "
        "range: it must be -1 (never), 0 (default 600,000) or more"),
    BAD(max_frame, K_SIZE, 1, "max_frame 1 is out of range: it must be 0 "
        "(default 64 MiB) or at least 4096"),
    BAD(max_frame, K_SIZE, BH_MAX_FRAME_MIN - 1, "max_frame 4095 is out of "
        "range: it must be 0 (default 64 MiB) or at least 4096"),
    BAD(min_workers, K_INT, -1, "min_workers -1 is out of range: it must be "
        "0 (default 1) or more; a queen keeps a worker"),
    BAD(max_workers, K_INT, -1, "max_workers -1 is out of range: it must be "
        "0 (default: the CPU count - 1) or more; a queen without a maximum "
        "would grow for ever"),
    BAD(pop_interval_ms, K_I64, -10, "pop_interval_ms -10 is out of range: "
        "it must be -1 (no cadence), 0 (default 10,000) or more"),
    BAD_D(cpu_high, -0.5, "cpu_high -0.5 is out of range: it must be -1 "
          "(never), 0 (default 0.9) or a share in (0, 1]"),
    BAD_D(mem_high, 1.5, "mem_high 1.5 is out of range: it must be -1 "
          "(never), 0 (default 0.9) or a share in (0, 1]"),
    BAD_D(cpu_high, NAN, "cpu_high nan is out of range: it must be -1 "
          "(never), 0 (default 0.9) or a share in (0, 1]"),
    BAD_D(mem_high, -2.0, "mem_high -2 is out of range: it must be -1 "
          "(never), 0 (default 0.9) or a share in (0, 1]"),
    BAD(max_restarts, K_INT, -2, "max_restarts -2 is out of range: it must "
        "be -1 (no restarts), 0 (default 10) or more"),
    BAD(restart_period_ms, K_I64, -2, "restart_period_ms -2 is out of "
        "range: it must be -1 (the whole run), 0 (default 10,000) or more"),
    BAD(recycle_after, K_I64, -5, "recycle_after -5 is out of range: it "
        "must be -1 or 0 (never) or more"),
    BAD(retries, K_INT, -2, "retries -2 is out of range: it must be -1 or "
        "0 (none) or more"),
    BAD(http_max_host_connections, K_INT, -2, "http_max_host_connections "
        "-2 is out of range: it must be -1 (no limit), 0 (default 1024) or "
        "more"),
    BAD(http_max_connections, K_INT, -2, "http_max_connections -2 is out "
        "of range: it must be -1 or 0 (no limit) or more"),
    BAD(poison_kills, K_INT, -2, "poison_kills -2 is out of range: it must "
        "be -1 (never refused), 0 (default 2) or more"),
    BAD(task_timeout_ms, K_I64, -2, "task_timeout_ms -2 is out of range: it "
        "must be -1 or 0 (none) or more"),
    BAD(kill_grace_ms, K_I64, -1000, "kill_grace_ms -1000 is out of range: "
        "it must be -1 (none: kill at once), 0 (default 1,000) or more"),
    BAD(shutdown_grace_ms, K_I64, INT64_MIN, "shutdown_grace_ms "
        "-9223372036854775808 is out of range: it must be -1 (none: kill at "
        "once), 0 (default 5,000) or more"),
    BAD(on_signal, K_INT, 3, "on_signal 3 is out of range: it must be "
        "BH_SIGNALS_CANCEL (0), BH_SIGNALS_FINISH (1) or BH_SIGNALS_IGNORE "
        "(2)"),
    BAD(on_signal, K_INT, -1, "on_signal -1 is out of range: it must be "
        "BH_SIGNALS_CANCEL (0), BH_SIGNALS_FINISH (1) or BH_SIGNALS_IGNORE "
        "(2)"),
    BAD(progress_interval_ms, K_I64, -200, "progress_interval_ms -200 is "
        "out of range: it must be -1 (none: the final call only), 0 "
        "(default 200) or more"),
};

static void
set(bh_run_opts *o, const bad_opt *b) {
  char *p = (char *)o + b->off;
  int i = (int)b->v;
  int64_t l = b->v;
  size_t z = (size_t)b->v;

  switch (b->k) {
  case K_INT:
    memcpy(p, &i, sizeof(i));
    break;
  case K_I64:
    memcpy(p, &l, sizeof(l));
    break;
  case K_SIZE:
    memcpy(p, &z, sizeof(z));
    break;
  case K_DBL:
    memcpy(p, &b->d, sizeof(b->d));
    break;
  }
}

/* ---- bh_run: each value out of range ----------------------------------- */

TEST(every_option_out_of_range_is_refused) {
  size_t i;

  for (i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
    bh_run_opts o = base();

    set(&o, &bad_opts[i]);
    if (refused(&o, bad_opts[i].want) != 0) {
      fprintf(stderr, "case %zu: %s\n", i, bad_opts[i].want);
      return 1;
    }
  }
  return 0;
}

TEST(contradicting_counts_are_refused) {
  bh_run_opts o = base();

  o.min_workers = 5;
  o.max_workers = 3;
  ASSERT_INT_EQ(refused(&o, "bh_run: min_workers 5 is more than "
                            "max_workers 3"), 0);
  o = base();
  o.workers = 4;
  o.max_workers = 2;
  ASSERT_INT_EQ(refused(&o, "bh_run: workers 4 is more than max_workers 2"),
                0);
  o = base();
  o.workers = 0;
  o.queen_class = &bad_queen;
  ASSERT_INT_EQ(refused(&o, "bh_run: workers -2 of class 'BadQ' is out of "
                            "range: it must be 0 (1) or more"), 0);
  return 0;
}

TEST(missing_and_misshapen_values_are_refused) {
  bh_value *map = bh_value_pack(NULL, "{s:i}", "a", 1);
  bh_value *arr = bh_value_pack(NULL, "[i]", 1);
  bh_run_opts o = base();
  bh_result *r = NULL;

  ASSERT_INT_EQ(bh_run(NULL, &r), BH_EINVAL);
  ASSERT_STR_EQ(bh_result_errmsg(r), "bh_run: the options are required (o "
                                     "is NULL)");
  bh_result_free(r);
  ASSERT_INT_EQ(bh_run(&o, NULL), BH_EINVAL);
  o.queen_class = NULL;
  ASSERT_INT_EQ(refused(&o, "bh_run: queen_class is required"), 0);
  o = base();
  o.queen_class = &lone;
  ASSERT_INT_EQ(refused(&o, "bh_run: worker_class is required: neither it "
                            "nor queen_class->worker_class is set"), 0);
  o = base();
  o.task_name = NULL;
  ASSERT_INT_EQ(refused(&o, "bh_run: task_name is required"), 0);
  o.task_name = "";
  ASSERT_INT_EQ(refused(&o, "bh_run: task_name is empty"), 0);
  o = base();
  o.task_args = map;
  ASSERT_INT_EQ(refused(&o, "bh_run: task_args must be an array or NULL, "
                            "not map"), 0);
  o = base();
  o.task_kwargs = arr;
  ASSERT_INT_EQ(refused(&o, "bh_run: task_kwargs must be a map or NULL, "
                            "not array"), 0);
  o = base();
  o.worker_init_args = map;
  ASSERT_INT_EQ(refused(&o, "bh_run: worker_init_args must be an array or "
                            "NULL, not map"), 0);
  o = base();
  o.queen_init_kwargs = arr;
  ASSERT_INT_EQ(refused(&o, "bh_run: queen_init_kwargs must be a map or "
                            "NULL, not array"), 0);
  bh_value_free(map);
  bh_value_free(arr);
  return 0;
}

/* A task name that leaves no room in a frame, even without arguments. */
TEST(task_name_too_long_for_the_frame_is_refused) {
  char name[BH_MAX_FRAME_MIN];
  char want[160];
  bh_run_opts o = base();

  memset(name, 'n', sizeof(name) - 1);
  name[sizeof(name) - 1] = '\0';
  o.task_name = name;
  o.max_frame = BH_MAX_FRAME_MIN;
  snprintf(want, sizeof(want), "bh_run: task_name is too long: %zu bytes "
           "do not fit in a frame of 4096 bytes (max_frame)",
           sizeof(name) - 1);
  return refused(&o, want);
}

/* These two hung (no new_task fits in 8 bytes: nothing was ever sent) and
 * aborted the caller (no answer to a task fits in 55). */
TEST(max_frame_8_is_refused_at_once) {
  bh_run_opts o = base();

  o.max_frame = 8;
  return refused(&o, "bh_run: max_frame 8 is out of range: it must be 0 "
                     "(default 64 MiB) or at least 4096");
}

TEST(max_frame_55_is_refused_at_once) {
  bh_run_opts o = base();

  o.max_frame = 55;
  return refused(&o, "bh_run: max_frame 55 is out of range: it must be 0 "
                     "(default 64 MiB) or at least 4096");
}

/* ---- the edges of the ranges work --------------------------------------- */

static int
echo_runs(const bh_run_opts *o) {
  bh_result *r = NULL;
  int64_t v = 0;
  int rc;

  rc = bh_run(o, &r);
  if (rc != 0) {
    char text[1024];

    bh_result_format(r, text, sizeof(text));
    fprintf(stderr, "%s\n", text);
  }
  ASSERT_INT_EQ(rc, 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I]", &v), 0);
  ASSERT_INT_EQ(v, 7);
  bh_result_free(r);
  return 0;
}

TEST(values_at_the_edges_work) {
  bh_value *args = bh_value_pack(NULL, "[I]", (int64_t)7);
  bh_run_opts o = base();

  o.task_args = args;
  o.max_concurrency = -1;
  o.direct_offer = -1;
  o.queen_max_concurrency = -1;
  o.cpu_high = 1.0;
  o.mem_high = 1.0;
  o.min_workers = 1;
  o.max_workers = 1;
  o.on_signal = BH_SIGNALS_IGNORE;
  o.max_frame = (size_t)UINT32_MAX + 100; /* capped by the header's size */
  ASSERT_INT_EQ(echo_runs(&o), 0);
  o = base();
  o.task_args = args;
  o.max_concurrency = INT_MAX - 3;
  o.prefetch = 3;
  o.start = BH_START_FORK;
  o.on_signal = BH_SIGNALS_FINISH;
  ASSERT_INT_EQ(echo_runs(&o), 0);
  bh_value_free(args);
  return 0;
}

/* BH_NONE (-1) wherever it means none: the hive takes every one of them
 * and runs. What each one does is tested where its feature is
 * (test_fault, test_shutdown, test_protocol, test_trace). */
TEST(every_none_is_taken) {
  bh_value *args = bh_value_pack(NULL, "[I]", (int64_t)7);
  bh_run_opts o = base();

  o.task_args = args;
  o.http_max_host_connections = BH_NONE;
  o.http_max_connections = BH_NONE;
  o.max_concurrency = BH_NONE;
  o.prefetch = BH_NONE;
  o.direct_offer = BH_NONE;
  o.queen_max_concurrency = BH_NONE;
  o.pickup_timeout_ms = BH_NONE;
  o.pop_interval_ms = BH_NONE;
  o.cpu_high = BH_NONE;
  o.mem_high = BH_NONE;
  o.max_restarts = BH_NONE;
  o.restart_period_ms = BH_NONE;
  o.recycle_after = BH_NONE;
  o.retries = BH_NONE;
  o.poison_kills = BH_NONE;
  o.task_timeout_ms = BH_NONE;
  o.kill_grace_ms = BH_NONE;
  o.shutdown_grace_ms = BH_NONE;
  o.progress_interval_ms = BH_NONE;
  ASSERT_INT_EQ(echo_runs(&o), 0);
  o.start = BH_START_EXEC; /* the settings travel in the bootstrap */
  ASSERT_INT_EQ(echo_runs(&o), 0);
  bh_value_free(args);
  return 0;
}

/* The bootstrap's config has no -1 for the HTTP limits or prefetch: a
 * worker's record says "none" in the bootstrap's own terms, and the frame
 * goes through an exec-started worker's check. */
TEST(none_travels_in_the_bootstrap_ranges) {
  bh__spawn_opts so = {.cls = &worker, .prefetch = BH_NONE,
                       .http_max_host_connections = BH_NONE,
                       .http_max_connections = BH_NONE};
  bh__wcfg cfg, back;
  bh_value *v;
  char why[200];

  ASSERT_INT_EQ(bh__wcfg_from_spawn(&cfg, &so), 0);
  ASSERT_INT_EQ(cfg.prefetch, 0);
  ASSERT_INT_EQ(cfg.http_max_host_connections, INT_MAX);
  ASSERT_INT_EQ(cfg.http_max_connections, 0);
  ASSERT((v = bh__wcfg_value(&cfg)) != NULL);
  ASSERT_INT_EQ(bh__wcfg_unpack(&back, bh_value_object(v), why, sizeof(why)),
                0);
  ASSERT_INT_EQ(back.http_max_host_connections, INT_MAX);
  bh_value_free(v);
  bh__wcfg_clear(&back);
  bh__wcfg_clear(&cfg);
  return 0;
}

/* The default prefetch: a quarter of max_concurrency, none below 4 or
 * with no limit or for an external class, and never so much that the
 * worker's own check of its bootstrap refuses the sum (max_concurrency
 * INT_MAX - 3 made it INT_MAX / 4: every exec-started and joined worker
 * exited 2). */
static const bh_program ext_prog = {.path = "/bin/true"};
static const bh_class ext_worker = {.name = "Ext", .program = &ext_prog};

TEST(default_prefetch_is_a_quarter_within_range) {
  bh__spawn_opts so = {.cls = &worker, .max_concurrency = INT_MAX - 3};
  bh__wcfg cfg;
  char why[200];

  ASSERT_INT_EQ(bh__prefetch_norm(0, 1024, false), 256);
  ASSERT_INT_EQ(bh__prefetch_norm(0, 3, false), 0);
  ASSERT_INT_EQ(bh__prefetch_norm(0, -1, false), 0);
  ASSERT_INT_EQ(bh__prefetch_norm(0, 1024, true), 0);
  ASSERT_INT_EQ(bh__prefetch_norm(BH_NONE, 1024, false), 0);
  ASSERT_INT_EQ(bh__prefetch_norm(7, 1024, true), 7);
  ASSERT_INT_EQ(bh__wcfg_from_spawn(&cfg, &so), 0);
  ASSERT_INT_EQ(cfg.prefetch, 3);
  /* what an exec-started worker checks its bootstrap with */
  so.max_concurrency = (int)cfg.max_concurrency;
  so.prefetch = (int)cfg.prefetch;
  ASSERT_INT_EQ(bh__spawn_opts_check(&so, "worker", why, sizeof(why)), 0);
  bh__wcfg_clear(&cfg);
  so = (bh__spawn_opts){.cls = &ext_worker};
  ASSERT_INT_EQ(bh__wcfg_from_spawn(&cfg, &so), 0);
  ASSERT_INT_EQ(cfg.prefetch, 0);
  bh__wcfg_clear(&cfg);
  return 0;
}

/* A queen that cannot start: BH_EINVAL and why, no task run. */
TEST(queen_init_failure_is_einval) {
  bh_run_opts o = base();
  bh_result *r = NULL;

  o.queen_class = &failing_queen;
  ASSERT_INT_EQ(bh_run(&o, &r), BH_EINVAL);
  ASSERT_STR_EQ(bh_result_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_errmsg(r), "The init of bee class 'FailQ' "
                                     "failed.");
  bh_result_free(r);
  return 0;
}

/* A queen's task on the smallest stack, her workers' on the largest. */
TEST(stack_sizes_at_the_edges_work) {
  bh_value *args = bh_value_pack(NULL, "[I]", (int64_t)7);
  bh_run_opts o = base();

  o.task_args = args;
  o.queen_class = &edge_queen;
  ASSERT_INT_EQ(echo_runs(&o), 0);
  bh_value_free(args);
  return 0;
}

/* The longest times are valid: the pickup clock must not overflow
 * (t0 + INT64_MAX wrapped, and every offer timed out at once). */
TEST(longest_times_work) {
  bh_value *args = bh_value_pack(NULL, "[I]", (int64_t)7);
  bh_run_opts o = base();

  o.task_args = args;
  o.pickup_timeout_ms = INT64_MAX;
  o.task_timeout_ms = INT64_MAX;
  o.kill_grace_ms = INT64_MAX;
  o.pop_interval_ms = INT64_MAX;
  o.restart_period_ms = INT64_MAX;
  o.progress_interval_ms = INT64_MAX;
  ASSERT_INT_EQ(echo_runs(&o), 0);
  bh_value_free(args);
  return 0;
}

/* ---- the smallest max_frame carries the whole protocol ------------------ */

TEST(max_frame_floor_carries_every_message) {
  bh_run_opts o = base();
  bh_result *r = NULL;
  char msg[64], tail[4];
  int64_t v, len;
  int st;

  o.max_frame = BH_MAX_FRAME_MIN;
  o.task_name = "every_answer";
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I s i I s]", &v, msg,
                                 sizeof(msg), &st, &len, tail, sizeof(tail)),
                0);
  ASSERT_INT_EQ(v, 42);
  ASSERT_STR_EQ(msg, "bad input");
  ASSERT_INT_EQ(st, BH_CANCELLED);
  /* The worker's 20,000-byte reason did not fit: it came cut. */
  ASSERT_INT_EQ(len, BH__TEXT_MAX);
  ASSERT_STR_EQ(tail, "...");
  bh_result_free(r);
  o.task_name = "reraise";
  ASSERT_INT_EQ(bh_run(&o, &r), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task raised an exception.");
  ASSERT_STR_EQ(bh_result_root_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "bad input");
  bh_result_free(r);
  o.task_name = "cancel_long";
  ASSERT_INT_EQ(bh_run(&o, &r), BH_ECANCELLED);
  ASSERT(strlen(bh_result_reason(r)) > BH__TEXT_MAX);
  ASSERT(strstr(bh_result_reason(r), "qqq...") != NULL);
  bh_result_free(r);
  return 0;
}

/* ---- a worker's options --------------------------------------------------
 * Once bh_subprocess_workerbee()'s (public until it left the header); now
 * what an exec-started worker checks its bootstrap frame against. */

static int
spawn_refused(const bh__spawn_opts *o, const char *want) {
  char why[256] = "";

  ASSERT_INT_EQ(bh__spawn_opts_check(o, "worker", why, sizeof(why)),
                BH_EINVAL);
  ASSERT_STR_EQ(why, want);
  return 0;
}

TEST(spawn_options_out_of_range_are_refused) {
  bh_value *map = bh_value_pack(NULL, "{}");
  bh__spawn_opts o = {.cls = &worker};
  char why[256];

  ASSERT_INT_EQ(bh__spawn_opts_check(&o, "worker", why, sizeof(why)), 0);
  o.max_frame = 55;
  ASSERT_INT_EQ(spawn_refused(&o, "worker: max_frame 55 is out of range: "
                              "it must be 0 (default 64 MiB) or at least "
                              "4096"), 0);
  o.max_frame = 0;
  o.max_concurrency = -7;
  ASSERT_INT_EQ(spawn_refused(&o, "worker: max_concurrency -7 is out of "
                              "range: it must be -1 (no limit), 0 (default "
                              "1024) or at least 1"), 0);
  o.max_concurrency = 0;
  o.prefetch = -2;
  ASSERT_INT_EQ(spawn_refused(&o, "worker: prefetch -2 is out of range: it "
                              "must be -1 (none), 0 (default: "
                              "max_concurrency / 4) or more"), 0);
  o.prefetch = 0;
  o.http_max_host_connections = -2;
  ASSERT_INT_EQ(spawn_refused(&o, "worker: http_max_host_connections -2 is "
                              "out of range: it must be -1 (no limit), 0 "
                              "(default 1024) or more"), 0);
  o.http_max_host_connections = 0;
  o.start = (bh_start)5;
  ASSERT_INT_EQ(spawn_refused(&o, "worker: start 5 is out of range: it "
                              "must be BH_START_FORK (0) or BH_START_EXEC "
                              "(1)"), 0);
  o.start = BH_START_FORK;
  o.init_args = map;
  ASSERT_INT_EQ(spawn_refused(&o, "worker: init_args must be an array or "
                              "NULL, not map"), 0);
  o.init_args = NULL;
  o.cls = NULL;
  ASSERT_INT_EQ(spawn_refused(&o, "worker: cls is required"), 0);
  bh_value_free(map);
  return 0;
}

#define STACK_RANGE                                                          \
  "is out of range: it must be 0 (default 256 KiB) or from 65536 (64 KiB) " \
  "to 1073741824 (1 GiB)"

/* A class's stack_size, whichever class it is: the queen's, her workers',
 * or those of a sub-queen among them; by bh_run and by a worker's
 * check. */
TEST(stack_size_out_of_range_is_refused) {
  bh__spawn_opts so = {.cls = &huge_worker};
  bh_run_opts o = base();

  o.queen_class = &small_queen;
  ASSERT_INT_EQ(refused(&o, "bh_run: stack_size 1000 of class 'SmallQ' "
                        STACK_RANGE), 0);
  o = base();
  o.worker_class = &huge_worker;
  ASSERT_INT_EQ(refused(&o, "bh_run: stack_size 1073741825 of class 'HugeW' "
                        STACK_RANGE), 0);
  o.worker_class = &sub_queen;
  ASSERT_INT_EQ(refused(&o, "bh_run: stack_size 1073741825 of class 'HugeW' "
                        STACK_RANGE), 0);
  ASSERT_INT_EQ(spawn_refused(&so, "worker: stack_size 1073741825 of "
                              "class 'HugeW' " STACK_RANGE), 0);
  so.cls = &sub_queen;
  ASSERT_INT_EQ(spawn_refused(&so, "worker: stack_size 1073741825 of "
                              "class 'HugeW' " STACK_RANGE), 0);
  return 0;
}

/* http_ca_file must name a file that can be read: a path that is not
 * there (or a directory, or one we may not read) is refused, naming it,
 * by bh_run and by a worker's check; a readable file is taken. */
TEST(http_ca_file_must_be_a_readable_file) {
  char path[] = "/tmp/bh_test_ca_XXXXXX", want[256];
  bh_value *args = bh_value_pack(NULL, "[I]", (int64_t)7);
  bh__spawn_opts so = {.cls = &worker,
                       .http_ca_file = "/nonexistent/ca.pem"};
  bh_run_opts o = base();
  int fd = mkstemp(path);

  ASSERT(fd >= 0);
  close(fd);
  o.http_ca_file = "/nonexistent/ca.pem";
  ASSERT_INT_EQ(refused(&o, "bh_run: http_ca_file '/nonexistent/ca.pem' "
                            "cannot be read: No such file or directory"), 0);
  o.http_ca_file = "/tmp";
  ASSERT_INT_EQ(refused(&o, "bh_run: http_ca_file '/tmp' is not a file (a "
                            "PEM CA bundle)"), 0);
  ASSERT_INT_EQ(spawn_refused(&so, "worker: http_ca_file "
                              "'/nonexistent/ca.pem' cannot be read: No such "
                              "file or directory"), 0);
  if (geteuid() != 0) { /* root reads anything */
    ASSERT_INT_EQ(chmod(path, 0), 0);
    o.http_ca_file = path;
    snprintf(want, sizeof(want), "bh_run: http_ca_file '%s' cannot be "
             "read: Permission denied", path);
    ASSERT_INT_EQ(refused(&o, want), 0);
    ASSERT_INT_EQ(chmod(path, 0600), 0);
  }
  o = base();
  o.task_args = args;
  o.http_ca_file = path;
  ASSERT_INT_EQ(echo_runs(&o), 0);
  unlink(path);
  bh_value_free(args);
  return 0;
}

/* An exec-started worker (here the exec_hive helper program) checks its
 * bootstrap frame as bh_run() checks its options: a
 * parent other than beehive may send anything. It exits with status 2,
 * saying why, before it runs a thing. With `init`, its class's init gets
 * the [tag] it wants (else [] and the init fails); with `die`, the frame
 * is followed by die. */
static int
boot_with(uint64_t max_frame, int max_conc, bool init, bool die,
          int *status, char *err, size_t errlen) {
  /* docs/PROTOCOL.md section 12's die, byte for byte. */
  static const char die_frame[] = "\0\0\0\x0e\x81\xa8msg_type\xa3" "die";
  bh_value *tag = bh_value_pack(NULL, "[I]", (int64_t)5);
  bh_value *none = bh_value_pack(NULL, "[]");
  char drain[256];
  int sv[2], ep[2];
  bh__buf b = {0};
  msgpack_packer pk;
  size_t body;
  ssize_t n;
  pid_t pid;

  ASSERT_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ASSERT_INT_EQ(pipe(ep), 0);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    /* The parent's ends stay behind: a worker holding its own channel's
     * other end would never see it close. */
    close(sv[0]);
    close(ep[0]);
    dup2(sv[1], 3);
    dup2(ep[1], 2);
    setenv("BH_WORKER", "1", 1);
    execl(BH_HELPER_DIR "/exec_hive", "beehive-worker", (char *)NULL);
    _exit(127);
  }
  close(sv[1]);
  close(ep[1]);
  bh__buf_append(&b, "\0\0\0\0", 4);
  msgpack_packer_init(&pk, &b, bh__buf_write);
  ASSERT_INT_EQ(bh_pack(&pk, "{s:s s:s s:I s:o s:{} s:{s:i s:i s:U s:n s:i "
                        "s:i s:n}}", "msg_type", "bootstrap", "class",
                        "ExecWorker", "id", (int64_t)0, "init_args",
                        bh_value_object(init ? tag : none), "init_kwargs",
                        "config", "max_concurrency", max_conc, "prefetch",
                        0, "max_frame", max_frame, "s3_profile",
                        "http_max_host_connections", 0,
                        "http_max_connections", 0, "http_ca_file"), 0);
  body = b.len - 4;
  b.data[2] = (char)(body >> 8);
  b.data[3] = (char)body;
  if (die)
    bh__buf_append(&b, die_frame, sizeof(die_frame) - 1);
  ASSERT_INT_EQ(write(sv[0], b.data, b.len), (ssize_t)b.len);
  bh__buf_free(&b);
  bh_value_free(tag);
  bh_value_free(none);
  /* After die the worker says dead and ends: read to its end of stream.
   * Otherwise, a worker that took the frame waits for tasks: our end
   * closing makes it an orphan (status 3). One that refused it has
   * exited already. */
  while (die && read(sv[0], drain, sizeof(drain)) > 0)
    ;
  close(sv[0]);
  n = read(ep[0], err, errlen - 1);
  err[n > 0 ? n : 0] = '\0';
  close(ep[0]);
  ASSERT_INT_EQ(waitpid(pid, status, 0), pid);
  return 0;
}

TEST(exec_worker_refuses_a_bootstrap_out_of_range) {
  char err[512];
  int st;

  ASSERT_INT_EQ(boot_with(8, 4, true, false, &st, err, sizeof(err)), 0);
  ASSERT(WIFEXITED(st));
  ASSERT_INT_EQ(WEXITSTATUS(st), 2);
  ASSERT_STR_EQ(err, "beehive worker: bad bootstrap: config: max_frame 8 is "
                     "out of range 4096..4294967295\n");
  ASSERT_INT_EQ(boot_with(BH_MAX_FRAME_MIN, -7, true, false, &st, err,
                          sizeof(err)), 0);
  ASSERT(WIFEXITED(st));
  ASSERT_INT_EQ(WEXITSTATUS(st), 2);
  ASSERT_STR_EQ(err, "beehive worker: bad bootstrap: config: "
                     "max_concurrency -7 is out of range -1..2147483647\n");
  return 0;
}

/* bh_worker_main's exit statuses (beehive.h): 0 after dead, 1 when the
 * class's init failed, 3 when the parent's channel ended. */
TEST(exec_worker_exit_statuses) {
  char err[512];
  int st;

  ASSERT_INT_EQ(boot_with(BH_MAX_FRAME_MIN, 4, true, true, &st, err,
                          sizeof(err)), 0);
  ASSERT(WIFEXITED(st));
  ASSERT_INT_EQ(WEXITSTATUS(st), 0);
  ASSERT_INT_EQ(boot_with(BH_MAX_FRAME_MIN, 4, false, false, &st, err,
                          sizeof(err)), 0);
  ASSERT(WIFEXITED(st));
  ASSERT_INT_EQ(WEXITSTATUS(st), 1);
  ASSERT_INT_EQ(boot_with(BH_MAX_FRAME_MIN, 4, true, false, &st, err,
                          sizeof(err)), 0);
  ASSERT(WIFEXITED(st));
  ASSERT_INT_EQ(WEXITSTATUS(st), 3);
  return 0;
}

TEST_MAIN_WORKER(worker, TEST_ENTRY(every_option_out_of_range_is_refused),
          TEST_ENTRY(contradicting_counts_are_refused),
          TEST_ENTRY(missing_and_misshapen_values_are_refused),
          TEST_ENTRY(task_name_too_long_for_the_frame_is_refused),
          TEST_ENTRY(max_frame_8_is_refused_at_once),
          TEST_ENTRY(max_frame_55_is_refused_at_once),
          TEST_ENTRY(values_at_the_edges_work),
          TEST_ENTRY(every_none_is_taken),
          TEST_ENTRY(none_travels_in_the_bootstrap_ranges),
          TEST_ENTRY(default_prefetch_is_a_quarter_within_range),
          TEST_ENTRY(queen_init_failure_is_einval),
          TEST_ENTRY(stack_sizes_at_the_edges_work),
          TEST_ENTRY(longest_times_work),
          TEST_ENTRY(max_frame_floor_carries_every_message),
          TEST_ENTRY(spawn_options_out_of_range_are_refused),
          TEST_ENTRY(stack_size_out_of_range_is_refused),
          TEST_ENTRY(http_ca_file_must_be_a_readable_file),
          TEST_ENTRY(exec_worker_refuses_a_bootstrap_out_of_range),
          TEST_ENTRY(exec_worker_exit_statuses))
