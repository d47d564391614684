/* make.h - a bee put together and taken apart (make.c). */
#ifndef BH_MAKE_H
#define BH_MAKE_H

#include "hive/bee.h"
#include "io/http.h"

typedef struct bh__bee_opts {
  const bh_class *cls;
  int64_t id;
  int max_conc;
  int prefetch;
  bh_logger *log;
  const bh_context *ctx;
  size_t max_frame;
  int64_t pickup_ms;
  bh__http_opts http;    /* the limits of its HTTP session */
  void (*on_dead)(bh_bee *bee);
  void (*on_orphan)(bh_bee *bee);
  void *owner;
  /* The link to the parent when it is not a descriptor of this host (a
   * joined worker's TCP transport): then parent_fd is -1. Owned by the
   * bee even on failure. */
  struct bh__transport *parent_t;
} bh__bee_opts;

/* Makes a bee on `loop` with parent channel fd (-1: root, or the
 * parent_t of o; the bee owns it even on failure). Returns 0 or an
 * error. */
int bh__bee_new(bh_bee **out, uv_loop_t *loop, int parent_fd,
                const bh__bee_opts *o);
/* Runs the class's init (state, context, init hook). Returns 0, or an
 * error with *err_text owned (may be NULL). */
int bh__bee_init(bh_bee *bee, const msgpack_object *args,
                 const msgpack_object *kwargs, char **err_text);
void bh__bee_free(bh_bee *bee);
/* Adopts a child of the bee connected on fd (pid 0: in-process) that
 * takes `capacity` tasks at once (-1: no limit), as bh__kids_add with the
 * bee's next child id and no prefetch. */
int bh__child_add(bh_bee *bee, int fd, pid_t pid, int capacity,
                  char *last_words, bh__child **out);

#endif
