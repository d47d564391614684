/* bench_seq.c - one delegation at a time: the latency of bh_delegate of a
 * trivial task ("noop", no arguments, nil back) to one worker, timed call
 * by call inside the queen's task (warm-up calls excluded).
 *
 *   delegate_seq_p50_us, delegate_seq_p99_us
 *          queen and worker where the scheduler puts them (as users run)
 *   delegate_seq_same_cpu_p50_us   both pinned to one CPU
 *   delegate_seq_cross_cpu_p50_us  the queen on one CPU, the worker on
 *                                  another
 *
 * Usage: bench_seq [calls] [placements]  (env BENCH_SEQ_N, default 20000;
 * placements 1 runs the unpinned case only, default 3 runs all three). */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define WARMUP 500

static struct {
  double *us;
  size_t n;
  int worker_cpu; /* -1: leave the worker where it is */
} S;

static int
q_seq(bh_task *t) {
  bh_result *r;
  int rc;

  if (S.worker_cpu >= 0) {
    rc = bh_delegate(t, &r, "pin", "[i]", S.worker_cpu);
    bh_result_free(r);
    if (rc != 0)
      return bh_raise(t, "OSError", "could not pin the worker");
  }
  return bench_seq_loop(t, S.us, WARMUP, S.n);
}

static const bh_task_def queen_tasks[] = {{"seq", q_seq}, {NULL, NULL}};
static const bh_class queen = {
    .name = "SeqQueen", .tasks = queen_tasks, .worker_class = &bench_worker};

/* Runs the hive with the queen on queen_cpu and the worker on worker_cpu
 * (-1: unpinned); leaves the samples sorted in S.us. */
static void
run_seq(int queen_cpu, int worker_cpu) {
  if (bench_pin(queen_cpu) != 0) {
    fprintf(stderr, "bench_seq: cannot pin to CPU %d\n", queen_cpu);
    exit(2);
  }
  S.worker_cpu = worker_cpu;
  bh_result_free(bench_run(&queen, "seq", NULL, 1, 0));
  bench_pin(-1);
}

int
main(int argc, char **argv) {
  long placements = bench_arg(argc, argv, 2, NULL, 3);
  int c0 = bench_cpu(0), c1 = bench_cpu(1);

  S.n = (size_t)bench_arg(argc, argv, 1, "BENCH_SEQ_N", 20000);
  S.us = malloc(S.n * sizeof(*S.us));
  if (S.us == NULL || S.n == 0)
    return 2;
  run_seq(-1, -1);
  bench_out("delegate_seq_p50_us", bench_quantile(S.us, S.n, 0.5), "us");
  bench_out("delegate_seq_p99_us", bench_quantile(S.us, S.n, 0.99), "us");
  if (placements > 1) {
    run_seq(c0, c0);
    bench_out("delegate_seq_same_cpu_p50_us", bench_quantile(S.us, S.n, 0.5),
              "us");
    bench_out("delegate_seq_same_cpu_p99_us", bench_quantile(S.us, S.n, 0.99),
              "us");
  }
  if (placements > 1 && c1 >= 0) {
    run_seq(c0, c1);
    bench_out("delegate_seq_cross_cpu_p50_us", bench_quantile(S.us, S.n, 0.5),
              "us");
    bench_out("delegate_seq_cross_cpu_p99_us", bench_quantile(S.us, S.n, 0.99),
              "us");
  }
  free(S.us);
  return 0;
}
