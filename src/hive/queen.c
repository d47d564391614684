/* queen.c - the queen's side of the hive: she is a bee with a worker
 * class, and she spawns her workers as subprocesses. Spawning them, growth,
 * shrinking and replacement are the population manager's (pop.c). */
#include "hive/deleg.h"
#include "hive/queen.h"

int
bh__queen_setup(bh_bee *bee, const bh_class *wc, const bh_value *args,
                const bh_value *kwargs, int n, const bh__wcfg *cfg,
                bh_start start, bh__worker_fn run, const bh__pop_opts *po,
                char **why) {
  bh__pop_opts o = po ? *po : (bh__pop_opts){0};
  int rc;

  if (wc == NULL)
    return BH_EINVAL;
  if (o.min < 0) /* remote workers only (bh_run_opts.workers -1) */
    n = 0;
  else
    n = n > 0 ? n : (o.min > 0 ? o.min : 1);
  bh__pop_opts_norm(&o, n);
  bee->worker_class = wc;
  if (args != NULL)
    bee->w_args = bh_value_from_object(bh_value_object(args));
  if (kwargs != NULL)
    bee->w_kwargs = bh_value_from_object(bh_value_object(kwargs));
  if ((args != NULL && bee->w_args == NULL) ||
      (kwargs != NULL && bee->w_kwargs == NULL))
    return BH_ENOMEM;
  if (bh__wcfg_copy(&bee->w_cfg, cfg) != 0)
    return BH_ENOMEM;
  bee->w_start = start;
  bee->w_run = run;
  rc = bh__pop_start(bee, &o, bh__deleg_pump);
  return rc != 0 ? rc : bh__pop_spawn(bee, n, why);
}
