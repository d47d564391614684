/* entry.c - bh_worker_main: what this process is, from its environment:
 * a worker exec-started by its queen (BH_WORKER: worker.c), a worker of
 * another host joining a queen (BH_JOIN: join.c), or neither (the
 * program goes on). */
#include "hive/worker.h"

#include <stdio.h>
#include <stdlib.h>

/* BH_JOIN=host:port (and BH_KEY_FILE): a worker of another host. The
 * variables go before the bee runs, so that a program its tasks start
 * does not join too. */
static int
join_worker(const bh_class *const *classes) {
  char *addr = bh__strdup(getenv("BH_JOIN"));
  char *key = getenv("BH_KEY_FILE") ? bh__strdup(getenv("BH_KEY_FILE"))
                                    : NULL;
  bh_join_opts o = {.address = addr, .key_file = key};
  int rc;

  unsetenv("BH_JOIN");
  unsetenv("BH_KEY_FILE");
  if (key == NULL) {
    fprintf(stderr, "beehive worker: BH_JOIN=%s needs BH_KEY_FILE, the "
            "hive's key file\n", addr ? addr : "");
    rc = 2;
  } else {
    rc = bh_join(&o, classes);
  }
  bh__free(addr);
  bh__free(key);
  return rc;
}

int
bh_worker_main(int argc, char **argv, const bh_class *const *classes) {
  (void)argc;
  (void)argv;
  if (getenv("BH_WORKER") != NULL) {
    unsetenv("BH_WORKER");
    exit(bh__worker_exec(classes));
  }
  if (getenv("BH_JOIN") != NULL)
    exit(join_worker(classes));
  return 0;
}
