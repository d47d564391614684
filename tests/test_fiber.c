/* test_fiber.c - fibers and their scheduler: when fibers run, in which
 * order, what suspend returns, many fibers at once, the stack pool, calls
 * on the main stack, stack overflow, and a sanitizer workload. */
#include <alloca.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "runtime/fiber.h"
#include "base/base.h"
#include "runner.h"
#include "runtime/turn.h"

/* The address of this call's frame: on whichever stack the caller runs.
 * (A frame address, not a local's: under ASan locals may live elsewhere.) */
static __attribute__((noinline)) uintptr_t
frame_addr(void) {
  return (uintptr_t)__builtin_frame_address(0);
}

/* ------------------------------------------------------------------------
 * A fiber that logs each time it runs and suspends `rounds` times. */

typedef struct tracer {
  int id;
  int rounds;
  int runs;          /* how many times it was resumed (or started) */
  int got[8];        /* what each suspend returned */
  int *log;          /* shared: ids in the order they ran */
  int *nlog;
  bool done;
  bh__fiber *f;
} tracer;

static void
log_fn(void *arg) {
  tracer *l = arg;
  int i;

  for (i = 0; i <= l->rounds; i++) {
    l->runs++;
    if (l->log != NULL)
      l->log[(*l->nlog)++] = l->id;
    if (i < l->rounds)
      l->got[i] = bh__fiber_suspend();
  }
  l->done = true;
}

static bh__fiber *
start_log(tracer *l, int id, int rounds, int *log, int *nlog) {
  memset(l, 0, sizeof(*l));
  l->id = id;
  l->rounds = rounds;
  l->log = log;
  l->nlog = nlog;
  l->f = bh__fiber_new(log_fn, l, 0);
  return l->f;
}

TEST(runs_only_when_woken_and_drained) {
  tracer l;

  ASSERT(bh__fiber_current() == NULL);
  ASSERT(start_log(&l, 0, 1, NULL, NULL) != NULL);
  ASSERT_INT_EQ(bh__fiber_live(), 1);
  bh__sched_run();
  ASSERT_INT_EQ(l.runs, 0); /* created, never woken: does not run */
  ASSERT(!bh__sched_pending());
  bh__fiber_wake(l.f, 0);
  ASSERT(bh__sched_pending());
  ASSERT_INT_EQ(l.runs, 0); /* woken: queued, not run */
  bh__sched_run();
  ASSERT_INT_EQ(l.runs, 1); /* now suspended in its first round */
  ASSERT(!bh__sched_pending());
  bh__sched_run();
  bh__turn_run();
  ASSERT_INT_EQ(l.runs, 1); /* suspended and not woken: stays put */
  bh__fiber_wake(l.f, 5);
  ASSERT_INT_EQ(l.runs, 1);
  bh__turn_run(); /* the turn drains the queue too */
  ASSERT_INT_EQ(l.runs, 2);
  ASSERT(l.done);
  ASSERT_INT_EQ(l.got[0], 5);
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  return 0;
}

TEST(wake_order_is_fifo) {
  static const int order[] = {3, 0, 4, 1, 2};
  int log[32], nlog = 0, i;
  tracer l[5];

  for (i = 0; i < 5; i++)
    ASSERT(start_log(&l[i], i, 1, log, &nlog) != NULL);
  for (i = 4; i >= 0; i--) /* first runs, in reverse creation order */
    bh__fiber_wake(l[i].f, 0);
  bh__sched_run();
  ASSERT_INT_EQ(nlog, 5);
  for (i = 0; i < 5; i++)
    ASSERT_INT_EQ(log[i], 4 - i);
  nlog = 0;
  for (i = 0; i < 5; i++)
    bh__fiber_wake(l[order[i]].f, 100 + order[i]);
  bh__sched_run();
  ASSERT_INT_EQ(nlog, 5);
  for (i = 0; i < 5; i++) {
    ASSERT_INT_EQ(log[i], order[i]);
    ASSERT_INT_EQ(l[i].got[0], 100 + i);
    ASSERT(l[i].done);
  }
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  return 0;
}

/* A fiber that wakes `other` (queued behind whatever is already queued)
 * and then logs itself; checks wakes during a drain run in the same drain,
 * after the fibers queued before them. */
typedef struct waker {
  tracer *other;
  int *log, *nlog;
} waker;

static void
waker_fn(void *arg) {
  waker *w = arg;

  bh__fiber_wake(w->other->f, 77);
  bh__sched_run(); /* from inside a fiber: must do nothing */
  w->log[(*w->nlog)++] = 99;
}

TEST(wake_during_drain_runs_in_same_drain_in_order) {
  int log[16], nlog = 0;
  tracer a, b;
  waker w = {&b, log, &nlog};
  bh__fiber *wf;

  ASSERT(start_log(&a, 1, 0, log, &nlog) != NULL);
  ASSERT(start_log(&b, 2, 1, log, &nlog) != NULL);
  bh__fiber_wake(b.f, 0);
  bh__sched_run(); /* b suspends */
  nlog = 0;
  wf = bh__fiber_new(waker_fn, &w, 0);
  ASSERT(wf != NULL);
  bh__fiber_wake(wf, 0);
  bh__fiber_wake(a.f, 0);
  bh__sched_run();
  ASSERT(!bh__sched_pending());
  ASSERT_INT_EQ(nlog, 3);
  ASSERT_INT_EQ(log[0], 99); /* the waker, which queued b behind a */
  ASSERT_INT_EQ(log[1], 1);
  ASSERT_INT_EQ(log[2], 2);
  ASSERT_INT_EQ(b.got[0], 77);
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  return 0;
}

TEST(double_wake_is_ignored) {
  tracer l;

  ASSERT(start_log(&l, 0, 3, NULL, NULL) != NULL);
  bh__fiber_wake(l.f, 0);
  bh__fiber_wake(l.f, 0);
  bh__sched_run();
  ASSERT_INT_EQ(l.runs, 1); /* started once, not twice */
  bh__fiber_wake(l.f, 11);
  bh__fiber_wake(l.f, 22); /* ignored: the first status stands */
  bh__fiber_wake(l.f, 33);
  bh__sched_run();
  ASSERT_INT_EQ(l.runs, 2);
  ASSERT_INT_EQ(l.got[0], 11);
  ASSERT(!bh__sched_pending()); /* not queued a second time */
  bh__sched_run();
  ASSERT_INT_EQ(l.runs, 2);
  bh__fiber_wake(l.f, 44); /* once it ran, a new wake counts again */
  bh__sched_run();
  ASSERT_INT_EQ(l.runs, 3);
  ASSERT_INT_EQ(l.got[1], 44);
  bh__fiber_wake(l.f, 55);
  bh__sched_run();
  ASSERT(l.done);
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  return 0;
}

TEST(suspend_returns_the_wake_status) {
  static const int st[] = {0, -1, BH_ECANCELLED, 123456, -2147483647 - 1,
                           2147483647};
  tracer l;
  int i;

  ASSERT(start_log(&l, 0, 6, NULL, NULL) != NULL);
  bh__fiber_wake(l.f, 999); /* the first wake only starts it */
  bh__sched_run();
  for (i = 0; i < 6; i++) {
    bh__fiber_wake(l.f, st[i]);
    bh__sched_run();
    ASSERT_INT_EQ(l.got[i], st[i]);
  }
  ASSERT(l.done);
  return 0;
}

/* A fiber that wakes itself before suspending yields: it goes to the back
 * of the queue and its suspend returns the status it gave itself. */
static void
yield_fn(void *arg) {
  tracer *l = arg;

  l->log[(*l->nlog)++] = l->id;
  bh__fiber_wake(bh__fiber_current(), 40 + l->id);
  l->got[0] = bh__fiber_suspend();
  l->log[(*l->nlog)++] = l->id;
  l->done = true;
}

TEST(self_wake_yields_to_the_back_of_the_queue) {
  int log[8], nlog = 0, i;
  tracer l[2];

  for (i = 0; i < 2; i++) {
    memset(&l[i], 0, sizeof(l[i]));
    l[i].id = i;
    l[i].log = log;
    l[i].nlog = &nlog;
    l[i].f = bh__fiber_new(yield_fn, &l[i], 0);
    ASSERT(l[i].f != NULL);
    bh__fiber_wake(l[i].f, 0);
  }
  bh__sched_run();
  ASSERT_INT_EQ(nlog, 4);
  ASSERT(log[0] == 0 && log[1] == 1 && log[2] == 0 && log[3] == 1);
  ASSERT_INT_EQ(l[0].got[0], 40);
  ASSERT_INT_EQ(l[1].got[0], 41);
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  return 0;
}

/* ------------------------------------------------------------------------
 * Many fibers, the stack pool. */

#define MANY 10000

typedef struct many {
  int idx;
  int got;
  int state; /* 0 new, 1 suspended, 2 done */
} many;

static void
many_fn(void *arg) {
  many *m = arg;
  volatile char touch[512]; /* use a little of each stack */

  touch[0] = (char)m->idx;
  touch[sizeof(touch) - 1] = touch[0];
  m->state = 1;
  m->got = bh__fiber_suspend();
  m->state = touch[sizeof(touch) - 1] == (char)m->idx ? 2 : -1;
}

TEST(ten_thousand_fibers_alive_at_once) {
  static many m[MANY];
  bh__fiber *f[MANY];
  int i;

  for (i = 0; i < MANY; i++) {
    m[i].idx = i;
    f[i] = bh__fiber_new(many_fn, &m[i], 0);
    ASSERT(f[i] != NULL);
    bh__fiber_wake(f[i], 0);
  }
  ASSERT_INT_EQ(bh__fiber_live(), MANY);
  bh__sched_run();
  ASSERT_INT_EQ(bh__fiber_live(), MANY);
  for (i = 0; i < MANY; i++)
    ASSERT_INT_EQ(m[i].state, 1);
  for (i = MANY - 1; i >= 0; i--)
    bh__fiber_wake(f[i], i * 3);
  bh__sched_run();
  for (i = 0; i < MANY; i++) {
    ASSERT_INT_EQ(m[i].state, 2);
    ASSERT_INT_EQ(m[i].got, i * 3);
  }
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  ASSERT(!bh__sched_pending());
  return 0;
}

/* Each fiber reads a slot at a fixed depth of its stack, checks it holds
 * what the previous fiber left there, and leaves its own mark: that can
 * only hold if the previous fiber's stack memory was kept and handed on
 * (a fresh or re-mapped stack reads zero). The slot sits 2 KiB below the
 * frame's top, out of reach of the context switch's pushes. */
static struct {
  uintptr_t slot_addr;
  unsigned long expect;
  unsigned long mismatches;
  unsigned long moved;
} pool;

static __attribute__((noinline)) void
probe_stack(unsigned long mark) {
  volatile unsigned long slot[256];

  /* Read through the saved address: the slot is not yet written here. */
  if (pool.slot_addr != 0 && pool.slot_addr != (uintptr_t)&slot[0])
    pool.moved++;
  else if (pool.slot_addr != 0 &&
           *(volatile unsigned long *)pool.slot_addr != pool.expect)
    pool.mismatches++;
  pool.slot_addr = (uintptr_t)&slot[0];
  slot[0] = mark;
  pool.expect = mark;
}

static void
probe_fn(void *arg) {
  probe_stack((unsigned long)(uintptr_t)arg);
}

TEST(stacks_are_pooled_and_reused) {
  const unsigned long n = 100000;
  unsigned long i;

  for (i = 0; i < n; i++) {
    bh__fiber *f =
        bh__fiber_new(probe_fn, (void *)(uintptr_t)(0xbee0000 + i), 0);

    ASSERT(f != NULL);
    bh__fiber_wake(f, 0);
    bh__sched_run();
    ASSERT_INT_EQ(bh__fiber_live(), 0);
  }
  if (pool.moved || pool.mismatches)
    fprintf(stderr, "%lu of %lu fibers got another stack, %lu found the "
            "previous mark gone\n", pool.moved, n, pool.mismatches);
  ASSERT_INT_EQ(pool.moved, 0);
  ASSERT_INT_EQ(pool.mismatches, 0);
  ASSERT_INT_EQ(pool.expect, 0xbee0000 + n - 1);
  return 0;
}

/* A turn that starts thousands of fibers which all finish without
 * suspending (a worker with no max_concurrency handed a burst of short
 * tasks) needs one stack: each takes it at its first run and gives it
 * back before the next one starts. */
static void
returns_at_once(void *arg) {
  ++*(int *)arg;
}

TEST(short_fibers_made_in_one_turn_share_a_stack) {
  size_t mapped;
  int ran = 0, i;

  bh__sched_reset_after_fork(); /* an empty pool */
  mapped = bh__fiber_stacks_mapped();
  for (i = 0; i < 5000; i++) {
    bh__fiber *f = bh__fiber_new(returns_at_once, &ran, 0);

    ASSERT(f != NULL);
    bh__fiber_wake(f, 0);
  }
  ASSERT_INT_EQ(bh__fiber_stacks_mapped(), mapped); /* none yet */
  bh__sched_run();
  ASSERT_INT_EQ(ran, 5000);
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  ASSERT_INT_EQ(bh__fiber_stacks_mapped() - mapped, 1);
  return 0;
}

/* Makes n fibers of many_fn and runs them to their suspend. */
static int
wave_start(bh__fiber **f, many *m, int n) {
  int i;

  for (i = 0; i < n; i++) {
    m[i] = (many){.idx = i};
    f[i] = bh__fiber_new(many_fn, &m[i], 0);
    if (f[i] == NULL)
      return -1;
    bh__fiber_wake(f[i], 0);
  }
  bh__sched_run();
  return bh__fiber_live() == (size_t)n ? 0 : -1;
}

static int
wave_end(bh__fiber **f, int n) {
  int i;

  for (i = 0; i < n; i++)
    bh__fiber_wake(f[i], 0);
  bh__sched_run();
  return bh__fiber_live() == 0 ? 0 : -1;
}

/* Waves of 3,000 waiting fibers (a worker without a limit, its tasks all
 * waiting on the network) reuse the stacks of the wave before, beyond
 * the pool's floor of 1,024; once the peak is two windows old the pool
 * keeps only its floor. */
TEST(waves_beyond_the_pool_floor_reuse_their_stacks) {
  enum { WAVE = 3000, FLOOR = 1024 };
  static many m[WAVE];
  static bh__fiber *f[WAVE];
  size_t mapped;
  int i;

  bh__sched_reset_after_fork(); /* an empty pool */
  mapped = bh__fiber_stacks_mapped();
  ASSERT_INT_EQ(wave_start(f, m, WAVE), 0);
  ASSERT_INT_EQ(bh__fiber_stacks_mapped() - mapped, WAVE);
  mapped = bh__fiber_stacks_mapped();
  ASSERT_INT_EQ(wave_end(f, WAVE), 0);
  ASSERT_INT_EQ(bh__fiber_stacks_pooled(), WAVE);
  for (i = 0; i < 3; i++) {
    ASSERT_INT_EQ(wave_start(f, m, WAVE), 0);
    ASSERT_INT_EQ(bh__fiber_stacks_mapped(), mapped); /* none new */
    ASSERT_INT_EQ(wave_end(f, WAVE), 0);
  }
  bh__fiber_pool_roll(); /* the peak is the window before's: kept */
  ASSERT_INT_EQ(bh__fiber_stacks_pooled(), WAVE);
  bh__fiber_pool_roll(); /* forgotten */
  ASSERT_INT_EQ(bh__fiber_stacks_pooled(), FLOOR);
  return 0;
}

/* With no address space left for a stack at a fiber's first run, its
 * nostack hook runs on main instead of it, and the fiber is gone. In a
 * child process, whose address space is capped just above what it maps
 * now. */
static int nostack_ran, nostack_fn_ran;

static void
count_fn(void *arg) {
  (void)arg;
  nostack_fn_ran++;
}

static void
nostack_hook(void *arg) {
  nostack_ran += arg == &nostack_ran;
  if (bh__fiber_current() != NULL)
    nostack_ran = -100; /* must run on main */
}

static long
vm_size_bytes(void) {
  char line[256];
  long kib = -1;
  FILE *f = fopen("/proc/self/status", "r");

  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kib * 1024;
}

TEST(no_stack_at_the_first_run_calls_the_nostack_hook) {
  pid_t pid;
  int status;

#ifdef T_ASAN
  /* ASan's allocator dies rather than fail under an address space cap. */
  fprintf(stderr, "# under ASan the address space cannot be capped\n");
  return 0;
#endif
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    bh__fiber *f;
    struct rlimit rl;

    bh__sched_reset_after_fork(); /* no pooled stack to fall back on */
    f = bh__fiber_new(count_fn, &nostack_ran, 0);
    if (f == NULL)
      _exit(10);
    bh__fiber_on_nostack(f, nostack_hook);
    rl.rlim_cur = rl.rlim_max = (rlim_t)vm_size_bytes() + 64 * 1024;
    if (setrlimit(RLIMIT_AS, &rl) != 0)
      _exit(11);
    bh__fiber_wake(f, 0);
    bh__sched_run();
    _exit(nostack_ran == 1 && nostack_fn_ran == 0 &&
                  bh__fiber_live() == 0
              ? 0
              : 12);
  }
  ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT(WIFEXITED(status));
  ASSERT_INT_EQ(WEXITSTATUS(status), 0);
  return 0;
}

/* ------------------------------------------------------------------------
 * Stack sizes. */

typedef struct sized {
  size_t use;      /* bytes of stack to touch */
  uintptr_t frame; /* where its frame was */
  bool done;
} sized;

static __attribute__((noinline)) void
touch_stack(size_t n) {
  volatile char *p = alloca(n);
  size_t i;

  for (i = 0; i < n; i += 1024)
    p[i] = 1;
  p[n - 1] = 1;
}

static void
sized_fn(void *arg) {
  sized *z = arg;

  z->frame = frame_addr();
  if (z->use > 0)
    touch_stack(z->use);
  z->done = true;
}

static int
run_sized(sized *z, size_t stack) {
  bh__fiber *f = bh__fiber_new(sized_fn, z, stack);

  if (f == NULL)
    return -1;
  bh__fiber_wake(f, 0);
  bh__sched_run();
  return z->done ? 0 : -1;
}

/* A fiber gets the stack size it asks for (whole pages; 0: the default),
 * and a finished fiber's stack goes to the next fiber that asks for its
 * size, never to one that asks for another. */
TEST(stacks_are_sized_and_pooled_by_size) {
  sized a = {.use = 900 << 10}, b = {.use = 200 << 10}, c = {0}, d = {0};
  sized e = {.use = 90 << 10};

  ASSERT_INT_EQ(run_sized(&a, 1 << 20), 0);
  ASSERT_INT_EQ(run_sized(&b, 0), 0);
  ASSERT_INT_EQ(run_sized(&c, 1 << 20), 0);
  ASSERT_INT_EQ(run_sized(&d, 0), 0);
  ASSERT(a.frame != b.frame);
  ASSERT(c.frame == a.frame); /* the same stack, from the pool */
  ASSERT(d.frame == b.frame);
  ASSERT_INT_EQ(run_sized(&e, 100000), 0); /* not whole pages */
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  return 0;
}

/* What bh__fiber_overflowed says of faults at addresses around the running
 * fiber's stack, with and without a stack pointer below it. */
typedef struct verdicts {
  bool v[8];
  bh__overflow o;
  uintptr_t lo; /* the stack's lowest usable byte */
} verdicts;

static void
judge_fn(void *arg) {
  verdicts *j = arg;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t here = frame_addr();
  /* The fiber's first frames lie within a page of its stack's top. */
  uintptr_t lo = (here + page - 1) / page * page - BH__STACK_SIZE;
  uintptr_t far = lo - ((uintptr_t)200 << 10);
  bh__overflow o;

  j->lo = lo;
  j->v[0] = bh__fiber_overflowed(lo - 1, 0, &j->o);
  j->v[1] = bh__fiber_overflowed(lo - BH__GUARD_SIZE, 0, &o);
  j->v[2] = bh__fiber_overflowed(lo - BH__GUARD_SIZE - 1, 0, &o);
  j->v[3] = bh__fiber_overflowed(far, far + 8, &o);
  j->v[4] = bh__fiber_overflowed(far, here, &o);
  j->v[5] = bh__fiber_overflowed(16, far, &o);
  j->v[6] = bh__fiber_overflowed(lo + 100, 0, &o);
}

TEST(overflow_faults_are_told_from_others) {
  verdicts j = {0};
  bh__overflow o;
  bh__fiber *f = bh__fiber_new(judge_fn, &j, 0);

  ASSERT(f != NULL);
  bh__fiber_label(f, "deep", "Deep");
  bh__fiber_wake(f, 0);
  bh__sched_run();
  ASSERT(j.v[0]);  /* the guard's top byte */
  ASSERT(j.v[1]);  /* its lowest */
  ASSERT(!j.v[2]); /* below the guard, stack pointer unknown */
  ASSERT(j.v[3]);  /* past the guard, stack pointer gone past it too */
  ASSERT(!j.v[4]); /* past it, stack pointer in the stack: a stray pointer */
  ASSERT(!j.v[5]); /* near NULL, whatever the stack pointer */
  ASSERT(!j.v[6]); /* in the stack */
  ASSERT_STR_EQ(j.o.task, "deep");
  ASSERT_STR_EQ(j.o.cls, "Deep");
  ASSERT_INT_EQ(j.o.stack, BH__STACK_SIZE);
  /* On main no fiber runs: nothing is a fiber's overflow. */
  ASSERT(!bh__fiber_overflowed(j.lo - 1, 0, &o));
  return 0;
}

/* ------------------------------------------------------------------------
 * bh__fiber_call_main. */

typedef struct cm {
  uintptr_t main_frame;    /* the test, on the main stack */
  uintptr_t fiber_frame;   /* the fiber before the call */
  uintptr_t called_frame;  /* the function given to call_main */
  bh__fiber *cur_in_call;  /* bh__fiber_current() inside it */
  bh__fiber *cur_after;    /* and in the fiber after the call */
  bh__fiber *self;
  int calls;
  int after;
  int got;                 /* a later suspend's status */
} cm;

static void
on_main(void *arg) {
  cm *c = arg;

  c->calls++;
  c->called_frame = frame_addr();
  c->cur_in_call = bh__fiber_current();
}

static void
call_main_fn(void *arg) {
  cm *c = arg;

  c->self = bh__fiber_current();
  c->fiber_frame = frame_addr();
  bh__fiber_call_main(on_main, c);
  c->after++;
  c->cur_after = bh__fiber_current();
  c->got = bh__fiber_suspend();
}

static uintptr_t
dist(uintptr_t a, uintptr_t b) {
  return a > b ? a - b : b - a;
}

TEST(call_main_runs_on_the_main_stack) {
  cm c = {0};
  bh__fiber *f = bh__fiber_new(call_main_fn, &c, 0);
  uintptr_t span = BH__STACK_SIZE + (uintptr_t)sysconf(_SC_PAGESIZE);

  ASSERT(f != NULL);
  c.main_frame = frame_addr();
  bh__fiber_wake(f, 0);
  bh__sched_run();
  ASSERT_INT_EQ(c.calls, 1);
  ASSERT_INT_EQ(c.after, 1); /* resumed in the same drain */
  ASSERT(c.self == f);
  ASSERT(c.cur_in_call == NULL);
  ASSERT(c.cur_after == f);
  /* Not on the fiber's stack: farther from the fiber's frame than a whole
   * fiber stack spans; and on main's, a little below the test's frame. */
  ASSERT(dist(c.called_frame, c.fiber_frame) > span);
  ASSERT(c.called_frame < c.main_frame);
  ASSERT(c.main_frame - c.called_frame < ((uintptr_t)64 << 10));
  ASSERT(dist(c.fiber_frame, c.main_frame) > span);
  ASSERT(bh__fiber_live() == 1 && !bh__sched_pending());
  bh__fiber_wake(f, 8); /* the call left wake/suspend working */
  bh__sched_run();
  ASSERT_INT_EQ(c.got, 8);
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  return 0;
}

TEST(call_main_from_main_calls_directly) {
  cm c = {0};

  bh__fiber_call_main(on_main, &c);
  ASSERT_INT_EQ(c.calls, 1);
  ASSERT(c.cur_in_call == NULL);
  ASSERT(!bh__sched_pending());
  return 0;
}

/* ------------------------------------------------------------------------
 * Callbacks of a libuv loop wake fibers; the turn hook runs them. */

typedef struct loopcase {
  tracer l;
  int ran_in_cb;
  uv_timer_t timer;
  uv_async_t async;
} loopcase;

static void
timer_cb(uv_timer_t *t) {
  loopcase *lc = t->data;

  bh__fiber_wake(lc->l.f, 17);
  lc->ran_in_cb = lc->l.runs; /* the wake only queued it */
}

TEST(callbacks_wake_and_the_turn_runs) {
  uv_loop_t loop;
  loopcase lc;

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT_INT_EQ(bh__turn_init(&loop), 0);
  memset(&lc, 0, sizeof(lc));
  ASSERT(start_log(&lc.l, 0, 1, NULL, NULL) != NULL);
  bh__fiber_wake(lc.l.f, 0);
  bh__turn_run();
  ASSERT_INT_EQ(lc.l.runs, 1);
  uv_timer_init(&loop, &lc.timer);
  lc.timer.data = &lc;
  uv_timer_start(&lc.timer, timer_cb, 1, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(lc.ran_in_cb, 1);
  ASSERT(lc.l.done);
  ASSERT_INT_EQ(lc.l.got[0], 17);
  uv_close((uv_handle_t *)&lc.timer, NULL);
  bh__turn_close();
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(bh__fiber_live(), 0);
  return 0;
}

static void
async_cb(uv_async_t *a) {
  loopcase *lc = a->data;

  bh__fiber_wake(lc->l.f, 21);
  lc->ran_in_cb = lc->l.runs;
  uv_close((uv_handle_t *)a, NULL); /* the last handle keeping the loop */
}

/* An I/O callback that wakes a fiber and lets go of the last handle: the
 * fiber must still run before uv_run() returns, or it is stranded (the
 * turn hook does not keep the loop alive). */
TEST(fiber_woken_by_the_last_callback_runs) {
  uv_loop_t loop;
  loopcase lc;
  bool done;

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT_INT_EQ(bh__turn_init(&loop), 0);
  memset(&lc, 0, sizeof(lc));
  ASSERT(start_log(&lc.l, 0, 1, NULL, NULL) != NULL);
  bh__fiber_wake(lc.l.f, 0);
  bh__turn_run();
  ASSERT_INT_EQ(uv_async_init(&loop, &lc.async, async_cb), 0);
  lc.async.data = &lc;
  uv_async_send(&lc.async);
  uv_run(&loop, UV_RUN_DEFAULT);
  done = lc.l.done;
  if (!done) {
    fprintf(stderr, "uv_run returned with the woken fiber still queued "
            "(bh__sched_pending() = %d)\n", (int)bh__sched_pending());
    bh__sched_run(); /* let it finish, so that only the assertion fails */
  }
  bh__turn_close();
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(lc.ran_in_cb, 1);
  ASSERT(done);
  ASSERT_INT_EQ(lc.l.got[0], 21);
  return 0;
}

/* ------------------------------------------------------------------------
 * Stack overflow. A child process overflows a fiber's stack; it must die
 * (SIGSEGV; under ASan, its report) instead of running on over other
 * memory. */

static volatile size_t depth_limit = SIZE_MAX;

/* Touches every byte of a 1 KiB frame at each level. */
static __attribute__((noinline)) size_t
recurse_small(size_t depth) {
  volatile unsigned char buf[1024];
  size_t i;

  for (i = 0; i < sizeof(buf); i++)
    buf[i] = (unsigned char)depth;
  if (depth >= depth_limit)
    return buf[0];
  return recurse_small(depth + 1) + buf[depth % sizeof(buf)];
}

#define BIG_FRAME ((size_t)32 << 10)

/* Like user code built without -fstack-clash-protection (the project's
 * own flags turn it on): no probe of each page of a big frame. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_CLASH_PROBES __attribute__((optimize("no-stack-clash-protection")))
#else
#define NO_CLASH_PROBES
#endif

/* A 32 KiB buffer of which only the first 256 bytes are used, the common
 * `char buf[BIG]; snprintf(buf, ...)` shape: the untouched rest lets the
 * next frame's writes land far below this one. */
static __attribute__((noinline)) NO_CLASH_PROBES size_t
recurse_big(size_t depth) {
  volatile unsigned char buf[BIG_FRAME];
  size_t i;

  for (i = 0; i < 256; i++)
    buf[i] = (unsigned char)depth;
  if (depth >= depth_limit)
    return buf[0];
  return recurse_big(depth + 1) + buf[depth % 256];
}

typedef struct overflow {
  size_t pad;           /* bytes to shift the first frame by */
  int big;
  volatile unsigned char *canary; /* the neighbour fiber's, 4 KiB */
} overflow;

static void
overflow_fn(void *arg) {
  overflow *o = arg;
  volatile char *pad = alloca(o->pad + 1);

  pad[0] = 1;
  if (o->big)
    recurse_big(0);
  else
    recurse_small(0);
}

#define CANARY 0x5a

static void
neighbour_fn(void *arg) {
  overflow *o = arg;
  volatile unsigned char canary[4096];
  size_t i;

  for (i = 0; i < sizeof(canary); i++)
    canary[i] = CANARY;
  o->canary = canary;
  bh__fiber_suspend();
  _exit(6); /* never resumed */
}

/* In the child: a fiber whose stack is mapped right below the overflowing
 * one's guard, so that an overflow that skips the guard finds memory. */
static void __attribute__((noreturn))
overflow_child(overflow *o) {
  bh__fiber *f = bh__fiber_new(overflow_fn, o, 0);
  bh__fiber *nb = bh__fiber_new(neighbour_fn, o, 0);

  if (f == NULL || nb == NULL)
    _exit(4);
  /* Deep enough to go past the stack, not past the neighbour's too. */
  depth_limit = (BH__STACK_SIZE + BH__STACK_SIZE / 2) /
                (o->big ? BIG_FRAME : 1024);
  bh__fiber_wake(nb, 0);
  bh__sched_run();
  bh__fiber_wake(f, 0);
  bh__sched_run();
  /* Still alive: look at the neighbour's canary from here, without
   * resuming it (its saved context may be gone too). */
  for (size_t i = 0; i < 4096; i++)
    if (o->canary[i] != CANARY)
      _exit(2); /* the overflow wrote over the neighbour's stack */
  _exit(3);   /* the overflow went unnoticed */
}

/* Runs overflow_child in a child process; returns 1 if it died as a stack
 * overflow should. */
static int
dies_of_overflow(overflow *o) {
  char msg[4096] = {0}, sink[4096];
  int fds[2], status;
  ssize_t n, got = 0;
  pid_t pid;

  if (pipe(fds) != 0 || (pid = fork()) < 0)
    return 0;
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    overflow_child(o);
  }
  close(fds[1]);
  /* Read to the end (keeping the start), or a long report dies of EPIPE. */
  while ((n = read(fds[0], got < 4095 ? msg + got : sink,
                   got < 4095 ? 4095 - (size_t)got : sizeof(sink))) > 0)
    got += got < 4095 ? n : 0;
  close(fds[0]);
  if (waitpid(pid, &status, 0) != pid)
    return 0;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV)
    return 1;
#ifdef T_ASAN
  /* ASan catches the fault on its own signal stack, reports, and exits
   * (or aborts, with abort_on_error=1 as make test sets it). */
  if (((WIFEXITED(status) && WEXITSTATUS(status) == 1) ||
       (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)) &&
      strstr(msg, "AddressSanitizer: stack-overflow") != NULL)
    return 1;
#endif
  fprintf(stderr, "pad %zu: child %s %d%s\n%s", o->pad,
          WIFSIGNALED(status) ? "died of signal" : "exited with",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
          !WIFEXITED(status) ? ""
          : WEXITSTATUS(status) == 2 ? " (it overwrote the neighbour fiber's "
                                       "stack)"
          : WEXITSTATUS(status) == 3 ? " (the overflow went unnoticed)"
                                     : "",
          msg);
  return 0;
}

TEST(stack_overflow_kills_with_sigsegv) {
  overflow o = {0};

  ASSERT(dies_of_overflow(&o));
  return 0;
}

/* Frames bigger than a page: whatever the alignment, the overflow must hit
 * the guard rather than step over it into the stack mapped below. */
TEST(stack_overflow_with_big_frames_does_not_skip_the_guard) {
  overflow o = {0};
  int bad = 0;

  o.big = 1;
  for (o.pad = 0; o.pad < BIG_FRAME; o.pad += 4096)
    bad += !dies_of_overflow(&o);
  ASSERT_INT_EQ(bad, 0);
  return 0;
}

/* ------------------------------------------------------------------------
 * A workload for the sanitizers: heap blocks made, handed between fibers
 * and freed across suspends; stack arrays of many sizes on reused stacks;
 * calls on main. Any false report fails the case. */

#define WORKERS 64
#define ROUNDS 40

typedef struct work {
  int id;
  char *held;         /* the block of the previous round */
  char **inbox;       /* a block the previous fiber handed to this one */
  char **outbox;      /* the next fiber's inbox */
  unsigned long sum;
} work;

static __attribute__((noinline)) unsigned long
stack_user(size_t n, int depth) {
  volatile unsigned char *a = alloca(n + 1);
  unsigned long s = 0;
  size_t i;

  for (i = 0; i <= n; i++)
    a[i] = (unsigned char)(i + (size_t)depth);
  if (depth > 0)
    s = stack_user((n * 7 + 13) % 3000, depth - 1);
  for (i = 0; i <= n; i += 97)
    s += a[i] + 1u;
  return s;
}

static void
note_main(void *arg) {
  char *p = bh__asprintf("on main for %d", *(int *)arg);

  bh__free(p);
}

/* One round: make a block, suspend, check it; free what the previous
 * fiber handed over; sometimes hand the held block to the next fiber. */
static int
work_round(work *w, int r) {
  size_t i, len = (size_t)(w->id * 31 + r * 17) % 5000 + 1;
  char *mine = bh__malloc(len);

  if (mine == NULL)
    return -1;
  memset(mine, w->id + r, len);
  w->sum += stack_user(len % 2048, r % 6);
  if (bh__fiber_suspend() != r)
    return -1;
  for (i = 0; i < len; i++)
    if (mine[i] != (char)(w->id + r))
      return -1;
  if (*w->inbox != NULL) {
    bh__free(*w->inbox);
    *w->inbox = NULL;
  }
  bh__free(w->held);
  w->held = mine;
  if (r % 5 == 0)
    bh__fiber_call_main(note_main, &w->id);
  if (r % 3 == 0 && *w->outbox == NULL) {
    *w->outbox = w->held;
    w->held = NULL;
  }
  return 0;
}

static void
work_fn(void *arg) {
  work *w = arg;
  int r;

  for (r = 0; r < ROUNDS; r++)
    if (work_round(w, r) != 0) {
      w->sum = 0;
      break;
    }
  bh__free(w->held);
  w->held = NULL;
}

TEST(sanitizer_workload) {
  size_t live0 = 0;
  work w[WORKERS];
  char *mail[WORKERS] = {0};
  bh__fiber *f[WORKERS];
  int pass, r, i;

  for (pass = 0; pass < 2; pass++) { /* the second reuses pooled stacks */
    for (i = 0; i < WORKERS; i++) {
      w[i] = (work){.id = i, .inbox = &mail[i],
                    .outbox = &mail[(i + 1) % WORKERS]};
      f[i] = bh__fiber_new(work_fn, &w[i], 0);
      ASSERT(f[i] != NULL);
      bh__fiber_wake(f[i], 0);
    }
    bh__sched_run();
    for (r = 0; r < ROUNDS; r++) {
      for (i = 0; i < WORKERS; i++) /* a different order every round */
        bh__fiber_wake(f[(i * 7 + r * 13) % WORKERS], r);
      bh__sched_run();
    }
    ASSERT_INT_EQ(bh__fiber_live(), 0);
    for (i = 0; i < WORKERS; i++) {
      ASSERT(w[i].sum != 0);
      bh__free(mail[i]);
      mail[i] = NULL;
    }
    if (pass == 0) /* the pool now holds the stacks (and their records) */
      live0 = bh__alloc_live();
  }
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(runs_only_when_woken_and_drained),
          TEST_ENTRY(wake_order_is_fifo),
          TEST_ENTRY(wake_during_drain_runs_in_same_drain_in_order),
          TEST_ENTRY(double_wake_is_ignored),
          TEST_ENTRY(suspend_returns_the_wake_status),
          TEST_ENTRY(self_wake_yields_to_the_back_of_the_queue),
          TEST_ENTRY_T(ten_thousand_fibers_alive_at_once, 30),
          TEST_ENTRY_T(stacks_are_pooled_and_reused, 30),
          TEST_ENTRY(stacks_are_sized_and_pooled_by_size),
          TEST_ENTRY(overflow_faults_are_told_from_others),
          TEST_ENTRY(short_fibers_made_in_one_turn_share_a_stack),
          TEST_ENTRY_T(waves_beyond_the_pool_floor_reuse_their_stacks, 30),
          TEST_ENTRY(no_stack_at_the_first_run_calls_the_nostack_hook),
          TEST_ENTRY(call_main_runs_on_the_main_stack),
          TEST_ENTRY(call_main_from_main_calls_directly),
          TEST_ENTRY(callbacks_wake_and_the_turn_runs),
          TEST_ENTRY(fiber_woken_by_the_last_callback_runs),
          TEST_ENTRY(stack_overflow_kills_with_sigsegv),
          TEST_ENTRY_T(stack_overflow_with_big_frames_does_not_skip_the_guard,
                       30),
          TEST_ENTRY_T(sanitizer_workload, 30))
