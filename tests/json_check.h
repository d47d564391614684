/* json_check.h - a tiny JSON syntax checker (RFC 8259, no extensions) for
 * the tests that read trace files (test_trace.c, test_predict.c); static
 * functions in a header because every tests/test_*.c is its own program.
 * json_ok(text) is 1 when text is exactly one JSON value. */
#ifndef BH_TEST_JSON_CHECK_H
#define BH_TEST_JSON_CHECK_H

#include <string.h>

#include "observe/trace_lanes.h" /* bh__utf8_len */

static const char *json_value(const char *p, int depth);

static const char *
ws(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
    p++;
  return p;
}

static const char *
json_string(const char *p) {
  const unsigned char *s = (const unsigned char *)p + 1;
  size_t k;
  int i;

  while (*s != '"') {
    if (*s < 0x20)
      return NULL; /* also the end of the text */
    if (*s == '\\') {
      s++;
      if (*s == 'u') {
        for (i = 1; i <= 4; i++)
          if (!strchr("0123456789abcdefABCDEF", s[i]) || s[i] == 0)
            return NULL;
        s += 5;
      } else if (*s != 0 && strchr("\"\\/bfnrt", *s)) {
        s++;
      } else {
        return NULL;
      }
    } else if (*s >= 0x80) {
      if ((k = bh__utf8_len(s, strlen((const char *)s))) == 0)
        return NULL;
      s += k;
    } else {
      s++;
    }
  }
  return (const char *)s + 1;
}

static const char *
digits(const char *p) {
  const char *q = p;

  while (*q >= '0' && *q <= '9')
    q++;
  return q > p ? q : NULL;
}

static const char *
json_number(const char *p) {
  if (*p == '-')
    p++;
  if (*p == '0')
    p++;
  else if ((p = digits(p)) == NULL)
    return NULL;
  if (*p == '.' && (p = digits(p + 1)) == NULL)
    return NULL;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    p = digits(p);
  }
  return p;
}

/* An array (close ']') or an object (close '}') after its opening. */
static const char *
json_items(const char *p, char close, int depth) {
  p = ws(p);
  if (*p == close)
    return p + 1;
  for (;;) {
    if (close == '}') {
      if (*(p = ws(p)) != '"' || (p = json_string(p)) == NULL ||
          *(p = ws(p)) != ':')
        return NULL;
      p++;
    }
    if ((p = json_value(p, depth + 1)) == NULL)
      return NULL;
    p = ws(p);
    if (*p == close)
      return p + 1;
    if (*p++ != ',')
      return NULL;
  }
}

static const char *
json_value(const char *p, int depth) {
  p = ws(p);
  if (depth > 64)
    return NULL;
  switch (*p) {
  case '{':
  case '[':
    return json_items(p + 1, *p == '{' ? '}' : ']', depth);
  case '"':
    return json_string(p);
  case 't':
    return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
  case 'f':
    return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
  case 'n':
    return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
  default:
    return json_number(p);
  }
}

static int
json_ok(const char *text) {
  const char *end = json_value(text, 0);

  return end != NULL && *ws(end) == '\0';
}

#endif
