/* sig_hive.c - a hive to interrupt: `sig_hive fork|exec 0|1 nap|spin FIFO`.
 *
 * The queen delegates one task per worker (2 workers, 1 task each) and
 * collects them with the README's loop: stop at bh_group_next's first
 * error, free the group, return what was counted. With 1 after the start
 * mode, each worker is itself a queen of one leaf worker, to which it
 * delegates one task (a sub-hive: 5 processes, 4 tasks; a sub-queen's
 * workers take up to 1,024 tasks each, so a second task could wait
 * behind a spinning one for ever).
 * Every task writes its process id as one line to FIFO once it runs, then
 * naps for a minute (nap) or spins in C without ever yielding (spin).
 *
 * Prints "rc NAME reason" and exits as the main job does: 130 when bh_run
 * was interrupted by SIGINT, 143 by SIGTERM, 0 on success, 1 otherwise. */
#include <beehive.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
say_pid(const char *fifo) {
  char line[32];
  int fd = open(fifo, O_WRONLY);
  int n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
  ssize_t w = fd >= 0 ? write(fd, line, (size_t)n) : -1;

  if (fd >= 0)
    close(fd);
  return w == n ? 0 : BH_EPIPE;
}

static int
leaf(bh_task *t) {
  char fifo[256], mode[8];
  volatile unsigned long n = 0;
  int rc;

  if (bh_task_unpack(t, "[s s]", fifo, sizeof(fifo), mode,
                     sizeof(mode)) != 0)
    return BH_ERAISED;
  if ((rc = say_pid(fifo)) != 0)
    return rc;
  if (strcmp(mode, "spin") == 0)
    for (;;)
      n++;
  return bh_sleep(t, 60000);
}

/* Delegates `task` n times and counts the answers, as the README does. */
static int
fan_out(bh_task *t, const char *task, int n, const char *fifo,
        const char *mode) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int64_t done = 0;
  int i;

  for (i = 0; i < n; i++)
    bh_group_delegate(g, NULL, NULL, task, "[s s]", fifo, mode);
  while (bh_group_next(g, &f, -1) == 0) {
    done++;
    bh_future_free(f);
  }
  bh_group_free(g);
  return bh_return(t, "I", done);
}

/* A sub-queen's task: says it runs, then fans out to her leaves. */
static int
sub(bh_task *t) {
  char fifo[256], mode[8];
  int rc;

  if (bh_task_unpack(t, "[s s]", fifo, sizeof(fifo), mode,
                     sizeof(mode)) != 0)
    return BH_ERAISED;
  if ((rc = say_pid(fifo)) != 0)
    return rc;
  return fan_out(t, "leaf", 1, fifo, mode);
}

static int
top(bh_task *t) {
  char task[8], fifo[256], mode[8];

  if (bh_task_unpack(t, "[s s s]", task, sizeof(task), fifo, sizeof(fifo),
                     mode, sizeof(mode)) != 0)
    return BH_ERAISED;
  return fan_out(t, task, 2, fifo, mode);
}

static const bh_task_def leaf_tasks[] = {{"leaf", leaf}, {NULL, NULL}};
static const bh_class leaf_class = {.name = "Leaf", .tasks = leaf_tasks};
static const bh_task_def sub_tasks[] = {{"sub", sub}, {NULL, NULL}};
static const bh_class sub_class = {.name = "SubQueen", .tasks = sub_tasks,
                                   .worker_class = &leaf_class,
                                   .workers = 1};
static const bh_task_def top_tasks[] = {{"top", top}, {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = top_tasks};
static const bh_class *const classes[] = {&leaf_class, &sub_class, NULL};

int
main(int argc, char **argv) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "top", .workers = 2,
                   .min_workers = 2, .max_workers = 2, .max_concurrency = 1};
  bh_value *args;
  bh_result *r = NULL;
  const char *reason;
  int rc, sub_hive, status;

  bh_worker_main(argc, argv, classes);
  if (argc != 5) {
    fprintf(stderr, "usage: sig_hive fork|exec 0|1 nap|spin FIFO\n");
    return 2;
  }
  o.start = strcmp(argv[1], "exec") == 0 ? BH_START_EXEC : BH_START_FORK;
  sub_hive = strcmp(argv[2], "1") == 0;
  o.worker_class = sub_hive ? &sub_class : &leaf_class;
  args = bh_value_pack(NULL, "[s s s]", sub_hive ? "sub" : "leaf", argv[4],
                       argv[3]);
  o.task_args = args;
  if (getenv("SIG_HIVE_LOG") != NULL)
    o.logger = bh_logger_new(BH_LOG_DEBUG, NULL, NULL);
  rc = bh_run(&o, &r);
  reason = bh_result_reason(r) ? bh_result_reason(r) : "-";
  printf("rc %s reason %s\n", bh_err_name(rc), reason);
  status = rc == 0 ? 0 : 1;
  if (rc == BH_ECANCELLED && bh_result_signal(r) != 0)
    status = 128 + bh_result_signal(r);
  bh_result_free(r);
  bh_value_free(args);
  bh_logger_free(o.logger);
  return status;
}
