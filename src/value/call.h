/* call.h - a delegation's call, [args] or [args, kwargs], packed once when
 * the delegation is made and kept until a child has it (call.c).
 *
 * A call is one allocation: a few bytes of header and the packed bytes.
 * Most calls go out as they were packed, copied into the frame
 * (bh__call_raw). A call the encoder must walk item by item (a blob ext,
 * a bin large enough to be borrowed or to travel as a blob, args nested
 * too deep for a field) is a bh_value over the same bytes, decoded once
 * (bh__call_value); the channel then holds that value while it writes
 * bins borrowed from it. */
#ifndef BH_CALL_H
#define BH_CALL_H

#include <stdarg.h>

#include "base/base.h"

typedef struct bh__call bh__call;

/* Packs fmt's items as one array, the call (group.c gives "[]" for an
 * empty format). Returns 0 with *out owned, BH_ENOMEM, the packer's
 * BH_EFORMAT or BH_EMSGSIZE, or BH_EINVAL when the items are not "[...]"
 * optionally followed by "{...}". */
int bh__call_vpack(bh__call **out, const char *fmt, va_list ap);
/* The call [args, kwargs] of two objects (NULL: [] and {}). Returns it
 * owned, or NULL (no memory, an object nested too deep). */
bh__call *bh__call_of(const msgpack_object *args,
                      const msgpack_object *kwargs);
void bh__call_free(bh__call *c);

/* True if c goes out as it was packed: *raw then points at its args,
 * args_len bytes, followed by its kwargs, kwargs_len bytes (0: none).
 * False if the encoder must walk its objects (bh__call_value). */
bool bh__call_raw(const bh__call *c, const char **raw, size_t *args_len,
                  size_t *kwargs_len);
/* c decoded, for the encoder's walk: its own value (borrowed), or a new
 * one of its bytes put in *tmp (owned; the caller frees it after the
 * send). NULL: no memory. */
bh_value *bh__call_value(bh__call *c, bh_value **tmp);

#endif
