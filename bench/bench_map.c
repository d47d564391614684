/* bench_map.c - bh_map_new() over many trivial items, as ppe.py measures
 * ProcessPoolExecutor.map(noop, range(n), chunksize=100): the queen's task
 * maps "echo" (a worker task returning its argument) over the items
 * 0..count-1, in chunks, in input order, on two workers, and sums what
 * comes back (checked). Timed inside the queen's task, from bh_map_new()
 * (which packs the items) to the last item handed back.
 *
 *   map_chunk100_tasks_per_s   items per second, chunk 100 (the default)
 *   map_chunk<k>_tasks_per_s   the same for each chunk size k given
 *
 * Usage: bench_map [count] [chunk...]  (env BENCH_MAP_N; defaults 200000
 * and 100). */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

static struct {
  size_t count;
  int chunk;
  double secs;
} S;

static int
q_map(bh_task *t) {
  int64_t *xs = malloc(S.count * sizeof(*xs)), sum = 0, x, t0;
  bh_map_opts o = {.chunk = S.chunk};
  bh_map_item it;
  bh_map *m;
  size_t i;
  int rc;

  if (xs == NULL)
    return BH_ENOMEM;
  for (i = 0; i < S.count; i++)
    xs[i] = (int64_t)i;
  t0 = bench_now_ns();
  rc = bh_map_new(t, &m, "echo", &o, "#I", xs, S.count);
  free(xs);
  if (rc != 0)
    return rc;
  while ((rc = bh_map_next(m, &it, -1)) == 0) {
    if (it.status != BH_SUCCEEDED) {
      rc = bh_raise_result(t, it.result);
      break;
    }
    if ((rc = bh_unpack(it.value, NULL, 0, "I", &x)) != 0)
      break;
    sum += x;
  }
  S.secs = (double)(bench_now_ns() - t0) / 1e9;
  bh_map_free(m);
  if (rc != BH_EDONE)
    return rc;
  if (sum != (int64_t)(S.count * (S.count - 1) / 2))
    return bh_raise(t, "ValueError", "wrong sum %lld", (long long)sum);
  return 0;
}

static const bh_task_def queen_tasks[] = {{"map", q_map}, {NULL, NULL}};
static const bh_class queen = {
    .name = "MapQueen", .tasks = queen_tasks, .worker_class = &bench_worker};

int
main(int argc, char **argv) {
  long chunks[8] = {100};
  int n = 1, i;
  char key[64];

  S.count = (size_t)bench_arg(argc, argv, 1, "BENCH_MAP_N", 200000);
  if (argc > 2)
    for (n = 0; n < 8 && 2 + n < argc; n++)
      chunks[n] = bench_arg(argc, argv, 2 + n, NULL, 100);
  if (S.count == 0)
    return 2;
  for (i = 0; i < n; i++) {
    S.chunk = (int)chunks[i];
    bh_result_free(bench_run(&queen, "map", NULL, 2, 0));
    snprintf(key, sizeof(key), "map_chunk%ld_tasks_per_s", chunks[i]);
    bench_out(key, (double)S.count / S.secs, "tasks/s");
  }
  return 0;
}
