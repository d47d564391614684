/* chan_util.h - the fixture of the channel tests (test_chan.c: reading,
 * hostile input, closing; test_chan_write.c: writing, on_drained, big
 * frames). One end of a socketpair is a bh__chan on a libuv loop; the test
 * drives the other end raw (or with a second bh__chan). Include it from
 * one file per program: it defines close(). */
#ifndef BH_TEST_CHAN_UTIL_H
#define BH_TEST_CHAN_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/chan_raw.h"
#include "runtime/fiber.h"
#include "base/base.h"
#include "wire/wire.h"
#include "runner.h"
#include "runtime/turn.h"
#include <stdio.h>
#include <string.h>

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

static inline unsigned char
pattern(size_t i, unsigned char seed) {
  return (unsigned char)(i * 31 + (i >> 13) + seed);
}

static inline void
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

static inline void
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

static inline void
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

static inline void
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
static inline int
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

static inline void
side_close(side *s) {
  if (s->c != NULL && !s->closed) {
    bh__chan_close(s->c);
    s->closed = true;
  }
}

/* Closes everything and lets the loop finish; returns uv_loop_close(). */
static inline int
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
static inline int
run_until(uv_loop_t *loop, const int *n, int want) {
  while (*n < want)
    if (uv_run(loop, UV_RUN_ONCE) == 0 && *n < want)
      return -1;
  return 0;
}

static inline int
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
static inline int
put_raw_frame(bh__buf *b, const void *body, size_t n) {
  unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};

  if (bh__buf_append(b, hdr, 4) != 0)
    return -1;
  return bh__buf_append(b, body, n);
}

static inline int
put_new_task(bh__buf *b, int64_t id) {
  return bh__wire_put_simple(b, BH__DEFAULT_MAX_FRAME, BH__MSG_NEW_TASK, id);
}

/* A task_done succeeded whose value is a bin of n pattern bytes. */
static inline int
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
static inline int
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

#endif
