/* trace.c - a timeline of spans: one per delegated task, recorded by the
 * delegating bee when the answer arrives, and one per span a task marks
 * on its own bee. Task names are stored once each. */
#include "observe/trace.h"

#include <string.h>
#include <uv.h>

typedef struct lane {
  int64_t id;
  char *label;
} lane;

struct bh_trace {
  bh_span *spans;
  size_t n, cap;
  char **names; /* interned task names */
  size_t n_names;
  lane *lanes;
  size_t n_lanes;
  uint64_t t0;  /* uv_hrtime() at creation */
};

bh_trace *
bh_trace_new(void) {
  bh_trace *tr = bh__calloc(1, sizeof(*tr));

  if (tr != NULL)
    tr->t0 = uv_hrtime();
  return tr;
}

void
bh_trace_free(bh_trace *tr) {
  size_t i;

  if (tr == NULL)
    return;
  for (i = 0; i < tr->n_names; i++)
    bh__free(tr->names[i]);
  for (i = 0; i < tr->n_lanes; i++)
    bh__free(tr->lanes[i].label);
  bh__free(tr->names);
  bh__free(tr->lanes);
  bh__free(tr->spans);
  bh__free(tr);
}

/* A linear scan: a hive has a handful of task names. */
static const char *
intern(bh_trace *tr, const char *name) {
  char **grown;
  size_t i;

  for (i = 0; i < tr->n_names; i++)
    if (strcmp(tr->names[i], name) == 0)
      return tr->names[i];
  grown = bh__realloc(tr->names, (tr->n_names + 1) * sizeof(*grown));
  if (grown == NULL)
    return NULL;
  tr->names = grown;
  tr->names[tr->n_names] = bh__strdup(name);
  return tr->names[tr->n_names] ? tr->names[tr->n_names++] : NULL;
}

void
bh__trace_lane(bh_trace *tr, int64_t id, const char *label) {
  lane *grown;
  size_t i;

  for (i = 0; i < tr->n_lanes; i++)
    if (tr->lanes[i].id == id)
      return;
  grown = bh__realloc(tr->lanes, (tr->n_lanes + 1) * sizeof(*grown));
  if (grown == NULL)
    return;
  tr->lanes = grown;
  tr->lanes[tr->n_lanes].id = id;
  tr->lanes[tr->n_lanes].label = bh__strdup(label);
  tr->n_lanes++;
}

static int64_t
us(const bh_trace *tr, uint64_t ns) {
  return ns < tr->t0 ? 0 : (int64_t)((ns - tr->t0) / 1000);
}

int64_t
bh__trace_add(bh_trace *tr, int64_t lane_id, const char *name,
              int64_t task_id, uint64_t made_ns, uint64_t start_ns,
              uint64_t end_ns, bh_status st) {
  const char *n = intern(tr, name ? name : "?");

  if (n == NULL)
    return -1;
  if (tr->n == tr->cap) {
    size_t cap = tr->cap ? tr->cap * 2 : 1024;
    bh_span *grown = bh__realloc(tr->spans, cap * sizeof(*grown));

    if (grown == NULL)
      return -1;
    tr->spans = grown;
    tr->cap = cap;
  }
  tr->spans[tr->n] = (bh_span){.lane = lane_id,
                               .name = n,
                               .task_id = task_id,
                               .made_us = us(tr, made_ns),
                               .start_us = us(tr, start_ns ? start_ns
                                                           : made_ns),
                               .end_us = end_ns ? us(tr, end_ns) : -1,
                               .status = st};
  return (int64_t)tr->n++;
}

void
bh__trace_end(bh_trace *tr, int64_t i, uint64_t end_ns, bh_status st) {
  if (i < 0 || (size_t)i >= tr->n)
    return;
  tr->spans[i].end_us = us(tr, end_ns);
  tr->spans[i].status = st;
}

size_t
bh_trace_spans(const bh_trace *tr, const bh_span **out) {
  *out = tr->spans;
  return tr->n;
}

const char *
bh_trace_lane_label(const bh_trace *tr, int64_t id) {
  size_t i;

  for (i = 0; i < tr->n_lanes; i++)
    if (tr->lanes[i].id == id)
      return tr->lanes[i].label;
  return NULL;
}

size_t
bh__trace_n_lanes(const bh_trace *tr) {
  return tr->n_lanes;
}

int64_t
bh__trace_lane_id(const bh_trace *tr, size_t i) {
  return i < tr->n_lanes ? tr->lanes[i].id : -2;
}
