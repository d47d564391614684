/* cap.h - the accept rule, written once: a bee accepts an offer while it
 * holds fewer than max_concurrency + prefetch tasks (accepted and not yet
 * finished), and a parent offers to a child only while the same rule,
 * counted on its own side, says that child has room.
 *
 * The invariant that makes the two sides agree: the parent counts a
 * child's tasks (bh__child.inflight: offers unanswered + tasks started on
 * it) up when it sends an offer and down only once the child has let go
 * of the task (its task_denied or task_done received) or when it sends
 * task_taken, which the child reads before any later offer (one channel,
 * in order). So whenever the child reads an offer, its own count
 * (bh_bee.n_reserved) is at most the parent's at the time of sending,
 * and an offer made with room finds room: a child denies only when it is
 * terminating, or when a parent that is not a beehive breaks the rule. */
#ifndef BH_CAP_H
#define BH_CAP_H

#include <stdbool.h>
#include <stddef.h>

/* True when a bee holding `held` tasks may take one more under limit
 * max_conc (-1: no limit) plus prefetch (queued beyond it). */
static inline bool
bh__cap_room(int max_conc, size_t held, int prefetch) {
  return max_conc < 0 || held < (size_t)max_conc + (size_t)prefetch;
}

#endif
