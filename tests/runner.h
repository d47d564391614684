/* runner.h - the test harness: one process per case, a timeout per case,
 * TAP output, the case's output shown only when it fails. */
#ifndef BH_TEST_RUNNER_H
#define BH_TEST_RUNNER_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct bh_test {
  const char *name;
  int (*fn)(void);
  int timeout_s; /* 0: 5 s; scaled by BH_TEST_TIMEOUT_MULT */
} bh_test;

/* T_ASAN is defined in a build with AddressSanitizer (GCC's or clang's),
 * for the cases where it takes a fault over, or keeps stacks of its own. */
#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif

#define TEST(name) static int test_##name(void)
#define TEST_ENTRY(name) {#name, test_##name, 0}
#define TEST_ENTRY_T(name, secs) {#name, test_##name, (secs)}

/* A case that cannot run here (no root, a tool missing) says why and
 * returns TEST_SKIPPED: TAP "ok N - name # SKIP why", its last line of
 * output as the why. A run whose every case skipped exits TEST_SKIPPED,
 * which ctest reports as skipped (SKIP_RETURN_CODE). */
#define TEST_SKIPPED 77
#define SKIP(...)                                                            \
  do {                                                                       \
    fprintf(stderr, __VA_ARGS__);                                            \
    fputc('\n', stderr);                                                     \
    return TEST_SKIPPED;                                                     \
  } while (0)

#define ASSERT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__,   \
              #cond);                                                        \
      return 1;                                                              \
    }                                                                        \
  } while (0)

#define ASSERT_INT_EQ(a, b)                                                  \
  do {                                                                       \
    long long a_ = (long long)(a), b_ = (long long)(b);                      \
    if (a_ != b_) {                                                          \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,    \
              __LINE__, #a, #b, a_, b_);                                     \
      return 1;                                                              \
    }                                                                        \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                                  \
  do {                                                                       \
    const char *a_ = (a), *b_ = (b);                                         \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                   \
      fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n",          \
              __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)",                \
              b_ ? b_ : "(null)");                                           \
      return 1;                                                              \
    }                                                                        \
  } while (0)

/* Runs every test (or those named on the command line) each in a forked
 * child with its timeout; prints TAP; returns the process exit status (0,
 * 1 when a case failed, TEST_SKIPPED when every case skipped).
 * `--list` prints the names. */
int bh_test_main(int argc, char **argv, const bh_test *tests);

/* Waits for child process pid: its exit status, 128 + the signal that
 * killed it (as a shell says), or -1. */
int bh_test_exit_code(int pid);

#define TEST_MAIN(...)                                                       \
  int main(int argc, char **argv) {                                          \
    static const bh_test tests_[] = {__VA_ARGS__, {NULL, NULL, 0}};          \
    return bh_test_main(argc, argv, tests_);                                 \
  }

/* The same for a test program that exec-started workers run too: it first
 * becomes the worker of class `worker` when it is one (bh_worker_main). */
#define TEST_MAIN_WORKER(worker, ...)                                        \
  int main(int argc, char **argv) {                                          \
    static const bh_class *const classes_[] = {&(worker), NULL};             \
    static const bh_test tests_[] = {__VA_ARGS__, {NULL, NULL, 0}};          \
    bh_worker_main(argc, argv, classes_);                                    \
    return bh_test_main(argc, argv, tests_);                                 \
  }

#endif
