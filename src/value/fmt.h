/* fmt.h - what the format language's modules share (fmt.c, pack.c,
 * unpack.c, value.c). Public callers use bh_pack()/bh_unpack(). */
#ifndef BH_FMT_H
#define BH_FMT_H

#include <stdarg.h>
#include <stdbool.h>

#include "base/base.h"
#include "value/blob.h"
#include "value/item.h"
#include "value/value.h"

/* Tokens: a letter is its own code; s# and y# get codes of their own. A
 * C array, '#' and an element letter (#I, #s#...), is T_ARR plus the
 * element's token; a '#' followed by anything else is '#' alone. */
enum { T_END = 0, T_SHASH = 256 + 's', T_YHASH = 256 + 'y', T_ARR = 1024 };
/* True for a C array token; bh__tok_elem() gives its element's token. */
#define bh__tok_is_arr(t) ((t) > T_ARR)
#define bh__tok_elem(t) ((t) - T_ARR)

/* Reads the token at *pos and advances past it; *at gets its offset. */
int bh__tok_next(const char *fmt, size_t *pos, size_t *at);
int bh__tok_peek(const char *fmt, size_t pos);
/* Counts the items from pos to the close of the enclosing container (or to
 * the end of fmt). A map's keys and values each count as one item. */
size_t bh__count_items(const char *fmt, size_t pos);
/* Validates a whole format; *count gets its number of top-level items.
 * unpack says which letters are allowed. Returns 0 or BH_EFORMAT with a
 * message in err (when not NULL). */
int bh__check_format(const char *fmt, bool unpack, char *err, size_t errlen,
                     size_t *count);
/* bh__check_format() whose message quotes the format, for a caller that
 * does not show it otherwise: "format \"[x]\": unknown letter 'x' at 1". */
int bh__check_format_quoted(const char *fmt, bool unpack, char *err,
                            size_t errlen);
/* Validates the first item of fmt; *end gets the offset just past it. */
int bh__check_one(const char *fmt, bool unpack, char *err, size_t errlen,
                  size_t *end);

/* pack.c: true when o nests containers more than `room` levels deep. */
bool bh__too_deep(const msgpack_object *o, int room);
/* pack.c: packs fmt's items: one item as itself and several as one array,
 * or with `seq` always as one array. LOCAL blob exts it packs take a
 * reference in `held` (NULL: none packed). */
int bh__vpack(msgpack_packer *pk, const char *fmt, va_list ap,
              bh__blobs *held, bool seq);

#endif /* BH_FMT_H */
