/* input.h - how the main job's workers get a row's input (examples/
 * predict.c): pluggable readers keyed by URL scheme, and the 8x8 PGM images
 * the queen writes for the digits. Header-only: CMake builds every .c file
 * of examples/ as its own program. */
#ifndef BEEHIVE_EXAMPLE_INPUT_H
#define BEEHIVE_EXAMPLE_INPUT_H

#include <beehive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "digits.h"

#define INPUT_MAX 4096 /* bytes of one row's raw input, at most */

/* ---- input readers, keyed by URL scheme ---------------------------------
 * A reader opens a URL, reads it in steps and closes it. Reads happen in
 * the worker's task fiber: a reader whose descriptor would block waits
 * with bh_wait_fd(), so the worker's other tasks run meanwhile. Later
 * readers (http://, s3://) plug in by adding a row to `readers`. */

typedef struct reader {
  const char *scheme; /* the URL prefix it serves, e.g. "file://" */
  int (*open)(bh_task *t, const char *url, void **h);  /* 0 or -errno */
  /* Reads up to n bytes: their number, 0 at the end, or -errno. */
  long (*read)(bh_task *t, void *h, void *buf, size_t n);
  void (*close)(void *h);
} reader;

static int
file_open(bh_task *t, const char *url, void **h) {
  int fd = open(url + strlen("file://"), O_RDONLY | O_NONBLOCK | O_CLOEXEC);

  (void)t;
  if (fd < 0)
    return -errno;
  *h = (void *)(intptr_t)fd;
  return 0;
}

/* A regular file always reads at once; a pipe or a FIFO behind the path
 * may not, and then the task waits for it without blocking the worker. */
static long
file_read(bh_task *t, void *h, void *buf, size_t n) {
  int fd = (int)(intptr_t)h, rc;
  ssize_t got;

  for (;;) {
    got = read(fd, buf, n);
    if (got >= 0)
      return (long)got;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN)
      return -errno;
    if ((rc = bh_wait_fd(t, fd, BH_READABLE, bh_now() + 30000)) < 0)
      return rc;
  }
}

static void
file_close(void *h) {
  close((int)(intptr_t)h);
}

static const reader readers[] = {
    {"file://", file_open, file_read, file_close},
    {NULL, NULL, NULL, NULL}};

/* Reads the whole input at url into buf. Returns 0, or -1 with `why`. */
static int
fetch(bh_task *t, const char *url, unsigned char *buf, size_t cap,
      size_t *len, char *why, size_t whylen) {
  const reader *r = readers;
  void *h;
  long got = 1;
  int rc;

  while (r->scheme != NULL && strncmp(url, r->scheme, strlen(r->scheme)))
    r++;
  if (r->scheme == NULL) {
    snprintf(why, whylen, "no reader for this URL's scheme");
    return -1;
  }
  if ((rc = r->open(t, url, &h)) != 0) {
    snprintf(why, whylen, "%s", bh_strerror(rc));
    return -1;
  }
  for (*len = 0; got > 0 && *len < cap; *len += (size_t)got)
    if ((got = r->read(t, h, buf + *len, cap - *len)) < 0)
      snprintf(why, whylen, "%s", bh_strerror((int)got));
  if (got > 0)
    snprintf(why, whylen, "larger than %zu bytes", cap);
  r->close(h);
  return got == 0 ? 0 : -1;
}

/* ---- images: 8x8 binary PGM (P5), maxval 16 ------------------------------ */

static size_t
pgm_image(const uint8_t px[DIGITS_FEATURES], unsigned char *buf) {
  int n = sprintf((char *)buf, "P5\n8 8\n%d\n", DIGITS_MAXVAL);

  memcpy(buf + n, px, DIGITS_FEATURES);
  return (size_t)n + DIGITS_FEATURES;
}

/* Reads one header number of a PGM at *i, after blanks and # comments. */
static int
pgm_number(const unsigned char *p, size_t n, size_t *i, unsigned *v) {
  size_t start;

  while (*i < n && (p[*i] == ' ' || p[*i] == '\t' || p[*i] == '\n' ||
                    p[*i] == '\r' || p[*i] == '#'))
    if (p[(*i)++] == '#')
      while (*i < n && p[*i] != '\n')
        (*i)++;
  for (start = *i, *v = 0; *i < n && p[*i] >= '0' && p[*i] <= '9'; (*i)++)
    if ((*v = *v * 10 + (p[*i] - '0')) > 65535)
      return -1;
  return *i > start ? 0 : -1;
}

/* Decodes an 8x8 P5 image into 64 normalised floats (pixel / maxval). */
static int
pgm_decode(const unsigned char *p, size_t n, float *x, char *why,
           size_t whylen) {
  unsigned w, h, maxval;
  size_t i = 2;
  int j;

  if (n < 2 || p[0] != 'P' || p[1] != '5') {
    snprintf(why, whylen, "not a binary PGM image (P5)");
    return -1;
  }
  if (pgm_number(p, n, &i, &w) || pgm_number(p, n, &i, &h) ||
      pgm_number(p, n, &i, &maxval) || i >= n || maxval == 0 ||
      maxval > 255) {
    snprintf(why, whylen, "bad PGM header");
    return -1;
  }
  if (w != 8 || h != 8 || n - i - 1 != DIGITS_FEATURES) {
    snprintf(why, whylen, "expected 8x8 pixels, got %ux%u and %zu bytes", w,
             h, n - i - 1);
    return -1;
  }
  for (i++, j = 0; j < DIGITS_FEATURES; j++) {
    if (p[i + j] > maxval) {
      snprintf(why, whylen, "pixel %d is %u, above maxval %u", j, p[i + j],
               maxval);
      return -1;
    }
    x[j] = digits_normalise(p[i + j], maxval);
  }
  return 0;
}

#endif
