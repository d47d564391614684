/* test_timer.c - deadlines finer than a millisecond (src/runtime/timer.c): entries
 * fire in due order and never early, stopped ones never, a closed set
 * drops what it holds, only queued entries keep the loop running; and
 * bh_sleep() built on them never returns early while other work wakes the
 * loop. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "base/base.h"
#include "runner.h"
#include "runtime/timer.h"

#define N 500

typedef struct probe {
  bh__tentry e;
  uint64_t fired; /* uv_hrtime() when it fired; 0: never */
  int order;      /* its place among the fired, from 1 */
} probe;

static int nfired;

static void
on_fire(bh__tentry *e) {
  probe *p = (probe *)e;

  p->fired = uv_hrtime();
  p->order = ++nfired;
}

/* A deterministic spread of dues around now: some already past, the rest
 * within 5 ms, with ties. */
static uint64_t
due_of(uint64_t now, int i) {
  uint64_t r = (uint64_t)i * 2654435761u % 6000;

  return r < 500 ? now - r * 1000 : now + (r - 500) / 10 * 10000;
}

/* A loop with a timer set holding the N probes, due around *now. */
static int
start_all(probe *p, uv_loop_t *loop, bh__timers **tm, uint64_t *now) {
  int i;

  memset(p, 0, N * sizeof(*p));
  nfired = 0;
  ASSERT_INT_EQ(uv_loop_init(loop), 0);
  ASSERT_INT_EQ(bh__timers_open(tm, loop), 0);
  *now = uv_hrtime();
  for (i = 0; i < N; i++) {
    p[i].e.cb = on_fire;
    ASSERT_INT_EQ(bh__timer_start(*tm, &p[i].e, due_of(*now, i)), 0);
  }
  return 0;
}

/* Closes the set and the loop. */
static int
close_all(uv_loop_t *loop, bh__timers *tm) {
  bh__timers_close(tm);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}

TEST(entries_fire_in_due_order_and_never_early) {
  size_t live0 = bh__alloc_live();
  static probe p[N];
  bh__timers *tm;
  uv_loop_t loop;
  uint64_t now;
  int i, j;

  ASSERT_INT_EQ(start_all(p, &loop, &tm, &now), 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once nothing is queued */
  ASSERT_INT_EQ(nfired, N);
  for (i = 0; i < N; i++) {
    ASSERT(p[i].fired >= p[i].e.due);
    ASSERT_INT_EQ(p[i].e.idx, 0);
    for (j = 0; j < N; j++)
      if (p[j].order == p[i].order + 1)
        ASSERT(p[j].e.due >= p[i].e.due);
  }
  ASSERT_INT_EQ(close_all(&loop, tm), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(stopped_entries_never_fire_and_restarts_move_them) {
  static probe p[N];
  bh__timers *tm;
  uv_loop_t loop;
  uint64_t now;
  int i;

  ASSERT_INT_EQ(start_all(p, &loop, &tm, &now), 0);
  for (i = 0; i < N; i += 3)
    bh__timer_stop(tm, &p[i].e);
  bh__timer_stop(tm, &p[0].e); /* twice is fine */
  for (i = 1; i < N; i += 3) /* later than every other */
    ASSERT_INT_EQ(bh__timer_start(tm, &p[i].e, now + 8000000 + (uint64_t)i),
                  0);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (i = 0; i < N; i++) {
    if (i % 3 == 0) {
      ASSERT_INT_EQ(p[i].fired, 0);
      continue;
    }
    ASSERT(p[i].fired >= p[i].e.due);
    if (i % 3 == 1) /* the moved ones came after all the others */
      ASSERT(p[i].order > N / 3);
  }
  ASSERT_INT_EQ(nfired, N - (N + 2) / 3);
  ASSERT_INT_EQ(close_all(&loop, tm), 0);
  return 0;
}

/* An empty set does not keep the loop running; a closed one drops its
 * entries without calling them and frees everything. */
TEST(empty_set_lets_the_loop_end_and_close_drops_entries) {
  size_t live0 = bh__alloc_live();
  probe p[3];
  bh__timers *tm;
  uv_loop_t loop;
  int i;

  memset(p, 0, sizeof(p));
  nfired = 0;
  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT_INT_EQ(bh__timers_open(&tm, &loop), 0);
  ASSERT_INT_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0); /* nothing alive */
  for (i = 0; i < 3; i++) {
    p[i].e.cb = on_fire;
    ASSERT_INT_EQ(bh__timer_start(tm, &p[i].e,
                                  uv_hrtime() + (uint64_t)60 * 1000000000u),
                  0);
  }
  ASSERT(uv_run(&loop, UV_RUN_NOWAIT) != 0); /* they hold it */
  bh__timers_close(tm);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(nfired, 0);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ------------------------------------------------------------------------
 * bh_sleep(): four fibers sleep 1 ms 50 times each while a fifth keeps
 * waking the loop (a pipe it writes and waits on); no sleep is shorter
 * than asked. With libuv's millisecond timers some came back after a few
 * hundred microseconds. */

static int short_sleeps, sleeps;

static int
napper(bh_task *t, void *arg) {
  int i;

  (void)arg;
  for (i = 0; i < 50; i++) {
    uint64_t t0 = uv_hrtime();
    int rc = bh_sleep(t, 1);

    if (rc != 0)
      return rc;
    sleeps++;
    short_sleeps += uv_hrtime() - t0 < 1000000;
  }
  return 0;
}

/* Wakes the loop every few microseconds until the nappers are done. */
static int
waker(bh_task *t, void *arg) {
  int *p = arg;
  char c = 'x';

  while (sleeps < 200) {
    if (write(p[1], &c, 1) != 1 ||
        bh_wait_fd(t, p[0], BH_READABLE, -1) < 0 || read(p[0], &c, 1) != 1)
      return bh_raise(t, "OSError", "pipe");
  }
  return 0;
}

static int
q_sleeps(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int p[2], i, rc = 0;

  if (g == NULL || pipe(p) != 0)
    return BH_ENOMEM;
  for (i = 0; i < 4; i++)
    bh_group_go(g, NULL, NULL, napper, NULL);
  bh_group_go(g, NULL, NULL, waker, p);
  while (bh_group_next(g, &f, -1) == 0) {
    if (rc == 0 && bh_result_status(bh_future_result(f)) != BH_SUCCEEDED)
      rc = bh_raise_result(t, bh_future_result(f));
    bh_future_free(f);
  }
  bh_group_free(g);
  close(p[0]);
  close(p[1]);
  return rc != 0 ? rc : bh_return(t, "[I I]", (int64_t)sleeps,
                                  (int64_t)short_sleeps);
}

static const bh_task_def worker_tasks[] = {{NULL, NULL}};
static const bh_class worker = {.name = "Idle", .tasks = worker_tasks};
static const bh_task_def queen_tasks[] = {{"sleeps", q_sleeps},
                                          {NULL, NULL}};
static const bh_class queen = {.name = "SleepQueen",
                               .tasks = queen_tasks,
                               .worker_class = &worker};

TEST(sleep_never_returns_early_while_the_loop_is_busy) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "sleeps",
                   .min_workers = 1, .max_workers = 1};
  bh_result *r = NULL;
  int64_t n = 0, early = -1;

  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &n, &early), 0);
  ASSERT_INT_EQ(n, 200);
  ASSERT_INT_EQ(early, 0);
  bh_result_free(r);
  return 0;
}

TEST_MAIN(TEST_ENTRY(entries_fire_in_due_order_and_never_early),
          TEST_ENTRY(stopped_entries_never_fire_and_restarts_move_them),
          TEST_ENTRY(empty_set_lets_the_loop_end_and_close_drops_entries),
          TEST_ENTRY(sleep_never_returns_early_while_the_loop_is_busy))
