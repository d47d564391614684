/* base.h - what every module of the library uses: assertions, allocation,
 * growable buffers and the text of error codes (bh__ prefix). Nothing here
 * is part of the public API. */
#ifndef BH_BASE_H
#define BH_BASE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "beehive.h"

/* Aborts with file:line for broken invariants (bugs, never outside input). */
#define BH_ASSERT(cond)                                                      \
  do {                                                                       \
    if (!(cond))                                                             \
      bh__assert_fail(#cond, __FILE__, __LINE__);                            \
  } while (0)
void bh__assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));
/* error.c: how a handler's bare return code reads as an exception: the
 * library's own codes by name ("BH_ETIMEDOUT", "timed out"), any other
 * errno as OSError "ENOENT: No such file or directory (errno 2)", anything
 * else as a TaskError that says what a handler returns. Returns owned
 * (NULL: no memory); *type is static. */
char *bh__code_error(int rc, const char **type);
/* error.c: a source path as a traceback shows it: the library's own files
 * relative to its source tree ("src/task.c"), any other as it is. */
const char *bh__src_path(const char *file);

/* alloc.c: every allocation goes through these (bh_set_allocator). */
void *bh__malloc(size_t size);
void *bh__calloc(size_t n, size_t size);
void *bh__realloc(void *p, size_t size);
void bh__free(void *p);
/* bh__free() of a block that may be large (at least hint bytes in use):
 * it may go to the cache of large blocks for reuse. */
void bh__free_large(void *p, size_t hint);
char *bh__strdup(const char *s);
char *bh__strndup(const char *s, size_t n);
/* printf into a new string. Returns owned or NULL. */
char *bh__asprintf(const char *fmt, ...) BH_PRINTF(1, 2);
char *bh__vasprintf(const char *fmt, va_list ap);
/* "." to end a sentence with s, or "" if s ends in a period already (a
 * cause quoted at the end of a message may be a sentence of its own). */
const char *bh__stop(const char *s);
/* The number of blocks allocated and not yet freed through the functions
 * above; tests check it returns to its starting value. */
size_t bh__alloc_live(void);
/* Frees this thread's cache of large blocks (alloc.c); a hive calls it as
 * it ends. */
void bh__alloc_trim(void);
/* The bytes this thread's cache holds now. */
size_t bh__alloc_cached(void);
/* False when the cache is built out (ASan, -DBH_NO_BLOCK_CACHE) or
 * allocator hooks are set. */
bool bh__alloc_caching(void);

/* buf.c: a growable byte buffer, usable as a msgpack write target. */
typedef struct bh__buf {
  char *data;
  size_t len;
  size_t cap;
} bh__buf;
int bh__buf_reserve(bh__buf *b, size_t extra); /* 0 or BH_ENOMEM */
int bh__buf_append(bh__buf *b, const void *p, size_t n);
void bh__buf_free(bh__buf *b);
/* Writes all n bytes to fd, again after EINTR and short writes: 0, or
 * -errno (-EIO if write wrote nothing). Async-signal-safe. */
int bh__write_all(int fd, const void *p, size_t n);
/* msgpack_packer write callback; data is a bh__buf *. */
int bh__buf_write(void *data, const char *buf, size_t len);

#endif /* BH_BASE_H */
