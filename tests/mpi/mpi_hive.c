/* mpi_hive.c - test_mpi's MPI program (beehive_mpi.h): rank 0 the queen,
 * the other ranks her workers.
 *
 *   mpi_hive TASKS VICTIM MARKER
 *     The queen's task delegates "square" of 0 .. TASKS-1 (retries 2) and
 *     sums the answers. The first worker to get task VICTIM writes its pid
 *     into MARKER (made with O_EXCL, so only one does) and SIGKILLs
 *     itself; a worker that gets it again answers it. Rank 0 ends with
 *     "mpi_hive: sum S of N, deaths D, retried R" on stdout.
 *   mpi_hive --wait-ms MS
 *     The worker ranks wait at most MS for the queen (bh_mpi_opts.wait_ms),
 *     who first reads her stdin to its end, then gives up (bh_mpi_end).
 */
#include <beehive_mpi.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t victim = -1;
static const char *marker;

/* [i] -> i * i, or the worker's death at the victim, once. */
static int
square(bh_task *t) {
  int64_t i;
  int fd;

  if (bh_task_unpack(t, "[I]", &i) != 0)
    return BH_ERAISED;
  if (i == victim &&
      (fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >=
          0) {
    dprintf(fd, "%d\n", (int)getpid());
    close(fd);
    raise(SIGKILL);
  }
  return bh_return(t, "I", i * i);
}

/* [n] -> [sum of squares, answers]: every task's answer must come. */
static int
sum(bh_task *t) {
  int64_t n, i, sq, total = 0, answered = 0;
  bh_group *g;
  bh_future *f;
  int rc = 0;

  if (bh_task_unpack(t, "[I]", &n) != 0)
    return BH_ERAISED;
  if ((g = bh_group_new(t)) == NULL)
    return BH_ENOMEM;
  for (i = 0; i < n && rc == 0; i++)
    rc = bh_group_delegate(g, NULL, NULL, "square", "[I]", i);
  while (rc == 0 && (rc = bh_group_next(g, &f, -1)) == 0) {
    if (bh_result_status(bh_future_result(f)) != BH_SUCCEEDED)
      rc = bh_raise_result(t, bh_future_result(f));
    else if ((rc = bh_result_unpack(bh_future_result(f), NULL, 0, "I",
                                    &sq)) == 0)
      total += sq, answered++;
    bh_future_free(f);
  }
  bh_group_free(g);
  if (rc != BH_EDONE)
    return rc;
  return bh_return(t, "[I I]", total, answered);
}

static const bh_task_def worker_tasks[] = {{"square", square}, {NULL, NULL}};
static const bh_class worker = {.name = "Worker", .tasks = worker_tasks};
static const bh_task_def queen_tasks[] = {{"sum", sum}, {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = queen_tasks,
                               .worker_class = &worker};

static bh_stats final;

static void
keep(void *udata, const bh_stats *s, int last) {
  (void)udata;
  if (last)
    final = *s;
}

static int
queen_run(int64_t n) {
  bh_value *args = bh_value_pack(NULL, "[I]", n);
  bh_run_opts o = {.queen_class = &queen, .task_name = "sum",
                   .task_args = args, .retries = 2, .progress = keep,
                   .progress_interval_ms = BH_NONE};
  bh_result *r = NULL;
  int64_t total = 0, answered = 0;
  char why[2048];
  int rc = bh_mpi_run(&o, &r);

  if (rc == 0)
    rc = bh_result_unpack(r, why, sizeof(why), "[I I]", &total, &answered);
  else if (r != NULL)
    bh_result_format(r, why, sizeof(why));
  if (rc == 0)
    printf("mpi_hive: sum %lld of %lld, deaths %llu, retried %llu\n",
           (long long)total, (long long)answered,
           (unsigned long long)final.deaths,
           (unsigned long long)final.retried);
  else
    fprintf(stderr, "mpi_hive: %s: %s\n", bh_err_name(rc),
            r != NULL ? why : "");
  bh_result_free(r);
  bh_value_free(args);
  return rc == 0 ? 0 : 1;
}

/* The queen that never comes: she reads stdin to its end, then gives up. */
static int
late_queen(void) {
  char buf[256];

  while (read(0, buf, sizeof(buf)) > 0)
    ;
  bh_mpi_end("mpi_hive: the queen read her stdin to its end");
  return 0;
}

int
main(int argc, char **argv) {
  static const bh_class *const classes[] = {&worker, NULL};
  bh_mpi_opts mo = {0};
  int status = 0, role, waiting = argc == 3 && !strcmp(argv[1], "--wait-ms");

  if (!waiting && argc != 4) {
    fprintf(stderr, "usage: mpi_hive TASKS VICTIM MARKER | --wait-ms MS\n");
    return 2;
  }
  if (waiting)
    mo.wait_ms = strtoll(argv[2], NULL, 10);
  else
    victim = strtoll(argv[2], NULL, 10), marker = argv[3];
  role = bh_mpi_start(&argc, &argv, &mo, classes, &status);
  if (role < 0)
    return 2;
  if (role == BH_MPI_WORKER)
    return status;
  return waiting ? late_queen() : queen_run(strtoll(argv[1], NULL, 10));
}
