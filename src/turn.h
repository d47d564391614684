/* turn.h - the end of every loop turn: run the fibers that were woken and
 * flush the channels they wrote to, until nothing is left to do. One
 * prepare handle per loop thread does it; it does not keep the loop alive
 * and costs nothing while the loop sleeps. */
#ifndef BH_TURN_H
#define BH_TURN_H

#include <stdbool.h>
#include <uv.h>

/* Starts the turn hook on loop (once per thread). Returns 0 or an error. */
int bh__turn_init(uv_loop_t *loop);
/* Runs one turn's work now (also what the hook does). */
void bh__turn_run(void);
/* Keeps the loop alive until the next turn's end: a fiber was woken or a
 * channel has output (fiber.c and chan.c call it). */
void bh__turn_pending(void);
/* Whether this thread's hook runs: a hive lives on this thread. */
bool bh__turn_active(void);
/* Stops and closes the hook; uv_run() must then run to let it close. */
void bh__turn_close(void);
/* The end of a loop whose bees are freed: closes the hook and every handle
 * left, runs the loop until they are closed, and closes it. */
void bh__turn_finish(uv_loop_t *loop);
/* The same without touching the hook (it may serve another loop). */
void bh__loop_finish(uv_loop_t *loop);
/* In a forked child: forgets the parent's hook without touching it. */
void bh__turn_forget(void);

#endif
