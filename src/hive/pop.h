/* pop.h - the queen's population manager (pop.c). */
#ifndef BH_POP_H
#define BH_POP_H

#include "hive/deleg.h"

typedef struct bh__pop_opts {
  int min, max;
  int64_t interval_ms;
  double cpu_high, mem_high;
  int max_restarts;
  int64_t period_ms;
  int64_t recycle_after;
} bh__pop_opts;

/* Fills the defaults (the reference's rules); `initial` raises an unset
 * maximum so that the initial workers are not retired at once. */
void bh__pop_opts_norm(bh__pop_opts *o, int initial);
/* Starts managing bee's workers. Returns 0 or BH_ENOMEM. */
int bh__pop_start(bh_bee *bee, const bh__pop_opts *o);
/* Stops the cadence (the queen is dying). */
void bh__pop_stop(bh_bee *bee);
/* Frees the manager (closes its timers). */
void bh__pop_free(bh_bee *bee);

#endif
