/* trace_lanes.h - the lanes a trace writer draws (trace_lanes.c): the lanes
 * the trace named, in order of first appearance, then any lane a span uses
 * that was never named (its label is then made up). Shared by
 * trace_json.c and trace_svg.c. */
#ifndef BH_TRACE_LANES_H
#define BH_TRACE_LANES_H

#include "base/base.h"

typedef struct bh__tlane {
  int64_t id;
  const char *label; /* borrowed from the trace; NULL: use `own` */
  char own[32];      /* "lane <id>" for a lane the trace never named */
} bh__tlane;

typedef struct bh__tlanes {
  bh__tlane *lanes;
  size_t n, cap;
  struct bh__tlane_key *sorted; /* (id, index) sorted by id, for lookup */
} bh__tlanes;

/* Collects the lanes of tr. Returns 0 or BH_ENOMEM. */
int bh__tlanes_init(bh__tlanes *l, const bh_trace *tr);
/* Borrows: the lane's label, valid until bh__tlanes_close(). */
const char *bh__tlane_label(const bh__tlane *ln);
/* The index of lane `id` (always found for a lane of one of tr's spans). */
size_t bh__tlanes_index(const bh__tlanes *l, int64_t id);
void bh__tlanes_close(bh__tlanes *l);
/* "succeeded", "raised" or "cancelled". */
const char *bh__status_name(bh_status st);

/* The length of the valid UTF-8 sequence at s (at most n bytes, s[0] not
 * ASCII), or 0 if it is not one. */
size_t bh__utf8_len(const unsigned char *s, size_t n);

#endif
