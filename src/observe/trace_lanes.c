/* trace_lanes.c - the lanes of a trace as the writers number them. */
#include "observe/trace_lanes.h"

#include <string.h>

#include "observe/trace.h"

struct bh__tlane_key {
  int64_t id;
  size_t index;
};

static int
cmp_key(const void *a, const void *b) {
  const struct bh__tlane_key *x = a, *y = b;

  return (x->id > y->id) - (x->id < y->id);
}

static const struct bh__tlane_key *
find(const bh__tlanes *l, size_t n_sorted, int64_t id) {
  struct bh__tlane_key k = {id, 0};

  if (n_sorted == 0)
    return NULL; /* l->sorted may be NULL, which bsearch() may not see */
  return bsearch(&k, l->sorted, n_sorted, sizeof(k), cmp_key);
}

/* Appends lane `id`, growing both arrays, and inserts its key in order
 * (only unnamed lanes come after the named ones, so this is rare). */
static int
add(bh__tlanes *l, const bh_trace *tr, int64_t id) {
  struct bh__tlane_key *k;
  bh__tlane *ln;
  size_t at = 0;

  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    bh__tlane *lanes = bh__realloc(l->lanes, cap * sizeof(*lanes));
    struct bh__tlane_key *keys;

    if (lanes == NULL)
      return BH_ENOMEM;
    l->lanes = lanes;
    keys = bh__realloc(l->sorted, cap * sizeof(*keys));
    if (keys == NULL)
      return BH_ENOMEM;
    l->sorted = keys;
    l->cap = cap;
  }
  ln = &l->lanes[l->n];
  ln->id = id;
  ln->label = bh_trace_lane_label(tr, id);
  if (ln->label == NULL) /* not a pointer into `own`: the array moves */
    snprintf(ln->own, sizeof(ln->own), "lane %lld", (long long)id);
  while (at < l->n && l->sorted[at].id < id)
    at++;
  k = &l->sorted[at];
  memmove(k + 1, k, (l->n - at) * sizeof(*k));
  *k = (struct bh__tlane_key){id, l->n};
  l->n++;
  return 0;
}

int
bh__tlanes_init(bh__tlanes *l, const bh_trace *tr) {
  const bh_span *sp;
  size_t n_sp = bh_trace_spans(tr, &sp), named = bh__trace_n_lanes(tr), i;
  int rc = 0;

  memset(l, 0, sizeof(*l));
  for (i = 0; rc == 0 && i < named; i++)
    if (find(l, l->n, bh__trace_lane_id(tr, i)) == NULL)
      rc = add(l, tr, bh__trace_lane_id(tr, i));
  for (i = 0; rc == 0 && i < n_sp; i++)
    if (find(l, l->n, sp[i].lane) == NULL)
      rc = add(l, tr, sp[i].lane);
  if (rc != 0)
    bh__tlanes_close(l);
  return rc;
}

const char *
bh__tlane_label(const bh__tlane *ln) {
  return ln->label != NULL ? ln->label : ln->own;
}

size_t
bh__tlanes_index(const bh__tlanes *l, int64_t id) {
  const struct bh__tlane_key *k = find(l, l->n, id);

  BH_ASSERT(k != NULL);
  return k->index;
}

void
bh__tlanes_close(bh__tlanes *l) {
  bh__free(l->lanes);
  bh__free(l->sorted);
  memset(l, 0, sizeof(*l));
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
size_t
bh__utf8_len(const unsigned char *s, size_t n) {
  size_t len, i;

  if (s[0] < 0xc2 || s[0] > 0xf4)
    return 0;
  len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
  if (len > n)
    return 0;
  for (i = 1; i < len; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xf0 && s[1] < 0x90) ||
      (s[0] == 0xf4 && s[1] > 0x8f) || (s[0] == 0xed && s[1] > 0x9f))
    return 0; /* overlong, beyond U+10FFFF, or a surrogate */
  return len;
}

const char *
bh__status_name(bh_status st) {
  switch (st) {
  case BH_SUCCEEDED:
    return "succeeded";
  case BH_RAISED:
    return "raised";
  default:
    return "cancelled";
  }
}
