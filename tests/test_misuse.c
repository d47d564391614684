/* test_misuse.c - calls the caller got wrong get an error, not a crash:
 * NULL where a pointer is required, an empty task name, a group's future
 * freed before the group handed it out; and calls that cannot be done (no
 * memory, arguments too large) return the code the header names. */
#include <stdint.h>
#include <unistd.h>

#include "base/base.h"
#include "alloc_util.h"
#include "runner.h"

/* ---- the hive ---------------------------------------------------------- */

static int
w_echo(bh_task *t) {
  return bh_return_object(t, bh_task_args(t));
}

static int
w_nap(bh_task *t) {
  int64_t ms;

  if (bh_task_unpack(t, "[I]", &ms) != 0)
    return BH_ERAISED;
  return bh_sleep(t, ms);
}

static const bh_task_def worker_tasks[] = {
    {"echo", w_echo}, {"nap", w_nap}, {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = worker_tasks};

static char logged[256]; /* the queen's last ERROR line */

static void
log_line(void *udata, bh_log_level level, int indent, const char *line) {
  (void)udata;
  (void)indent;
  if (level >= BH_LOG_ERROR)
    snprintf(logged, sizeof(logged), "%s", line);
}

/* Checks that r explains a refused call with want, and frees it. */
static int
explains(bh_result *r, const char *want) {
  ASSERT(r != NULL);
  ASSERT_INT_EQ(bh_result_status(r), BH_RAISED);
  ASSERT_STR_EQ(bh_result_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_errmsg(r), want);
  bh_result_free(r);
  return 0;
}

static int
q_delegate_misuse(bh_task *t) {
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, NULL, "echo", NULL), BH_EINVAL);
  ASSERT_INT_EQ(bh_delegate_value(t, NULL, "echo", NULL, NULL), BH_EINVAL);
  ASSERT_INT_EQ(bh_delegate(NULL, &r, "echo", NULL), BH_EINVAL);
  ASSERT_INT_EQ(explains(r, "bh_delegate: the task is NULL"), 0);
  ASSERT_INT_EQ(bh_delegate(t, &r, NULL, NULL), BH_EINVAL);
  ASSERT_INT_EQ(explains(r, "bh_delegate: the task name is NULL"), 0);
  ASSERT_INT_EQ(bh_delegate_value(t, &r, NULL, NULL, NULL), BH_EINVAL);
  ASSERT_INT_EQ(explains(r, "bh_delegate_value: the task name is NULL"), 0);
  return bh_return(t, "s", "fine");
}

/* An empty name read "EncodeError: The task's arguments could not be
 * encoded." */
static int
q_empty_name(bh_task *t) {
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, &r, "", "[i]", 1), BH_EINVAL);
  ASSERT_INT_EQ(explains(r, "bh_delegate: the task name is empty"), 0);
  ASSERT_INT_EQ(bh_delegate_value(t, &r, "", NULL, NULL), BH_EINVAL);
  ASSERT_INT_EQ(explains(r, "bh_delegate_value: the task name is empty"),
                0);
  /* And the bee goes on delegating. */
  ASSERT_INT_EQ(bh_delegate(t, &r, "echo", "[i]", 5), 0);
  bh_result_free(r);
  return bh_return(t, "s", "fine");
}

static int
local_nothing(bh_task *t, void *arg) {
  (void)t;
  (void)arg;
  return 0;
}

/* Out of memory, each call returns BH_ENOMEM with nothing started, and
 * works again after. */
static int
q_no_memory(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f = NULL;
  bh_stats st;
  int p[2], go, del, wait, stats;

  ASSERT(pipe(p) == 0);
  fail_alloc_at(1);
  go = bh_group_go(g, &f, NULL, local_nothing, NULL);
  fail_alloc_off();
  fail_alloc_at(1);
  del = bh_group_delegate(g, &f, NULL, "echo", "[i]", 1);
  fail_alloc_off();
  fail_alloc_at(1);
  wait = bh_wait_fd(t, p[0], BH_READABLE, -1);
  fail_alloc_off();
  ASSERT(f == NULL);
  ASSERT_INT_EQ(bh_group_pending(g), 0);
  ASSERT_INT_EQ(bh_group_delegate(g, &f, NULL, "echo", "[i]", 1), 0);
  ASSERT_INT_EQ(bh_future_wait(f, -1), 0); /* a child now: stats fill */
  fail_alloc_at(1);
  stats = bh_bee_stats(bh_task_bee(t), &st);
  fail_alloc_off();
  ASSERT_INT_EQ(bh_bee_stats(bh_task_bee(t), &st), 0);
  ASSERT_INT_EQ(st.n_children, 1);
  bh_future_free(f);
  bh_group_free(g);
  close(p[0]);
  close(p[1]);
  return bh_return(t, "[i i i i]", go, del, wait, stats);
}

/* Arguments no frame can carry: BH_EMSGSIZE, refused before anything is
 * sent, with why. The length is checked before the bytes are read. */
static int
q_too_large(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_result *r;
  char why[128];
  int del, gdel;

  del = bh_delegate(t, &r, "echo", "[s#]", "x", (size_t)UINT32_MAX + 1);
  ASSERT_STR_EQ(bh_result_errmsg(r), "bh_delegate: format \"[s#]\": a str "
                                     "or bin of 4 GiB or more");
  bh_result_free(r);
  gdel = bh_group_delegate(g, NULL, NULL, "echo", "[y#]", "x",
                           (size_t)UINT32_MAX + 1);
  snprintf(why, sizeof(why), "%s", bh_task_errmsg(t));
  ASSERT_INT_EQ(bh_group_pending(g), 0);
  bh_group_free(g);
  ASSERT_INT_EQ(bh_return_object(t, NULL), BH_EINVAL);
  return bh_return(t, "[i i s]", del, gdel, why);
}

static int
q_group_misuse(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f = (bh_future *)&f;

  ASSERT(bh_group_new(NULL) == NULL);
  ASSERT_INT_EQ(bh_group_delegate(NULL, &f, NULL, "echo", NULL), BH_EINVAL);
  ASSERT_INT_EQ(bh_group_delegate(g, &f, NULL, "", NULL), BH_EINVAL);
  ASSERT_STR_EQ(logged, "bh_group_delegate: the task name is empty");
  logged[0] = '\0';
  ASSERT_INT_EQ(bh_group_delegate_value(g, NULL, NULL, NULL, NULL, NULL),
                BH_EINVAL);
  ASSERT_STR_EQ(logged, "bh_group_delegate_value: the task name is NULL");
  ASSERT_INT_EQ(bh_group_go(g, NULL, NULL, NULL, NULL), BH_EINVAL);
  ASSERT_INT_EQ(bh_group_next(NULL, &f, -1), BH_EINVAL);
  ASSERT_INT_EQ(bh_group_next(g, NULL, -1), BH_EINVAL);
  ASSERT_INT_EQ(bh_group_pending(NULL), 0);
  ASSERT_INT_EQ(bh_group_pending(g), 0);
  bh_group_set_opts(NULL, NULL);
  bh_group_set_opts(g, NULL);
  ASSERT_INT_EQ(bh_future_wait(NULL, -1), BH_EINVAL);
  ASSERT_INT_EQ(bh_future_cancel(NULL), BH_EINVAL);
  ASSERT_INT_EQ(bh_future_done(NULL), 0);
  ASSERT(bh_future_result(NULL) == NULL);
  ASSERT(bh_future_udata(NULL) == NULL);
  bh_future_free(NULL);
  ASSERT_INT_EQ(bh_group_next(g, &f, -1), BH_EDONE);
  bh_group_free(g);
  return bh_return(t, "s", "fine");
}

/* Frees futures of a group before it handed them out: one running on the
 * worker, one done and unclaimed. Returns the udata of what
 * bh_group_next() then handed out, in order, and its last code. */
static int
q_free_unclaimed(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *running, *done, *waited, *f;
  int64_t got[3] = {0, 0, 0};
  int n = 0, rc;

  bh_group_delegate(g, &running, (void *)1, "nap", "[I]", (int64_t)10000);
  bh_group_delegate(g, &done, (void *)2, "echo", "[i]", 2);
  bh_group_delegate(g, &waited, (void *)3, "echo", "[i]", 3);
  bh_group_delegate(g, NULL, (void *)4, "echo", "[i]", 4);
  bh_future_free(running);
  /* One worker running one task at a time answers in order: once 3 is
   * done, so is 2, which nobody has claimed. */
  ASSERT_INT_EQ(bh_future_wait(waited, -1), 0);
  ASSERT(bh_future_done(done));
  bh_future_free(done);
  bh_future_free(waited);
  ASSERT_INT_EQ(bh_group_pending(g), 1);
  while ((rc = bh_group_next(g, &f, bh_now() + 2000)) == 0 && n < 3) {
    got[n++] = (int64_t)(intptr_t)bh_future_udata(f);
    bh_future_free(f);
  }
  bh_group_free(g);
  return bh_return(t, "[I I I i]", got[0], got[1], got[2], rc);
}

static int
local_free(bh_task *t, void *arg) {
  (void)t;
  bh_future_free(arg);
  return 0;
}

/* A local fiber frees the only future a group waits for: the wait in
 * bh_group_next() ends, nothing left. The fiber runs once the queen's
 * task is suspended in that wait (fibers start at the end of the turn). */
static int
q_free_while_next_waits(bh_task *t) {
  bh_group *g = bh_group_new(t), *g2 = bh_group_new(t);
  bh_future *f;
  int64_t t0 = bh_now();
  int rc;

  bh_group_delegate(g, &f, NULL, "nap", "[I]", (int64_t)10000);
  bh_group_go(g2, NULL, NULL, local_free, f);
  rc = bh_group_next(g, &f, bh_now() + 3000);
  bh_group_free(g);
  bh_group_next(g2, &f, -1);
  bh_future_free(f);
  bh_group_free(g2);
  return bh_return(t, "[i I]", rc, bh_now() - t0);
}

static const bh_task_def queen_tasks[] = {
    {"delegate_misuse", q_delegate_misuse}, {"empty_name", q_empty_name},
    {"group_misuse", q_group_misuse},
    {"free_unclaimed", q_free_unclaimed},
    {"free_while_next_waits", q_free_while_next_waits},
    {"no_memory", q_no_memory}, {"too_large", q_too_large},
    {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = queen_tasks,
                               .worker_class = &worker};

/* Runs `task` on a hive of one worker; 0 if it returned "fine". */
static int
run_fine(const char *task) {
  bh_logger *lg = bh_logger_new(BH_LOG_ERROR, log_line, NULL);
  bh_run_opts o = {.queen_class = &queen, .task_name = task, .workers = 1,
                   .logger = lg};
  char text[64];
  bh_result *r;

  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "s", text, sizeof(text)), 0);
  ASSERT_STR_EQ(text, "fine");
  bh_result_free(r);
  bh_logger_free(lg);
  return 0;
}

/* ---- tests ------------------------------------------------------------- */

TEST(delegate_with_null_is_einval) {
  return run_fine("delegate_misuse");
}

TEST(delegate_with_an_empty_name_says_so) {
  return run_fine("empty_name");
}

TEST(group_calls_with_null_are_einval) {
  return run_fine("group_misuse");
}

TEST(result_accessors_take_null) {
  char buf[8] = "x";

  ASSERT_INT_EQ(bh_result_status(NULL), BH_RAISED);
  ASSERT_INT_EQ(bh_result_child_id(NULL), -1);
  ASSERT_INT_EQ(bh_result_value(NULL)->type, MSGPACK_OBJECT_NIL);
  ASSERT_INT_EQ(bh_result_unpack(NULL, NULL, 0, "n"), BH_EINVAL);
  ASSERT(bh_result_errtype(NULL) == NULL);
  ASSERT(bh_result_errmsg(NULL) == NULL);
  ASSERT(bh_result_reason(NULL) == NULL);
  ASSERT(bh_result_root_errtype(NULL) == NULL);
  ASSERT(bh_result_root_errmsg(NULL) == NULL);
  ASSERT(bh_result_message(NULL) == NULL);
  ASSERT_INT_EQ(bh_result_format(NULL, buf, sizeof(buf)), 0);
  ASSERT_STR_EQ(buf, "");
  bh_result_free(NULL);
  return 0;
}

TEST(freeing_unclaimed_group_futures) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "free_unclaimed",
                   .workers = 1, .max_concurrency = 1};
  int64_t got[3];
  bh_result *r;
  int rc;

  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I I i]", &got[0], &got[1],
                                 &got[2], &rc), 0);
  /* Only the one neither freed nor waited for comes out, then nothing. */
  ASSERT_INT_EQ(got[0], 4);
  ASSERT_INT_EQ(got[1], 0);
  ASSERT_INT_EQ(rc, BH_EDONE);
  bh_result_free(r);
  return 0;
}

TEST(freeing_the_future_a_group_waits_for) {
  bh_run_opts o = {.queen_class = &queen,
                   .task_name = "free_while_next_waits", .workers = 1};
  int64_t took;
  bh_result *r;
  int rc;

  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i I]", &rc, &took), 0);
  ASSERT_INT_EQ(rc, BH_EDONE);
  ASSERT(took < 2000);
  bh_result_free(r);
  return 0;
}

TEST(calls_without_memory_return_enomem) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "no_memory",
                   .workers = 1};
  int go, del, wait, stats;
  bh_result *r;

  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i i i]", &go, &del, &wait,
                                 &stats), 0);
  bh_result_free(r);
  ASSERT_INT_EQ(go, BH_ENOMEM);
  ASSERT_INT_EQ(del, BH_ENOMEM);
  ASSERT_INT_EQ(wait, BH_ENOMEM);
  ASSERT_INT_EQ(stats, BH_ENOMEM);
  return 0;
}

TEST(arguments_too_large_are_emsgsize) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "too_large",
                   .workers = 1};
  int del, gdel;
  char why[128];
  bh_result *r;

  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i s]", &del, &gdel, why,
                                 sizeof(why)), 0);
  bh_result_free(r);
  ASSERT_INT_EQ(del, BH_EMSGSIZE);
  ASSERT_INT_EQ(gdel, BH_EMSGSIZE);
  ASSERT_STR_EQ(why, "bh_group_delegate: format \"[y#]\": a str or bin of "
                     "4 GiB or more");
  return 0;
}

TEST_MAIN(TEST_ENTRY(delegate_with_null_is_einval),
          TEST_ENTRY(delegate_with_an_empty_name_says_so),
          TEST_ENTRY(group_calls_with_null_are_einval),
          TEST_ENTRY(result_accessors_take_null),
          TEST_ENTRY(freeing_unclaimed_group_futures),
          TEST_ENTRY(freeing_the_future_a_group_waits_for),
          TEST_ENTRY(calls_without_memory_return_enomem),
          TEST_ENTRY(arguments_too_large_are_emsgsize))
