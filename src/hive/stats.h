/* stats.h - what a bee counts about its delegations and children, and its
 * lanes in a timeline (stats.c; bh_bee_stats in beehive.h). */
#ifndef BH_STATS_H
#define BH_STATS_H

#include "hive/bee.h"
#include "hive/child.h"

/* What stays of a dead child once its record is freed: its last numbers,
 * which bh_bee_stats lists for the last BH__GRAVES dead children.
 * Older ones count only in the bee's totals, so that a queen recycling
 * workers for days keeps a flat memory. */
#define BH__GRAVES 32
typedef struct bh__grave {
  bh_child_stats st;     /* st.cause unset: see cause */
  char *cause;           /* why it ended, or NULL */
  char *host;            /* a remote child's address, or NULL */
  int wstatus;           /* its reaped status (pid != 0) */
} bh__grave;

/* Names the lane of child c in the bee's trace, if it records. */
void bh__stats_child_lane(bh_bee *bee, const bh__child *c);
/* Child c was mourned: keeps its last numbers (and takes its cause). */
void bh__stats_bury(bh_bee *bee, bh__child *c);
/* What stays of dead child `id`, or NULL (alive, or buried too long ago). */
const bh__grave *bh__stats_grave(const bh_bee *bee, int64_t id);
void bh__stats_free(bh_bee *bee);

#endif
