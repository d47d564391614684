/* fuzz_auth.c - libFuzzer target for the handshake between hosts
 * (src/transport/auth.c): whatever a peer sends before it is
 * authenticated, each side reads no more than it may, keeps its record
 * buffer bounded, never accepts without the key, and reads nothing after
 * it failed.
 *
 * The input's first byte picks the role under attack and the size of each
 * read (1 to 16 bytes, or all at once); the rest is what the peer sends.
 * Built and run by `make fuzz` (Makefile), like fuzz_wire.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_auth.c:%d: check failed: %s\n", __LINE__, #cond);  \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static const unsigned char KEY[BH__KEY_LEN] = {42};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  bh__auth a;
  bh__auth_rc rc = BH__AUTH_MORE;
  size_t at = 1, chunk, used;

  if (size < 1)
    return 0;
  chunk = data[0] & 0x0f; /* 0: all at once */
  if (bh__auth_init(&a, (data[0] & 0x10) ? BH__AUTH_WORKER : BH__AUTH_QUEEN,
                    KEY) != 0)
    return 0;
  while (at < size && rc == BH__AUTH_MORE) {
    size_t n = chunk == 0 || chunk > size - at ? size - at : chunk;

    a.out_len = 0;
    rc = bh__auth_feed(&a, data + at, n, &used);
    CHECK(used <= n);
    CHECK(used > 0 || rc != BH__AUTH_MORE);
    CHECK(a.in_len < BH__AUTH_MAX);
    CHECK(a.out_len <= BH__AUTH_MAX);
    at += used;
  }
  /* Nobody without the key gets in: a worker's ACCEPT or a queen's PROOF
   * would need HMAC over a fresh nonce. */
  CHECK(rc != BH__AUTH_DONE);
  if (rc == BH__AUTH_FAIL) {
    CHECK(a.why != NULL);
    CHECK(bh__auth_feed(&a, "BHA1", 4, &used) == BH__AUTH_FAIL && used == 0);
  }
  bh__auth_clear(&a);
  return 0;
}
