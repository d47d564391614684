/* wire_util.h - helpers of the wire tests (test_wire.c: types and decoding;
 * test_wire_put.c: round trips and encoding limits). */
#ifndef BH_TEST_WIRE_UTIL_H
#define BH_TEST_WIRE_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "wire/wire.h"
#include "runner.h"

/* Packs a value described by whitespace-separated tokens:
 *   {N map of N pairs   [N array of N items   "text str (~ is a NUL byte)
 *   iN int64   uN uint64   n nil   t true   f false   dX double
 *   bN bin of N bytes   eN ext (type 1) of N bytes
 * e.g. `{2 "msg_type "new_task "task_id i7`. */
/* Packs a str, bin or ext token (see pack_spec). */
static inline void
pack_blob(msgpack_packer *pk, char *tok) {
  static const char zeros[8];
  size_t n = tok[0] == '"' ? strlen(tok + 1) : (size_t)atoi(tok + 1), i;

  if (tok[0] == '"') {
    for (i = 1; i <= n; i++)
      if (tok[i] == '~')
        tok[i] = '\0';
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, tok + 1, n);
  } else if ((tok[0] == 'b' || tok[0] == 'e') && n <= 8) {
    if (tok[0] == 'b') {
      msgpack_pack_bin(pk, n);
      msgpack_pack_bin_body(pk, zeros, n);
    } else {
      msgpack_pack_ext(pk, n, 1);
      msgpack_pack_ext_body(pk, zeros, n);
    }
  } else {
    fprintf(stderr, "bad spec token %s\n", tok);
    abort();
  }
}

/* Packs a value described by whitespace-separated tokens:
 *   {N map of N pairs   [N array of N items   "text str (~ is a NUL byte)
 *   iN int64   uN uint64   n nil   t true   f false   dX double
 *   bN bin of N bytes   eN ext (type 1) of N bytes (N <= 8)
 * e.g. `{2 "msg_type "new_task "task_id i7`. */
static inline void
pack_spec(msgpack_packer *pk, const char *spec) {
  char tok[256];
  size_t n;

  for (; sscanf(spec, "%255s%zn", tok, &n) == 1; spec += n) {
    if (tok[0] == '{')
      msgpack_pack_map(pk, (size_t)atoi(tok + 1));
    else if (tok[0] == '[')
      msgpack_pack_array(pk, (size_t)atoi(tok + 1));
    else if (tok[0] == 'i')
      msgpack_pack_int64(pk, strtoll(tok + 1, NULL, 10));
    else if (tok[0] == 'u')
      msgpack_pack_uint64(pk, strtoull(tok + 1, NULL, 10));
    else if (tok[0] == 'd')
      msgpack_pack_double(pk, strtod(tok + 1, NULL));
    else if (strcmp(tok, "n") == 0)
      msgpack_pack_nil(pk);
    else if (strcmp(tok, "t") == 0)
      msgpack_pack_true(pk);
    else if (strcmp(tok, "f") == 0)
      msgpack_pack_false(pk);
    else
      pack_blob(pk, tok);
  }
}

/* A decoding fixture: the packed body, its zone and the result. */
typedef struct fx {
  msgpack_sbuffer sb;
  msgpack_zone zone;
  bh__msg m;
  char err[256];
} fx;

static inline void
fx_init(fx *f) {
  memset(f, 0, sizeof(*f));
  msgpack_sbuffer_init(&f->sb);
  msgpack_zone_init(&f->zone, 1024);
}

static inline void
fx_close(fx *f) {
  msgpack_sbuffer_destroy(&f->sb);
  msgpack_zone_destroy(&f->zone);
}

/* Packs `spec` into f->sb and decodes it. */
static inline int
fx_decode(fx *f, const char *spec) {
  msgpack_packer pk;

  f->sb.size = 0;
  msgpack_packer_init(&pk, &f->sb, msgpack_sbuffer_write);
  pack_spec(&pk, spec);
  return bh__wire_decode(f->sb.data, f->sb.size, &f->zone, &f->m, f->err,
                         sizeof(f->err));
}

/* Decodes `spec` and expects BH_EPROTO with exactly `msg`. */
static inline int
expect_error(const char *spec, const char *msg) {
  fx f;
  int rc;

  fx_init(&f);
  rc = fx_decode(&f, spec);
  fx_close(&f);
  if (rc != BH_EPROTO || strcmp(f.err, msg) != 0) {
    fprintf(stderr, "spec: %s\n  rc %d, err \"%s\"\n  want \"%s\"\n", spec, rc,
            f.err, msg);
    return 1;
  }
  return 0;
}

/* Decodes `spec` and expects success. */
static inline int
expect_ok(fx *f, const char *spec) {
  int rc = fx_decode(f, spec);

  if (rc != 0) {
    fprintf(stderr, "spec: %s\n  rc %d, err \"%s\"\n", spec, rc, f->err);
    return 1;
  }
  return 0;
}

/* Decodes the frame at b->data + *off (header checked against the
 * remaining bytes) and advances *off past it. */
static inline int
decode_frame(const bh__buf *b, size_t *off, msgpack_zone *z, bh__msg *m) {
  char err[256] = "";
  size_t n;
  int rc;

  if (b->len - *off < BH__FRAME_HDR)
    return -1;
  n = bh__wire_frame_len((const unsigned char *)b->data + *off);
  if (n > b->len - *off - BH__FRAME_HDR)
    return -1;
  rc = bh__wire_decode(b->data + *off + BH__FRAME_HDR, n, z, m, err,
                       sizeof(err));
  if (rc != 0)
    fprintf(stderr, "decode: %d %s\n", rc, err);
  *off += BH__FRAME_HDR + n;
  return rc;
}

/* Unpacks `spec` into an object living in zone z. */
static inline msgpack_object
obj_spec(msgpack_zone *z, const char *spec) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_object o;
  size_t off = 0;
  char *copy;

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pack_spec(&pk, spec);
  /* strings borrow from the bytes: keep a copy in the zone */
  copy = msgpack_zone_malloc(z, sb.size);
  memcpy(copy, sb.data, sb.size);
  if (msgpack_unpack(copy, sb.size, &off, z, &o) != MSGPACK_UNPACK_SUCCESS) {
    fprintf(stderr, "bad spec %s\n", spec);
    abort();
  }
  msgpack_sbuffer_destroy(&sb);
  return o;
}

static inline bool
str_eq(const msgpack_object *o, const char *s) {
  return o != NULL && o->type == MSGPACK_OBJECT_STR &&
         o->via.str.size == strlen(s) &&
         memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* The i-th key of the root map is `key`. */
static inline bool
key_at(const bh__msg *m, uint32_t i, const char *key) {
  return m->root != NULL && i < m->root->via.map.size &&
         str_eq(&m->root->via.map.ptr[i].key, key);
}

#endif
