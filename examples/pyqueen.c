/* pyqueen.c - a C queen whose workers are Python: examples/worker.py, run
 * as an external program (bh_program) by Debian's python3, which has
 * python3-msgpack. She squares 1..n on two of them, all at once, and has
 * one greet her with a keyword argument.
 *
 *   ./build/examples/pyqueen [n]
 *
 * worker.py lies beside this program: the build copies it there, and the
 * install puts both in the same directory. */
#include <beehive.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char script[PATH_MAX]; /* .../worker.py, set by main() */
static const char *const python_argv[] = {"python3", script, NULL};
static const bh_program python = {.path = "/usr/bin/python3",
                                   .argv = python_argv};
/* The class the bootstrap frame names: worker.py serves its Demo class.
 * tasks is NULL: any name goes to Python, which answers one it lacks. */
static const bh_class demo = {.name = "Demo", .program = &python};

static int sum_squares(bh_task *t) { /* the queen's task, in C */
  bh_group *g = bh_group_new(t);
  bh_future *f;
  bh_result *r;
  int64_t n, i, sum = 0, sq;
  int rc;

  bh_task_unpack(t, "[I]", &n);
  for (i = 1; i <= n; i++) /* Demo.square(i), each in a Python worker */
    bh_group_delegate(g, NULL, NULL, "square", "[I]", i);
  while ((rc = bh_group_next(g, &f, -1)) == 0) {
    if (bh_result_unpack(bh_future_result(f), NULL, 0, "I", &sq) != 0) {
      rc = bh_raise_result(t, bh_future_result(f)); /* its traceback too */
      bh_future_free(f);
      bh_group_free(g);
      return rc;
    }
    sum += sq;
    bh_future_free(f);
  }
  bh_group_free(g);
  if (rc != BH_EDONE)
    return rc;
  /* Demo.greet("queen", punctuation="!"): args, then kwargs. */
  if ((rc = bh_delegate(t, &r, "greet", "[s] {s:s}", "queen", "punctuation",
                        "!")) != 0) {
    rc = bh_raise_result(t, r);
    bh_result_free(r);
    return rc;
  }
  rc = bh_return(t, "[I o]", sum, bh_result_value(r));
  bh_result_free(r);
  return rc;
}

static const bh_task_def queen_tasks[] = {{"sum_squares", sum_squares},
                                          {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = queen_tasks,
                               .worker_class = &demo, .workers = 2};

/* worker.py in the directory of this program. */
static int find_script(void) {
  ssize_t n = readlink("/proc/self/exe", script, sizeof(script) - 16);
  char *slash;

  if (n <= 0)
    return -1;
  script[n] = '\0';
  slash = strrchr(script, '/');
  strcpy(slash + 1, "worker.py");
  return access(script, R_OK);
}

int main(int argc, char **argv) {
  bh_value *args = bh_value_pack(NULL, "[I]",
                                 (int64_t)(argc > 1 ? atoll(argv[1]) : 10));
  bh_run_opts o = {.queen_class = &queen, .task_name = "sum_squares",
                   .task_args = args};
  const char *greeting;
  size_t len;
  bh_result *r;
  int64_t sum;
  char err[4096];
  int rc;

  if (find_script() != 0) {
    fprintf(stderr, "pyqueen: no worker.py beside this program\n");
    return 1;
  }
  rc = bh_run(&o, &r); /* BH_ESPAWN if python3 cannot be started */
  if (rc == 0 &&
      bh_result_unpack(r, NULL, 0, "[I s#]", &sum, &greeting, &len) == 0) {
    printf("sum of squares 1..%s on Python workers: %lld\n",
           argc > 1 ? argv[1] : "10", (long long)sum);
    printf("%.*s\n", (int)len, greeting);
  } else {
    bh_result_format(r, err, sizeof(err));
    fprintf(stderr, "pyqueen: %s\n%s\n", bh_err_name(rc), err);
  }
  bh_result_free(r);
  bh_value_free(args);
  return rc == 0 ? 0 : 1;
}
