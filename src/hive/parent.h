/* parent.h - a bee toward its parent (parent.c). */
#ifndef BH_PARENT_H
#define BH_PARENT_H

#include "hive/bee.h"

/* Opens the bee's channel to its parent on t when not NULL (a joined
 * worker's TCP link), else on fd; either is taken whatever happens.
 * Returns 0 or an error. */
int bh__parent_open(bh_bee *bee, int fd, struct bh__transport *t);
/* Cancels one task, or every task the bee holds, with reason. */
void bh__bee_cancel_task(bh_bee *bee, bh_task *t, const char *reason);
void bh__bee_cancel_all(bh_bee *bee, const char *reason);
/* Every worker's tasks beyond its class's (busy_status, a map's chunk). */
extern const bh_task_def bh__builtin_tasks[];

#endif
