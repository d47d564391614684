/* test_death.c - a child's death and burial (src/hive/child.c, src/hive/stats.c):
 * the end of a worker's process is its death even while a process it
 * forked holds its channel open; what it wrote just before its end still
 * counts; a channel that closed before the kill says so in the cause; and
 * the records of dead workers are freed, so that memory stays flat over
 * 10,000 worker cycles. */
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "proto_fixture.h"

/* ------------------------------------------------------------------------
 * 1. A fake child hangs up its channel and lives on: the bee kills it, and
 * the cause says the channel closed first. */

static int
fk_hang_up(peer *p, void *arg) {
  (void)arg;
  if (take(p, 0, "job") != 0)
    return 1;
  close(p->fd);
  for (;;)
    pause(); /* until the bee kills it */
}

static int
root_hung_up(bh_task *t, void *arg) {
  const char *msg;
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), BH_ERAISED);
  msg = bh_result_root_errmsg(r);
  if (msg == NULL || strstr(msg, "its channel closed, then it was killed by "
                                  "signal SIGKILL (Killed)") == NULL) {
    fprintf(stderr, "cause: %s\n", msg ? msg : "(none)");
    bh_result_free(r);
    return 1;
  }
  bh_result_free(r);
  return 0;
}

TEST(channel_closed_then_killed) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_hang_up, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_hung_up, NULL), 0);
  ASSERT(fake_killed(&f, SIGKILL));
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 2. Last words. Child A writes its task_done and exits at once, while a
 * process it forked holds its channel open (no end of stream follows).
 * The bee must read that task_done before it mourns A.
 *
 * With SIGCHLD, libuv runs signal watchers after every other event of a
 * poll, and the bee then checks every child: so A is made to answer and
 * end from inside an event of the same poll as child B's end (B: no slot,
 * never offered anything). When the bee checks its children, A has ended
 * and its task_done has not been read yet. */

typedef struct last {
  uv_loop_t *loop;
  uv_poll_t kick;  /* the event in whose callback A answers and ends */
  pid_t a, b;
  int go_b[2];     /* root -> B: end now */
  int go_a[2];     /* kick -> A: answer and end */
  int kick_fd[2];  /* root -> kick */
  int has_info[2]; /* A -> root: I have the task_info */
  int hold[2];     /* A's grandchild holds A's channel until this ends */
} last;

static int
fk_quiet_end(peer *p, void *arg) {
  last *l = arg;

  (void)p;
  return wait_fd_byte(l->go_b[0]);
}

static int
fk_last_words(peer *p, void *arg) {
  last *l = arg;
  pid_t g;
  char c;

  if (take(p, 0, "job") != 0)
    return 1;
  g = fork();
  if (g == 0) { /* holds p->fd, inherited, until the test lets go */
    _exit(read(l->hold[0], &c, 1) < 0);
  }
  if (g < 0 || signal_fd(l->has_info[1]) != 0 ||
      wait_fd_byte(l->go_a[0]) != 0)
    return 1;
  return send_done_value(p, 0, "s", "last words"); /* then exits */
}

/* Waits until pid has ended, leaving it for the bee to reap. */
static int
await_end(pid_t pid) {
  siginfo_t si;

  while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) != 0)
    if (errno != EINTR)
      return -1;
  return 0;
}

/* Holds the loop inside this event until A has answered and ended. */
static void
kick_cb(uv_poll_t *h, int status, int events) {
  last *l = h->data;

  (void)status;
  (void)events;
  uv_close((uv_handle_t *)h, NULL);
  if (write(l->go_a[1], "!", 1) != 1 || await_end(l->a) != 0)
    fprintf(stderr, "could not let A end: %s\n", strerror(errno));
}

static int
root_last_words(bh_task *t, void *arg) {
  last *l = arg;
  bh_group *g = bh_group_new(t);
  bh_future *f;
  const bh_result *r;

  ASSERT_INT_EQ(bh_group_delegate(g, &f, NULL, "job", NULL), 0);
  ASSERT(bh_wait_fd(t, l->has_info[0], BH_READABLE, -1) > 0);
  ASSERT_INT_EQ(uv_poll_init(l->loop, &l->kick, l->kick_fd[0]), 0);
  l->kick.data = l;
  ASSERT_INT_EQ(uv_poll_start(&l->kick, UV_READABLE, kick_cb), 0);
  /* The loop waits for this fiber: B's end and the kick are both there
   * when it polls next. */
  ASSERT_INT_EQ(write(l->go_b[1], "!", 1), 1);
  ASSERT_INT_EQ(await_end(l->b), 0);
  ASSERT_INT_EQ(write(l->kick_fd[1], "!", 1), 1);
  ASSERT_INT_EQ(bh_future_wait(f, -1), 0);
  r = bh_future_result(f);
  ASSERT_INT_EQ(bh_result_status(r), BH_SUCCEEDED);
  ASSERT(same(bh_result_value(r), "s", "last words"));
  bh_future_free(f);
  bh_group_free(g);
  return 0;
}

static int
last_words_case(void) {
  last l;
  fake a, b;
  hive h;
  int keep_a[3], rc;

  ASSERT(pipe(l.go_b) == 0 && pipe(l.go_a) == 0 && pipe(l.has_info) == 0 &&
         pipe(l.hold) == 0 && pipe(l.kick_fd) == 0);
  keep_a[0] = l.go_a[0], keep_a[1] = l.has_info[1], keep_a[2] = l.hold[0];
  ASSERT_INT_EQ(fake_fork(&a, fk_last_words, &l, keep_a, 3), 0);
  ASSERT_INT_EQ(fake_fork(&b, fk_quiet_end, &l, &l.go_b[0], 1), 0);
  l.a = a.pid, l.b = b.pid;
  close(l.hold[0]);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  l.loop = &h.loop;
  ASSERT_INT_EQ(hive_adopt(&h, &a, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &b, 0), 0);
  rc = hive_run(&h, root_last_words, &l);
  close(l.hold[1]); /* A's grandchild may go */
  ASSERT_INT_EQ(rc, 0);
  ASSERT(fake_exited(&a, 0) && fake_exited(&b, 0));
  return hive_close(&h);
}

TEST(last_words_before_the_end_count) {
  return last_words_case();
}

/* The same where the bee watches its children by SIGCHLD, the case the
 * order of events above is made for (child.c reads BH_NO_PIDFD once, and
 * this case runs in a process of its own). */
TEST(last_words_before_the_end_count_sigchld) {
  setenv("BH_NO_PIDFD", "1", 1);
  return last_words_case();
}

/* ------------------------------------------------------------------------
 * A real hive for the rest. */

/* Forks a process that inherits the channel and blocks until the test
 * opens FIFO args[0] for writing (60 s at most), then aborts. */
static int
w_fork_crash(bh_task *t) {
  struct rlimit no_core = {0, 0};
  char fifo[128], c;
  pid_t g;

  if (bh_task_unpack(t, "[s]", fifo, sizeof(fifo)) != 0)
    return BH_ERAISED;
  g = fork();
  if (g == 0) {
    int fd;

    alarm(60);
    fd = open(fifo, O_RDONLY);
    _exit(fd < 0 || read(fd, &c, 1) < 0);
  }
  if (g < 0)
    return bh_raise(t, "OSError", "fork failed");
  setrlimit(RLIMIT_CORE, &no_core);
  abort();
}

static int
w_suicide(bh_task *t) {
  (void)t;
  kill(getpid(), SIGKILL);
  return 0;
}

static int
w_pid(bh_task *t) {
  return bh_return(t, "I", (int64_t)getpid());
}

static const bh_task_def wtasks[] = {{"fork_crash", w_fork_crash},
                                     {"suicide", w_suicide},
                                     {"pid", w_pid},
                                     {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = wtasks};

/* Delegates fork_crash, then pid. Returns [status, root error message, ms
 * until the crash was answered, the crashed worker's pid, pid's answer]. */
static int
q_crash(bh_task *t) {
  int64_t t0, took, pid0, pid1 = 0;
  char fifo[128], msg[512];
  bh_result *r;
  bh_stats st;
  int status;

  bh_task_unpack(t, "[s]", fifo, sizeof(fifo));
  bh_bee_stats(bh_task_bee(t), &st);
  pid0 = st.n_children == 1 ? st.children[0].pid : -1;
  t0 = bh_now();
  bh_delegate(t, &r, "fork_crash", "[s]", fifo);
  took = bh_now() - t0;
  status = (int)bh_result_status(r);
  snprintf(msg, sizeof(msg), "%s", bh_result_root_errmsg(r)
                                       ? bh_result_root_errmsg(r) : "");
  bh_result_free(r);
  if (bh_delegate(t, &r, "pid", NULL) == 0)
    bh_result_unpack(r, NULL, 0, "I", &pid1);
  bh_result_free(r);
  return bh_return(t, "[i s I I I]", status, msg, took, pid0, pid1);
}

/* Waits (1 ms at a time, 10 s at most) until the queen has one worker
 * alive and has spawned `spawned` in all: the worker cycle is over. */
static int
settle(bh_task *t, int64_t spawned) {
  bh_stats st;
  int i;

  for (i = 0; i < 10000; i++) {
    bh_bee_stats(bh_task_bee(t), &st);
    if (st.alive == 1 && (int64_t)st.spawned == spawned)
      return 0;
    bh_sleep(t, 1);
  }
  return -1;
}

static atomic_llong lib_bytes; /* in use through the library's hooks */

static int64_t
heap_bytes(void) {
  struct mallinfo2 mi = mallinfo2();

  return (int64_t)(mi.uordblks + mi.hblkhd);
}

/* 10,000 cycles, 1,000 under AddressSanitizer (a fork there costs ten
 * times more), or BH_TEST_CYCLES when above 200 (valgrind). */
static int64_t
cycles(void) {
  const char *e = getenv("BH_TEST_CYCLES");

  if (e != NULL && atoll(e) > 200)
    return atoll(e);
#ifdef __SANITIZE_ADDRESS__
  return 1000;
#else
  return 10000;
#endif
}

/* The cycle of the first measure: once the bounded records of the dead
 * (stats.c keeps 32) are full, and early enough to leave most cycles to
 * the second. */
static int64_t
first_measure(int64_t n) {
  return n / 10 > 100 ? n / 10 : 100;
}

/* What the cycles between the two measures may add: 64 KiB for 9,000 (7
 * bytes a cycle; before the records were freed, a cycle kept 257 to 765). */
static int64_t
flat_bound(int64_t n) {
  return (int64_t)(64 << 10) * (n - first_measure(n)) / 9000;
}

/* n worker cycles: odd ones a worker kills itself, even ones it answers
 * and is retired (recycle_after 1). Returns [library bytes, heap bytes]
 * after first_measure(n) cycles and after n, each once the cycle is over. */
static int
q_cycles(bh_task *t) {
  int64_t n, i, lib[2] = {0}, heap[2] = {0};
  bh_result *r;
  int k = 0;

  bh_task_unpack(t, "[I]", &n);
  for (i = 1; i <= n; i++) {
    bh_delegate(t, &r, i % 2 ? "suicide" : "pid", NULL);
    bh_result_free(r);
    if (i != first_measure(n) && i != n)
      continue;
    if (settle(t, i + 1) != 0)
      return bh_raise(t, "RuntimeError", "cycle %lld did not settle",
                      (long long)i);
    lib[k] = atomic_load(&lib_bytes);
    heap[k++] = heap_bytes();
  }
  return bh_return(t, "[I I I I]", lib[0], heap[0], lib[1], heap[1]);
}

static const bh_task_def qtasks[] = {
    {"crash", q_crash}, {"cycles", q_cycles}, {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = qtasks,
                               .worker_class = &worker};

static int
run(bh_run_opts *o, bh_result **out, const char *name, const char *fmt,
    ...) {
  va_list ap;
  int rc;

  o->queen_class = &queen;
  o->task_name = name;
  va_start(ap, fmt);
  o->task_args = bh_value_vpack(NULL, fmt, ap);
  va_end(ap);
  rc = bh_run(o, out);
  bh_value_free((bh_value *)o->task_args);
  return rc;
}

/* ------------------------------------------------------------------------
 * 3. A worker forks a process that inherits its channel, then crashes:
 * the crash answers the delegation at once (not when that process ends),
 * and a replacement serves the next task. */

TEST(crash_is_known_while_a_grandchild_holds_the_channel) {
  bh_run_opts o = {.workers = 1, .max_workers = 1};
  char fifo[128], msg[512];
  int64_t took, pid0, pid1;
  bh_result *r;
  int status, fd;

  snprintf(fifo, sizeof(fifo), "/tmp/bh_death_%d_%lld", (int)getpid(),
           (long long)bh_now());
  ASSERT(mkfifo(fifo, 0600) == 0);
  ASSERT_INT_EQ(run(&o, &r, "crash", "[s]", fifo), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i s I I I]", &status, msg,
                                 sizeof(msg), &took, &pid0, &pid1), 0);
  bh_result_free(r);
  /* The grandchild waits in open() until this open: it was alive, holding
   * the channel, all along. Then it goes. */
  fd = open(fifo, O_WRONLY);
  ASSERT(fd >= 0);
  close(fd);
  unlink(fifo);
  fprintf(stderr, "answered in %lld ms: %s\n", (long long)took, msg);
  ASSERT_INT_EQ(status, BH_RAISED);
  ASSERT(strstr(msg, "killed by signal SIGABRT") != NULL);
  ASSERT(took < 3000); /* it would be never, or 60 s, without the fix */
  ASSERT(pid0 > 0 && pid1 > 0 && pid1 != pid0);
  return 0;
}

/* ------------------------------------------------------------------------
 * 4. Memory stays flat over worker cycles: the records of dead and retired
 * workers are freed. Bytes are counted through the library's allocation
 * hooks, and in the whole heap (mallinfo2) where no sanitizer replaces the
 * allocator. */

static void *
count_malloc(size_t n) {
  void *p = malloc(n);

  if (p != NULL)
    atomic_fetch_add(&lib_bytes, (long long)malloc_usable_size(p));
  return p;
}

static void *
count_realloc(void *p, size_t n) {
  long long was = p != NULL ? (long long)malloc_usable_size(p) : 0;
  void *q = realloc(p, n);

  if (q != NULL)
    atomic_fetch_add(&lib_bytes, (long long)malloc_usable_size(q) - was);
  return q;
}

static void
count_free(void *p) {
  if (p != NULL)
    atomic_fetch_sub(&lib_bytes, (long long)malloc_usable_size(p));
  free(p);
}

TEST(worker_cycles_keep_memory_flat) {
  const bh_allocator counting = {count_malloc, count_realloc, count_free};
  bh_run_opts o = {.workers = 1, .max_workers = 1, .recycle_after = 1,
                   .max_restarts = 1000000, .restart_period_ms = 1000};
  int64_t lib0, heap0, lib1, heap1, n = cycles(), t0 = bh_now();
  bh_result *r;

  bh_set_allocator(&counting);
  ASSERT_INT_EQ(run(&o, &r, "cycles", "[I]", n), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I I I]", &lib0, &heap0,
                                 &lib1, &heap1), 0);
  bh_result_free(r);
  bh_set_allocator(NULL);
  fprintf(stderr, "%lld cycles in %lld ms; after %lld and %lld: library "
          "%lld -> %lld bytes, heap %lld -> %lld bytes\n", (long long)n,
          (long long)(bh_now() - t0), (long long)first_measure(n),
          (long long)n,
          (long long)lib0, (long long)lib1, (long long)heap0,
          (long long)heap1);
  ASSERT(lib1 - lib0 < flat_bound(n));
#ifndef __SANITIZE_ADDRESS__
  ASSERT(heap1 - heap0 < flat_bound(n));
#endif
  return 0;
}

TEST_MAIN(TEST_ENTRY(channel_closed_then_killed),
          TEST_ENTRY(last_words_before_the_end_count),
          TEST_ENTRY(last_words_before_the_end_count_sigchld),
          TEST_ENTRY(crash_is_known_while_a_grandchild_holds_the_channel),
          TEST_ENTRY_T(worker_cycles_keep_memory_flat, 200))
