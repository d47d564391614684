/* test_servers.c - the fixture's real servers (servers.h): the SigV4 proxy
 * refuses what S3 refuses and passes what botocore signs, s3rver behind it
 * does what the S3 client will need, nginx serves, delays (without
 * blocking), answers chosen statuses and counts connections, and nothing
 * is left running after a stop or after the test process dies.
 * Signed requests come from tests/servers/s3_client.py (botocore) and
 * curl --aws-sigv4; plain ones from curl and bh_test_http_get. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "servers.h"

static const char *const BUCKETS[] = {"bh-test", NULL};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the shell command (printf-style) and collects its stdout in out:
 * the exit status, or -1. */
static int run(char *out, size_t len, const char *fmt, ...) {
  char cmd[4096];
  size_t n = 0;
  va_list ap;
  FILE *f;
  int st;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  f = popen(cmd, "r");
  if (f == NULL)
    return -1;
  while (n + 1 < len && !feof(f)) {
    size_t r = fread(out + n, 1, len - n - 1, f);
    if (r == 0)
      break;
    n += r;
  }
  out[n] = '\0';
  st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* s3_client.py with the plain key pair and `args`: the HTTP status it
 * printed (its output in out), or -1. */
static int s3c(bh_test_s3 *s, char *out, size_t len, const char *args) {
  int status = -1;

  if (run(out, len,
          "%s %s/s3_client.py --endpoint %s --key %s --secret '%s' %s",
          BH_TEST_PYTHON, bh_test_servers_dir(), s->endpoint, s->access_key,
          s->secret_key, args) != 0 ||
      sscanf(out, "HTTP %d", &status) != 1) {
    fprintf(stderr, "s3_client.py %s: %s\n", args, out);
    return -1;
  }
  return status;
}

/* curl's status code for `url` (extra curl arguments in args). */
static int curl_status(const char *args, const char *url) {
  char out[64];
  int code = -1;

  if (run(out, sizeof(out), "curl -s -o /dev/null -w '%%{http_code}' %s '%s'",
          args, url) != 0 ||
      sscanf(out, "%d", &code) != 1)
    return -1;
  return code;
}

/* ---- The proxy's refusals ---------------------------------------------- */

TEST(s3_accepts_botocore) {
  bh_test_s3 s;
  char out[8192];

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "PUT /bh-test/a/b.txt --body hi"),
                200);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "GET /bh-test/a/b.txt"), 200);
  ASSERT_STR_EQ(out, "HTTP 200\nhi");
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "--show-headers HEAD /bh-test/a/b.txt"),
                200);
  ASSERT(strstr(out, "Content-Length: 2\n") != NULL);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out),
                    "GET /bh-test list-type=2 prefix=a/"),
                200);
  ASSERT(strstr(out, "<Key>a/b.txt</Key>") != NULL);
  /* Keys that need escaping, signed as botocore escapes them. */
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out),
                    "PUT '/bh-test/odd/a b+c~!*'\\''()=&?.txt' --body odd"),
                200);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out),
                    "GET /bh-test list-type=2 'prefix=odd/a b+'"),
                200);
  ASSERT(strstr(out, "<Key>odd/a b+c~!*&#x27;()=&amp;?.txt</Key>") != NULL);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out),
                    "--unsigned-payload PUT /bh-test/u --body unsigned"),
                200);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "DELETE /bh-test/u"), 204);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "GET /bh-test/u"), 404);
  bh_test_s3_stop(&s);
  return 0;
}

/* The request refused with `status` and `code`, and nothing stored: the
 * object is not in s3rver, asked directly. */
static int refused(bh_test_s3 *s, const char *args, int status,
                   const char *code) {
  char out[8192], url[256], want[64];

  ASSERT_INT_EQ(s3c(s, out, sizeof(out), args), status);
  snprintf(want, sizeof(want), "<Code>%s</Code>", code);
  ASSERT(strstr(out, want) != NULL);
  ASSERT(strstr(out, "<RequestId>") != NULL);
  snprintf(url, sizeof(url), "%s/bh-test/refused", s->store);
  ASSERT_INT_EQ(curl_status("", url), 404);
  return 0;
}

TEST(s3_refuses_wrong_secret) {
  bh_test_s3 s;

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT(refused(&s, "--secret wrong PUT /bh-test/refused --body x", 403,
                 "SignatureDoesNotMatch") == 0);
  bh_test_s3_stop(&s);
  return 0;
}

TEST(s3_refuses_unknown_key) {
  bh_test_s3 s;

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT(refused(&s, "--key AKIDUNKNOWN PUT /bh-test/refused --body x", 403,
                 "InvalidAccessKeyId") == 0);
  bh_test_s3_stop(&s);
  return 0;
}

TEST(s3_refuses_missing_signature) {
  bh_test_s3 s;

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT(refused(&s, "--no-auth PUT /bh-test/refused --body x", 403,
                 "AccessDenied") == 0);
  bh_test_s3_stop(&s);
  return 0;
}

/* The body changed after signing: S3 answers 400 for this one. */
TEST(s3_refuses_tampered_body) {
  bh_test_s3 s;

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT(refused(&s, "--tamper-body PUT /bh-test/refused --body xyz", 400,
                 "XAmzContentSHA256Mismatch") == 0);
  bh_test_s3_stop(&s);
  return 0;
}

/* A key given a session token takes only requests that carry it. */
TEST(s3_session_token) {
  bh_test_s3 s;
  char out[8192], args[512];

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  snprintf(args, sizeof(args), "--key %s --secret '%s' GET /bh-test/x",
           s.token_access_key, s.token_secret_key);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), args), 403);
  ASSERT(strstr(out, "<Code>InvalidAccessKeyId</Code>") != NULL);
  snprintf(args, sizeof(args), "--key %s --secret '%s' --token wrong "
           "GET /bh-test/x", s.token_access_key, s.token_secret_key);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), args), 400);
  ASSERT(strstr(out, "<Code>InvalidToken</Code>") != NULL);
  snprintf(args, sizeof(args), "--key %s --secret '%s' --token '%s' "
           "GET /bh-test/x", s.token_access_key, s.token_secret_key,
           s.session_token);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), args), 404); /* through to s3rver */
  ASSERT(strstr(out, "<Code>NoSuchKey</Code>") != NULL);
  bh_test_s3_stop(&s);
  return 0;
}

/* ---- What s3rver does behind it ----------------------------------------- */

TEST(s3_errors) {
  bh_test_s3 s;
  char out[8192];

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "GET /bh-test/none"), 404);
  ASSERT(strstr(out, "<Code>NoSuchKey</Code>") != NULL);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "GET /no-bucket/x"), 404);
  ASSERT(strstr(out, "<Code>NoSuchBucket</Code>") != NULL);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "GET /no-bucket list-type=2"), 404);
  ASSERT(strstr(out, "<Code>NoSuchBucket</Code>") != NULL);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "HEAD /bh-test/none"), 404);
  bh_test_s3_stop(&s);
  return 0;
}

TEST(s3_range) {
  bh_test_s3 s;
  char out[8192];

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "PUT /bh-test/r --body 0123456789"),
                200);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out),
                    "--show-headers --header Range:bytes=2-5 GET /bh-test/r"),
                206);
  ASSERT(strstr(out, "Content-Range: bytes 2-5/10\n") != NULL);
  ASSERT(strstr(out, "\n\n2345") != NULL);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out),
                    "--header Range:bytes=20-30 GET /bh-test/r"),
                416);
  ASSERT(strstr(out, "<Code>InvalidRange</Code>") != NULL);
  bh_test_s3_stop(&s);
  return 0;
}

/* NextContinuationToken out of a listing, or "" */
static void next_token(const char *out, char *token, size_t len) {
  const char *a = strstr(out, "<NextContinuationToken>"), *b;

  token[0] = '\0';
  if (a != NULL && (b = strstr(a, "</")) != NULL) {
    a += strlen("<NextContinuationToken>");
    snprintf(token, len, "%.*s", (int)(b - a), a);
  }
}

/* Pages of 2 over 5 keys; the tokens hold '+', '/' and '=', which the
 * query must carry escaped. */
TEST(s3_list_pages) {
  bh_test_s3 s;
  char out[8192], args[512], token[256];

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  for (int i = 0; i < 5; i++) {
    snprintf(args, sizeof(args), "PUT /bh-test/p/k%d --body %d", i, i);
    ASSERT_INT_EQ(s3c(&s, out, sizeof(out), args), 200);
  }
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "PUT /bh-test/q --body q"), 200);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out),
                    "GET /bh-test list-type=2 prefix=p/ max-keys=2"),
                200);
  ASSERT(strstr(out, "<Key>p/k0</Key><") != NULL);
  ASSERT(strstr(out, "<Key>p/k1</Key><") != NULL);
  ASSERT(strstr(out, "<IsTruncated>true</IsTruncated>") != NULL);
  for (int page = 1; page < 3; page++) {
    next_token(out, token, sizeof(token));
    ASSERT(token[0] != '\0');
    snprintf(args, sizeof(args),
             "GET /bh-test list-type=2 prefix=p/ max-keys=2 "
             "'continuation-token=%s'", token);
    ASSERT_INT_EQ(s3c(&s, out, sizeof(out), args), 200);
  }
  ASSERT(strstr(out, "<Key>p/k4</Key><") != NULL);
  ASSERT(strstr(out, "<KeyCount>1</KeyCount>") != NULL);
  ASSERT(strstr(out, "<IsTruncated>false</IsTruncated>") != NULL);
  ASSERT(strstr(out, "<Key>q</Key>") == NULL);
  bh_test_s3_stop(&s);
  return 0;
}

/* 64 MiB each way, hashed and unhashed, streamed by the proxy. */
TEST(s3_large_object) {
  bh_test_s3 s;
  char out[8192], put[128];

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT_INT_EQ(s3c(&s, put, sizeof(put),
                    "PUT /bh-test/big --body-bytes 67108864"),
                200);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "--sha256 GET /bh-test/big"), 200);
  ASSERT_STR_EQ(out, "HTTP 200\n67108864 281e519df3077b557c6b03f5da83c4e8d3"
                     "97219259615dd7c3308f89cae8f2a6\n");
  ASSERT_INT_EQ(s3c(&s, put, sizeof(put),
                    "--unsigned-payload PUT /bh-test/big2 "
                    "--body-bytes 67108864"),
                200);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "--sha256 GET /bh-test/big2"), 200);
  ASSERT_STR_EQ(out, "HTTP 200\n67108864 281e519df3077b557c6b03f5da83c4e8d3"
                     "97219259615dd7c3308f89cae8f2a6\n");
  bh_test_s3_stop(&s);
  return 0;
}

/* curl --aws-sigv4 with two URLs: one connection, two requests. curl 7.88
 * does not send x-amz-content-sha256 (S3 wants it), so it is given. */
TEST(s3_counts_connections) {
  bh_test_s3 s;
  char out[512];
  long c0, r0, c1, r1;

  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT_INT_EQ(s3c(&s, out, sizeof(out), "PUT /bh-test/c --body c"), 200);
  ASSERT(bh_test_s3_connections(&s, &c0, &r0) == 0);
  ASSERT_INT_EQ(c0, 1);
  ASSERT_INT_EQ(r0, 1);
  ASSERT_INT_EQ(run(out, sizeof(out),
                    "curl -s --aws-sigv4 aws:amz:%s:s3 --user '%s:%s' "
                    "-H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb9"
                    "2427ae41e4649b934ca495991b7852b855' "
                    "%s/bh-test/c %s/bh-test/c",
                    s.region, s.access_key, s.secret_key, s.endpoint,
                    s.endpoint),
                0);
  ASSERT_STR_EQ(out, "cc");
  ASSERT(bh_test_s3_connections(&s, &c1, &r1) == 0);
  ASSERT_INT_EQ(c1 - c0, 1);
  ASSERT_INT_EQ(r1 - r0, 2);
  bh_test_s3_stop(&s);
  return 0;
}

/* ---- nginx -------------------------------------------------------------- */

typedef struct docroot {
  char dir[256];
} docroot;

static int docroot_make(docroot *d) {
  char path[300];
  FILE *f;

  snprintf(d->dir, sizeof(d->dir), "/tmp/bh-docroot-XXXXXX");
  if (mkdtemp(d->dir) == NULL)
    return -1;
  chmod(d->dir, 0755);
  snprintf(path, sizeof(path), "%s/hello.txt", d->dir);
  f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fputs("hello\n", f);
  return fclose(f);
}

static void docroot_remove(docroot *d) {
  char path[300];

  snprintf(path, sizeof(path), "%s/hello.txt", d->dir);
  unlink(path);
  rmdir(d->dir);
}

TEST(http_serves_files_and_statuses) {
  docroot d;
  bh_test_http h;
  char body[256], url[256];

  ASSERT(docroot_make(&d) == 0);
  ASSERT(bh_test_http_start(&h, d.dir, 1) == 0);
  ASSERT_INT_EQ(bh_test_http_get(h.port, "/hello.txt", body, sizeof(body),
                                 5000),
                200);
  ASSERT_STR_EQ(body, "hello\n");
  ASSERT_INT_EQ(bh_test_http_get(h.port, "/none", NULL, 0, 5000), 404);
  snprintf(url, sizeof(url), "%s/status/503", h.base);
  ASSERT_INT_EQ(curl_status("", url), 503);
  snprintf(url, sizeof(url), "%s/status/429", h.base);
  ASSERT_INT_EQ(curl_status("", url), 429);
  snprintf(url, sizeof(url), "%s/status/204", h.base);
  ASSERT_INT_EQ(curl_status("", url), 204);
  /* /drop closes without an answer. */
  ASSERT_INT_EQ(bh_test_http_get(h.port, "/drop", NULL, 0, 5000), -1);
  bh_test_http_stop(&h);
  docroot_remove(&d);
  return 0;
}

/* GET path, timed: its status, the seconds in *took. */
static int timed_get(bh_test_http *h, const char *path, char *body,
                     size_t len, double *took) {
  double t0 = now_s();
  int st = bh_test_http_get(h->port, path, body, len, 10000);

  *took = now_s() - t0;
  return st;
}

TEST(http_delays) {
  docroot d;
  bh_test_http h;
  char body[256];
  double took;

  ASSERT(docroot_make(&d) == 0);
  ASSERT(bh_test_http_start(&h, d.dir, 2) == 0);
  ASSERT_INT_EQ(timed_get(&h, "/delay/20/hello.txt", body, sizeof(body),
                          &took),
                200);
  ASSERT_STR_EQ(body, "hello\n");
  ASSERT(took >= 0.020);
  ASSERT_INT_EQ(timed_get(&h, "/delay/150/hello.txt", body, sizeof(body),
                          &took),
                200);
  ASSERT(took >= 0.150);
  ASSERT_INT_EQ(timed_get(&h, "/delay/1200/hello.txt", body, sizeof(body),
                          &took),
                200);
  ASSERT(took >= 1.2);
  ASSERT_INT_EQ(timed_get(&h, "/delay/20/status/503", NULL, 0, &took), 503);
  ASSERT(took >= 0.020);
  bh_test_http_stop(&h);
  docroot_remove(&d);
  return 0;
}

/* Opens n connections to port and sends each `req`: 0, or -1. */
static int open_all(int *fds, int n, int port, const char *req) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < n; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fds[i], req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
      return -1;
  }
  return 0;
}

/* Reads every connection to EOF: how many answered 200. */
static int read_all(int *fds, int n) {
  static struct pollfd pfd[1024];
  int open = n, ok = 0;

  for (int i = 0; i < n; i++)
    pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
  while (open > 0 && poll(pfd, (nfds_t)n, 10000) > 0) {
    for (int i = 0; i < n; i++) {
      char buf[1024];
      ssize_t r;
      if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      r = read(pfd[i].fd, buf, sizeof(buf) - 1);
      if (r > 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0)
        ok++;
      if (r <= 0) {
        close(pfd[i].fd);
        pfd[i].fd = -1;
        open--;
      }
    }
  }
  return ok;
}

/* 1,024 requests in flight at 20 ms each end together: the delay is a
 * timer, not a blocked worker (serialised they would take 20 s). */
TEST(http_delay_does_not_block) {
  static int fds[1024];
  const char *req = "GET /delay/20/hello.txt HTTP/1.1\r\nHost: x\r\n"
                    "Connection: close\r\n\r\n";
  docroot d;
  bh_test_http h;
  double t0, took;

  ASSERT(docroot_make(&d) == 0);
  ASSERT(bh_test_http_start(&h, d.dir, 2) == 0);
  ASSERT(bh_test_raise_nofile(4096) >= 2048);
  t0 = now_s();
  ASSERT(open_all(fds, 1024, h.port, req) == 0);
  ASSERT_INT_EQ(read_all(fds, 1024), 1024);
  took = now_s() - t0;
  fprintf(stderr, "1024 requests at 20 ms: %.3f s\n", took);
  ASSERT(took >= 0.020);
  ASSERT(took < 2.0);
  bh_test_http_stop(&h);
  docroot_remove(&d);
  return 0;
}

/* stub_status: curl with three URLs keeps one connection; /close/ makes
 * the server close after each answer; bh_test_http_get connects each time.
 * The fixture's own queries are not counted. */
TEST(http_counts_connections) {
  docroot d;
  bh_test_http h;
  char out[256];
  long c0, r0, c1, r1, c2, r2;

  ASSERT(docroot_make(&d) == 0);
  ASSERT(bh_test_http_start(&h, d.dir, 1) == 0);
  ASSERT(bh_test_http_connections(&h, &c0, &r0) == 0);
  ASSERT_INT_EQ(c0, 0);
  ASSERT_INT_EQ(r0, 0);
  ASSERT_INT_EQ(run(out, sizeof(out), "curl -s %s/hello.txt %s/hello.txt "
                    "%s/delay/5/hello.txt", h.base, h.base, h.base),
                0);
  ASSERT_STR_EQ(out, "hello\nhello\nhello\n");
  ASSERT(bh_test_http_connections(&h, &c1, &r1) == 0);
  ASSERT_INT_EQ(c1, 1);
  ASSERT_INT_EQ(r1, 3);
  ASSERT_INT_EQ(run(out, sizeof(out), "curl -s %s/close/hello.txt "
                    "%s/close/hello.txt", h.base, h.base),
                0);
  ASSERT_STR_EQ(out, "hello\nhello\n");
  for (int i = 0; i < 3; i++)
    ASSERT_INT_EQ(bh_test_http_get(h.port, "/hello.txt", NULL, 0, 5000),
                  200);
  ASSERT(bh_test_http_connections(&h, &c2, &r2) == 0);
  ASSERT_INT_EQ(c2 - c1, 5);
  ASSERT_INT_EQ(r2 - r1, 5);
  bh_test_http_stop(&h);
  docroot_remove(&d);
  return 0;
}

/* ---- Nothing left behind ----------------------------------------------- */

/* Up to max children of pid (from /proc): their count. */
static int children(pid_t pid, pid_t *out, int max) {
  char path[64];
  FILE *f;
  int n = 0;
  long c;

  snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
  f = fopen(path, "r");
  if (f == NULL)
    return 0;
  while (n < max && fscanf(f, "%ld", &c) == 1)
    out[n++] = (pid_t)c;
  fclose(f);
  return n;
}

static int gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

/* The pids of a started S3 and HTTP fixture: keepers, servers, nginx's
 * workers. */
static int all_pids(const bh_test_s3 *s, const bh_test_http *h, pid_t *p) {
  int n = 0;

  p[n++] = s->s3rver.keeper;
  p[n++] = s->s3rver.pid;
  p[n++] = s->proxy.keeper;
  p[n++] = s->proxy.pid;
  p[n++] = h->nginx.keeper;
  p[n++] = h->nginx.pid;
  n += children(h->nginx.pid, p + n, 4);
  return n;
}

TEST(stop_leaves_nothing) {
  docroot d;
  bh_test_s3 s;
  bh_test_http h;
  pid_t pids[16];
  int n;

  ASSERT(docroot_make(&d) == 0);
  ASSERT(bh_test_s3_start(&s, BUCKETS) == 0);
  ASSERT(bh_test_http_start(&h, d.dir, 2) == 0);
  n = all_pids(&s, &h, pids);
  ASSERT_INT_EQ(n, 8); /* two nginx workers */
  for (int i = 0; i < n; i++)
    ASSERT(!gone(pids[i]));
  bh_test_s3_stop(&s);
  bh_test_http_stop(&h);
  for (int i = 0; i < n; i++)
    ASSERT(gone(pids[i]));
  ASSERT(access(s.dir, F_OK) != 0 && access(h.dir, F_OK) != 0);
  docroot_remove(&d);
  return 0;
}

/* A process that starts both fixtures and is SIGKILLed: its keepers (which
 * this test adopts as a subreaper) kill and reap everything. */
TEST(death_leaves_nothing) {
  docroot d;
  pid_t child, pids[16];
  int pipefd[2], n = 0;

  ASSERT(docroot_make(&d) == 0);
  ASSERT(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  ASSERT(pipe(pipefd) == 0);
  child = fork();
  ASSERT(child >= 0);
  if (child == 0) {
    bh_test_s3 s;
    bh_test_http h;
    close(pipefd[0]);
    if (bh_test_s3_start(&s, BUCKETS) == 0 &&
        bh_test_http_start(&h, d.dir, 2) == 0) {
      n = all_pids(&s, &h, pids);
      if (write(pipefd[1], pids, n * sizeof(pid_t)) < 0)
        _exit(1);
    }
    raise(SIGKILL);
  }
  close(pipefd[1]);
  for (ssize_t r; (r = read(pipefd[0], (char *)pids + n * sizeof(pid_t),
                            sizeof(pids) - n * sizeof(pid_t))) > 0;)
    n += (int)(r / (ssize_t)sizeof(pid_t));
  ASSERT_INT_EQ(n, 8);
  ASSERT(waitpid(child, NULL, 0) == child);
  /* The keepers are ours now; they exit once everything is reaped. */
  ASSERT(waitpid(pids[0], NULL, 0) == pids[0]);
  ASSERT(waitpid(pids[2], NULL, 0) == pids[2]);
  ASSERT(waitpid(pids[4], NULL, 0) == pids[4]);
  for (int i = 0; i < n; i++)
    ASSERT(gone(pids[i]));
  docroot_remove(&d);
  return 0;
}

TEST_MAIN(TEST_ENTRY_T(s3_accepts_botocore, 60),
          TEST_ENTRY_T(s3_refuses_wrong_secret, 30),
          TEST_ENTRY_T(s3_refuses_unknown_key, 30),
          TEST_ENTRY_T(s3_refuses_missing_signature, 30),
          TEST_ENTRY_T(s3_refuses_tampered_body, 30),
          TEST_ENTRY_T(s3_session_token, 30), TEST_ENTRY_T(s3_errors, 30),
          TEST_ENTRY_T(s3_range, 30), TEST_ENTRY_T(s3_list_pages, 60),
          TEST_ENTRY_T(s3_large_object, 90),
          TEST_ENTRY_T(s3_counts_connections, 30),
          TEST_ENTRY_T(http_serves_files_and_statuses, 30),
          TEST_ENTRY_T(http_delays, 30),
          TEST_ENTRY_T(http_delay_does_not_block, 30),
          TEST_ENTRY_T(http_counts_connections, 30),
          TEST_ENTRY_T(stop_leaves_nothing, 30),
          TEST_ENTRY_T(death_leaves_nothing, 30))
