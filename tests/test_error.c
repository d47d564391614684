/* test_error.c - error texts and names, bh_version(), BH_ASSERT. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "base/base.h"
#include "runner.h"

TEST(every_code_has_its_text_and_name) {
#define XX(name, value, text)                                                  \
  ASSERT_INT_EQ(BH_##name, value);                                             \
  ASSERT_STR_EQ(bh_strerror(value), text);                                     \
  ASSERT_STR_EQ(bh_err_name(value), "BH_" #name);
  BH_ERRNO_MAP(XX)
#undef XX
  return 0;
}

TEST(codes_are_negative_and_distinct) {
  static const int codes[] = {
#define XX(name, value, text) value,
      BH_ERRNO_MAP(XX)
#undef XX
  };
  size_t i, j, n = sizeof(codes) / sizeof(codes[0]);

  for (i = 0; i < n; i++) {
    ASSERT(codes[i] < 0);
    for (j = i + 1; j < n; j++)
      ASSERT(codes[i] != codes[j]);
  }
  return 0;
}

/* The OS-level codes are -errno, so they equal libuv's. */
TEST(os_codes_match_errno_and_libuv) {
  ASSERT_INT_EQ(BH_EINVAL, -EINVAL);
  ASSERT_INT_EQ(BH_ENOMEM, -ENOMEM);
  ASSERT_INT_EQ(BH_EPIPE, UV_EPIPE);
  ASSERT_INT_EQ(BH_EMSGSIZE, -EMSGSIZE);
  ASSERT_INT_EQ(BH_EPROTO, UV_EPROTO);
  ASSERT_INT_EQ(BH_ETIMEDOUT, UV_ETIMEDOUT);
  return 0;
}

/* One cancellation code: the old spelling is a deprecated alias of it. */
TEST(one_cancellation_code) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  ASSERT_INT_EQ(BH_ECANCELED, BH_ECANCELLED);
#pragma GCC diagnostic pop
  ASSERT_STR_EQ(bh_err_name(BH_ECANCELLED), "BH_ECANCELLED");
  ASSERT_STR_EQ(bh_err_name(UV_ECANCELED), "UV_ECANCELED");
  return 0;
}

/* -ENOENT is an errno like any other: what a handler's open() said, never
 * a task name. The library's own "no such task" has a code of its own. */
TEST(enoent_is_an_errno_and_no_task_is_ours) {
  ASSERT_STR_EQ(bh_strerror(-ENOENT), "no such file or directory");
  ASSERT_STR_EQ(bh_err_name(-ENOENT), "UV_ENOENT");
  ASSERT_STR_EQ(bh_strerror(BH_ENOTASK), "no such task");
  ASSERT_STR_EQ(bh_err_name(BH_ENOTASK), "BH_ENOTASK");
  ASSERT(BH_ENOTASK < -30000);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  ASSERT_INT_EQ(BH_ENOENT, -ENOENT);
#pragma GCC diagnostic pop
  return 0;
}

/* A handler's bare return code as the exception its caller sees. */
TEST(return_codes_read_as_exceptions) {
  const char *type;
  char *msg;

  msg = bh__code_error(-ENOENT, &type);
  ASSERT_STR_EQ(type, "OSError");
  ASSERT_STR_EQ(msg, "ENOENT: No such file or directory (errno 2)");
  bh__free(msg);
  msg = bh__code_error(-EACCES, &type);
  ASSERT_STR_EQ(type, "OSError");
  ASSERT_STR_EQ(msg, "EACCES: Permission denied (errno 13)");
  bh__free(msg);
  msg = bh__code_error(BH_ETIMEDOUT, &type);
  ASSERT_STR_EQ(type, "BH_ETIMEDOUT");
  ASSERT_STR_EQ(msg, "timed out");
  bh__free(msg);
  msg = bh__code_error(BH_ENOTASK, &type);
  ASSERT_STR_EQ(type, "BH_ENOTASK");
  bh__free(msg);
  msg = bh__code_error(7, &type);
  ASSERT_STR_EQ(type, "TaskError");
  ASSERT_STR_EQ(msg, "The task returned 7, which is no error code: a "
                     "handler returns 0, a BH_E* code or -errno.");
  bh__free(msg);
  msg = bh__code_error(-29999, &type);
  ASSERT_STR_EQ(type, "TaskError");
  bh__free(msg);
  return 0;
}

/* The library's own files relative to its source tree; others as they
 * are. */
TEST(source_paths_are_relative) {
  char path[4096];
  size_t n = strlen(BH_TEST_SRC_DIR) - strlen("tests");

  snprintf(path, sizeof(path), "%.*ssrc/hive/task.c", (int)n, BH_TEST_SRC_DIR);
  ASSERT_STR_EQ(bh__src_path(path), "src/hive/task.c");
  ASSERT_STR_EQ(bh__src_path("/elsewhere/src/hive/task.c"),
                "/elsewhere/src/hive/task.c");
  ASSERT_STR_EQ(bh__src_path("worker.c"), "worker.c");
  return 0;
}

TEST(other_os_and_libuv_codes) {
  ASSERT_STR_EQ(bh_strerror(UV_EACCES), "permission denied");
  ASSERT_STR_EQ(bh_err_name(-EACCES), "UV_EACCES");
  ASSERT_STR_EQ(bh_strerror(UV_EOF), "end of file");
  ASSERT_STR_EQ(bh_err_name(UV_EOF), "UV_EOF");
  ASSERT_STR_EQ(bh_err_name(UV_EAI_NONAME), "UV_EAI_NONAME");
  /* An errno libuv has no name for: the C library's text (C locale). */
  ASSERT_STR_EQ(bh_strerror(-EKEYREVOKED), strerror(EKEYREVOKED));
  ASSERT_STR_EQ(bh_err_name(-EKEYREVOKED), "EKEYREVOKED");
  return 0;
}

TEST(unknown_codes) {
  static const int bad[] = {-29999, -30000, -30999, 1, 42, INT_MAX, INT_MIN};
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ASSERT_STR_EQ(bh_strerror(bad[i]), "unknown error");
    ASSERT_STR_EQ(bh_err_name(bad[i]), "BH_UNKNOWN");
  }
  ASSERT_STR_EQ(bh_strerror(0), "success");
  ASSERT_STR_EQ(bh_err_name(0), "BH_OK");
  return 0;
}

TEST(version) {
  char want[32];

  snprintf(want, sizeof(want), "%d.%d.%d", BH_VERSION_MAJOR, BH_VERSION_MINOR,
           BH_VERSION_PATCH);
  ASSERT_STR_EQ(bh_version(), want);
  return 0;
}

/* Forks a child that fails BH_ASSERT with stderr on `wfd`; sets `line` to
 * the source line, which is the same for the whole macro. */
#define FORK_FAILING_ASSERT(pid, wfd, line)                                    \
  do {                                                                         \
    line = __LINE__;                                                           \
    pid = fork();                                                              \
    if (pid == 0) {                                                            \
      dup2(wfd, STDERR_FILENO);                                                \
      BH_ASSERT(1 + 1 == 3);                                                   \
      _exit(0);                                                                \
    }                                                                          \
  } while (0)

TEST(assert_aborts_with_file_and_line) {
  char msg[512] = {0}, want[256];
  int fds[2], status, line;
  ssize_t n, got = 0;
  pid_t pid;

  ASSERT(pipe(fds) == 0);
  FORK_FAILING_ASSERT(pid, fds[1], line);
  ASSERT(pid > 0);
  close(fds[1]);
  while ((n = read(fds[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0)
    got += n;
  close(fds[0]);
  ASSERT(waitpid(pid, &status, 0) == pid);
  ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  /* Relative to the source tree, not where the tree was built. */
  snprintf(want, sizeof(want),
           "tests/test_error.c:%d: assertion failed: 1 + 1 == 3", line);
  ASSERT(strncmp(msg, want, strlen(want)) == 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(every_code_has_its_text_and_name),
          TEST_ENTRY(codes_are_negative_and_distinct),
          TEST_ENTRY(os_codes_match_errno_and_libuv), TEST_ENTRY(one_cancellation_code),
          TEST_ENTRY(enoent_is_an_errno_and_no_task_is_ours),
          TEST_ENTRY(return_codes_read_as_exceptions),
          TEST_ENTRY(source_paths_are_relative),
          TEST_ENTRY(other_os_and_libuv_codes), TEST_ENTRY(unknown_codes),
          TEST_ENTRY(version), TEST_ENTRY(assert_aborts_with_file_and_line))
