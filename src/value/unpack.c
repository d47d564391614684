/* unpack.c - unpacking by format (bh_unpack, bh_result_unpack...): the
 * format is validated first (fmt.c); error messages name the position of
 * the item that did not match, e.g. "args[1]: expected str, got int". */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "value/fmt.h"

/* Room for a position path in error messages; longer paths are cut. */
#define PATH_MAX_LEN 256

/* ------------------------------------------------------------------------
 * Unpacking. */

typedef struct unpacker {
  const char *fmt;
  size_t pos;  /* the next token */
  va_list *ap; /* the next target */
  char *err;   /* message buffer, or NULL */
  size_t errlen;
  size_t plen;             /* strlen(path) */
  char path[PATH_MAX_LEN]; /* the item's position, e.g. "{opts}[3]" */
} unpacker;

static void
unpacker_init(unpacker *u, const char *fmt, va_list *ap, char *err,
              size_t errlen, const char *root) {
  u->fmt = fmt;
  u->pos = 0;
  u->ap = ap;
  u->err = err;
  u->errlen = errlen;
  snprintf(u->path, sizeof(u->path), "%s", root);
  u->plen = strlen(u->path);
}

/* Appends to the path; returns the length to restore with path_pop(). */
static size_t path_push(unpacker *u, const char *fmt, ...) BH_PRINTF(2, 3);
static size_t
path_push(unpacker *u, const char *fmt, ...) {
  size_t old = u->plen;
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(u->path + old, sizeof(u->path) - old, fmt, ap);
  va_end(ap);
  if (n > 0)
    u->plen = strlen(u->path); /* vsnprintf may have cut it */
  return old;
}

/* Appends "[i]": path_push's, without a printf per array element (which
 * was half of an unpack of a few nested arrays: callgrind). */
static size_t
path_index(unpacker *u, size_t i) {
  char digits[24];
  size_t old = u->plen, n = 0, v = i;

  do
    digits[n++] = (char)('0' + v % 10);
  while ((v /= 10) > 0);
  if (old + n + 3 > sizeof(u->path))
    return path_push(u, "[%zu]", i); /* cut as vsnprintf cuts */
  u->path[u->plen++] = '[';
  while (n > 0)
    u->path[u->plen++] = digits[--n];
  u->path[u->plen++] = ']';
  u->path[u->plen] = '\0';
  return old;
}

static void
path_pop(unpacker *u, size_t old) {
  u->plen = old;
  u->path[old] = '\0';
}

/* Writes "<path>: <message>" and returns BH_ETYPE. */
static int fail(unpacker *u, const char *fmt, ...) BH_PRINTF(2, 3);
static int
fail(unpacker *u, const char *fmt, ...) {
  char msg[160];
  va_list ap;

  if (u->err == NULL || u->errlen == 0)
    return BH_ETYPE;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  snprintf(u->err, u->errlen, "%s: %s", u->plen > 0 ? u->path : "value", msg);
  return BH_ETYPE;
}

static int
mismatch(unpacker *u, const char *want, const msgpack_object *o) {
  return fail(u, "expected %s, got %s", want, bh__type_name(o));
}

/* The scalar letters store through a pointer, so that a C array's
 * elements (#I...) go through the same checks as single targets. */
static int
bool_to(unpacker *u, const msgpack_object *o, int *p) {
  if (o->type != MSGPACK_OBJECT_BOOLEAN)
    return mismatch(u, "bool", o);
  if (p != NULL)
    *p = o->via.boolean ? 1 : 0;
  return 0;
}

/* The range of the target of integer letter t. */
static void
int_range(int t, int64_t *min, uint64_t *max) {
  switch (t) {
  case 'i':
    *min = INT_MIN, *max = INT_MAX;
    break;
  case 'I':
    *min = INT64_MIN, *max = INT64_MAX;
    break;
  case 'u':
    *min = 0, *max = UINT_MAX;
    break;
  default:
    *min = 0, *max = UINT64_MAX;
    break;
  }
}

/* Stores v (known to be in range) into target p of integer letter t. */
static void
store_int(void *p, int t, bool neg, int64_t sv, uint64_t uv) {
  int64_t s = neg ? sv : (int64_t)uv; /* uv <= INT64_MAX for signed t */

  if (p == NULL)
    return;
  if (t == 'i')
    *(int *)p = (int)s;
  else if (t == 'I')
    *(int64_t *)p = s;
  else if (t == 'u')
    *(unsigned *)p = (unsigned)uv;
  else
    *(uint64_t *)p = uv;
}

static int
int_to(unpacker *u, int t, const msgpack_object *o, void *p) {
  int64_t min, sv = 0;
  uint64_t max, uv = 0;
  bool neg;
  char got[24];

  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    neg = false, uv = o->via.u64;
  else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
    neg = o->via.i64 < 0, sv = o->via.i64, uv = (uint64_t)o->via.i64;
  else
    return mismatch(u, "int", o);
  int_range(t, &min, &max);
  if (neg ? sv < min : uv > max) {
    if (neg)
      snprintf(got, sizeof(got), "%" PRId64, sv);
    else
      snprintf(got, sizeof(got), "%" PRIu64, uv);
    return fail(u, "expected int from %" PRId64 " to %" PRIu64 ", got %s", min,
                max, got);
  }
  store_int(p, t, neg, sv, uv);
  return 0;
}

static int
float_to(unpacker *u, const msgpack_object *o, double *p) {
  double d;

  switch (o->type) {
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    d = o->via.f64;
    break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    d = (double)o->via.u64;
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    d = (double)o->via.i64;
    break;
  default:
    return mismatch(u, "float", o);
  }
  if (p != NULL)
    *p = d;
  return 0;
}

/* s: copies the string, NUL-terminated, into the caller's buffer. */
static int
unpack_strbuf(unpacker *u, const msgpack_object *o) {
  char *buf = va_arg(*u->ap, char *);
  size_t size = va_arg(*u->ap, size_t), n;

  if (o->type != MSGPACK_OBJECT_STR)
    return mismatch(u, "str", o);
  if (buf == NULL)
    return 0;
  n = o->via.str.size;
  /* A NUL inside would silently cut the C string the caller gets. */
  if (n > 0 && memchr(o->via.str.ptr, '\0', n) != NULL)
    return fail(u, "string holds a NUL byte");
  if (size == 0)
    return fail(u, "no room for a string in a 0-byte buffer");
  if (n >= size)
    return fail(u, "string longer than %zu bytes", size - 1);
  if (n > 0)
    memcpy(buf, o->via.str.ptr, n);
  buf[n] = '\0';
  return 0;
}

/* s# (str only) and y# (bin or str): borrow a pointer and a length; the
 * pointer goes to pp (y#) or sp (s#), each may be NULL. */
static int
bytes_to(unpacker *u, const msgpack_object *o, bool bin, const void **pp,
         const char **sp, size_t *np) {
  const void *ptr;
  size_t n;

  if (o->type == MSGPACK_OBJECT_STR)
    ptr = o->via.str.ptr, n = o->via.str.size;
  else if (bin && o->type == MSGPACK_OBJECT_BIN)
    ptr = o->via.bin.ptr, n = o->via.bin.size;
  else
    return mismatch(u, bin ? "bin" : "str", o);
  if (pp != NULL)
    *pp = ptr;
  if (sp != NULL)
    *sp = ptr;
  if (np != NULL)
    *np = n;
  return 0;
}

static int
unpack_bytes(unpacker *u, const msgpack_object *o, bool bin) {
  const void **pp = NULL;
  const char **sp = NULL;

  if (bin)
    pp = va_arg(*u->ap, const void **);
  else
    sp = va_arg(*u->ap, const char **);
  return bytes_to(u, o, bin, pp, sp, va_arg(*u->ap, size_t *));
}

/* The pointer target of letter t (b i I u U f, or s# for its strings),
 * read as its own type: a va_arg of another pointer type is undefined. */
static void *
target_arg(va_list *ap, int t) {
  switch (t) {
  case 'b':
  case 'i':
    return va_arg(*ap, int *);
  case 'I':
    return va_arg(*ap, int64_t *);
  case 'u':
    return va_arg(*ap, unsigned *);
  case 'U':
    return va_arg(*ap, uint64_t *);
  case 'f':
    return va_arg(*ap, double *);
  }
  return (void *)va_arg(*ap, const char **);
}

/* The size of one element of a C array of letter t. */
static size_t
elem_size(int t) {
  switch (t) {
  case 'b':
  case 'i':
    return sizeof(int);
  case 'u':
    return sizeof(unsigned);
  case 'f':
    return sizeof(double);
  case T_SHASH:
    return sizeof(const char *);
  }
  return sizeof(int64_t); /* I and U */
}

/* Element o of a C array: into items[i] (and lens[i] for #s#); items
 * NULL stores nothing. */
static int
elem_to(unpacker *u, int t, const msgpack_object *o, void *items,
        size_t *lens, size_t i) {
  void *p = items != NULL ? (char *)items + i * elem_size(t) : NULL;

  switch (t) {
  case 'b':
    return bool_to(u, o, p);
  case 'f':
    return float_to(u, o, p);
  case T_SHASH:
    return bytes_to(u, o, false, NULL, p, lens != NULL ? lens + i : NULL);
  }
  return int_to(u, t, o, p);
}

/* The array does not fit the caller's C array of cap items. */
static int
carray_size_fail(unpacker *u, uint32_t size, size_t cap, bool exact) {
  size_t old = path_push(u, "[]");
  int rc;

  if (exact)
    rc = fail(u, "expected array of %zu item%s, got %" PRIu32, cap,
              cap == 1 ? "" : "s", size);
  else
    rc = fail(u, "expected at most %zu item%s, got %" PRIu32, cap,
              cap == 1 ? "" : "s", size);
  path_pop(u, old);
  return rc;
}

/* #X: array o into the caller's C array: items, (#s#: lens,) cap, n. With
 * n NULL the array must hold exactly cap items; otherwise at most cap, and
 * *n gets how many. */
static int
unpack_carray(unpacker *u, int t, const msgpack_object *o) {
  void *items = target_arg(u->ap, t);
  size_t *lens = t == T_SHASH ? va_arg(*u->ap, size_t *) : NULL;
  size_t cap = va_arg(*u->ap, size_t), *np = va_arg(*u->ap, size_t *), i, old;
  uint32_t size;
  int rc = 0;

  if (o->type != MSGPACK_OBJECT_ARRAY)
    return mismatch(u, "array", o);
  size = o->via.array.size;
  if (np == NULL ? size != cap : size > cap)
    return carray_size_fail(u, size, cap, np == NULL);
  for (i = 0; i < size && rc == 0; i++) {
    rc = elem_to(u, t, &o->via.array.ptr[i], items, lens, i);
    if (rc != 0) { /* again, with the element's position in the message:
                    * naming every element up front would cost a printf
                    * each */
      old = path_push(u, "[%zu]", i);
      rc = elem_to(u, t, &o->via.array.ptr[i], NULL, NULL, i);
      path_pop(u, old);
    }
  }
  if (rc == 0 && np != NULL)
    *np = size;
  return rc;
}

static int
unpack_object(unpacker *u, const msgpack_object *o) {
  const msgpack_object **p = va_arg(*u->ap, const msgpack_object **);

  if (p != NULL)
    *p = o;
  return 0;
}

/* Consumes the next item's format and targets, storing nothing: the pattern
 * of an optional key that is missing. One case per target type, hence the
 * length. */
static void
skip_item(unpacker *u) {
  va_list *ap = u->ap;
  size_t at;
  int t = bh__tok_next(u->fmt, &u->pos, &at);

  if (bh__tok_is_arr(t)) {
    t = bh__tok_elem(t);
    (void)target_arg(ap, t);
    if (t == T_SHASH)
      (void)va_arg(*ap, size_t *);
    (void)va_arg(*ap, size_t);
    (void)va_arg(*ap, size_t *);
    return;
  }
  switch (t) {
  case 'b':
  case 'i':
  case 'I':
  case 'u':
  case 'U':
  case 'f':
    (void)target_arg(ap, t);
    break;
  case 's':
    (void)va_arg(*ap, char *);
    (void)va_arg(*ap, size_t);
    break;
  case T_SHASH:
    (void)va_arg(*ap, const char **);
    (void)va_arg(*ap, size_t *);
    break;
  case T_YHASH:
    (void)va_arg(*ap, const void **);
    (void)va_arg(*ap, size_t *);
    break;
  case 'o':
    (void)va_arg(*ap, const msgpack_object **);
    break;
  case '[':
    while (bh__tok_peek(u->fmt, u->pos) != ']')
      skip_item(u);
    bh__tok_next(u->fmt, &u->pos, &at);
    break;
  case '{':
    while (bh__tok_peek(u->fmt, u->pos) != '}') {
      bh__tok_next(u->fmt, &u->pos, &at); /* the key's 's' */
      (void)va_arg(*ap, const char *);
      if (bh__tok_peek(u->fmt, u->pos) == '?')
        bh__tok_next(u->fmt, &u->pos, &at);
      skip_item(u);
    }
    bh__tok_next(u->fmt, &u->pos, &at);
    break;
  }
}

static int unpack_item(unpacker *u, const msgpack_object *o);

/* Matches the items up to the close (or the end) against array o. */
static int
unpack_array(unpacker *u, const msgpack_object *o) {
  size_t n = bh__count_items(u->fmt, u->pos), i, old, at;
  int rc = 0;

  if (o->type != MSGPACK_OBJECT_ARRAY)
    return mismatch(u, "array", o);
  if (o->via.array.size != n) {
    old = path_push(u, "[]");
    rc = fail(u, "expected array of %zu item%s, got %" PRIu32, n,
              n == 1 ? "" : "s", o->via.array.size);
    path_pop(u, old);
    return rc;
  }
  for (i = 0; i < n && rc == 0; i++) {
    old = path_index(u, i);
    rc = unpack_item(u, &o->via.array.ptr[i]);
    path_pop(u, old);
  }
  if (rc == 0)
    bh__tok_next(u->fmt, &u->pos, &at); /* the close, or the end */
  return rc;
}

static int
unpack_pair(unpacker *u, const msgpack_object *map) {
  const msgpack_object *val;
  const char *key;
  size_t at, old;
  bool optional;
  int rc;

  bh__tok_next(u->fmt, &u->pos, &at); /* the key's 's' */
  key = va_arg(*u->ap, const char *);
  optional = bh__tok_peek(u->fmt, u->pos) == '?';
  if (optional)
    bh__tok_next(u->fmt, &u->pos, &at);
  if (key == NULL) {
    if (u->err != NULL && u->errlen > 0)
      snprintf(u->err, u->errlen, "format: NULL map key at %zu", at);
    return BH_EFORMAT;
  }
  val = bh__map_get(map, key);
  old = path_push(u, "{%s}", key);
  rc = 0;
  if (val != NULL)
    rc = unpack_item(u, val);
  else if (optional)
    skip_item(u);
  else
    rc = fail(u, "missing key");
  path_pop(u, old);
  return rc;
}

static int
unpack_map(unpacker *u, const msgpack_object *o) {
  size_t at;
  int rc = 0;

  if (o->type != MSGPACK_OBJECT_MAP)
    return mismatch(u, "map", o);
  while (rc == 0 && bh__tok_peek(u->fmt, u->pos) != '}')
    rc = unpack_pair(u, o);
  if (rc == 0)
    bh__tok_next(u->fmt, &u->pos, &at);
  return rc;
}

/* One case per letter of the format language. */
static int
unpack_item(unpacker *u, const msgpack_object *o) {
  size_t at;
  int t = bh__tok_next(u->fmt, &u->pos, &at);

  if (bh__tok_is_arr(t))
    return unpack_carray(u, bh__tok_elem(t), o);
  switch (t) {
  case 'n':
    return o->type == MSGPACK_OBJECT_NIL ? 0 : mismatch(u, "nil", o);
  case 'b':
    return bool_to(u, o, target_arg(u->ap, t));
  case 'i':
  case 'I':
  case 'u':
  case 'U':
    return int_to(u, t, o, target_arg(u->ap, t));
  case 'f':
    return float_to(u, o, target_arg(u->ap, t));
  case 's':
    return unpack_strbuf(u, o);
  case T_SHASH:
    return unpack_bytes(u, o, false);
  case T_YHASH:
    return unpack_bytes(u, o, true);
  case 'o':
    return unpack_object(u, o);
  case '*':
    return 0;
  case '[':
    return unpack_array(u, o);
  case '{':
    return unpack_map(u, o);
  }
  return BH_EFORMAT; /* not reached: the format was validated */
}

static int
null_object(char *errbuf, size_t errlen, const char *root) {
  if (errbuf != NULL && errlen > 0)
    snprintf(errbuf, errlen, "%s: NULL object",
             root != NULL && root[0] != '\0' ? root : "value");
  return BH_EINVAL;
}

int
bh_vunpack(const msgpack_object *obj, char *errbuf, size_t errlen,
           const char *fmt, va_list ap) {
  unpacker u;
  size_t count;
  va_list aq;
  int rc;

  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  if ((rc = bh__check_format(fmt, true, errbuf, errlen, &count)) != 0)
    return rc;
  if (obj == NULL)
    return null_object(errbuf, errlen, "");
  va_copy(aq, ap); /* a va_list parameter cannot be passed on by address */
  unpacker_init(&u, fmt, &aq, errbuf, errlen, "");
  rc = count == 1 ? unpack_item(&u, obj) : unpack_array(&u, obj);
  va_end(aq);
  return rc;
}

/* The name in parentheses: beehive.h's call macro stays out. */
int
(bh_unpack)(const msgpack_object *obj, char *errbuf, size_t errlen,
          const char *fmt, ...) {
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = bh_vunpack(obj, errbuf, errlen, fmt, ap);
  va_end(ap);
  return rc;
}

int
bh__unpack_item(const msgpack_object *obj, const char *root, char *errbuf,
                size_t errlen, const char **fmt, va_list *ap) {
  unpacker u;
  size_t end;
  int rc;

  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  if (fmt == NULL)
    return bh__check_one(NULL, true, errbuf, errlen, &end);
  if ((rc = bh__check_one(*fmt, true, errbuf, errlen, &end)) != 0)
    return rc;
  if (obj == NULL)
    return null_object(errbuf, errlen, root);
  unpacker_init(&u, *fmt, ap, errbuf, errlen, root != NULL ? root : "");
  rc = unpack_item(&u, obj);
  if (rc == 0)
    *fmt += end;
  return rc;
}
