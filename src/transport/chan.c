/* chan.c - framed msgpack channels over a transport. See chan.h.
 *
 * The transport (transport.h) moves bytes and, where it can, descriptors;
 * everything else is here, written against its operations only. Blobs
 * (blob.h) travel as memfd descriptors: a blob's descriptor leaves with the
 * first byte written after its frame was encoded, so it always arrives no
 * later than the frame that names it; the reader queues descriptors as
 * they come and each frame takes its own, in order. Over a transport that
 * cannot pass descriptors, the channel's blob queue says so once, at the
 * open, and the encoder puts large bins inline (wire_put.c).
 *
 * A transport whose peer may vanish without a word (TCP) asks for
 * heartbeats (transport.h): the channel then sends a heartbeat in every
 * interval it sent nothing else, takes the peer's for itself, and fails
 * with BH_ETIMEDOUT once it heard nothing at all (no byte of any frame)
 * for heartbeat_misses intervals. */
#include "transport/chan.h"
#include "transport/chan_raw.h"
#include "transport/transport.h"
#include "value/blob.h"
#include "runtime/turn.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)64 << 10)
/* Room beyond a chunk, so that a 64 KiB bin's whole frame fits in the
 * input buffer, which it can then take over (big_start). */
#define READ_SLACK ((size_t)4 << 10)
/* A frame at least this big is read into a buffer of its own, which the
 * message's value can take over (bh__msg_value) instead of copying it. */
#define OWN_FRAME ((size_t)16 << 10)
#define MAX_FDS_QUEUED 1024 /* descriptors no frame has claimed yet */
#define MAX_IOV 64          /* write vectors per system call */

struct bh__chan {
  bh__transport *t;     /* owned */
  int events;           /* what the transport is watched for */
  bh__chan *dirty_next; /* in the turn's list of channels to flush */
  bool dirty;
  bh__buf out;          /* frames not yet handed to the kernel */
  size_t out_off;       /* how much of out the kernel already has */
  bh__blobq blobs_out;  /* descriptors to send with out's next bytes, and
                         * bins sent from where they lie (borrowed) */
  size_t borrow_off;    /* how much of the first borrowed bin is out */
  bh__buf in;           /* bytes read, not yet a whole frame */
  char *big;            /* a large frame being read into its own buffer */
  size_t big_at;        /* where in big its body starts */
  size_t big_len, big_n; /* how much of its big_n bytes came */
  int *fds_in;          /* descriptors received, not yet claimed */
  size_t fds_head, fds_len, fds_cap;
  uint64_t seq_in;      /* the sequence number of the next one to claim */
  bh__blobs held;       /* the blobs of the frame being dispatched */
  size_t max_frame;
  msgpack_zone zone;    /* decoded objects of the current message */
  bh__chan_msg_cb on_msg;
  bh__chan_err_cb on_err;
  void *udata;
  void (*drained)(bh__chan *c, void *udata); /* once, when all is out */
  size_t writes;        /* write system calls that took bytes */
  uv_timer_t *hb;       /* the heartbeat's, or NULL (transport.h) */
  uint64_t heard;       /* when a byte last came (the loop's ms) */
  size_t hb_writes;     /* writes at the last heartbeat tick (0: the
                         * first tick sends one unless output went) */
  bool failed;
  bool closing;
};

static void flush(bh__chan *c);
static bool has_output(const bh__chan *c);
static void io_cb(bh__transport *t, int status, int events);

static void
maybe_drained(bh__chan *c) {
  void (*cb)(bh__chan *, void *) = c->drained;

  if (cb != NULL && !has_output(c)) {
    c->drained = NULL;
    cb(c, c->udata);
  }
}

static void
watch(bh__chan *c, int events) {
  if (events == c->events)
    return;
  c->events = events;
  c->t->ops->watch(c->t, events, io_cb);
}

static void
fail(bh__chan *c, int err, const char *why) {
  if (c->failed || c->closing)
    return;
  c->failed = true;
  watch(c, 0);
  c->on_err(c, err, why, c->udata);
}

/* ------------------------------------------------------------------------
 * Reading. */

static void
fds_close_all(bh__chan *c) {
  while (c->fds_len > 0) {
    close(c->fds_in[c->fds_head++]);
    c->fds_len--;
  }
  c->fds_head = 0;
}

/* Queues a received descriptor: 0, or BH_EPROTO if too many are
 * unclaimed, BH_ENOMEM if the queue cannot grow. A refused descriptor is
 * left to the caller, which closes it (take_fds). */
static int
fds_push(bh__chan *c, int fd) {
  if (c->fds_len == 0)
    c->fds_head = 0;
  if (c->fds_len >= MAX_FDS_QUEUED)
    return BH_EPROTO;
  if (c->fds_head + c->fds_len == c->fds_cap) {
    if (c->fds_head > 0) {
      memmove(c->fds_in, c->fds_in + c->fds_head,
              c->fds_len * sizeof(*c->fds_in));
      c->fds_head = 0;
    } else {
      size_t cap = c->fds_cap ? c->fds_cap * 2 : 8;
      int *v = bh__realloc(c->fds_in, cap * sizeof(*v));

      if (v == NULL)
        return BH_ENOMEM;
      c->fds_in = v;
      c->fds_cap = cap;
    }
  }
  c->fds_in[c->fds_head + c->fds_len++] = fd;
  return 0;
}

/* Resolves one WIRE blob ext into a bin over a received memfd, and turns
 * the ext's bytes into the LOCAL form (values decoded from the frame's
 * bytes later find the blob by id). Returns 0 or BH_EPROTO/-errno. */
static int
claim_blob(bh__chan *c, msgpack_object *o, char *why, size_t whylen) {
  bh__blob_loc r;
  bh__blob *b;
  int fd, rc;

  if (!bh__blob_ext_read(o, &r) || r.kind != BH__BLOB_WIRE) {
    snprintf(why, whylen, "a blob ext that is not a well-formed wire "
             "reference");
    return BH_EPROTO;
  }
  if (c->fds_len == 0) {
    snprintf(why, whylen, "a frame names blob descriptor #%llu, which "
             "never came", (unsigned long long)r.token);
    return BH_EPROTO;
  }
  if (r.token != c->seq_in) {
    snprintf(why, whylen, "a frame names blob descriptor #%llu, but the "
             "next one received is #%llu", (unsigned long long)r.token,
             (unsigned long long)c->seq_in);
    return BH_EPROTO;
  }
  fd = c->fds_in[c->fds_head++];
  c->fds_len--;
  c->seq_in++;
  if (r.off > UINT64_MAX - r.len || r.len > UINT32_MAX) {
    close(fd);
    snprintf(why, whylen, "a blob reference out of range");
    return BH_EPROTO;
  }
  rc = bh__blob_adopt(&b, fd, r.off + r.len, why, whylen);
  if (rc != 0)
    return rc;
  rc = bh__blobs_add(&c->held, b);
  bh__blob_unref(b); /* held has it now, or nobody does */
  if (rc != 0) {
    snprintf(why, whylen, "no memory for a blob");
    return rc;
  }
  r.kind = BH__BLOB_LOCAL;
  r.token = b->id;
  bh__blob_ext_write((char *)o->via.ext.ptr, &r);
  o->type = MSGPACK_OBJECT_BIN;
  o->via.bin.ptr = b->map + r.off;
  o->via.bin.size = (uint32_t)r.len;
  return 0;
}

/* Claims the blobs of a decoded frame, in the order they were packed. */
static int
claim_blobs(bh__chan *c, msgpack_object *o, char *why, size_t whylen) {
  uint32_t i;
  int rc = 0;

  if (o->type == MSGPACK_OBJECT_ARRAY) {
    for (i = 0; i < o->via.array.size && rc == 0; i++)
      rc = claim_blobs(c, &o->via.array.ptr[i], why, whylen);
  } else if (o->type == MSGPACK_OBJECT_MAP) {
    for (i = 0; i < o->via.map.size && rc == 0; i++)
      rc = claim_blobs(c, &o->via.map.ptr[i].val, why, whylen);
  } else if (o->type == MSGPACK_OBJECT_EXT &&
             o->via.ext.type == BH__EXT_BLOB) {
    rc = claim_blob(c, o, why, whylen);
  }
  return rc;
}

/* Handles one whole frame body; returns false if the channel failed. A
 * body in its own buffer (*own == body) may be taken over by the message's
 * consumer; whatever is left there is freed after. */
static bool
dispatch(bh__chan *c, char *body, size_t len, char **own) {
  char err[160];
  bh__msg m;
  int rc;

  rc = own != NULL ? bh__wire_decode(body, len, &c->zone, &m, err,
                                     sizeof(err))
                   : bh__wire_decode_keep(body, len, &c->zone, &m, err,
                                          sizeof(err));
  m.own = own;
  if (rc == 0 && m.blobs > 0)
    rc = claim_blobs(c, (msgpack_object *)m.root, err, sizeof(err));
  /* A heartbeat is the channel's own, where it asked for them; elsewhere
   * it is a message like any other (the bee's rule for unknown ones). */
  if (rc == 0 && !(m.type == BH__MSG_HEARTBEAT && c->hb != NULL))
    c->on_msg(c, &m, c->udata);
  bh_value_free(m.value); /* nobody took it */
  msgpack_zone_clear(&c->zone);
  bh__blobs_release(&c->held);
  if (own != NULL) {
    bh__free_large(*own, len);
    *own = NULL;
  }
  if (rc != 0) {
    fail(c, rc, err);
    return false;
  }
  return !(c->failed || c->closing);
}

/* Starts reading a frame of n bytes into a buffer of its own, with the
 * `have` bytes of its body already read at c->in.data + at. When the whole
 * body fits in the input buffer and little lies before it, that buffer
 * becomes the frame's own (no copy) and the channel reads into a fresh
 * one; else they are copied into a new buffer. */
static bool
big_start(bh__chan *c, size_t at, size_t have, size_t n) {
  if (at + n <= c->in.cap && at <= n / 4) {
    c->big = c->in.data;
    c->big_at = at;
    c->in = (bh__buf){0};
  } else {
    c->big = bh__malloc(n);
    if (c->big == NULL) {
      fail(c, BH_ENOMEM, "no memory for a frame");
      return false;
    }
    memcpy(c->big, c->in.data + at, have);
    c->big_at = 0;
    c->in.len = 0;
  }
  c->big_len = have;
  c->big_n = n;
  return true;
}

/* The large frame is whole: dispatches it. */
static bool
big_done(bh__chan *c) {
  char *own = c->big;

  c->big = NULL;
  return dispatch(c, own + c->big_at, c->big_n, &own);
}

/* A large frame that came whole into c->in at `off`: when little lies
 * around it, the input buffer becomes the frame's own (the message's value
 * can take it over, bh__msg_value) and the bytes after it move to a fresh
 * one. Returns 1 if it was dispatched so (c->in then holds only what
 * followed), 0 if not worth it, -1 if the channel failed or closed. */
static int
dispatch_in_place(bh__chan *c, size_t off, size_t n) {
  size_t at = off + BH__FRAME_HDR, rest = c->in.len - at - n;
  bh__buf fresh = {0};
  char *own = c->in.data;

  if (n < OWN_FRAME || at > n / 4 || rest > n / 4 ||
      (rest > 0 && bh__buf_append(&fresh, own + at + n, rest) != 0))
    return 0;
  c->in = fresh;
  return dispatch(c, own + at, n, &own) ? 1 : -1;
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
      size_t have = c->in.len - off - BH__FRAME_HDR;

      if (n >= OWN_FRAME) { /* the rest is read straight into its buffer */
        big_start(c, off + BH__FRAME_HDR, have, n);
        return; /* nothing of c->in is left over */
      } else if (bh__buf_reserve(&c->in, n + BH__FRAME_HDR) != 0) {
        fail(c, BH_ENOMEM, "no memory for a frame");
      }
      break;
    }
    switch (dispatch_in_place(c, off, n)) {
    case 1:
      off = 0;
      continue;
    case -1:
      return;
    default:
      break;
    }
    if (!dispatch(c, c->in.data + off + BH__FRAME_HDR, n, NULL))
      return;
    off += BH__FRAME_HDR + n;
  }
  if (off > 0) { /* (c->in may have no buffer at all: dispatch_in_place) */
    memmove(c->in.data, c->in.data + off, c->in.len - off);
    c->in.len -= off;
  }
}

/* Queues the descriptors of one receive; false if the channel failed.
 * Every descriptor the transport installed in this process is either
 * queued or closed here: past the first one refused (a peer flooding us
 * beyond MAX_FDS_QUEUED) and after a loss (the numbering of the rest is
 * lost) nothing is queued, and nothing may be left open. */
static bool
take_fds(bh__chan *c, const bh__transport_rx *rx) {
  const char *why = NULL;
  int err = BH_EPROTO;
  size_t i;

  if (rx->fds_lost)
    why = "blob descriptors were lost on the way (out of file "
          "descriptors?)";
  for (i = 0; i < rx->nfds; i++) {
    if (why == NULL && (err = fds_push(c, rx->fds[i])) != 0)
      why = err == BH_ENOMEM ? "no memory for blob descriptors"
                             : "the peer sent more blob descriptors than "
                               "its frames name";
    if (why != NULL)
      close(rx->fds[i]);
  }
  if (why != NULL)
    fail(c, err, why);
  return why == NULL;
}

static void
read_end(bh__chan *c, int err) {
  size_t partial = c->big != NULL ? BH__FRAME_HDR + c->big_len : c->in.len;
  char why[96];

  if (partial > 0) {
    snprintf(why, sizeof(why), "the channel ended inside a frame (%zu "
             "bytes of it came)", partial);
    fail(c, BH_EPROTO, why);
    return;
  }
  fail(c, BH_EPIPE, err == 0 ? "end of stream" : bh_strerror(err));
}

/* Reads what the socket holds, a 64 KiB chunk at a time (more when a
 * frame announced is bigger), and dispatches each whole frame. With
 * `drain` it reads on to the end of the stream: the transport reported
 * an error (a reset) and will not call again, but bytes sent before it may
 * still wait, the peer's last words among them. */
static void
do_read(bh__chan *c, bool drain) {
  bh__transport_rx rx;
  int round;

  for (round = 0; (drain || round < 32) && !c->failed && !c->closing;
       round++) {
    struct iovec iov;
    ssize_t n;

    if (c->big != NULL) { /* only what is left of the large frame */
      iov.iov_base = c->big + c->big_at + c->big_len;
      iov.iov_len = c->big_n - c->big_len;
    } else if (bh__buf_reserve(&c->in, READ_CHUNK + READ_SLACK) != 0) {
      fail(c, BH_ENOMEM, "no memory to read into");
      return;
    } else {
      iov.iov_base = c->in.data + c->in.len;
      iov.iov_len = c->in.cap - c->in.len;
    }
    n = c->t->ops->recv(c->t, iov.iov_base, iov.iov_len, &rx);
    if (n == -EAGAIN)
      return;
    /* A peer that died with our bytes unread resets the connection: that
     * is the end of the stream too, not hostile input. */
    if (n < 0 && n != -ECONNRESET) {
      fail(c, (int)n, strerror((int)-n));
      return;
    }
    if (n > 0 && (rx.nfds > 0 || rx.fds_lost) && !take_fds(c, &rx))
      return;
    if (n <= 0) {
      read_end(c, (int)n);
      return;
    }
    if (c->hb != NULL)
      c->heard = uv_now(c->t->loop);
    if (c->big != NULL) {
      c->big_len += (size_t)n;
      if (c->big_len == c->big_n && !big_done(c))
        return;
      continue; /* what follows the frame may be waiting already */
    }
    c->in.len += (size_t)n;
    parse(c);
    if ((size_t)n < iov.iov_len && !drain)
      return;
  }
}

/* ------------------------------------------------------------------------
 * Writing. */

/* Writes the vectors, with as many queued descriptors as the transport
 * carries in one send if any wait. Returns the bytes written or -errno. */
static ssize_t
send_out(bh__chan *c, struct iovec *iov, int n) {
  size_t max = c->t->ops->max_fds, k = c->blobs_out.len, i;
  int fds[BH__TRANSPORT_MAX_FDS];
  ssize_t w;

  k = k < max ? k : max;
  k = k < BH__TRANSPORT_MAX_FDS ? k : BH__TRANSPORT_MAX_FDS;
  for (i = 0; i < k; i++)
    fds[i] = c->blobs_out.v[i]->fd;
  w = c->t->ops->send(c->t, iov, n, fds, k);
  if (w >= 0)
    bh__blobq_shift(&c->blobs_out, k); /* the peer holds them now */
  return w;
}

static bool
has_output(const bh__chan *c) {
  return c->out_off < c->out.len || c->blobs_out.blen > 0;
}

/* The end of the buffer's bytes that go before the next borrowed bin. */
static size_t
run_end(const bh__chan *c, size_t bi) {
  return bi < c->blobs_out.blen ? c->blobs_out.b[bi].pos : c->out.len;
}

/* Fills iov with the unsent output, at most `limit` bytes in at most
 * MAX_IOV vectors: the buffer's bytes with the borrowed bins between
 * them. Returns the number of vectors and their total in *total. */
static int
gather(const bh__chan *c, struct iovec *iov, size_t limit, size_t *total) {
  const bh__blobq *q = &c->blobs_out;
  size_t off = c->out_off, skip = c->borrow_off, bi = 0, len;
  const char *p;
  int n = 0;

  *total = 0;
  while (n < MAX_IOV && limit > 0) {
    if (off < run_end(c, bi)) {
      p = c->out.data + off;
      len = run_end(c, bi) - off;
      off += len;
    } else if (bi < q->blen) {
      p = q->b[bi].p + skip;
      len = q->b[bi].n - skip;
      skip = 0;
      bi++;
    } else {
      break;
    }
    len = len < limit ? len : limit;
    iov[n++] = (struct iovec){(void *)p, len};
    limit -= len;
    *total += len;
  }
  return n;
}

/* Moves past w written bytes, releasing the borrowed bins written whole. */
static void
advance(bh__chan *c, size_t w) {
  bh__blobq *q = &c->blobs_out;

  while (w > 0) {
    size_t end = run_end(c, 0), k;

    if (c->out_off < end) {
      k = w < end - c->out_off ? w : end - c->out_off;
      c->out_off += k;
    } else {
      k = q->b[0].n - c->borrow_off;
      k = w < k ? w : k;
      c->borrow_off += k;
      if (c->borrow_off == q->b[0].n) {
        bh__blobq_borrow_shift(q, 1);
        c->borrow_off = 0;
      }
    }
    w -= k;
  }
}

/* Drops the bytes already written from the front of c->out once they are
 * most of a large buffer (not on every short write: that moved a payload
 * per write). */
static void
compact(bh__chan *c) {
  size_t left = c->out.len - c->out_off, i;

  if (c->out_off < ((size_t)1 << 20) || c->out_off < left)
    return;
  memmove(c->out.data, c->out.data + c->out_off, left);
  for (i = 0; i < c->blobs_out.blen; i++)
    c->blobs_out.b[i].pos -= c->out_off;
  c->out.len = left;
  c->out_off = 0;
}

/* Hands the output to the kernel: as much as it takes now; the rest when
 * the socket is writable again. */
static void
flush(bh__chan *c) {
  if (c->failed || c->closing)
    return;
  while (has_output(c)) {
    struct iovec iov[MAX_IOV];
    /* With more descriptors than one message carries, each batch goes with
     * one byte, so that each leaves no later than its frame. */
    size_t want, limit = c->blobs_out.len > c->t->ops->max_fds ? 1 : SIZE_MAX;
    ssize_t w = send_out(c, iov, gather(c, iov, limit, &want));

    if (w == -EINTR)
      continue;
    if (w < 0 && w != -EAGAIN && w != -EWOULDBLOCK) {
      fail(c, (int)w, bh_strerror((int)w));
      return;
    }
    if (w > 0) {
      advance(c, (size_t)w);
      c->writes++;
    }
    if (w < 0 || (size_t)w < want) { /* the socket is full: wait for room */
      compact(c);
      watch(c, UV_READABLE | UV_WRITABLE);
      return;
    }
  }
  c->out.len = c->out_off = 0;
  watch(c, UV_READABLE);
  maybe_drained(c);
}

static void
io_cb(bh__transport *t, int status, int events) {
  bh__chan *c = t->data;

  if (status < 0) {
    /* The loop stopped watching: read what is left, then fail. */
    do_read(c, true);
    fail(c, status, uv_strerror(status));
    return;
  }
  if (events & UV_WRITABLE)
    flush(c);
  if ((events & UV_READABLE) && !c->failed && !c->closing)
    do_read(c, false);
}

/* ------------------------------------------------------------------------
 * The turn's flush list. */

/* Channels with output appended this turn (one loop thread each). */
static _Thread_local bh__chan *dirty_head;

void
bh__chan_flush_all(void) {
  while (dirty_head != NULL) {
    bh__chan *c = dirty_head;

    dirty_head = c->dirty_next;
    c->dirty_next = NULL;
    c->dirty = false;
    if (!(c->events & UV_WRITABLE)) /* else the transport's cb will */
      flush(c);
  }
}

static _Thread_local bool urgent;

void
bh__chan_kick_urgent(bh__chan *c) {
  bh__chan_kick(c);
  urgent = true;
}

bool
bh__chan_take_urgent(void) {
  bool was = urgent;

  urgent = false;
  return was;
}

void
bh__chan_forget_all(void) {
  dirty_head = NULL;
  urgent = false;
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

/* ------------------------------------------------------------------------
 * Heartbeats. */

static int
put_heartbeat(bh__buf *b, struct bh__blobq *q, size_t max_frame,
              const void *arg) {
  (void)q;
  (void)arg;
  return bh__wire_put_heartbeat(b, max_frame);
}

/* Every interval: the peer silent for too long is dead; else, if this
 * end sent nothing since the last tick, it tells the peer it lives. */
static void
hb_tick(uv_timer_t *timer) {
  bh__chan *c = timer->data;
  uint64_t bound = (uint64_t)c->t->heartbeat_ms * c->t->heartbeat_misses;
  char why[64];

  if (c->failed || c->closing)
    return;
  if (uv_now(c->t->loop) - c->heard >= bound) {
    snprintf(why, sizeof(why), "no heartbeat for %llu ms",
             (unsigned long long)bound);
    fail(c, BH_ETIMEDOUT, why);
    return;
  }
  /* (The heartbeat's own write is not news at the next tick.) */
  if (c->writes == c->hb_writes && !has_output(c) &&
      bh__chan_send(c, put_heartbeat, NULL, NULL, false) == 0)
    c->hb_writes = c->writes + 1;
  else
    c->hb_writes = c->writes;
}

static int
hb_start(bh__chan *c) {
  bh__transport *t = c->t;

  if (t->heartbeat_ms == 0)
    return 0;
  c->hb = bh__malloc(sizeof(*c->hb));
  if (c->hb == NULL)
    return BH_ENOMEM;
  uv_timer_init(t->loop, c->hb);
  c->hb->data = c;
  c->heard = uv_now(t->loop);
  uv_timer_start(c->hb, hb_tick, t->heartbeat_ms, t->heartbeat_ms);
  return 0;
}

static void
hb_closed(uv_handle_t *h) {
  bh__free(h);
}

static void
hb_stop(bh__chan *c) {
  if (c->hb == NULL)
    return;
  uv_timer_stop(c->hb); /* its callback is never called again */
  uv_close((uv_handle_t *)c->hb, hb_closed);
  c->hb = NULL;
}

/* ------------------------------------------------------------------------
 * Life. */

static void
closed(void *arg) {
  bh__chan *c = arg;

  /* The transport calls this from a libuv close callback, never inside
   * other callbacks, so nothing of c is in use here. */
  fds_close_all(c);
  bh__free(c->fds_in);
  bh__free_large(c->big, c->big_n);
  bh__blobq_free(&c->blobs_out);
  bh__blobs_release(&c->held);
  bh__buf_free(&c->out);
  bh__buf_free(&c->in);
  msgpack_zone_destroy(&c->zone);
  bh__free(c);
}

/* What the loop turn flushes (runtime/turn.h). */
static const bh__turn_output turn_output = {
    bh__chan_flush_all, bh__chan_take_urgent, bh__chan_forget_all};

int
bh__chan_open_on(bh__chan **out, bh__transport *t, size_t max_frame,
                 bh__chan_msg_cb on_msg, bh__chan_err_cb on_err,
                 void *udata) {
  bh__chan *c = bh__calloc(1, sizeof(*c));

  if (c == NULL) {
    t->ops->close(t, NULL, NULL);
    return BH_ENOMEM;
  }
  bh__turn_set_output(&turn_output);
  c->t = t;
  t->data = c;
  /* The one place that decides how large bins travel: as descriptors
   * where the transport passes them, else inline within max_frame. */
  c->blobs_out.inline_bins = t->ops->max_fds == 0;
  c->max_frame = max_frame ? max_frame : BH__DEFAULT_MAX_FRAME;
  c->on_msg = on_msg;
  c->on_err = on_err;
  c->udata = udata;
  msgpack_zone_init(&c->zone, 4096);
  if (hb_start(c) != 0) {
    msgpack_zone_destroy(&c->zone);
    bh__free(c);
    t->ops->close(t, NULL, NULL);
    return BH_ENOMEM;
  }
  watch(c, UV_READABLE);
  *out = c;
  return 0;
}

int
bh__chan_open(bh__chan **out, uv_loop_t *loop, int fd, size_t max_frame,
              bh__chan_msg_cb on_msg, bh__chan_err_cb on_err, void *udata) {
  bh__transport *t;
  int err = bh__unix_open(&t, loop, fd);

  if (err != 0)
    return err;
  return bh__chan_open_on(out, t, max_frame, on_msg, on_err, udata);
}

int
bh__chan_send(bh__chan *c, bh__chan_put_fn put, const void *arg,
              bh_value *hold, bool before_fibers) {
  int rc;

  c->blobs_out.hold = hold;
  rc = put(&c->out, &c->blobs_out, c->max_frame, arg);
  c->blobs_out.hold = NULL;
  if (rc == 0 && before_fibers)
    bh__chan_kick_urgent(c);
  else if (rc == 0)
    bh__chan_kick(c);
  return rc;
}

bh__buf *
bh__chan_out(bh__chan *c) {
  return &c->out;
}

bh__blobq *
bh__chan_blobs(bh__chan *c) {
  return &c->blobs_out;
}

size_t
bh__chan_max_frame(const bh__chan *c) {
  return c->max_frame;
}

void
bh__chan_kick(bh__chan *c) {
  if (has_output(c) && !c->failed && !c->closing && !c->dirty) {
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
  hb_stop(c);
  c->t->ops->close(c->t, closed, c);
}

void
bh__chan_drain(bh__chan *c) {
  if (c != NULL && !c->failed && !c->closing)
    do_read(c, true);
}

void
bh__chan_on_drained(bh__chan *c, void (*cb)(bh__chan *c, void *udata)) {
  c->drained = cb;
  if (has_output(c))
    bh__chan_kick(c);
  else
    maybe_drained(c);
}

size_t
bh__chan_writes(const bh__chan *c) {
  return c->writes;
}

bool
bh__chan_closed(const bh__chan *c) {
  return c->failed || c->closing;
}
