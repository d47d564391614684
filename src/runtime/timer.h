/* timer.h - deadlines finer than a millisecond for waiting tasks: a binary
 * heap of entries ordered by due time (nanoseconds on uv_hrtime()'s clock,
 * CLOCK_MONOTONIC) over one timerfd per bee, watched by a uv_poll_t.
 *
 * libuv's timers count whole milliseconds of a loop time that is itself
 * rounded down: a 1 ms bh_sleep() slept 1.10 ms on average, and could end
 * early when another event woke the loop just after a millisecond tick. An
 * entry here fires on the first loop turn at or after its due time, never
 * before it. */
#ifndef BH_TIMER_H
#define BH_TIMER_H

#include <stdint.h>
#include <uv.h>

typedef struct bh__timers bh__timers;

typedef struct bh__tentry {
  uint64_t due;  /* ns */
  size_t idx;    /* its place in the heap + 1; 0 when not queued */
  void (*cb)(struct bh__tentry *e); /* called once, already dequeued */
} bh__tentry;

/* Returns 0 or an error (BH_ENOMEM, or the timerfd's). */
int bh__timers_open(bh__timers **out, uv_loop_t *loop);
/* Drops every entry without calling it, and frees the set once libuv lets
 * go of its handle. NULL is fine. */
void bh__timers_close(bh__timers *tm);
/* Queues e (stopping it first if queued) to fire at `due`. Returns 0 or
 * BH_ENOMEM. */
int bh__timer_start(bh__timers *tm, bh__tentry *e, uint64_t due);
/* Dequeues e if queued. */
void bh__timer_stop(bh__timers *tm, bh__tentry *e);

#endif
