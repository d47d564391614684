/* fiber.c - fibers on Boost.Context's fcontext, a stack pool with guard
 * pages, and the ready queue. See fiber.h. */
#include "fiber.h"

#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "turn.h"

#if defined(__SANITIZE_ADDRESS__)
#define BH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BH_ASAN 1
#endif
#endif
#ifdef BH_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define BH_VALGRIND 1
#endif
#endif

/* Boost.Context's C ABI (libboost_context): we declare the three entry
 * points ourselves because Boost ships them in a C++ header only. */
typedef void *fcontext_t;
typedef struct {
  fcontext_t fctx;
  void *data;
} transfer_t;
extern transfer_t jump_fcontext(fcontext_t const to, void *vp);
extern fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

typedef struct stack {
  struct stack *next; /* pool link */
  char *map;          /* the mapping, guard region first */
  size_t map_size;
  unsigned vg_id;     /* valgrind's stack id */
} stack;

struct bh__fiber {
  fcontext_t ctx;     /* saved context while suspended */
  stack *stk;         /* NULL until its first run */
  bh__fiber_fn fn;
  bh__fiber_fn nostack; /* runs on main when no stack can be had */
  void *arg;
  bh__fiber *next;    /* ready-queue link */
  int status;         /* what the pending suspend returns */
  bool queued;
  bool done;
  void (*main_fn)(void *); /* a call to run on main, then resume */
  void *main_arg;
};

/* Free stacks are kept for reuse: always up to POOL_MIN, and beyond that
 * as many as bring the stacks in use and free back up to the most that
 * were in use at once in this window or the one before (PEAK_WINDOW_NS
 * each). A bee whose thousands of waiting tasks end and start again in
 * waves then reuses its stacks: unmapping the ones beyond a fixed pool
 * and mapping them again made every wave pay a munmap (a TLB flush on
 * every CPU the process ran on) and fresh page faults per task: ten
 * times slower with 4,096 tasks of 1 ms in flight than with 1,024. A peak
 * older than two windows is forgotten, and the stacks kept for it are
 * unmapped at the next stack that comes back. */
#define POOL_MIN 1024
#define PEAK_WINDOW_NS ((uint64_t)1000000000)

static _Thread_local struct {
  fcontext_t main_ctx;
  bh__fiber *cur;
  bh__fiber *head, *tail; /* ready queue */
  stack *pool;
  size_t pooled;         /* free stacks in the pool */
  size_t in_use;         /* stacks held by fibers */
  size_t peak, peak_prev; /* most in use in this window, the one before */
  uint64_t window_ns;    /* when this window began */
  size_t mapped;         /* stacks mapped so far (for tests) */
  size_t live;
  bool draining;
#ifdef BH_ASAN
  const void *main_bottom;
  size_t main_size;
#endif
} S;

static stack *
stack_map(void) {
  stack *s = bh__calloc(1, sizeof(*s));
  size_t page = BH__GUARD_SIZE;

  if (s == NULL)
    return NULL;
  s->map_size = BH__STACK_SIZE + page;
  s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
                0);
  if (s->map == MAP_FAILED || mprotect(s->map, page, PROT_NONE) != 0) {
    if (s->map != MAP_FAILED)
      munmap(s->map, s->map_size);
    bh__free(s);
    return NULL;
  }
#ifdef BH_VALGRIND
  s->vg_id = VALGRIND_STACK_REGISTER(s->map + page, s->map + s->map_size);
#endif
  S.mapped++;
  return s;
}

static void
stack_destroy(stack *s) {
#ifdef BH_VALGRIND
  VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
  munmap(s->map, s->map_size);
  bh__free(s);
}

static stack *
stack_get(void) {
  stack *s = S.pool;

  if (s != NULL) {
    S.pool = s->next;
    S.pooled--;
  } else if ((s = stack_map()) == NULL) {
    return NULL;
  }
  if (++S.in_use > S.peak)
    S.peak = S.in_use;
  return s;
}

static size_t
max_peak(void) {
  return S.peak > S.peak_prev ? S.peak : S.peak_prev;
}

/* Whether the pool may keep one more free stack. */
static bool
pool_has_room(void) {
  return S.pooled < POOL_MIN || S.pooled + S.in_use < max_peak();
}

/* Unmaps the free stacks the pool may no longer keep. */
static void
pool_trim(void) {
  while (S.pool != NULL && S.pooled > POOL_MIN &&
         S.pooled + S.in_use > max_peak()) {
    stack *s = S.pool;

    S.pool = s->next;
    S.pooled--;
    stack_destroy(s);
  }
}

void
bh__fiber_pool_roll(void) {
  S.peak_prev = S.peak;
  S.peak = S.in_use;
  pool_trim();
}

static uint64_t
mono_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Ends the window when its time has come. Two windows or more since the
 * last end forget both peaks. */
static void
pool_clock(void) {
  uint64_t now = mono_ns();

  if (S.window_ns == 0) {
    S.window_ns = now;
    return;
  }
  if (now - S.window_ns < PEAK_WINDOW_NS)
    return;
  if (now - S.window_ns >= 2 * PEAK_WINDOW_NS)
    bh__fiber_pool_roll();
  bh__fiber_pool_roll();
  S.window_ns = now;
}

static void
stack_put(stack *s) {
  S.in_use--;
  if (S.pooled >= POOL_MIN) /* below it nothing depends on the time */
    pool_clock();
  if (!pool_has_room()) {
    stack_destroy(s);
    return;
  }
  s->next = S.pool;
  S.pool = s;
  S.pooled++;
}

size_t
bh__fiber_stacks_mapped(void) {
  return S.mapped;
}

size_t
bh__fiber_stacks_pooled(void) {
  return S.pooled;
}

/* Sanitizer bookkeeping around each switch: ASan must know which stack is
 * live, or it reports false overflows and leaks fake frames. */
static void
asan_enter(void **fake, const bh__fiber *to) {
#ifdef BH_ASAN
  if (to == NULL)
    __sanitizer_start_switch_fiber(fake, S.main_bottom, S.main_size);
  else
    __sanitizer_start_switch_fiber(fake, to->stk->map,
                                   to->stk->map_size);
#else
  (void)fake;
  (void)to;
#endif
}

static void
asan_done(void *fake, bool from_main) {
#ifdef BH_ASAN
  if (from_main)
    __sanitizer_finish_switch_fiber(fake, &S.main_bottom, &S.main_size);
  else
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
  (void)fake;
  (void)from_main;
#endif
}

static void
entry(transfer_t t) {
  bh__fiber *f = t.data;

  S.main_ctx = t.fctx;
  asan_done(NULL, true);
  f->fn(f->arg);
  f->done = true;
  asan_enter(NULL, NULL); /* NULL fake-stack slot: this stack dies */
  jump_fcontext(S.main_ctx, NULL);
  BH_ASSERT(!"a finished fiber was resumed");
}

bh__fiber *
bh__fiber_new(bh__fiber_fn fn, void *arg) {
  bh__fiber *f = bh__calloc(1, sizeof(*f));

  if (f == NULL)
    return NULL;
  f->fn = fn;
  f->arg = arg;
  S.live++;
  return f;
}

void
bh__fiber_on_nostack(bh__fiber *f, bh__fiber_fn nostack) {
  f->nostack = nostack;
}

static void
fiber_free(bh__fiber *f) {
  if (f->stk != NULL)
    stack_put(f->stk);
  bh__free(f);
  S.live--;
}

/* The stack is taken at the first run, not at bh__fiber_new: a fiber that
 * finishes without suspending gives it back before the next one starts,
 * so a turn that starts thousands of short tasks maps no new stack (with
 * one stack each from the start, every one beyond the pool was mapped,
 * touched and unmapped again, each unmap a TLB flush: seven times slower
 * with no max_concurrency than at 1,024).
 * False when no stack can be had: nostack ran instead and f is gone. */
static bool
first_run(bh__fiber *f) {
  f->stk = stack_get();
  if (f->stk == NULL) {
    BH_ASSERT(f->nostack != NULL && "no memory for a fiber stack");
    f->nostack(f->arg);
    fiber_free(f);
    return false;
  }
  f->ctx = make_fcontext(f->stk->map + f->stk->map_size,
                         f->stk->map_size - BH__GUARD_SIZE, entry);
  return true;
}

/* Switches from main into f and back; frees f when it finished. */
static void
resume(bh__fiber *f) {
  void *fake = NULL;
  transfer_t t;

  if (f->stk == NULL && !first_run(f))
    return;
  S.cur = f;
  asan_enter(&fake, f);
  t = jump_fcontext(f->ctx, f);
  asan_done(fake, false);
  S.cur = NULL;
  if (f->done) {
    fiber_free(f);
    return;
  }
  f->ctx = t.fctx;
  if (f->main_fn != NULL) {
    void (*fn)(void *) = f->main_fn;

    f->main_fn = NULL;
    fn(f->main_arg);
    bh__fiber_wake(f, f->status);
  }
}

void
bh__sched_run(void) {
  if (S.cur != NULL || S.draining)
    return;
  S.draining = true;
  while (S.head != NULL) {
    bh__fiber *f = S.head;

    S.head = f->next;
    if (S.head == NULL)
      S.tail = NULL;
    f->next = NULL;
    f->queued = false;
    resume(f);
  }
  S.draining = false;
}

void
bh__fiber_wake(bh__fiber *f, int status) {
  if (f->queued)
    return;
  f->queued = true;
  f->status = status;
  if (S.tail != NULL)
    S.tail->next = f;
  else
    S.head = f;
  S.tail = f;
  bh__turn_pending();
}

bool
bh__sched_pending(void) {
  return S.head != NULL;
}

int
bh__fiber_suspend(void) {
  bh__fiber *f = S.cur;
  void *fake = NULL;
  transfer_t t;

  BH_ASSERT(f != NULL);
  asan_enter(&fake, NULL);
  t = jump_fcontext(S.main_ctx, NULL);
  asan_done(fake, true);
  S.main_ctx = t.fctx;
  return f->status;
}

bh__fiber *
bh__fiber_current(void) {
  return S.cur;
}

void
bh__fiber_call_main(void (*fn)(void *), void *arg) {
  bh__fiber *f = S.cur;

  if (f == NULL) {
    fn(arg);
    return;
  }
  f->main_fn = fn;
  f->main_arg = arg;
  f->status = 0;
  bh__fiber_suspend();
}

void
bh__sched_reset_after_fork(void) {
  /* The parent's fibers live on in this child's memory but will never run
   * here; their stacks are left mapped (copy-on-write, untouched). */
  while (S.pool != NULL) {
    stack *s = S.pool;

    S.pool = s->next;
    stack_destroy(s);
  }
  S.pooled = 0;
  S.in_use = S.peak = S.peak_prev = 0;
  S.window_ns = 0;
  S.cur = NULL;
  S.head = S.tail = NULL;
  S.live = 0;
  S.draining = false;
}

size_t
bh__fiber_live(void) {
  return S.live;
}
