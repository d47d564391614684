/* auth.c - see auth.h. */
#include "transport/auth.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>


static const char MAGIC[4] = {'B', 'H', 'A', '1'};
#define WORKER_ROLE "beehive worker"
#define QUEEN_ROLE "beehive queen"

enum { HELLO = 'H', PROOF = 'P', ACCEPT = 'A', REFUSE = 'R', NONE = 0 };

/* The length of each record, by its letter. */
static size_t
record_len(char letter) {
  switch (letter) {
  case HELLO:
    return BH__AUTH_HEAD + BH__AUTH_NONCE;
  case PROOF:
    return BH__AUTH_HEAD + BH__AUTH_NONCE + BH__AUTH_MAC;
  case ACCEPT:
    return BH__AUTH_HEAD + BH__AUTH_MAC;
  default:
    return BH__AUTH_HEAD; /* REFUSE */
  }
}

/* HMAC(key, role || first || second). */
static void
proof(const bh__auth *a, const char *role, const unsigned char *first,
      const unsigned char *second, unsigned char mac[BH__AUTH_MAC]) {
  unsigned char msg[sizeof(WORKER_ROLE) + 2 * BH__AUTH_NONCE];
  size_t rl = strlen(role);
  unsigned int len = BH__AUTH_MAC;

  memcpy(msg, role, rl);
  memcpy(msg + rl, first, BH__AUTH_NONCE);
  memcpy(msg + rl + BH__AUTH_NONCE, second, BH__AUTH_NONCE);
  if (HMAC(EVP_sha256(), a->key, BH__KEY_LEN, msg, rl + 2 * BH__AUTH_NONCE,
           mac, &len) == NULL)
    memset(mac, 0, BH__AUTH_MAC); /* matches no proof: the peer fails */
  OPENSSL_cleanse(msg, sizeof(msg));
}

/* Starts the record `letter` in out[]; returns where its body goes. */
static unsigned char *
put_head(bh__auth *a, char letter) {
  memcpy(a->out, MAGIC, sizeof(MAGIC));
  a->out[sizeof(MAGIC)] = (unsigned char)letter;
  a->out_len = record_len(letter);
  return a->out + BH__AUTH_HEAD;
}

int
bh__auth_init(bh__auth *a, bh__auth_role role,
              const unsigned char key[BH__KEY_LEN]) {
  memset(a, 0, sizeof(*a));
  a->role = role;
  memcpy(a->key, key, BH__KEY_LEN);
  if (RAND_bytes(a->mine, BH__AUTH_NONCE) != 1)
    return -EIO;
  if (role == BH__AUTH_QUEEN) {
    memcpy(put_head(a, HELLO), a->mine, BH__AUTH_NONCE);
    a->want = PROOF;
  } else {
    a->want = HELLO;
  }
  return 0;
}

static bh__auth_rc
fail(bh__auth *a, const char *why) {
  a->why = why;
  a->want = NONE;
  return BH__AUTH_FAIL;
}

/* The worker read HELLO: answer with its nonce and its proof. */
static bh__auth_rc
on_hello(bh__auth *a, const unsigned char *body) {
  unsigned char *out = put_head(a, PROOF);

  memcpy(a->theirs, body, BH__AUTH_NONCE);
  memcpy(out, a->mine, BH__AUTH_NONCE);
  proof(a, WORKER_ROLE, a->theirs, a->mine, out + BH__AUTH_NONCE);
  a->want = ACCEPT;
  return BH__AUTH_MORE;
}

/* The queen read PROOF: check it, then accept with her own or refuse. */
static bh__auth_rc
on_proof(bh__auth *a, const unsigned char *body) {
  unsigned char mac[BH__AUTH_MAC];
  int same;

  memcpy(a->theirs, body, BH__AUTH_NONCE);
  proof(a, WORKER_ROLE, a->mine, a->theirs, mac);
  same = CRYPTO_memcmp(mac, body + BH__AUTH_NONCE, BH__AUTH_MAC) == 0;
  if (!same) {
    put_head(a, REFUSE);
    return fail(a, "authentication failed: the joining worker does not "
                   "have the hive's key");
  }
  proof(a, QUEEN_ROLE, a->theirs, a->mine, put_head(a, ACCEPT));
  a->want = NONE;
  return BH__AUTH_DONE;
}

/* The worker read ACCEPT: the queen must prove the key too. */
static bh__auth_rc
on_accept(bh__auth *a, const unsigned char *body) {
  unsigned char mac[BH__AUTH_MAC];

  proof(a, QUEEN_ROLE, a->mine, a->theirs, mac);
  if (CRYPTO_memcmp(mac, body, BH__AUTH_MAC) != 0)
    return fail(a, "authentication failed: the queen does not have the "
                   "hive's key");
  a->want = NONE;
  return BH__AUTH_DONE;
}

/* A whole record is in in[]: its letter was checked as it arrived. */
static bh__auth_rc
on_record(bh__auth *a) {
  const unsigned char *body = a->in + BH__AUTH_HEAD;
  char letter = (char)a->in[sizeof(MAGIC)];

  a->in_len = 0;
  switch (letter) {
  case HELLO:
    return on_hello(a, body);
  case PROOF:
    return on_proof(a, body);
  case ACCEPT:
    return on_accept(a, body);
  default:
    return fail(a, "authentication failed: the queen refused this "
                   "worker's key");
  }
}

/* Checks the head bytes as they arrive, so that garbage fails at its
 * first wrong byte. */
static bool
head_ok(const bh__auth *a, size_t at, unsigned char c) {
  if (at < sizeof(MAGIC))
    return c == (unsigned char)MAGIC[at];
  return c == (unsigned char)a->want ||
         (a->role == BH__AUTH_WORKER && a->want == ACCEPT && c == REFUSE);
}

bh__auth_rc
bh__auth_feed(bh__auth *a, const void *p, size_t n, size_t *used) {
  const unsigned char *s = p;
  size_t i = 0;

  *used = 0;
  if (a->want == NONE)
    return a->why != NULL ? BH__AUTH_FAIL : BH__AUTH_DONE;
  while (i < n) {
    if (a->in_len < BH__AUTH_HEAD && !head_ok(a, a->in_len, s[i])) {
      *used = i + 1;
      if (a->role == BH__AUTH_QUEEN)
        put_head(a, REFUSE);
      return fail(a, "authentication failed: the peer does not speak "
                     "beehive's handshake");
    }
    a->in[a->in_len++] = s[i++];
    if (a->in_len >= BH__AUTH_HEAD &&
        a->in_len == record_len((char)a->in[sizeof(MAGIC)])) {
      *used = i; /* one record at a time: its answer leaves first */
      return on_record(a);
    }
  }
  *used = i;
  return BH__AUTH_MORE;
}

void
bh__auth_clear(bh__auth *a) {
  OPENSSL_cleanse(a, sizeof(*a));
}
