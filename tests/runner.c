/* runner.c - the test harness behind tests/runner.h.
 *
 * Each case runs in a forked child that leads its own process group, so that
 * any worker it forks can be killed with it. The child's stdout and stderr go
 * to an unlinked temporary file that is shown, as TAP diagnostics, only when
 * the case fails. The parent waits for the child with SIGCHLD blocked and
 * sigtimedwait() as the timer: no polling loop, no sleep. */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_S 5

enum outcome { PASSED, SKIPPED, EXITED, SIGNALED, TIMED_OUT, NOT_RUN };

typedef struct result {
  enum outcome how;
  int code;       /* exit status or signal number */
  double timeout; /* the limit that applied, in seconds */
} result;

static double
timeout_mult(void) {
  const char *s = getenv("BH_TEST_TIMEOUT_MULT");
  char *end;
  double m;

  if (s == NULL || *s == '\0')
    return 1.0;
  errno = 0;
  m = strtod(s, &end);
  if (errno != 0 || *end != '\0' || !isfinite(m) || m <= 0) {
    fprintf(stderr,
            "# ignoring BH_TEST_TIMEOUT_MULT=\"%s\": not a number > 0\n", s);
    return 1.0;
  }
  return m;
}

static double
now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In the child: become a group leader, send output to `out`, run the case. */
static void __attribute__((noreturn))
child_run(const bh_test *t, int out, const sigset_t *oldmask) {
  int null_fd, rc;

  setpgid(0, 0);
  sigprocmask(SIG_SETMASK, oldmask, NULL);
  null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0 && null_fd != STDIN_FILENO) {
    dup2(null_fd, STDIN_FILENO);
    close(null_fd);
  }
  dup2(out, STDOUT_FILENO);
  dup2(out, STDERR_FILENO);
  close(out);
  /* Unbuffered, so output written just before a crash is not lost. */
  setvbuf(stdout, NULL, _IONBF, 0);
  /* exit(), not _exit(): atexit hooks such as LeakSanitizer's must run. */
  rc = t->fn();
  exit(rc == 0 || rc == TEST_SKIPPED ? rc : 1);
}

/* Returns 1 once `pid` has exited (left a zombie, not reaped), 0 if not. */
static int
has_exited(pid_t pid) {
  siginfo_t si;

  si.si_pid = 0;
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno == ECHILD;
  return si.si_pid == pid;
}

/* Waits until the child exits or `limit` seconds pass. Returns 1 on timeout.
 * SIGCHLD is blocked, so it stays pending for sigtimedwait(). */
static int
wait_exit(pid_t pid, double limit) {
  double deadline = now_s() + limit, left;
  struct timespec ts;
  sigset_t chld;

  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  while (!has_exited(pid)) {
    left = deadline - now_s();
    if (left <= 0)
      return 1;
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    sigtimedwait(&chld, NULL, &ts); /* EAGAIN/EINTR: the loop re-checks */
  }
  return 0;
}

/* Kills whatever is left of the case's process group (its workers, or the
 * whole case on timeout) while the leader is still an unreaped zombie, so
 * the group id cannot have been reused, then reaps the leader. */
static void
finish(pid_t pid, int timed_out, result *r) {
  int status = 0;

  kill(-pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (timed_out)
    r->how = TIMED_OUT;
  else if (WIFSIGNALED(status)) {
    r->how = SIGNALED;
    r->code = WTERMSIG(status);
  } else {
    r->code = WEXITSTATUS(status);
    r->how = r->code == 0 ? PASSED
             : r->code == TEST_SKIPPED ? SKIPPED : EXITED;
  }
}

static void
run_case(const bh_test *t, double mult, int out, result *r) {
  sigset_t chld, old;
  pid_t pid;

  r->timeout = (t->timeout_s > 0 ? t->timeout_s : DEFAULT_TIMEOUT_S) * mult;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  fflush(NULL);
  pid = fork();
  if (pid == 0)
    child_run(t, out, &old);
  if (pid < 0) {
    fprintf(stdout, "# fork: %s\n", strerror(errno));
    r->how = NOT_RUN;
  } else {
    setpgid(pid, pid); /* also done by the child: whoever runs first wins */
    finish(pid, wait_exit(pid, r->timeout), r);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
}

/* Prints the captured output as TAP diagnostics ("# " before each line). */
static void
dump_output(int fd) {
  char line[4096];
  FILE *f;
  int bol = 1;

  if (lseek(fd, 0, SEEK_SET) < 0 || (fd = dup(fd)) < 0)
    return;
  f = fdopen(fd, "r");
  if (f == NULL) {
    close(fd);
    return;
  }
  while (fgets(line, sizeof(line), f) != NULL) {
    fputs(bol ? "# " : "", stdout);
    fputs(line, stdout);
    bol = strchr(line, '\n') != NULL;
  }
  if (!bol)
    fputc('\n', stdout);
  fclose(f);
}

/* A skipped case's why: the last line it wrote, into why (len bytes). */
static void
last_line(int fd, char *why, size_t len) {
  char line[512];
  FILE *f;

  why[0] = '\0';
  if (lseek(fd, 0, SEEK_SET) < 0 || (fd = dup(fd)) < 0)
    return;
  if ((f = fdopen(fd, "r")) == NULL) {
    close(fd);
    return;
  }
  while (fgets(line, sizeof(line), f) != NULL)
    if (line[0] != '\n')
      snprintf(why, len, "%.*s", (int)strcspn(line, "\n"), line);
  fclose(f);
}

static void
report(int n, const bh_test *t, const result *r, int out) {
  char why[512];

  switch (r->how) {
  case PASSED:
    printf("ok %d - %s\n", n, t->name);
    break;
  case SKIPPED:
    last_line(out, why, sizeof(why));
    printf("ok %d - %s # SKIP %s\n", n, t->name, why);
    break;
  case EXITED:
    printf("not ok %d - %s # exit status %d\n", n, t->name, r->code);
    break;
  case SIGNALED:
    printf("not ok %d - %s # signal %d (%s)\n", n, t->name, r->code,
           strsignal(r->code));
    break;
  case TIMED_OUT:
    printf("not ok %d - %s # timeout after %.1f s\n", n, t->name, r->timeout);
    break;
  case NOT_RUN:
    printf("not ok %d - %s # could not start\n", n, t->name);
    break;
  }
}

/* Runs case `t` as number `n`: its outcome. */
static enum outcome
run_one(int n, const bh_test *t, double mult) {
  result r = {NOT_RUN, 0, 0};
  FILE *out = tmpfile();

  if (out == NULL) {
    printf("# tmpfile: %s\n", strerror(errno));
  } else {
    run_case(t, mult, fileno(out), &r);
  }
  report(n, t, &r, out != NULL ? fileno(out) : -1);
  if (r.how != PASSED && r.how != SKIPPED && out != NULL)
    dump_output(fileno(out));
  if (out != NULL)
    fclose(out);
  fflush(stdout);
  return r.how;
}

static const bh_test *
find(const bh_test *tests, const char *name) {
  for (; tests->name != NULL; tests++)
    if (strcmp(tests->name, name) == 0)
      return tests;
  return NULL;
}

/* Checks the command line. Returns 0, or 2 after printing why. */
static int
check_args(int argc, char **argv, const bh_test *tests) {
  int i;

  for (i = 1; i < argc; i++) {
    if (argv[i][0] == '-') {
      fprintf(stderr, "usage: %s [--list] [test-name...]\n", argv[0]);
      return 2;
    }
    if (find(tests, argv[i]) == NULL) {
      fprintf(stderr, "%s: no test named \"%s\" (see --list)\n", argv[0],
              argv[i]);
      return 2;
    }
  }
  return 0;
}

int
bh_test_main(int argc, char **argv, const bh_test *tests) {
  int i, n = 0, passed = 0, skipped = 0, err;
  double mult = timeout_mult();
  const bh_test *t;

  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (t = tests; t->name != NULL; t++)
      printf("%s\n", t->name);
    return 0;
  }
  if ((err = check_args(argc, argv, tests)) != 0)
    return err;
  signal(SIGCHLD, SIG_DFL); /* SIG_IGN would make children vanish unreaped */
  for (t = tests; t->name != NULL; t++)
    n++;
  if (argc > 1)
    n = argc - 1; /* the named cases, in the order given */
  printf("1..%d\n", n);
  for (i = 0; i < n; i++) {
    enum outcome how =
        run_one(i + 1, argc > 1 ? find(tests, argv[i + 1]) : &tests[i], mult);

    passed += how == PASSED;
    skipped += how == SKIPPED;
  }
  if (skipped > 0)
    printf("%d passed, %d skipped, %d failed\n", passed, skipped,
           n - passed - skipped);
  else
    printf("%d passed, %d failed\n", passed, n - passed);
  fflush(stdout);
  if (passed + skipped < n)
    return 1;
  return skipped == n && n > 0 ? TEST_SKIPPED : 0;
}

int
bh_test_exit_code(int pid) {
  int status;

  while (waitpid((pid_t)pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
