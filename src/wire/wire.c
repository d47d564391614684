/* wire.c - frames and messages (docs/PROTOCOL.md): message types and
 * decoding; wire_put.c encodes.
 *
 * A frame is a 4-byte big-endian body length followed by the body: exactly
 * one msgpack map. Decoding checks every field the message type uses, so the
 * rest of the library sees only well-typed bh__msg structs. msgpack stays
 * inside wire.c and wire_put.c. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "value/blob.h"
#include "base/base.h"
#include "wire/wire.h"
#include "value/value.h"
#include "value/walk.h"


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

/* The same against a table's string, whose length the table knows: every
 * message compares its keys with the field names, and a strlen() of each
 * name cost more than the comparisons. */
static bool
str_is_n(const char *p, size_t n, const char *s, size_t len) {
  return n == len && memcmp(p, s, n) == 0;
}

static const unsigned char msg_type_lens[BH__MSG_UNKNOWN] = {
#define BH__MSG_LEN(e, s) sizeof(s) - 1,
    BH__MSG_MAP(BH__MSG_LEN)
#undef BH__MSG_LEN
};

static bh__msg_type
type_from_str(const char *p, size_t n) {
  int t;

  for (t = 0; t < BH__MSG_UNKNOWN; t++)
    if (str_is_n(p, n, bh__msg_type_str((bh__msg_type)t), msg_type_lens[t]))
      return (bh__msg_type)t;
  return BH__MSG_UNKNOWN;
}

size_t
bh__wire_frame_len(const unsigned char hdr[BH__FRAME_HDR]) {
  return (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 |
         (size_t)hdr[3];
}

/* ------------------------------------------------------------------------
 * Structure scan: a frame is walked whole before msgpack-c allocates
 * anything for it (walk.c says why). */

/* Returns NULL if body[0..len) is exactly one decodable msgpack value, else
 * what is wrong with it. Counts its blob exts in *blobs. */
static const char *
scan(const unsigned char *body, size_t len, size_t *blobs) {
  bh__walk_seen seen = {0, false, 0, 0};
  const char *bad;
  size_t end;

  bad = bh__walk_one(body, len, &end, &seen);
  *blobs += seen.blob_exts;
  if (bad != NULL)
    return bad;
  return end == len ? NULL : ": trailing bytes";
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
  XX(STARTED, "started")                                                       \
  XX(CLASS, "class")                                                           \
  XX(ID, "id")                                                                 \
  XX(INIT_ARGS, "init_args")                                                   \
  XX(INIT_KWARGS, "init_kwargs")                                               \
  XX(CONFIG, "config")

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
static const unsigned char field_lens[F_COUNT] = {
#define FIELD_LEN(e, s) sizeof(s) - 1,
    FIELD_MAP(FIELD_LEN)
#undef FIELD_LEN
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
      if (!str_is_n(kv->key.via.str.ptr, kv->key.via.str.size, field_names[f],
                    field_lens[f]))
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
  *o = NULL; /* on the duplicate path too: gcc -O3 cannot see that no
               * caller reads *o when rc != 0 (-Wmaybe-uninitialized) */
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
      [MSGPACK_OBJECT_BOOLEAN] = "bool",
      [MSGPACK_OBJECT_STR] = "str",
      [MSGPACK_OBJECT_ARRAY] = "array",
      [MSGPACK_OBJECT_MAP] = "map",
  };
  int rc = get(d, f, required, dflt, o);

  if (rc == 0 && *o != NULL && (*o)->type != type)
    return fail(d, "field '%s' must be %s", field_names[f], names[type]);
  return rc;
}

bool
bh__wire_is_str_array(const msgpack_object *o) {
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
bool
bh__wire_is_exception(const msgpack_object *o) {
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

/* An int64 field: task_id, id. */
static int
dec_int(dec *d, enum field f, int64_t *out) {
  const msgpack_object *o;
  int rc = get(d, f, true, NULL, &o);

  if (rc != 0)
    return rc;
  if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
    *out = o->via.i64;
  } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (o->via.u64 > INT64_MAX)
      return fail(d, "field '%s' must fit in int64", field_names[f]);
    *out = (int64_t)o->via.u64;
  } else {
    return fail(d, "field '%s' must be int", field_names[f]);
  }
  return 0;
}

static int
dec_task_id(dec *d) {
  return dec_int(d, F_TASK_ID, &d->out->task_id);
}

/* The settings themselves are the config record's to check (wcfg.c). */
static int
dec_bootstrap(dec *d) {
  bh__msg *m = d->out;
  const msgpack_object *cls;
  int rc;

  if ((rc = get_typed(d, F_CLASS, true, NULL, MSGPACK_OBJECT_STR, &cls)) ||
      (rc = dec_int(d, F_ID, &m->bee_id)) ||
      (rc = get_typed(d, F_INIT_ARGS, true, NULL, MSGPACK_OBJECT_ARRAY,
                      &m->args)) ||
      (rc = get_typed(d, F_INIT_KWARGS, true, NULL, MSGPACK_OBJECT_MAP,
                      &m->kwargs)) ||
      (rc = get_typed(d, F_CONFIG, true, NULL, MSGPACK_OBJECT_MAP,
                      &m->config)))
    return rc;
  m->cls = cls->via.str.ptr;
  m->cls_len = cls->via.str.size;
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
  if (!bh__wire_is_exception(m->exception))
    return fail(d, "field 'exception' must be map with str 'type' and str "
                   "'message'");
  if ((rc = get(d, F_TRACEBACK, false, &empty_array, &m->traceback)) != 0)
    return rc;
  if (!bh__wire_is_str_array(m->traceback))
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
  case BH__MSG_BOOTSTRAP:
    return dec_bootstrap(d);
  case BH__MSG_DIE:
  case BH__MSG_HEARTBEAT:
  case BH__MSG_UNKNOWN:
    return 0; /* the caller decides what an unknown type means */
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * The accept of a direct offer, as wire_put.c writes it: a parent reads
 * one per task, so it is recognised by its bytes (head, task id, tail)
 * and its map made in the zone by hand, as msgpack_unpack would make it
 * (strings pointing into the body), without the scan and msgpack-c's
 * unpacker: about 90 instructions where the general path takes 1,400.
 * Any other encoding of it takes the general path. */

static const char started_head[] = "\x83\xa8msg_type\xadtask_accepted"
                                   "\xa7task_id";
static const char started_tail[] = "\xa7started\xc3";
#define STARTED_HEAD (sizeof(started_head) - 1)
#define STARTED_TAIL (sizeof(started_tail) - 1)

/* The positive int at p (its encoding ends at end): its length in bytes,
 * or 0 if it is not one msgpack-c would read as a positive int. */
static size_t
pos_int(const unsigned char *p, const unsigned char *end, uint64_t *v) {
  size_t n, i;

  if (p >= end)
    return 0;
  if (*p <= 0x7f) {
    *v = *p;
    return 1;
  }
  if (*p < 0xcc || *p > 0xcf)
    return 0;
  n = (size_t)1 << (*p - 0xcc); /* 1, 2, 4 or 8 bytes */
  if ((size_t)(end - p) < 1 + n)
    return 0;
  for (*v = 0, i = 1; i <= n; i++)
    *v = *v << 8 | p[i];
  return *v <= (uint64_t)INT64_MAX ? 1 + n : 0;
}

static msgpack_object
str_at(const char *p, uint32_t n) {
  msgpack_object o = {.type = MSGPACK_OBJECT_STR};

  o.via.str.ptr = p;
  o.via.str.size = n;
  return o;
}

static bool
fast_started(const char *body, size_t len, msgpack_zone *zone, bh__msg *out) {
  const unsigned char *p = (const unsigned char *)body, *end = p + len;
  msgpack_object *root;
  msgpack_object_kv *kv;
  uint64_t id;
  size_t n;

  if (len < STARTED_HEAD + 1 + STARTED_TAIL ||
      memcmp(body, started_head, STARTED_HEAD) != 0 ||
      (n = pos_int(p + STARTED_HEAD, end, &id)) == 0 ||
      (size_t)(end - p) != STARTED_HEAD + n + STARTED_TAIL ||
      memcmp(body + STARTED_HEAD + n, started_tail, STARTED_TAIL) != 0)
    return false;
  root = msgpack_zone_malloc(zone, sizeof(*root) + 3 * sizeof(*kv));
  if (root == NULL)
    return false; /* the general path will say so */
  kv = (msgpack_object_kv *)(root + 1);
  kv[0].key = str_at(body + 2, 8);
  kv[0].val = str_at(body + 11, 13);
  kv[1].key = str_at(body + 25, 7);
  kv[1].val.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  kv[1].val.via.u64 = id;
  kv[2].key = str_at(body + STARTED_HEAD + n + 1, 7);
  kv[2].val.type = MSGPACK_OBJECT_BOOLEAN;
  kv[2].val.via.boolean = true;
  root->type = MSGPACK_OBJECT_MAP;
  root->via.map.size = 3;
  root->via.map.ptr = kv;
  out->type = BH__MSG_TASK_ACCEPTED;
  out->type_str = kv[0].val.via.str.ptr;
  out->type_len = 13;
  out->task_id = (int64_t)id;
  out->started = true;
  out->root = root;
  return true;
}

/* A message its handler keeps whole as a value, by how wire_put.c begins
 * it (msg_type first): a task_done of four keys (succeeded, or cancelled
 * with a reason), a new_task of five (a direct offer), a task_info. */
static bool
kept_whole(const char *body, size_t len) {
  static const char done[] = "\x84\xa8msg_type\xa9task_done";
  static const char offer[] = "\x85\xa8msg_type\xa8new_task";
  static const char info[] = "\x85\xa8msg_type\xa9task_info";

  return (len >= sizeof(done) - 1 && memcmp(body, done, sizeof(done) - 1) == 0) ||
         (len >= sizeof(offer) - 1 &&
          memcmp(body, offer, sizeof(offer) - 1) == 0) ||
         (len >= sizeof(info) - 1 && memcmp(body, info, sizeof(info) - 1) == 0);
}

static int
decode(const char *body, size_t len, msgpack_zone *zone, bh__msg *out,
       char *err, size_t errlen, bool keep) {
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
  if (fast_started(body, len, zone, out))
    return 0;
  bad = scan((const unsigned char *)body, len, &out->blobs);
  if (bad != NULL)
    return fail(&d, "frame does not hold exactly one msgpack value%s", bad);
  if (keep && out->blobs == 0 && kept_whole(body, len)) {
    /* decoded once, into the value the handler keeps; the fields borrow
     * from it */
    if ((out->value = bh_value_from_bytes(body, len)) == NULL)
      return BH_ENOMEM;
    root = (msgpack_object *)bh_value_object(out->value);
    out->body = bh_value_data(out->value, NULL);
  } else {
    /* The root lives in the zone: out->root must outlive this call. */
    root = msgpack_zone_malloc(zone, sizeof(*root));
    if (root == NULL ||
        msgpack_unpack(body, len, &off, zone, root) != MSGPACK_UNPACK_SUCCESS)
      return BH_ENOMEM; /* scan() already proved the bytes well-formed */
  }
  if (root->type != MSGPACK_OBJECT_MAP)
    return fail(&d, "message is not a map");
  out->root = root;
  collect(&d, root);
  return dec_fields(&d);
}

int
bh__wire_decode(const char *body, size_t len, msgpack_zone *zone, bh__msg *out,
                char *err, size_t errlen) {
  return decode(body, len, zone, out, err, errlen, false);
}

int
bh__wire_decode_keep(const char *body, size_t len, msgpack_zone *zone,
                     bh__msg *out, char *err, size_t errlen) {
  return decode(body, len, zone, out, err, errlen, true);
}

bh_value *
bh__msg_value(const bh__msg *m) {
  char *own = m->own != NULL ? *m->own : NULL;

  if (m->value != NULL) { /* made by the decoder: handed over once (m is
                           * its decoder's own, never a const object) */
    bh_value *v = m->value;

    ((bh__msg *)m)->value = NULL;
    return v;
  }

  if (own == NULL)
    return bh_value_from_bytes(m->body, m->body_len);
  *m->own = NULL;
  return bh__value_adopt_at(own, (char *)m->body, m->body_len);
}
