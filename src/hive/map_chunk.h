/* map_chunk.h - the built-in task a map's chunk runs as in the worker
 * (map_chunk.c; api/map.c delegates chunks by this name). */
#ifndef BH_MAP_CHUNK_H
#define BH_MAP_CHUNK_H

#include "hive/task.h"

#define BH__MAP_CHUNK_TASK "__map_chunk__"

/* Runs the chunk in t's args: the user's handler once per item. */
int bh__map_chunk_task(bh_task *t);

#endif
