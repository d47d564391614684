/* test_chan.c - framed msgpack channels: reassembly of frames however the
 * bytes arrive, hostile input (oversized, garbage, ill-typed), end of
 * stream, one write per turn, on_drained, big frames both ways, closing
 * from callbacks and a loop that closes clean. One end of a socketpair is
 * a bh__chan on a libuv loop; the test drives the other end raw (or with
 * a second bh__chan). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan.h"
#include "fiber.h"
#include "internal.h"
#include "runner.h"
#include "turn.h"

#define MAXMSG 128
#define BIG ((size_t)8 << 20)

/* close() for this whole program. When it closes the watched number, it
 * plays another thread that opens a file right then and gets that number
 * back (a stand-in, /dev/null): a second close of the same fd then closes
 * the stand-in, which the test sees. (libuv closes with a raw syscall, so
 * only the library's own close() calls come here.) */
static struct {
  int fd;
  int closes;
} watch = {-1, 0};

int
close(int fd) {
  int rc = (int)syscall(SYS_close, fd);

  if (rc == 0 && fd >= 0 && fd == watch.fd) {
    int stand_in = open("/dev/null", O_RDONLY | O_CLOEXEC);

    watch.closes++;
    if (stand_in >= 0 && stand_in != fd) {
      dup2(stand_in, fd);
      syscall(SYS_close, stand_in);
    }
  }
  return rc;
}

/* What one channel saw, and how it should react. */
typedef struct side {
  bh__chan *c;
  int nmsg;
  bh__msg_type type[MAXMSG];
  int64_t id[MAXMSG];
  int nerr;
  int err;
  char why[256];
  int nmsg_at_err;
  int close_on_msg;  /* close the channel at this message (1-based) */
  bool close_on_err;
  bool closed;       /* bh__chan_close() was called */
  int ndrained;
  bool close_on_drained;
  int raw_peek;      /* the raw end: bytes readable when drained fired */
  size_t big_len;    /* a big task_done expected: its size and seed */
  unsigned char big_seed;
  int big_ok;        /* 1 once it came intact, -1 if it came damaged */
  void (*then)(struct side *s, const bh__msg *m); /* extra reaction */
  void *peer;        /* for `then` */
} side;

typedef struct fx {
  uv_loop_t loop;
  side a;        /* the channel under test, on sv[0] */
  int raw;       /* sv[1], driven by the test (-1 once closed) */
  size_t live0;  /* bh__alloc_live() before anything was made */
} fx;

static unsigned char
pattern(size_t i, unsigned char seed) {
  return (unsigned char)(i * 31 + (i >> 13) + seed);
}

static void
check_big(side *s, const bh__msg *m) {
  const msgpack_object *v = m->returning_value;
  size_t i;

  if (s->big_len == 0 || m->type != BH__MSG_TASK_DONE || v == NULL ||
      v->type != MSGPACK_OBJECT_BIN)
    return;
  s->big_ok = v->via.bin.size == s->big_len ? 1 : -1;
  for (i = 0; s->big_ok == 1 && i < s->big_len; i++)
    if ((unsigned char)v->via.bin.ptr[i] != pattern(i, s->big_seed))
      s->big_ok = -1;
}

static void
on_msg(bh__chan *c, const bh__msg *m, void *udata) {
  side *s = udata;

  if (s->nmsg < MAXMSG) {
    s->type[s->nmsg] = m->type;
    s->id[s->nmsg] = m->task_id;
  }
  s->nmsg++;
  check_big(s, m);
  if (s->then != NULL)
    s->then(s, m);
  if (s->close_on_msg == s->nmsg) {
    bh__chan_close(c);
    bh__chan_close(c); /* idempotent */
    s->closed = true;
  }
}

static void
on_err(bh__chan *c, int err, const char *why, void *udata) {
  side *s = udata;

  s->nerr++;
  s->err = err;
  s->nmsg_at_err = s->nmsg;
  snprintf(s->why, sizeof(s->why), "%s", why != NULL ? why : "(null)");
  if (s->close_on_err) {
    bh__chan_close(c);
    s->closed = true;
  }
}

static void
on_drained(bh__chan *c, void *udata) {
  side *s = udata;

  s->ndrained++;
  if (s->close_on_drained) {
    bh__chan_close(c);
    s->closed = true;
  }
}

/* Opens the fixture: a socketpair of `type`, a loop with its turn hook,
 * and a channel on sv[0]. Returns 0 or -1. */
static int
fx_open(fx *f, int type, size_t max_frame) {
  int sv[2];

  memset(f, 0, sizeof(*f));
  f->raw = -1;
  f->live0 = bh__alloc_live();
  signal(SIGPIPE, SIG_IGN);
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0 ||
      uv_loop_init(&f->loop) != 0 || bh__turn_init(&f->loop) != 0)
    return -1;
  f->raw = sv[1];
  return bh__chan_open(&f->a.c, &f->loop, sv[0], max_frame, on_msg, on_err,
                       &f->a) == 0 ? 0 : -1;
}

static void
side_close(side *s) {
  if (s->c != NULL && !s->closed) {
    bh__chan_close(s->c);
    s->closed = true;
  }
}

/* Closes everything and lets the loop finish; returns uv_loop_close(). */
static int
fx_close(fx *f) {
  side_close(&f->a);
  if (f->raw >= 0)
    close(f->raw);
  f->raw = -1;
  bh__turn_close();
  uv_run(&f->loop, UV_RUN_DEFAULT);
  return uv_loop_close(&f->loop);
}

/* Every case ends with these: the loop closes with nothing left in it, and
 * every block the library allocated was freed. */
#define FX_CLOSE(f)                                                          \
  do {                                                                       \
    ASSERT_INT_EQ(fx_close(f), 0);                                           \
    ASSERT_INT_EQ(bh__alloc_live(), (f)->live0);                             \
  } while (0)

/* Runs the loop until *n >= want. Returns -1 if the loop has nothing left
 * that could make it happen. */
static int
run_until(uv_loop_t *loop, const int *n, int want) {
  while (*n < want)
    if (uv_run(loop, UV_RUN_ONCE) == 0 && *n < want)
      return -1;
  return 0;
}

static int
write_all(int fd, const void *p, size_t n) {
  const char *s = p;

  while (n > 0) {
    ssize_t w = write(fd, s, n);

    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Appends a frame with a body the test packed itself (or any bytes). */
static int
put_raw_frame(bh__buf *b, const void *body, size_t n) {
  unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};

  if (bh__buf_append(b, hdr, 4) != 0)
    return -1;
  return bh__buf_append(b, body, n);
}

static int
put_new_task(bh__buf *b, int64_t id) {
  return bh__wire_put_simple(b, BH__DEFAULT_MAX_FRAME, BH__MSG_NEW_TASK, id);
}

/* A task_done succeeded whose value is a bin of n pattern bytes. */
static int
put_big(bh__buf *b, int64_t id, size_t n, unsigned char seed) {
  unsigned char *p = malloc(n);
  msgpack_object o = {.type = MSGPACK_OBJECT_BIN};
  bh__wire_done d = {.status = BH_SUCCEEDED, .returning_value = &o};
  size_t i;
  int rc;

  if (p == NULL)
    return -1;
  for (i = 0; i < n; i++)
    p[i] = pattern(i, seed);
  o.via.bin.ptr = (const char *)p;
  o.via.bin.size = (uint32_t)n;
  rc = bh__wire_put_task_done(b, NULL, BH__DEFAULT_MAX_FRAME, id, &d);
  free(p);
  return rc;
}

/* Splits n bytes into frames and decodes each; stores the task ids.
 * Returns the number of frames, or -1 if the bytes are not whole frames. */
static int
split_frames(const char *p, size_t n, int64_t *ids, int max) {
  msgpack_zone z;
  bh__msg m;
  int k = 0;

  msgpack_zone_init(&z, 1024);
  while (n >= 4 && k < max) {
    size_t len = bh__wire_frame_len((const unsigned char *)p);

    if (n - 4 < len || bh__wire_decode(p + 4, len, &z, &m, NULL, 0) != 0)
      break;
    ids[k++] = m.task_id;
    p += 4 + len;
    n -= 4 + len;
    msgpack_zone_clear(&z);
  }
  msgpack_zone_destroy(&z);
  return n == 0 ? k : -1;
}

/* ------------------------------------------------------------------------
 * Reading: frames however the bytes arrive. */

/* Three frames of different types and sizes. Returns the offsets where
 * each ends in `ends`. */
static int
three_frames(bh__buf *b, size_t ends[3]) {
  bh__wire_done d = {.status = BH_CANCELLED, .reason = "enough"};

  if (put_new_task(b, 1) != 0)
    return -1;
  ends[0] = b->len;
  if (bh__wire_put_task_info(b, NULL, BH__DEFAULT_MAX_FRAME, 2, "some.task", NULL,
                             NULL) != 0)
    return -1;
  ends[1] = b->len;
  if (bh__wire_put_task_done(b, NULL, BH__DEFAULT_MAX_FRAME, 3, &d) != 0)
    return -1;
  ends[2] = b->len;
  return 0;
}

TEST(frames_one_byte_at_a_time) {
  bh__buf b = {0};
  size_t ends[3], i;
  int want = 0;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(three_frames(&b, ends), 0);
  for (i = 0; i < b.len; i++) {
    ASSERT_INT_EQ(write_all(f.raw, b.data + i, 1), 0);
    uv_run(&f.loop, UV_RUN_ONCE); /* reads exactly this byte */
    while (want < 3 && ends[want] <= i + 1)
      want++;
    ASSERT_INT_EQ(f.a.nmsg, want); /* each frame once, when complete */
  }
  ASSERT_INT_EQ(f.a.nmsg, 3);
  ASSERT_INT_EQ(f.a.type[0], BH__MSG_NEW_TASK);
  ASSERT_INT_EQ(f.a.type[1], BH__MSG_TASK_INFO);
  ASSERT_INT_EQ(f.a.type[2], BH__MSG_TASK_DONE);
  ASSERT(f.a.id[0] == 1 && f.a.id[1] == 2 && f.a.id[2] == 3);
  ASSERT_INT_EQ(f.a.nerr, 0);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* A child writes 60 frames in pieces of 1 to 12 bytes, each its own
 * write(), as fast as it can: splits fall everywhere, headers included. */
TEST(frames_in_ragged_pieces_from_another_process) {
  bh__buf b = {0};
  size_t off = 0, step = 0;
  int i, status;
  pid_t pid;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  for (i = 0; i < 60; i++)
    ASSERT_INT_EQ(put_new_task(&b, (int64_t)i * 1000003), 0);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    while (off < b.len) {
      size_t n = 1 + step++ % 12;

      n = n < b.len - off ? n : b.len - off;
      if (write_all(f.raw, b.data + off, n) != 0)
        _exit(1);
      off += n;
    }
    _exit(0);
  }
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nmsg, 60), 0);
  ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
  ASSERT_INT_EQ(WEXITSTATUS(status), 0);
  for (i = 0; i < 60; i++)
    ASSERT_INT_EQ(f.a.id[i], (int64_t)i * 1000003);
  ASSERT_INT_EQ(f.a.nerr, 0);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

TEST(two_frames_in_one_write) {
  bh__buf b = {0};
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_new_task(&b, 7), 0);
  ASSERT_INT_EQ(bh__wire_put_simple(&b, BH__DEFAULT_MAX_FRAME,
                                    BH__MSG_TASK_TAKEN, 8), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  uv_run(&f.loop, UV_RUN_ONCE); /* one read holds both */
  ASSERT_INT_EQ(f.a.nmsg, 2);
  ASSERT(f.a.type[0] == BH__MSG_NEW_TASK && f.a.id[0] == 7);
  ASSERT(f.a.type[1] == BH__MSG_TASK_TAKEN && f.a.id[1] == 8);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.nmsg, 2); /* once each */
  ASSERT_INT_EQ(f.a.nerr, 0);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* An unknown msg_type is the owner's business: the channel delivers it. */
TEST(unknown_type_is_delivered) {
  bh__buf b = {0}, body = {0};
  msgpack_packer pk;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  msgpack_packer_init(&pk, &body, bh__buf_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str_with_body(&pk, "msg_type", 8);
  msgpack_pack_str_with_body(&pk, "gossip", 6);
  ASSERT_INT_EQ(put_raw_frame(&b, body.data, body.len), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nmsg, 1), 0);
  ASSERT_INT_EQ(f.a.type[0], BH__MSG_UNKNOWN);
  ASSERT_INT_EQ(f.a.nerr, 0);
  bh__buf_free(&b);
  bh__buf_free(&body);
  FX_CLOSE(&f);
  return 0;
}

/* ------------------------------------------------------------------------
 * Hostile input. */

/* After an error: bytes still arriving are neither read nor dispatched. */
static int
stays_quiet(fx *f) {
  bh__buf b = {0};
  int nmsg = f->a.nmsg, nerr = f->a.nerr;

  if (put_new_task(&b, 99) != 0 || write_all(f->raw, b.data, b.len) != 0)
    return -1;
  bh__buf_free(&b);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return f->a.nmsg == nmsg && f->a.nerr == nerr && bh__chan_closed(f->a.c)
             ? 0
             : -1;
}

TEST(frame_over_max_frame_is_emsgsize) {
  bh__buf one = {0}, b = {0};
  size_t limit;
  char want[64];
  fx f;

  /* id 1 packs in one byte, id 200 in two: a frame of limit + 1. */
  ASSERT_INT_EQ(put_new_task(&one, 1), 0);
  limit = one.len - 4;
  bh__buf_free(&one);
  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, limit), 0);
  ASSERT_INT_EQ(bh__chan_max_frame(f.a.c), limit);
  ASSERT_INT_EQ(put_new_task(&b, 1), 0); /* exactly at the limit: fine */
  ASSERT_INT_EQ(bh__wire_put_simple(&b, SIZE_MAX, BH__MSG_NEW_TASK, 200), 0);
  ASSERT_INT_EQ(b.len - (limit + 4) - 4, limit + 1);
  ASSERT_INT_EQ(put_new_task(&b, 2), 0); /* after the bad one: dropped */
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nerr, 1), 0);
  ASSERT_INT_EQ(f.a.err, BH_EMSGSIZE);
  ASSERT_INT_EQ(f.a.nmsg, 1);
  ASSERT_INT_EQ(f.a.id[0], 1);
  snprintf(want, sizeof(want), "frame of %zu bytes", limit + 1);
  ASSERT(strstr(f.a.why, want) != NULL);
  snprintf(want, sizeof(want), "limit of %zu bytes", limit);
  ASSERT(strstr(f.a.why, want) != NULL);
  ASSERT_INT_EQ(stays_quiet(&f), 0);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* The header alone decides: no waiting for (or room made for) 4 GiB. */
TEST(huge_announced_length_fails_at_the_header) {
  static const unsigned char hdr[4] = {0xff, 0xff, 0xff, 0xff};
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(write_all(f.raw, hdr, 4), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nerr, 1), 0);
  ASSERT_INT_EQ(f.a.err, BH_EMSGSIZE);
  ASSERT(strstr(f.a.why, "4294967295") != NULL);
  ASSERT_INT_EQ(f.a.nmsg, 0);
  ASSERT_INT_EQ(stays_quiet(&f), 0);
  FX_CLOSE(&f);
  return 0;
}

/* Sends one frame with body `body` and expects BH_EPROTO whose message
 * holds `needle`, and no message. */
static int
eproto_for(const void *body, size_t n, const char *needle) {
  bh__buf b = {0};
  fx f;

  if (fx_open(&f, SOCK_STREAM, 0) != 0 || put_raw_frame(&b, body, n) != 0 ||
      write_all(f.raw, b.data, b.len) != 0 ||
      run_until(&f.loop, &f.a.nerr, 1) != 0)
    return -1;
  bh__buf_free(&b);
  if (f.a.err != BH_EPROTO || f.a.nmsg != 0 ||
      strstr(f.a.why, needle) == NULL || stays_quiet(&f) != 0) {
    fprintf(stderr, "err %d, %d messages, why \"%s\" (wanted \"%s\")\n",
            f.a.err, f.a.nmsg, f.a.why, needle);
    return -1;
  }
  return fx_close(&f) == 0 && bh__alloc_live() == f.live0 ? 0 : -1;
}

TEST(garbage_body_is_eproto) {
  static const unsigned char never_used[] = {0xc1, 0xc1, 0xc1, 0xc1, 0xc1};
  static const unsigned char array[] = {0x92, 0x01, 0x02};
  static const unsigned char trailing[] = {0x80, 0x00};
  static const unsigned char cut[] = {0x81, 0xa8, 'm', 's', 'g'};

  ASSERT_INT_EQ(eproto_for(never_used, sizeof(never_used), "msgpack"), 0);
  ASSERT_INT_EQ(eproto_for(cut, sizeof(cut), "msgpack"), 0);
  ASSERT_INT_EQ(eproto_for(trailing, sizeof(trailing), "msgpack"), 0);
  ASSERT_INT_EQ(eproto_for("", 0, "msgpack"), 0);
  ASSERT_INT_EQ(eproto_for(array, sizeof(array), "not a map"), 0);
  return 0;
}

TEST(wrong_field_type_is_eproto_naming_the_field) {
  bh__buf body = {0};
  msgpack_packer pk;

  msgpack_packer_init(&pk, &body, bh__buf_write);
  msgpack_pack_map(&pk, 3);
  msgpack_pack_str_with_body(&pk, "msg_type", 8);
  msgpack_pack_str_with_body(&pk, "task_info", 9);
  msgpack_pack_str_with_body(&pk, "task_id", 7);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_str_with_body(&pk, "name", 4);
  msgpack_pack_int(&pk, 5);
  ASSERT_INT_EQ(eproto_for(body.data, body.len,
                           "task_info: field 'name' must be str"), 0);
  body.len = 0;
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "msg_type", 8);
  msgpack_pack_str_with_body(&pk, "new_task", 8);
  msgpack_pack_str_with_body(&pk, "task_id", 7);
  msgpack_pack_str_with_body(&pk, "7", 1);
  ASSERT_INT_EQ(eproto_for(body.data, body.len, "'task_id'"), 0);
  bh__buf_free(&body);
  return 0;
}

static int
close_after(size_t cut, int want_err, int want_msgs) {
  bh__buf b = {0};
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_new_task(&b, 5), 0);
  ASSERT_INT_EQ(put_new_task(&b, 6), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len - cut), 0);
  close(f.raw);
  f.raw = -1;
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nerr, 1), 0);
  ASSERT_INT_EQ(f.a.err, want_err);
  ASSERT(f.a.why[0] != '\0');
  ASSERT_INT_EQ(f.a.nmsg, want_msgs);
  ASSERT_INT_EQ(f.a.nmsg_at_err, want_msgs);
  ASSERT(bh__chan_closed(f.a.c));
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* Whole frames, then the end: the end of the stream. */
TEST(peer_close_is_epipe) {
  return close_after(0, BH_EPIPE, 2);
}

/* A whole frame, then half of one, then the end: the peer broke off a
 * frame, which is a protocol error. */
TEST(peer_close_inside_a_frame_is_eproto) {
  return close_after(3, BH_EPROTO, 1);
}

/* ------------------------------------------------------------------------
 * Writing: one write per turn. */

typedef struct sender {
  bh__chan *c;
  int64_t id;
  int rc;
} sender;

static void
sender_fn(void *arg) {
  sender *s = arg;

  s->rc = put_new_task(bh__chan_out(s->c), s->id);
  bh__chan_kick(s->c);
}

static void
nothing(void *arg) {
  (void)arg;
}

/* Runs n fibers at once so that the pool keeps n stacks: the blocks those
 * hold are then in the fixture's baseline, not counted as a leak. */
static void
warm_stack_pool(int n) {
  bh__fiber *f[8];
  int i;

  for (i = 0; i < n && i < 8; i++)
    if ((f[i] = bh__fiber_new(nothing, NULL)) != NULL)
      bh__fiber_wake(f[i], 0);
  bh__sched_run();
}

/* Reads what is readable now, without waiting. */
static ssize_t
recv_now(int fd, char *p, size_t n) {
  ssize_t r;

  do
    r = recv(fd, p, n, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return r;
}

/* The channel counts its write system calls (bh__chan_writes). Three
 * fibers each append a frame and kick in the same turn; one write must
 * carry all three, in wake order. */
TEST(one_turn_one_write) {
  char got[1024];
  int64_t ids[8];
  sender s[3];
  ssize_t n;
  size_t total = 0;
  int i;
  fx f;

  warm_stack_pool(3);
  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  for (i = 0; i < 3; i++) {
    bh__fiber *fib;

    s[i] = (sender){.c = f.a.c, .id = 40 + i};
    fib = bh__fiber_new(sender_fn, &s[i]);
    ASSERT(fib != NULL);
    bh__fiber_wake(fib, 0);
  }
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__turn_run();
  for (i = 0; i < 3; i++)
    ASSERT_INT_EQ(s[i].rc, 0);
  ASSERT_INT_EQ(bh__chan_writes(f.a.c), 1);
  n = recv_now(f.raw, got, sizeof(got));
  ASSERT(n > 0);
  ASSERT_INT_EQ(split_frames(got, (size_t)n, ids, 8), 3);
  ASSERT(ids[0] == 40 && ids[1] == 41 && ids[2] == 42);
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  /* The same from main: appended and kicked twice, sent once. */
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 50), 0);
  bh__chan_kick(f.a.c);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 51), 0);
  bh__chan_kick(f.a.c);
  total = bh__chan_out(f.a.c)->len;
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__turn_run();
  ASSERT_INT_EQ(bh__chan_writes(f.a.c), 2);
  n = recv_now(f.raw, got, sizeof(got));
  ASSERT_INT_EQ(n, total);
  ASSERT_INT_EQ(split_frames(got, (size_t)n, ids, 8), 2);
  ASSERT(ids[0] == 50 && ids[1] == 51);
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  FX_CLOSE(&f);
  return 0;
}

/* Replies appended from a message callback go out, as one write, before
 * the loop next blocks (the turn hook). */
static void
reply_twice(side *s, const bh__msg *m) {
  put_new_task(bh__chan_out(s->c), m->task_id + 1);
  bh__chan_kick(s->c);
  put_new_task(bh__chan_out(s->c), m->task_id + 2);
  bh__chan_kick(s->c);
}

TEST(replies_from_a_callback_leave_in_one_write) {
  bh__buf b = {0};
  char got[1024];
  int64_t ids[8];
  ssize_t n;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  f.a.then = reply_twice;
  ASSERT_INT_EQ(put_new_task(&b, 70), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nmsg, 1), 0);
  uv_run(&f.loop, UV_RUN_NOWAIT); /* the hook runs before polling */
  ASSERT_INT_EQ(bh__chan_writes(f.a.c), 1);
  n = recv_now(f.raw, got, sizeof(got));
  ASSERT(n > 0);
  ASSERT_INT_EQ(split_frames(got, (size_t)n, ids, 8), 2);
  ASSERT(ids[0] == 71 && ids[1] == 72);
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* On a stream socket: after the turn, every frame is readable at once. */
TEST(frames_of_a_turn_are_all_in_the_kernel_after_it) {
  char got[4096];
  int64_t ids[64];
  size_t total;
  ssize_t n;
  int i;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  for (i = 0; i < 50; i++) {
    ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), i), 0);
    bh__chan_kick(f.a.c);
  }
  total = bh__chan_out(f.a.c)->len;
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__turn_run();
  n = recv_now(f.raw, got, sizeof(got));
  ASSERT_INT_EQ(n, total);
  ASSERT_INT_EQ(split_frames(got, (size_t)n, ids, 64), 50);
  for (i = 0; i < 50; i++)
    ASSERT_INT_EQ(ids[i], i);
  FX_CLOSE(&f);
  return 0;
}

/* Nothing is sent without a kick (and a turn). */
TEST(appending_without_kick_sends_nothing) {
  char got[256];
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 1), 0);
  bh__turn_run();
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__chan_kick(f.a.c);
  bh__turn_run();
  ASSERT(recv_now(f.raw, got, sizeof(got)) > 0);
  FX_CLOSE(&f);
  return 0;
}

/* ------------------------------------------------------------------------
 * on_drained. */

static int peek_fd = -1;

static void
on_drained_peek(bh__chan *c, void *udata) {
  side *s = udata;
  char buf[4096];

  (void)c;
  s->ndrained++;
  s->raw_peek = (int)recv(peek_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);
}

TEST(drained_fires_at_once_when_nothing_is_pending) {
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  bh__chan_on_drained(f.a.c, on_drained);
  ASSERT_INT_EQ(f.a.ndrained, 1);
  bh__turn_run();
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.ndrained, 1); /* once */
  FX_CLOSE(&f);
  return 0;
}

TEST(drained_fires_once_the_bytes_are_in_the_kernel) {
  size_t total;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  peek_fd = f.raw;
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 1), 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 2), 0);
  total = bh__chan_out(f.a.c)->len;
  bh__chan_on_drained(f.a.c, on_drained_peek); /* kicks: no kick needed */
  ASSERT_INT_EQ(f.a.ndrained, 0);
  bh__turn_run();
  ASSERT_INT_EQ(f.a.ndrained, 1);
  ASSERT_INT_EQ(f.a.raw_peek, total); /* all readable when it fired */
  bh__turn_run();
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.ndrained, 1);
  FX_CLOSE(&f);
  return 0;
}

/* ------------------------------------------------------------------------
 * Big frames: more than the socket buffer holds, so the asynchronous
 * write path carries them. Two channels on one loop. */

typedef struct pair {
  fx f;      /* f.a on sv[0] */
  side b;    /* the peer channel, on sv[1] */
} pair;

static int
pair_open(pair *p) {
  int fd;

  if (fx_open(&p->f, SOCK_STREAM, 0) != 0)
    return -1;
  memset(&p->b, 0, sizeof(p->b));
  fd = p->f.raw;
  p->f.raw = -1;
  return bh__chan_open(&p->b.c, &p->f.loop, fd, 0, on_msg, on_err, &p->b);
}

static int
pair_close(pair *p) {
  side_close(&p->b);
  return fx_close(&p->f);
}

/* B answers a big frame with a big frame of its own. */
static void
answer_big(side *s, const bh__msg *m) {
  if (m->type == BH__MSG_TASK_DONE && s->big_ok == 1 &&
      put_big(bh__chan_out(s->c), m->task_id + 1, BIG, 0x77) == 0)
    bh__chan_kick(s->c);
}

TEST(big_frame_both_ways) {
  pair p;

  ASSERT_INT_EQ(pair_open(&p), 0);
  p.b.big_len = p.f.a.big_len = BIG;
  p.b.big_seed = 0x11;
  p.f.a.big_seed = 0x77;
  p.b.then = answer_big;
  ASSERT_INT_EQ(put_big(bh__chan_out(p.f.a.c), 1, BIG, 0x11), 0);
  bh__chan_on_drained(p.f.a.c, on_drained);
  bh__turn_run();
  /* 8 MiB do not fit in the socket: the rest is in flight. */
  ASSERT_INT_EQ(p.f.a.ndrained, 0);
  ASSERT_INT_EQ(run_until(&p.f.loop, &p.b.nmsg, 1), 0);
  ASSERT_INT_EQ(p.b.big_ok, 1);
  ASSERT_INT_EQ(p.f.a.ndrained, 1);
  ASSERT_INT_EQ(run_until(&p.f.loop, &p.f.a.nmsg, 1), 0);
  ASSERT_INT_EQ(p.f.a.big_ok, 1);
  ASSERT_INT_EQ(p.f.a.id[0], 2);
  ASSERT(p.f.a.nerr == 0 && p.b.nerr == 0);
  ASSERT_INT_EQ(pair_close(&p), 0);
  ASSERT_INT_EQ(bh__alloc_live(), p.f.live0);
  return 0;
}

/* Closing drops unsent output; closing in on_drained must drop nothing,
 * since by then every byte is in the kernel: the peer gets the whole
 * frame, then the end of the stream. */
TEST(close_when_drained_loses_nothing) {
  pair p;

  ASSERT_INT_EQ(pair_open(&p), 0);
  p.b.big_len = BIG;
  p.b.big_seed = 0x33;
  p.f.a.close_on_drained = true;
  ASSERT_INT_EQ(put_big(bh__chan_out(p.f.a.c), 1, BIG, 0x33), 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(p.f.a.c), 2), 0);
  bh__chan_kick(p.f.a.c);
  bh__turn_run(); /* starts the write */
  bh__chan_on_drained(p.f.a.c, on_drained); /* while it is in flight */
  ASSERT_INT_EQ(p.f.a.ndrained, 0);
  ASSERT_INT_EQ(run_until(&p.f.loop, &p.b.nerr, 1), 0);
  ASSERT_INT_EQ(p.f.a.ndrained, 1);
  ASSERT_INT_EQ(p.b.nmsg, 2);
  ASSERT_INT_EQ(p.b.big_ok, 1);
  ASSERT_INT_EQ(p.b.id[1], 2);
  ASSERT_INT_EQ(p.b.err, BH_EPIPE);
  ASSERT_INT_EQ(pair_close(&p), 0);
  ASSERT_INT_EQ(bh__alloc_live(), p.f.live0);
  return 0;
}

/* Output appended while a write is in flight follows it, in order. */
TEST(appends_during_a_write_follow_it) {
  pair p;
  int i;

  ASSERT_INT_EQ(pair_open(&p), 0);
  p.b.big_len = BIG;
  p.b.big_seed = 0x44;
  ASSERT_INT_EQ(put_big(bh__chan_out(p.f.a.c), 1, BIG, 0x44), 0);
  bh__chan_kick(p.f.a.c);
  bh__turn_run();
  for (i = 2; i <= 20; i++) {
    ASSERT_INT_EQ(put_new_task(bh__chan_out(p.f.a.c), i), 0);
    bh__chan_kick(p.f.a.c);
    bh__turn_run();
  }
  ASSERT_INT_EQ(run_until(&p.f.loop, &p.b.nmsg, 20), 0);
  ASSERT_INT_EQ(p.b.big_ok, 1);
  for (i = 0; i < 20; i++)
    ASSERT_INT_EQ(p.b.id[i], i + 1);
  ASSERT(p.f.a.nerr == 0 && p.b.nerr == 0);
  ASSERT_INT_EQ(pair_close(&p), 0);
  ASSERT_INT_EQ(bh__alloc_live(), p.f.live0);
  return 0;
}

/* ------------------------------------------------------------------------
 * Closing. */

TEST(close_in_msg_callback_stops_dispatch) {
  bh__buf b = {0};
  int i;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  f.a.close_on_msg = 1;
  for (i = 1; i <= 3; i++)
    ASSERT_INT_EQ(put_new_task(&b, i), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nmsg, 1), 0); /* one read: all 3 */
  uv_run(&f.loop, UV_RUN_NOWAIT);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.nmsg, 1);
  ASSERT_INT_EQ(f.a.nerr, 0); /* closing is not an error */
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

TEST(close_in_err_callback) {
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  f.a.close_on_err = true;
  close(f.raw);
  f.raw = -1;
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nerr, 1), 0);
  ASSERT_INT_EQ(f.a.err, BH_EPIPE);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.nerr, 1);
  FX_CLOSE(&f);
  return 0;
}

/* A write in flight when the channel closes is dropped: no callback, no
 * leak, and the loop still closes. */
TEST(close_with_a_write_in_flight) {
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_big(bh__chan_out(f.a.c), 1, BIG, 1), 0);
  bh__chan_on_drained(f.a.c, on_drained);
  bh__turn_run();
  ASSERT_INT_EQ(f.a.ndrained, 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 2), 0); /* queued too */
  bh__chan_kick(f.a.c);
  bh__chan_close(f.a.c);
  f.a.closed = true;
  bh__chan_kick(f.a.c); /* after close: ignored */
  bh__turn_run();
  uv_run(&f.loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(f.a.ndrained, 0);
  ASSERT_INT_EQ(f.a.nerr, 0);
  FX_CLOSE(&f);
  return 0;
}

/* Closing before the turn drops the kicked output and unlists the
 * channel, so the turn does not touch it. */
TEST(close_while_kicked) {
  char got[256];
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 1), 0);
  bh__chan_kick(f.a.c);
  bh__chan_close(f.a.c);
  f.a.closed = true;
  bh__turn_close(); /* so that no turn runs before the channel is freed */
  uv_run(&f.loop, UV_RUN_DEFAULT); /* frees it... */
  bh__turn_run();                  /* ...so this must not flush it */
  ASSERT(recv(f.raw, got, sizeof(got), MSG_DONTWAIT) == 0); /* EOF only */
  FX_CLOSE(&f);
  return 0;
}

/* Writing to a peer that is gone fails the channel with BH_EPIPE (the
 * process ignores SIGPIPE, as bh_run does). */
TEST(write_to_a_closed_peer_is_epipe) {
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  close(f.raw);
  f.raw = -1;
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 1), 0);
  bh__chan_kick(f.a.c);
  bh__turn_run();
  ASSERT_INT_EQ(f.a.nerr, 1);
  ASSERT_INT_EQ(f.a.err, BH_EPIPE);
  ASSERT(bh__chan_closed(f.a.c));
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.nerr, 1);
  FX_CLOSE(&f);
  return 0;
}

/* A descriptor that is not open: the open fails and leaves nothing behind
 * once the loop has run. */
TEST(open_of_a_bad_fd_fails_clean) {
  size_t live0 = bh__alloc_live();
  uv_loop_t loop;
  bh__chan *c = NULL;

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT(bh__chan_open(&c, &loop, 1 << 20, 0, on_msg, on_err, NULL) < 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* A descriptor that is not a stream socket (a pipe's write end): the open
 * fails and closes fd exactly once. */
TEST(open_failure_closes_fd_once) {
  size_t live0 = bh__alloc_live();
  uv_loop_t loop;
  bh__chan *c = NULL;
  int p[2], closed_twice = 0;

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT_INT_EQ(pipe(p), 0);
  watch.fd = p[1];
  ASSERT(bh__chan_open(&c, &loop, p[1], 0, on_msg, on_err, NULL) < 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  watch.fd = -1;
  if (watch.closes == 0) { /* libuv closed it */
    ASSERT(fcntl(p[1], F_GETFD) < 0 && errno == EBADF);
  } else if (fcntl(p[1], F_GETFD) < 0) { /* the library, then again */
    fprintf(stderr, "fd %d was closed twice: the second close hit the "
            "file that had reused the number\n", p[1]);
    closed_twice = 1;
  } else {
    close(p[1]); /* the stand-in */
  }
  close(p[0]);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  ASSERT_INT_EQ(closed_twice, 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(frames_one_byte_at_a_time),
          TEST_ENTRY(frames_in_ragged_pieces_from_another_process),
          TEST_ENTRY(two_frames_in_one_write),
          TEST_ENTRY(unknown_type_is_delivered),
          TEST_ENTRY(frame_over_max_frame_is_emsgsize),
          TEST_ENTRY(huge_announced_length_fails_at_the_header),
          TEST_ENTRY(garbage_body_is_eproto),
          TEST_ENTRY(wrong_field_type_is_eproto_naming_the_field),
          TEST_ENTRY(peer_close_is_epipe),
          TEST_ENTRY(peer_close_inside_a_frame_is_eproto), TEST_ENTRY(one_turn_one_write),
          TEST_ENTRY(replies_from_a_callback_leave_in_one_write),
          TEST_ENTRY(frames_of_a_turn_are_all_in_the_kernel_after_it),
          TEST_ENTRY(appending_without_kick_sends_nothing),
          TEST_ENTRY(drained_fires_at_once_when_nothing_is_pending),
          TEST_ENTRY(drained_fires_once_the_bytes_are_in_the_kernel),
          TEST_ENTRY_T(big_frame_both_ways, 30),
          TEST_ENTRY_T(close_when_drained_loses_nothing, 30),
          TEST_ENTRY_T(appends_during_a_write_follow_it, 30),
          TEST_ENTRY(close_in_msg_callback_stops_dispatch),
          TEST_ENTRY(close_in_err_callback),
          TEST_ENTRY(close_with_a_write_in_flight),
          TEST_ENTRY(close_while_kicked),
          TEST_ENTRY(write_to_a_closed_peer_is_epipe),
          TEST_ENTRY(open_of_a_bad_fd_fails_clean),
          TEST_ENTRY(open_failure_closes_fd_once))
