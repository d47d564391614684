/* worker.h - a worker process's life (worker.c): its bee on the channel
 * to its parent, from the fork or from the exec entry point. */
#ifndef BH_WORKER_H
#define BH_WORKER_H

#include "hive/spawn.h"

/* Runs a worker bee on fd in this process until its life ends; returns the
 * process exit status (a bh__worker_fn). */
int bh__worker_run(const bh__spawn *s, int fd, const msgpack_object *args,
                   const msgpack_object *kwargs);
/* The same on loop (initialised, and closed by the caller), on fd or on
 * t when not NULL (a joined worker's link, tcp.h; fd then -1). */
int bh__worker_run_on(uv_loop_t *loop, const bh__spawn *s, int fd,
                      struct bh__transport *t, const msgpack_object *args,
                      const msgpack_object *kwargs);
/* Reads a bootstrap frame from fd (blocking or not) within the deadline
 * (bh_now() ms; -1: none). Returns its body, owned (*len bytes), or NULL
 * with *err (BH_ETIMEDOUT, BH_EPROTO: the stream ended, BH_EMSGSIZE,
 * BH_ENOMEM). */
char *bh__worker_read_boot(int fd, int64_t deadline, size_t *len, int *err);
/* Decodes a bootstrap body into m (its objects in zone) and fills s and
 * cfg (owned: bh__wcfg_clear), checked as bh_run() checks its options.
 * 0, or BH_EPROTO with why ("beehive worker: bad bootstrap: ..."). */
int bh__worker_boot(const char *body, size_t len,
                    const bh_class *const *classes, msgpack_zone *zone,
                    bh__msg *m, bh__spawn *s, bh__wcfg *cfg, char *why,
                    size_t wlen);

/* An exec-started worker: its bootstrap frame on BH__BOOT_FD, then its
 * life. Returns the process's exit status (bh_worker_main's). */
int bh__worker_exec(const bh_class *const *classes);

#endif
