/* servers.h - real servers on loopback for the tests and benchmarks,
 * started and stopped by them (the programs and configs in tests/servers/):
 *
 *   S3:   s3rver (npm, a store that takes any signature) behind
 *         tests/servers/s3_proxy.py, which checks every request's AWS
 *         Signature V4 as S3 does (botocore's signer) and answers S3's XML
 *         errors (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied,
 *         XAmzContentSHA256Mismatch...). Clients talk to the proxy.
 *   HTTP: nginx with the echo module: files at once or after a delay,
 *         chosen statuses, stub_status (tests/servers/nginx.conf.in);
 *         optionally the same over TLS with HTTP/2, with a self-signed
 *         certificate made at its start (`openssl` on PATH).
 *
 * Each server runs under a keeper process of its own: when the caller stops
 * it, or dies in any way, the keeper kills the server's process group and
 * reaps all of it, so nothing outlives the test. Start and stop in the same
 * process; not thread-safe. Needs what `make test` installs (Debian's
 * nginx-light, libnginx-mod-http-echo, python3-aiohttp, python3-botocore;
 * s3rver from scripts/npm-deps.sh). Functions return 0, or -1 with a
 * message on stderr. */
#ifndef BH_TEST_SERVERS_H
#define BH_TEST_SERVERS_H

#include <sys/types.h>

/* A server process and its keeper. */
typedef struct bh_test_proc {
  pid_t keeper; /* our child: it reaps the server, then exits */
  pid_t pid;    /* the server (nginx's master), the keeper's child */
  int life;     /* write end of the keeper's pipe: closing it stops all */
  int out;      /* read end of the server's stdout */
} bh_test_proc;

/* ---- S3 ---------------------------------------------------------------- */

typedef struct bh_test_s3 {
  char endpoint[64];   /* "http://127.0.0.1:PORT": the proxy, for clients */
  char store[64];      /* s3rver itself, unchecked (for setup shortcuts) */
  char region[32];     /* the only region the proxy takes: us-east-1 */
  char access_key[64], secret_key[128]; /* a plain key pair */
  /* A second pair whose requests must carry x-amz-security-token. */
  char token_access_key[64], token_secret_key[128], session_token[128];
  char dir[256];       /* this run's directory: data/, keys (removed) */
  bh_test_proc s3rver, proxy;
  long own_queries;    /* stats queries made, not counted as the client's */
} bh_test_s3;

/* Starts s3rver in a fresh directory and the proxy in front of it, with
 * the buckets named in `buckets` (NULL-terminated; NULL for none) already
 * made; returns once both answer. */
int bh_test_s3_start(bh_test_s3 *s, const char *const *buckets);
/* Stops both and removes the directory; after it no process of theirs is
 * left (zombies included). Accepts a struct never started or stopped. */
void bh_test_s3_stop(bh_test_s3 *s);
/* The proxy's counts (GET /__proxy/stats): client connections it accepted
 * and requests it saw, the fixture's own stats queries left out. Either
 * pointer may be NULL. */
int bh_test_s3_connections(bh_test_s3 *s, long *accepted, long *requests);
/* From now on every response body leaves the proxy at `bytes_per_s` at
 * most (GET /__proxy/throttle): a slow network; 0 lifts the limit. */
int bh_test_s3_throttle(bh_test_s3 *s, long bytes_per_s);
/* Responses the proxy cut short because their client left, and the body
 * bytes it had sent of them. Either pointer may be NULL. */
int bh_test_s3_cut(bh_test_s3 *s, long *responses, long *bytes);

/* ---- HTTP -------------------------------------------------------------- */

typedef struct bh_test_http {
  char base[64];      /* "http://127.0.0.1:PORT" */
  int port;
  /* bh_test_http_start_tls only (else "", 0, ""): the same locations
   * over TLS, HTTP/2 offered by ALPN, and the certificate to trust (PEM,
   * self-signed, for IP 127.0.0.1 and DNS localhost; in dir). */
  char tls_base[64];  /* "https://127.0.0.1:PORT" */
  int tls_port;
  char ca_file[300];
  char dir[256];      /* nginx's run directory: config, logs (removed) */
  bh_test_proc nginx;
  long own_accepts, own_requests; /* the fixture's own status queries */
} bh_test_http;

/* Starts nginx serving `docroot` (an absolute path, borrowed) on a free
 * port; returns once it answers. `workers`: 1 or 2 (0: 2). Raises the
 * caller's descriptor limit first (bh_test_raise_nofile), so that nginx
 * and the caller can each hold 10,000+ connections where the hard limit
 * allows. */
int bh_test_http_start(bh_test_http *h, const char *docroot, int workers);
/* The same, listening on IPv4 address `also` too (the same port): the
 * gateway of a netns.h host, say, so that workers in the hosts reach it
 * (base stays 127.0.0.1's). */
int bh_test_http_start_also(bh_test_http *h, const char *docroot,
                            int workers, const char *also);
/* The same, plus the TLS listener (tls_base, ca_file). */
int bh_test_http_start_tls(bh_test_http *h, const char *docroot,
                           int workers);
void bh_test_http_stop(bh_test_http *h);
/* stub_status: connections accepted and requests served, the fixture's own
 * status queries left out. Either pointer may be NULL. */
int bh_test_http_connections(bh_test_http *h, long *accepted,
                             long *requests);

/* ---- Shared ------------------------------------------------------------ */

/* Raises this process's RLIMIT_NOFILE soft limit to `want`, or to the hard
 * limit if lower (raising the hard limit needs CAP_SYS_RESOURCE); returns
 * the soft limit now in force. */
long bh_test_raise_nofile(long want);
/* A one-shot HTTP/1.1 GET of `path` on 127.0.0.1:port (Connection: close):
 * the status, and the body (NUL-terminated, cut to bodylen - 1) if body is
 * not NULL; -1 on a connection error or after timeout_ms. */
int bh_test_http_get(int port, const char *path, char *body, size_t bodylen,
                     int timeout_ms);

/* A TCP port of 127.0.0.1 that nobody uses now (the kernel's pick,
 * released again: someone may take it before the caller does); -1 if
 * none. */
int bh_test_free_port(void);

/* Where the server scripts are (tests/servers/ in the source tree), and
 * Debian's Python with aiohttp and botocore. */
const char *bh_test_servers_dir(void);
#define BH_TEST_PYTHON "/usr/bin/python3"

#endif
