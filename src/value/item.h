/* item.h - private helpers of pack.c and unpack.c for modules that pack
 * or unpack a format in several parts, such as "[...]{...}" for a task's
 * args and kwargs. Public callers use bh_pack()/bh_unpack() from
 * beehive.h. */
#ifndef BH_ITEM_H
#define BH_ITEM_H

#include <stdarg.h>
#include <stdbool.h>

#include "base/base.h"

/* Packs the first item of *fmt (one letter, or one [...] or {...}) into pk,
 * taking its arguments from *ap, and advances *fmt past it. Returns 0,
 * BH_EFORMAT (nothing written), BH_EMSGSIZE (a str or bin over 4 GiB) or
 * BH_ENOMEM (the packer may then hold a partial value). */
int bh__pack_item(msgpack_packer *pk, const char **fmt, va_list *ap);

/* Unpacks `obj` by the first item of *fmt into the targets in *ap and
 * advances *fmt past it. Error messages name positions under `root`, e.g.
 * root "args" gives "args[1]: expected str, got int"; root "" names the top
 * "value" ("value: expected map, got int"). Returns 0, BH_ETYPE or
 * BH_EFORMAT, with a message in errbuf (when not NULL). */
int bh__unpack_item(const msgpack_object *obj, const char *root, char *errbuf,
                    size_t errlen, const char **fmt, va_list *ap);

/* True when fmt holds nothing but blanks, commas and colons. */
bool bh__fmt_empty(const char *fmt);

#endif /* BH_ITEM_H */
