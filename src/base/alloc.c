/* alloc.c - every allocation of the library goes through these functions,
 * which call the hooks set with bh_set_allocator() (libc by default).
 *
 * A request for 0 bytes is served as a request for 1 byte, so that NULL
 * always means "out of memory" whatever the hooks do with size 0.
 *
 * A live-allocation counter (bh__alloc_live) lets tests check that every
 * allocation was freed. It is atomic because separate hives may run on
 * separate threads.
 *
 * Large blocks (frames, payloads, packed arguments: 32 KiB to 1 MiB) are
 * kept in a small per-thread cache when freed and handed out again, with
 * libc's allocator only (not with bh_set_allocator hooks, whose block
 * sizes we cannot know, nor under AddressSanitizer, which must see every
 * free). Without it, glibc gives the top of the heap back to the kernel and
 * takes it again at the pace of the messages: a 64 KiB echo took about 4
 * page faults and a brk() each way. Only bh__free_large() offers a block
 * to the cache (the places that free buffers know their size, and asking
 * libc for every block's size cost 40 instructions per free). A hive's
 * teardown empties its thread's cache (bh__alloc_trim), and so does the
 * thread's exit. Build with -DBH_NO_BLOCK_CACHE to turn it off (valgrind
 * then sees every free). */
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"

#if defined(__SANITIZE_ADDRESS__) || defined(BH_NO_BLOCK_CACHE)
#define CACHE_ON 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHE_ON 0
#endif
#endif
#ifndef CACHE_ON
#define CACHE_ON 1
#endif

#define CACHE_MIN ((size_t)32 << 10)  /* smallest block cached */
#define CACHE_MAX ((size_t)1 << 20)   /* largest block cached */
#define CACHE_SLOTS 64
#define CACHE_BYTES ((size_t)8 << 20) /* per thread */

static bh_allocator hooks = {malloc, realloc, free};
static int hooks_are_libc = 1;
static atomic_size_t live;

void
bh_set_allocator(const bh_allocator *a) {
  bh__alloc_trim(); /* libc's blocks, whatever comes next */
  if (a == NULL) {
    hooks = (bh_allocator){malloc, realloc, free};
    hooks_are_libc = 1;
    return;
  }
  /* A half-set allocator would pair one allocator's malloc with another's
   * free: that is a caller bug, not a runtime condition. */
  BH_ASSERT(a->malloc != NULL && a->realloc != NULL && a->free != NULL);
  hooks = *a;
  hooks_are_libc = 0;
}

size_t
bh__alloc_live(void) {
  return atomic_load_explicit(&live, memory_order_relaxed);
}

static void *
counted(void *p) {
  if (p != NULL)
    atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
  return p;
}

/* ------------------------------------------------------------------------
 * The per-thread cache of large blocks. */

typedef struct cache {
  void *v[CACHE_SLOTS];
  size_t size[CACHE_SLOTS]; /* their usable sizes */
  size_t n, bytes;
} cache;

static _Thread_local cache tc;
static _Thread_local bool tc_keyed;
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

static void
cache_empty(cache *c) {
  while (c->n > 0)
    free(c->v[--c->n]);
  c->bytes = 0;
}

static void
thread_gone(void *c) {
  cache_empty(c);
}

static void
key_make(void) {
  if (pthread_key_create(&tc_key, thread_gone) != 0)
    tc_key = (pthread_key_t)-1;
}

/* Keeps p (from libc) for reuse; false if it does not fit. */
static bool
cache_put(void *p) {
  size_t n = malloc_usable_size(p);

  if (!CACHE_ON || n < CACHE_MIN || n > CACHE_MAX || tc.n == CACHE_SLOTS ||
      tc.bytes + n > CACHE_BYTES)
    return false;
  if (!tc_keyed) { /* so that the thread's exit empties it */
    pthread_once(&tc_once, key_make);
    if (tc_key == (pthread_key_t)-1 || pthread_setspecific(tc_key, &tc) != 0)
      return false;
    tc_keyed = true;
  }
  tc.v[tc.n] = p;
  tc.size[tc.n++] = n;
  tc.bytes += n;
  return true;
}

/* A cached block of at least size bytes and at most twice that, or NULL;
 * the most recently freed first (it is the likeliest to be in cache). */
static void *
cache_take(size_t size) {
  size_t i;

  if (!CACHE_ON || size < CACHE_MIN || size > CACHE_MAX)
    return NULL;
  for (i = tc.n; i-- > 0;)
    if (tc.size[i] >= size && tc.size[i] / 2 <= size) {
      void *p = tc.v[i];

      tc.bytes -= tc.size[i];
      tc.n--;
      memmove(&tc.v[i], &tc.v[i + 1], (tc.n - i) * sizeof(tc.v[0]));
      memmove(&tc.size[i], &tc.size[i + 1], (tc.n - i) * sizeof(tc.size[0]));
      return p;
    }
  return NULL;
}

void
bh__alloc_trim(void) {
  cache_empty(&tc);
}

size_t
bh__alloc_cached(void) {
  return tc.bytes;
}

bool
bh__alloc_caching(void) {
  return CACHE_ON && hooks_are_libc;
}

/* ------------------------------------------------------------------------
 * The allocation functions. */

void *
bh__malloc(size_t size) {
  void *p = size >= CACHE_MIN && hooks_are_libc ? cache_take(size) : NULL;

  return counted(p != NULL ? p : hooks.malloc(size != 0 ? size : 1));
}

void *
bh__calloc(size_t n, size_t size) {
  void *p;

  if (size != 0 && n > SIZE_MAX / size)
    return NULL;
  if (n == 0 || size == 0)
    n = size = 1;
  if (hooks_are_libc)
    return counted(calloc(n, size));
  p = hooks.malloc(n * size);
  if (p != NULL)
    memset(p, 0, n * size);
  return counted(p);
}

/* Like realloc(), but size 0 keeps a 1-byte block instead of freeing, and
 * on failure `p` is left valid and still counted. */
void *
bh__realloc(void *p, size_t size) {
  void *q;

  if (p == NULL)
    return bh__malloc(size);
  if (hooks_are_libc && size >= CACHE_MIN && malloc_usable_size(p) < size &&
      (q = cache_take(size)) != NULL) { /* growing into a cached block */
    memcpy(q, p, malloc_usable_size(p));
    if (!cache_put(p))
      free(p);
    return q;
  }
  return hooks.realloc(p, size != 0 ? size : 1);
}

static void
release(void *p, size_t hint) {
  size_t was;

  if (p == NULL)
    return;
  was = atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
  /* More frees than allocations: a block not from bh__malloc & co. */
  BH_ASSERT(was > 0);
  if (hint < CACHE_MIN || !hooks_are_libc || !cache_put(p))
    hooks.free(p);
}

void
bh__free(void *p) {
  release(p, 0);
}

void
bh__free_large(void *p, size_t hint) {
  release(p, hint);
}

/* NULL in, NULL out: handy for optional strings. */
char *
bh__strdup(const char *s) {
  return s != NULL ? bh__strndup(s, strlen(s)) : NULL;
}

/* Copies at most n bytes of s (less if s ends sooner) and a NUL. */
char *
bh__strndup(const char *s, size_t n) {
  char *d;

  if (s == NULL)
    return NULL;
  n = strnlen(s, n);
  if (n == SIZE_MAX)
    return NULL;
  d = bh__malloc(n + 1);
  if (d == NULL)
    return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *
bh__vasprintf(const char *fmt, va_list ap) {
  va_list ap2;
  char *s;
  int n;

  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return NULL;
  s = bh__malloc((size_t)n + 1);
  if (s != NULL)
    vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

char *
bh__asprintf(const char *fmt, ...) {
  va_list ap;
  char *s;

  va_start(ap, fmt);
  s = bh__vasprintf(fmt, ap);
  va_end(ap);
  return s;
}

const char *
bh__stop(const char *s) {
  size_t n = s != NULL ? strlen(s) : 0;

  return n > 0 && s[n - 1] == '.' ? "" : ".";
}
