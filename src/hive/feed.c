/* feed.c - a task that delegates thousands of tasks in a row would hold
 * its bee's loop all along: its offers would leave, and its children's
 * answers be read, only when it waits. The children would idle from
 * their first batch to the end of the run (20,000 delegations take 18 ms
 * here, and bench_balance's tasks 1 ms). So, every BH__FEED_POLL_NS of
 * delegating (and 16 delegations), the task lets main do the loop's work for the children in
 * between: write what waits for them, read and handle what they said
 * (answers complete futures, freed slots take the next offers), write
 * again. No other fiber runs meanwhile (bh__fiber_call_main_next): to the
 * delegating task, bh_group_delegate() still never waits. */
#include "hive/feed.h"
#include "hive/child.h"
#include "runtime/fiber.h"
#include "transport/chan.h"

/* After a poll the fiber's own resume starts a new run: so it polls
 * again after BH__FEED_EVERY more delegations and BH__FEED_POLL_NS. */
#define BH__FEED_POLL_NS ((uint64_t)100000)
#define BH__FEED_EVERY 16 /* delegations between looks at the clock */
#define BH__FEED_MAX_KIDS 256 /* read in one go; the rest by the loop */

static void
poll_children(void *arg) {
  bh_bee *bee = arg;
  int64_t ids[BH__FEED_MAX_KIDS];
  size_t i, n = bee->kids.n < BH__FEED_MAX_KIDS ? bee->kids.n
                                                 : BH__FEED_MAX_KIDS;

  bh__chan_flush_all();
  /* by id: a child's death while its neighbour's answers are handled
   * takes it out of the array */
  for (i = 0; i < n; i++)
    ids[i] = bee->kids.all[i]->id;
  for (i = 0; i < n; i++) {
    bh__child *c = bh__child_find(&bee->kids, ids[i]);

    if (c != NULL && c->chan != NULL)
      bh__chan_drain(c->chan);
  }
  bh__chan_flush_all();
}

/* A run of delegations is counted from the task's last wait (the
 * scheduler switched into no fiber since) or the last answer it took;
 * its first BH__FEED_EVERY calls never poll, so a task that delegates one
 * task and waits pays nothing. A task that takes answers as it delegates
 * (a burst that keeps 4,096 in flight, a map's window) is paced by them
 * and never polls: its workers have the tasks it delegated on each
 * answer already, and the turn writes and reads them in batches (polling
 * every 250 us there cost 2 us of the queen's CPU per task, twice as
 * much: many small writes instead of a few large). */
void
bh__feed_taken(bh_bee *bee) {
  bee->feed_count = 0;
  bee->fed_ns = 0;
}

void
bh__feed_children(bh_bee *bee) {
  uint64_t sw = bh__sched_resumes(), now;

  if (sw != bee->feed_resumes) { /* it waited: a new run */
    bee->feed_resumes = sw;
    bee->feed_count = 0;
    bee->fed_ns = 0;
    return;
  }
  if (++bee->feed_count % BH__FEED_EVERY != 0 || bee->kids.n == 0 ||
      bh__fiber_current() == NULL)
    return;
  now = uv_hrtime();
  if (bee->fed_ns == 0)
    bee->fed_ns = now;
  else if (now - bee->fed_ns >= BH__FEED_POLL_NS)
    bh__fiber_call_main_next(poll_children, bee);
}
