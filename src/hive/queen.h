/* queen.h - making a bee a queen (queen.c). */
#ifndef BH_QUEEN_H
#define BH_QUEEN_H

#include "hive/bee.h"
#include "hive/pop.h"
#include "hive/wcfg.h"

/* Makes bee a queen of workers of class wc and spawns n of them (0: 1),
 * started by `start`; a worker started by fork runs `run` in its new
 * process (worker.h). A worker that could not be started may leave why
 * (owned) in *why, when why is not NULL (bh__spawn_worker). */
int bh__queen_setup(bh_bee *bee, const bh_class *wc, const bh_value *args,
                    const bh_value *kwargs, int n, const bh__wcfg *cfg,
                    bh_start start, bh__worker_fn run,
                    const bh__pop_opts *po, char **why);

#endif
