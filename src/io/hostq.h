/* hostq.h - slots per host: at most `limit` holders per key at once, the
 * others waiting in arrival order.
 *
 * The HTTP session (http.c) keeps its transfers beyond the per-host limit
 * here rather than in libcurl: libcurl 7.88 walks its whole list of
 * pending transfers each time one is removed, which made a bee with
 * 2,048 tasks on 256 connections spend a tenth of its CPU there. This
 * module knows keys and waiters, not transfers; a waiter is embedded in
 * its owner's struct. A host's record lives while it has holders or
 * waiters, so memory follows the hosts in use, not the hosts ever seen. */
#ifndef BH_HOSTQ_H
#define BH_HOSTQ_H

#include <stdbool.h>

typedef struct bh__hostq bh__hostq;
typedef struct bh__hostq_host bh__hostq_host;

typedef struct bh__hostq_wait {
  bh__hostq_host *host;              /* NULL: neither holding nor waiting */
  struct bh__hostq_wait *prev, *next; /* the host's queue, while waiting */
  bool holding;
} bh__hostq_wait;

/* limit: holders per key at once (at least 1). NULL: no memory. */
bh__hostq *bh__hostq_new(long limit);
/* Frees the table; every waiter must have left or cancelled. */
void bh__hostq_free(bh__hostq *q);

/* w asks for a slot of key (copied). Returns 1 when w holds one now, 0
 * when it waits for one, BH_ENOMEM. */
int bh__hostq_enter(bh__hostq *q, const char *key, bh__hostq_wait *w);
/* w, holding a slot, gives it back. Returns the first waiter of the same
 * key, which now holds it, or NULL. */
bh__hostq_wait *bh__hostq_leave(bh__hostq *q, bh__hostq_wait *w);
/* w, waiting, stops waiting. */
void bh__hostq_cancel(bh__hostq *q, bh__hostq_wait *w);

/* Waiters across all keys (for tests). */
unsigned long bh__hostq_waiting(const bh__hostq *q);

#endif
