/* fmt.c - the format language of bh_pack()/bh_unpack() (see "Values" in
 * beehive.h): its tokenizer and its validation. A format is validated
 * whole before anything is packed or unpacked (pack.c, unpack.c), so a
 * malformed format never consumes arguments, writes to a packer or stores
 * into a target. */
#include <string.h>

#include "value/fmt.h"

/* The element letters of a C array (#I...). */
#define ARR_ELEMS "iIuUfbs"

static bool
is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' ||
         c == ':';
}

/* Reads the token at *pos and advances past it; *at gets its offset. */
int
bh__tok_next(const char *fmt, size_t *pos, size_t *at) {
  int c;

  while (is_blank(fmt[*pos]))
    (*pos)++;
  *at = *pos;
  c = (unsigned char)fmt[*pos];
  if (c == 0)
    return T_END;
  (*pos)++;
  if ((c == 's' || c == 'y') && fmt[*pos] == '#') {
    (*pos)++;
    return 256 + c;
  }
  if (c == '#' && fmt[*pos] != '\0' && strchr(ARR_ELEMS, fmt[*pos]) != NULL) {
    size_t elem_at;

    return T_ARR + bh__tok_next(fmt, pos, &elem_at); /* a letter or s# */
  }
  return c;
}

int
bh__tok_peek(const char *fmt, size_t pos) {
  size_t at;

  return bh__tok_next(fmt, &pos, &at);
}

/* Counts the items from pos to the close of the enclosing container (or to
 * the end of fmt). A map's keys and values each count as one item. */
size_t
bh__count_items(const char *fmt, size_t pos) {
  size_t n = 0, at;
  int depth = 0, t;

  while ((t = bh__tok_next(fmt, &pos, &at)) != T_END) {
    if (t == ']' || t == '}') {
      if (depth-- == 0)
        break;
      continue;
    }
    if (t != '?' && depth == 0)
      n++;
    if (t == '[' || t == '{')
      depth++;
  }
  return n;
}

bool
bh__fmt_empty(const char *fmt) {
  return fmt == NULL || bh__tok_peek(fmt, 0) == T_END;
}

/* ------------------------------------------------------------------------
 * Format validation. */

typedef struct checker {
  const char *fmt;
  bool unpack; /* which letters are allowed */
  char *err;   /* message buffer, or NULL */
  size_t errlen;
} checker;

static int
fmt_fail(checker *c, size_t at, const char *what) {
  if (c->err != NULL && c->errlen > 0)
    snprintf(c->err, c->errlen, "format: %s at %zu", what, at);
  return BH_EFORMAT;
}

/* Reports the token t at `at`, which is not allowed where it stands. */
static int
fmt_bad_token(checker *c, int t, size_t at) {
  char what[48];

  switch (t) {
  case 'y':
    return fmt_fail(c, at, "'y' must be followed by '#'");
  case '#':
    return fmt_fail(c, at, "'#' must be followed by one of " ARR_ELEMS);
  case '?':
    return fmt_fail(
        c, at, c->unpack ? "'?' must follow a map key" : "'?' is unpack-only");
  case '*':
    return fmt_fail(c, at, "'*' is unpack-only");
  case 'v':
    return fmt_fail(c, at, "'v' is pack-only");
  case ']':
  case '}':
    snprintf(what, sizeof(what), "unexpected '%c'", t);
    return fmt_fail(c, at, what);
  }
  if (t > ' ' && t < 0x7f)
    snprintf(what, sizeof(what), "unknown letter '%c'", t);
  else
    snprintf(what, sizeof(what), "unknown byte 0x%02x", (unsigned)t);
  return fmt_fail(c, at, what);
}

static bool
is_scalar(int t) {
  return t == T_SHASH || t == T_YHASH ||
         (t > 0 && t < 0x80 && strchr("nbiIuUfso", t) != NULL);
}

static int check_item(checker *c, size_t *pos, int depth);

/* A container opening at `at` would be nested too deep. */
static int
fmt_too_deep(checker *c, size_t at) {
  char what[48];

  snprintf(what, sizeof(what), "nesting deeper than %d", BH__MAX_DEPTH);
  return fmt_fail(c, at, what);
}

/* A C array (#I...), an array at depth `depth`. */
static int
check_carray(checker *c, int t, size_t at, int depth) {
  if (c->unpack && bh__tok_elem(t) == 's')
    return fmt_fail(c, at, "'#s' is pack-only: unpack strings with '#s#'");
  return depth > BH__MAX_DEPTH ? fmt_too_deep(c, at) : 0;
}

static int
check_pair(checker *c, size_t *pos, int depth) {
  size_t key_at = *pos, at;
  int t, rc;

  while (is_blank(c->fmt[key_at]))
    key_at++;
  if (c->unpack) {
    /* Unpack keys are inputs: the name to look for. */
    if (bh__tok_next(c->fmt, pos, &at) != 's')
      return fmt_fail(c, at, "map key must be 's'");
    if (bh__tok_peek(c->fmt, *pos) == '?')
      bh__tok_next(c->fmt, pos, &at);
  } else if ((rc = check_item(c, pos, depth)) != 0) {
    return rc;
  }
  t = bh__tok_peek(c->fmt, *pos);
  if (t == '}' || t == T_END)
    return fmt_fail(c, key_at, "map key without value");
  return check_item(c, pos, depth);
}

/* Checks a container whose opening token `open` was at open_at. */
static int
check_seq(checker *c, size_t *pos, int open, size_t open_at, int depth) {
  int close = open == '[' ? ']' : '}', t, rc;
  char what[48];
  size_t at;

  if (depth > BH__MAX_DEPTH)
    return fmt_too_deep(c, open_at);
  while ((t = bh__tok_peek(c->fmt, *pos)) != close) {
    if (t == T_END) {
      snprintf(what, sizeof(what), "unclosed '%c'", open);
      return fmt_fail(c, open_at, what);
    }
    rc = open == '[' ? check_item(c, pos, depth) : check_pair(c, pos, depth);
    if (rc != 0)
      return rc;
  }
  bh__tok_next(c->fmt, pos, &at);
  return 0;
}

/* Checks one item; `depth` containers are open around it. */
static int
check_item(checker *c, size_t *pos, int depth) {
  size_t at;
  int t = bh__tok_next(c->fmt, pos, &at);

  if (t == '[' || t == '{')
    return check_seq(c, pos, t, at, depth + 1);
  if (bh__tok_is_arr(t))
    return check_carray(c, t, at, depth + 1);
  if (is_scalar(t) || (t == 'v' && !c->unpack) || (t == '*' && c->unpack))
    return 0;
  return fmt_bad_token(c, t, at);
}

/* Fails a NULL or empty format; returns 0 for any other. */
static int
check_not_empty(checker *c) {
  if (!bh__fmt_empty(c->fmt))
    return 0;
  if (c->err != NULL && c->errlen > 0)
    snprintf(c->err, c->errlen, "format: %s",
             c->fmt == NULL ? "NULL" : "empty");
  return BH_EFORMAT;
}

/* Validates a whole format; *count gets its number of top-level items
 * (several make one array, so they sit one level deeper). */
int
bh__check_format(const char *fmt, bool unpack, char *err, size_t errlen,
             size_t *count) {
  checker c = {fmt, unpack, err, errlen};
  size_t pos = 0;
  int rc, base;

  if ((rc = check_not_empty(&c)) != 0)
    return rc;
  base = bh__count_items(fmt, 0) > 1 ? 1 : 0;
  *count = 0;
  while (bh__tok_peek(fmt, pos) != T_END) {
    if ((rc = check_item(&c, &pos, base)) != 0)
      return rc;
    ++*count;
  }
  return 0;
}

int
bh__check_format_quoted(const char *fmt, bool unpack, char *err,
                        size_t errlen) {
  char what[160];
  size_t count;
  int rc = bh__check_format(fmt, unpack, what, sizeof(what), &count);

  if (rc != 0 && err != NULL && errlen > 0) {
    if (fmt == NULL)
      snprintf(err, errlen, "%s", what);
    else
      snprintf(err, errlen, "format \"%s\": %s", fmt,
               strncmp(what, "format: ", 8) == 0 ? what + 8 : what);
  }
  return rc;
}

/* Validates the first item of fmt; *end gets the offset just past it. */
int
bh__check_one(const char *fmt, bool unpack, char *err, size_t errlen, size_t *end) {
  checker c = {fmt, unpack, err, errlen};
  int rc;

  *end = 0;
  if ((rc = check_not_empty(&c)) != 0)
    return rc;
  return check_item(&c, end, 0);
}
