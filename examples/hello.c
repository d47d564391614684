/* hello.c - the shortest complete BeeHive program: a queen delegates the
 * squares of 1..10 to her workers, all at once, and sums them. */
#include <beehive.h>
#include <stdio.h>

static int square(bh_task *t) { /* a worker's task */
  int64_t x;

  if (bh_task_unpack(t, "[I]", &x) != 0)
    return BH_ERAISED; /* TypeError naming the bad argument */
  return bh_return(t, "I", x * x);
}

static int sum_squares(bh_task *t) { /* the queen's task */
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int64_t n, i, sum = 0, sq;
  int rc;

  bh_task_unpack(t, "[I]", &n);
  for (i = 1; i <= n; i++)
    bh_group_delegate(g, NULL, NULL, "square", "[I]", i);
  while ((rc = bh_group_next(g, &f, -1)) == 0) { /* as they complete */
    if (bh_result_status(bh_future_result(f)) != BH_SUCCEEDED) {
      rc = bh_raise_result(t, bh_future_result(f));
      bh_future_free(f);
      bh_group_free(g);
      return rc;
    }
    bh_result_unpack(bh_future_result(f), NULL, 0, "I", &sq);
    sum += sq;
    bh_future_free(f);
  }
  bh_group_free(g); /* cancels whatever is still in flight */
  if (rc != BH_EDONE)
    return rc; /* BH_ECANCELLED: the run was interrupted or timed out */
  return bh_return(t, "I", sum);
}

static const bh_task_def worker_tasks[] = {{"square", square}, {NULL, NULL}};
static const bh_class worker = {.name = "Worker", .tasks = worker_tasks};
static const bh_task_def queen_tasks[] = {{"sum_squares", sum_squares},
                                          {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = queen_tasks,
                               .worker_class = &worker, .workers = 2};

int main(void) {
  bh_value *args = bh_value_pack(NULL, "[i]", 10);
  bh_run_opts o = {.queen_class = &queen, .task_name = "sum_squares",
                   .task_args = args};
  bh_result *r;
  int64_t sum;
  int rc = bh_run(&o, &r);

  if (rc == 0 && bh_result_unpack(r, NULL, 0, "I", &sum) == 0)
    printf("sum of squares 1..10 = %lld\n", (long long)sum);
  else
    fprintf(stderr, "hive failed: %s: %s\n", bh_result_errtype(r),
            bh_result_errmsg(r));
  bh_result_free(r);
  bh_value_free(args);
  return rc == 0 ? 0 : 1;
}
