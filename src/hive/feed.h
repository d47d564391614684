/* feed.h - keeping the children fed while a task delegates many tasks in
 * a row (feed.c). */
#ifndef BH_FEED_H
#define BH_FEED_H

#include "hive/bee.h"

/* After each delegation a task starts: now and then (every
 * BH__FEED_POLL_NS of delegating without waiting or taking an answer),
 * the loop's work for the bee's children is done there and then. */
void bh__feed_children(bh_bee *bee);
/* The task took an answer (bh_group_next, bh_future_wait): its run of
 * delegations is paced by the answers it takes, so the count starts
 * again. */
void bh__feed_taken(bh_bee *bee);

#endif
