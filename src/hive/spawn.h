/* spawn.h - starting a worker process (spawn.c): fork, or fork+exec of
 * this same program with the bootstrap frame. What runs in it is
 * worker.c's. */
#ifndef BH_SPAWN_H
#define BH_SPAWN_H

#include <sys/types.h>

#include "hive/bee.h"
#include "hive/wcfg.h"

/* The descriptor an exec-started worker finds its channel on. */
#define BH__BOOT_FD 3

/* What it takes to start one worker: its class and id, its init
 * arguments, its settings, the parent's logger, the start method, and
 * for a fork what the new process runs. */
typedef struct bh__spawn {
  const bh_class *cls;
  int64_t id;
  const bh_value *init_args, *init_kwargs; /* array / map or NULL */
  const bh__wcfg *cfg;
  bh_logger *logger;
  bh_start start;
  bh__worker_fn run;     /* BH_START_FORK: the worker's life (worker.h) */
} bh__spawn;

/* Starts the worker (the reference's subprocess_workerbee(), without
 * the checks: the caller's options are already in range), or its class's
 * external program (program.h). With last_words, *last_words receives its
 * last-words page (lastword.h), owned, or NULL if none could be made. On
 * failure *why may receive what happened (owned), e.g. an external
 * program's exec failure (BH_ESPAWN), else NULL. */
int bh__spawn_worker(const bh__spawn *s, pid_t *pid, int *channel,
                     char **last_words, char **why);

#endif
