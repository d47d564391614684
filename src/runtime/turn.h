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

/* The output the turn flushes. The transport, a layer above this one,
 * registers it when it opens its first channel (transport/chan.c), so that
 * the turn writes without knowing what a channel is. */
typedef struct bh__turn_output {
  void (*flush_all)(void);  /* writes what was queued this turn */
  bool (*take_urgent)(void); /* true once after output that must leave
                              * before any fiber runs */
  void (*forget_all)(void); /* in a forked child: drops the parent's */
} bh__turn_output;
/* Registers this thread's output (the same one again is a no-op). */
void bh__turn_set_output(const bh__turn_output *o);

#endif
