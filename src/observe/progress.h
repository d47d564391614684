/* progress.h - progress.c internals. */
#ifndef BH_PROGRESS_H
#define BH_PROGRESS_H

#include "base/base.h"

/* Seconds left for total - done units at per_s: 0 once done reaches
 * total, -1 when unknown (total 0, or no rate). */
double bh__progress_eta(uint64_t done, uint64_t total, double per_s);

#endif
