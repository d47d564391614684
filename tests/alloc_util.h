/* alloc_util.h - an allocator that fails one allocation, for the BH_ENOMEM
 * paths of the calls under test (test_misuse.c, test_sigv4.c,
 * test_trace.c). Single-threaded use only. */
#ifndef BH_TEST_ALLOC_UTIL_H
#define BH_TEST_ALLOC_UTIL_H

#include <stdlib.h>

#include <beehive.h>

static struct {
  int calls, fail_at;
} fa_;

static void *
fa_malloc(size_t n) {
  return ++fa_.calls == fa_.fail_at ? NULL : malloc(n);
}

static void *
fa_realloc(void *p, size_t n) {
  return ++fa_.calls == fa_.fail_at ? NULL : realloc(p, n);
}

/* Installs the allocator: the n-th malloc or realloc from now on returns
 * NULL (n 1: the very next one). */
static void
fail_alloc_at(int n) {
  static const bh_allocator failing = {fa_malloc, fa_realloc, free};

  bh_set_allocator(&failing);
  fa_.calls = 0;
  fa_.fail_at = n;
}

/* Puts libc's allocator back. */
static void
fail_alloc_off(void) {
  fa_.fail_at = 0;
  bh_set_allocator(NULL);
}

#endif
