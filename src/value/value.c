/* value.c - owned msgpack values (bh_value) and their rendering.
 *
 * A bh_value holds its encoded bytes and the object decoded from them into
 * its own zone; strings and bins in the object point into the bytes. Note
 * that msgpack-c's zone allocates with malloc(), outside bh_set_allocator().
 * Packing and unpacking by format live in pack.c and unpack.c. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "value/blob.h"
#include "value/fmt.h"

/* ------------------------------------------------------------------------
 * Owned values. */

/* A zone chunk for a value of `size` encoded bytes: enough for the
 * objects of most values in one chunk, without 8 KiB for every small one.
 * Each object takes 24 bytes and at least one encoded byte; a small value
 * (a call's arguments, a short result) gets 8 bytes of chunk per encoded
 * byte, at least 64: "[[1]]" needs 48. */
static size_t
zone_chunk(size_t size) {
  if (size >= MSGPACK_ZONE_CHUNK_SIZE / 2)
    return MSGPACK_ZONE_CHUNK_SIZE;
  if (size < 32)
    return size * 8 < 64 ? 64 : size * 8;
  return size * 2 < 256 ? 256 : size * 2;
}

/* Takes ownership of data (from bh__malloc) and decodes it into a new
 * value. Returns owned, or NULL with *err set: BH_ENOMEM, or BH_EPROTO when
 * data is not exactly one msgpack value. */
static bh_value *
value_adopt_at(char *base, char *data, size_t size, int *err) {
  bh_value *v = (size_t)(data - base) <= UINT32_MAX
                    ? bh__calloc(1, sizeof(*v))
                    : NULL;
  size_t off = 0;
  msgpack_unpack_return ret;

  *err = BH_ENOMEM;
  if (v == NULL)
    goto fail_value;
  if (!msgpack_zone_init(&v->zone, zone_chunk(size)))
    goto fail_zone;
  ret = msgpack_unpack(data, size, &off, &v->zone, &v->obj);
  if (ret != MSGPACK_UNPACK_SUCCESS) {
    *err = ret == MSGPACK_UNPACK_NOMEM_ERROR ? BH_ENOMEM : BH_EPROTO;
    goto fail_unpack;
  }
  /* LOCAL blob exts become bins over their blobs, which v then holds. */
  if (bh__blob_any() && bh__blob_resolve_local(&v->obj, &v->blobs) != 0) {
    bh__blobs_release(&v->blobs);
    goto fail_unpack;
  }
  v->base_off = (uint32_t)(data - base);
  v->data = data;
  v->size = size;
  *err = 0;
  return v;

fail_unpack:
  msgpack_zone_destroy(&v->zone);
fail_zone:
  bh__free(v);
fail_value:
  bh__free(base);
  return NULL;
}

static bh_value *
value_adopt(char *data, size_t size, int *err) {
  return value_adopt_at(data, data, size, err);
}

/* Turns what a packer wrote into b (status rc) into a value. */
static bh_value *
value_from_buf(bh__buf *b, int rc, int *err) {
  if (rc != 0) {
    bh__buf_free(b);
    *err = rc;
    return NULL;
  }
  return value_adopt(b->data, b->len, err); /* takes the buffer's bytes */
}

static bh_value *
value_vpack(int *err, const char *fmt, va_list ap, bool seq) {
  bh__buf b = {NULL, 0, 0};
  bh__blobs held = {NULL, 0, 0};
  msgpack_packer pk;
  bh_value *v;
  int unused;

  if (err == NULL)
    err = &unused;
  msgpack_packer_init(&pk, &b, bh__buf_write);
  v = value_from_buf(&b, bh__vpack(&pk, fmt, ap, &held, seq), err);
  bh__blobs_release(&held); /* v took its own references */
  return v;
}

bh_value *
bh_value_vpack(int *err, const char *fmt, va_list ap) {
  return value_vpack(err, fmt, ap, false);
}

bh_value *
bh__value_vpack_seq(int *err, const char *fmt, va_list ap) {
  return value_vpack(err, fmt, ap, true);
}

/* The name in parentheses: beehive.h's call macro stays out. */
bh_value *
(bh_value_pack)(int *err, const char *fmt, ...) {
  bh_value *v;
  va_list ap;

  va_start(ap, fmt);
  v = bh_value_vpack(err, fmt, ap);
  va_end(ap);
  return v;
}

bh_value *
bh_value_from_object(const msgpack_object *obj) {
  bh__buf b = {NULL, 0, 0};
  msgpack_packer pk;
  int err;

  /* msgpack-c could not decode the copy of anything deeper. */
  if (obj == NULL || bh__too_deep(obj, BH__MAX_DEPTH))
    return NULL;
  msgpack_packer_init(&pk, &b, bh__buf_write);
  return value_from_buf(&b, bh__pack_object(&pk, obj), &err);
}

bh_value *
bh__value_adopt(char *data, size_t size) {
  int err;

  return value_adopt(data, size, &err);
}

bh_value *
bh__value_adopt_at(char *base, char *data, size_t size) {
  int err;

  return value_adopt_at(base, data, size, &err);
}

bh_value *
bh_value_from_bytes(const void *data, size_t size) {
  char *copy;
  int err;

  if (data == NULL || size == 0)
    return NULL;
  copy = bh__malloc(size);
  if (copy == NULL)
    return NULL;
  memcpy(copy, data, size);
  return value_adopt(copy, size, &err);
}

const msgpack_object *
bh_value_object(const bh_value *v) {
  return v != NULL ? &v->obj : NULL;
}

const char *
bh_value_data(const bh_value *v, size_t *size) {
  if (size != NULL)
    *size = v != NULL ? v->size : 0;
  return v != NULL ? v->data : NULL;
}

bh_value *
bh__value_hold(bh_value *v) {
  BH_ASSERT(v->holds < UINT32_MAX);
  v->holds++;
  return v;
}

void
bh_value_free(bh_value *v) {
  if (v == NULL)
    return;
  if (v->holds > 0) {
    v->holds--;
    return;
  }
  bh__blobs_release(&v->blobs);
  msgpack_zone_destroy(&v->zone);
  bh__free_large(v->data - v->base_off, v->size + v->base_off);
  bh__free(v);
}

/* ------------------------------------------------------------------------
 * Inspection and rendering. */

const char *
bh__type_name(const msgpack_object *o) {
  if (o == NULL)
    return "NULL";
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    return "nil";
  case MSGPACK_OBJECT_BOOLEAN:
    return "bool";
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    return "int";
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    return "float";
  case MSGPACK_OBJECT_STR:
    return "str";
  case MSGPACK_OBJECT_BIN:
    return "bin";
  case MSGPACK_OBJECT_ARRAY:
    return "array";
  case MSGPACK_OBJECT_MAP:
    return "map";
  case MSGPACK_OBJECT_EXT:
    return "ext";
  }
  return "unknown";
}

const msgpack_object *
bh__map_get(const msgpack_object *map, const char *key) {
  const msgpack_object *k;
  size_t n;
  uint32_t i;

  if (map == NULL || key == NULL || map->type != MSGPACK_OBJECT_MAP)
    return NULL;
  n = strlen(key);
  for (i = 0; i < map->via.map.size; i++) {
    k = &map->via.map.ptr[i].key;
    if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
        (n == 0 || memcmp(k->via.str.ptr, key, n) == 0))
      return &map->via.map.ptr[i].val;
  }
  return NULL;
}

/* An snprintf-like sink: keeps what fits and counts everything. */
typedef struct writer {
  char *buf;
  size_t len; /* buf's size, room for the NUL included */
  size_t n;   /* bytes written so far, or that would have been */
} writer;

static void
put(writer *w, const char *s, size_t k) {
  size_t room;

  if (k > 0 && w->n + 1 < w->len) {
    room = w->len - 1 - w->n;
    memcpy(w->buf + w->n, s, k < room ? k : room);
  }
  w->n += k;
}

static void
put_str(writer *w, const char *s) {
  put(w, s, strlen(s));
}

static void putf(writer *w, const char *fmt, ...) BH_PRINTF(2, 3);
static void
putf(writer *w, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n > 0)
    put(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* The shortest text that reads back as d (as a float when is32), always
 * with a '.' or an exponent so that it reads as a float. */
static void
repr_float(writer *w, double d, bool is32) {
  char tmp[40];
  int prec;

  if (isnan(d) || isinf(d)) {
    put_str(w, isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
    return;
  }
  for (prec = is32 ? 6 : 15; prec < 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
    if (is32 ? (float)strtod(tmp, NULL) == (float)d : strtod(tmp, NULL) == d)
      break;
  }
  if (prec == 17)
    snprintf(tmp, sizeof(tmp), "%.17g", d);
  if (strpbrk(tmp, ".e") == NULL)
    strcat(tmp, ".0");
  put_str(w, tmp);
}

/* The escape for byte c inside a quoted string, or NULL if it needs none. */
static const char *
escape_of(unsigned char c, char tmp[8]) {
  switch (c) {
  case '"':
    return "\\\"";
  case '\\':
    return "\\\\";
  case '\n':
    return "\\n";
  case '\r':
    return "\\r";
  case '\t':
    return "\\t";
  case '\b':
    return "\\b";
  case '\f':
    return "\\f";
  }
  if (c >= 0x20 && c != 0x7f)
    return NULL;
  snprintf(tmp, 8, "\\u%04x", c);
  return tmp;
}

static void
repr_str(writer *w, const char *s, size_t n) {
  size_t i, run = 0;
  const char *esc;
  char tmp[8];

  put(w, "\"", 1);
  for (i = 0; i < n; i++) {
    if ((esc = escape_of((unsigned char)s[i], tmp)) == NULL)
      continue;
    put(w, s + run, i - run);
    put_str(w, esc);
    run = i + 1;
  }
  put(w, s + run, n - run);
  put(w, "\"", 1);
}

static void repr_obj(writer *w, const msgpack_object *o);

static void
repr_container(writer *w, const msgpack_object *o) {
  uint32_t i;

  if (o->type == MSGPACK_OBJECT_ARRAY) {
    put(w, "[", 1);
    for (i = 0; i < o->via.array.size; i++) {
      if (i > 0)
        put(w, ", ", 2);
      repr_obj(w, &o->via.array.ptr[i]);
    }
    put(w, "]", 1);
    return;
  }
  put(w, "{", 1);
  for (i = 0; i < o->via.map.size; i++) {
    if (i > 0)
      put(w, ", ", 2);
    repr_obj(w, &o->via.map.ptr[i].key);
    put(w, ": ", 2);
    repr_obj(w, &o->via.map.ptr[i].val);
  }
  put(w, "}", 1);
}

static void
repr_obj(writer *w, const msgpack_object *o) {
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    put_str(w, "null");
    break;
  case MSGPACK_OBJECT_BOOLEAN:
    put_str(w, o->via.boolean ? "true" : "false");
    break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    putf(w, "%" PRIu64, o->via.u64);
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    putf(w, "%" PRId64, o->via.i64);
    break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    repr_float(w, o->via.f64, o->type == MSGPACK_OBJECT_FLOAT32);
    break;
  case MSGPACK_OBJECT_STR:
    repr_str(w, o->via.str.ptr, o->via.str.size);
    break;
  case MSGPACK_OBJECT_BIN:
    putf(w, "<bin %" PRIu32 " bytes>", o->via.bin.size);
    break;
  case MSGPACK_OBJECT_EXT:
    putf(w, "<ext %d, %" PRIu32 " bytes>", (int)o->via.ext.type,
         o->via.ext.size);
    break;
  case MSGPACK_OBJECT_ARRAY:
  case MSGPACK_OBJECT_MAP:
    repr_container(w, o);
    break;
  default:
    put_str(w, "<unknown>");
    break;
  }
}

size_t
bh_value_repr(const msgpack_object *obj, char *buf, size_t len) {
  writer w = {buf, len, 0};

  if (obj == NULL)
    put_str(&w, "NULL");
  else
    repr_obj(&w, obj);
  if (len > 0)
    buf[w.n < len ? w.n : len - 1] = '\0';
  return w.n;
}
