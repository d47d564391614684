/* auth.h - the handshake that opens a connection between hosts: nobody
 * joins a hive without its key (docs/PROTOCOL.md, "Joining over TCP").
 *
 * A mutual challenge-response with HMAC-SHA256 over the hive's 256-bit
 * key, in three fixed-size records before any protocol frame:
 *
 *   queen  -> worker  HELLO   "BHA1" 'H' nq[32]
 *   worker -> queen   PROOF   "BHA1" 'P' nw[32] HMAC(K, "beehive worker" nq nw)
 *   queen  -> worker  ACCEPT  "BHA1" 'A' HMAC(K, "beehive queen" nw nq)
 *                 or  REFUSE  "BHA1" 'R' (then the queen closes)
 *
 * The worker proves the key first, so that the queen answers nobody who
 * lacks it; then the queen proves it, so that a worker serves no one but its
 * hive. Fresh random nonces on both sides make a recorded exchange useless
 * the next time, and the role strings keep either side's proof from being
 * played back as the other's. Records have fixed sizes, so nothing before
 * the end of the handshake can make either side buffer more than 69 bytes.
 *
 * This module only computes: the caller moves the bytes (bh__auth_feed,
 * then sends out[0..out_len)) and keeps the deadline. It protects who may
 * join, not what travels afterwards: the connection is not encrypted. */
#ifndef BH_AUTH_H
#define BH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define BH__KEY_LEN 32
#define BH__AUTH_NONCE 32
#define BH__AUTH_MAC 32
#define BH__AUTH_HEAD 5 /* "BHA1" and the record's letter */
#define BH__AUTH_MAX (BH__AUTH_HEAD + BH__AUTH_NONCE + BH__AUTH_MAC)

typedef enum bh__auth_role { BH__AUTH_QUEEN, BH__AUTH_WORKER } bh__auth_role;

/* What bh__auth_feed() says. */
typedef enum bh__auth_rc {
  BH__AUTH_MORE = 0, /* send out[], then feed more bytes */
  BH__AUTH_DONE = 1, /* both proved the key: send out[], then frames */
  BH__AUTH_FAIL = 2  /* why says why; send out[] (a refusal), then close */
} bh__auth_rc;

typedef struct bh__auth {
  bh__auth_role role;
  unsigned char key[BH__KEY_LEN];
  unsigned char mine[BH__AUTH_NONCE];   /* this side's nonce */
  unsigned char theirs[BH__AUTH_NONCE]; /* the peer's */
  char want;                            /* the letter of the next record */
  unsigned char in[BH__AUTH_MAX];       /* the record read so far */
  size_t in_len;
  unsigned char out[BH__AUTH_MAX];      /* what to send now */
  size_t out_len;
  const char *why;                      /* after FAIL: static text */
} bh__auth;

/* Starts a handshake with key. The queen's HELLO is in out[] at once.
 * Returns 0, or -EIO when no random nonce could be drawn. */
int bh__auth_init(bh__auth *a, bh__auth_role role,
                  const unsigned char key[BH__KEY_LEN]);
/* Reads bytes of p[0..n) up to the end of the next record: *used gets how
 * many it read. out[] then holds what to send (the caller clears out_len
 * once it is sent); with MORE, feed the rest of p again. Bytes after DONE
 * are the peer's first frames. */
bh__auth_rc bh__auth_feed(bh__auth *a, const void *p, size_t n,
                          size_t *used);
/* Wipes the key and the nonces. */
void bh__auth_clear(bh__auth *a);

#endif
