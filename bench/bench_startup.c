/* bench_startup.c - what a whole hive costs: bh_run() of a queen task that
 * delegates one trivial task ("noop") to her one worker, from the call
 * (before the worker is spawned) to its return (the worker has died and
 * been reaped), median over `runs` runs after 3 warm-up runs.
 *
 *   startup_ms        workers started by fork (the default)
 *   startup_exec_ms   workers started by fork + exec of this program
 *   startup_python_ms a worker program in Python (examples/worker.py, a
 *                     bh_program run by Debian's python3): its
 *                     interpreter's start and imports included
 *
 * Usage: bench_startup [runs]  (env BENCH_STARTUP_N; default 50). */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define WARMUP 3

static int
q_one(bh_task *t) {
  bh_result *r;
  int rc = bh_delegate(t, &r, "noop", NULL);

  if (rc != 0)
    rc = r != NULL ? bh_raise_result(t, r) : rc;
  bh_result_free(r);
  return rc;
}

static const bh_task_def queen_tasks[] = {{"one", q_one}, {NULL, NULL}};
static const bh_class queen = {.name = "StartupQueen",
                               .tasks = queen_tasks,
                               .worker_class = &bench_worker};

/* The same hive with one Python worker, whose trivial task is square. */
static int
q_one_py(bh_task *t) {
  bh_result *r;
  int rc = bh_delegate(t, &r, "square", "[i]", 1);

  if (rc != 0)
    rc = r != NULL ? bh_raise_result(t, r) : rc;
  bh_result_free(r);
  return rc;
}

static const char *const py_argv[] = {
    "python3", BH_BENCH_ROOT_DIR "/examples/worker.py", NULL};
static const bh_program python = {.path = "/usr/bin/python3",
                                  .argv = py_argv};
static const bh_class py_worker = {.name = "Demo", .program = &python};
static const bh_task_def py_queen_tasks[] = {{"one", q_one_py},
                                             {NULL, NULL}};
static const bh_class py_queen = {.name = "StartupQueen",
                                  .tasks = py_queen_tasks,
                                  .worker_class = &py_worker};

static double
median_ms(const bh_class *q, bh_start start, size_t runs) {
  double *ms = malloc(runs * sizeof(*ms)), med;
  size_t i;

  if (ms == NULL)
    exit(2);
  for (i = 0; i < WARMUP + runs; i++) {
    bh_run_opts o = {.queen_class = q, .task_name = "one", .start = start};
    int64_t t0 = bench_now_ns();

    bh_result_free(bench_run_opts(&o, 1));
    if (i >= WARMUP)
      ms[i - WARMUP] = (double)(bench_now_ns() - t0) / 1e6;
  }
  med = bench_quantile(ms, runs, 0.5);
  free(ms);
  return med;
}

int
main(int argc, char **argv) {
  static const bh_class *const classes[] = {&bench_worker, NULL};
  size_t runs;

  if (bh_worker_main(argc, argv, classes) != 0)
    return 1;
  runs = (size_t)bench_arg(argc, argv, 1, "BENCH_STARTUP_N", 50);
  if (runs == 0)
    return 2;
  bench_out("startup_ms", median_ms(&queen, BH_START_FORK, runs), "ms");
  bench_out("startup_exec_ms", median_ms(&queen, BH_START_EXEC, runs), "ms");
  bench_out("startup_python_ms", median_ms(&py_queen, BH_START_FORK, runs),
            "ms");
  return 0;
}
