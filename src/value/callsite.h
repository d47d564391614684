/* callsite.h - where a call through the header's macros came from
 * (callsite.c), for tracebacks that start at the caller's line. */
#ifndef BH_CALLSITE_H
#define BH_CALLSITE_H

#include "base/base.h"

typedef struct bh__site {
  const char *call; /* "bh_delegate"...; NULL: none recorded */
  const char *file, *func;
  int line;
} bh__site;
/* Takes the site the macros recorded for `call` on this thread, into *out
 * (may be NULL): false when the last call recorded was not `call`. Every
 * take clears the record, so a later call cannot take a stale one. */
bool bh__site_take(const char *call, bh__site *out);

#endif
