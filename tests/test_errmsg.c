/* test_errmsg.c - what a user reads when something goes wrong in a hive:
 * an errno a handler returns, a task name with a typo, a format the
 * library refuses, a frame over the size limit, and the frames a
 * traceback shows (the caller's, and the library's relative to its
 * source tree). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fixture.h"
#include "base/base.h"
#include "runner.h"

/* ---- worker tasks ------------------------------------------------------ */

static int
w_echo(bh_task *t) {
  return bh_return_object(t, bh_task_args(t));
}

/* Passes on what open() said, as a handler may. */
static int
w_errno(bh_task *t) {
  int fd = open("/nonexistent-beehive/file", O_RDONLY);

  (void)t;
  if (fd >= 0)
    close(fd);
  return fd < 0 ? -errno : 0;
}

/* Returns the code of a bh_return that refused its format, as it is. */
static int
w_bad_return(bh_task *t) {
  return bh_return(t, "[x]", 1);
}

static int
w_want_str(bh_task *t) {
  char s[8];

  if (bh_task_unpack(t, "[s]", s, sizeof(s)) != 0)
    return BH_ERAISED;
  return 0;
}

static int
w_bad_unpack(bh_task *t) {
  char s[8];

  return bh_task_unpack(t, "[s", s, sizeof(s));
}

static int
w_big(bh_task *t) {
  static char big[100 << 10];

  return bh_return(t, "y#", big, sizeof(big));
}

static const bh_task_def worker_tasks[] = {
    {"echo", w_echo}, {"errno", w_errno}, {"bad_return", w_bad_return},
    {"want_str", w_want_str}, {"bad_unpack", w_bad_unpack}, {"big", w_big},
    {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = worker_tasks};

/* ---- queen tasks ------------------------------------------------------- */

/* The lines of the calls below: the queen runs in the test's process. */
static int typo_line, group_typo_line, bad_format_line;

/* A near miss of a worker's task, alone and in a group: [code, group's
 * code, child id, type, message, the chain, errmsg, delegations sent]. */
static int
q_typo(bh_task *t) {
  bh_group *g = bh_group_new(t);
  char text[2048];
  bh_result *r;
  bh_stats st;
  int rc, grc;

  typo_line = __LINE__ + 1;
  rc = bh_delegate(t, &r, "ecko", "[I]", (int64_t)1);
  grc = bh_group_delegate(g, NULL, NULL, "Echo", NULL);
  bh_result_format(r, text, sizeof(text));
  bh_bee_stats(bh_task_bee(t), &st);
  rc = bh_return(t, "[i i I s s s s U]", rc, grc, bh_result_child_id(r),
                 bh_result_errtype(r), bh_result_errmsg(r), text,
                 bh_task_errmsg(t), st.delegated);
  bh_result_free(r);
  bh_group_free(g);
  return rc;
}

/* Returns the group's refusal as it is: it raises from this frame. */
static int
q_group_typo(bh_task *t) {
  bh_group *g = bh_group_new(t);
  int rc;

  group_typo_line = __LINE__ + 1;
  rc = bh_group_delegate(g, NULL, NULL, "ecko", "[I]", (int64_t)1);
  bh_group_free(g);
  return rc;
}

/* [code, message, the chain, group's code, errmsg] of two formats the
 * library refuses: a bad letter, and a call that is no "[...]". */
static int
q_bad_format(bh_task *t) {
  bh_group *g = bh_group_new(t);
  char text[2048];
  bh_result *r;
  int rc, grc;

  bad_format_line = __LINE__ + 1;
  rc = bh_delegate(t, &r, "echo", "[x]", 1);
  grc = bh_group_delegate(g, NULL, NULL, "echo", "i", 1);
  bh_result_format(r, text, sizeof(text));
  rc = bh_return(t, "[i s s i s]", rc, bh_result_errmsg(r), text, grc,
                 bh_task_errmsg(t));
  bh_result_free(r);
  bh_group_free(g);
  return rc;
}

static const bh_task_def queen_tasks[] = {{"pass", fixture_pass},
                                          {"typo", q_typo},
                                          {"group_typo", q_group_typo},
                                          {"bad_format", q_bad_format},
                                          {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = queen_tasks,
                               .worker_class = &worker, .workers = 1};

/* ---- helpers ----------------------------------------------------------- */

/* Runs task `name` of the queen with args `a` (taken). */
static int
run(bh_result **out, const char *name, bh_value *a, size_t max_frame) {
  bh_run_opts o = {.queen_class = &queen, .task_name = name,
                   .task_args = a, .max_frame = max_frame};
  int rc = bh_run(&o, out);

  bh_value_free(a);
  return rc;
}

static bool
contains(const char *hay, const char *needle) {
  if (hay != NULL && strstr(hay, needle) != NULL)
    return true;
  fprintf(stderr, "no \"%s\" in \"%s\"\n", needle, hay ? hay : "(null)");
  return false;
}

/* "line N, in fn" as a traceback frame of this file says it. */
static const char *
frame(int line, const char *fn) {
  static char buf[128];

  snprintf(buf, sizeof(buf), "test_errmsg.c\", line %d, in %s", line, fn);
  return buf;
}

/* ---- tests ------------------------------------------------------------- */

/* -ENOENT from a handler is what its open() said, not "no such task". */
TEST(an_errno_reads_as_oserror) {
  bh_result *r;

  ASSERT_INT_EQ(run(&r, "pass", bh_value_pack(NULL, "[s]", "errno"), 0),
                BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "OSError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r),
                "ENOENT: No such file or directory (errno 2)");
  bh_result_free(r);
  return 0;
}

/* A queen knows her workers' class: a name it lacks fails at once, with
 * the nearest name, from the caller's line, and nothing is sent. */
TEST(a_typo_fails_at_once_with_a_suggestion) {
  char type[64], msg[256], text[2048], errmsg[256];
  int rc, grc;
  int64_t child;
  uint64_t sent;
  bh_result *r;

  ASSERT_INT_EQ(run(&r, "typo", NULL, 0), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i I s s s s U]", &rc, &grc,
                                 &child, type, sizeof(type), msg, sizeof(msg),
                                 text, sizeof(text), errmsg, sizeof(errmsg),
                                 &sent),
                0);
  ASSERT_INT_EQ(rc, BH_ENOTASK);
  ASSERT_INT_EQ(grc, BH_ENOTASK);
  ASSERT_INT_EQ(child, -1);
  ASSERT_INT_EQ(sent, 0);
  ASSERT_STR_EQ(type, "AttributeError");
  ASSERT(contains(msg, "Bee class 'W' has no task 'ecko'. Did you mean "
                       "'echo'?"));
  ASSERT(contains(text, frame(typo_line, "q_typo")));
  ASSERT(contains(text, "in task 'typo' (id 0) of bee 10000 (class Q)"));
  /* A change of case is the nearest of near misses. */
  ASSERT(contains(errmsg, "Bee class 'W' has no task 'Echo'. Did you mean "
                          "'echo'?"));
  bh_result_free(r);
  return 0;
}

TEST(a_group_refusal_returned_raises_from_the_caller) {
  char text[2048];
  bh_result *r;

  ASSERT_INT_EQ(run(&r, "group_typo", NULL, 0), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_errtype(r), "AttributeError");
  ASSERT_STR_EQ(bh_result_errmsg(r),
                "Bee class 'W' has no task 'ecko'. Did you mean 'echo'?");
  bh_result_format(r, text, sizeof(text));
  ASSERT(contains(text, frame(group_typo_line, "q_group_typo")));
  bh_result_free(r);
  return 0;
}

/* Without a near name, no suggestion; and in the worker (the root does not
 * know the queen's class) the same words, with no frame of the library. */
TEST(worker_side_names_the_nearest_task_too) {
  char text[2048];
  bh_result *r;

  ASSERT_INT_EQ(run(&r, "pas", NULL, 0), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_errtype(r), "AttributeError");
  ASSERT_STR_EQ(bh_result_errmsg(r),
                "Bee class 'Q' has no task 'pas'. Did you mean 'pass'?");
  bh_result_format(r, text, sizeof(text));
  ASSERT(strstr(text, "File ") == NULL);
  bh_result_free(r);
  ASSERT_INT_EQ(run(&r, "pass", bh_value_pack(NULL, "[s]", "zzz"), 0),
                BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "Bee class 'W' has no task 'zzz'.");
  bh_result_free(r);
  return 0;
}

TEST(a_refused_format_says_what_is_wrong) {
  char msg[256], text[2048], errmsg[256];
  int rc, grc;
  bh_result *r;

  ASSERT_INT_EQ(run(&r, "bad_format", NULL, 0), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i s s i s]", &rc, msg,
                                 sizeof(msg), text, sizeof(text), &grc,
                                 errmsg, sizeof(errmsg)),
                0);
  ASSERT_INT_EQ(rc, BH_EFORMAT);
  ASSERT(contains(msg, "bh_delegate: format \"[x]\": unknown letter 'x' at "
                       "1"));
  ASSERT(contains(text, frame(bad_format_line, "q_bad_format")));
  ASSERT_INT_EQ(grc, BH_EFORMAT);
  ASSERT(contains(errmsg, "bh_group_delegate: format \"i\": the arguments "
                          "are \"[...]\", optionally followed by \"{...}\" "
                          "for kwargs"));
  bh_result_free(r);
  return 0;
}

/* bh_return's refusal, returned as it is, raises from the worker's line;
 * so does bh_task_unpack's TypeError: the user's frames, not the
 * library's. */
TEST(errors_raise_from_the_callers_frame) {
  char text[4096];
  bh_result *r;

  ASSERT_INT_EQ(run(&r, "pass", bh_value_pack(NULL, "[s]", "bad_return"), 0),
                BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r),
                "bh_return: format \"[x]\": unknown letter 'x' at 1");
  bh_result_format(r, text, sizeof(text));
  ASSERT(contains(text, "test_errmsg.c\", line "));
  ASSERT(contains(text, ", in w_bad_return"));
  bh_result_free(r);
  ASSERT_INT_EQ(run(&r, "pass", bh_value_pack(NULL, "[s I]", "want_str",
                                              (int64_t)5), 0),
                BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "args[0]: expected str, got int");
  bh_result_format(r, text, sizeof(text));
  ASSERT(contains(text, ", in w_want_str"));
  ASSERT(strstr(text, "task_api.c") == NULL);
  bh_result_free(r);
  ASSERT_INT_EQ(run(&r, "pass", bh_value_pack(NULL, "[s]", "bad_unpack"), 0),
                BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r),
                "bh_task_unpack: format \"[s\": unclosed '[' at 0");
  bh_result_format(r, text, sizeof(text));
  ASSERT(contains(text, ", in w_bad_unpack"));
  bh_result_free(r);
  return 0;
}

/* A frame over max_frame: its size, the limit, and both ways out. */
TEST(frame_size_errors_give_sizes_and_remedies) {
  static char big[100 << 10];
  bh_result *r;

  ASSERT_INT_EQ(run(&r, "pass", bh_value_pack(NULL, "[s]", "big"), 64 << 10),
                BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "FrameSizeError");
  ASSERT(contains(bh_result_root_errmsg(r), "The task's result: a frame of "
                                            "1024"));
  ASSERT(contains(bh_result_root_errmsg(r), "bytes, over the limit of 65536 "
                                            "(max_frame). Raise max_frame"));
  ASSERT(contains(bh_result_root_errmsg(r), "as a bin (y#) of at least "));
  bh_result_free(r);
  ASSERT_INT_EQ(run(&r, "pass",
                    bh_value_pack(NULL, "[s y#]", "echo", big, sizeof(big)),
                    64 << 10),
                BH_ERAISED);
  ASSERT_STR_EQ(bh_result_root_errtype(r), "FrameSizeError");
  ASSERT(contains(bh_result_root_errmsg(r), "The task's arguments: a frame "
                                            "of 1024"));
  bh_result_free(r);
  return 0;
}

TEST_MAIN(TEST_ENTRY(an_errno_reads_as_oserror),
          TEST_ENTRY(a_typo_fails_at_once_with_a_suggestion),
          TEST_ENTRY(a_group_refusal_returned_raises_from_the_caller),
          TEST_ENTRY(worker_side_names_the_nearest_task_too),
          TEST_ENTRY(a_refused_format_says_what_is_wrong),
          TEST_ENTRY(errors_raise_from_the_callers_frame),
          TEST_ENTRY(frame_size_errors_give_sizes_and_remedies))
