/* pack.c - packing by format (bh_pack, bh_value_pack...): the format is
 * validated first (fmt.c); packing needs each container's item count up
 * front, which bh__count_items() scans ahead in the validated format.
 * Arguments travel as a va_list * through the recursive helpers so that
 * every level consumes from the same position. */
#include <string.h>

#include "value/blob.h"
#include "value/fmt.h"

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
bool
bh__too_deep(const msgpack_object *o, int room) {
  uint32_t i;

  if (o->type == MSGPACK_OBJECT_ARRAY) {
    if (room <= 0)
      return true;
    for (i = 0; i < o->via.array.size; i++)
      if (bh__too_deep(&o->via.array.ptr[i], room - 1))
        return true;
  } else if (o->type == MSGPACK_OBJECT_MAP) {
    if (room <= 0)
      return true;
    for (i = 0; i < o->via.map.size; i++)
      if (bh__too_deep(&o->via.map.ptr[i].key, room - 1) ||
          bh__too_deep(&o->via.map.ptr[i].val, room - 1))
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
  if (bh__too_deep(o, BH__MAX_DEPTH - p->depth))
    return BH_EFORMAT;
  return bh__pack_object(p->pk, o);
}

/* A value's bytes are copied as they are: they already hold one value. */
static int
pack_value_arg(packer *p, const bh_value *v) {
  if (v == NULL)
    return wrote(msgpack_pack_nil(p->pk));
  /* A value was decoded, so it fits at the top; deeper, it must be checked */
  if (p->depth > 0 && bh__too_deep(&v->obj, BH__MAX_DEPTH - p->depth))
    return BH_EFORMAT;
  return wrote(p->pk->callback(p->pk->data, v->data, v->size));
}

/* #X: element i of a C array of letter elem's type (lens: #s#'s). */
static int
pack_elem(packer *p, int elem, const void *items, const size_t *lens,
          size_t i) {
  msgpack_packer *pk = p->pk;

  switch (elem) {
  case 'b':
    return wrote(((const int *)items)[i] ? msgpack_pack_true(pk)
                                          : msgpack_pack_false(pk));
  case 'i':
    return wrote(msgpack_pack_int(pk, ((const int *)items)[i]));
  case 'I':
    return wrote(msgpack_pack_int64(pk, ((const int64_t *)items)[i]));
  case 'u':
    return wrote(msgpack_pack_unsigned_int(pk, ((const unsigned *)items)[i]));
  case 'U':
    return wrote(msgpack_pack_uint64(pk, ((const uint64_t *)items)[i]));
  case 'f':
    return wrote(msgpack_pack_double(pk, ((const double *)items)[i]));
  case 's': {
    const char *s = ((const char *const *)items)[i];
    return pack_raw(p, false, s, s != NULL ? strlen(s) : 0);
  }
  }
  return pack_raw(p, false, ((const char *const *)items)[i], lens[i]);
}

/* The pointer argument of a C array of letter elem's type, read as that
 * type (a va_arg of another pointer type would be undefined). */
static const void *
carray_arg(va_list *ap, int elem) {
  switch (elem) {
  case 'b':
  case 'i':
    return va_arg(*ap, const int *);
  case 'I':
    return va_arg(*ap, const int64_t *);
  case 'u':
    return va_arg(*ap, const unsigned *);
  case 'U':
    return va_arg(*ap, const uint64_t *);
  case 'f':
    return va_arg(*ap, const double *);
  }
  return va_arg(*ap, const char *const *); /* s and s# */
}

/* #X: an array of the n items of a C array; NULL packs nil. #s# takes the
 * strings, then their lengths, then n. */
static int
pack_carray(packer *p, int elem) {
  const void *items = carray_arg(p->ap, elem);
  const size_t *lens = elem == T_SHASH ? va_arg(*p->ap, const size_t *) : NULL;
  size_t n = va_arg(*p->ap, size_t), i;
  int rc;

  if (items == NULL || (elem == T_SHASH && lens == NULL))
    return wrote(msgpack_pack_nil(p->pk));
  if (n > UINT32_MAX)
    return BH_EMSGSIZE;
  if (p->depth >= BH__MAX_DEPTH)
    return BH_EFORMAT;
  rc = wrote(msgpack_pack_array(p->pk, n));
  for (i = 0; i < n && rc == 0; i++)
    rc = pack_elem(p, elem, items, lens, i);
  return rc;
}

static int pack_item(packer *p);

/* Packs the items up to the close (or the end) as an array or a map. */
static int
pack_seq(packer *p, bool map) {
  size_t n = bh__count_items(p->fmt, p->pos), i, at;
  int rc;

  if (p->depth >= BH__MAX_DEPTH)
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
    bh__tok_next(p->fmt, &p->pos, &at); /* the close, or the end */
  return rc;
}

/* One case per letter of the format language, hence the length. */
static int
pack_item(packer *p) {
  msgpack_packer *pk = p->pk;
  va_list *ap = p->ap;
  size_t at;
  int t = bh__tok_next(p->fmt, &p->pos, &at);

  if (bh__tok_is_arr(t))
    return pack_carray(p, bh__tok_elem(t));
  switch (t) {
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

/* bh__check_format() for packing, remembering the last format this thread
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
  rc = bh__check_format(fmt, false, NULL, 0, count);
  if (rc == 0 && (n = strlen(fmt)) < sizeof(last)) {
    memcpy(last, fmt, n + 1);
    last_count = *count;
  }
  return rc;
}

/* Packs fmt's items: one item as itself and several as one array, or
 * with `seq` always as one array (of however many). */
int
bh__vpack(msgpack_packer *pk, const char *fmt, va_list ap, bh__blobs *held,
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

void
bh__pack_why(const char *fmt, int rc, char *buf, size_t len) {
  if (bh__check_format_quoted(fmt, false, buf, len) != 0)
    return;
  if (rc == BH_EFORMAT)
    snprintf(buf, len, "format \"%s\": an o or v item nests containers "
             "more than %d deep", fmt, BH__MAX_DEPTH);
  else if (rc == BH_EMSGSIZE)
    snprintf(buf, len, "format \"%s\": a str or bin of 4 GiB or more",
             fmt);
  else
    snprintf(buf, len, "%s", bh_strerror(rc));
}

int
bh__vpack_blobs(msgpack_packer *pk, const char *fmt, va_list ap,
                bh__blobs *held) {
  return bh__vpack(pk, fmt, ap, held, false);
}

int
bh_vpack(msgpack_packer *pk, const char *fmt, va_list ap) {
  return bh__vpack_blobs(pk, fmt, ap, NULL);
}

/* The name in parentheses: beehive.h's call macro stays out. */
int
(bh_pack)(msgpack_packer *pk, const char *fmt, ...) {
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
  if ((rc = bh__check_one(*fmt, false, NULL, 0, &end)) != 0)
    return rc;
  {
    packer p = {pk, *fmt, 0, ap, 0, NULL};
    rc = pack_item(&p);
  }
  if (rc == 0)
    *fmt += end;
  return rc;
}
