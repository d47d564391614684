/* bench_burst.c - many trivial delegations in flight: the queen's task
 * keeps `window` delegations of "noop" in flight through one group
 * (bh_group_delegate, and bh_group_next for each one that completes) until
 * `count` have completed. Timed inside the queen's task, from the first
 * delegation to the last answer; every answer is checked.
 *
 *   burst_tasks_per_s_w1, burst_tasks_per_s_w2   one and two workers
 *   burst_queen_cpu_w1, burst_queen_cpu_w2   the queen process's CPU time
 *          (user + system) over the wall time: near 1.0, she is the limit
 *   burst_workers_cpu_w1, burst_workers_cpu_w2   the same for the workers
 *          together (over their whole life, which is mostly the burst):
 *          the two shares add up to about 1.0 when all share one CPU
 *
 * Usage: bench_burst [count] [window] [workers...]  (env BENCH_BURST_N;
 * defaults 1000000, 4096, and workers 1 then 2). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "bench.h"

static struct {
  size_t count, window;
  double secs, cpu; /* wall time; the queen process's CPU time */
} S;

/* CPU time (user + system) of this process, or of its reaped children. */
static double
cpu_secs(int who) {
  struct rusage ru;

  getrusage(who, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Waits for one answer and checks it. Returns 0 or the raise. */
static int
collect(bh_task *t, bh_group *g) {
  bh_future *f;
  int rc = bh_group_next(g, &f, -1);

  if (rc != 0)
    return bh_raise(t, "RuntimeError", "bh_group_next: %s", bh_strerror(rc));
  if (bh_result_status(bh_future_result(f)) != BH_SUCCEEDED)
    rc = bh_raise_result(t, bh_future_result(f));
  bh_future_free(f);
  return rc;
}

static int
q_burst(bh_task *t) {
  bh_group *g = bh_group_new(t);
  size_t started = 0, done = 0;
  int64_t t0 = bench_now_ns();
  double c0 = cpu_secs(RUSAGE_SELF);
  int rc = 0;

  if (g == NULL)
    return BH_ENOMEM;
  while (rc == 0 && done < S.count) {
    if (started < S.count && bh_group_pending(g) < S.window) {
      rc = bh_group_delegate(g, NULL, NULL, "noop", NULL);
      started++;
    } else {
      rc = collect(t, g);
      done++;
    }
  }
  S.secs = (double)(bench_now_ns() - t0) / 1e9;
  S.cpu = cpu_secs(RUSAGE_SELF) - c0;
  bh_group_free(g);
  return rc;
}

static const bh_task_def queen_tasks[] = {{"burst", q_burst}, {NULL, NULL}};
static const bh_class queen = {
    .name = "BurstQueen", .tasks = queen_tasks, .worker_class = &bench_worker};

int
main(int argc, char **argv) {
  long workers[8] = {1, 2};
  int n = 2, i;
  char key[64];

  S.count = (size_t)bench_arg(argc, argv, 1, "BENCH_BURST_N", 1000000);
  S.window = (size_t)bench_arg(argc, argv, 2, NULL, 4096);
  if (argc > 3)
    for (n = 0; n < 8 && 3 + n < argc; n++)
      workers[n] = bench_arg(argc, argv, 3 + n, NULL, 1);
  if (S.count == 0 || S.window == 0)
    return 2;
  for (i = 0; i < n; i++) {
    double kids = cpu_secs(RUSAGE_CHILDREN);

    bh_result_free(bench_run(&queen, "burst", NULL, (int)workers[i], 0));
    kids = cpu_secs(RUSAGE_CHILDREN) - kids;
    snprintf(key, sizeof(key), "burst_tasks_per_s_w%ld", workers[i]);
    bench_out(key, (double)S.count / S.secs, "tasks/s");
    snprintf(key, sizeof(key), "burst_queen_cpu_w%ld", workers[i]);
    bench_out(key, S.cpu / S.secs, "share");
    snprintf(key, sizeof(key), "burst_workers_cpu_w%ld", workers[i]);
    bench_out(key, kids / S.secs, "share");
  }
  return 0;
}
