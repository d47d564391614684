/* fiber.c - fibers on Boost.Context's fcontext, a stack pool with guard
 * pages, and the ready queue. See fiber.h. */
#include "fiber.h"

#include <sys/mman.h>
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
  stack *stk;
  bh__fiber_fn fn;
  void *arg;
  bh__fiber *next;    /* ready-queue link */
  int status;         /* what the pending suspend returns */
  bool queued;
  bool done;
  void (*main_fn)(void *); /* a call to run on main, then resume */
  void *main_arg;
};

#define POOL_MAX 1024

static _Thread_local struct {
  fcontext_t main_ctx;
  bh__fiber *cur;
  bh__fiber *head, *tail; /* ready queue */
  stack *pool;
  size_t pooled;
  size_t live;
  bool draining;
#ifdef BH_ASAN
  const void *main_bottom;
  size_t main_size;
#endif
} S;

static stack *
stack_get(void) {
  stack *s = S.pool;
  size_t page = BH__GUARD_SIZE;

  if (s != NULL) {
    S.pool = s->next;
    S.pooled--;
    return s;
  }
  s = bh__calloc(1, sizeof(*s));
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

static void
stack_put(stack *s) {
  if (S.pooled >= POOL_MAX) {
    stack_destroy(s);
    return;
  }
  s->next = S.pool;
  S.pool = s;
  S.pooled++;
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
  f->stk = stack_get();
  if (f->stk == NULL) {
    bh__free(f);
    return NULL;
  }
  f->fn = fn;
  f->arg = arg;
  f->ctx = make_fcontext(f->stk->map + f->stk->map_size,
                         f->stk->map_size - BH__GUARD_SIZE, entry);
  S.live++;
  return f;
}

/* Switches from main into f and back; frees f when it finished. */
static void
resume(bh__fiber *f) {
  void *fake = NULL;
  transfer_t t;

  S.cur = f;
  asan_enter(&fake, f);
  t = jump_fcontext(f->ctx, f);
  asan_done(fake, false);
  S.cur = NULL;
  if (f->done) {
    stack_put(f->stk);
    bh__free(f);
    S.live--;
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
  S.cur = NULL;
  S.head = S.tail = NULL;
  S.live = 0;
  S.draining = false;
}

size_t
bh__fiber_live(void) {
  return S.live;
}
