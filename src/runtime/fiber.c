/* fiber.c - fibers on Boost.Context's fcontext, a stack pool with guard
 * pages, and the ready queue. See fiber.h. */
#include "runtime/fiber.h"

#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "runtime/turn.h"

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
  stack *stk;
  bh__fiber_fn fn;
  void *arg;
  bh__fiber *next;    /* ready-queue link */
  int status;         /* what the pending suspend returns */
  bool queued;
  bool done;
  void (*main_fn)(void *); /* a call to run on main, then resume */
  void *main_arg;
  bool main_next;          /* ...before any other fiber (call_main_next) */
  const char *task, *cls;  /* bh__fiber_label's, for an overflow report */
  size_t size;             /* its stack's usable size, taken at first run */
  bh__fiber_fn nostack;    /* runs on main when no stack can be had */
};

/* Finished fibers' stacks are kept for the next ones, one list per size:
 * a process runs the fibers of one class or two (a worker's; the queen's
 * and the root's), so a few lists cover it, and a size beyond them is not
 * pooled. The pools keep up to POOL_MIN free stacks always, and beyond
 * that as many as bring the stacks in use and free back up to the most
 * that were in use at once in this window or the one before
 * (PEAK_WINDOW_NS each). A bee whose thousands of waiting tasks end and
 * start again in waves then reuses its stacks: unmapping the ones beyond
 * a fixed pool and mapping them again made every wave pay a munmap (a TLB
 * flush on every CPU the process ran on) and fresh page faults per task.
 * A peak older than two windows is forgotten, and the stacks kept for it
 * are unmapped at the next stack that comes back. A pooled stack keeps
 * the pages its task touched. */
#define POOL_MIN 1024
#define PEAK_WINDOW_NS ((uint64_t)1000000000)
#define POOL_SIZES 4

typedef struct pool {
  size_t size;        /* usable size of its stacks; free while n is 0 */
  stack *head;
  size_t n;
} pool;

static _Thread_local struct {
  fcontext_t main_ctx;
  bh__fiber *head, *tail; /* ready queue */
  pool pools[POOL_SIZES];
  size_t pooled;          /* free stacks in the pools */
  size_t in_use;          /* stacks held by fibers */
  size_t peak, peak_prev; /* most in use in this window, the one before */
  uint64_t window_ns;     /* when this window began */
  size_t mapped;          /* stacks mapped so far (for tests) */
  size_t live;
  uint64_t resumes;       /* switches into a fiber so far */
  bool draining;
#ifdef BH_ASAN
  const void *main_bottom;
  size_t main_size;
#endif
} S;

/* The running fiber. Initial-exec, so that the SIGSEGV handler can read it
 * (bh__fiber_overflowed): the first access to a dynamic TLS block may
 * allocate, which no signal handler may do. */
static _Thread_local bh__fiber *cur __attribute__((tls_model("initial-exec")));

static size_t
stack_size(const stack *s) {
  return s->map_size - BH__GUARD_SIZE;
}

/* The pool of stacks of `size`; with `claim`, a free one takes that size
 * if none has it. NULL if none. */
static pool *
pool_of(size_t size, bool claim) {
  pool *empty = NULL;
  size_t i;

  for (i = 0; i < POOL_SIZES; i++) {
    if (S.pools[i].n > 0 && S.pools[i].size == size)
      return &S.pools[i];
    if (S.pools[i].n == 0 && empty == NULL)
      empty = &S.pools[i];
  }
  if (!claim || empty == NULL)
    return NULL;
  empty->size = size;
  return empty;
}

static stack *
stack_map(size_t size) {
  stack *s = bh__calloc(1, sizeof(*s));

  if (s == NULL)
    return NULL;
  s->map_size = size + BH__GUARD_SIZE;
  s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
                0);
  if (s->map == MAP_FAILED ||
      mprotect(s->map, BH__GUARD_SIZE, PROT_NONE) != 0) {
    if (s->map != MAP_FAILED)
      munmap(s->map, s->map_size);
    bh__free(s);
    return NULL;
  }
#ifdef BH_VALGRIND
  s->vg_id = VALGRIND_STACK_REGISTER(s->map + BH__GUARD_SIZE,
                                     s->map + s->map_size);
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
pool_take(pool *p) {
  stack *s = p->head;

  p->head = s->next;
  p->n--;
  S.pooled--;
  return s;
}

static stack *
stack_get(size_t size) {
  pool *p = pool_of(size, false);
  stack *s = p != NULL ? pool_take(p) : stack_map(size);

  if (s != NULL && ++S.in_use > S.peak)
    S.peak = S.in_use;
  return s;
}

static size_t
max_peak(void) {
  return S.peak > S.peak_prev ? S.peak : S.peak_prev;
}

/* Whether the pools may keep one more free stack. */
static bool
pool_has_room(void) {
  return S.pooled < POOL_MIN || S.pooled + S.in_use < max_peak();
}

/* Unmaps the free stacks the pools may no longer keep. */
static void
pool_trim(void) {
  size_t i;

  for (i = 0; i < POOL_SIZES; i++)
    while (S.pools[i].n > 0 && S.pooled > POOL_MIN &&
           S.pooled + S.in_use > max_peak())
      stack_destroy(pool_take(&S.pools[i]));
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
  pool *p;

  S.in_use--;
  if (S.pooled >= POOL_MIN) /* below it nothing depends on the time */
    pool_clock();
  if (!pool_has_room() || (p = pool_of(stack_size(s), true)) == NULL) {
    stack_destroy(s);
    return;
  }
  s->next = p->head;
  p->head = s;
  p->n++;
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

/* A usable size: 0 is the default, and a stack is whole pages. */
static size_t
size_norm(size_t size) {
  static size_t page;

  if (page == 0)
    page = (size_t)sysconf(_SC_PAGESIZE);
  if (size == 0)
    return BH__STACK_SIZE;
  return (size + page - 1) / page * page;
}

bh__fiber *
bh__fiber_new(bh__fiber_fn fn, void *arg, size_t size) {
  bh__fiber *f = bh__calloc(1, sizeof(*f));

  if (f == NULL)
    return NULL;
  f->size = size_norm(size);
  f->fn = fn;
  f->arg = arg;
  S.live++;
  return f;
}

void
bh__fiber_on_nostack(bh__fiber *f, bh__fiber_fn nostack) {
  f->nostack = nostack;
}

void
bh__fiber_label(bh__fiber *f, const char *task, const char *cls) {
  f->task = task;
  f->cls = cls;
}

/* A frame may access this far below the stack pointer: x86-64's red zone,
 * a call's push, a stack-clash probe. */
#define BELOW_SP ((uintptr_t)64 << 10)

bool
bh__fiber_overflowed(uintptr_t addr, uintptr_t sp, bh__overflow *out) {
  const bh__fiber *f = cur;
  uintptr_t guard, lo;

  if (f == NULL || f->stk == NULL)
    return false;
  guard = (uintptr_t)f->stk->map;
  lo = guard + BH__GUARD_SIZE;
  if ((addr < guard || addr >= lo) &&
      !(sp != 0 && sp < lo && lo - sp <= BH__STACK_MAX &&
        addr < lo && addr + BELOW_SP >= sp))
    return false;
  out->task = f->task;
  out->cls = f->cls;
  out->stack = stack_size(f->stk);
  return true;
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
  f->stk = stack_get(f->size);
  if (f->stk == NULL) {
    BH_ASSERT(f->nostack != NULL && "no memory for a fiber stack");
    f->nostack(f->arg);
    fiber_free(f);
    return false;
  }
  f->ctx = make_fcontext(f->stk->map + f->stk->map_size,
                         stack_size(f->stk), entry);
  return true;
}

/* Switches from main into f and back; frees f when it finished. */
static void
resume(bh__fiber *f) {
  void *fake = NULL;
  transfer_t t;

  if (f->stk == NULL && !first_run(f))
    return;
  S.resumes++;
  cur = f;
  asan_enter(&fake, f);
  t = jump_fcontext(f->ctx, f);
  asan_done(fake, false);
  cur = NULL;
  if (f->done) {
    fiber_free(f);
    return;
  }
  f->ctx = t.fctx;
  if (f->main_fn != NULL) {
    void (*fn)(void *) = f->main_fn;

    f->main_fn = NULL;
    fn(f->main_arg);
    if (f->main_next && !f->queued) { /* at the head of the queue */
      f->queued = true;
      f->next = S.head;
      S.head = f;
      if (S.tail == NULL)
        S.tail = f;
      bh__turn_pending();
    } else {
      bh__fiber_wake(f, f->status);
    }
    f->main_next = false;
  }
}

void
bh__sched_run(void) {
  if (cur != NULL || S.draining)
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

uint64_t
bh__sched_resumes(void) {
  return S.resumes;
}

bool
bh__sched_pending(void) {
  return S.head != NULL;
}

int
bh__fiber_suspend(void) {
  bh__fiber *f = cur;
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
  return cur;
}

void
bh__fiber_call_main(void (*fn)(void *), void *arg) {
  bh__fiber *f = cur;

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
bh__fiber_call_main_next(void (*fn)(void *), void *arg) {
  if (cur != NULL)
    cur->main_next = true;
  bh__fiber_call_main(fn, arg);
}

void
bh__sched_reset_after_fork(void) {
  /* The parent's fibers live on in this child's memory but will never run
   * here; their stacks are left mapped (copy-on-write, untouched). */
  size_t i;

  for (i = 0; i < POOL_SIZES; i++) {
    pool *p = &S.pools[i];

    while (p->head != NULL) {
      stack *s = p->head;

      p->head = s->next;
      stack_destroy(s);
    }
    p->n = 0;
  }
  S.pooled = 0;
  S.in_use = S.peak = S.peak_prev = 0;
  S.window_ns = 0;
  cur = NULL;
  S.head = S.tail = NULL;
  S.live = 0;
  S.draining = false;
}

size_t
bh__fiber_live(void) {
  return S.live;
}
