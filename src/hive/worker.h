/* worker.h - a worker process's life (worker.c): its bee on the channel
 * to its parent, from the fork or from the exec entry point. */
#ifndef BH_WORKER_H
#define BH_WORKER_H

#include "hive/spawn.h"

/* Runs a worker bee on fd in this process until its life ends; returns the
 * process exit status (a bh__worker_fn). */
int bh__worker_run(const bh__spawn *s, int fd, const msgpack_object *args,
                   const msgpack_object *kwargs);

#endif
