/* trace.h - recording spans into a bh_trace (trace.c); writers are in
 * trace_json.c and trace_svg.c. */
#ifndef BH_TRACE_H
#define BH_TRACE_H

#include "base/base.h"

/* Names a lane once; later calls for the same id are ignored. */
void bh__trace_lane(bh_trace *tr, int64_t lane, const char *label);
/* Appends a span; times are uv_hrtime() nanoseconds. Returns its index or
 * -1 when out of memory. */
int64_t bh__trace_add(bh_trace *tr, int64_t lane, const char *name,
                      int64_t task_id, uint64_t made_ns, uint64_t start_ns,
                      uint64_t end_ns, bh_status st);
/* Sets the end of span i (an own span begun earlier). */
void bh__trace_end(bh_trace *tr, int64_t i, uint64_t end_ns, bh_status st);
/* Number of lanes and the id of lane i, in order of first appearance. */
size_t bh__trace_n_lanes(const bh_trace *tr);
int64_t bh__trace_lane_id(const bh_trace *tr, size_t i);

#endif
