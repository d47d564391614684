/* proto_fixture.c - see proto_fixture.h. */
#include "proto_fixture.h"
/* ------------------------------------------------------------------------
 * Values. */

/* Renders o for messages (static buffer: one call per printf). */
const char *
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
bool
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

bool
str_is(const msgpack_object *o, const char *s) {
  return o != NULL && o->type == MSGPACK_OBJECT_STR &&
         o->via.str.size == strlen(s) &&
         memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* True if o is a str containing `part`. */
bool
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
const msgpack_object *
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

static bool
frame_ready(const peer *p) {
  return p->in.len >= BH__FRAME_HDR &&
         p->in.len - BH__FRAME_HDR >=
             bh__wire_frame_len((const unsigned char *)p->in.data);
}

/* Reads what the socket holds (waiting if `wait`). Returns the byte count,
 * 0 at end of stream, -1 when nothing is there or on error. */
ssize_t
peer_fill(peer *p, bool wait) {
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
bool
peer_ready(peer *p) {
  while (!frame_ready(p))
    if (peer_fill(p, false) <= 0)
      return false;
  return true;
}

/* Reads the next message into p->m. Returns 0, or 1 (having said why) at
 * the end of the stream or for a frame that does not decode. */
int
peer_recv(peer *p) {
  char err[160];
  size_t n;
  ssize_t k;

  while (!frame_ready(p)) {
    k = peer_fill(p, true);
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
int
expect_eof(peer *p) {
  ssize_t k;

  CHECK(p->in.len == 0, "%zu bytes before the end", p->in.len);
  k = peer_fill(p, true);
  CHECK(k == 0, "expected the end of the stream, got %zd bytes", k);
  return 0;
}

/* Writes all of data[0..n). */
int
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
int
send_buf(peer *p, bh__buf *b, int put_rc) {
  int rc;

  CHECK(put_rc == 0, "could not encode a frame: %s", bh_err_name(put_rc));
  rc = send_raw(p, b->data, b->len);
  bh__buf_free(b);
  return rc;
}

int
send_simple(peer *p, bh__msg_type type, int64_t tid) {
  bh__buf b = {0};

  return send_buf(p, &b, bh__wire_put_simple(&b, BH__DEFAULT_MAX_FRAME, type,
                                             tid));
}

/* The value fmt packs, or NULL having said why. */
bh_value *
fake_vpack(const char *fmt, va_list ap) {
  bh_value *v = bh_value_vpack(NULL, fmt, ap);

  if (v == NULL)
    (void)FAKE_FAIL("cannot pack \"%s\"", fmt);
  return v;
}

/* Sends a message whose whole body map `fmt` packs (any keys at all). */
int
send_map(peer *p, const char *fmt, ...) {
  unsigned char hdr[BH__FRAME_HDR];
  bh_value *v;
  const char *data;
  size_t n;
  va_list ap;
  int rc;

  va_start(ap, fmt);
  v = fake_vpack(fmt, ap);
  va_end(ap);
  if (v == NULL)
    return 1;
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
int
send_done_value(peer *p, int64_t tid, const char *fmt, ...) {
  bh__wire_done d = {.status = BH_SUCCEEDED};
  bh__buf b = {0};
  bh_value *v;
  va_list ap;
  int rc;

  va_start(ap, fmt);
  v = fake_vpack(fmt, ap);
  va_end(ap);
  if (v == NULL)
    return 1;
  d.returning_value = bh_value_object(v);
  rc = send_buf(p, &b, bh__wire_put_task_done(&b, NULL, BH__DEFAULT_MAX_FRAME, tid,
                                              &d));
  bh_value_free(v);
  return rc;
}

int
send_done_cancelled(peer *p, int64_t tid, const char *reason) {
  bh__wire_done d = {.status = BH_CANCELLED, .reason = reason};
  bh__buf b = {0};

  return send_buf(p, &b, bh__wire_put_task_done(&b, NULL, BH__DEFAULT_MAX_FRAME,
                                                tid, &d));
}

int
send_dead_normal(peer *p, const char *exit_code) {
  bh__buf b = {0};

  return send_buf(p, &b, bh__wire_put_dead_normal(&b, BH__DEFAULT_MAX_FRAME,
                                                  exit_code));
}

/* Reads a message that must be of `type` (for task `tid`, if tid >= 0). */
int
expect(peer *p, bh__msg_type type, int64_t tid) {
  if (peer_recv(p) != 0)
    return 1;
  CHECK(p->m.type == type && (tid < 0 || p->m.task_id == tid),
        "expected %s for task %lld, got %s", bh__msg_type_str(type),
        (long long)tid, repr(p->m.root));
  return 0;
}

/* Reads task_info for tid, which must be task `name`. */
int
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
int
take(peer *p, int64_t tid, const char *name) {
  if (expect(p, BH__MSG_NEW_TASK, tid) != 0 ||
      send_simple(p, BH__MSG_TASK_ACCEPTED, tid) != 0)
    return 1;
  return expect_info(p, tid, name);
}

/* How every fake child ends: told to die, it says dead and leaves. */
int
fake_finish(peer *p) {
  if (expect(p, BH__MSG_DIE, -1) != 0)
    return 1;
  CHECK(p->m.root->via.map.size == 1, "die with extra keys: %s",
        repr(p->m.root));
  return send_dead_normal(p, NULL);
}

/* Offers tid and expects `answer` (task_accepted or task_denied). */
int
offer(peer *p, int64_t tid, bh__msg_type answer) {
  if (send_simple(p, BH__MSG_NEW_TASK, tid) != 0 ||
      expect(p, answer, tid) != 0)
    return 1;
  CHECK(p->m.root->via.map.size == 2, "answer %s", repr(p->m.root));
  return 0;
}

/* Reads dead normal with this exit code, then the end of the stream. */
int
expect_dead(peer *p, const char *exit_code) {
  if (expect(p, BH__MSG_DEAD, -1) != 0)
    return 1;
  CHECK(same(p->m.root, "{s:s s:s s:s}", "msg_type", "dead", "death_type",
             "normal", "exit_code", exit_code),
        "dead %s", repr(p->m.root));
  return expect_eof(p);
}

/* One byte through a coordination pipe. */
int
signal_fd(int fd) {
  CHECK(write(fd, "!", 1) == 1, "pipe write: %s", strerror(errno));
  return 0;
}

int
wait_fd_byte(int fd) {
  char c;

  CHECK(read(fd, &c, 1) == 1, "pipe read failed or ended");
  return 0;
}

/* ------------------------------------------------------------------------
 * Forking fakes. */

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
int
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
  f->bee = NULL;
  f->id = -1;
  return 0;
}

/* What the bee kept of the dead fake (it is reaped once mourned). */
static const bh__grave *
fake_grave(const fake *f) {
  const bh__grave *g = f->bee ? bh__stats_grave(f->bee, f->id) : NULL;

  if (g == NULL)
    fprintf(stderr, "fake %d was not reaped\n", (int)f->pid);
  return g;
}

/* True if the bee reaped the fake and it exited with `code`. */
bool
fake_exited(const fake *f, int code) {
  const bh__grave *g = fake_grave(f);

  if (g == NULL)
    return false;
  if (WIFEXITED(g->wstatus) && WEXITSTATUS(g->wstatus) == code)
    return true;
  fprintf(stderr, "fake %d: wstatus 0x%x, want exit %d\n", (int)f->pid,
          (unsigned)g->wstatus, code);
  return false;
}

bool
fake_killed(const fake *f, int sig) {
  const bh__grave *g = fake_grave(f);

  if (g != NULL && WIFSIGNALED(g->wstatus) && WTERMSIG(g->wstatus) == sig)
    return true;
  fprintf(stderr, "fake %d: wstatus 0x%x, want signal %d\n", (int)f->pid,
          g ? (unsigned)g->wstatus : 0u, sig);
  return false;
}

/* ------------------------------------------------------------------------
 * The delegating side: a root bee, its children, and a local root task. */

int
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
int
hive_adopt(hive *h, fake *f, int capacity) {
  int rc;

  f->bee = h->bee;
  f->id = h->bee->next_kid;
  rc = bh__child_add(h->bee, f->fd, f->pid, capacity, NULL, NULL);
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
void
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
int
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
int
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

int
hive_close(hive *h) {
  bh__bee_free(h->bee);
  return loop_teardown(&h->loop, h->live0);
}

/* The wrapped result's other_details, checked to name child `cid`. */
const msgpack_object *
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
