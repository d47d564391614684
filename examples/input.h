/* input.h - how the main job's workers get a row's input (examples/
 * predict.c): pluggable readers keyed by URL scheme (file://, http://,
 * https://, s3://), and the 8x8 PGM images of the digits. Header-only:
 * CMake builds every .c file of examples/ as its own program. */
#ifndef BEEHIVE_EXAMPLE_INPUT_H
#define BEEHIVE_EXAMPLE_INPUT_H

#include <beehive.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "digits.h"

#define INPUT_MAX 4096 /* bytes of one row's raw input, at most */

/* ---- input readers, keyed by URL scheme ---------------------------------
 * A reader gets the whole input at a URL in the worker's task fiber,
 * through the bee's own I/O: a file from the page cache in place, else
 * on libuv's thread pool (bh_file_read), http:// and https:// through the bee's HTTP session
 * (bh_http_get), s3:// through its S3 client (bh_s3_get). The task waits
 * while the worker's other tasks run. Another scheme plugs in by adding a
 * row to `readers`.
 *
 * A reader returns 0 with the input in buf (cap bytes at most, its length
 * in *len), or a code the task handler returns as it is: the failed I/O
 * call's own, so that the task raises OSError, HTTPError or S3Error with
 * bh_task_errmsg()'s message (what failed, and the path or URL), or
 * BH_ERAISED when the reader raised itself. */

typedef struct reader {
  const char *scheme; /* the URL prefix it serves, e.g. "file://" */
  int (*fetch)(bh_task *t, const char *url, unsigned char *buf, size_t cap,
               size_t *len);
} reader;

/* Copies an input of n bytes into buf, if it fits. */
static int
input_keep(bh_task *t, const char *url, const void *data, size_t n,
           unsigned char *buf, size_t cap, size_t *len) {
  if (n > cap)
    return bh_raise(t, "ValueError", "%s: larger than %zu bytes", url, cap);
  memcpy(buf, data, n);
  *len = n;
  return 0;
}

/* A small file whose bytes are in the page cache, read in place: open,
 * then preadv2 with RWF_NOWAIT, which reads only what is cached and never
 * waits for a disk. A row's image is a few dozen bytes read over and over:
 * in place it costs three system calls, where a hop to libuv's thread pool
 * costs two thread wake-ups besides (the pool's threads took a third of
 * the main job's CPU). A read from offset 0 that ends within the first
 * page is the whole file (a page is cached whole or not at all). Returns
 * 0 with the file in buf, or -1 when it was not read so (not cached, the
 * file system cannot tell, a page or more, any error): then the pool reads
 * it, and its errors name the path and the step. The open stays in place:
 * on a local file system the directory entries of files read this often
 * are cached too. */
static int
file_cached(const char *path, unsigned char *buf, size_t cap, size_t *len) {
  struct iovec v = {buf, cap};
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return -1;
  n = preadv2(fd, &v, 1, 0, RWF_NOWAIT);
  close(fd);
  if (n < 0 || (size_t)n >= cap || n >= sysconf(_SC_PAGESIZE))
    return -1;
  *len = (size_t)n;
  return 0;
}

static int
file_fetch(bh_task *t, const char *url, unsigned char *buf, size_t cap,
           size_t *len) {
  const char *path = url + strlen("file://");
  void *data;
  size_t n;
  int rc;

  if (file_cached(path, buf, cap, len) == 0)
    return 0;
  /* One byte more than fits tells a larger file from a full one. */
  rc = bh_file_read(t, path, 0, cap + 1, &data, &n);
  if (rc != 0)
    return rc;
  rc = input_keep(t, url, data, n, buf, cap, len);
  bh_file_free(data);
  return rc;
}

static int
resp_keep(bh_task *t, const char *url, bh_http_resp *r, unsigned char *buf,
          size_t cap, size_t *len) {
  const void *body;
  size_t n;
  int rc;

  if (bh_http_resp_status(r) != 200) {
    rc = bh_raise(t, "HTTPError", "HTTP status %ld (GET %s)",
                  bh_http_resp_status(r), url);
  } else {
    body = bh_http_resp_body(r, &n);
    rc = input_keep(t, url, body, n, buf, cap, len);
  }
  bh_http_resp_free(r);
  return rc;
}

/* Any status but 200 is an error: a server's 404 page is no image. */
static int
http_fetch(bh_task *t, const char *url, unsigned char *buf, size_t cap,
           size_t *len) {
  bh_http_resp *r;
  int rc = bh_http_get(t, url, &r);

  return rc != 0 ? rc : resp_keep(t, url, r, buf, cap, len);
}

static int
s3_fetch(bh_task *t, const char *url, unsigned char *buf, size_t cap,
         size_t *len) {
  bh_http_resp *r;
  int rc = bh_s3_get(t, url, -1, -1, &r);

  return rc != 0 ? rc : resp_keep(t, url, r, buf, cap, len);
}

static const reader readers[] = {{"file://", file_fetch},
                                 {"http://", http_fetch},
                                 {"https://", http_fetch},
                                 {"s3://", s3_fetch},
                                 {NULL, NULL}};

/* The reader of url's scheme, or NULL. */
static const reader *
reader_for(const char *url) {
  const reader *r = readers;

  while (r->scheme != NULL && strncmp(url, r->scheme, strlen(r->scheme)))
    r++;
  return r->scheme != NULL ? r : NULL;
}

/* Reads the whole input at url into buf: 0, or a code for the task
 * handler to return (see above). */
static int
fetch(bh_task *t, const char *url, unsigned char *buf, size_t cap,
      size_t *len) {
  const reader *r = reader_for(url);

  if (r == NULL)
    return bh_raise(t, "ValueError", "%s: no reader for this URL's scheme",
                    url);
  return r->fetch(t, url, buf, cap, len);
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
