/* value_util.h - helpers of the tests of values and the format language
 * (test_fmt.c, test_pack.c, test_unpack.c, test_value.c). */
#ifndef BH_TEST_VALUE_UTIL_H
#define BH_TEST_VALUE_UTIL_H

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "runner.h"
#include "value/item.h"
#include "value/value.h"

/* Renders o with bh_value_repr() into a static buffer. */
static inline const char *
repr(const msgpack_object *o) {
  static char buf[4096];

  bh_value_repr(o, buf, sizeof(buf));
  return buf;
}

/* The hex of a value's encoded bytes, e.g. "93 01 02 03". */
static inline const char *
hex(const bh_value *v) {
  static char buf[512];
  const unsigned char *p;
  size_t n, i, off = 0;

  p = (const unsigned char *)bh_value_data(v, &n);
  buf[0] = '\0';
  for (i = 0; i < n && off + 4 < sizeof(buf); i++)
    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%02x",
                            i > 0 ? " " : "", p[i]);
  return buf;
}

/* A value decoded from hand-written bytes. */
static inline bh_value *
bytes(const char *data, size_t n) {
  return bh_value_from_bytes(data, n);
}

/* n nested one-item arrays around an empty array: n+1 levels. */
static inline char *
nested_bytes(size_t levels, size_t *n) {
  char *p = malloc(levels);
  size_t i;

  for (i = 0; i + 1 < levels; i++)
    p[i] = (char)0x91;
  p[levels - 1] = (char)0x90;
  *n = levels;
  return p;
}

/* Unpacks and expects failure `code` with message `msg`. */
#define EXPECT_FAIL(code, msg, obj, ...)                                       \
  do {                                                                         \
    char e_[256];                                                              \
    memset(e_, 'X', sizeof(e_));                                               \
    ASSERT_INT_EQ(bh_unpack((obj), e_, sizeof(e_), __VA_ARGS__), (code));      \
    ASSERT_STR_EQ(e_, (msg));                                                  \
  } while (0)

#define EXPECT_OK(obj, ...)                                                    \
  do {                                                                         \
    char e_[256] = "";                                                         \
    int rc_ = bh_unpack((obj), e_, sizeof(e_), __VA_ARGS__);                   \
    if (rc_ != 0)                                                              \
      fprintf(stderr, "unpack failed: %d %s\n", rc_, e_);                      \
    ASSERT_INT_EQ(rc_, 0);                                                     \
  } while (0)

#endif
