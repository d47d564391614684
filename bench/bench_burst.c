/* bench_burst.c - many delegations in flight: the queen's task keeps
 * `window` delegations in flight through one group (bh_group_delegate,
 * and bh_group_next for each one that completes) until `count` have
 * completed. Timed inside the queen's task, from the first delegation to
 * the last answer; every answer is checked.
 *
 *   burst_tasks_per_s_w1, burst_tasks_per_s_w2   "noop", one and two
 *          workers, each with the default max_concurrency (1,024)
 *   burst_queen_cpu_w1, burst_queen_cpu_w2   the queen process's CPU time
 *          (user + system) over the wall time: near 1.0, she is the limit
 *   burst_workers_cpu_w1, burst_workers_cpu_w2   the same for the workers
 *          together (over their whole life, which is mostly the burst):
 *          the two shares add up to about 1.0 when all share one CPU
 *   burst_unlimited_tasks_per_s_w1, _w2   the same bursts with
 *          max_concurrency -1 (no limit): every task in flight runs at
 *          once in its worker
 *   burst_unlimited_vs_1024_w1, _w2   the unlimited rate over the 1,024 one
 *   burst_nap_tasks_per_s_w1   "nap" of 1 ms instead (count / 5), one
 *          worker at 1,024: waiting tasks that end and start in waves
 *   burst_nap_unlimited_tasks_per_s_w1   the same with no limit: 4,096
 *          tasks waiting at once in the worker
 *   burst_nap_unlimited_vs_1024_w1   their ratio
 *
 * Usage: bench_burst [count] [window] [workers...]  (env BENCH_BURST_N;
 * defaults 1000000, 4096). Given workers, only the noop bursts at 1,024
 * run, for each; BENCH_BURST_MAXC then sets every worker's
 * max_concurrency (-1: no limit; 0, the default: 1,024). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "bench.h"

static struct {
  size_t count, window;
  int64_t nap_ms;   /* 0: "noop", else "nap" of that many ms */
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

static int
start_one(bh_group *g) {
  if (S.nap_ms > 0)
    return bh_group_delegate(g, NULL, NULL, "nap", "[I]", S.nap_ms);
  return bh_group_delegate(g, NULL, NULL, "noop", NULL);
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
      rc = start_one(g);
      started++;
    } else {
      rc = bench_collect(t, g);
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

/* BENCH_BURST_MAXC: -1, 0 or a positive max_concurrency. */
static int
max_conc(void) {
  const char *s = getenv("BENCH_BURST_MAXC");
  char *end;
  long v;

  if (s == NULL || *s == '\0')
    return 0;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < -1 || v > INT_MAX) {
    fprintf(stderr, "bench_burst: BENCH_BURST_MAXC \"%s\" is not -1, 0 "
                    "or a positive max_concurrency\n", s);
    exit(2);
  }
  return (int)v;
}

/* One burst; prints its figures under `name` ("burst", "burst_nap"...)
 * and returns its tasks/s. `cpu` adds the CPU shares. */
static double
burst(const char *name, int workers, int mc, int cpu) {
  double kids = cpu_secs(RUSAGE_CHILDREN), rate;
  char key[96];

  bh_result_free(bench_run(&queen, "burst", NULL, workers, mc));
  kids = cpu_secs(RUSAGE_CHILDREN) - kids;
  rate = (double)S.count / S.secs;
  snprintf(key, sizeof(key), "%s_tasks_per_s_w%d", name, workers);
  bench_out(key, rate, "tasks/s");
  if (cpu) {
    snprintf(key, sizeof(key), "%s_queen_cpu_w%d", name, workers);
    bench_out(key, S.cpu / S.secs, "share");
    snprintf(key, sizeof(key), "%s_workers_cpu_w%d", name, workers);
    bench_out(key, kids / S.secs, "share");
  }
  return rate;
}

/* The unlimited burst after the 1,024 one, and their ratio. */
static void
versus(const char *unlimited, int workers, double at_1024) {
  char key[96];

  snprintf(key, sizeof(key), "%s_vs_1024_w%d", unlimited, workers);
  bench_out(key, burst(unlimited, workers, -1, 0) / at_1024, "ratio");
}

int
main(int argc, char **argv) {
  size_t count;
  int i;

  count = (size_t)bench_arg(argc, argv, 1, "BENCH_BURST_N", 1000000);
  S.count = count;
  S.window = (size_t)bench_arg(argc, argv, 2, NULL, 4096);
  if (S.count == 0 || S.window == 0)
    return 2;
  if (argc > 3) { /* the workers given, one burst each */
    int mc = max_conc();

    for (i = 3; i < argc; i++)
      burst("burst", (int)bench_arg(argc, argv, i, NULL, 1), mc, 1);
    return 0;
  }
  for (i = 1; i <= 2; i++)
    versus("burst_unlimited", i, burst("burst", i, 0, 1));
  S.nap_ms = 1;
  S.count = count / 5 > 0 ? count / 5 : 1;
  versus("burst_nap_unlimited", 1, burst("burst_nap", 1, 0, 0));
  return 0;
}
