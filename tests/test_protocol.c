/* test_protocol.c - the bee protocol, exactly, from both ends, against
 * scripted fake peers that speak raw frames.
 *
 * The delegating side (deleg.c, child.c): a root bee in this process
 * delegates from a local task to forked fake children. The child side
 * (bee.c): a real bee in this process is driven by a forked fake parent.
 *
 * A fake is a plain blocking program in a forked process: it reads frames,
 * checks each one against its script, answers with bh__wire_put_*, and
 * reports through its exit status (0: everything it saw was right; it says
 * what was wrong on stderr otherwise). Fakes are forked before any libuv
 * object exists in this process. Where an order between two peers matters,
 * they wait on a pipe for each other, never on time. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bee.h"
#include "runner.h"
#include "turn.h"

static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

/* ------------------------------------------------------------------------
 * Values. */

/* Renders o for messages (static buffer: one call per printf). */
static const char *
repr(const msgpack_object *o) {
  static char buf[2][512];
  static int i;

  i ^= 1;
  if (o == NULL)
    return "(absent)";
  bh_value_repr(o, buf[i], sizeof(buf[i]));
  return buf[i];
}

/* True if o equals the value `fmt` packs; says why not on stderr. */
static bool
same(const msgpack_object *o, const char *fmt, ...) {
  bh_value *want;
  va_list ap;
  bool eq;

  va_start(ap, fmt);
  want = bh_value_vpack(NULL, fmt, ap);
  va_end(ap);
  if (want == NULL) {
    fprintf(stderr, "cannot pack expected value \"%s\"\n", fmt);
    return false;
  }
  eq = o != NULL && msgpack_object_equal(*o, *bh_value_object(want));
  if (!eq)
    fprintf(stderr, "got %s, want %s\n", repr(o),
            repr(bh_value_object(want)));
  bh_value_free(want);
  return eq;
}

static bool
str_is(const msgpack_object *o, const char *s) {
  return o != NULL && o->type == MSGPACK_OBJECT_STR &&
         o->via.str.size == strlen(s) &&
         memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* True if o is a str containing `part`. */
static bool
str_has(const msgpack_object *o, const char *part) {
  char buf[1024];

  if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
      o->via.str.size >= sizeof(buf))
    return false;
  memcpy(buf, o->via.str.ptr, o->via.str.size);
  buf[o->via.str.size] = '\0';
  return strstr(buf, part) != NULL;
}

/* Follows a path of map keys from o; NULL if any is missing. */
static const msgpack_object *
dig(const msgpack_object *o, ...) {
  const char *key;
  va_list ap;

  va_start(ap, o);
  while (o != NULL && (key = va_arg(ap, const char *)) != NULL)
    o = bh__map_get(o, key);
  va_end(ap);
  return o;
}

/* ------------------------------------------------------------------------
 * A fake peer: blocking frame I/O on one end of a socketpair. */

typedef struct peer {
  int fd;
  bh__buf in;  /* bytes read and not yet taken as a frame */
  bh__buf cur; /* the body of the current message; p->m points in */
  msgpack_zone zone;
  bh__msg m;
} peer;

/* Says what went wrong in a fake, and evaluates to 1 (its failure). */
#define FAKE_FAIL(...)                                                       \
  (fprintf(stderr, "pid %d (line %d): ", (int)getpid(), __LINE__),          \
   fprintf(stderr, __VA_ARGS__), fputc('\n', stderr), 1)
#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    if (!(cond))                                                             \
      return FAKE_FAIL(__VA_ARGS__);                                         \
  } while (0)

static bool
frame_ready(const peer *p) {
  return p->in.len >= BH__FRAME_HDR &&
         p->in.len - BH__FRAME_HDR >=
             bh__wire_frame_len((const unsigned char *)p->in.data);
}

/* Reads what the socket holds (waiting if `wait`). Returns the byte count,
 * 0 at end of stream, -1 when nothing is there or on error. */
static ssize_t
fill(peer *p, bool wait) {
  ssize_t n;

  if (bh__buf_reserve(&p->in, 64 << 10) != 0)
    return -1;
  do
    n = recv(p->fd, p->in.data + p->in.len, p->in.cap - p->in.len,
             wait ? 0 : MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n > 0)
    p->in.len += (size_t)n;
  return n;
}

/* True if a whole message can be read without waiting. */
static bool
peer_ready(peer *p) {
  while (!frame_ready(p))
    if (fill(p, false) <= 0)
      return false;
  return true;
}

/* Reads the next message into p->m. Returns 0, or 1 (having said why) at
 * the end of the stream or for a frame that does not decode. */
static int
peer_recv(peer *p) {
  char err[160];
  size_t n;
  ssize_t k;

  while (!frame_ready(p)) {
    k = fill(p, true);
    CHECK(k != 0, "the stream ended where a message was expected");
    CHECK(k > 0, "read failed: %s", strerror(errno));
  }
  n = bh__wire_frame_len((const unsigned char *)p->in.data);
  p->cur.len = 0;
  CHECK(bh__buf_append(&p->cur, p->in.data + BH__FRAME_HDR, n) == 0, "oom");
  memmove(p->in.data, p->in.data + BH__FRAME_HDR + n,
          p->in.len - BH__FRAME_HDR - n);
  p->in.len -= BH__FRAME_HDR + n;
  msgpack_zone_clear(&p->zone);
  CHECK(bh__wire_decode(p->cur.data, n, &p->zone, &p->m, err,
                        sizeof(err)) == 0,
        "a frame that does not decode: %s", err);
  return 0;
}

/* Returns 0 if the stream ends here (nothing more, then EOF). */
static int
expect_eof(peer *p) {
  ssize_t k;

  CHECK(p->in.len == 0, "%zu bytes before the end", p->in.len);
  k = fill(p, true);
  CHECK(k == 0, "expected the end of the stream, got %zd bytes", k);
  return 0;
}

/* Writes all of data[0..n). */
static int
send_raw(peer *p, const void *data, size_t n) {
  const char *d = data;
  ssize_t k;

  while (n > 0) {
    k = send(p->fd, d, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    CHECK(k > 0, "write failed: %s", strerror(errno));
    d += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Sends the frames in b, then empties b. */
static int
send_buf(peer *p, bh__buf *b, int put_rc) {
  int rc;

  CHECK(put_rc == 0, "could not encode a frame: %s", bh_err_name(put_rc));
  rc = send_raw(p, b->data, b->len);
  bh__buf_free(b);
  return rc;
}

static int
send_simple(peer *p, bh__msg_type type, int64_t tid) {
  bh__buf b = {0};

  return send_buf(p, &b, bh__wire_put_simple(&b, BH__DEFAULT_MAX_FRAME, type,
                                             tid));
}

/* Sends a message whose whole body map `fmt` packs (any keys at all). */
static int
send_map(peer *p, const char *fmt, ...) {
  unsigned char hdr[BH__FRAME_HDR];
  bh_value *v;
  const char *data;
  size_t n;
  va_list ap;
  int rc;

  va_start(ap, fmt);
  v = bh_value_vpack(NULL, fmt, ap);
  va_end(ap);
  CHECK(v != NULL, "cannot pack \"%s\"", fmt);
  data = bh_value_data(v, &n);
  hdr[0] = (unsigned char)(n >> 24);
  hdr[1] = (unsigned char)(n >> 16);
  hdr[2] = (unsigned char)(n >> 8);
  hdr[3] = (unsigned char)n;
  rc = send_raw(p, hdr, sizeof(hdr));
  if (rc == 0)
    rc = send_raw(p, data, n);
  bh_value_free(v);
  return rc;
}

/* task_done succeeded with the value `fmt` packs. */
static int
send_done_value(peer *p, int64_t tid, const char *fmt, ...) {
  bh__wire_done d = {.status = BH_SUCCEEDED};
  bh__buf b = {0};
  bh_value *v;
  va_list ap;
  int rc;

  va_start(ap, fmt);
  v = bh_value_vpack(NULL, fmt, ap);
  va_end(ap);
  CHECK(v != NULL, "cannot pack \"%s\"", fmt);
  d.returning_value = bh_value_object(v);
  rc = send_buf(p, &b, bh__wire_put_task_done(&b, NULL, BH__DEFAULT_MAX_FRAME, tid,
                                              &d));
  bh_value_free(v);
  return rc;
}

static int
send_done_cancelled(peer *p, int64_t tid, const char *reason) {
  bh__wire_done d = {.status = BH_CANCELLED, .reason = reason};
  bh__buf b = {0};

  return send_buf(p, &b, bh__wire_put_task_done(&b, NULL, BH__DEFAULT_MAX_FRAME,
                                                tid, &d));
}

static int
send_dead_normal(peer *p, const char *exit_code) {
  bh__buf b = {0};

  return send_buf(p, &b, bh__wire_put_dead_normal(&b, BH__DEFAULT_MAX_FRAME,
                                                  exit_code));
}

/* Reads a message that must be of `type` (for task `tid`, if tid >= 0). */
static int
expect(peer *p, bh__msg_type type, int64_t tid) {
  if (peer_recv(p) != 0)
    return 1;
  CHECK(p->m.type == type && (tid < 0 || p->m.task_id == tid),
        "expected %s for task %lld, got %s", bh__msg_type_str(type),
        (long long)tid, repr(p->m.root));
  return 0;
}

/* Reads task_info for tid, which must be task `name`. */
static int
expect_info(peer *p, int64_t tid, const char *name) {
  if (expect(p, BH__MSG_TASK_INFO, tid) != 0)
    return 1;
  CHECK(p->m.name_len == strlen(name) &&
            memcmp(p->m.name, name, p->m.name_len) == 0,
        "expected task '%s', got %s", name, repr(p->m.root));
  CHECK(p->m.root->via.map.size == 5, "task_info with extra keys: %s",
        repr(p->m.root));
  return 0;
}

/* Takes task tid: accepts it and reads its task_info. */
static int
take(peer *p, int64_t tid, const char *name) {
  if (expect(p, BH__MSG_NEW_TASK, tid) != 0 ||
      send_simple(p, BH__MSG_TASK_ACCEPTED, tid) != 0)
    return 1;
  return expect_info(p, tid, name);
}

/* How every fake child ends: told to die, it says dead and leaves. */
static int
fake_finish(peer *p) {
  if (expect(p, BH__MSG_DIE, -1) != 0)
    return 1;
  CHECK(p->m.root->via.map.size == 1, "die with extra keys: %s",
        repr(p->m.root));
  return send_dead_normal(p, NULL);
}

/* One byte through a coordination pipe. */
static int
signal_fd(int fd) {
  CHECK(write(fd, "!", 1) == 1, "pipe write: %s", strerror(errno));
  return 0;
}

static int
wait_fd_byte(int fd) {
  char c;

  CHECK(read(fd, &c, 1) == 1, "pipe read failed or ended");
  return 0;
}

/* ------------------------------------------------------------------------
 * Forking fakes. */

typedef int (*script_fn)(peer *p, void *arg);

typedef struct fake {
  pid_t pid;
  int fd;       /* this process's end, until the bee takes it */
  bh__child *c; /* once adopted */
} fake;

static int
cmp_int(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

/* In a fake: closes every descriptor above 2 but those in keep[0..n). */
static void
close_except(int *keep, int n) {
  unsigned lo = 3;
  int i;

  qsort(keep, (size_t)n, sizeof(int), cmp_int);
  for (i = 0; i < n; i++) {
    if ((unsigned)keep[i] > lo)
      close_range(lo, (unsigned)keep[i] - 1, 0);
    if ((unsigned)keep[i] + 1 > lo)
      lo = (unsigned)keep[i] + 1;
  }
  close_range(lo, ~0U, 0);
}

/* Forks a fake running fn(peer, arg); it keeps its end of a new socketpair
 * and the descriptors keep[0..nkeep) (ends of coordination pipes), and
 * exits with fn's result. */
static int
fake_fork(fake *f, script_fn fn, void *arg, const int *keep, int nkeep) {
  int sv[2], fds[8], i;
  peer p = {0};

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return -1;
  fflush(NULL);
  f->pid = fork();
  if (f->pid < 0)
    return -1;
  if (f->pid == 0) {
    fds[0] = sv[1];
    for (i = 0; i < nkeep && i < 7; i++)
      fds[i + 1] = keep[i];
    close_except(fds, i + 1);
    p.fd = sv[1];
    msgpack_zone_init(&p.zone, 4096);
    _exit(fn(&p, arg));
  }
  close(sv[1]);
  f->fd = sv[0];
  f->c = NULL;
  return 0;
}

/* True if the bee reaped the fake and it exited with `code`. */
static bool
fake_exited(const fake *f, int code) {
  const bh__child *c = f->c;

  if (c == NULL || !c->exited) {
    fprintf(stderr, "fake %d was not reaped\n", (int)f->pid);
    return false;
  }
  if (WIFEXITED(c->wstatus) && WEXITSTATUS(c->wstatus) == code)
    return true;
  fprintf(stderr, "fake %d: wstatus 0x%x, want exit %d\n", (int)f->pid,
          (unsigned)c->wstatus, code);
  return false;
}

static bool
fake_killed(const fake *f, int sig) {
  const bh__child *c = f->c;

  if (c != NULL && c->exited && WIFSIGNALED(c->wstatus) &&
      WTERMSIG(c->wstatus) == sig)
    return true;
  fprintf(stderr, "fake %d: wstatus 0x%x, want signal %d\n", (int)f->pid,
          c ? (unsigned)c->wstatus : 0u, sig);
  return false;
}

/* ------------------------------------------------------------------------
 * The delegating side: a root bee, its children, and a local root task. */

typedef int (*root_fn)(bh_task *t, void *arg);

typedef struct hive {
  uv_loop_t loop;
  bh_bee *bee;
  size_t live0;
  root_fn fn;
  void *arg;
  int root_rc; /* what fn returned; -1 until it has */
} hive;

static int
hive_open(hive *h, int64_t pickup_ms) {
  bh__bee_opts o = {.id = 0, .max_conc = -1, .pickup_ms = pickup_ms};

  signal(SIGPIPE, SIG_IGN);
  h->live0 = bh__alloc_live();
  h->root_rc = -1;
  if (uv_loop_init(&h->loop) != 0 || bh__turn_init(&h->loop) != 0)
    return -1;
  return bh__bee_new(&h->bee, &h->loop, -1, &o);
}

/* Hands the fake's end to the bee as a child (watching its process). */
static int
hive_adopt(hive *h, fake *f, int capacity) {
  int rc = bh__child_add(h->bee, f->fd, f->pid, capacity, &f->c);

  f->fd = -1;
  return rc;
}

/* The root task: runs the case's function, then ends the bee's life. */
static int
root_main(bh_task *t, void *arg) {
  hive *h = arg;

  h->root_rc = h->fn(t, h->arg);
  bh__bee_terminate(t->bee, "The test is done.");
  return 0;
}

/* Runs the loop until nothing is left to do. The turn hook does not keep
 * the loop alive, so when the callback that closed the last handle also
 * woke a fiber, uv_run() returns with the fiber queued: run it, and go on
 * if it made new work. Stops early when *stop becomes true. */
static void
run_all(uv_loop_t *loop, const bool *stop) {
  do {
    uv_run(loop, UV_RUN_DEFAULT);
    if (stop != NULL && *stop)
      return;
    bh__turn_run();
  } while (uv_loop_alive(loop));
}

/* Starts fn(task, arg) as the root bee's local task and runs the loop
 * until nothing is left: the root's life and its children's have ended.
 * Returns what fn returned. */
static int
hive_run(hive *h, root_fn fn, void *arg) {
  bh_task *t = bh__calloc(1, sizeof(*t));

  if (t == NULL)
    return -1;
  h->fn = fn;
  h->arg = arg;
  t->bee = h->bee;
  t->id = -1;
  t->state = TASK_LOCAL;
  t->name = bh__strdup("root");
  t->args = &empty_array;
  t->kwargs = &empty_map;
  t->local_fn = root_main;
  t->local_arg = h;
  bh__task_start(t);
  run_all(&h->loop, NULL);
  if (!h->bee->dead)
    fprintf(stderr, "the loop ended before the root bee's life\n");
  return h->bee->dead ? h->root_rc : -1;
}

static void
count_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) {
    fprintf(stderr, "handle of type %s left open\n",
            uv_handle_type_name(h->type));
    ++*(int *)arg;
    uv_close(h, NULL);
  }
}

/* Frees everything and checks nothing was left behind: no open handle, a
 * closable loop, no block allocated. */
static int
loop_teardown(uv_loop_t *loop, size_t live0) {
  int open = 0;

  ASSERT_INT_EQ(bh__fiber_live(), 0);
  /* No fiber exists: this only frees the pooled stacks, so that every
   * block allocated can be accounted for. */
  bh__sched_reset_after_fork();
  bh__turn_close();
  uv_run(loop, UV_RUN_DEFAULT);
  uv_walk(loop, count_walk, &open);
  uv_run(loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(open, 0);
  ASSERT_INT_EQ(uv_loop_close(loop), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

static int
hive_close(hive *h) {
  bh__bee_free(h->bee);
  return loop_teardown(&h->loop, h->live0);
}

/* The wrapped result's other_details, checked to name child `cid`. */
static const msgpack_object *
details_of(const bh_result *r, int64_t cid) {
  const msgpack_object *d = dig(bh_result_message(r), "other_details", NULL);
  int64_t got = -2;

  if (d == NULL || bh_unpack(d, NULL, 0, "{s:I}", "child_id", &got) != 0 ||
      got != cid) {
    fprintf(stderr, "other_details %s should name child %lld\n", repr(d),
            (long long)cid);
    return NULL;
  }
  return d;
}

/* ------------------------------------------------------------------------
 * 1. One child accepts, gets task_info intact, answers succeeded. */

#define ECHO_ARGS "[i s [f n]] {s:s s:i}"
#define ECHO_VALS 1, "two", 3.5, "k", "v", "n", -7

static int
fk_echo(peer *p, void *arg) {
  (void)arg;
  if (take(p, 0, "echo") != 0)
    return 1;
  CHECK(same(p->m.args, "[i s [f n]]", 1, "two", 3.5), "args changed");
  CHECK(same(p->m.kwargs, "{s:s s:i}", "k", "v", "n", -7), "kwargs changed");
  if (send_map(p, "{s:s s:I s:s s:[o o]}", "msg_type", "task_done",
               "task_id", (int64_t)0, "status", "succeeded",
               "returning_value", p->m.args, p->m.kwargs) != 0)
    return 1;
  /* Task ids count from 0; no arguments travel as [] and {}. */
  if (take(p, 1, "noargs") != 0)
    return 1;
  CHECK(same(p->m.args, "[]") && same(p->m.kwargs, "{}"), "no arguments");
  if (send_done_value(p, 1, "s", "fine") != 0)
    return 1;
  return fake_finish(p);
}

static int
root_echo(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "echo", ECHO_ARGS, ECHO_VALS), 0);
  ASSERT_INT_EQ(bh_result_status(r), BH_SUCCEEDED);
  ASSERT_INT_EQ(bh_result_child_id(r), 0);
  ASSERT(bh_result_errtype(r) == NULL && bh_result_reason(r) == NULL);
  ASSERT(same(bh_result_value(r), "[" ECHO_ARGS "]", ECHO_VALS));
  bh_result_free(r);
  ASSERT_INT_EQ(bh_delegate(t, &r, "noargs", NULL), 0);
  ASSERT(same(bh_result_value(r), "s", "fine"));
  bh_result_free(r);
  return 0;
}

TEST(deleg_succeeded) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_echo, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_echo, NULL), 0);
  ASSERT(fake_exited(&f, 0));
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 2. Two children accept the same offer: the first gets task_info, the
 * late one task_taken. Child 1 accepts first; child 0 accepts only once
 * child 1 holds the task_info, and child 1 answers only once child 0 has
 * its task_taken. */

typedef struct duel {
  int go_late[2];   /* first -> late: "I have the task_info" */
  int late_done[2]; /* late -> first: "I have my task_taken" */
} duel;

static int
fk_first(peer *p, void *arg) {
  duel *d = arg;

  if (take(p, 0, "job") != 0 || signal_fd(d->go_late[1]) != 0 ||
      wait_fd_byte(d->late_done[0]) != 0 ||
      send_done_value(p, 0, "s", "first") != 0)
    return 1;
  return fake_finish(p);
}

static int
fk_late(peer *p, void *arg) {
  duel *d = arg;

  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 ||
      wait_fd_byte(d->go_late[0]) != 0 ||
      send_simple(p, BH__MSG_TASK_ACCEPTED, 0) != 0 ||
      expect(p, BH__MSG_TASK_TAKEN, 0) != 0)
    return 1;
  CHECK(p->m.root->via.map.size == 2, "task_taken %s", repr(p->m.root));
  if (signal_fd(d->late_done[1]) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_duel(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), 0);
  ASSERT_INT_EQ(bh_result_child_id(r), 1);
  ASSERT(same(bh_result_value(r), "s", "first"));
  bh_result_free(r);
  return 0;
}

TEST(deleg_first_accepter_wins) {
  duel d;
  fake late, first;
  int kl[2], kf[2];
  hive h;

  ASSERT(pipe(d.go_late) == 0 && pipe(d.late_done) == 0);
  kl[0] = d.go_late[0], kl[1] = d.late_done[1];
  kf[0] = d.go_late[1], kf[1] = d.late_done[0];
  ASSERT_INT_EQ(fake_fork(&late, fk_late, &d, kl, 2), 0);
  ASSERT_INT_EQ(fake_fork(&first, fk_first, &d, kf, 2), 0);
  close(d.go_late[0]), close(d.go_late[1]);
  close(d.late_done[0]), close(d.late_done[1]);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &late, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &first, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_duel, NULL), 0);
  ASSERT(fake_exited(&late, 0) && fake_exited(&first, 0));
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 3. Every candidate denies; with no child at all it is the same. */

static int
fk_deny(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 ||
      send_simple(p, BH__MSG_TASK_DENIED, 0) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_denied(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", "[i]", 1), BH_ECANCELLED);
  ASSERT_INT_EQ(bh_result_status(r), BH_CANCELLED);
  ASSERT_STR_EQ(bh_result_reason(r), "Every child bee has denied the task.");
  ASSERT_INT_EQ(bh_result_child_id(r), -1);
  ASSERT(same(bh_result_message(r), "{s:s s:s}", "status", "cancelled",
              "reason", "Every child bee has denied the task."));
  bh_result_free(r);
  return 0;
}

TEST(deleg_all_denied) {
  fake a, b;
  hive h;

  ASSERT_INT_EQ(fake_fork(&a, fk_deny, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(fake_fork(&b, fk_deny, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &a, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &b, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_denied, NULL), 0);
  ASSERT(fake_exited(&a, 0) && fake_exited(&b, 0));
  return hive_close(&h);
}

TEST(deleg_no_children) {
  hive h;

  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_run(&h, root_denied, NULL), 0);
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 4. Nobody answers within the pickup timeout. The child then accepts
 * late and must be told task_taken. */

typedef struct slow {
  int go[2];   /* root -> fake: "the timeout has passed" */
  int done[2]; /* fake -> root: "I have my task_taken" */
} slow;

static int
fk_slow(peer *p, void *arg) {
  slow *s = arg;

  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 || wait_fd_byte(s->go[0]) != 0 ||
      send_simple(p, BH__MSG_TASK_ACCEPTED, 0) != 0 ||
      expect(p, BH__MSG_TASK_TAKEN, 0) != 0 || signal_fd(s->done[1]) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_slow(bh_task *t, void *arg) {
  slow *s = arg;
  int64_t t0 = bh_now(), dt;
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), BH_ECANCELLED);
  dt = bh_now() - t0;
  ASSERT_INT_EQ(bh_result_status(r), BH_CANCELLED);
  ASSERT_STR_EQ(bh_result_reason(r),
                "No child bee has picked up the task for 200 ms.");
  ASSERT_INT_EQ(bh_result_child_id(r), -1);
  bh_result_free(r);
  if (dt < 200 || dt > 2000)
    fprintf(stderr, "cancelled after %lld ms\n", (long long)dt);
  ASSERT(dt >= 200 && dt <= 2000);
  ASSERT(signal_fd(s->go[1]) == 0);
  ASSERT(bh_wait_fd(t, s->done[0], BH_READABLE, bh_now() + 3000) ==
         BH_READABLE);
  return wait_fd_byte(s->done[0]);
}

TEST(deleg_pickup_timeout) {
  slow s;
  fake f;
  int keep[2];
  hive h;

  ASSERT(pipe(s.go) == 0 && pipe(s.done) == 0);
  keep[0] = s.go[0], keep[1] = s.done[1];
  ASSERT_INT_EQ(fake_fork(&f, fk_slow, &s, keep, 2), 0);
  close(s.go[0]), close(s.done[1]);
  ASSERT_INT_EQ(hive_open(&h, 200), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_slow, &s), 0);
  ASSERT(fake_exited(&f, 0));
  close(s.go[1]), close(s.done[0]);
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 5, 6. The child answers raised or cancelled. Child 0 denies, so the
 * work goes to child 1 and the ids in the result are not zero by luck. */

static int
fk_raise(peer *p, void *arg) {
  bh__wire_done d = {.status = BH_RAISED};
  bh_value *exc, *tb, *det;
  bh__buf b = {0};
  int rc;

  (void)arg;
  if (take(p, 0, "boom") != 0)
    return 1;
  exc = bh_value_pack(NULL, "{s:s s:s}", "type", "ValueError", "message",
                      "bad");
  tb = bh_value_pack(NULL, "[s s]", "  File \"w.py\", line 3, in boom",
                     "  in task 'boom'");
  det = bh_value_pack(NULL, "{s:i}", "hint", 42);
  d.exception = bh_value_object(exc);
  d.traceback = bh_value_object(tb);
  d.other_details = bh_value_object(det);
  rc = send_buf(p, &b, bh__wire_put_task_done(&b, NULL, BH__DEFAULT_MAX_FRAME, 0,
                                              &d));
  bh_value_free(exc), bh_value_free(tb), bh_value_free(det);
  return rc != 0 ? rc : fake_finish(p);
}

static int
root_raised(bh_task *t, void *arg) {
  const msgpack_object *det;
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "boom", NULL), BH_ERAISED);
  ASSERT_INT_EQ(bh_result_status(r), BH_RAISED);
  ASSERT_INT_EQ(bh_result_child_id(r), 1);
  ASSERT_STR_EQ(bh_result_errtype(r), "RuntimeError");
  ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task raised an exception.");
  ASSERT_STR_EQ(bh_result_root_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "bad");
  ASSERT(bh_result_reason(r) == NULL);
  ASSERT(same(dig(bh_result_message(r), "traceback", NULL), "[s]",
              "  in delegation of task 'boom' (id 0) by bee 0 to child bee "
              "1"));
  ASSERT((det = details_of(r, 1)) != NULL);
  ASSERT(same(bh__map_get(det, "cause"),
              "{s:s s:i s:s s:{s:s s:s} s:[s s] s:{s:i}}", "msg_type",
              "task_done", "task_id", 0, "status", "raised", "exception",
              "type", "ValueError", "message", "bad", "traceback",
              "  File \"w.py\", line 3, in boom", "  in task 'boom'",
              "other_details", "hint", 42));
  bh_result_free(r);
  return 0;
}

static int
fk_deny_then_finish(peer *p, void *arg) {
  int64_t i, n = arg ? *(int64_t *)arg : 1;

  for (i = 0; i < n; i++)
    if (expect(p, BH__MSG_NEW_TASK, i) != 0 ||
        send_simple(p, BH__MSG_TASK_DENIED, i) != 0)
      return 1;
  return fake_finish(p);
}

/* Runs root with child 0 denying `ndeny` offers and child 1 scripted. */
static int
run_pair(script_fn worker, int64_t ndeny, root_fn root) {
  fake a, b;
  hive h;

  ASSERT_INT_EQ(fake_fork(&a, fk_deny_then_finish, &ndeny, NULL, 0), 0);
  ASSERT_INT_EQ(fake_fork(&b, worker, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &a, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &b, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root, NULL), 0);
  ASSERT(fake_exited(&a, 0) && fake_exited(&b, 0));
  return hive_close(&h);
}

TEST(deleg_child_raised) {
  return run_pair(fk_raise, 1, root_raised);
}

static int
fk_cancel(peer *p, void *arg) {
  (void)arg;
  if (take(p, 0, "c") != 0 || send_done_cancelled(p, 0, "x") != 0 ||
      take(p, 1, "c") != 0 || send_done_cancelled(p, 1, NULL) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_cancelled(bh_task *t, void *arg) {
  const msgpack_object *det;
  bh_result *r;
  int i;

  (void)arg;
  for (i = 0; i < 2; i++) {
    ASSERT_INT_EQ(bh_delegate(t, &r, "c", NULL), BH_ERAISED);
    ASSERT_INT_EQ(bh_result_status(r), BH_RAISED);
    ASSERT_INT_EQ(bh_result_child_id(r), 1);
    ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task has been cancelled.");
    ASSERT(bh_result_reason(r) == NULL);
    ASSERT((det = details_of(r, 1)) != NULL);
    if (i == 0)
      ASSERT(same(det, "{s:i s:s}", "child_id", 1, "reason", "x"));
    else
      ASSERT(same(det, "{s:i s:n}", "child_id", 1, "reason"));
    bh_result_free(r);
  }
  return 0;
}

TEST(deleg_child_cancelled) {
  return run_pair(fk_cancel, 2, root_cancelled);
}

/* ------------------------------------------------------------------------
 * 7. The child dies while the task runs. */

enum death { EXIT_7, SIGKILLED, LAST_WISH };

static int
fk_die(peer *p, void *arg) {
  enum death how = *(enum death *)arg;
  bh__buf b = {0};
  bh_value *exc, *tb;
  int rc;

  if (take(p, 0, "doomed") != 0)
    return 1;
  if (how == EXIT_7)
    _exit(7);
  if (how == SIGKILLED)
    raise(SIGKILL);
  exc = bh_value_pack(NULL, "{s:s s:s}", "type", "MemoryError", "message",
                      "boom");
  tb = bh_value_pack(NULL, "[s]", "  in the life of bee 0");
  rc = send_buf(p, &b, bh__wire_put_dead_killed(&b, BH__DEFAULT_MAX_FRAME,
                                                bh_value_object(exc),
                                                bh_value_object(tb)));
  bh_value_free(exc), bh_value_free(tb);
  return rc;
}

static int
root_died(bh_task *t, void *arg) {
  enum death how = *(enum death *)arg;
  const msgpack_object *cause;
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, &r, "doomed", NULL), BH_ERAISED);
  ASSERT_INT_EQ(bh_result_child_id(r), 0);
  ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task cancelled as the "
                "delegated bee has been killed.");
  ASSERT((cause = bh__map_get(details_of(r, 0), "cause")) != NULL);
  if (how == LAST_WISH) {
    ASSERT(same(cause, "{s:s s:s s:{s:s s:s} s:[s]}", "msg_type", "dead",
                "death_type", "killed", "exception", "type", "MemoryError",
                "message", "boom", "traceback", "  in the life of bee 0"));
    ASSERT_STR_EQ(bh_result_root_errmsg(r), "boom");
  } else {
    ASSERT(str_is(dig(cause, "msg_type", NULL), "dead"));
    ASSERT(str_is(dig(cause, "death_type", NULL), "killed"));
    ASSERT(str_has(dig(cause, "exception", "message", NULL),
                   "Child bee id 0 has died without sending a last wish"));
    ASSERT(str_has(dig(cause, "exception", "message", NULL),
                   how == EXIT_7 ? "exited with status 7"
                                 : "killed by signal SIGKILL"));
    ASSERT_STR_EQ(bh_result_root_errtype(r), "BeeDied");
  }
  bh_result_free(r);
  ASSERT_INT_EQ(bh_bee_children(t->bee), 0);
  return 0;
}

static int
run_death(enum death how) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_die, &how, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_died, &how), 0);
  if (how == SIGKILLED)
    ASSERT(fake_killed(&f, SIGKILL));
  else
    ASSERT(fake_exited(&f, how == EXIT_7 ? 7 : 0));
  return hive_close(&h);
}

TEST(deleg_child_exits) {
  return run_death(EXIT_7);
}

TEST(deleg_child_sigkilled) {
  return run_death(SIGKILLED);
}

TEST(deleg_child_last_wish) {
  return run_death(LAST_WISH);
}

/* A child that dies holding an unanswered offer counts as a denial: the
 * delegation ends at once, not at the pickup timeout. */
static int
fk_die_on_offer(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0)
    return 1;
  _exit(0);
}

TEST(deleg_child_dies_holding_offer) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_die_on_offer, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_denied, NULL), 0);
  ASSERT(fake_exited(&f, 0));
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 8. A child breaks the protocol while running task 0: it is killed and
 * mourned, task 0 comes back as killed with the protocol error as the
 * cause, and the healthy child 1 takes task 1. */

typedef struct breach {
  const char *name;
  const char *why; /* what the cause's message must contain */
} breach;

static const breach breaches[] = {
    {"garbage", "protocol error: frame does not hold exactly one msgpack "
                "value"},
    {"oversize", "protocol error: frame of 4294967295 bytes exceeds the "
                 "limit"},
    {"bogus", "protocol error: Unknown message with type 'bogus'."},
    {"wrong_way", "protocol error: Unknown message with type 'new_task'."},
    {"done_unknown", "protocol error: task_done for task 99, which was not "
                     "asked of child bee 0"},
    {"accept_unoffered", "protocol error: task_accepted for task 5, which "
                         "was not asked of child bee 0"},
    {"accept_twice", "protocol error: task_accepted for task 0, which was "
                     "not asked of child bee 0"},
    {"wrong_types", "protocol error: task_done: field 'task_id' must be "
                    "int"},
    {"truncated", "protocol error: the channel ended inside a frame"},
};

static int
send_breach(peer *p, const char *name) {
  static const unsigned char junk[] = {0, 0, 0, 3, 0xc1, 0xc1, 0xc1};
  static const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 0x80};

  if (strcmp(name, "garbage") == 0)
    return send_raw(p, junk, sizeof(junk));
  if (strcmp(name, "oversize") == 0)
    return send_raw(p, huge, sizeof(huge));
  if (strcmp(name, "bogus") == 0)
    return send_map(p, "{s:s s:i}", "msg_type", "bogus", "task_id", 0);
  if (strcmp(name, "wrong_way") == 0)
    return send_simple(p, BH__MSG_NEW_TASK, 0);
  if (strcmp(name, "done_unknown") == 0)
    return send_done_value(p, 99, "n");
  if (strcmp(name, "accept_unoffered") == 0)
    return send_simple(p, BH__MSG_TASK_ACCEPTED, 5);
  if (strcmp(name, "wrong_types") == 0)
    return send_map(p, "{s:s s:s s:s}", "msg_type", "task_done", "task_id",
                    "zero", "status", "succeeded");
  if (strcmp(name, "truncated") == 0) {
    /* A header announcing 10 bytes, 3 of them, then our end closes. */
    static const unsigned char part[] = {0, 0, 0, 10, 0x82, 0xa8, 'm'};

    if (send_raw(p, part, sizeof(part)) != 0)
      return 1;
    return shutdown(p->fd, SHUT_WR);
  }
  return send_simple(p, BH__MSG_TASK_ACCEPTED, 0);
}

static int
fk_breach(peer *p, void *arg) {
  const breach *b = arg;

  if (take(p, 0, "t0") != 0 || send_breach(p, b->name) != 0)
    return 1;
  /* The bee kills us now; reading anything more is a failure. */
  if (peer_recv(p) == 0)
    return FAKE_FAIL("after the breach, got %s", repr(p->m.root));
  return 3;
}

static int
fk_healthy(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 ||
      send_simple(p, BH__MSG_TASK_DENIED, 0) != 0 || take(p, 1, "t1") != 0 ||
      send_done_value(p, 1, "s", "ok") != 0)
    return 1;
  return fake_finish(p);
}

static int
root_breach(bh_task *t, void *arg) {
  const breach *b = arg;
  const msgpack_object *cause;
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, &r, "t0", NULL), BH_ERAISED);
  ASSERT_INT_EQ(bh_result_child_id(r), 0);
  ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task cancelled as the "
                "delegated bee has been killed.");
  ASSERT((cause = bh__map_get(details_of(r, 0), "cause")) != NULL);
  if (!str_has(dig(cause, "exception", "message", NULL), b->why))
    fprintf(stderr, "cause %s lacks \"%s\"\n", repr(cause), b->why);
  ASSERT(str_has(dig(cause, "exception", "message", NULL), b->why));
  bh_result_free(r);
  ASSERT_INT_EQ(bh_bee_children(t->bee), 1);
  ASSERT_INT_EQ(bh_delegate(t, &r, "t1", NULL), 0);
  ASSERT_INT_EQ(bh_result_child_id(r), 1);
  ASSERT(same(bh_result_value(r), "s", "ok"));
  bh_result_free(r);
  return 0;
}

static int
run_breach(const char *name) {
  const breach *b = NULL;
  fake bad, good;
  size_t i;
  hive h;

  for (i = 0; i < sizeof(breaches) / sizeof(breaches[0]); i++)
    if (strcmp(breaches[i].name, name) == 0)
      b = &breaches[i];
  ASSERT(b != NULL);
  ASSERT_INT_EQ(fake_fork(&bad, fk_breach, (void *)b, NULL, 0), 0);
  ASSERT_INT_EQ(fake_fork(&good, fk_healthy, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &bad, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &good, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_breach, (void *)b), 0);
  ASSERT(fake_killed(&bad, SIGKILL));
  ASSERT(fake_exited(&good, 0));
  return hive_close(&h);
}

TEST(deleg_breach_garbage) {
  return run_breach("garbage");
}

TEST(deleg_breach_wrong_types) {
  return run_breach("wrong_types");
}

TEST(deleg_breach_truncated) {
  return run_breach("truncated");
}

TEST(deleg_breach_oversize) {
  return run_breach("oversize");
}

TEST(deleg_breach_unknown_type) {
  return run_breach("bogus");
}

TEST(deleg_breach_wrong_way) {
  return run_breach("wrong_way");
}

TEST(deleg_breach_done_unknown) {
  return run_breach("done_unknown");
}

TEST(deleg_breach_accept_unoffered) {
  return run_breach("accept_unoffered");
}

TEST(deleg_breach_accept_twice) {
  return run_breach("accept_twice");
}

/* ------------------------------------------------------------------------
 * 9. Capacity: a child of capacity 2 never holds more than 2 offers and
 * tasks; a burst of 5 waits in the backlog and goes out in order. The
 * fake keeps at most 2 in hand: it reads until it holds 2 (or all 5 came),
 * then accepts the oldest offer, or finishes the oldest task. */

#define BURST 5

typedef struct hand {
  int64_t order[BURST]; /* task ids in the order offered */
  int state[BURST];     /* 0 none, 1 offered, 2 accepted, 3 info, 4 done */
  int offered, held, max_held, done;
} hand;

static int
hand_take(hand *k, peer *p) {
  int64_t id = p->m.task_id;

  CHECK(id >= 0 && id < BURST, "task id %lld", (long long)id);
  if (p->m.type == BH__MSG_NEW_TASK) {
    CHECK(k->state[id] == 0, "task %lld offered twice", (long long)id);
    k->order[k->offered++] = id;
    k->state[id] = 1;
    k->held++;
  } else {
    CHECK(p->m.type == BH__MSG_TASK_INFO && k->state[id] == 2,
          "unexpected %s", repr(p->m.root));
    CHECK(same(p->m.args, "[I]", id), "args of task %lld", (long long)id);
    k->state[id] = 3;
  }
  CHECK(k->held <= 2, "%d offers and tasks in hand, capacity 2", k->held);
  if (k->held > k->max_held)
    k->max_held = k->held;
  return 0;
}

/* Reads one message, then whatever else is already there. */
static int
hand_read(hand *k, peer *p) {
  do {
    if (peer_recv(p) != 0 || hand_take(k, p) != 0)
      return 1;
  } while (peer_ready(p));
  return 0;
}

/* The oldest task in `state`, or -1. */
static int64_t
hand_oldest(const hand *k, int state) {
  int i;

  for (i = 0; i < k->offered; i++)
    if (k->state[k->order[i]] == state)
      return k->order[i];
  return -1;
}

static int
hand_step(hand *k, peer *p) {
  int64_t id;

  if (k->held < 2 && k->offered < BURST)
    return hand_read(k, p);
  if ((id = hand_oldest(k, 3)) >= 0) {
    k->state[id] = 4;
    k->held--;
    k->done++;
    return send_done_value(p, id, "I", id * 10);
  }
  if ((id = hand_oldest(k, 1)) >= 0) {
    k->state[id] = 2;
    return send_simple(p, BH__MSG_TASK_ACCEPTED, id);
  }
  return hand_read(k, p);
}

static int
fk_capacity(peer *p, void *arg) {
  hand k = {.offered = 0};
  int i;

  (void)arg;
  while (k.done < BURST)
    if (hand_step(&k, p) != 0)
      return 1;
  for (i = 0; i < BURST; i++)
    CHECK(k.order[i] == i, "offer %d was task %lld", i, (long long)k.order[i]);
  CHECK(k.max_held == 2, "at most %d in hand, want 2", k.max_held);
  return fake_finish(p);
}

static int
root_burst(bh_task *t, void *arg) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int64_t i, v;

  (void)arg;
  ASSERT(g != NULL);
  for (i = 0; i < BURST; i++)
    ASSERT_INT_EQ(bh_group_delegate(g, NULL, (void *)(intptr_t)i, "job",
                                    "[I]", i), 0);
  for (i = 0; i < BURST; i++) {
    ASSERT_INT_EQ(bh_group_next(g, &f, -1), 0);
    ASSERT_INT_EQ((intptr_t)bh_future_udata(f), i);
    ASSERT_INT_EQ(bh_result_status(bh_future_result(f)), BH_SUCCEEDED);
    ASSERT_INT_EQ(bh_result_child_id(bh_future_result(f)), 0);
    ASSERT_INT_EQ(bh_result_unpack(bh_future_result(f), NULL, 0, "I", &v), 0);
    ASSERT_INT_EQ(v, i * 10);
    bh_future_free(f);
  }
  ASSERT_INT_EQ(bh_group_next(g, &f, -1), BH_EDONE);
  bh_group_free(g);
  return 0;
}

TEST(deleg_capacity_backlog) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_capacity, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, 2), 0);
  ASSERT_INT_EQ(hive_run(&h, root_burst, NULL), 0);
  ASSERT(fake_exited(&f, 0));
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 9b. Direct offers from the delegating side (PROTOCOL.md section 5.1). */

/* The only child with room gets new_task carrying the info; answering
 * started, it gets no task_info (the next message is die). */
static int
fk_direct(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0)
    return 1;
  CHECK(p->m.name != NULL && p->m.name_len == 3 &&
            memcmp(p->m.name, "job", 3) == 0 &&
            same(p->m.args, "[i s]", 7, "x"),
        "direct offer %s", repr(p->m.root));
  if (send_map(p, "{s:s s:i s:b}", "msg_type", "task_accepted", "task_id", 0,
               "started", 1) != 0 ||
      send_done_value(p, 0, "s", "direct") != 0)
    return 1;
  return fake_finish(p);
}

static int
root_direct(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", "[i s]", 7, "x"), 0);
  ASSERT_INT_EQ(bh_result_child_id(r), 0);
  ASSERT(same(bh_result_value(r), "s", "direct"));
  bh_result_free(r);
  return 0;
}

TEST(deleg_direct_offer) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_direct, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_direct, NULL), 0);
  ASSERT(fake_exited(&f, 0));
  return hive_close(&h);
}

/* Two children have room: offers are plain. A child that answers one
 * "started" anyway breaks the protocol and is killed; the other takes
 * the task. */
static int
fk_false_start(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0)
    return 1;
  CHECK(p->m.name == NULL, "a plain offer expected: %s", repr(p->m.root));
  if (send_map(p, "{s:s s:i s:b}", "msg_type", "task_accepted", "task_id", 0,
               "started", 1) != 0)
    return 1;
  if (peer_recv(p) == 0)
    return FAKE_FAIL("after the false start, got %s", repr(p->m.root));
  return 3;
}

static int
fk_take_job(peer *p, void *arg) {
  (void)arg;
  if (take(p, 0, "job") != 0 || send_done_value(p, 0, "s", "ok") != 0)
    return 1;
  return fake_finish(p);
}

static int
root_false_start(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), 0);
  ASSERT_INT_EQ(bh_result_child_id(r), 1);
  bh_result_free(r);
  return 0;
}

TEST(deleg_started_on_a_plain_offer_is_a_breach) {
  fake bad, good;
  hive h;

  ASSERT_INT_EQ(fake_fork(&bad, fk_false_start, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(fake_fork(&good, fk_take_job, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &bad, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &good, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_false_start, NULL), 0);
  ASSERT(fake_killed(&bad, SIGKILL));
  ASSERT(fake_exited(&good, 0));
  return hive_close(&h);
}

/* A direct offer nobody answered within the pickup timeout is answered
 * cancelled; when the child then says it started it, the task runs there
 * unwanted: the bee sends cancel_task and takes the late task_done. */
typedef struct late_start {
  int go[2];   /* root -> fake: the delegation was answered */
  int done[2]; /* fake -> root: cancel_task came and was answered */
} late_start;

static int
fk_late_start(peer *p, void *arg) {
  late_start *ls = arg;

  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 || wait_fd_byte(ls->go[0]) != 0 ||
      send_map(p, "{s:s s:i s:b}", "msg_type", "task_accepted", "task_id", 0,
               "started", 1) != 0 ||
      expect(p, BH__MSG_CANCEL_TASK, 0) != 0 ||
      send_done_cancelled(p, 0, "as asked") != 0 ||
      signal_fd(ls->done[1]) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_late_start(bh_task *t, void *arg) {
  late_start *ls = arg;
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), BH_ECANCELLED);
  ASSERT(strstr(bh_result_reason(r), "picked up") != NULL);
  bh_result_free(r);
  ASSERT_INT_EQ(write(ls->go[1], "!", 1), 1);
  ASSERT(bh_wait_fd(t, ls->done[0], BH_READABLE, bh_now() + 5000) ==
         BH_READABLE);
  return 0;
}

TEST(deleg_direct_offer_started_after_its_answer_is_cancelled) {
  late_start ls;
  fake f;
  int keep[2];
  hive h;

  ASSERT(pipe(ls.go) == 0 && pipe(ls.done) == 0);
  keep[0] = ls.go[0], keep[1] = ls.done[1];
  ASSERT_INT_EQ(fake_fork(&f, fk_late_start, &ls, keep, 2), 0);
  close(ls.go[0]), close(ls.done[1]);
  ASSERT_INT_EQ(hive_open(&h, 50), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_late_start, &ls), 0);
  ASSERT(fake_exited(&f, 0));
  close(ls.go[1]), close(ls.done[0]);
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 10. The child side: a real bee in this process, driven by a forked fake
 * parent. */

static struct {
  int wake_fd;         /* what task "wait_fd" waits on */
  int running, max_running, completed;
} ts;

static int
t_echo(bh_task *t) {
  return bh_return(t, "[o o]", bh_task_args(t), bh_task_kwargs(t));
}

static int
t_fail(bh_task *t) {
  int n;

  if (bh_task_unpack(t, "[i]", &n) != 0)
    return BH_ERAISED;
  return bh_raise(t, "ValueError", "bad %d", n);
}

static int
t_cancel(bh_task *t) {
  bh_cancel_reason(t, "not today");
  return BH_ECANCELLED;
}

static int
t_wait_fd(bh_task *t) {
  char c;
  int rc = bh_wait_fd(t, ts.wake_fd, BH_READABLE, -1);

  if (rc != BH_READABLE || read(ts.wake_fd, &c, 1) != 1)
    return bh_raise(t, "OSError", "wait_fd: %d", rc);
  return bh_return(t, "s", "woke");
}

static int
t_sleepy(bh_task *t) {
  int rc;

  if (++ts.running > ts.max_running)
    ts.max_running = ts.running;
  rc = bh_sleep(t, 30);
  ts.running--;
  ts.completed++;
  return rc;
}

/* Answers with its first argument itself (not a copy of it). */
static int
t_first(bh_task *t) {
  const msgpack_object *a = bh_task_args(t);

  if (a->via.array.size < 1)
    return bh_raise(t, "TypeError", "first takes an argument");
  return bh_return_object(t, &a->via.array.ptr[0]);
}

/* Blocks the whole bee in read() until the driver writes a byte: a handler
 * that never yields. */
static int
t_block(bh_task *t) {
  char c;

  if (read(ts.wake_fd, &c, 1) != 1)
    return bh_raise(t, "OSError", "read: %s", strerror(errno));
  return bh_return(t, "s", "unblocked");
}

static const bh_task_def test_tasks[] = {
    {"echo", t_echo},       {"fail", t_fail},     {"cancel", t_cancel},
    {"wait_fd", t_wait_fd}, {"sleepy", t_sleepy}, {"block", t_block},
    {"first", t_first},     {NULL, NULL}};

static const bh_class test_class = {.name = "testbee", .tasks = test_tasks};

typedef struct cbee {
  uv_loop_t loop;
  bh_bee *bee;
  size_t live0;
  pid_t driver;
  bool orphaned;
} cbee;

static void
cbee_drained(bh__chan *c, void *udata) {
  bh_bee *bee = udata;

  (void)c;
  bh__chan_close(bee->parent);
  bee->parent = NULL;
}

/* Dead is queued: close the channel once it is out, so the loop ends. */
static void
cbee_dead(bh_bee *bee) {
  bh__chan_on_drained(bee->parent, cbee_drained);
}

static void
cbee_orphan(bh_bee *bee) {
  cbee *h = bee->owner;

  h->orphaned = true;
  uv_stop(bee->loop);
}

/* Forks the driver, then makes the bee (id 5) on the other end. */
static int
cbee_open(cbee *h, int max_conc, script_fn drv, void *arg, int *keep,
          int nkeep) {
  bh__bee_opts o = {.cls = &test_class, .id = 5, .max_conc = max_conc,
                    .on_dead = cbee_dead, .on_orphan = cbee_orphan,
                    .owner = h};
  char *err = NULL;
  fake f;
  int rc;

  signal(SIGPIPE, SIG_IGN);
  h->live0 = bh__alloc_live();
  h->orphaned = false;
  if (fake_fork(&f, drv, arg, keep, nkeep) != 0)
    return -1;
  h->driver = f.pid;
  if (uv_loop_init(&h->loop) != 0 || bh__turn_init(&h->loop) != 0)
    return -1;
  rc = bh__bee_new(&h->bee, &h->loop, f.fd, &o);
  if (rc == 0)
    rc = bh__bee_init(h->bee, NULL, NULL, &err);
  bh__free(err);
  return rc;
}

/* Runs the bee's life to its end; checks the driver's verdict. */
static int
cbee_run(cbee *h) {
  int st;

  run_all(&h->loop, &h->orphaned);
  ASSERT(!h->orphaned);
  ASSERT(h->bee->dead);
  while (waitpid(h->driver, &st, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fprintf(stderr, "driver: wstatus 0x%x\n", (unsigned)st);
  ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  bh__bee_free(h->bee);
  return loop_teardown(&h->loop, h->live0);
}

static int
send_info(peer *p, int64_t tid, const char *name, const char *args_fmt,
          ...) {
  bh_value *v;
  bh__buf b = {0};
  const msgpack_object *o;
  va_list ap;
  int rc;

  va_start(ap, args_fmt);
  v = bh_value_vpack(NULL, args_fmt, ap);
  va_end(ap);
  CHECK(v != NULL, "cannot pack \"%s\"", args_fmt);
  o = bh_value_object(v);
  rc = send_buf(p, &b, bh__wire_put_task_info(&b, NULL, BH__DEFAULT_MAX_FRAME, tid,
                                              name, &o->via.array.ptr[0],
                                              &o->via.array.ptr[1]));
  bh_value_free(v);
  return rc;
}

/* Offers tid and expects `answer` (task_accepted or task_denied). */
static int
offer(peer *p, int64_t tid, bh__msg_type answer) {
  if (send_simple(p, BH__MSG_NEW_TASK, tid) != 0 ||
      expect(p, answer, tid) != 0)
    return 1;
  CHECK(p->m.root->via.map.size == 2, "answer %s", repr(p->m.root));
  return 0;
}

/* Reads task_done for tid with `status` and exactly `nkeys` keys. */
static int
expect_done(peer *p, int64_t tid, bh_status status, uint32_t nkeys) {
  if (expect(p, BH__MSG_TASK_DONE, tid) != 0)
    return 1;
  CHECK(p->m.status == status && p->m.root->via.map.size == nkeys,
        "task_done %s", repr(p->m.root));
  return 0;
}

/* Reads dead normal with this exit code, then the end of the stream. */
static int
expect_dead(peer *p, const char *exit_code) {
  if (expect(p, BH__MSG_DEAD, -1) != 0)
    return 1;
  CHECK(same(p->m.root, "{s:s s:s s:s}", "msg_type", "dead", "death_type",
             "normal", "exit_code", exit_code),
        "dead message");
  return expect_eof(p);
}

#define DIE_CODE "The parent bee ordered to die gracefully."

static int drv_basic_rest(peer *p);

/* Succeeded, unknown task, raised; then drv_basic_rest(). */
static int
drv_basic(peer *p, void *arg) {
  const msgpack_object *tbk;

  (void)arg;
  if (offer(p, 7, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 7, "echo", "[[i s] {s:i}]", 1, "a", "x", 2) != 0 ||
      expect_done(p, 7, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "[[i s] {s:i}]", 1, "a", "x", 2), "echo");
  if (offer(p, 8, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 8, "nope", "[[] {}]") != 0 ||
      expect_done(p, 8, BH_RAISED, 6) != 0)
    return 1;
  CHECK(same(p->m.exception, "{s:s s:s}", "type", "AttributeError",
             "message", "Bee class 'testbee' has no task 'nope'."),
        "unknown task");
  tbk = p->m.traceback;
  CHECK(tbk->via.array.size >= 1 &&
            str_is(&tbk->via.array.ptr[tbk->via.array.size - 1],
                   "  in task 'nope' (id 8) of bee 5 (class testbee)"),
        "traceback %s", repr(tbk));
  if (offer(p, 9, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 9, "fail", "[[i] {}]", 3) != 0 ||
      expect_done(p, 9, BH_RAISED, 6) != 0)
    return 1;
  CHECK(same(p->m.exception, "{s:s s:s}", "type", "ValueError", "message",
             "bad 3"), "raised");
  return drv_basic_rest(p);
}

/* Cancelled, ids held twice, task_taken, busy_status, die. */
static int
drv_basic_rest(peer *p) {
  if (offer(p, 10, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 10, "cancel", "[[] {}]") != 0 ||
      expect_done(p, 10, BH_CANCELLED, 4) != 0)
    return 1;
  CHECK(str_is(p->m.reason, "not today"), "reason %s", repr(p->m.reason));
  /* The same id offered while held is denied, and task_taken frees it. */
  if (offer(p, 20, BH__MSG_TASK_ACCEPTED) != 0 ||
      offer(p, 20, BH__MSG_TASK_DENIED) != 0 ||
      send_simple(p, BH__MSG_TASK_TAKEN, 20) != 0 ||
      offer(p, 20, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 20, "busy_status", "[[] {}]") != 0 ||
      expect_done(p, 20, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "f", 0.25), "busy_status");
  if (send_map(p, "{s:s}", "msg_type", "die") != 0)
    return 1;
  return expect_dead(p, DIE_CODE);
}

TEST(child_basic) {
  cbee h;

  ASSERT_INT_EQ(cbee_open(&h, 4, drv_basic, NULL, NULL, 0), 0);
  return cbee_run(&h);
}

static int
drv_one_slot(peer *p, void *arg) {
  (void)arg;
  if (offer(p, 1, BH__MSG_TASK_ACCEPTED) != 0 ||
      offer(p, 2, BH__MSG_TASK_DENIED) != 0 ||
      send_simple(p, BH__MSG_TASK_TAKEN, 1) != 0 ||
      offer(p, 3, BH__MSG_TASK_ACCEPTED) != 0 ||
      offer(p, 4, BH__MSG_TASK_DENIED) != 0 ||
      send_info(p, 3, "echo", "[[i] {}]", 3) != 0 ||
      expect_done(p, 3, BH_SUCCEEDED, 4) != 0 ||
      offer(p, 4, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_simple(p, BH__MSG_TASK_TAKEN, 4) != 0 ||
      send_map(p, "{s:s}", "msg_type", "die") != 0)
    return 1;
  return expect_dead(p, DIE_CODE);
}

TEST(child_one_slot) {
  cbee h;

  ASSERT_INT_EQ(cbee_open(&h, 1, drv_one_slot, NULL, NULL, 0), 0);
  return cbee_run(&h);
}

static int
drv_bogus(peer *p, void *arg) {
  const char *type = arg;
  char want[96];

  if (send_map(p, "{s:s s:i}", "msg_type", type, "task_id", 1) != 0)
    return 1;
  snprintf(want, sizeof(want), "Unknown message with type '%s'.", type);
  return expect_dead(p, want);
}

TEST(child_unknown_type) {
  cbee h;

  ASSERT_INT_EQ(cbee_open(&h, 4, drv_bogus, (void *)"bogus", NULL, 0), 0);
  return cbee_run(&h);
}

/* A child-to-parent type sent downward is unknown to a child too. */
TEST(child_wrong_way_type) {
  cbee h;

  ASSERT_INT_EQ(cbee_open(&h, 4, drv_bogus, (void *)"task_accepted", NULL,
                          0), 0);
  return cbee_run(&h);
}

static int
drv_info_unaccepted(peer *p, void *arg) {
  (void)arg;
  if (send_info(p, 5, "echo", "[[] {}]") != 0)
    return 1;
  return expect_dead(p, "Protocol error: task_info for task 5, which was "
                        "not accepted.");
}

TEST(child_info_unaccepted) {
  cbee h;

  ASSERT_INT_EQ(cbee_open(&h, 4, drv_info_unaccepted, NULL, NULL, 0), 0);
  return cbee_run(&h);
}

/* die: the bee denies new offers, finishes what it accepted (task 1 runs,
 * task 2 has not had its info yet), and only then says dead. */
static int
drv_die(peer *p, void *arg) {
  int wake = *(int *)arg;

  if (offer(p, 1, BH__MSG_TASK_ACCEPTED) != 0 ||
      offer(p, 2, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 1, "wait_fd", "[[] {}]") != 0 ||
      send_map(p, "{s:s}", "msg_type", "die") != 0 ||
      offer(p, 3, BH__MSG_TASK_DENIED) != 0 ||
      send_info(p, 2, "echo", "[[i] {}]", 2) != 0 ||
      expect_done(p, 2, BH_SUCCEEDED, 4) != 0 || signal_fd(wake) != 0 ||
      expect_done(p, 1, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "s", "woke"), "wait_fd");
  return expect_dead(p, DIE_CODE);
}

TEST(child_die_waits_for_work) {
  int wake[2];
  cbee h;

  ASSERT(pipe(wake) == 0);
  ts.wake_fd = wake[0];
  ASSERT_INT_EQ(cbee_open(&h, 4, drv_die, &wake[1], &wake[1], 1), 0);
  close(wake[1]);
  ASSERT_INT_EQ(cbee_run(&h), 0);
  close(wake[0]);
  return 0;
}

/* Direct offers to a child (PROTOCOL.md section 5.1): new_task carrying
 * the info starts the task at once, and task_accepted {started: true}
 * leaves before the handler runs: here the handler blocks the whole bee
 * until the driver has read that answer. A direct offer the bee has no
 * room for is denied and nothing starts. */
static int
direct(peer *p, int64_t tid, const char *name, const char *args_fmt, ...) {
  bh_value *v;
  bh__buf b = {0};
  const msgpack_object *o;
  va_list ap;
  int rc;

  va_start(ap, args_fmt);
  v = bh_value_vpack(NULL, args_fmt, ap);
  va_end(ap);
  CHECK(v != NULL, "cannot pack \"%s\"", args_fmt);
  o = bh_value_object(v);
  rc = send_buf(p, &b, bh__wire_put_direct_offer(&b, NULL,
                                                 BH__DEFAULT_MAX_FRAME, tid,
                                                 name, &o->via.array.ptr[0],
                                                 &o->via.array.ptr[1]));
  bh_value_free(v);
  return rc;
}

static int
expect_started(peer *p, int64_t tid) {
  if (expect(p, BH__MSG_TASK_ACCEPTED, tid) != 0)
    return 1;
  CHECK(p->m.started && same(p->m.root, "{s:s s:I s:b}", "msg_type",
                             "task_accepted", "task_id", tid, "started", 1),
        "accepted %s", repr(p->m.root));
  return 0;
}

static int
drv_direct(peer *p, void *arg) {
  int wake = *(int *)arg;

  if (direct(p, 30, "block", "[[] {}]") != 0 || expect_started(p, 30) != 0 ||
      signal_fd(wake) != 0 || expect_done(p, 30, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "s", "unblocked"), "block");
  if (direct(p, 31, "echo", "[[i s] {s:i}]", 1, "a", "x", 2) != 0 ||
      expect_started(p, 31) != 0 || expect_done(p, 31, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "[[i s] {s:i}]", 1, "a", "x", 2), "echo");
  if (direct(p, 34, "first", "[[{s:[i i]} i] {}]", "kept", 5, 6, 7) != 0 ||
      expect_started(p, 34) != 0 || expect_done(p, 34, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "{s:[i i]}", "kept", 5, 6), "first");
  /* One slot: held by wait_fd, so the next direct offer is denied. */
  if (direct(p, 32, "wait_fd", "[[] {}]") != 0 ||
      expect_started(p, 32) != 0 ||
      direct(p, 33, "echo", "[[i] {}]", 3) != 0 ||
      expect(p, BH__MSG_TASK_DENIED, 33) != 0 || signal_fd(wake) != 0 ||
      expect_done(p, 32, BH_SUCCEEDED, 4) != 0 ||
      send_map(p, "{s:s}", "msg_type", "die") != 0)
    return 1;
  return expect_dead(p, DIE_CODE);
}

TEST(child_direct_offer) {
  int wake[2];
  cbee h;

  ASSERT(pipe(wake) == 0);
  ts.wake_fd = wake[0];
  ASSERT_INT_EQ(cbee_open(&h, 1, drv_direct, &wake[1], &wake[1], 1), 0);
  close(wake[1]);
  ASSERT_INT_EQ(cbee_run(&h), 0);
  close(wake[0]);
  return 0;
}

/* max_concurrency is a real limit: 10 offers to a bee of 3; denied ones
 * are offered again as slots free up. The tasks count how many run. */
#define OFFERS 10

static int
conc_answer(peer *p, int *state, int *accepted) {
  int64_t id = p->m.task_id;

  CHECK(id >= 0 && id < OFFERS, "task id %lld", (long long)id);
  if (p->m.type == BH__MSG_TASK_ACCEPTED) {
    CHECK(state[id] == 1, "accepted %lld", (long long)id);
    state[id] = 2;
    ++*accepted;
    return send_info(p, id, "sleepy", "[[] {}]");
  }
  if (p->m.type == BH__MSG_TASK_DENIED) {
    CHECK(state[id] == 1, "denied %lld", (long long)id);
    state[id] = 0;
    return 0;
  }
  CHECK(p->m.type == BH__MSG_TASK_DONE && state[id] == 2 &&
            p->m.status == BH_SUCCEEDED,
        "unexpected %s", repr(p->m.root));
  state[id] = 3;
  for (id = 0; id < OFFERS && state[id] != 0; id++)
    ;
  if (id == OFFERS)
    return 0;
  state[id] = 1;
  return send_simple(p, BH__MSG_NEW_TASK, id);
}

/* Offers all OFFERS tasks at once: the bee must accept exactly the first
 * 3 and deny the rest, before any task_info is sent. */
static int
conc_burst(peer *p, int *state) {
  int i, accepted = 0;

  for (i = 0; i < OFFERS; i++) {
    state[i] = 1;
    if (send_simple(p, BH__MSG_NEW_TASK, i) != 0)
      return 1;
  }
  for (i = 0; i < OFFERS; i++) {
    if (peer_recv(p) != 0)
      return 1;
    CHECK(p->m.task_id == i && p->m.type == (i < 3 ? BH__MSG_TASK_ACCEPTED
                                                   : BH__MSG_TASK_DENIED),
          "answer %d to the burst: %s", i, repr(p->m.root));
    state[i] = i < 3 ? 2 : 0;
    accepted += i < 3;
  }
  for (i = 0; i < accepted; i++)
    if (send_info(p, i, "sleepy", "[[] {}]") != 0)
      return 1;
  return 0;
}

static int
drv_concurrency(peer *p, void *arg) {
  int state[OFFERS] = {0}, i, done = 0, accepted = 3, busy;

  (void)arg;
  if (conc_burst(p, state) != 0)
    return 1;
  while (done < OFFERS) {
    if (peer_recv(p) != 0 || conc_answer(p, state, &accepted) != 0)
      return 1;
    for (i = done = busy = 0; i < OFFERS; i++)
      done += state[i] == 3, busy += state[i] == 1 || state[i] == 2;
    CHECK(busy > 0 || done == OFFERS, "stalled: nothing offered or running");
  }
  CHECK(accepted == OFFERS, "%d accepted", accepted);
  if (send_map(p, "{s:s}", "msg_type", "die") != 0)
    return 1;
  return expect_dead(p, DIE_CODE);
}

TEST(child_max_concurrency) {
  cbee h;

  ASSERT_INT_EQ(cbee_open(&h, 3, drv_concurrency, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(cbee_run(&h), 0);
  ASSERT_INT_EQ(ts.completed, OFFERS);
  ASSERT_INT_EQ(ts.max_running, 3);
  return 0;
}

TEST_MAIN(TEST_ENTRY(deleg_succeeded), TEST_ENTRY(deleg_first_accepter_wins),
          TEST_ENTRY(deleg_all_denied), TEST_ENTRY(deleg_no_children),
          TEST_ENTRY(deleg_pickup_timeout), TEST_ENTRY(deleg_child_raised),
          TEST_ENTRY(deleg_child_cancelled), TEST_ENTRY(deleg_child_exits),
          TEST_ENTRY(deleg_child_sigkilled),
          TEST_ENTRY(deleg_child_last_wish),
          TEST_ENTRY(deleg_child_dies_holding_offer),
          TEST_ENTRY(deleg_breach_garbage), TEST_ENTRY(deleg_breach_oversize),
          TEST_ENTRY(deleg_breach_wrong_types),
          TEST_ENTRY(deleg_breach_truncated),
          TEST_ENTRY(deleg_breach_unknown_type),
          TEST_ENTRY(deleg_breach_wrong_way),
          TEST_ENTRY(deleg_breach_done_unknown),
          TEST_ENTRY(deleg_breach_accept_unoffered),
          TEST_ENTRY(deleg_breach_accept_twice),
          TEST_ENTRY(deleg_capacity_backlog), TEST_ENTRY(child_basic),
          TEST_ENTRY(child_one_slot), TEST_ENTRY(child_unknown_type),
          TEST_ENTRY(child_wrong_way_type), TEST_ENTRY(child_info_unaccepted),
          TEST_ENTRY(child_die_waits_for_work),
          TEST_ENTRY(child_max_concurrency), TEST_ENTRY(child_direct_offer),
          TEST_ENTRY(deleg_direct_offer),
          TEST_ENTRY(deleg_started_on_a_plain_offer_is_a_breach),
          TEST_ENTRY(deleg_direct_offer_started_after_its_answer_is_cancelled))
