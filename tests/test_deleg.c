/* test_deleg.c - delegations in numbers (src/hive/deleg*.c): what one in
 * flight costs the queen, the table of a bee's delegations by task id as
 * it grows, and a worker's death with many delegations on it. */
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"
#include "runner.h"

/* ---- worker tasks ------------------------------------------------------ */

static int
w_echo(bh_task *t) {
  int64_t i;

  if (bh_task_unpack(t, "[I]", &i) != 0)
    return BH_ERAISED;
  return bh_return(t, "I", i);
}

/* Naps 20 ms, then kills its worker if it is the first to create path
 * args[0]; else returns args[1]. */
static int
w_nap_or_die(bh_task *t) {
  char path[256];
  int64_t i;
  int fd, rc;

  if (bh_task_unpack(t, "[s I]", path, sizeof(path), &i) != 0)
    return BH_ERAISED;
  if ((rc = bh_sleep(t, 20)) != 0)
    return rc;
  fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
  if (fd >= 0) {
    close(fd);
    kill(getpid(), SIGKILL);
  }
  return bh_return(t, "I", i);
}

static int
w_nap(bh_task *t) {
  int64_t ms;
  int rc;

  if (bh_task_unpack(t, "[I]", &ms) != 0)
    return BH_ERAISED;
  if ((rc = bh_sleep(t, ms)) != 0)
    return rc;
  return bh_return(t, "I", ms);
}

static const bh_task_def wtasks[] = {{"echo", w_echo},
                                     {"nap_or_die", w_nap_or_die},
                                     {"nap", w_nap},
                                     {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = wtasks};

/* ---- queen tasks ------------------------------------------------------- */

/* Waits for every future of g: each must have succeeded with its udata's
 * index. Returns how many did, or -1 at the first that did not. */
static int64_t
collect(bh_group *g) {
  int64_t n = 0, v;
  bh_future *f;

  while (bh_group_next(g, &f, -1) == 0) {
    const bh_result *r = bh_future_result(f);
    bool ok = bh_result_status(r) == BH_SUCCEEDED &&
              bh_result_unpack(r, NULL, 0, "I", &v) == 0 &&
              v == (int64_t)(intptr_t)bh_future_udata(f);

    bh_future_free(f);
    if (!ok)
      return -1;
    n++;
  }
  return n;
}

/* Delegates "echo" args[0] times, one after the other. */
static int
echo_n(bh_task *t, int64_t n) {
  bh_result *r;
  int64_t i;
  int rc;

  for (i = 0; i < n; i++) {
    rc = bh_delegate(t, &r, "echo", "[I]", i);
    bh_result_free(r);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* After 100 delegations answered, keeps the one slot busy with a nap of
 * 1 s, then starts args[0] delegations of "echo", which wait in the
 * backlog (the queen reads her worker's answers during a long run of
 * delegations, hive/feed.c, but there are none), and counts what the
 * queen's heap holds for them; then lets them run. Returns [blocks,
 * bytes, answered]. */
static int
q_inflight(bh_task *t) {
  bh_group *g = bh_group_new(t);
  size_t live0, heap0, blocks, heap;
  int64_t n, i;

  if (g == NULL || bh_task_unpack(t, "[I]", &n) != 0 || echo_n(t, 100) != 0 ||
      bh_group_delegate(g, NULL, (void *)(intptr_t)1000, "nap", "[I]",
                        (int64_t)1000) != 0)
    return BH_ERAISED;
  live0 = bh__alloc_live();
  heap0 = mallinfo2().uordblks;
  for (i = 0; i < n; i++)
    if (bh_group_delegate(g, NULL, (void *)(intptr_t)i, "echo", "[I]", i) !=
        0)
      return BH_ERAISED;
  blocks = bh__alloc_live() - live0;
  heap = mallinfo2().uordblks - heap0;
  i = collect(g);
  bh_group_free(g);
  return bh_return(t, "[I I I]", (int64_t)blocks, (int64_t)heap, i);
}

/* Starts args[1] delegations of "nap_or_die" (marker args[0]) at once;
 * returns [answered, retried]. */
static int
q_death(bh_task *t) {
  bh_group *g = bh_group_new(t);
  char path[256];
  bh_stats st;
  int64_t n, i;

  if (g == NULL ||
      bh_task_unpack(t, "[s I]", path, sizeof(path), &n) != 0)
    return BH_ERAISED;
  for (i = 0; i < n; i++)
    if (bh_group_delegate(g, NULL, (void *)(intptr_t)i, "nap_or_die", "[s I]",
                          path, i) != 0)
      return BH_ERAISED;
  i = collect(g);
  bh_group_free(g);
  bh_bee_stats(bh_task_bee(t), &st);
  return bh_return(t, "[I I]", i, (int64_t)st.retried);
}

/* Delegation 0 naps 500 ms; 63 quick ones follow, then delegation 64,
 * a nap of 1 s, which shares its bucket and lies before it there when its
 * answer comes. Returns [succeeded, deaths] once both are over; raises if
 * delegation 0 was over before 64 began (nothing then tested). */
static int
q_chain(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f0, *f1;
  bool early;
  bh_stats st;

  if (g == NULL ||
      bh_group_delegate(g, &f0, NULL, "nap", "[I]", (int64_t)500) != 0 ||
      echo_n(t, 63) != 0)
    return BH_ERAISED;
  early = bh_future_done(f0);
  if (early ||
      bh_group_delegate(g, &f1, NULL, "nap", "[I]", (int64_t)1000) != 0 ||
      bh_future_wait(f0, -1) != 0 || bh_future_wait(f1, -1) != 0)
    return bh_raise(t, "RuntimeError", early ? "delegation 0 too early" :
                    "a nap failed");
  bh_future_free(f0);
  bh_future_free(f1);
  bh_group_free(g);
  bh_bee_stats(bh_task_bee(t), &st);
  return bh_return(t, "[I I]", (int64_t)st.succeeded, (int64_t)st.deaths);
}

static int
set_flag(bh_task *t, void *arg) {
  *(int *)arg = 1;
  return bh_return(t, "I", (int64_t)-1);
}

/* Delegates "echo" until the first one's answer came, without waiting
 * (at most args[0] times); a local fiber started first must not have run
 * meanwhile. Returns [delegations made, whether the fiber ran then]. */
static int
q_fed(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *first;
  int64_t cap, i = 1;
  int ran = 0, early;

  if (g == NULL || bh_task_unpack(t, "[I]", &cap) != 0 ||
      bh_group_go(g, NULL, (void *)(intptr_t)-1, set_flag, &ran) != 0 ||
      bh_group_delegate(g, &first, (void *)(intptr_t)0, "echo", "[I]",
                        (int64_t)0) != 0)
    return BH_ERAISED;
  while (!bh_future_done(first) && i < cap) {
    if (bh_group_delegate(g, NULL, (void *)(intptr_t)i, "echo", "[I]", i) !=
        0)
      return BH_ERAISED;
    i++;
  }
  early = ran;
  if (collect(g) != i + 1)
    return bh_raise(t, "RuntimeError", "a delegation failed");
  bh_group_free(g);
  return bh_return(t, "[I I]", i, (int64_t)early);
}

static const bh_task_def qtasks[] = {{"inflight", q_inflight},
                                     {"fed", q_fed},
                                     {"death", q_death},
                                     {"chain", q_chain},
                                     {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = qtasks,
                               .worker_class = &worker};

/* ---- tests ------------------------------------------------------------- */

/* 2,000 delegations in the backlog of a worker with one slot: each holds
 * its future, its record (the name inline) and its call (one block),
 * about 250 bytes of heap with glibc, where it was five blocks and about
 * 630 bytes; the target is 400 (docs/PERFORMANCE.md,
 * queen_bytes_per_inflight). Then every
 * answer finds its delegation in a table that grew to 4,096 buckets while
 * its ids ran from 100, not 0. */
TEST(a_delegation_in_flight_is_three_blocks) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "inflight",
                   .workers = 1, .max_workers = 1, .max_concurrency = 1};
  int64_t n = 2000, blocks, heap, answered;
  bh_result *r;

  o.task_args = bh_value_pack(NULL, "[I]", n);
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I I]", &blocks, &heap,
                                 &answered),
                0);
  fprintf(stderr, "%lld blocks, %lld bytes for %lld delegations\n",
          (long long)blocks, (long long)heap, (long long)n);
  ASSERT_INT_EQ(answered, n + 1); /* and the nap */
  /* A few more: the table; one less when the nap's accept came during
   * the run (its call is freed then). */
  ASSERT(blocks >= 3 * n - 1 && blocks <= 3 * n + 8);
#ifndef __SANITIZE_ADDRESS__ /* its allocator is not malloc's */
  ASSERT(heap / n <= 400);
#endif
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  return 0;
}

/* 150 delegations run at once on one worker, which dies: the death goes
 * through every record of the table (grown past its first 64 buckets),
 * each goes back to the backlog once, and the next worker answers every
 * one with its own value. */
TEST(a_death_requeues_every_delegation_it_ran) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "death",
                   .workers = 1, .max_workers = 1, .max_concurrency = 200,
                   .retries = 1};
  int64_t n = 150, answered, retried;
  char path[128];
  bh_result *r;

  snprintf(path, sizeof(path), "/tmp/bh_deleg_%d_%lld", (int)getpid(),
           (long long)bh_now());
  o.task_args = bh_value_pack(NULL, "[s I]", path, n);
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &answered, &retried),
                0);
  ASSERT_INT_EQ(answered, n);
  ASSERT_INT_EQ(retried, n);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  unlink(path);
  return 0;
}

/* Delegation 0's answer finds its record behind delegation 64's in their
 * bucket (no protocol error kills the worker). */
TEST(an_answer_finds_its_record_behind_a_newer_one) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "chain",
                   .workers = 1, .max_workers = 1, .max_concurrency = 4};
  int64_t succeeded, deaths;
  bh_result *r;

  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &succeeded, &deaths),
                0);
  ASSERT_INT_EQ(deaths, 0);
  ASSERT_INT_EQ(succeeded, 65);
  bh_result_free(r);
  return 0;
}

/* A task that delegates for long does not starve its workers: the
 * answers of the first delegations are read and handled while it goes on
 * delegating (hive/feed.c), and no other fiber of the queen runs in
 * between. Before feed.c no answer could come before the task waited:
 * the run went to the cap. */
TEST(a_long_run_of_delegations_is_answered_as_it_goes) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "fed",
                   .workers = 1, .max_workers = 1};
  int64_t cap = 300000, made, ran;
  bh_result *r;

  o.task_args = bh_value_pack(NULL, "[I]", cap);
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &made, &ran), 0);
  fprintf(stderr, "the first answer came after %lld delegations\n",
          (long long)made);
  ASSERT(made < cap);
  ASSERT_INT_EQ(ran, 0);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  return 0;
}

TEST_MAIN(TEST_ENTRY(a_delegation_in_flight_is_three_blocks),
          TEST_ENTRY_T(a_long_run_of_delegations_is_answered_as_it_goes, 60),
          TEST_ENTRY_T(a_death_requeues_every_delegation_it_ran, 20),
          TEST_ENTRY(an_answer_finds_its_record_behind_a_newer_one))
