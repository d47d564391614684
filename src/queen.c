/* queen.c - the queen's side of the hive: she is a bee with a worker
 * class, and she spawns her workers as subprocesses. Growth, shrinking and
 * replacement of workers are the population manager's (a later module). */
#include "pop.h"

int
bh__conc_norm(int n) {
  return n == 0 ? 1024 : (n < 0 ? -1 : n);
}

int
bh__queen_spawn(bh_bee *bee, int n, char **why) {
  const bh__wcfg *cfg = &bee->w_cfg;
  int i, rc;

  for (i = 0; i < n; i++) {
    bh__spawn s = {.cls = bee->worker_class, .id = bee->next_kid,
                   .init_args = bee->w_args, .init_kwargs = bee->w_kwargs,
                   .cfg = cfg, .logger = bee->log, .start = bee->w_start};
    char *last_words, *err;
    pid_t pid;
    int fd;

    rc = bh__spawn_worker(&s, &pid, &fd, &last_words, &err);
    if (rc == 0)
      rc = bh__child_add(bee, fd, pid,
                         cfg->max_concurrency < 0
                             ? -1
                             : (int)(cfg->max_concurrency + cfg->prefetch),
                         last_words, NULL);
    if (rc != 0) {
      bh_log(bee->log, BH_LOG_ERROR, "queen %lld: could not spawn a worker: "
             "%s", (long long)bee->id, err ? err : bh_strerror(rc));
      if (why != NULL)
        *why = err;
      else
        bh__free(err);
      return rc;
    }
    bh_log(bee->log, BH_LOG_DEBUG, "queen %lld: spawned worker bee %lld "
           "(pid %d)", (long long)bee->id, (long long)s.id, (int)pid);
  }
  return 0;
}

int
bh__queen_setup(bh_bee *bee, const bh_class *wc, const bh_value *args,
                const bh_value *kwargs, int n, const bh__wcfg *cfg,
                bh_start start, const bh__pop_opts *po, char **why) {
  bh__pop_opts o = po ? *po : (bh__pop_opts){0};
  int rc;

  if (wc == NULL)
    return BH_EINVAL;
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
  rc = bh__pop_start(bee, &o);
  return rc != 0 ? rc : bh__queen_spawn(bee, n, why);
}
