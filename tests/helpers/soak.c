/* soak.c - `make soak`: a chaos run. At least 200,000 delegations of short
 * tasks while a random worker is SIGKILLed every 20 ms; every delegation
 * must come back exactly once, checked by content (each task returns the
 * number it was given, and each number is ticked off once). Then again
 * with retries on, where every task must succeed. Ends with one line:
 *   soak: delegated N, answered N, lost 0, duplicated 0, workers killed K,
 *   retried-ok N
 * and exits non-zero if anything was lost, duplicated, or (with retries)
 * failed. Usage: soak [N] [kill-every-ms] */
#include <beehive.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 4096

typedef struct tally {
  int64_t n;
  unsigned char *seen; /* answers per task number, saturating at 2 */
  int64_t succeeded, raised, cancelled, wrong_value;
  int64_t killed;
  int stop;
} tally;

static int
w_echo(bh_task *t) {
  return bh_return_object(t, &bh_task_args(t)->via.array.ptr[0]);
}

/* The chaos monkey: a local fiber of the queen's task. */
static int
killer(bh_task *t, void *arg) {
  tally *y = ((void **)arg)[0];
  int64_t every = *(int64_t *)((void **)arg)[1];
  bh_stats st;
  size_t i, pick;

  while (!y->stop && bh_sleep(t, every) == 0) {
    if (bh_bee_stats(bh_task_bee(t), &st) != 0 || st.alive == 0)
      continue;
    pick = (size_t)rand() % st.alive;
    for (i = 0; i < st.n_children; i++)
      if (st.children[i].alive && pick-- == 0) {
        kill(st.children[i].pid, SIGKILL);
        y->killed++;
        break;
      }
  }
  return 0;
}

static void
tick_off(tally *y, bh_future *f) {
  int64_t id = (int64_t)(intptr_t)bh_future_udata(f), v;
  const bh_result *r = bh_future_result(f);

  if (y->seen[id] < 2)
    y->seen[id]++;
  switch (bh_result_status(r)) {
  case BH_SUCCEEDED:
    y->succeeded++;
    if (bh_result_unpack(r, NULL, 0, "I", &v) != 0 || v != id)
      y->wrong_value++;
    break;
  case BH_CANCELLED:
    y->cancelled++;
    break;
  default:
    if (y->raised++ < 3 && getenv("SOAK_LOG") != NULL) {
      char text[1024];

      bh_result_format(r, text, sizeof(text));
      fprintf(stderr, "raised: %s\n", text);
    }
  }
}

static int
q_soak(bh_task *t) {
  tally *y;
  int64_t every, next = 0;
  bh_group *g = bh_group_new(t), *chaos = bh_group_new(t);
  void *karg[2];
  bh_future *f;

  bh_task_unpack(t, "[I I]", (int64_t *)&y, &every);
  karg[0] = y;
  karg[1] = &every;
  bh_group_go(chaos, NULL, NULL, killer, karg);
  while (next < y->n || bh_group_pending(g) > 0) {
    while (next < y->n && bh_group_pending(g) < WINDOW)
      bh_group_delegate(g, NULL, (void *)(intptr_t)next, "echo", "[I]",
                        next), next++;
    if (bh_group_next(g, &f, -1) != 0)
      break;
    tick_off(y, f);
    bh_future_free(f);
  }
  y->stop = 1;
  bh_group_free(chaos);
  bh_group_free(g);
  return 0;
}

static const bh_task_def wtasks[] = {{"echo", w_echo}, {NULL, NULL}};
static const bh_class worker = {.name = "SoakWorker", .tasks = wtasks};
static const bh_task_def qtasks[] = {{"soak", q_soak}, {NULL, NULL}};
static const bh_class queen = {.name = "SoakQueen", .tasks = qtasks,
                               .worker_class = &worker};

/* One chaos run; returns the tally's verdict counts in y. */
static int
soak(tally *y, int64_t every, int retries, bh_stats *final) {
  bh_value *args = bh_value_pack(NULL, "[I I]", (int64_t)(intptr_t)y, every);
  bh_run_opts o = {.queen_class = &queen, .task_name = "soak",
                   .task_args = args, .workers = 2, .min_workers = 2,
                   .max_workers = 2, .max_restarts = 1 << 30,
                   .retries = retries, .poison_kills = retries + 1};
  bh_result *r;
  int rc;

  (void)final;
  if (getenv("SOAK_LOG") != NULL)
    o.logger = bh_logger_new(BH_LOG_DEBUG, NULL, NULL);
  rc = bh_run(&o, &r);
  bh_logger_free(o.logger);
  if (rc != 0) {
    char text[2048];

    bh_result_format(r, text, sizeof(text));
    fprintf(stderr, "soak: the hive failed: %s\n", text);
  }
  bh_result_free(r);
  bh_value_free(args);
  return rc;
}

static void
count(const tally *y, int64_t *answered, int64_t *lost, int64_t *dup) {
  int64_t i;

  *answered = *lost = *dup = 0;
  for (i = 0; i < y->n; i++) {
    *answered += y->seen[i] > 0;
    *lost += y->seen[i] == 0;
    *dup += y->seen[i] > 1;
  }
}

int
main(int argc, char **argv) {
  int64_t n = argc > 1 ? atoll(argv[1]) : 200000;
  int64_t every = argc > 2 ? atoll(argv[2]) : 20;
  tally a = {.n = n}, b = {.n = n};
  int64_t answered, lost, dup, answered2, lost2, dup2;
  int bad;

  a.seen = calloc((size_t)n, 1);
  b.seen = calloc((size_t)n, 1);
  srand(12345);
  if (a.seen == NULL || b.seen == NULL || soak(&a, every, 0, NULL) != 0 ||
      soak(&b, every, 8, NULL) != 0)
    return 2;
  count(&a, &answered, &lost, &dup);
  count(&b, &answered2, &lost2, &dup2);
  fprintf(stderr, "without retries: %lld succeeded, %lld raised by deaths, "
          "%lld cancelled, %lld workers killed\n", (long long)a.succeeded,
          (long long)a.raised, (long long)a.cancelled, (long long)a.killed);
  fprintf(stderr, "with retries: %lld succeeded, %lld raised, %lld "
          "cancelled, %lld workers killed\n", (long long)b.succeeded,
          (long long)b.raised, (long long)b.cancelled, (long long)b.killed);
  printf("soak: delegated %lld, answered %lld, lost %lld, duplicated %lld, "
         "workers killed %lld, retried-ok %lld\n", (long long)(2 * n),
         (long long)(answered + answered2), (long long)(lost + lost2),
         (long long)(dup + dup2 + a.wrong_value + b.wrong_value),
         (long long)(a.killed + b.killed),
         (long long)b.succeeded);
  bad = lost + lost2 + dup + dup2 + a.wrong_value + b.wrong_value > 0 ||
        b.succeeded != n;
  free(a.seen);
  free(b.seen);
  return bad ? 1 : 0;
}
