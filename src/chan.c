/* chan.c - framed msgpack channels over libuv pipes. See chan.h. */
#include "chan.h"
#include "turn.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

struct bh__chan {
  uv_pipe_t pipe;
  bh__chan *dirty_next; /* in the turn's list of channels to flush */
  bool dirty;
  uv_write_t wreq;
  bh__buf out;          /* frames not yet handed to the kernel */
  bh__buf inflight;     /* bytes an async uv_write owns */
  bh__buf in;           /* bytes read, not yet a whole frame */
  size_t max_frame;
  msgpack_zone zone;    /* decoded objects of the current message */
  bh__chan_msg_cb on_msg;
  bh__chan_err_cb on_err;
  void *udata;
  int handles;          /* libuv handles not yet closed */
  void (*drained)(bh__chan *c, void *udata); /* once, when all is out */
  bool writing;
  bool failed;
  bool closing;
};

static void flush(bh__chan *c);

static void
maybe_drained(bh__chan *c) {
  void (*cb)(bh__chan *, void *) = c->drained;

  if (cb != NULL && !c->writing && c->out.len == 0) {
    c->drained = NULL;
    cb(c, c->udata);
  }
}

static void
fail(bh__chan *c, int err, const char *why) {
  if (c->failed || c->closing)
    return;
  c->failed = true;
  uv_read_stop((uv_stream_t *)&c->pipe);
  c->on_err(c, err, why, c->udata);
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  bh__chan *c = h->data;

  (void)hint;
  if (bh__buf_reserve(&c->in, 64 << 10) != 0) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = c->in.data + c->in.len;
  buf->len = c->in.cap - c->in.len;
}

/* Handles one whole frame body; returns false if the channel failed. */
static bool
dispatch(bh__chan *c, const char *body, size_t len) {
  char err[160];
  bh__msg m;
  int rc;

  rc = bh__wire_decode(body, len, &c->zone, &m, err, sizeof(err));
  if (rc != 0) {
    msgpack_zone_clear(&c->zone);
    fail(c, rc, err);
    return false;
  }
  c->on_msg(c, &m, c->udata);
  msgpack_zone_clear(&c->zone);
  return !(c->failed || c->closing);
}

/* Splits c->in into frames; keeps a partial frame for later. */
static void
parse(bh__chan *c) {
  size_t off = 0;

  while (c->in.len - off >= BH__FRAME_HDR) {
    size_t n = bh__wire_frame_len((unsigned char *)c->in.data + off);
    char why[96];

    if (n > c->max_frame) {
      snprintf(why, sizeof(why), "frame of %zu bytes exceeds the limit of "
               "%zu bytes", n, c->max_frame);
      fail(c, BH_EMSGSIZE, why);
      return;
    }
    if (c->in.len - off - BH__FRAME_HDR < n) {
      /* Make room for the whole frame at once. */
      if (bh__buf_reserve(&c->in, n + BH__FRAME_HDR) != 0)
        fail(c, BH_ENOMEM, "no memory for a frame");
      break;
    }
    if (!dispatch(c, c->in.data + off + BH__FRAME_HDR, n))
      return;
    off += BH__FRAME_HDR + n;
  }
  memmove(c->in.data, c->in.data + off, c->in.len - off);
  c->in.len -= off;
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  bh__chan *c = s->data;

  (void)buf;
  if (n == 0)
    return;
  if (n < 0) {
    /* A peer that died with our bytes unread resets the connection: that
     * is the end of the stream too, not hostile input. */
    bool end = n == UV_EOF || n == UV_ECONNRESET;
    char why[96];

    if (end && c->in.len > 0) {
      snprintf(why, sizeof(why), "the channel ended inside a frame (%zu "
               "bytes of it came)", c->in.len);
      fail(c, BH_EPROTO, why);
      return;
    }
    fail(c, end ? BH_EPIPE : (int)n,
         n == UV_EOF ? "end of stream" : uv_strerror((int)n));
    return;
  }
  c->in.len += (size_t)n;
  parse(c);
}

static void
close_cb(uv_handle_t *h) {
  bh__chan *c = h->data;

  /* libuv never runs close callbacks inside other callbacks, so nothing
   * of c is in use here. */
  if (--c->handles == 0) {
    bh__buf_free(&c->out);
    bh__buf_free(&c->inflight);
    bh__buf_free(&c->in);
    msgpack_zone_destroy(&c->zone);
    bh__free(c);
  }
}

static void
write_cb(uv_write_t *req, int status) {
  bh__chan *c = req->data;

  c->writing = false;
  c->inflight.len = 0;
  if (c->closing)
    return;
  if (status < 0) {
    fail(c, status, uv_strerror(status));
    return;
  }
  if (c->out.len > 0)
    flush(c);
  else
    maybe_drained(c);
}

/* Hands c->out to the kernel: as much as it takes now, the rest through
 * an asynchronous write that owns it (buffers swap, nothing is copied). */
static void
flush(bh__chan *c) {
  uv_buf_t b;
  int n;
  bh__buf tmp;

  if (c->writing || c->out.len == 0 || c->failed || c->closing)
    return;
  b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
  if (n < 0 && n != UV_EAGAIN) {
    fail(c, n, uv_strerror(n));
    return;
  }
  if (n < 0)
    n = 0;
  if ((size_t)n == c->out.len) {
    c->out.len = 0;
    maybe_drained(c);
    return;
  }
  memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
  c->out.len -= (size_t)n;
  tmp = c->inflight;
  c->inflight = c->out;
  c->out = tmp;
  c->out.len = 0;
  b = uv_buf_init(c->inflight.data, (unsigned)c->inflight.len);
  c->writing = true;
  n = uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, write_cb);
  if (n < 0) {
    c->writing = false;
    fail(c, n, uv_strerror(n));
  }
}

/* Channels with output appended this turn (one loop thread each). */
static _Thread_local bh__chan *dirty_head;

void
bh__chan_flush_all(void) {
  while (dirty_head != NULL) {
    bh__chan *c = dirty_head;

    dirty_head = c->dirty_next;
    c->dirty_next = NULL;
    c->dirty = false;
    flush(c);
  }
}

void
bh__chan_forget_all(void) {
  dirty_head = NULL;
}

static void
undirty(bh__chan *c) {
  bh__chan **p;

  if (!c->dirty)
    return;
  for (p = &dirty_head; *p != NULL; p = &(*p)->dirty_next)
    if (*p == c) {
      *p = c->dirty_next;
      break;
    }
  c->dirty = false;
}

int
bh__chan_open(bh__chan **out, uv_loop_t *loop, int fd, size_t max_frame,
              bh__chan_msg_cb on_msg, bh__chan_err_cb on_err, void *udata) {
  bh__chan *c = bh__calloc(1, sizeof(*c));
  int err;

  if (c == NULL) {
    close(fd);
    return BH_ENOMEM;
  }
  c->max_frame = max_frame ? max_frame : BH__DEFAULT_MAX_FRAME;
  c->on_msg = on_msg;
  c->on_err = on_err;
  c->udata = udata;
  msgpack_zone_init(&c->zone, 4096);
  uv_pipe_init(loop, &c->pipe, 0);
  c->pipe.data = c->wreq.data = c;
  c->handles = 1;
  err = uv_pipe_open(&c->pipe, fd);
  if (err != 0)
    close(fd); /* libuv did not take it */
  else
    err = uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
  if (err != 0) {
    /* From here the pipe owns fd (if it took it): uv_close closes it. */
    c->failed = true;
    bh__chan_close(c);
    return err;
  }
  *out = c;
  return 0;
}

bh__buf *
bh__chan_out(bh__chan *c) {
  return &c->out;
}

size_t
bh__chan_max_frame(const bh__chan *c) {
  return c->max_frame;
}

void
bh__chan_kick(bh__chan *c) {
  if (c->out.len > 0 && !c->failed && !c->closing && !c->dirty) {
    c->dirty = true;
    c->dirty_next = dirty_head;
    dirty_head = c;
    bh__turn_pending();
  }
}

void
bh__chan_close(bh__chan *c) {
  if (c == NULL || c->closing)
    return;
  c->closing = true;
  undirty(c);
  uv_close((uv_handle_t *)&c->pipe, close_cb);
}

void
bh__chan_on_drained(bh__chan *c, void (*cb)(bh__chan *c, void *udata)) {
  c->drained = cb;
  if (c->out.len > 0)
    bh__chan_kick(c);
  else
    maybe_drained(c);
}

bool
bh__chan_closed(const bh__chan *c) {
  return c->failed || c->closing;
}
