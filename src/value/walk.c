/* walk.c - msgpack bytes read item by item, without decoding (walk.h).
 *
 * msgpack-c allocates a container's items as soon as it reads the header,
 * so a 5-byte frame announcing 2^32 items would ask for ~100 GiB: the wire
 * walks every frame first, allocating nothing, and msgpack-c then
 * allocates only for items that exist. The same walk tells a delegation's
 * call that can go out as it was packed from one that needs its objects
 * (call.c). */
#include "value/blob.h"
#include "value/walk.h"

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

static bool
is_ext(unsigned c) {
  return (c >= 0xc7 && c <= 0xc9) || (c >= 0xd4 && c <= 0xd8);
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

/* Adds the item at p, a bin or an ext whose header fits (size bytes),
 * to *seen. */
static void
see(const unsigned char *p, uint64_t size, bh__walk_seen *seen) {
  unsigned c = p[0];

  if (c >= 0xc4 && c <= 0xc6) { /* bin 8/16/32: the payload's size */
    uint64_t n = size - 1 - (c == 0xc4 ? 1 : c == 0xc5 ? 2 : 4);

    if (n > seen->max_bin)
      seen->max_bin = n;
  } else if (is_ext(c)) {
    seen->exts = true;
    seen->blob_exts += is_blob_ext(p);
  }
}

/* Every frame is walked, so the loop keeps to locals and takes the
 * common items (fixints, fixstrs, small maps and arrays) without the
 * header tables; the rare ones (bins, exts) go to see(). `top` counts the
 * items left in the innermost open container (at first, the value
 * itself), `left` those of the containers around it. */
const char *
bh__walk_one(const unsigned char *p, size_t len, size_t *end,
             bh__walk_seen *seen) {
  uint64_t left[BH__MAX_DEPTH], size, items, off = 0, top = 1;
  int depth = 0, deepest = seen->depth;

  for (;;) {
    unsigned c;

    if (off >= len)
      return "";
    c = p[off];
    items = 0;
    size = 1;
    if (c >= 0xa0 && c <= 0xbf)
      size += c & 0x1f; /* fixstr */
    else if (c >= 0x80 && c <= 0x9f)
      items = c <= 0x8f ? 2 * (c & 0x0f) : c & 0x0f; /* fixmap, fixarray */
    else if (c >= 0xc0 && c < 0xe0 && !item_head(p + off, len - off, &size,
                                                  &items))
      return "";
    if (size > len - off)
      return "";
    if (is_container(c)) {
      if (depth >= BH__MAX_DEPTH)
        return ": nested deeper than 32 levels";
      if (depth >= deepest)
        deepest = depth + 1; /* an empty one is as deep */
    } else if (c >= 0xc4 && c <= 0xd8) { /* bins, exts and a few more */
      see(p + off, size, seen);
    }
    off += size;
    top--;
    if (items > 0) {
      left[depth++] = top;
      top = items;
    }
    while (top == 0) {
      if (depth == 0) {
        seen->depth = deepest;
        *end = off;
        return NULL;
      }
      top = left[--depth];
    }
  }
}
