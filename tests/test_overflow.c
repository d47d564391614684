/* test_overflow.c - tasks' stacks: the default size a task can use, a
 * bigger stack per class, and a task that runs past its stack reported as
 * "stack overflow in task 'X' (stack N KiB)": in a worker as the cause its
 * task comes back raised with (fork and exec starts), in the queen's
 * process on stderr before an abort. Other faults go where they went
 * before, and the program's own SIGSEGV handling is back after bh_run. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "runner.h"

#define KIB ((size_t)1 << 10)

/* A task with a local array of n bytes, every byte of it written (the
 * array is volatile: the compiler keeps it on the stack, whole). */
static __attribute__((noinline)) int
local_array(bh_task *t, size_t n, volatile char *buf) {
  size_t i;
  int sum = 0;

  for (i = 0; i < n; i += 4096)
    buf[i] = (char)i;
  buf[n - 1] = 1;
  for (i = 0; i < n; i += 4096)
    sum += buf[i];
  return bh_return(t, "[I i]", (int64_t)n, sum + buf[n - 1]);
}

static int
local_200k(bh_task *t) {
  volatile char buf[200 << 10];

  return local_array(t, sizeof(buf), buf);
}

static int
local_256k(bh_task *t) {
  volatile char buf[256 << 10];

  return local_array(t, sizeof(buf), buf);
}

static int
local_512k(bh_task *t) {
  volatile char buf[512 << 10];

  return local_array(t, sizeof(buf), buf);
}

/* An address no process maps (below mmap_min_addr), and not NULL, which
 * UBSan would catch before the fault; volatile, so that the compiler
 * cannot see it either. */
static int *volatile nowhere = (int *)(uintptr_t)4096;

static int
wild_write(bh_task *t) {
  *nowhere = 1;
  return bh_return(t, "n");
}

static const bh_task_def worker_tasks[] = {
    {"local_200k", local_200k}, {"local_256k", local_256k},
    {"local_512k", local_512k}, {"wild_write", wild_write}, {NULL, NULL}};
static const bh_class worker = {.name = "Worker", .tasks = worker_tasks};
static const bh_class big_worker = {.name = "BigWorker",
                                    .tasks = worker_tasks,
                                    .stack_size = 1 << 20};

/* The queen's task: delegates task args[0] and answers what it got. */
static int
relay(bh_task *t) {
  char name[32];
  bh_result *r;
  int rc;

  if (bh_task_unpack(t, "[s]", name, sizeof(name)) != 0)
    return BH_ERAISED;
  rc = bh_delegate(t, &r, name, NULL);
  if (rc == 0)
    rc = bh_return_object(t, bh_result_value(r));
  else if (r != NULL)
    rc = bh_raise_result(t, r);
  bh_result_free(r);
  return rc;
}

static const bh_task_def queen_tasks[] = {
    {"relay", relay}, {"local_200k", local_200k}, {"local_512k", local_512k},
    {"wild_write", wild_write}, {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = queen_tasks,
                               .worker_class = &worker, .workers = 1};
static const bh_class big_queen = {.name = "BigQueen", .tasks = queen_tasks,
                                   .worker_class = &big_worker,
                                   .workers = 1, .stack_size = 1 << 20};

/* ---- helpers ----------------------------------------------------------- */

/* bh_run of the queen's `task` (with args [arg] when arg is not NULL):
 * its status, and *out the formatted result. */
static int
run_task(const bh_class *q, bh_start start, const char *task,
         const char *arg, char *out, size_t len) {
  bh_value *args = arg ? bh_value_pack(NULL, "[s]", arg) : NULL;
  bh_run_opts o = {.queen_class = q, .task_name = task, .task_args = args,
                   .start = start};
  bh_result *r = NULL;
  int rc = bh_run(&o, &r);

  bh_result_format(r, out, len);
  bh_result_free(r);
  bh_value_free(args);
  return rc;
}

/* A task that succeeded with [n, sum] for an array of n bytes. */
static int
ran_whole(const bh_class *q, const char *task, const char *arg, size_t n) {
  bh_value *args = arg ? bh_value_pack(NULL, "[s]", arg) : NULL;
  bh_run_opts o = {.queen_class = q, .task_name = task, .task_args = args};
  bh_result *r = NULL;
  int64_t got = 0;
  int sum = 0, rc = bh_run(&o, &r);

  if (rc != 0) {
    char buf[2048];

    bh_result_format(r, buf, sizeof(buf));
    fprintf(stderr, "%s\n", buf);
  }
  ASSERT_INT_EQ(rc, 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I i]", &got, &sum), 0);
  ASSERT_INT_EQ(got, n);
  ASSERT_INT_EQ(sum, 1);
  bh_result_free(r);
  bh_value_free(args);
  return 0;
}

#define ASSERT_HAS(text, part)                                               \
  do {                                                                       \
    if (strstr((text), (part)) == NULL) {                                    \
      fprintf(stderr, "%s:%d: \"%s\" not in:\n%s\n", __FILE__, __LINE__,     \
              (part), (text));                                               \
      return 1;                                                              \
    }                                                                        \
  } while (0)

#define ASSERT_HAS_NOT(text, part)                                           \
  do {                                                                       \
    if (strstr((text), (part)) != NULL) {                                    \
      fprintf(stderr, "%s:%d: \"%s\" in:\n%s\n", __FILE__, __LINE__,         \
              (part), (text));                                               \
      return 1;                                                              \
    }                                                                        \
  } while (0)

/* A child process's end and what it wrote on stderr. */
typedef struct ended {
  int status;
  char err[4096];
} ended;

/* Runs fn() in a child process whose stderr is captured; returns 0 with
 * *e filled, or -1. */
static int
in_child(void (*fn)(void), ended *e) {
  size_t got = 0;
  int fds[2];
  ssize_t n;
  pid_t pid;

  memset(e, 0, sizeof(*e));
  if (pipe(fds) != 0 || (pid = fork()) < 0)
    return -1;
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  while ((n = read(fds[0], e->err + got, sizeof(e->err) - 1 - got)) > 0)
    got += (size_t)n;
  close(fds[0]);
  return waitpid(pid, &e->status, 0) == pid ? 0 : -1;
}

/* ---- the default stack, and a bigger one ------------------------------- */

/* 256 KiB, as beehive.h says: 200 KiB of locals fit, 256 KiB do not. */
TEST(the_default_stack_holds_200_kib_of_locals) {
  ASSERT_INT_EQ(ran_whole(&queen, "relay", "local_200k", 200 * KIB), 0);
  ASSERT_INT_EQ(ran_whole(&queen, "local_200k", NULL, 200 * KIB), 0);
  return 0;
}

/* The queen's delegation of local_256k, started by `start`, comes back
 * raised, its worker dead with the overflow named first. */
static int
worker_overflow_named(bh_start start) {
  char out[4096];

  ASSERT_INT_EQ(run_task(&queen, start, "relay", "local_256k", out,
                         sizeof(out)),
                BH_ERAISED);
  ASSERT_HAS(out, "Delegated task cancelled as the delegated bee has been "
                  "killed.");
  ASSERT_HAS(out, "stack overflow in task 'local_256k' (stack 256 KiB): "
                  "give class 'Worker' a larger stack_size; killed by "
                  "signal SIGSEGV");
  return 0;
}

TEST(a_worker_overflow_names_the_task_and_its_stack) {
  return worker_overflow_named(BH_START_FORK);
}

/* The words reach the queen through descriptor 4 of an exec-started
 * worker, which runs this very program (main() below). */
TEST(an_exec_started_worker_overflow_names_the_task) {
  return worker_overflow_named(BH_START_EXEC);
}

TEST(a_bigger_class_stack_lets_the_same_tasks_run) {
  ASSERT_INT_EQ(ran_whole(&big_queen, "relay", "local_256k", 256 * KIB), 0);
  ASSERT_INT_EQ(ran_whole(&big_queen, "relay", "local_512k", 512 * KIB), 0);
  ASSERT_INT_EQ(ran_whole(&big_queen, "local_512k", NULL, 512 * KIB), 0);
  return 0;
}

/* A worker's fault that is not an overflow: a crash as before. */
TEST(a_worker_crash_is_not_called_an_overflow) {
  char out[4096];

  ASSERT_INT_EQ(run_task(&queen, BH_START_FORK, "relay", "wild_write", out,
                         sizeof(out)),
                BH_ERAISED);
  ASSERT_HAS_NOT(out, "stack overflow");
#ifndef T_ASAN /* ASan reports the SEGV itself, and exits */
  ASSERT_HAS(out, "killed by signal SIGSEGV (Segmentation fault)");
#endif
  return 0;
}

/* ---- in the queen's process -------------------------------------------- */

static void
queen_512k(void) {
  char out[4096];

  run_task(&queen, BH_START_FORK, "local_512k", NULL, out, sizeof(out));
}

static void
queen_wild_write(void) {
  char out[4096];

  run_task(&queen, BH_START_FORK, "wild_write", NULL, out, sizeof(out));
}

/* The program does not die of a bare SIGSEGV: it says why, and aborts. */
TEST(a_queen_overflow_says_so_and_aborts) {
  ended e;

  ASSERT_INT_EQ(in_child(queen_512k, &e), 0);
  if (!WIFSIGNALED(e.status) || WTERMSIG(e.status) != SIGABRT)
    fprintf(stderr, "status %#x:\n%s\n", e.status, e.err);
  ASSERT(WIFSIGNALED(e.status) && WTERMSIG(e.status) == SIGABRT);
  ASSERT_HAS(e.err, "beehive: stack overflow in task 'local_512k' (stack "
                    "256 KiB): give class 'Queen' a larger stack_size\n");
  return 0;
}

/* Any other fault in the queen's task ends the program as before. */
TEST(a_queen_crash_is_a_plain_sigsegv) {
  ended e;

  ASSERT_INT_EQ(in_child(queen_wild_write, &e), 0);
  ASSERT_HAS_NOT(e.err, "stack overflow");
#ifdef T_ASAN
  ASSERT_HAS(e.err, "AddressSanitizer: SEGV");
#else
  if (!WIFSIGNALED(e.status) || WTERMSIG(e.status) != SIGSEGV)
    fprintf(stderr, "status %#x:\n%s\n", e.status, e.err);
  ASSERT(WIFSIGNALED(e.status) && WTERMSIG(e.status) == SIGSEGV);
#endif
  return 0;
}

static void
mine(int sig) {
  (void)sig;
  write(STDERR_FILENO, "mine\n", 5);
  _exit(42);
}

static void
queen_wild_write_mine(void) {
  struct sigaction sa;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = mine;
  sigaction(SIGSEGV, &sa, NULL);
  queen_wild_write();
}

/* ...to the program's own handler, when it has one. */
TEST(a_queen_crash_goes_to_the_programs_handler) {
  ended e;

  ASSERT_INT_EQ(in_child(queen_wild_write_mine, &e), 0);
  if (!WIFEXITED(e.status) || WEXITSTATUS(e.status) != 42)
    fprintf(stderr, "status %#x:\n%s\n", e.status, e.err);
  ASSERT(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 42);
  ASSERT_STR_EQ(e.err, "mine\n");
  return 0;
}

static struct sigaction during;
static stack_t alt_during;

static int
peek(bh_task *t) {
  sigaction(SIGSEGV, NULL, &during);
  sigaltstack(NULL, &alt_during);
  return bh_return(t, "n");
}

static const bh_task_def peek_tasks[] = {{"peek", peek}, {NULL, NULL}};
static const bh_class peek_queen = {.name = "PeekQueen", .tasks = peek_tasks,
                                    .worker_class = &worker, .workers = 1};

/* The handler and its signal stack are there while bh_run runs, and the
 * program's handler and signal stack (none) are back after. */
TEST(the_programs_handler_is_back_after_bh_run) {
  bh_run_opts o = {.queen_class = &peek_queen, .task_name = "peek"};
  struct sigaction sa, after;
  bh_result *r = NULL;
  stack_t alt;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = mine;
  ASSERT_INT_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  bh_result_free(r);
  ASSERT(!(during.sa_flags & SA_SIGINFO) ? during.sa_handler != mine : 1);
  ASSERT(during.sa_flags & SA_ONSTACK);
#ifndef T_ASAN /* ASan keeps a signal stack of its own */
  ASSERT(!(alt_during.ss_flags & SS_DISABLE));
#endif
  ASSERT_INT_EQ(sigaction(SIGSEGV, NULL, &after), 0);
  ASSERT(!(after.sa_flags & SA_SIGINFO));
  ASSERT(after.sa_handler == mine);
#ifndef T_ASAN
  ASSERT_INT_EQ(sigaltstack(NULL, &alt), 0);
  ASSERT(alt.ss_flags & SS_DISABLE);
#else
  (void)alt;
#endif
  return 0;
}

TEST_MAIN_WORKER(worker,
    TEST_ENTRY_T(the_default_stack_holds_200_kib_of_locals, 20),
    TEST_ENTRY_T(a_worker_overflow_names_the_task_and_its_stack, 20),
    TEST_ENTRY_T(an_exec_started_worker_overflow_names_the_task, 20),
    TEST_ENTRY_T(a_bigger_class_stack_lets_the_same_tasks_run, 20),
    TEST_ENTRY_T(a_worker_crash_is_not_called_an_overflow, 20),
    TEST_ENTRY_T(a_queen_overflow_says_so_and_aborts, 20),
    TEST_ENTRY_T(a_queen_crash_is_a_plain_sigsegv, 20),
    TEST_ENTRY_T(a_queen_crash_goes_to_the_programs_handler, 20),
    TEST_ENTRY_T(the_programs_handler_is_back_after_bh_run, 20))
