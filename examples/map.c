/* map.c - a map over many items in chunks, as concurrent.futures'
 * Executor.map(square, xs, chunksize=100): the queen maps the workers'
 * one-item task "square" over 1..n, 100 items per task message, and sums
 * the squares in input order.
 *
 *   ./build/examples/map [n] [chunk]    (defaults 1000000 and 100) */
#include <beehive.h>
#include <stdio.h>
#include <stdlib.h>

static int square(bh_task *t) { /* a worker's task: one item */
  int64_t x;

  if (bh_task_unpack(t, "[I]", &x) != 0)
    return BH_ERAISED; /* TypeError naming the bad argument */
  return bh_return(t, "I", x * x);
}

static int sum_squares(bh_task *t) { /* the queen's task */
  bh_map_opts o = {0};
  bh_map_item it;
  bh_map *m;
  int64_t n, *xs, i, sum = 0, sq;
  int rc;

  if (bh_task_unpack(t, "[I i]", &n, &o.chunk) != 0)
    return BH_ERAISED;
  if (n < 0 || (xs = malloc((size_t)n * sizeof(*xs) + 1)) == NULL)
    return bh_raise(t, "ValueError", "cannot hold %lld items", (long long)n);
  for (i = 0; i < n; i++)
    xs[i] = i + 1;
  rc = bh_map_new(t, &m, "square", &o, "#I", xs, (size_t)n);
  free(xs); /* the map packed its own copy */
  if (rc != 0)
    return rc; /* raises ValueError: "bh_map_new: chunk -1 is out of..." */
  while ((rc = bh_map_next(m, &it, -1)) == 0) { /* in input order */
    if (it.status != BH_SUCCEEDED) {            /* this item failed */
      rc = bh_raise_result(t, it.result);
      break;
    }
    bh_unpack(it.value, NULL, 0, "I", &sq);
    sum += sq;
  }
  bh_map_free(m); /* cancels whatever is still in flight */
  if (rc != BH_EDONE)
    return rc; /* raised, or BH_ECANCELLED: the run was interrupted */
  return bh_return(t, "I", sum);
}

static const bh_task_def worker_tasks[] = {{"square", square}, {NULL, NULL}};
static const bh_class worker = {.name = "Worker", .tasks = worker_tasks};
static const bh_task_def queen_tasks[] = {{"sum_squares", sum_squares},
                                          {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = queen_tasks,
                               .worker_class = &worker, .workers = 2};

int main(int argc, char **argv) {
  int64_t n = argc > 1 ? atoll(argv[1]) : 1000000, sum;
  int chunk = argc > 2 ? atoi(argv[2]) : 100;
  bh_value *args = bh_value_pack(NULL, "[I i]", n, chunk);
  bh_run_opts o = {.queen_class = &queen, .task_name = "sum_squares",
                   .task_args = args};
  bh_result *r;
  int rc = bh_run(&o, &r);

  if (rc == 0 && bh_result_unpack(r, NULL, 0, "I", &sum) == 0)
    printf("sum of squares 1..%lld = %lld\n", (long long)n, (long long)sum);
  else
    fprintf(stderr, "hive failed: %s: %s\n", bh_result_errtype(r),
            bh_result_errmsg(r));
  bh_result_free(r);
  bh_value_free(args);
  return rc == 0 ? 0 : 1;
}
