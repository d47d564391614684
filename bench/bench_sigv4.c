/* bench_sigv4.c - the cost of signing one S3 request (src/io/sigv4.c): a
 * ranged GET of a key with a space, a ListObjectsV2 query, temporary
 * credentials (a 600-byte session token) and UNSIGNED-PAYLOAD.
 *
 *   sigv4_sign_ns            bh__sigv4_sign + bh__sigv4_out_free, the
 *                            signing key derived every time (4 HMACs more)
 *   sigv4_sign_kept_key_ns   the same with the key kept (bh__sigv4_key),
 *                            as a client signing on the same day does
 *   sigv4_sha256_1k_ns       bh__sha256_hex of a 1 KiB body
 *
 * Times are the process's CPU time per operation: the loop never blocks,
 * and on a shared machine the wall clock would count other programs' turns.
 *
 * Usage: bench_sigv4 [n]  (env BENCH_SIGV4_N; default 200000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "io/sigv4.h"

static char token[601];

static int64_t
cpu_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bh__sigv4_req
request(void) {
  static const bh__kv query[] = {{"list-type", "2"},
                                 {"prefix", "logs/2024 05/"},
                                 {"continuation-token", "1ab+/c=="}};
  static const bh__kv headers[] = {{"Range", "bytes=0-1048575"}};
  bh__sigv4_req r = {0};

  memset(token, 'T', sizeof(token) - 1);
  r.method = "GET";
  r.host = "bucket.s3.eu-west-3.amazonaws.com";
  r.path = "/dir/key with space.bin";
  r.query = query;
  r.n_query = 3;
  r.headers = headers;
  r.n_headers = 1;
  r.payload_hash = "UNSIGNED-PAYLOAD";
  r.region = "eu-west-3";
  r.service = "s3";
  r.access_key = "ASIAIOSFODNN7EXAMPLE";
  r.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  r.session_token = token;
  r.when = 1717000000;
  return r;
}

/* ns per signing, with or without a kept key. */
static double
time_signing(long n, bh__sigv4_key *kept) {
  bh__sigv4_req r = request();
  bh__sigv4_out o;
  int64_t t0;
  long i;

  t0 = cpu_ns();
  for (i = 0; i < n; i++) {
    if (bh__sigv4_sign(&r, kept, &o) != 0)
      bench_die("bh__sigv4_sign", 1, NULL);
    bh__sigv4_out_free(&o);
  }
  return (double)(cpu_ns() - t0) / (double)n;
}

int
main(int argc, char **argv) {
  long i, n = bench_arg(argc, argv, 1, "BENCH_SIGV4_N", 200000);
  bh__sigv4_key kept = {0};
  char body[1024], hex[65];
  int64_t t0;

  time_signing(n / 10 + 1, NULL); /* warm-up */
  bench_out("sigv4_sign_ns", time_signing(n, NULL), "ns");
  bench_out("sigv4_sign_kept_key_ns", time_signing(n, &kept), "ns");
  memset(body, 'b', sizeof(body));
  t0 = cpu_ns();
  for (i = 0; i < n; i++)
    bh__sha256_hex(body, sizeof(body), hex);
  bench_out("sigv4_sha256_1k_ns", (double)(cpu_ns() - t0) / (double)n,
            "ns");
  bh__sigv4_key_clear(&kept);
  return 0;
}
