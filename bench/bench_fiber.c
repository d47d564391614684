/* bench_fiber.c - the fiber switch, through the library's internal
 * scheduler (src/runtime/fiber.h), without a loop: fibers A and B hand control to
 * each other `rounds` times. A hand-over is bh__fiber_wake(other) then
 * bh__fiber_suspend(): the running fiber jumps to main, whose scheduler
 * (bh__sched_run) pops the other fiber from the ready queue and jumps into
 * it, so each hand-over is two jump_fcontext calls plus the queue work.
 *
 *   fiber_switch_ns   one hand-over from a fiber to another
 *   fiber_jump_ns     half of it: one context switch (fiber <-> main)
 *   fiber_spawn_ns    bh__fiber_new + first run to completion of a fiber
 *                     that returns at once (stacks come from the pool)
 *
 * Usage: bench_fiber [rounds]  (env BENCH_FIBER_N; default 5000000). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "runtime/fiber.h"

static struct {
  bh__fiber *a, *b;
  size_t rounds, ran;
  bool done;
} S;

static void
fiber_a(void *arg) {
  size_t i;

  (void)arg;
  for (i = 0; i < S.rounds; i++) {
    bh__fiber_wake(S.b, 0);
    bh__fiber_suspend();
  }
  S.done = true;
  bh__fiber_wake(S.b, 0);
}

static void
fiber_b(void *arg) {
  (void)arg;
  while (!S.done) {
    S.ran++;
    bh__fiber_wake(S.a, 0);
    bh__fiber_suspend();
  }
}

static void
nothing(void *arg) {
  (void)arg;
  S.ran++;
}

static double
spawn_ns(size_t n) {
  int64_t t0 = bench_now_ns();
  size_t i;

  S.ran = 0;
  for (i = 0; i < n; i++) {
    bh__fiber *f = bh__fiber_new(nothing, NULL, 0);

    if (f == NULL)
      exit(2);
    bh__fiber_wake(f, 0);
    bh__sched_run();
  }
  if (S.ran != n)
    exit(2);
  return (double)(bench_now_ns() - t0) / (double)n;
}

int
main(int argc, char **argv) {
  int64_t t0;
  double per;

  S.rounds = (size_t)bench_arg(argc, argv, 1, "BENCH_FIBER_N", 5000000);
  S.a = bh__fiber_new(fiber_a, NULL, 0);
  S.b = bh__fiber_new(fiber_b, NULL, 0);
  if (S.a == NULL || S.b == NULL || S.rounds == 0)
    return 2;
  t0 = bench_now_ns();
  bh__fiber_wake(S.a, 0);
  bh__sched_run();
  per = (double)(bench_now_ns() - t0) / (2.0 * (double)S.rounds);
  if (S.ran != S.rounds || bh__fiber_live() != 0) {
    fprintf(stderr, "bench_fiber: %zu hand-overs of %zu, %zu fibers left\n",
            S.ran, S.rounds, bh__fiber_live());
    return 2;
  }
  bench_out("fiber_switch_ns", per, "ns");
  bench_out("fiber_jump_ns", per / 2, "ns");
  bench_out("fiber_spawn_ns", spawn_ns(S.rounds / 10 + 1), "ns");
  return 0;
}
