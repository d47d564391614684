/* test_file.c - bh_file_read on libuv's thread pool: whole files, ranges,
 * errors naming the path, and a read that blocks (a FIFO without a
 * writer) stalls neither the bee's other tasks nor a cancellation. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "base/base.h"
#include "runner.h"

static char dir[] = "/tmp/bh_test_file_XXXXXX";

static const char *
in_dir(const char *name) {
  static char p[8][300];
  static int i;
  char *s = p[i++ % 8];

  snprintf(s, 300, "%s/%s", dir, name);
  return s;
}

/* [path, offset, max] -> the bytes, or [code, message] when it fails. */
static int
rd(bh_task *t) {
  char path[300];
  int64_t off, max;
  void *data;
  size_t len;
  int rc;

  if (bh_task_unpack(t, "[s I I]", path, sizeof(path), &off, &max) != 0)
    return BH_ERAISED;
  rc = bh_file_read(t, path, off, (size_t)max, &data, &len);
  if (rc != 0)
    return rc == BH_ECANCELLED
               ? rc
               : bh_return(t, "[i s]", rc, bh_task_errmsg(t));
  rc = bh_return(t, "y#", data, len);
  bh_file_free(data);
  return rc;
}

static int
quick(bh_task *t) {
  return bh_return(t, "s", "quick");
}

static const bh_task_def wtasks[] = {
    {"rd", rd}, {"quick", quick}, {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = wtasks};

/* [fifo]: "rd" of the FIFO (its open blocks on the pool: no writer yet)
 * and "quick" at once, to the same worker. quick must answer first; then
 * the queen writes the FIFO and the read completes. Returns [first
 * answer's task, read bytes]. */
static int
blocked(bh_task *t) {
  char fifo[300];
  bh_group *g = bh_group_new(t);
  bh_future *f, *fr;
  char first[16] = "";
  const void *b;
  size_t n;
  int fd, rc;

  if (bh_task_unpack(t, "[s]", fifo, sizeof(fifo)) != 0)
    return BH_ERAISED;
  bh_group_delegate(g, &fr, NULL, "rd", "[s I I]", fifo, (int64_t)0,
                    (int64_t)0);
  bh_group_delegate(g, NULL, NULL, "quick", NULL);
  if ((rc = bh_group_next(g, &f, -1)) != 0)
    return rc;
  snprintf(first, sizeof(first), "%s",
           f == fr ? "rd" : "quick");
  if (f != fr)
    bh_future_free(f);
  /* Polls for a condition, not for time: the FIFO takes a writer only
   * once the read on the pool thread has opened it (ENXIO before). */
  while ((fd = open(fifo, O_WRONLY | O_NONBLOCK)) < 0)
    if ((rc = bh_sleep(t, 1)) != 0)
      return rc;
  rc = write(fd, "fifo!", 5) == 5 ? 0 : BH_EPIPE;
  close(fd);
  if (rc == 0 && (rc = bh_future_wait(fr, -1)) == 0)
    rc = bh_result_unpack(bh_future_result(fr), NULL, 0, "y#", &b, &n);
  if (rc == 0)
    rc = bh_return(t, "[s y#]", first, b, n);
  bh_future_free(fr);
  bh_group_free(g);
  return rc;
}

/* [fifo]: "rd" of the FIFO with a 200 ms deadline: cancelled though its
 * open blocks; then the pool thread is freed by a writer. Returns the
 * status and how long it took. */
static int
cancelled(bh_task *t) {
  char fifo[300];
  bh_group *g = bh_group_new(t);
  bh_deleg_opts d = {.timeout_ms = 200};
  int64_t t0 = bh_now();
  bh_future *f;
  int fd, rc, st;

  if (bh_task_unpack(t, "[s]", fifo, sizeof(fifo)) != 0)
    return BH_ERAISED;
  bh_group_set_opts(g, &d);
  bh_group_delegate(g, &f, NULL, "rd", "[s I I]", fifo, (int64_t)0,
                    (int64_t)0);
  rc = bh_future_wait(f, -1);
  st = (int)bh_result_status(bh_future_result(f));
  bh_future_free(f);
  if ((fd = open(fifo, O_WRONLY | O_NONBLOCK)) >= 0)
    close(fd); /* lets the pool thread's open return */
  bh_group_free(g);
  return rc != 0 ? rc : bh_return(t, "[i I]", st, bh_now() - t0);
}

/* Calls that cannot be: BH_EINVAL each, *data NULL. Returns the codes
 * for a NULL t, path, data and len, and a negative offset. */
static int
misuse(bh_task *t) {
  void *data = (void *)&data;
  size_t len;
  int c[5];

  c[0] = bh_file_read(NULL, "/x", 0, 0, &data, &len);
  c[1] = bh_file_read(t, NULL, 0, 0, &data, &len);
  c[2] = bh_file_read(t, "/x", 0, 0, NULL, &len);
  c[3] = bh_file_read(t, "/x", 0, 0, &data, NULL);
  c[4] = bh_file_read(t, "/x", -1, 0, &data, &len);
  return bh_return(t, "[i i i i i b]", c[0], c[1], c[2], c[3], c[4],
                   data == NULL);
}

static const bh_task_def qtasks[] = {{"seq", fixture_script},
                                     {"misuse", misuse},
                                     {"blocked", blocked},
                                     {"cancelled", cancelled},
                                     {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = qtasks};

static int
hive(const char *task, bh_value *args, bh_result **r) {
  bh_run_opts o = {.queen_class = &queen, .worker_class = &worker,
                   .task_name = task, .task_args = args, .workers = 1,
                   .min_workers = 1, .max_workers = 1, .kill_grace_ms = 60000};
  int rc = run_hive(&o, r);

  bh_value_free(args);
  return rc;
}

static int
setup(void) {
  FILE *f;

  if (mkdtemp(dir) == NULL || (f = fopen(in_dir("a"), "w")) == NULL)
    return -1;
  fputs("0123456789", f);
  fclose(f);
  return mkfifo(in_dir("fifo"), 0600);
}

static void
cleanup(void) {
  unlink(in_dir("a"));
  unlink(in_dir("fifo"));
  rmdir(dir);
}

TEST(whole_ranges_and_errors) {
  bh_result *r;
  const msgpack_object *v;
  const void *b;
  size_t n;
  char msg[512];
  int code;

  ASSERT_INT_EQ(setup(), 0);
  ASSERT_INT_EQ(hive("seq", bh_value_pack(NULL, "[[[s[s I I]] [s[s I I]] "
                                                "[s[s I I]] [s[s I I]]]]",
                                          "rd", in_dir("a"), (int64_t)0,
                                          (int64_t)0, "rd", in_dir("a"),
                                          (int64_t)3, (int64_t)4, "rd",
                                          in_dir("a"), (int64_t)8,
                                          (int64_t)100, "rd",
                                          in_dir("nothing"), (int64_t)0,
                                          (int64_t)0),
                     &r),
                0);
  v = bh_result_value(r);
  {
    char repr[1024];

    bh_value_repr(v, repr, sizeof(repr));
    fprintf(stderr, "result: %s\n", repr);
  }
  ASSERT_INT_EQ(v->via.array.size, 4);
  ASSERT_INT_EQ(bh_unpack(&v->via.array.ptr[0], NULL, 0, "y#", &b, &n), 0);
  ASSERT(n == 10 && memcmp(b, "0123456789", 10) == 0);
  ASSERT_INT_EQ(bh_unpack(&v->via.array.ptr[1], NULL, 0, "y#", &b, &n), 0);
  ASSERT(n == 4 && memcmp(b, "3456", 4) == 0);
  ASSERT_INT_EQ(bh_unpack(&v->via.array.ptr[2], NULL, 0, "y#", &b, &n), 0);
  ASSERT(n == 2 && memcmp(b, "89", 2) == 0);
  ASSERT_INT_EQ(bh_unpack(&v->via.array.ptr[3], NULL, 0, "[i s]", &code, msg,
                          sizeof(msg)),
                0);
  ASSERT_INT_EQ(code, -ENOENT);
  ASSERT(strstr(msg, "No such file or directory: ") == msg);
  ASSERT(strstr(msg, "/nothing (open)") != NULL);
  bh_result_free(r);
  cleanup();
  return 0;
}

TEST(a_blocked_read_does_not_stall_the_bee) {
  bh_result *r;
  char first[16];
  const void *b;
  size_t n;

  ASSERT_INT_EQ(setup(), 0);
  ASSERT_INT_EQ(hive("blocked", bh_value_pack(NULL, "[s]", in_dir("fifo")),
                     &r),
                0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[s y#]", first, sizeof(first),
                                 &b, &n),
                0);
  ASSERT_STR_EQ(first, "quick");
  ASSERT(n == 5 && memcmp(b, "fifo!", 5) == 0);
  bh_result_free(r);
  cleanup();
  return 0;
}

TEST(a_blocked_read_is_cancelled_at_once) {
  bh_result *r;
  int64_t took;
  int st;

  ASSERT_INT_EQ(setup(), 0);
  ASSERT_INT_EQ(hive("cancelled", bh_value_pack(NULL, "[s]", in_dir("fifo")),
                     &r),
                0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i I]", &st, &took), 0);
  ASSERT_INT_EQ(st, BH_CANCELLED);
  ASSERT(took >= 200 && took < 5000);
  bh_result_free(r);
  cleanup();
  return 0;
}

TEST(calls_that_cannot_be_are_einval) {
  bh_result *r;
  int c[5], cleared;

  ASSERT_INT_EQ(hive("misuse", NULL, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i i i i b]", &c[0], &c[1],
                                 &c[2], &c[3], &c[4], &cleared), 0);
  bh_result_free(r);
  ASSERT_INT_EQ(c[0], BH_EINVAL);
  ASSERT_INT_EQ(c[1], BH_EINVAL);
  ASSERT_INT_EQ(c[2], BH_EINVAL);
  ASSERT_INT_EQ(c[3], BH_EINVAL);
  ASSERT_INT_EQ(c[4], BH_EINVAL);
  ASSERT(cleared);
  return 0;
}

TEST_MAIN(TEST_ENTRY(calls_that_cannot_be_are_einval),
          TEST_ENTRY_T(whole_ranges_and_errors, 20),
          TEST_ENTRY_T(a_blocked_read_does_not_stall_the_bee, 20),
          TEST_ENTRY_T(a_blocked_read_is_cancelled_at_once, 20))
