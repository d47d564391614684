/* wire_put.c - encoding every message of the protocol (docs/PROTOCOL.md):
 * each writes every field the reference lists, in the reference's key
 * order. Large bins leave as blobs (blob.h); middle-sized ones are
 * borrowed (bh__borrow). */
#include <stdint.h>
#include <string.h>

#include "value/blob.h"
#include "base/base.h"
#include "wire/wire.h"

static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

/* ------------------------------------------------------------------------
 * Encoding. Each message is packed straight into the caller's buffer after
 * a placeholder header; the header is patched once the body length is
 * known, and on any failure the buffer is cut back to where it was. */

typedef struct enc {
  bh__buf *b;
  size_t start; /* b->len before this frame */
  bh__blobq *q; /* where large bins go as blobs, or NULL: inline */
  size_t q_start; /* q->len before this frame */
  size_t r_start; /* q->blen before this frame */
  size_t borrowed; /* bytes of this frame borrowed, not in b */
  msgpack_packer pk;
  int rc; /* first packing failure */
} enc;

static void
put_strn(enc *e, const char *s, size_t n) {
  if (e->rc == 0)
    e->rc = msgpack_pack_str(&e->pk, n);
  if (e->rc == 0)
    e->rc = msgpack_pack_str_body(&e->pk, s, n);
}

static void
put_str(enc *e, const char *s) {
  put_strn(e, s, strlen(s));
}

/* A key or another literal: its length is known when compiling, and a
 * strlen() per key was a good part of encoding a small message. */
#define put_lit(e, s) put_strn((e), (s), sizeof(s) - 1)

const char *
bh__text_cut(const char *s, char buf[BH__TEXT_MAX + 1]) {
  size_t n = BH__TEXT_MAX - 3;

  if (strlen(s) <= BH__TEXT_MAX)
    return s;
  /* Back to the first byte of a character: never half a UTF-8 sequence. */
  while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
    n--;
  memcpy(buf, s, n);
  memcpy(buf + n, "...", 4);
  return buf;
}

/* A text the library made: whole, or cut (bh__text_cut) when its message
 * did not fit whole. */
static void
put_text(enc *e, const char *s, bool cut) {
  char buf[BH__TEXT_MAX + 1];

  put_str(e, cut ? bh__text_cut(s, buf) : s);
}

static void
put_int(enc *e, int64_t v) {
  if (e->rc == 0)
    e->rc = msgpack_pack_int64(&e->pk, v);
}

/* Queues b's descriptor on the channel (taking the reference) and packs
 * the WIRE ext naming bytes [off, off + len) of it. */
static void
put_blob_ref(enc *e, bh__blob *b, size_t off, size_t len) {
  bh__blob_loc r = {BH__BLOB_WIRE, e->q->next_seq, off, len};
  char body[BH__BLOB_EXT_LEN];

  if (bh__blobq_push(e->q, b) != 0) {
    bh__blob_unref(b);
    e->rc = BH_ENOMEM;
    return;
  }
  bh__blob_ext_write(body, &r);
  e->rc = msgpack_pack_ext(&e->pk, sizeof(body), BH__EXT_BLOB) ||
          msgpack_pack_ext_body(&e->pk, body, sizeof(body));
}

/* A large bin: sent by descriptor, without a copy when it lies in a blob
 * that can be sent on, else copied once into a new sealed memfd; inline
 * where no descriptor can go (the queue says so) or if even the copy fails
 * (out of descriptors). */
static void
put_bin(enc *e, const char *p, size_t n) {
  bh__blob *b = e->q->inline_bins ? NULL : bh__blob_find(p, n);

  if (e->q->inline_bins) {
    e->rc = msgpack_pack_bin(&e->pk, n) || msgpack_pack_bin_body(&e->pk, p, n);
  } else if (b != NULL && b->fd >= 0) {
    bh__blob_ref(b);
    put_blob_ref(e, b, (size_t)(p - b->map), n);
  } else if (bh__blob_copy(&b, p, n) == 0) {
    put_blob_ref(e, b, 0, n);
  } else {
    e->rc = msgpack_pack_bin(&e->pk, n) || msgpack_pack_bin_body(&e->pk, p, n);
  }
}

/* A blob ext found in a value to send: a LOCAL one names a blob of this
 * process; any other cannot be sent (BH_EINVAL). */
static void
put_ext(enc *e, const msgpack_object *o) {
  bh__blob_loc r;
  bh__blob *b = NULL;

  if (bh__blob_ext_read(o, &r) && r.kind == BH__BLOB_LOCAL)
    b = bh__blob_by_id(r.token);
  if (b == NULL || b->map == NULL || r.off > b->size ||
      r.len > b->size - r.off) {
    e->rc = BH_EINVAL;
    return;
  }
  put_bin(e, b->map + r.off, r.len);
}

/* True if the bin o lies in the value the sender lets us borrow from, and
 * is worth a write vector of its own. */
static bool
borrowable(const enc *e, const msgpack_object *o) {
  const bh_value *h = e->q->hold;
  const char *p = o->via.bin.ptr;

  return h != NULL && o->via.bin.size >= BH__BORROW_MIN && p >= h->data &&
         (size_t)(p - h->data) <= h->size &&
         o->via.bin.size <= h->size - (size_t)(p - h->data);
}

/* Packs a bin's header only; the channel writes its bytes from where they
 * lie. */
static void
put_borrowed(enc *e, const msgpack_object *o) {
  e->rc = msgpack_pack_bin(&e->pk, o->via.bin.size);
  if (e->rc == 0)
    e->rc = bh__blobq_borrow(e->q, e->b->len, o->via.bin.ptr,
                             o->via.bin.size);
  if (e->rc == 0)
    e->borrowed += o->via.bin.size;
}

/* Packs o item by item, sending large bins as blobs and borrowing
 * middle-sized ones. */
static void
put_walk(enc *e, const msgpack_object *o) {
  uint32_t i;

  switch (o->type) {
  case MSGPACK_OBJECT_ARRAY:
    e->rc = msgpack_pack_array(&e->pk, o->via.array.size);
    for (i = 0; i < o->via.array.size && e->rc == 0; i++)
      put_walk(e, &o->via.array.ptr[i]);
    return;
  case MSGPACK_OBJECT_MAP:
    e->rc = msgpack_pack_map(&e->pk, o->via.map.size);
    for (i = 0; i < o->via.map.size && e->rc == 0; i++) {
      e->rc = msgpack_pack_object(&e->pk, o->via.map.ptr[i].key);
      if (e->rc == 0)
        put_walk(e, &o->via.map.ptr[i].val);
    }
    return;
  case MSGPACK_OBJECT_BIN:
    if (o->via.bin.size > 0 && o->via.bin.size >= bh__blob_threshold()) {
      put_bin(e, o->via.bin.ptr, o->via.bin.size);
      return;
    }
    if (borrowable(e, o)) {
      put_borrowed(e, o);
      return;
    }
    break;
  case MSGPACK_OBJECT_EXT:
    if (o->via.ext.type == BH__EXT_BLOB) {
      put_ext(e, o);
      return;
    }
    break;
  default:
    break;
  }
  e->rc = msgpack_pack_object(&e->pk, *o);
}

/* Packs o, or nil when o is NULL. */
static void
put_obj(enc *e, const msgpack_object *o) {
  if (e->rc != 0)
    return;
  if (o == NULL)
    e->rc = msgpack_pack_nil(&e->pk);
  else if (e->q == NULL)
    e->rc = msgpack_pack_object(&e->pk, *o);
  else
    put_walk(e, o);
}

/* Starts a frame whose map has `nkeys` keys, msg_type first. */
static int
enc_begin(enc *e, bh__buf *b, bh__blobq *q, bh__msg_type type,
          uint32_t nkeys) {
  static const char zero[BH__FRAME_HDR];

  e->b = b;
  e->start = b->len;
  e->q = q;
  e->q_start = q != NULL ? q->len : 0;
  e->r_start = q != NULL ? q->blen : 0;
  e->borrowed = 0;
  e->rc = 0;
  if (bh__buf_append(b, zero, sizeof(zero)) != 0)
    return BH_ENOMEM;
  msgpack_packer_init(&e->pk, b, bh__buf_write);
  e->rc = msgpack_pack_map(&e->pk, nkeys);
  put_lit(e, "msg_type");
  put_str(e, bh__msg_type_str(type));
  return 0;
}

/* Cuts the buffer and the blob queue back to where the frame began. */
static int
enc_undo(enc *e, int rc) {
  e->b->len = e->start;
  if (e->q != NULL) {
    bh__blobq_cut(e->q, e->q_start);
    bh__blobq_borrow_cut(e->q, e->r_start);
  }
  return rc;
}

/* The body size of the last frame refused for its size on this thread,
 * and whether its large bins had to go inline, for the message
 * (bh__wire_too_big) without widening every put. */
static _Thread_local size_t refused;
static _Thread_local bool refused_inline;

static int
enc_end(enc *e, size_t max_frame) {
  unsigned char *hdr;
  size_t body;

  if (e->rc != 0)
    return enc_undo(e, e->rc == BH_EINVAL ? BH_EINVAL : BH_ENOMEM);
  body = e->b->len - e->start - BH__FRAME_HDR + e->borrowed;
  if (max_frame > UINT32_MAX) /* the most a header can announce */
    max_frame = UINT32_MAX;
  if (body > max_frame) {
    refused = body;
    refused_inline = e->q != NULL && e->q->inline_bins;
    return enc_undo(e, BH_EMSGSIZE);
  }
  hdr = (unsigned char *)e->b->data + e->start;
  hdr[0] = (unsigned char)(body >> 24);
  hdr[1] = (unsigned char)(body >> 16);
  hdr[2] = (unsigned char)(body >> 8);
  hdr[3] = (unsigned char)body;
  return 0;
}

/* True if o nests at most `levels` containers deep (a scalar is 0 deep),
 * so that the receiver's unpacker, limited to BH__MAX_DEPTH, can read it. The
 * recursion stops at `levels`. */
static bool
depth_ok(const msgpack_object *o, int levels) {
  uint32_t i;

  if (o == NULL ||
      (o->type != MSGPACK_OBJECT_ARRAY && o->type != MSGPACK_OBJECT_MAP))
    return true;
  if (levels < 1)
    return false;
  if (o->type == MSGPACK_OBJECT_ARRAY) {
    for (i = 0; i < o->via.array.size; i++)
      if (!depth_ok(&o->via.array.ptr[i], levels - 1))
        return false;
    return true;
  }
  for (i = 0; i < o->via.map.size; i++)
    if (!depth_ok(&o->via.map.ptr[i].key, levels - 1) ||
        !depth_ok(&o->via.map.ptr[i].val, levels - 1))
      return false;
  return true;
}

/* A value put in a field of the root map may nest BH__MAX_DEPTH - 1 deep. */
static bool
field_ok(const msgpack_object *o) {
  return depth_ok(o, BH__MAX_DEPTH - 1);
}

int
bh__wire_put_simple(bh__buf *b, size_t max_frame, bh__msg_type type,
                    int64_t task_id) {
  enc e;

  BH_ASSERT(type == BH__MSG_NEW_TASK || type == BH__MSG_TASK_ACCEPTED ||
            type == BH__MSG_TASK_DENIED || type == BH__MSG_TASK_TAKEN ||
            type == BH__MSG_CANCEL_TASK);
  if (enc_begin(&e, b, NULL, type, 2) != 0)
    return BH_ENOMEM;
  put_lit(&e, "task_id");
  put_int(&e, task_id);
  return enc_end(&e, max_frame);
}

/* Puts a part of a call: its raw bytes (n of them at raw; none: the empty
 * container dflt), or its object o (NULL: dflt). */
static void
put_part(enc *e, const char *raw, size_t n, const msgpack_object *o,
         const msgpack_object *dflt) {
  if (raw == NULL)
    put_obj(e, o != NULL ? o : dflt);
  else if (n == 0)
    put_obj(e, dflt);
  else if (e->rc == 0)
    e->rc = bh__buf_append(e->b, raw, n);
}

/* task_info, or new_task carrying the info (a direct offer). Returns
 * BH_EINVAL for an empty name, args not an array, kwargs not a map, or
 * either nested too deep. */
static int
put_info(bh__buf *b, bh__blobq *q, size_t max_frame, bh__msg_type type,
         int64_t task_id, const char *name, const bh__wire_call *call) {
  const msgpack_object *args = call->args, *kwargs = call->kwargs;
  const char *raw = call->raw;
  enc e;

  BH_ASSERT(name != NULL);
  if (name[0] == '\0')
    return BH_EINVAL;
  if (raw == NULL && ((args != NULL && (args->type != MSGPACK_OBJECT_ARRAY ||
                                        !field_ok(args))) ||
                      (kwargs != NULL && (kwargs->type != MSGPACK_OBJECT_MAP ||
                                          !field_ok(kwargs)))))
    return BH_EINVAL;
  if (enc_begin(&e, b, q, type, 5) != 0)
    return BH_ENOMEM;
  put_lit(&e, "task_id");
  put_int(&e, task_id);
  put_lit(&e, "name");
  put_str(&e, name);
  put_lit(&e, "args");
  put_part(&e, raw, call->args_len, args, &empty_array);
  put_lit(&e, "kwargs");
  put_part(&e, raw ? raw + call->args_len : NULL, call->kwargs_len, kwargs,
           &empty_map);
  return enc_end(&e, max_frame);
}

/* The bytes of a str header for a string of n bytes. */
static size_t
str_hdr(size_t n) {
  return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

bool
bh__wire_name_fits(size_t name_len, size_t max_frame) {
  /* {"msg_type": "task_info", "task_id": int64, "name": ..., "args": [],
   * "kwargs": {}}: a fixmap, five fixstr keys (8 + 7 + 4 + 4 + 6 bytes
   * and 5 headers), "task_info" (10), an int64 (9), [] and {}. A direct
   * offer says "new_task", one byte less. */
  size_t fixed = 1 + 34 + 10 + 9 + 2;

  max_frame = max_frame ? max_frame : BH__DEFAULT_MAX_FRAME;
  if (max_frame > UINT32_MAX)
    max_frame = UINT32_MAX;
  return name_len <= max_frame &&
         fixed + str_hdr(name_len) <= max_frame - name_len;
}

int
bh__wire_put_task_info(bh__buf *b, bh__blobq *q, size_t max_frame,
                       int64_t task_id, const char *name,
                       const msgpack_object *args,
                       const msgpack_object *kwargs) {
  bh__wire_call call = {args, kwargs, NULL, 0, 0};

  return put_info(b, q, max_frame, BH__MSG_TASK_INFO, task_id, name, &call);
}

int
bh__wire_put_direct_offer(bh__buf *b, bh__blobq *q, size_t max_frame,
                          int64_t task_id, const char *name,
                          const msgpack_object *args,
                          const msgpack_object *kwargs) {
  bh__wire_call call = {args, kwargs, NULL, 0, 0};

  return put_info(b, q, max_frame, BH__MSG_NEW_TASK, task_id, name, &call);
}

int
bh__wire_put_call(bh__buf *b, bh__blobq *q, size_t max_frame,
                  bh__msg_type type, int64_t task_id, const char *name,
                  const bh__wire_call *call) {
  BH_ASSERT(type == BH__MSG_TASK_INFO || type == BH__MSG_NEW_TASK);
  return put_info(b, q, max_frame, type, task_id, name, call);
}

int
bh__wire_put_accepted_started(bh__buf *b, size_t max_frame, int64_t task_id) {
  enc e;

  if (enc_begin(&e, b, NULL, BH__MSG_TASK_ACCEPTED, 3) != 0)
    return BH_ENOMEM;
  put_lit(&e, "task_id");
  put_int(&e, task_id);
  put_lit(&e, "started");
  if (e.rc == 0)
    e.rc = msgpack_pack_true(&e.pk);
  return enc_end(&e, max_frame);
}

/* Checks an exception and a traceback (NULL: empty) before they are put. */
static bool
exception_ok(const msgpack_object *exception, const msgpack_object *traceback) {
  return exception != NULL && bh__wire_is_exception(exception) && field_ok(exception) &&
         (traceback == NULL || bh__wire_is_str_array(traceback));
}

static void
put_exception(enc *e, const msgpack_object *exception,
              const msgpack_object *traceback) {
  put_lit(e, "exception");
  put_obj(e, exception);
  put_lit(e, "traceback");
  put_obj(e, traceback != NULL ? traceback : &empty_array);
}

static int
put_done(bh__buf *b, bh__blobq *q, size_t max_frame, int64_t task_id,
         const bh__wire_done *d, bool cut) {
  static const uint32_t nkeys[] = {
      [BH_SUCCEEDED] = 4, [BH_RAISED] = 6, [BH_CANCELLED] = 4};
  static const char *const status[] = {[BH_SUCCEEDED] = "succeeded",
                                       [BH_RAISED] = "raised",
                                       [BH_CANCELLED] = "cancelled"};
  enc e;

  BH_ASSERT(d != NULL);
  if ((d->status != BH_SUCCEEDED && d->status != BH_RAISED &&
       d->status != BH_CANCELLED) ||
      (d->status == BH_SUCCEEDED && !field_ok(d->returning_value)) ||
      (d->status == BH_RAISED && (!exception_ok(d->exception, d->traceback) ||
                                  !field_ok(d->other_details))))
    return BH_EINVAL;
  if (enc_begin(&e, b, q, BH__MSG_TASK_DONE, nkeys[d->status]) != 0)
    return BH_ENOMEM;
  put_lit(&e, "task_id");
  put_int(&e, task_id);
  put_lit(&e, "status");
  put_str(&e, status[d->status]);
  if (d->status == BH_SUCCEEDED) {
    put_lit(&e, "returning_value");
    put_obj(&e, d->returning_value);
  } else if (d->status == BH_RAISED) {
    put_exception(&e, d->exception, d->traceback);
    put_lit(&e, "other_details");
    put_obj(&e, d->other_details);
  } else {
    put_lit(&e, "reason");
    if (d->reason != NULL)
      put_text(&e, d->reason, cut);
    else
      put_obj(&e, NULL);
  }
  return enc_end(&e, max_frame);
}

/* Returns BH_EINVAL for a bad status, a raised result whose exception is
 * not a map {type: str, message: str} or whose traceback is not an array of
 * str, or a value nested too deep. A cancellation whose reason does not
 * fit goes with the reason cut. */
int
bh__wire_put_task_done(bh__buf *b, bh__blobq *q, size_t max_frame,
                       int64_t task_id, const bh__wire_done *d) {
  int rc = put_done(b, q, max_frame, task_id, d, false);

  if (rc == BH_EMSGSIZE && d->status == BH_CANCELLED && d->reason != NULL)
    rc = put_done(b, q, max_frame, task_id, d, true);
  return rc;
}

/* A message of msg_type alone. */
static int
put_bare(bh__buf *b, size_t max_frame, bh__msg_type type) {
  enc e;

  if (enc_begin(&e, b, NULL, type, 1) != 0)
    return BH_ENOMEM;
  return enc_end(&e, max_frame);
}

int
bh__wire_put_die(bh__buf *b, size_t max_frame) {
  return put_bare(b, max_frame, BH__MSG_DIE);
}

int
bh__wire_put_heartbeat(bh__buf *b, size_t max_frame) {
  return put_bare(b, max_frame, BH__MSG_HEARTBEAT);
}

int
bh__wire_put_bootstrap(bh__buf *b, size_t max_frame, const char *cls,
                       int64_t id, const msgpack_object *args,
                       const msgpack_object *kwargs,
                       const msgpack_object *config) {
  enc e;

  if (cls == NULL || config == NULL || config->type != MSGPACK_OBJECT_MAP ||
      (args != NULL && args->type != MSGPACK_OBJECT_ARRAY) ||
      (kwargs != NULL && kwargs->type != MSGPACK_OBJECT_MAP) ||
      !field_ok(args) || !field_ok(kwargs) || !field_ok(config))
    return BH_EINVAL;
  if (enc_begin(&e, b, NULL, BH__MSG_BOOTSTRAP, 6) != 0)
    return BH_ENOMEM;
  put_lit(&e, "class");
  put_str(&e, cls);
  put_lit(&e, "id");
  put_int(&e, id);
  put_lit(&e, "init_args");
  put_obj(&e, args != NULL ? args : &empty_array);
  put_lit(&e, "init_kwargs");
  put_obj(&e, kwargs != NULL ? kwargs : &empty_map);
  put_lit(&e, "config");
  put_obj(&e, config);
  return enc_end(&e, max_frame);
}

static int
put_dead_normal(bh__buf *b, size_t max_frame, const char *exit_code,
                bool cut) {
  enc e;

  if (enc_begin(&e, b, NULL, BH__MSG_DEAD, 3) != 0)
    return BH_ENOMEM;
  put_lit(&e, "death_type");
  put_lit(&e, "normal");
  put_lit(&e, "exit_code");
  if (exit_code != NULL)
    put_text(&e, exit_code, cut);
  else
    put_obj(&e, NULL);
  return enc_end(&e, max_frame);
}

/* An exit code that does not fit goes cut: a bee's last word always
 * leaves. */
int
bh__wire_put_dead_normal(bh__buf *b, size_t max_frame, const char *exit_code) {
  int rc = put_dead_normal(b, max_frame, exit_code, false);

  if (rc == BH_EMSGSIZE && exit_code != NULL)
    rc = put_dead_normal(b, max_frame, exit_code, true);
  return rc;
}

/* traceback NULL packs an empty array. Returns BH_EINVAL as for raised. */
int
bh__wire_put_dead_killed(bh__buf *b, size_t max_frame,
                         const msgpack_object *exception,
                         const msgpack_object *traceback) {
  enc e;

  if (!exception_ok(exception, traceback))
    return BH_EINVAL;
  if (enc_begin(&e, b, NULL, BH__MSG_DEAD, 4) != 0)
    return BH_ENOMEM;
  put_lit(&e, "death_type");
  put_lit(&e, "killed");
  put_exception(&e, exception, traceback);
  return enc_end(&e, max_frame);
}

/* Both ways out: a larger limit, or the bytes as a bin big enough to go
 * as a blob beside the frame (blob.h), which max_frame does not count. */
char *
bh__wire_too_big(const char *what, size_t max_frame) {
  size_t th = bh_blob_threshold();

  if (max_frame > UINT32_MAX)
    max_frame = UINT32_MAX;
  if (refused_inline)
    return bh__asprintf(
        "%s: a frame of %zu bytes, over the limit of %zu (max_frame). "
        "This channel's transport cannot pass descriptors, so bins of any "
        "size travel inside the frame: raise max_frame (bh_run_opts).",
        what, refused, max_frame);
  if (th == 0)
    return bh__asprintf(
        "%s: a frame of %zu bytes, over the limit of %zu "
        "(max_frame). Raise max_frame (bh_run_opts), or turn blobs on "
        "(bh_set_blob_threshold(), now 0): a bin (y#) of at least the "
        "threshold then travels as a blob beside the frame.",
        what, refused, max_frame);
  return bh__asprintf(
      "%s: a frame of %zu bytes, over the limit of %zu (max_frame). "
      "Raise max_frame (bh_run_opts), or send the bytes as a bin (y#) of at "
      "least %zu bytes (bh_blob_threshold(); bh_set_blob_threshold() "
      "lowers it): such a bin travels as a blob beside the frame.",
      what, refused, max_frame, th);
}
