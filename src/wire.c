/* wire.c - frames and messages (docs/PROTOCOL.md).
 *
 * A frame is a 4-byte big-endian body length followed by the body: exactly
 * one msgpack map. Decoding checks every field the message type uses, so the
 * rest of the library sees only well-typed bh__msg structs; encoding writes
 * every field the reference lists, in the reference's key order. msgpack
 * stays inside this file. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "blob.h"
#include "internal.h"

/* msgpack-c's unpacker keeps at most this many containers open at once (its
 * MSGPACK_EMBED_STACK_SIZE); a deeper frame can never be decoded. */
#define MAX_DEPTH 32

/* ------------------------------------------------------------------------
 * Message types. */

const char *
bh__msg_type_str(bh__msg_type t) {
  switch (t) {
#define BH__MSG_STR(e, s)                                                      \
  case BH__MSG_##e:                                                            \
    return s;
    BH__MSG_MAP(BH__MSG_STR)
#undef BH__MSG_STR
  default:
    return NULL;
  }
}

static bool
str_is(const char *p, size_t n, const char *s) {
  return strlen(s) == n && memcmp(p, s, n) == 0;
}

static bh__msg_type
type_from_str(const char *p, size_t n) {
  int t;

  for (t = 0; t < BH__MSG_UNKNOWN; t++)
    if (str_is(p, n, bh__msg_type_str((bh__msg_type)t)))
      return (bh__msg_type)t;
  return BH__MSG_UNKNOWN;
}

size_t
bh__wire_frame_len(const unsigned char hdr[BH__FRAME_HDR]) {
  return (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 |
         (size_t)hdr[3];
}

/* ------------------------------------------------------------------------
 * Structure scan. msgpack-c allocates a container's items as soon as it
 * reads the header, so a 5-byte frame announcing 2^32 items would ask for
 * ~100 GiB. This walk checks the whole body first, allocating nothing: every
 * announced item must be there, strings, bins and exts must fit, nesting
 * stays within MAX_DEPTH, and the value ends exactly at the end of the body.
 * msgpack-c then allocates only for items that exist. */

/* Reads a big-endian unsigned of n bytes at p. */
static uint64_t
be(const unsigned char *p, int n) {
  uint64_t v = 0;

  while (n-- > 0)
    v = v << 8 | *p++;
  return v;
}

/* For a type byte c in 0xc0..0xdf: how many header bytes follow it, and in
 * *lenbytes how many of those hold a payload length (str, bin, ext; 0 for
 * the others). Returns -1 for 0xc1, which msgpack never uses. Other type
 * bytes (fixint, fixmap, fixarray, fixstr) have no further header. */
static int
hdr_extra(unsigned c, int *lenbytes) {
  static const signed char fixed[0x20] = {
      /* c0 */ 0, -1, 0, 0, 1, 2, 4, 2, 3,  5, 4, 8, 1, 2, 4, 8,
      /* d0 */ 1, 2,  4, 8, 2, 3, 5, 9, 17, 1, 2, 4, 2, 4, 2, 4};
  static const signed char sized[0x20] = {
      /* c0 */ 0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 0, 0, 0, 0, 0, 0,
      /* d0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 0, 0, 0, 0};

  *lenbytes = 0;
  if (c < 0xc0 || c >= 0xe0)
    return 0;
  *lenbytes = sized[c - 0xc0];
  return fixed[c - 0xc0];
}

/* Reads one item header at p[0..left): its total byte size excluding any
 * contained items (*size) and how many items it contains (*items). Returns
 * false if it does not fit. */
static bool
item_head(const unsigned char *p, uint64_t left, uint64_t *size,
          uint64_t *items) {
  unsigned c = p[0];
  int lenbytes, extra = hdr_extra(c, &lenbytes);

  *items = 0;
  if (extra < 0 || (uint64_t)extra + 1 > left)
    return false;
  *size = 1 + (uint64_t)extra;
  if (lenbytes > 0)
    *size += be(p + 1, lenbytes); /* str, bin, ext: the payload */
  if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf)
    *items = 2 * (c <= 0x8f ? (c & 0x0f) : be(p + 1, c == 0xde ? 2 : 4));
  else if ((c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd)
    *items = c <= 0x9f ? (c & 0x0f) : be(p + 1, c == 0xdc ? 2 : 4);
  else if (c >= 0xa0 && c <= 0xbf)
    *size += c & 0x1f; /* fixstr */
  return *size <= left;
}

static bool
is_container(unsigned c) {
  return (c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf);
}

/* True if the item at p, whose header fits, is an ext of blob.h's type. */
static bool
is_blob_ext(const unsigned char *p) {
  unsigned c = p[0];

  if (c >= 0xd4 && c <= 0xd8) /* fixext: the type follows */
    return p[1] == BH__EXT_BLOB;
  if (c >= 0xc7 && c <= 0xc9) /* ext 8/16/32: after the length */
    return p[c == 0xc7 ? 2 : c == 0xc8 ? 3 : 5] == BH__EXT_BLOB;
  return false;
}

/* Returns NULL if body[0..len) is exactly one decodable msgpack value, else
 * what is wrong with it. Counts its blob exts in *blobs. */
static const char *
scan(const unsigned char *body, size_t len, size_t *blobs) {
  uint64_t left[MAX_DEPTH], size, items, off = 0;
  int depth = 0; /* open containers with items still to read */

  do {
    if (off >= len || !item_head(body + off, len - off, &size, &items))
      return "";
    if (is_container(body[off]) && depth >= MAX_DEPTH)
      return ": nested deeper than 32 levels";
    if (is_blob_ext(body + off))
      ++*blobs;
    off += size;
    if (depth > 0)
      left[depth - 1]--;
    if (items > 0)
      left[depth++] = items;
    while (depth > 0 && left[depth - 1] == 0)
      depth--;
  } while (depth > 0);
  return off == len ? NULL : ": trailing bytes";
}

/* ------------------------------------------------------------------------
 * Decoding. */

/* Every field any message uses: enum suffix, key. */
#define FIELD_MAP(XX)                                                          \
  XX(MSG_TYPE, "msg_type")                                                     \
  XX(TASK_ID, "task_id")                                                       \
  XX(NAME, "name")                                                             \
  XX(ARGS, "args")                                                             \
  XX(KWARGS, "kwargs")                                                         \
  XX(STATUS, "status")                                                         \
  XX(RETURNING_VALUE, "returning_value")                                       \
  XX(REASON, "reason")                                                         \
  XX(EXCEPTION, "exception")                                                   \
  XX(TRACEBACK, "traceback")                                                   \
  XX(OTHER_DETAILS, "other_details")                                           \
  XX(DEATH_TYPE, "death_type")                                                 \
  XX(EXIT_CODE, "exit_code")                                                   \
  XX(STARTED, "started")

enum field {
#define FIELD_ENUM(e, s) F_##e,
  FIELD_MAP(FIELD_ENUM)
#undef FIELD_ENUM
      F_COUNT
};

static const char *const field_names[F_COUNT] = {
#define FIELD_NAME(e, s) s,
    FIELD_MAP(FIELD_NAME)
#undef FIELD_NAME
};

/* What stands in for a missing field that has a default. */
static const msgpack_object nil_obj = {.type = MSGPACK_OBJECT_NIL};
static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

typedef struct dec {
  bh__msg *out;
  const msgpack_object *v[F_COUNT]; /* first occurrence of each field */
  unsigned dup;                     /* bit f: field f occurs twice */
  char *err;
  size_t errlen;
} dec;

/* Writes "<msg_type>: <message>" (no prefix before the type is known) and
 * returns BH_EPROTO. */
static int fail(dec *d, const char *fmt, ...) BH_PRINTF(2, 3);

static int
fail(dec *d, const char *fmt, ...) {
  va_list ap;
  int n = 0;

  if (d->err == NULL || d->errlen == 0)
    return BH_EPROTO;
  if (d->out->type != BH__MSG_UNKNOWN)
    n = snprintf(d->err, d->errlen, "%s: ", bh__msg_type_str(d->out->type));
  if (n >= 0 && (size_t)n < d->errlen) {
    va_start(ap, fmt);
    vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return BH_EPROTO;
}

/* Files every str key of the root map that names a field. */
static void
collect(dec *d, const msgpack_object *root) {
  const msgpack_object_kv *kv = root->via.map.ptr;
  uint32_t i;
  int f;

  for (i = 0; i < root->via.map.size; i++, kv++) {
    if (kv->key.type != MSGPACK_OBJECT_STR)
      continue;
    for (f = 0; f < F_COUNT; f++) {
      if (!str_is(kv->key.via.str.ptr, kv->key.via.str.size, field_names[f]))
        continue;
      if (d->v[f] != NULL)
        d->dup |= 1u << f;
      else
        d->v[f] = &kv->val;
      break;
    }
  }
}

/* Sets *o to field f, or to dflt when it is missing; a missing field
 * without default (dflt NULL) is an error if `required`. */
static int
get(dec *d, enum field f, bool required, const msgpack_object *dflt,
    const msgpack_object **o) {
  if (d->dup & (1u << f))
    return fail(d, "duplicate field '%s'", field_names[f]);
  *o = d->v[f] != NULL ? d->v[f] : dflt;
  if (*o == NULL && required)
    return fail(d, "missing field '%s'", field_names[f]);
  return 0;
}

/* Field f, if present, must have msgpack type `type`. */
static int
get_typed(dec *d, enum field f, bool required, const msgpack_object *dflt,
          msgpack_object_type type, const msgpack_object **o) {
  static const char *const names[] = {
      [MSGPACK_OBJECT_STR] = "str",
      [MSGPACK_OBJECT_ARRAY] = "array",
      [MSGPACK_OBJECT_MAP] = "map",
  };
  int rc = get(d, f, required, dflt, o);

  if (rc == 0 && *o != NULL && (*o)->type != type)
    return fail(d, "field '%s' must be %s", field_names[f], names[type]);
  return rc;
}

static bool
is_str_array(const msgpack_object *o) {
  uint32_t i;

  if (o->type != MSGPACK_OBJECT_ARRAY)
    return false;
  for (i = 0; i < o->via.array.size; i++)
    if (o->via.array.ptr[i].type != MSGPACK_OBJECT_STR)
      return false;
  return true;
}

/* An exception travels as a map holding str "type" and str "message", once
 * each; other keys are allowed. */
static bool
is_exception(const msgpack_object *o) {
  const msgpack_object_kv *kv;
  int type = 0, message = 0;
  uint32_t i;

  if (o->type != MSGPACK_OBJECT_MAP)
    return false;
  for (i = 0, kv = o->via.map.ptr; i < o->via.map.size; i++, kv++) {
    if (kv->key.type != MSGPACK_OBJECT_STR)
      continue;
    if (str_is(kv->key.via.str.ptr, kv->key.via.str.size, "type"))
      type += kv->val.type == MSGPACK_OBJECT_STR ? 1 : 2;
    else if (str_is(kv->key.via.str.ptr, kv->key.via.str.size, "message"))
      message += kv->val.type == MSGPACK_OBJECT_STR ? 1 : 2;
  }
  return type == 1 && message == 1;
}

static int
dec_task_id(dec *d) {
  const msgpack_object *o;
  int rc = get(d, F_TASK_ID, true, NULL, &o);

  if (rc != 0)
    return rc;
  if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
    d->out->task_id = o->via.i64;
  } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (o->via.u64 > INT64_MAX)
      return fail(d, "field 'task_id' must fit in int64");
    d->out->task_id = (int64_t)o->via.u64;
  } else {
    return fail(d, "field 'task_id' must be int");
  }
  return 0;
}

static int
dec_task_info(dec *d) {
  const msgpack_object *name;
  int rc;

  if ((rc = dec_task_id(d)) != 0 ||
      (rc = get_typed(d, F_NAME, true, NULL, MSGPACK_OBJECT_STR, &name)) ||
      (rc = get_typed(d, F_ARGS, false, &empty_array, MSGPACK_OBJECT_ARRAY,
                      &d->out->args)) ||
      (rc = get_typed(d, F_KWARGS, false, &empty_map, MSGPACK_OBJECT_MAP,
                      &d->out->kwargs)))
    return rc;
  if (name->via.str.size == 0)
    return fail(d, "field 'name' must be non-empty str");
  if (memchr(name->via.str.ptr, '\0', name->via.str.size) != NULL)
    return fail(d, "field 'name' must not contain NUL bytes");
  d->out->name = name->via.str.ptr;
  d->out->name_len = name->via.str.size;
  return 0;
}

/* new_task may carry the task's info (beehive's direct offer, PROTOCOL.md
 * section 5.1): then name is required and args/kwargs as in task_info. */
static int
dec_new_task(dec *d) {
  return d->v[F_NAME] != NULL ? dec_task_info(d) : dec_task_id(d);
}

/* task_accepted may say the task started from the offer's info. */
static int
dec_accepted(dec *d) {
  static const msgpack_object no = {.type = MSGPACK_OBJECT_BOOLEAN};
  const msgpack_object *o;
  int rc;

  if ((rc = dec_task_id(d)) != 0 ||
      (rc = get_typed(d, F_STARTED, false, &no, MSGPACK_OBJECT_BOOLEAN, &o)))
    return rc;
  d->out->started = o->via.boolean;
  return 0;
}

/* exception (required) and traceback (empty array when missing), shared by
 * task_done raised and dead killed. */
static int
dec_exception(dec *d) {
  bh__msg *m = d->out;
  int rc;

  if ((rc = get(d, F_EXCEPTION, true, NULL, &m->exception)) != 0)
    return rc;
  if (!is_exception(m->exception))
    return fail(d, "field 'exception' must be map with str 'type' and str "
                   "'message'");
  if ((rc = get(d, F_TRACEBACK, false, &empty_array, &m->traceback)) != 0)
    return rc;
  if (!is_str_array(m->traceback))
    return fail(d, "field 'traceback' must be array of str");
  return 0;
}

static int
dec_status(dec *d) {
  const msgpack_object *o;
  int rc = get_typed(d, F_STATUS, true, NULL, MSGPACK_OBJECT_STR, &o);

  if (rc != 0)
    return rc;
  if (str_is(o->via.str.ptr, o->via.str.size, "succeeded"))
    d->out->status = BH_SUCCEEDED;
  else if (str_is(o->via.str.ptr, o->via.str.size, "raised"))
    d->out->status = BH_RAISED;
  else if (str_is(o->via.str.ptr, o->via.str.size, "cancelled"))
    d->out->status = BH_CANCELLED;
  else
    return fail(d, "field 'status' must be 'succeeded', 'raised' or "
                   "'cancelled'");
  return 0;
}

static int
dec_task_done(dec *d) {
  bh__msg *m = d->out;
  int rc;

  if ((rc = dec_task_id(d)) != 0 || (rc = dec_status(d)) != 0)
    return rc;
  switch (m->status) {
  case BH_SUCCEEDED:
    return get(d, F_RETURNING_VALUE, false, &nil_obj, &m->returning_value);
  case BH_RAISED:
    if ((rc = dec_exception(d)) != 0)
      return rc;
    return get(d, F_OTHER_DETAILS, false, NULL, &m->other_details);
  case BH_CANCELLED:
    if ((rc = get(d, F_REASON, false, NULL, &m->reason)) != 0)
      return rc;
    if (m->reason != NULL && m->reason->type != MSGPACK_OBJECT_STR &&
        m->reason->type != MSGPACK_OBJECT_NIL)
      return fail(d, "field 'reason' must be str or nil");
    return 0;
  }
  BH_ASSERT(0);
  return BH_EPROTO;
}

static int
dec_dead(dec *d) {
  bh__msg *m = d->out;
  const msgpack_object *o;
  int rc = get_typed(d, F_DEATH_TYPE, true, NULL, MSGPACK_OBJECT_STR, &o);

  if (rc != 0)
    return rc;
  if (str_is(o->via.str.ptr, o->via.str.size, "killed")) {
    m->death_type = BH__DEATH_KILLED;
    return dec_exception(d);
  }
  if (!str_is(o->via.str.ptr, o->via.str.size, "normal"))
    return fail(d, "field 'death_type' must be 'normal' or 'killed'");
  m->death_type = BH__DEATH_NORMAL;
  if ((rc = get(d, F_EXIT_CODE, false, NULL, &m->exit_code)) != 0)
    return rc;
  o = m->exit_code;
  if (o != NULL && o->type != MSGPACK_OBJECT_NIL &&
      o->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
      o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER &&
      o->type != MSGPACK_OBJECT_STR)
    return fail(d, "field 'exit_code' must be nil, int or str");
  return 0;
}

/* Reads msg_type, then checks the fields of that type. A long switch,
 * one line per message type. */
static int
dec_fields(dec *d) {
  const msgpack_object *t;
  int rc = get(d, F_MSG_TYPE, true, NULL, &t);

  if (rc != 0)
    return rc;
  if (t->type != MSGPACK_OBJECT_STR)
    return fail(d, "msg_type must be a str");
  d->out->type_str = t->via.str.ptr;
  d->out->type_len = t->via.str.size;
  d->out->type = type_from_str(t->via.str.ptr, t->via.str.size);
  switch (d->out->type) {
  case BH__MSG_NEW_TASK:
    return dec_new_task(d);
  case BH__MSG_TASK_ACCEPTED:
    return dec_accepted(d);
  case BH__MSG_TASK_DENIED:
  case BH__MSG_TASK_TAKEN:
  case BH__MSG_CANCEL_TASK:
    return dec_task_id(d);
  case BH__MSG_TASK_INFO:
    return dec_task_info(d);
  case BH__MSG_TASK_DONE:
    return dec_task_done(d);
  case BH__MSG_DEAD:
    return dec_dead(d);
  case BH__MSG_DIE:
  case BH__MSG_UNKNOWN:
    return 0; /* the caller decides what an unknown type means */
  }
  return 0;
}

int
bh__wire_decode(const char *body, size_t len, msgpack_zone *zone, bh__msg *out,
                char *err, size_t errlen) {
  dec d = {.out = out, .err = err, .errlen = errlen};
  msgpack_object *root;
  const char *bad;
  size_t off = 0;

  BH_ASSERT(body != NULL || len == 0);
  BH_ASSERT(zone != NULL && out != NULL);
  memset(out, 0, sizeof(*out));
  out->type = BH__MSG_UNKNOWN;
  out->body = body;
  out->body_len = len;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  bad = scan((const unsigned char *)body, len, &out->blobs);
  if (bad != NULL)
    return fail(&d, "frame does not hold exactly one msgpack value%s", bad);
  /* The root lives in the zone: out->root must outlive this call. */
  root = msgpack_zone_malloc(zone, sizeof(*root));
  if (root == NULL ||
      msgpack_unpack(body, len, &off, zone, root) != MSGPACK_UNPACK_SUCCESS)
    return BH_ENOMEM; /* scan() already proved the bytes well-formed */
  if (root->type != MSGPACK_OBJECT_MAP)
    return fail(&d, "message is not a map");
  out->root = root;
  collect(&d, root);
  return dec_fields(&d);
}

bh_value *
bh__msg_value(const bh__msg *m) {
  char *own = m->own != NULL ? *m->own : NULL;

  if (own == NULL)
    return bh_value_from_bytes(m->body, m->body_len);
  *m->own = NULL;
  return bh__value_adopt_at(own, (char *)m->body, m->body_len);
}

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
put_str(enc *e, const char *s) {
  size_t n = strlen(s);

  if (e->rc == 0)
    e->rc = msgpack_pack_str(&e->pk, n);
  if (e->rc == 0)
    e->rc = msgpack_pack_str_body(&e->pk, s, n);
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
 * if even that fails (out of descriptors). */
static void
put_bin(enc *e, const char *p, size_t n) {
  bh__blob *b = bh__blob_find(p, n);

  if (b != NULL && b->fd >= 0) {
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
  put_str(e, "msg_type");
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

static int
enc_end(enc *e, size_t max_frame) {
  unsigned char *hdr;
  size_t body;

  if (e->rc != 0)
    return enc_undo(e, e->rc == BH_EINVAL ? BH_EINVAL : BH_ENOMEM);
  body = e->b->len - e->start - BH__FRAME_HDR + e->borrowed;
  if (max_frame > UINT32_MAX) /* the most a header can announce */
    max_frame = UINT32_MAX;
  if (body > max_frame)
    return enc_undo(e, BH_EMSGSIZE);
  hdr = (unsigned char *)e->b->data + e->start;
  hdr[0] = (unsigned char)(body >> 24);
  hdr[1] = (unsigned char)(body >> 16);
  hdr[2] = (unsigned char)(body >> 8);
  hdr[3] = (unsigned char)body;
  return 0;
}

/* True if o nests at most `levels` containers deep (a scalar is 0 deep),
 * so that the receiver's unpacker, limited to MAX_DEPTH, can read it. The
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

/* A value put in a field of the root map may nest MAX_DEPTH - 1 deep. */
static bool
field_ok(const msgpack_object *o) {
  return depth_ok(o, MAX_DEPTH - 1);
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
  put_str(&e, "task_id");
  put_int(&e, task_id);
  return enc_end(&e, max_frame);
}

/* task_info, or new_task carrying the info (a direct offer). args NULL
 * packs an empty array, kwargs NULL an empty map. Returns BH_EINVAL for an
 * empty name, args not an array, kwargs not a map, or either nested too
 * deep. */
static int
put_info(bh__buf *b, bh__blobq *q, size_t max_frame, bh__msg_type type,
         int64_t task_id, const char *name, const msgpack_object *args,
         const msgpack_object *kwargs) {
  enc e;

  BH_ASSERT(name != NULL);
  args = args != NULL ? args : &empty_array;
  kwargs = kwargs != NULL ? kwargs : &empty_map;
  if (name[0] == '\0' || args->type != MSGPACK_OBJECT_ARRAY ||
      kwargs->type != MSGPACK_OBJECT_MAP || !field_ok(args) ||
      !field_ok(kwargs))
    return BH_EINVAL;
  if (enc_begin(&e, b, q, type, 5) != 0)
    return BH_ENOMEM;
  put_str(&e, "task_id");
  put_int(&e, task_id);
  put_str(&e, "name");
  put_str(&e, name);
  put_str(&e, "args");
  put_obj(&e, args);
  put_str(&e, "kwargs");
  put_obj(&e, kwargs);
  return enc_end(&e, max_frame);
}

int
bh__wire_put_task_info(bh__buf *b, bh__blobq *q, size_t max_frame,
                       int64_t task_id, const char *name,
                       const msgpack_object *args,
                       const msgpack_object *kwargs) {
  return put_info(b, q, max_frame, BH__MSG_TASK_INFO, task_id, name, args,
                  kwargs);
}

int
bh__wire_put_direct_offer(bh__buf *b, bh__blobq *q, size_t max_frame,
                          int64_t task_id, const char *name,
                          const msgpack_object *args,
                          const msgpack_object *kwargs) {
  return put_info(b, q, max_frame, BH__MSG_NEW_TASK, task_id, name, args,
                  kwargs);
}

int
bh__wire_put_accepted_started(bh__buf *b, size_t max_frame, int64_t task_id) {
  enc e;

  if (enc_begin(&e, b, NULL, BH__MSG_TASK_ACCEPTED, 3) != 0)
    return BH_ENOMEM;
  put_str(&e, "task_id");
  put_int(&e, task_id);
  put_str(&e, "started");
  if (e.rc == 0)
    e.rc = msgpack_pack_true(&e.pk);
  return enc_end(&e, max_frame);
}

/* Checks an exception and a traceback (NULL: empty) before they are put. */
static bool
exception_ok(const msgpack_object *exception, const msgpack_object *traceback) {
  return exception != NULL && is_exception(exception) && field_ok(exception) &&
         (traceback == NULL || is_str_array(traceback));
}

static void
put_exception(enc *e, const msgpack_object *exception,
              const msgpack_object *traceback) {
  put_str(e, "exception");
  put_obj(e, exception);
  put_str(e, "traceback");
  put_obj(e, traceback != NULL ? traceback : &empty_array);
}

/* Returns BH_EINVAL for a bad status, a raised result whose exception is
 * not a map {type: str, message: str} or whose traceback is not an array of
 * str, or a value nested too deep. */
int
bh__wire_put_task_done(bh__buf *b, bh__blobq *q, size_t max_frame,
                       int64_t task_id, const bh__wire_done *d) {
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
  put_str(&e, "task_id");
  put_int(&e, task_id);
  put_str(&e, "status");
  put_str(&e, status[d->status]);
  if (d->status == BH_SUCCEEDED) {
    put_str(&e, "returning_value");
    put_obj(&e, d->returning_value);
  } else if (d->status == BH_RAISED) {
    put_exception(&e, d->exception, d->traceback);
    put_str(&e, "other_details");
    put_obj(&e, d->other_details);
  } else {
    put_str(&e, "reason");
    if (d->reason != NULL)
      put_str(&e, d->reason);
    else
      put_obj(&e, NULL);
  }
  return enc_end(&e, max_frame);
}

int
bh__wire_put_die(bh__buf *b, size_t max_frame) {
  enc e;

  if (enc_begin(&e, b, NULL, BH__MSG_DIE, 1) != 0)
    return BH_ENOMEM;
  return enc_end(&e, max_frame);
}

int
bh__wire_put_dead_normal(bh__buf *b, size_t max_frame, const char *exit_code) {
  enc e;

  if (enc_begin(&e, b, NULL, BH__MSG_DEAD, 3) != 0)
    return BH_ENOMEM;
  put_str(&e, "death_type");
  put_str(&e, "normal");
  put_str(&e, "exit_code");
  if (exit_code != NULL)
    put_str(&e, exit_code);
  else
    put_obj(&e, NULL);
  return enc_end(&e, max_frame);
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
  put_str(&e, "death_type");
  put_str(&e, "killed");
  put_exception(&e, exception, traceback);
  return enc_end(&e, max_frame);
}
