/* bench_memory.c - what the hive holds in memory.
 *
 *   queen_bytes_per_inflight
 *          growth of the queen process's resident set (/proc/self/statm)
 *          while her task starts `count` delegations with
 *          bh_group_delegate() and none is answered, divided by count.
 *          The one worker (max_concurrency 1, so no prefetch) is kept
 *          busy first by a nap of an hour, so every delegation waits in
 *          the queen's own structures (futures, delegation records,
 *          backlog): the queen reads her worker's answers during a long
 *          run of delegations (src/hive/feed.c), and a noop answered then
 *          would hold its result instead. Then the group is freed (the
 *          delegations are forgotten, the nap cancelled) and the hive
 *          ends.
 *   queen_heap_bytes_per_inflight
 *          the same growth read from malloc's own count (mallinfo2's
 *          uordblks: bytes handed out and not freed), which does not
 *          depend on pages being touched.
 *   worker_idle_rss_kib, worker_idle_pss_kib, worker_idle_anon_kib
 *          an idle fork-started worker's VmRSS, Pss (its pages shared
 *          with the queen counted by share) and RssAnon, read from
 *          /proc/<pid>/ by the queen after the worker answered two tasks.
 *          Measured first, in a fresh process, before anything grows the
 *          queen's heap (a fork-started worker inherits her pages).
 *   worker_idle_rss_exec_kib, worker_idle_pss_exec_kib
 *          the same for an exec-started worker.
 *
 * Usage: bench_memory [count]  (env BENCH_MEMORY_N; default 1000000);
 * env BENCH_MEMORY_ONLY=queen measures the queen only, for heap profilers
 * (valgrind cannot follow an exec-started worker's /proc/self/exe). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static struct {
  size_t count;
  double rss_per, heap_per;
  long rss_kib, pss_kib, anon_kib;
} S;

static int
q_inflight(bh_task *t) {
  bh_group *g = bh_group_new(t);
  long rss0, rss1;
  size_t heap0, heap1, i;
  int rc = 0;

  if (g == NULL)
    return BH_ENOMEM;
  if (bh_group_delegate(g, NULL, NULL, "nap", "[I]", (int64_t)3600000) != 0)
    return BH_ERAISED;
  rss0 = bench_rss_bytes();
  heap0 = mallinfo2().uordblks;
  for (i = 0; i < S.count && rc == 0; i++)
    rc = bh_group_delegate(g, NULL, NULL, "noop", NULL);
  rss1 = bench_rss_bytes();
  heap1 = mallinfo2().uordblks;
  if (rc == 0 && bh_group_pending(g) != S.count + 1)
    rc = bh_raise(t, "RuntimeError", "%zu pending, not %zu",
                  bh_group_pending(g), S.count + 1);
  bh_group_free(g);
  if (rc != 0)
    return rc;
  S.rss_per = (double)(rss1 - rss0) / (double)S.count;
  S.heap_per = ((double)heap1 - (double)heap0) / (double)S.count;
  return 0;
}

/* Delegates `name`, raising if it fails. */
static int
call(bh_task *t, const char *name, int64_t *pid) {
  bh_result *r;
  int rc = bh_delegate(t, &r, name, NULL);

  if (rc != 0)
    rc = r != NULL ? bh_raise_result(t, r) : rc;
  else if (pid != NULL && bh_result_unpack(r, NULL, 0, "[I]", pid) != 0)
    rc = bh_raise(t, "TypeError", "pid: not [int]");
  bh_result_free(r);
  return rc;
}

static int
q_idle(bh_task *t) {
  int64_t pid = 0;
  int rc = call(t, "pid", &pid);

  if (rc == 0)
    rc = call(t, "noop", NULL); /* the first task is over by now */
  if (rc != 0)
    return rc;
  S.rss_kib = bench_status_kib((pid_t)pid, "VmRSS");
  S.anon_kib = bench_status_kib((pid_t)pid, "RssAnon");
  S.pss_kib = bench_pss_kib((pid_t)pid);
  return 0;
}

static const bh_task_def queen_tasks[] = {
    {"inflight", q_inflight}, {"idle", q_idle}, {NULL, NULL}};
static const bh_class queen = {
    .name = "MemoryQueen", .tasks = queen_tasks, .worker_class = &bench_worker};

static void
idle(bh_start start) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "idle", .start = start};

  bh_result_free(bench_run_opts(&o, 1));
}

/* The idle workers' figures, fork then exec start. */
static void
workers(void) {
  idle(BH_START_FORK);
  bench_out("worker_idle_rss_kib", (double)S.rss_kib, "KiB");
  bench_out("worker_idle_pss_kib", (double)S.pss_kib, "KiB");
  bench_out("worker_idle_anon_kib", (double)S.anon_kib, "KiB");
  idle(BH_START_EXEC);
  bench_out("worker_idle_rss_exec_kib", (double)S.rss_kib, "KiB");
  bench_out("worker_idle_pss_exec_kib", (double)S.pss_kib, "KiB");
}

int
main(int argc, char **argv) {
  static const bh_class *const classes[] = {&bench_worker, NULL};
  const char *only;

  if (bh_worker_main(argc, argv, classes) != 0)
    return 1;
  S.count = (size_t)bench_arg(argc, argv, 1, "BENCH_MEMORY_N", 1000000);
  if (S.count == 0)
    return 2;
  only = getenv("BENCH_MEMORY_ONLY");
  if (only != NULL && strcmp(only, "queen") != 0)
    return 2;
  if (only == NULL) /* first: a fork-started worker inherits her heap */
    workers();
  bh_result_free(bench_run(&queen, "inflight", NULL, 1, 1));
  bench_out("queen_bytes_per_inflight", S.rss_per, "bytes");
  bench_out("queen_heap_bytes_per_inflight", S.heap_per, "bytes");
  return 0;
}
