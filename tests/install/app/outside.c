/* outside.c - a program built against an installed beehive as a user
 * builds one (tests/install/check.sh): the queen delegates one task to a
 * worker and prints the answer, with the library's version. */
#include <beehive.h>
#include <stdio.h>

static int
twice(bh_task *t) { /* runs in a worker */
  int64_t x;

  if (bh_task_unpack(t, "[I]", &x) != 0)
    return BH_ERAISED;
  return bh_return(t, "I", 2 * x);
}

static int
ask(bh_task *t) { /* runs in the queen */
  bh_result *r = NULL;
  int64_t v;
  int rc = bh_delegate(t, &r, "twice", "[I]", (int64_t)21);

  if (rc == 0)
    rc = bh_result_unpack(r, NULL, 0, "I", &v);
  bh_result_free(r);
  return rc != 0 ? rc : bh_return(t, "I", v);
}

static const bh_task_def wt[] = {{"twice", twice}, {NULL, NULL}};
static const bh_class worker = {.name = "Worker", .tasks = wt};
static const bh_task_def qt[] = {{"ask", ask}, {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = qt,
                               .worker_class = &worker, .workers = 1};

int
main(void) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "ask"};
  bh_result *r = NULL;
  int64_t v = 0;
  int ok = bh_run(&o, &r) == 0 && bh_result_unpack(r, NULL, 0, "I", &v) == 0;

  if (ok)
    printf("answer %lld from beehive %s\n", (long long)v, bh_version());
  else
    fprintf(stderr, "outside: %s\n", r ? bh_result_errmsg(r) : "no result");
  bh_result_free(r);
  return ok ? 0 : 1;
}
