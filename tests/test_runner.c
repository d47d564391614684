/* test_runner.c - the harness tested with itself: each case here runs
 * bh_test_main() on a table of sub-cases that pass, fail, crash, hang,
 * leave a worker behind and skip, and checks the TAP it prints. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "runner.h"

static int life_fd = -1; /* write end held by a sub-case's stray worker */

static int
asserts_int(void) {
  ASSERT_INT_EQ(2 + 2, 5);
  return 0;
}

static int
asserts_str(void) {
  ASSERT_STR_EQ("abc", NULL);
  return 0;
}

static int
asserts_fine(void) {
  ASSERT(1);
  ASSERT_INT_EQ(-3, -3);
  ASSERT_STR_EQ("abc", "abc");
  return 0;
}

TEST(sub_pass) {
  printf("quiet output\n");
  return 0;
}

TEST(sub_fail) {
  printf("loud failure\n");
  ASSERT_INT_EQ(1, 2);
  return 0;
}

TEST(sub_crash) {
  printf("about to crash\n");
  abort();
}

TEST(sub_hang) {
  for (;;)
    pause();
  return 1; /* not reached */
}

/* Forks a worker that holds life_fd and waits forever, and returns as soon
 * as the worker runs. The runner must kill it. */
TEST(sub_orphan) {
  int ready[2];
  char c;
  pid_t pid;

  ASSERT(pipe(ready) == 0);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    ASSERT(write(ready[1], "R", 1) == 1);
    for (;;)
      pause();
  }
  ASSERT(read(ready[0], &c, 1) == 1);
  return 0;
}

/* Cannot run here: says so among other output. */
TEST(sub_skip) {
  printf("some output first\n");
  SKIP("no %s here", "hosts");
}

static const bh_test subs[] = {
    TEST_ENTRY(sub_pass),      TEST_ENTRY(sub_fail),   TEST_ENTRY(sub_crash),
    TEST_ENTRY_T(sub_hang, 1), TEST_ENTRY(sub_orphan), {NULL, NULL, 0}};
static const bh_test skips[] = {TEST_ENTRY(sub_skip), TEST_ENTRY(sub_pass),
                                {NULL, NULL, 0}};

/* Runs bh_test_main(argv) on `table` with stdout going to `out`. */
static int
capture_table(const char **argv, const bh_test *table, char *out,
              size_t len) {
  FILE *f = tmpfile();
  int saved, rc, argc = 0;
  size_t n;

  while (argv[argc] != NULL)
    argc++;
  if (f == NULL)
    return -1;
  fflush(stdout);
  saved = dup(STDOUT_FILENO);
  dup2(fileno(f), STDOUT_FILENO);
  rc = bh_test_main(argc, (char **)argv, table);
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  rewind(f);
  n = fread(out, 1, len - 1, f);
  out[n] = '\0';
  fclose(f);
  return rc;
}

static int
capture(const char **argv, char *out, size_t len) {
  return capture_table(argv, subs, out, len);
}

/* Redirects stderr while fn runs; returns fn's result. */
static int
capture_err(int (*fn)(void), char *out, size_t len) {
  FILE *f = tmpfile();
  int saved, rc;
  size_t n;

  if (f == NULL)
    return -1;
  fflush(stderr);
  saved = dup(STDERR_FILENO);
  dup2(fileno(f), STDERR_FILENO);
  rc = fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  rewind(f);
  n = fread(out, 1, len - 1, f);
  out[n] = '\0';
  fclose(f);
  return rc;
}

TEST(assert_macros_fail_with_a_message) {
  char err[512];

  ASSERT_INT_EQ(capture_err(asserts_int, err, sizeof(err)), 1);
  ASSERT(strstr(err, "2 + 2 == 5 failed: 4 != 5") != NULL);
  ASSERT_INT_EQ(capture_err(asserts_str, err, sizeof(err)), 1);
  ASSERT(strstr(err, "\"abc\" != \"(null)\"") != NULL);
  ASSERT_INT_EQ(capture_err(asserts_fine, err, sizeof(err)), 0);
  ASSERT_STR_EQ(err, "");
  return 0;
}

/* Returns 1 if every process holding the write end of `fd` is gone. */
static int
all_writers_gone(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  char c;

  if (poll(&p, 1, 10000) != 1)
    return 0;
  return read(fd, &c, 1) == 0;
}

TEST(reports_tap_for_each_outcome) {
  static char out[16384];
  const char *argv[] = {"runner", NULL};
  int life[2];

  ASSERT(pipe(life) == 0);
  life_fd = life[1];
  /* Sub-cases get 0.2 of their limit: the hanging one is stopped in 0.2 s,
   * which also shows that the multiplier is read. */
  ASSERT(setenv("BH_TEST_TIMEOUT_MULT", "0.2", 1) == 0);
  ASSERT_INT_EQ(capture(argv, out, sizeof(out)), 1);
  close(life[1]);
  ASSERT(strncmp(out, "1..5\nok 1 - sub_pass\n", 21) == 0);
  ASSERT(strstr(out, "quiet output") == NULL);
  ASSERT(strstr(out, "\nnot ok 2 - sub_fail # exit status 1\n") != NULL);
  ASSERT(strstr(out, "\n# loud failure\n") != NULL);
  ASSERT(strstr(out, "1 == 2 failed: 1 != 2\n") != NULL);
  ASSERT(strstr(out, "\nnot ok 3 - sub_crash # signal 6 ") != NULL);
  ASSERT(strstr(out, "\n# about to crash\n") != NULL);
  ASSERT(strstr(out, "\nnot ok 4 - sub_hang # timeout after 0.2 s\n") != NULL);
  ASSERT(strstr(out, "\nok 5 - sub_orphan\n") != NULL);
  ASSERT(strlen(out) > 20);
  ASSERT_STR_EQ(out + strlen(out) - 20, "\n2 passed, 3 failed\n");
  ASSERT(all_writers_gone(life[0]));
  close(life[0]);
  return 0;
}

TEST(selects_cases_by_name) {
  char out[4096];
  const char *one[] = {"runner", "sub_pass", NULL};
  const char *two[] = {"runner", "sub_fail", "sub_pass", NULL};

  ASSERT_INT_EQ(capture(one, out, sizeof(out)), 0);
  ASSERT_STR_EQ(out, "1..1\nok 1 - sub_pass\n1 passed, 0 failed\n");
  ASSERT_INT_EQ(capture(two, out, sizeof(out)), 1);
  ASSERT(strncmp(out, "1..2\nnot ok 1 - sub_fail # exit status 1\n", 41) == 0);
  ASSERT(strstr(out, "\nok 2 - sub_pass\n1 passed, 1 failed\n") != NULL);
  return 0;
}

/* A skipped case is ok, with its why, and its output is not shown; a run
 * of skipped cases only exits TEST_SKIPPED. */
TEST(a_skipped_case_says_why) {
  char out[4096];
  const char *both[] = {"runner", NULL};
  const char *one[] = {"runner", "sub_skip", NULL};

  ASSERT_INT_EQ(capture_table(both, skips, out, sizeof(out)), 0);
  ASSERT_STR_EQ(out, "1..2\nok 1 - sub_skip # SKIP no hosts here\n"
                     "ok 2 - sub_pass\n1 passed, 1 skipped, 0 failed\n");
  ASSERT_INT_EQ(capture_table(one, skips, out, sizeof(out)), TEST_SKIPPED);
  ASSERT_STR_EQ(out, "1..1\nok 1 - sub_skip # SKIP no hosts here\n"
                     "0 passed, 1 skipped, 0 failed\n");
  return 0;
}

TEST(lists_and_rejects_unknown_names) {
  char out[4096];
  const char *list[] = {"runner", "--list", NULL};
  const char *bad[] = {"runner", "no_such_case", NULL};
  const char *opt[] = {"runner", "--bogus", NULL};

  ASSERT_INT_EQ(capture(list, out, sizeof(out)), 0);
  ASSERT_STR_EQ(out, "sub_pass\nsub_fail\nsub_crash\nsub_hang\nsub_orphan\n");
  ASSERT_INT_EQ(capture(bad, out, sizeof(out)), 2);
  ASSERT_STR_EQ(out, "");
  ASSERT_INT_EQ(capture(opt, out, sizeof(out)), 2);
  ASSERT_STR_EQ(out, "");
  return 0;
}

TEST_MAIN(TEST_ENTRY(assert_macros_fail_with_a_message),
          TEST_ENTRY_T(reports_tap_for_each_outcome, 30),
          TEST_ENTRY(selects_cases_by_name),
          TEST_ENTRY(a_skipped_case_says_why),
          TEST_ENTRY(lists_and_rejects_unknown_names))
