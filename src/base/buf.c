/* buf.c - a growable byte buffer, and the loop that writes bytes whole. A zeroed bh__buf is empty and valid.
 * Capacity doubles, so n appends cost O(n) copies in all; an append larger
 * than the whole capacity gets exactly the room it needs instead (a large
 * bin then costs its size, not the next power of two, which for a 64 KiB
 * payload was a 128 KiB block mmap()ed and unmapped per message). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

#define MIN_CAP 64

int
bh__buf_reserve(bh__buf *b, size_t extra) {
  size_t need, cap;
  char *p;

  if (extra <= b->cap - b->len)
    return 0;
  if (extra > SIZE_MAX - b->len)
    return BH_ENOMEM;
  need = b->len + extra;
  cap = b->cap > MIN_CAP ? b->cap : MIN_CAP;
  if (extra >= cap)
    cap = need;
  while (cap < need)
    cap = cap <= SIZE_MAX / 2 ? cap * 2 : need;
  p = bh__realloc(b->data, cap);
  if (p == NULL)
    return BH_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int
bh__buf_append(bh__buf *b, const void *p, size_t n) {
  int err;

  if (n == 0)
    return 0;
  err = bh__buf_reserve(b, n);
  if (err != 0)
    return err;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void
bh__buf_free(bh__buf *b) {
  if (b == NULL)
    return;
  bh__free_large(b->data, b->cap);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

/* msgpack-c passes a non-zero return through as the pack call's result, so
 * a failed pack returns BH_ENOMEM. */
int
bh__buf_write(void *data, const char *buf, size_t len) {
  return bh__buf_append(data, buf, len);
}

int
bh__write_all(int fd, const void *p, size_t n) {
  const char *c = p;

  while (n > 0) {
    ssize_t w = write(fd, c, n);

    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? -errno : -EIO;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}
