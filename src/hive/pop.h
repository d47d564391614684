/* pop.h - the queen's population manager (pop.c): how many workers she
 * has, spawning them, and what she does when they die. */
#ifndef BH_POP_H
#define BH_POP_H

#include "base/base.h"
#include "hive/child.h"

typedef struct bh__pop bh__pop;

typedef struct bh__pop_opts {
  int min, max;              /* local workers; min -1: none, ever (a hive
                              * of remote workers: max is then 0) */
  int64_t interval_ms;
  double cpu_high, mem_high;
  int max_restarts;
  int64_t period_ms;
  int64_t recycle_after;
  int remote_loss;           /* bh_remote_loss: after a remote death */
} bh__pop_opts;

/* Fills the defaults (the reference's rules); `initial` raises an unset
 * maximum so that the initial workers are not retired at once. */
void bh__pop_opts_norm(bh__pop_opts *o, int initial);
/* Starts managing bee's workers; `changed` is called after the manager
 * spawned or gave up, so that waiting work moves (the delegations sit
 * above the population). Returns 0 or BH_ENOMEM. */
int bh__pop_start(bh_bee *bee, const bh__pop_opts *o,
                  void (*changed)(bh_bee *bee));
/* Spawns n workers of the bee's worker class (queen.h) and adopts them.
 * Returns 0 or the first error; why (when not NULL) may then receive what
 * happened (owned), e.g. an external program's exec failure. */
int bh__pop_spawn(bh_bee *bee, int n, char **why);
/* Stops the cadence (the queen is dying). */
void bh__pop_stop(bh_bee *bee);
/* Frees the manager (closes its timers). */
void bh__pop_free(bh_bee *bee);
/* True when the bee may still get children (a queen under her limits,
 * or with her door open to remote workers). */
bool bh__pop_can_grow(const bh_bee *bee);
/* Delegations wait because every child is full: grow if allowed. */
void bh__pop_saturated(bh_bee *bee);
/* Child c answered a task (for recycling). */
void bh__pop_task_done(bh_bee *bee, bh__child *c);
/* Child c was mourned (replacement, restart limit; a remote one is not
 * replaced: remote_loss says what follows). */
void bh__pop_on_death(bh_bee *bee, bh__child *c);

#endif
