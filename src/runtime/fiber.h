/* fiber.h - stackful coroutines (Boost.Context's fcontext) and the
 * per-thread scheduler that runs them on the loop thread.
 *
 * The loop thread's own stack is "main". Callbacks (libuv) run on main and
 * wake fibers; a woken fiber is only queued, and the queue is drained once
 * per loop turn (turn.c), so no callback ever finds a fiber running inside
 * it. Nothing ever polls: a fiber runs only when woken. */
#ifndef BH_FIBER_H
#define BH_FIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bh__fiber bh__fiber;
typedef void (*bh__fiber_fn)(void *arg);

/* The default usable stack size (a class's stack_size 0), and the range
 * of bh_class.stack_size. Below each stack lies a guard region with no
 * access: 64 KiB rather than one page, so that a function whose frame is
 * larger than a page (a big local array it does not touch in order) still
 * lands in the guard instead of skipping over it into the next stack. Only
 * address space is spent on it. Our own code is also built with
 * -fstack-clash-protection, which probes every page of a large frame. */
#define BH__STACK_SIZE ((size_t)256 << 10)
#define BH__STACK_MIN ((size_t)64 << 10)
#define BH__STACK_MAX ((size_t)1 << 30)
#define BH__GUARD_SIZE ((size_t)64 << 10)

/* Makes a fiber that will run fn(arg) when first woken, on a stack of
 * `stack` usable bytes (0: BH__STACK_SIZE; rounded up to whole pages).
 * Returns owned (the scheduler frees it when fn returns) or NULL. Its
 * stack comes from the pool at its first run, so fibers that finish
 * without suspending share one stack however many were made in a turn. */
bh__fiber *bh__fiber_new(bh__fiber_fn fn, void *arg, size_t stack);
/* What runs on main, instead of fn(arg), when no stack can be had at the
 * first run (out of memory or of mappings); f is freed after it. Without
 * one that aborts. */
void bh__fiber_on_nostack(bh__fiber *f, bh__fiber_fn nostack);
/* Names what f runs, for the report of its stack overflow: the task and
 * its class. Borrows both until f ends; NULL: unknown. */
void bh__fiber_label(bh__fiber *f, const char *task, const char *cls);

/* A stack overflow of the running fiber, as overflow.c reports it. */
typedef struct bh__overflow {
  const char *task, *cls; /* bh__fiber_label's, or NULL */
  size_t stack;           /* its usable size */
} bh__overflow;
/* From a SIGSEGV handler on the faulting thread (async-signal-safe): true,
 * with *out filled, when a fault at addr is the running fiber's stack
 * overflow: addr lies in its guard region, or the stack pointer sp (0:
 * unknown) is already below the stack and addr between the two (a frame
 * larger than the guard, from code built without stack-clash probes). */
bool bh__fiber_overflowed(uintptr_t addr, uintptr_t sp, bh__overflow *out);
/* Queues f to resume; its pending bh__fiber_suspend() returns `status`.
 * A second wake before it runs is ignored. */
void bh__fiber_wake(bh__fiber *f, int status);
/* From inside a fiber: yields to main until woken; returns the status. */
int bh__fiber_suspend(void);
/* The running fiber, or NULL on main. */
bh__fiber *bh__fiber_current(void);
/* Runs fn(arg) on main: directly when on main, else the running fiber
 * yields, main runs fn, and the fiber resumes (e.g. to fork safely). */
void bh__fiber_call_main(void (*fn)(void *), void *arg);
/* The same, but the fiber resumes right after fn, before any fiber fn
 * woke or that was queued already: to the code around the call, nothing
 * else of its own thread ran (hive/feed.c). */
void bh__fiber_call_main_next(void (*fn)(void *), void *arg);
/* Runs every queued fiber until none is ready (main only). */
void bh__sched_run(void);
/* How many times a fiber was switched into so far: a fiber that reads
 * the same number twice did not wait in between. */
uint64_t bh__sched_resumes(void);
/* True when a fiber is queued to run. */
bool bh__sched_pending(void);
/* In a forked child: forgets the parent's fibers and pooled stacks. */
void bh__sched_reset_after_fork(void);
/* Number of fibers alive on this thread (for tests). */
size_t bh__fiber_live(void);
/* For tests: the stacks mapped so far on this thread, the free stacks
 * pooled now, and the end of the pool's window as if its time had come
 * (the peak of the window before is forgotten, and the free stacks kept
 * for it beyond the new peak are unmapped). */
size_t bh__fiber_stacks_mapped(void);
size_t bh__fiber_stacks_pooled(void);
void bh__fiber_pool_roll(void);
#endif
