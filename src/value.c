/* value.c - owned msgpack values, and the format language that packs and
 * unpacks them (see "Values" in beehive.h).
 *
 * A format is validated whole before anything is packed or unpacked, so a
 * malformed format never consumes arguments, writes to a packer or stores
 * into a target. Packing needs each container's item count up front:
 * count_items() scans ahead in the already validated format. Arguments
 * travel as a va_list * through the recursive helpers so that every level
 * consumes from the same position.
 *
 * A bh_value holds its encoded bytes and the object decoded from them into
 * its own zone; strings and bins in the object point into the bytes. Note
 * that msgpack-c's zone allocates with malloc(), outside bh_set_allocator(). */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "blob.h"
#include "internal.h"
#include "value.h"

/* Tokens: a letter is its own code; s# and y# get codes of their own. */
enum { T_END = 0, T_SHASH = 256 + 's', T_YHASH = 256 + 'y' };

/* Room for a position path in error messages; longer paths are cut. */
#define PATH_MAX_LEN 256

static bool
is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' ||
         c == ':';
}

/* Reads the token at *pos and advances past it; *at gets its offset. */
static int
tok_next(const char *fmt, size_t *pos, size_t *at) {
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
  return c;
}

static int
tok_peek(const char *fmt, size_t pos) {
  size_t at;

  return tok_next(fmt, &pos, &at);
}

/* Counts the items from pos to the close of the enclosing container (or to
 * the end of fmt). A map's keys and values each count as one item. */
static size_t
count_items(const char *fmt, size_t pos) {
  size_t n = 0, at;
  int depth = 0, t;

  while ((t = tok_next(fmt, &pos, &at)) != T_END) {
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
  return fmt == NULL || tok_peek(fmt, 0) == T_END;
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

static int
check_pair(checker *c, size_t *pos, int depth) {
  size_t key_at = *pos, at;
  int t, rc;

  while (is_blank(c->fmt[key_at]))
    key_at++;
  if (c->unpack) {
    /* Unpack keys are inputs: the name to look for. */
    if (tok_next(c->fmt, pos, &at) != 's')
      return fmt_fail(c, at, "map key must be 's'");
    if (tok_peek(c->fmt, *pos) == '?')
      tok_next(c->fmt, pos, &at);
  } else if ((rc = check_item(c, pos, depth)) != 0) {
    return rc;
  }
  t = tok_peek(c->fmt, *pos);
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

  if (depth > BH__VALUE_MAX_DEPTH) {
    snprintf(what, sizeof(what), "nesting deeper than %d", BH__VALUE_MAX_DEPTH);
    return fmt_fail(c, open_at, what);
  }
  while ((t = tok_peek(c->fmt, *pos)) != close) {
    if (t == T_END) {
      snprintf(what, sizeof(what), "unclosed '%c'", open);
      return fmt_fail(c, open_at, what);
    }
    rc = open == '[' ? check_item(c, pos, depth) : check_pair(c, pos, depth);
    if (rc != 0)
      return rc;
  }
  tok_next(c->fmt, pos, &at);
  return 0;
}

/* Checks one item; `depth` containers are open around it. */
static int
check_item(checker *c, size_t *pos, int depth) {
  size_t at;
  int t = tok_next(c->fmt, pos, &at);

  if (t == '[' || t == '{')
    return check_seq(c, pos, t, at, depth + 1);
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
static int
check_format(const char *fmt, bool unpack, char *err, size_t errlen,
             size_t *count) {
  checker c = {fmt, unpack, err, errlen};
  size_t pos = 0;
  int rc, base;

  if ((rc = check_not_empty(&c)) != 0)
    return rc;
  base = count_items(fmt, 0) > 1 ? 1 : 0;
  *count = 0;
  while (tok_peek(fmt, pos) != T_END) {
    if ((rc = check_item(&c, &pos, base)) != 0)
      return rc;
    ++*count;
  }
  return 0;
}

/* Validates the first item of fmt; *end gets the offset just past it. */
static int
check_one(const char *fmt, bool unpack, char *err, size_t errlen, size_t *end) {
  checker c = {fmt, unpack, err, errlen};
  int rc;

  *end = 0;
  if ((rc = check_not_empty(&c)) != 0)
    return rc;
  return check_item(&c, end, 0);
}

/* ------------------------------------------------------------------------
 * Packing. */

typedef struct packer {
  msgpack_packer *pk;
  const char *fmt;
  size_t pos;  /* the next token */
  va_list *ap; /* the next argument */
  int depth;   /* containers open around the next item */
  bh__blobs *held; /* bh__vpack_blobs(): blobs named by LOCAL exts */
} packer;

/* Maps a msgpack write status: its callbacks fail only for lack of memory. */
static int
wrote(int rc) {
  return rc == 0 ? 0 : BH_ENOMEM;
}

/* True when o nests containers more than `room` levels deep. */
static bool
too_deep(const msgpack_object *o, int room) {
  uint32_t i;

  if (o->type == MSGPACK_OBJECT_ARRAY) {
    if (room <= 0)
      return true;
    for (i = 0; i < o->via.array.size; i++)
      if (too_deep(&o->via.array.ptr[i], room - 1))
        return true;
  } else if (o->type == MSGPACK_OBJECT_MAP) {
    if (room <= 0)
      return true;
    for (i = 0; i < o->via.map.size; i++)
      if (too_deep(&o->via.map.ptr[i].key, room - 1) ||
          too_deep(&o->via.map.ptr[i].val, room - 1))
        return true;
  }
  return false;
}

/* Packs a str or bin; NULL packs nil. msgpack lengths are 32-bit. */
static int
pack_raw(packer *p, bool bin, const void *ptr, size_t n) {
  msgpack_packer *pk = p->pk;

  if (ptr == NULL)
    return wrote(msgpack_pack_nil(pk));
  if (n > UINT32_MAX)
    return BH_EMSGSIZE;
  if (bin && p->held != NULL && n > 0 && n >= bh__blob_threshold()) {
    bh__blob *b = bh__blob_find(ptr, n);

    if (b != NULL) { /* it stays where it is: no copy */
      if (bh__blobs_add(p->held, b) != 0)
        return BH_ENOMEM;
      return bh__blob_pack_local(pk, b, (size_t)((const char *)ptr - b->map),
                                 n);
    }
  }
  if (bin)
    return wrote(msgpack_pack_bin(pk, n) || msgpack_pack_bin_body(pk, ptr, n));
  return wrote(msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, ptr, n));
}

/* s# and y#: a pointer, then a size_t. */
static int
pack_sized(packer *p, bool bin) {
  const void *ptr;
  size_t n;

  if (bin)
    ptr = va_arg(*p->ap, const void *);
  else
    ptr = va_arg(*p->ap, const char *);
  n = va_arg(*p->ap, size_t);
  return pack_raw(p, bin, ptr, n);
}

static int
pack_object_arg(packer *p, const msgpack_object *o) {
  if (o == NULL)
    return wrote(msgpack_pack_nil(p->pk));
  if (too_deep(o, BH__VALUE_MAX_DEPTH - p->depth))
    return BH_EFORMAT;
  return bh__pack_object(p->pk, o);
}

/* A value's bytes are copied as they are: they already hold one value. */
static int
pack_value_arg(packer *p, const bh_value *v) {
  if (v == NULL)
    return wrote(msgpack_pack_nil(p->pk));
  /* A value was decoded, so it fits at the top; deeper, it must be checked */
  if (p->depth > 0 && too_deep(&v->obj, BH__VALUE_MAX_DEPTH - p->depth))
    return BH_EFORMAT;
  return wrote(p->pk->callback(p->pk->data, v->data, v->size));
}

static int pack_item(packer *p);

/* Packs the items up to the close (or the end) as an array or a map. */
static int
pack_seq(packer *p, bool map) {
  size_t n = count_items(p->fmt, p->pos), i, at;
  int rc;

  if (p->depth >= BH__VALUE_MAX_DEPTH)
    return BH_EFORMAT;
  if (map)
    rc = wrote(msgpack_pack_map(p->pk, n / 2));
  else
    rc = wrote(msgpack_pack_array(p->pk, n));
  p->depth++;
  for (i = 0; i < n && rc == 0; i++)
    rc = pack_item(p);
  p->depth--;
  if (rc == 0)
    tok_next(p->fmt, &p->pos, &at); /* the close, or the end */
  return rc;
}

/* One case per letter of the format language, hence the length. */
static int
pack_item(packer *p) {
  msgpack_packer *pk = p->pk;
  va_list *ap = p->ap;
  size_t at;

  switch (tok_next(p->fmt, &p->pos, &at)) {
  case 'n':
    return wrote(msgpack_pack_nil(pk));
  case 'b':
    return wrote(va_arg(*ap, int) ? msgpack_pack_true(pk)
                                  : msgpack_pack_false(pk));
  case 'i':
    return wrote(msgpack_pack_int(pk, va_arg(*ap, int)));
  case 'I':
    return wrote(msgpack_pack_int64(pk, va_arg(*ap, int64_t)));
  case 'u':
    return wrote(msgpack_pack_unsigned_int(pk, va_arg(*ap, unsigned)));
  case 'U':
    return wrote(msgpack_pack_uint64(pk, va_arg(*ap, uint64_t)));
  case 'f':
    return wrote(msgpack_pack_double(pk, va_arg(*ap, double)));
  case 's': {
    const char *s = va_arg(*ap, const char *);
    return pack_raw(p, false, s, s != NULL ? strlen(s) : 0);
  }
  case T_SHASH:
    return pack_sized(p, false);
  case T_YHASH:
    return pack_sized(p, true);
  case 'o':
    return pack_object_arg(p, va_arg(*ap, const msgpack_object *));
  case 'v':
    return pack_value_arg(p, va_arg(*ap, const bh_value *));
  case '[':
    return pack_seq(p, false);
  case '{':
    return pack_seq(p, true);
  }
  return BH_EFORMAT; /* not reached: the format was validated */
}

int
bh__pack_object(msgpack_packer *pk, const msgpack_object *o) {
  if (o == NULL)
    return wrote(msgpack_pack_nil(pk));
  return wrote(msgpack_pack_object(pk, *o));
}

/* check_format() for packing, remembering the last format this thread
 * found valid: a hot path packs the same few formats over and over, and
 * the check cost more than the packing (750 instructions for "[i]"). */
static int
check_pack_format(const char *fmt, size_t *count) {
  static _Thread_local char last[64];
  static _Thread_local size_t last_count;
  size_t n;
  int rc;

  if (fmt != NULL && last[0] != '\0' && strcmp(fmt, last) == 0) {
    *count = last_count;
    return 0;
  }
  rc = check_format(fmt, false, NULL, 0, count);
  if (rc == 0 && (n = strlen(fmt)) < sizeof(last)) {
    memcpy(last, fmt, n + 1);
    last_count = *count;
  }
  return rc;
}

/* Packs fmt's items: one item as itself and several as one array, or
 * with `seq` always as one array (of however many). */
static int
vpack(msgpack_packer *pk, const char *fmt, va_list ap, bh__blobs *held,
      bool seq) {
  size_t count;
  va_list aq;
  int rc;

  if (pk == NULL)
    return BH_EINVAL;
  if ((rc = check_pack_format(fmt, &count)) != 0)
    return rc;
  va_copy(aq, ap); /* a va_list parameter cannot be passed on by address */
  {
    packer p = {pk, fmt, 0, &aq, 0, held};
    rc = count == 1 && !seq ? pack_item(&p) : pack_seq(&p, false);
  }
  va_end(aq);
  return rc;
}

int
bh__vpack_blobs(msgpack_packer *pk, const char *fmt, va_list ap,
                bh__blobs *held) {
  return vpack(pk, fmt, ap, held, false);
}

int
bh_vpack(msgpack_packer *pk, const char *fmt, va_list ap) {
  return bh__vpack_blobs(pk, fmt, ap, NULL);
}

int
bh_pack(msgpack_packer *pk, const char *fmt, ...) {
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = bh_vpack(pk, fmt, ap);
  va_end(ap);
  return rc;
}

int
bh__pack_item(msgpack_packer *pk, const char **fmt, va_list *ap) {
  size_t end;
  int rc;

  if (pk == NULL || fmt == NULL)
    return BH_EINVAL;
  if ((rc = check_one(*fmt, false, NULL, 0, &end)) != 0)
    return rc;
  {
    packer p = {pk, *fmt, 0, ap, 0, NULL};
    rc = pack_item(&p);
  }
  if (rc == 0)
    *fmt += end;
  return rc;
}

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

static int
unpack_bool(unpacker *u, const msgpack_object *o) {
  int *p = va_arg(*u->ap, int *);

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

/* Stores v (known to be in range) into the target of integer letter t. */
static void
store_int(unpacker *u, int t, bool neg, int64_t sv, uint64_t uv) {
  int64_t s = neg ? sv : (int64_t)uv; /* uv <= INT64_MAX for signed t */

  if (t == 'i') {
    int *p = va_arg(*u->ap, int *);
    if (p != NULL)
      *p = (int)s;
  } else if (t == 'I') {
    int64_t *p = va_arg(*u->ap, int64_t *);
    if (p != NULL)
      *p = s;
  } else if (t == 'u') {
    unsigned *p = va_arg(*u->ap, unsigned *);
    if (p != NULL)
      *p = (unsigned)uv;
  } else {
    uint64_t *p = va_arg(*u->ap, uint64_t *);
    if (p != NULL)
      *p = uv;
  }
}

static int
unpack_int(unpacker *u, int t, const msgpack_object *o) {
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
  store_int(u, t, neg, sv, uv);
  return 0;
}

static int
unpack_float(unpacker *u, const msgpack_object *o) {
  double *p = va_arg(*u->ap, double *), d;

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

/* s# (str only) and y# (bin or str): borrow a pointer and a length. */
static int
unpack_bytes(unpacker *u, const msgpack_object *o, bool bin) {
  const void **pp = NULL;
  const char **sp = NULL;
  const void *ptr;
  size_t *np, n;

  if (bin)
    pp = va_arg(*u->ap, const void **);
  else
    sp = va_arg(*u->ap, const char **);
  np = va_arg(*u->ap, size_t *);
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

  switch (tok_next(u->fmt, &u->pos, &at)) {
  case 'b':
  case 'i':
    (void)va_arg(*ap, int *);
    break;
  case 'I':
    (void)va_arg(*ap, int64_t *);
    break;
  case 'u':
    (void)va_arg(*ap, unsigned *);
    break;
  case 'U':
    (void)va_arg(*ap, uint64_t *);
    break;
  case 'f':
    (void)va_arg(*ap, double *);
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
    while (tok_peek(u->fmt, u->pos) != ']')
      skip_item(u);
    tok_next(u->fmt, &u->pos, &at);
    break;
  case '{':
    while (tok_peek(u->fmt, u->pos) != '}') {
      tok_next(u->fmt, &u->pos, &at); /* the key's 's' */
      (void)va_arg(*ap, const char *);
      if (tok_peek(u->fmt, u->pos) == '?')
        tok_next(u->fmt, &u->pos, &at);
      skip_item(u);
    }
    tok_next(u->fmt, &u->pos, &at);
    break;
  }
}

static int unpack_item(unpacker *u, const msgpack_object *o);

/* Matches the items up to the close (or the end) against array o. */
static int
unpack_array(unpacker *u, const msgpack_object *o) {
  size_t n = count_items(u->fmt, u->pos), i, old, at;
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
    old = path_push(u, "[%zu]", i);
    rc = unpack_item(u, &o->via.array.ptr[i]);
    path_pop(u, old);
  }
  if (rc == 0)
    tok_next(u->fmt, &u->pos, &at); /* the close, or the end */
  return rc;
}

static int
unpack_pair(unpacker *u, const msgpack_object *map) {
  const msgpack_object *val;
  const char *key;
  size_t at, old;
  bool optional;
  int rc;

  tok_next(u->fmt, &u->pos, &at); /* the key's 's' */
  key = va_arg(*u->ap, const char *);
  optional = tok_peek(u->fmt, u->pos) == '?';
  if (optional)
    tok_next(u->fmt, &u->pos, &at);
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
  while (rc == 0 && tok_peek(u->fmt, u->pos) != '}')
    rc = unpack_pair(u, o);
  if (rc == 0)
    tok_next(u->fmt, &u->pos, &at);
  return rc;
}

/* One case per letter of the format language. */
static int
unpack_item(unpacker *u, const msgpack_object *o) {
  size_t at;
  int t = tok_next(u->fmt, &u->pos, &at);

  switch (t) {
  case 'n':
    return o->type == MSGPACK_OBJECT_NIL ? 0 : mismatch(u, "nil", o);
  case 'b':
    return unpack_bool(u, o);
  case 'i':
  case 'I':
  case 'u':
  case 'U':
    return unpack_int(u, t, o);
  case 'f':
    return unpack_float(u, o);
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
  if ((rc = check_format(fmt, true, errbuf, errlen, &count)) != 0)
    return rc;
  if (obj == NULL)
    return null_object(errbuf, errlen, "");
  va_copy(aq, ap); /* a va_list parameter cannot be passed on by address */
  unpacker_init(&u, fmt, &aq, errbuf, errlen, "");
  rc = count == 1 ? unpack_item(&u, obj) : unpack_array(&u, obj);
  va_end(aq);
  return rc;
}

int
bh_unpack(const msgpack_object *obj, char *errbuf, size_t errlen,
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
    return check_one(NULL, true, errbuf, errlen, &end);
  if ((rc = check_one(*fmt, true, errbuf, errlen, &end)) != 0)
    return rc;
  if (obj == NULL)
    return null_object(errbuf, errlen, root);
  unpacker_init(&u, *fmt, ap, errbuf, errlen, root != NULL ? root : "");
  rc = unpack_item(&u, obj);
  if (rc == 0)
    *fmt += end;
  return rc;
}

/* ------------------------------------------------------------------------
 * Owned values. */

/* A zone chunk for a value of `size` encoded bytes: enough for the
 * objects of most values in one chunk, without 8 KiB for every small one.
 * Each object takes 24 bytes and at least one encoded byte; a small value
 * (a call's arguments, a short result) gets 8 bytes of chunk per encoded
 * byte, at least 64: "[[1]]" needs 48. */
static size_t
zone_chunk(size_t size) {
  if (size >= MSGPACK_ZONE_CHUNK_SIZE / 2)
    return MSGPACK_ZONE_CHUNK_SIZE;
  if (size < 32)
    return size * 8 < 64 ? 64 : size * 8;
  return size * 2 < 256 ? 256 : size * 2;
}

/* Takes ownership of data (from bh__malloc) and decodes it into a new
 * value. Returns owned, or NULL with *err set: BH_ENOMEM, or BH_EPROTO when
 * data is not exactly one msgpack value. */
static bh_value *
value_adopt_at(char *base, char *data, size_t size, int *err) {
  bh_value *v = (size_t)(data - base) <= UINT32_MAX
                    ? bh__calloc(1, sizeof(*v))
                    : NULL;
  size_t off = 0;
  msgpack_unpack_return ret;

  *err = BH_ENOMEM;
  if (v == NULL)
    goto fail_value;
  if (!msgpack_zone_init(&v->zone, zone_chunk(size)))
    goto fail_zone;
  ret = msgpack_unpack(data, size, &off, &v->zone, &v->obj);
  if (ret != MSGPACK_UNPACK_SUCCESS) {
    *err = ret == MSGPACK_UNPACK_NOMEM_ERROR ? BH_ENOMEM : BH_EPROTO;
    goto fail_unpack;
  }
  /* LOCAL blob exts become bins over their blobs, which v then holds. */
  if (bh__blob_any() && bh__blob_resolve_local(&v->obj, &v->blobs) != 0) {
    bh__blobs_release(&v->blobs);
    goto fail_unpack;
  }
  v->base_off = (uint32_t)(data - base);
  v->data = data;
  v->size = size;
  *err = 0;
  return v;

fail_unpack:
  msgpack_zone_destroy(&v->zone);
fail_zone:
  bh__free(v);
fail_value:
  bh__free(base);
  return NULL;
}

static bh_value *
value_adopt(char *data, size_t size, int *err) {
  return value_adopt_at(data, data, size, err);
}

/* Turns what a packer wrote into b (status rc) into a value. */
static bh_value *
value_from_buf(bh__buf *b, int rc, int *err) {
  if (rc != 0) {
    bh__buf_free(b);
    *err = rc;
    return NULL;
  }
  return value_adopt(b->data, b->len, err); /* takes the buffer's bytes */
}

static bh_value *
value_vpack(int *err, const char *fmt, va_list ap, bool seq) {
  bh__buf b = {NULL, 0, 0};
  bh__blobs held = {NULL, 0, 0};
  msgpack_packer pk;
  bh_value *v;
  int unused;

  if (err == NULL)
    err = &unused;
  msgpack_packer_init(&pk, &b, bh__buf_write);
  v = value_from_buf(&b, vpack(&pk, fmt, ap, &held, seq), err);
  bh__blobs_release(&held); /* v took its own references */
  return v;
}

bh_value *
bh_value_vpack(int *err, const char *fmt, va_list ap) {
  return value_vpack(err, fmt, ap, false);
}

bh_value *
bh__value_vpack_seq(int *err, const char *fmt, va_list ap) {
  return value_vpack(err, fmt, ap, true);
}

bh_value *
bh_value_pack(int *err, const char *fmt, ...) {
  bh_value *v;
  va_list ap;

  va_start(ap, fmt);
  v = bh_value_vpack(err, fmt, ap);
  va_end(ap);
  return v;
}

bh_value *
bh_value_from_object(const msgpack_object *obj) {
  bh__buf b = {NULL, 0, 0};
  msgpack_packer pk;
  int err;

  /* msgpack-c could not decode the copy of anything deeper. */
  if (obj == NULL || too_deep(obj, BH__VALUE_MAX_DEPTH))
    return NULL;
  msgpack_packer_init(&pk, &b, bh__buf_write);
  return value_from_buf(&b, bh__pack_object(&pk, obj), &err);
}

bh_value *
bh__value_adopt(char *data, size_t size) {
  int err;

  return value_adopt(data, size, &err);
}

bh_value *
bh__value_adopt_at(char *base, char *data, size_t size) {
  int err;

  return value_adopt_at(base, data, size, &err);
}

bh_value *
bh_value_from_bytes(const void *data, size_t size) {
  char *copy;
  int err;

  if (data == NULL || size == 0)
    return NULL;
  copy = bh__malloc(size);
  if (copy == NULL)
    return NULL;
  memcpy(copy, data, size);
  return value_adopt(copy, size, &err);
}

const msgpack_object *
bh_value_object(const bh_value *v) {
  return v != NULL ? &v->obj : NULL;
}

const char *
bh_value_data(const bh_value *v, size_t *size) {
  if (size != NULL)
    *size = v != NULL ? v->size : 0;
  return v != NULL ? v->data : NULL;
}

bh_value *
bh__value_hold(bh_value *v) {
  BH_ASSERT(v->holds < UINT32_MAX);
  v->holds++;
  return v;
}

void
bh_value_free(bh_value *v) {
  if (v == NULL)
    return;
  if (v->holds > 0) {
    v->holds--;
    return;
  }
  bh__blobs_release(&v->blobs);
  msgpack_zone_destroy(&v->zone);
  bh__free_large(v->data - v->base_off, v->size + v->base_off);
  bh__free(v);
}

/* ------------------------------------------------------------------------
 * Inspection and rendering. */

const char *
bh__type_name(const msgpack_object *o) {
  if (o == NULL)
    return "NULL";
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    return "nil";
  case MSGPACK_OBJECT_BOOLEAN:
    return "bool";
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    return "int";
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    return "float";
  case MSGPACK_OBJECT_STR:
    return "str";
  case MSGPACK_OBJECT_BIN:
    return "bin";
  case MSGPACK_OBJECT_ARRAY:
    return "array";
  case MSGPACK_OBJECT_MAP:
    return "map";
  case MSGPACK_OBJECT_EXT:
    return "ext";
  }
  return "unknown";
}

const msgpack_object *
bh__map_get(const msgpack_object *map, const char *key) {
  const msgpack_object *k;
  size_t n;
  uint32_t i;

  if (map == NULL || key == NULL || map->type != MSGPACK_OBJECT_MAP)
    return NULL;
  n = strlen(key);
  for (i = 0; i < map->via.map.size; i++) {
    k = &map->via.map.ptr[i].key;
    if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
        (n == 0 || memcmp(k->via.str.ptr, key, n) == 0))
      return &map->via.map.ptr[i].val;
  }
  return NULL;
}

/* An snprintf-like sink: keeps what fits and counts everything. */
typedef struct writer {
  char *buf;
  size_t len; /* buf's size, room for the NUL included */
  size_t n;   /* bytes written so far, or that would have been */
} writer;

static void
put(writer *w, const char *s, size_t k) {
  size_t room;

  if (k > 0 && w->n + 1 < w->len) {
    room = w->len - 1 - w->n;
    memcpy(w->buf + w->n, s, k < room ? k : room);
  }
  w->n += k;
}

static void
put_str(writer *w, const char *s) {
  put(w, s, strlen(s));
}

static void putf(writer *w, const char *fmt, ...) BH_PRINTF(2, 3);
static void
putf(writer *w, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n > 0)
    put(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* The shortest text that reads back as d (as a float when is32), always
 * with a '.' or an exponent so that it reads as a float. */
static void
repr_float(writer *w, double d, bool is32) {
  char tmp[40];
  int prec;

  if (isnan(d) || isinf(d)) {
    put_str(w, isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
    return;
  }
  for (prec = is32 ? 6 : 15; prec < 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
    if (is32 ? (float)strtod(tmp, NULL) == (float)d : strtod(tmp, NULL) == d)
      break;
  }
  if (prec == 17)
    snprintf(tmp, sizeof(tmp), "%.17g", d);
  if (strpbrk(tmp, ".e") == NULL)
    strcat(tmp, ".0");
  put_str(w, tmp);
}

/* The escape for byte c inside a quoted string, or NULL if it needs none. */
static const char *
escape_of(unsigned char c, char tmp[8]) {
  switch (c) {
  case '"':
    return "\\\"";
  case '\\':
    return "\\\\";
  case '\n':
    return "\\n";
  case '\r':
    return "\\r";
  case '\t':
    return "\\t";
  case '\b':
    return "\\b";
  case '\f':
    return "\\f";
  }
  if (c >= 0x20 && c != 0x7f)
    return NULL;
  snprintf(tmp, 8, "\\u%04x", c);
  return tmp;
}

static void
repr_str(writer *w, const char *s, size_t n) {
  size_t i, run = 0;
  const char *esc;
  char tmp[8];

  put(w, "\"", 1);
  for (i = 0; i < n; i++) {
    if ((esc = escape_of((unsigned char)s[i], tmp)) == NULL)
      continue;
    put(w, s + run, i - run);
    put_str(w, esc);
    run = i + 1;
  }
  put(w, s + run, n - run);
  put(w, "\"", 1);
}

static void repr_obj(writer *w, const msgpack_object *o);

static void
repr_container(writer *w, const msgpack_object *o) {
  uint32_t i;

  if (o->type == MSGPACK_OBJECT_ARRAY) {
    put(w, "[", 1);
    for (i = 0; i < o->via.array.size; i++) {
      if (i > 0)
        put(w, ", ", 2);
      repr_obj(w, &o->via.array.ptr[i]);
    }
    put(w, "]", 1);
    return;
  }
  put(w, "{", 1);
  for (i = 0; i < o->via.map.size; i++) {
    if (i > 0)
      put(w, ", ", 2);
    repr_obj(w, &o->via.map.ptr[i].key);
    put(w, ": ", 2);
    repr_obj(w, &o->via.map.ptr[i].val);
  }
  put(w, "}", 1);
}

static void
repr_obj(writer *w, const msgpack_object *o) {
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    put_str(w, "null");
    break;
  case MSGPACK_OBJECT_BOOLEAN:
    put_str(w, o->via.boolean ? "true" : "false");
    break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    putf(w, "%" PRIu64, o->via.u64);
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    putf(w, "%" PRId64, o->via.i64);
    break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    repr_float(w, o->via.f64, o->type == MSGPACK_OBJECT_FLOAT32);
    break;
  case MSGPACK_OBJECT_STR:
    repr_str(w, o->via.str.ptr, o->via.str.size);
    break;
  case MSGPACK_OBJECT_BIN:
    putf(w, "<bin %" PRIu32 " bytes>", o->via.bin.size);
    break;
  case MSGPACK_OBJECT_EXT:
    putf(w, "<ext %d, %" PRIu32 " bytes>", (int)o->via.ext.type,
         o->via.ext.size);
    break;
  case MSGPACK_OBJECT_ARRAY:
  case MSGPACK_OBJECT_MAP:
    repr_container(w, o);
    break;
  default:
    put_str(w, "<unknown>");
    break;
  }
}

size_t
bh_value_repr(const msgpack_object *obj, char *buf, size_t len) {
  writer w = {buf, len, 0};

  if (obj == NULL)
    put_str(&w, "NULL");
  else
    repr_obj(&w, obj);
  if (len > 0)
    buf[w.n < len ? w.n : len - 1] = '\0';
  return w.n;
}
