/* door.h - the queen's door (door.c): a TCP listener where workers of
 * other hosts join her hive, once they have proved its key (tcp.h). Each
 * one becomes a remote child (child.h) that gets the bootstrap frame
 * first, as an exec-started worker does, and then the queen's offers. */
#ifndef BH_DOOR_H
#define BH_DOOR_H

#include "hive/bee.h"

typedef struct bh__door_opts {
  const char *listen;       /* "host:port" (tcp.h) */
  const unsigned char *key; /* BH__KEY_LEN bytes, copied; or NULL and: */
  const char *key_file;     /* the key's file (key.h), made when missing */
  unsigned heartbeat_ms;    /* 0: the transport's default */
  unsigned handshake_ms;    /* 0: the transport's default */
  /* A worker joined (after its bootstrap was queued and the delegations
   * heard of it). */
  void (*joined)(bh_bee *bee, bh__child *c, void *arg);
  void *arg;
} bh__door_opts;

/* Opens the queen's door. Returns 0, or an error with why ("address
 * 'x:y': ..."). */
int bh__door_open(bh_bee *bee, const bh__door_opts *o, char *why,
                  size_t len);
/* The address the door listens on, as bound ("0.0.0.0:40312"); NULL when
 * the bee has none. */
const char *bh__door_addr(const bh_bee *bee);
/* Workers that joined so far (whether they live or not). */
size_t bh__door_joined(const bh_bee *bee);
/* Closes the door: nobody joins any more (the hive is ending). The
 * workers that joined stay. Idempotent. */
void bh__door_close(bh_bee *bee);
/* Closes it and frees it (the bee's end). */
void bh__door_free(bh_bee *bee);

#endif
