/* bench_balance.c - spreading work that waits: the queen's task delegates
 * `count` tasks that each sleep 1 ms ("nap", bh_sleep) all at once, to two
 * workers with max_concurrency 64, and counts who ran each one
 * (bh_result_child_id).
 *
 *   balance_min_share        the smaller worker's share of the tasks
 *   balance_makespan_ms      first delegation to last answer
 *   balance_makespan_ratio   makespan / ideal, ideal = count * 1 ms /
 *                            (workers * max_concurrency)
 *   balance_nap_mean_ms      how long a nap really slept, on average
 *   balance_makespan_ratio_slept  makespan / (the naps' total sleep /
 *                            (workers * max_concurrency))
 *
 * Usage: bench_balance [count]  (env BENCH_BALANCE_N; default 20000). */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define WORKERS 2
#define MAX_CONC 64
#define NAP_MS 1

static struct {
  size_t count;
  size_t per_child[WORKERS];
  double ms, nap_us; /* makespan; total time the naps really slept */
} S;

/* Counts a completed future by the child that ran it. */
static int
tally(bh_task *t, bh_future *f) {
  const bh_result *r = bh_future_result(f);
  int64_t id = bh_result_child_id(r), us;

  if (bh_result_status(r) != BH_SUCCEEDED)
    return bh_raise_result(t, r);
  if (id < 0 || id >= WORKERS)
    return bh_raise(t, "RuntimeError", "answer from child %lld", (long long)id);
  if (bh_result_unpack(r, NULL, 0, "I", &us) != 0)
    return bh_raise(t, "TypeError", "nap returned no time");
  S.nap_us += (double)us;
  S.per_child[id]++;
  return 0;
}

static int
q_balance(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int64_t t0 = bench_now_ns();
  size_t i;
  int rc = 0;

  if (g == NULL)
    return BH_ENOMEM;
  for (i = 0; i < S.count && rc == 0; i++)
    rc = bh_group_delegate(g, NULL, NULL, "nap", "[i]", NAP_MS);
  while (rc == 0 && bh_group_next(g, &f, -1) == 0) {
    rc = tally(t, f);
    bh_future_free(f);
  }
  S.ms = (double)(bench_now_ns() - t0) / 1e6;
  bh_group_free(g);
  return rc;
}

static const bh_task_def queen_tasks[] = {{"balance", q_balance}, {NULL, NULL}};
static const bh_class queen = {.name = "BalanceQueen",
                               .tasks = queen_tasks,
                               .worker_class = &bench_worker};

int
main(int argc, char **argv) {
  double ideal, lo;
  size_t total;

  S.count = (size_t)bench_arg(argc, argv, 1, "BENCH_BALANCE_N", 20000);
  if (S.count == 0)
    return 2;
  {
    /* BENCH_BALANCE_PREFETCH: tasks each worker may hold queued beyond
     * max_concurrency (bh_run_opts.prefetch); 0, the default, is the
     * reference's accept rule and what the target is measured with. */
    const char *pf = getenv("BENCH_BALANCE_PREFETCH");
    bh_run_opts o = {.queen_class = &queen, .task_name = "balance",
                     .max_concurrency = MAX_CONC,
                     .prefetch = pf ? atoi(pf) : 0};

    bh_result_free(bench_run_opts(&o, WORKERS));
  }
  total = S.per_child[0] + S.per_child[1];
  if (total != S.count) {
    fprintf(stderr, "bench_balance: %zu of %zu answers\n", total, S.count);
    return 2;
  }
  lo = (double)(S.per_child[0] < S.per_child[1] ? S.per_child[0]
                                                : S.per_child[1]);
  ideal = (double)S.count * NAP_MS / (WORKERS * MAX_CONC);
  bench_out("balance_min_share", lo / (double)total, "share");
  bench_out("balance_makespan_ms", S.ms, "ms");
  bench_out("balance_makespan_ratio", S.ms / ideal, "ratio");
  /* The same against what the naps really took: timers have a resolution
   * of 1 ms, so a 1 ms nap sleeps between 1 and 2 ms. */
  bench_out("balance_nap_mean_ms", S.nap_us / 1e3 / (double)total, "ms");
  bench_out("balance_makespan_ratio_slept",
            S.ms / (S.nap_us / 1e3 / (WORKERS * MAX_CONC)), "ratio");
  return 0;
}
