/* walk.h - reading msgpack bytes item by item without decoding them
 * (walk.c): the wire's structure scan of every frame (wire.c) and the
 * check of a delegation's packed call (call.c). Nothing is allocated. */
#ifndef BH_WALK_H
#define BH_WALK_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "value/value.h"

/* What a walk saw. */
typedef struct bh__walk_seen {
  size_t blob_exts; /* exts of blob.h's type */
  bool exts;        /* any ext */
  uint64_t max_bin; /* the largest bin's size */
  int depth;        /* the deepest nesting: a scalar is 0 deep, [] 1 */
} bh__walk_seen;

/* Walks the one msgpack value at p[0..len), adding what it holds to *seen;
 * *end gets the offset just past it. Returns NULL if it is whole (every
 * announced item there; strings, bins and exts fit; nested at most
 * BH__MAX_DEPTH deep), else what is wrong with it: "" for bytes that end
 * too soon, or a clause that starts with ": ". */
const char *bh__walk_one(const unsigned char *p, size_t len, size_t *end,
                         bh__walk_seen *seen);

#endif
