/* alloc.c - every allocation of the library goes through these functions,
 * which call the hooks set with bh_set_allocator() (libc by default).
 *
 * A request for 0 bytes is served as a request for 1 byte, so that NULL
 * always means "out of memory" whatever the hooks do with size 0.
 *
 * A live-allocation counter (bh__alloc_live) lets tests check that every
 * allocation was freed. It is atomic because separate hives may run on
 * separate threads. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

static bh_allocator hooks = {malloc, realloc, free};
static int hooks_are_libc = 1;
static atomic_size_t live;

void
bh_set_allocator(const bh_allocator *a) {
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

void *
bh__malloc(size_t size) {
  return counted(hooks.malloc(size != 0 ? size : 1));
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
  if (p == NULL)
    return bh__malloc(size);
  return hooks.realloc(p, size != 0 ? size : 1);
}

void
bh__free(void *p) {
  size_t was;

  if (p == NULL)
    return;
  was = atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
  /* More frees than allocations: a block not from bh__malloc & co. */
  BH_ASSERT(was > 0);
  hooks.free(p);
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
