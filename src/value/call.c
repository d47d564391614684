/* call.c - a delegation's call, packed once (call.h).
 *
 * A delegation waits with its call until a child takes it, and a queen
 * may hold a million of them: a bh_value for each (its record, a zone
 * chunk for the decoded objects, the packing buffer) cost more than the
 * delegation's own record. So a call is one block, its header and then
 * its bytes (a small call is packed on the stack and copied into a block
 * of its exact size), and a walk of the bytes (walk.c) decides: a call
 * whose bytes the encoder would copy as they are goes out by memcpy; any
 * other is adopted as a bh_value of the same block, decoded once, as
 * every call used to be. */
#include <stddef.h>
#include <string.h>

#include "value/call.h"
#include "value/fmt.h"
#include "value/value.h"
#include "value/walk.h"

struct bh__call {
  bh_value *value;     /* a walked call: data[] decoded; NULL: raw */
  uint32_t args_len;   /* data[1..]: args, then kwargs */
  uint32_t kwargs_len; /* 0: no kwargs */
  uint32_t max_bin;    /* raw: its largest bin, under BH__BORROW_MIN */
  char data[];         /* the packed call: its array header, then items */
};

#define HDR offsetof(bh__call, data)

/* The packed call's size: its array header, args and kwargs. */
static size_t
size_of(const bh__call *c) {
  return 1 + (size_t)c->args_len + c->kwargs_len;
}

static bool
is_array(unsigned c) {
  return (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd;
}

static bool
is_map(unsigned c) {
  return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf;
}

/* A part that goes into a field as it was packed: nothing in it the
 * encoder's walk would treat (blob exts, bins to borrow or to send as
 * blobs), and nested at most BH__MAX_DEPTH - 1 deep (a field's limit). */
static bool
plain(const bh__walk_seen *s) {
  return !s->exts && s->max_bin < BH__BORROW_MIN && s->depth < BH__MAX_DEPTH;
}

/* Checks the shape of c's size bytes, [args] or [args, kwargs], and fills
 * its lengths; *raw says whether it can go out as it is. */
static int
check(bh__call *c, size_t size, bool *raw) {
  const unsigned char *p = (const unsigned char *)c->data;
  bh__walk_seen a = {0, false, 0, 0}, k = {0, false, 0, 0};
  size_t alen = 0, klen = 0;

  if (size < 2 || (p[0] != 0x91 && p[0] != 0x92) || !is_array(p[1]) ||
      bh__walk_one(p + 1, size - 1, &alen, &a) != NULL)
    return BH_EINVAL;
  if (p[0] == 0x92 &&
      (1 + alen >= size || !is_map(p[1 + alen]) ||
       bh__walk_one(p + 1 + alen, size - 1 - alen, &klen, &k) != NULL))
    return BH_EINVAL;
  if (1 + alen + klen != size)
    return BH_EINVAL;
  *raw = plain(&a) && plain(&k) && size <= UINT32_MAX;
  c->args_len = (uint32_t)alen;
  c->kwargs_len = (uint32_t)klen;
  c->max_bin = (uint32_t)(a.max_bin > k.max_bin ? a.max_bin : k.max_bin);
  return 0;
}

/* Where a call is packed: `small` (on the stack) while it fits, so that
 * a small call costs one allocation of its exact size; then a buffer with
 * room for the header first, which a large call keeps. */
typedef struct sink {
  bh__buf b;         /* NULL data: everything is in small */
  size_t n;          /* bytes in small */
  char small[256];
} sink;

static int
sink_write(void *data, const char *p, size_t len) {
  sink *s = data;

  if (len == 0) /* an empty str or bin's body, which may be NULL */
    return 0;
  if (s->b.data == NULL && len <= sizeof(s->small) - s->n) {
    memcpy(s->small + s->n, p, len);
    s->n += len;
    return 0;
  }
  if (s->b.data == NULL) {
    if (bh__buf_reserve(&s->b, HDR + s->n + len) != 0)
      return BH_ENOMEM;
    memcpy(s->b.data + HDR, s->small, s->n);
    s->b.len = HDR + s->n;
  }
  return bh__buf_append(&s->b, p, len);
}

/* The block of what s packed, after room for the header: s's buffer, or
 * one of the exact size for what `small` holds. NULL: no memory. */
static bh__call *
land(sink *s, size_t *size) {
  bh__call *c;

  if (s->b.data != NULL) {
    *size = s->b.len - HDR;
    return (bh__call *)s->b.data;
  }
  *size = s->n;
  if ((c = bh__malloc(HDR + s->n)) != NULL)
    memcpy(c->data, s->small, s->n);
  return c;
}

/* The call of what s holds (rc: how the packing went), taking s's
 * buffer. */
static int
call_of_sink(bh__call **out, sink *s, int rc) {
  bh__call *c;
  size_t size;
  bool raw = false;

  if (rc != 0) {
    bh__buf_free(&s->b);
    return rc;
  }
  if ((c = land(s, &size)) == NULL)
    return BH_ENOMEM;
  if ((rc = check(c, size, &raw)) != 0) {
    bh__free_large(c, HDR + size);
    return rc;
  }
  c->value = NULL;
  if (!raw && (c->value = bh__value_adopt_at((char *)c, c->data, size)) ==
                  NULL)
    return BH_ENOMEM; /* it freed c */
  *out = c;
  return 0;
}

/* Packs fmt (seq: its items as one array) into a call. */
static int
call_vpack(bh__call **out, const char *fmt, va_list ap, bool seq) {
  bh__blobs held = {NULL, 0, 0};
  msgpack_packer pk;
  sink s;
  int rc;

  s.b = (bh__buf){NULL, 0, 0};
  s.n = 0;
  msgpack_packer_init(&pk, &s, sink_write);
  rc = call_of_sink(out, &s, bh__vpack(&pk, fmt, ap, &held, seq));
  bh__blobs_release(&held); /* a walked call's value took its own */
  return rc;
}

int
bh__call_vpack(bh__call **out, const char *fmt, va_list ap) {
  return call_vpack(out, fmt, ap, true);
}

static int
call_pack(bh__call **out, const char *fmt, ...) {
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = call_vpack(out, fmt, ap, false);
  va_end(ap);
  return rc;
}

bh__call *
bh__call_of(const msgpack_object *args, const msgpack_object *kwargs) {
  static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
  static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};
  bh__call *c = NULL;

  call_pack(&c, "[oo]", args ? args : &empty_array,
            kwargs ? kwargs : &empty_map);
  return c;
}

void
bh__call_free(bh__call *c) {
  if (c == NULL)
    return;
  if (c->value != NULL) /* which frees c, perhaps once a channel let go */
    bh_value_free(c->value);
  else
    bh__free_large(c, HDR + size_of(c));
}

bool
bh__call_raw(const bh__call *c, const char **raw, size_t *args_len,
             size_t *kwargs_len) {
  /* A bin the blob threshold (set since) makes a blob needs the walk. */
  if (c->value != NULL || c->max_bin >= bh__blob_threshold())
    return false;
  *raw = c->data + 1;
  *args_len = c->args_len;
  *kwargs_len = c->kwargs_len;
  return true;
}

bh_value *
bh__call_value(bh__call *c, bh_value **tmp) {
  *tmp = NULL;
  if (c->value != NULL)
    return c->value;
  *tmp = bh_value_from_bytes(c->data, size_of(c));
  return *tmp;
}
