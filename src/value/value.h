/* value.h - the inside of a bh_value (value.c) and the helpers of the
 * modules that pack values with blobs (pack.c, value.c). */
#ifndef BH_VALUE_H
#define BH_VALUE_H

#include <stdarg.h>

#include "base/base.h"
#include "value/blob.h"

/* msgpack-c's unpacker keeps at most this many containers open at once (its
 * MSGPACK_EMBED_STACK_SIZE): nothing deeper is ever packed, and a deeper
 * frame can never be decoded. */
#define BH__MAX_DEPTH 32

struct bh_value {
  char *data; /* the encoded bytes */
  size_t size;
  msgpack_zone zone;
  msgpack_object obj;
  bh__blobs blobs; /* the blobs its bins lie in (blob exts resolved) */
  uint32_t holds;  /* owners besides the first (bh__value_hold); each
                    * bh_value_free() drops one. Loop thread only. */
  uint32_t base_off; /* data lies this far into the allocation freed with
                      * the value (a frame's input buffer, chan.c) */
};
/* Adds an owner to v (a channel sending its bytes); returns v. */
bh_value *bh__value_hold(bh_value *v);
/* bh_vpack() that also packs a y# bin of at least the blob threshold lying
 * inside a blob as a LOCAL blob ext, adding a reference to `held`. */
int bh__vpack_blobs(msgpack_packer *pk, const char *fmt, va_list ap,
                    bh__blobs *held);
/* Why packing fmt failed with rc, into buf: the format's fault ("format:
 * unknown letter 'x' at 1"), a value nested too deep, a str or bin too
 * long, no memory. */
void bh__pack_why(const char *fmt, int rc, char *buf, size_t len);
/* bh_value_vpack() of "[" fmt "]", without building that string: fmt's
 * items as one array, however many there are. */
bh_value *bh__value_vpack_seq(int *err, const char *fmt, va_list ap);
/* A value of data[0..size) (from bh__malloc), which it takes over. */
bh_value *bh__value_adopt(char *data, size_t size);
/* The same for data[0..size) lying inside base (from bh__malloc). */
bh_value *bh__value_adopt_at(char *base, char *data, size_t size);
/* The msgpack type name used in messages: "nil", "bool", "int", "float",
 * "str", "bin", "array", "map", "ext". */
const char *bh__type_name(const msgpack_object *o);
/* Finds key `key` (a str) in map `map`; NULL if absent or not a map. */
const msgpack_object *bh__map_get(const msgpack_object *map, const char *key);
/* Packs one object into pk. */
int bh__pack_object(msgpack_packer *pk, const msgpack_object *o);

#endif /* BH_VALUE_H */
