/* test_http.c - every bee's HTTP session against a real server (nginx,
 * started by the test on loopback, servers.h): GETs in a worker and in the
 * queen, errors that are distinct and name the URL, a cancelled task's
 * transfer aborted at once, connections reused, a body larger than
 * max_frame reaching the queen, 10,000 concurrent GETs in one worker, and
 * HTTPS with HTTP/2 trusting a CA file (http_ca_file), also in an
 * exec-started worker. */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "base/base.h"
#include "runner.h"
#include "servers.h"

#define BIG ((size_t)1 << 20)

static bh_test_http srv;
static char docroot[] = "/tmp/bh_test_http_XXXXXX";

static int64_t
now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
write_file(const char *name, const void *p, size_t n) {
  char path[512];
  int fd, ok;

  snprintf(path, sizeof(path), "%s/%s", docroot, name);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
    return -1;
  ok = write(fd, p, n) == (ssize_t)n;
  close(fd);
  return ok ? 0 : -1;
}

/* nginx on a docroot of a.txt ("hello\n") and big.bin (1 MiB pattern);
 * with tls, also on its TLS port (srv.tls_base, srv.ca_file). */
static int
up_with(int tls) {
  char *big = malloc(BIG);

  if (big == NULL || mkdtemp(docroot) == NULL)
    return -1;
  fill(big, BIG);
  if (write_file("a.txt", "hello\n", 6) != 0 ||
      write_file("big.bin", big, BIG) != 0) {
    free(big);
    return -1;
  }
  free(big);
  return tls ? bh_test_http_start_tls(&srv, docroot, 1)
             : bh_test_http_start(&srv, docroot, 1);
}

static int
up(void) {
  return up_with(0);
}

static void
down(void) {
  char cmd[600];

  bh_test_http_stop(&srv);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", docroot);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", docroot);
}

static const char *
url_on(const char *base, const char *path) {
  static char u[4][256];
  static int next;
  char *p = u[next++ % 4];

  snprintf(p, 256, "%s%s", base, path);
  return p;
}

static const char *
url(const char *path) {
  return url_on(srv.base, path);
}

/* The same path on the TLS listener. */
static const char *
tls_url(const char *path) {
  return url_on(srv.tls_base, path);
}

/* ---- tasks --------------------------------------------------------------- */

/* [url, timeout_ms, max_response] -> [status, version, body, type, code,
 * errmsg]: one request; its error as data, not raised. */
static int
probe(bh_task *t) {
  char u[256];
  int64_t timeout, max;
  bh_http_req rq = {.url = u};
  bh_http_resp *r = NULL;
  const void *body = "";
  size_t len = 0;
  const char *type = NULL, *why;
  int rc;

  if (bh_task_unpack(t, "[s I I]", u, sizeof(u), &timeout, &max) != 0)
    return BH_ERAISED;
  rq.timeout_ms = timeout;
  rq.max_response = (size_t)max;
  rc = bh_http_request(t, &rq, &r);
  if (rc == 0) {
    body = bh_http_resp_body(r, &len);
    type = bh_http_resp_header(r, "CONTENT-length"); /* any case */
  }
  why = bh_task_errmsg(t);
  rc = bh_return(t, "[i i y# s i s]", r ? (int)bh_http_resp_status(r) : 0,
                 r ? bh_http_resp_version(r) : 0, body, len, type, rc, why);
  bh_http_resp_free(r);
  return rc;
}

/* [url] -> the body; a failure is raised as it comes (the code passed on). */
static int
get(bh_task *t) {
  char u[256];
  bh_http_resp *r;
  const void *body;
  size_t len;
  int rc;

  if (bh_task_unpack(t, "[s]", u, sizeof(u)) != 0)
    return BH_ERAISED;
  if ((rc = bh_http_get(t, u, &r)) != 0)
    return rc;
  body = bh_http_resp_body(r, &len);
  rc = bh_return(t, "y#", body, len);
  bh_http_resp_free(r);
  return rc;
}

/* [url, n] -> connections the session opened for n GETs in a row. */
static int
get_n(bh_task *t) {
  char u[256];
  int64_t n, i;
  uint64_t c0 = bh_http_connects(bh_task_context(t)->http_session);
  bh_http_resp *r;
  int rc;

  if (bh_task_unpack(t, "[s I]", u, sizeof(u), &n) != 0)
    return BH_ERAISED;
  for (i = 0; i < n; i++) {
    if ((rc = bh_http_get(t, u, &r)) != 0)
      return rc;
    if (bh_http_resp_status(r) != 200)
      return bh_raise(t, "ValueError", "status %ld", bh_http_resp_status(r));
    bh_http_resp_free(r);
  }
  return bh_return(t, "I", (int64_t)(bh_http_connects(
                              bh_task_context(t)->http_session) - c0));
}

/* -> connections opened so far and this worker's pid. */
static int
connects(bh_task *t) {
  return bh_return(t, "[I I]", (int64_t)bh_http_connects(
                                  bh_task_context(t)->http_session),
                   (int64_t)getpid());
}

/* [url] -> [headers, headers read by index, the code past the last, the
 * pointers untouched by it]. */
static int
headers(bh_task *t) {
  const char *name = "n", *value = "v";
  char u[256];
  bh_http_resp *r;
  size_t n, i, read = 0;
  int rc, past;

  if (bh_task_unpack(t, "[s]", u, sizeof(u)) != 0)
    return BH_ERAISED;
  if ((rc = bh_http_get(t, u, &r)) != 0)
    return rc;
  n = bh_http_resp_n_headers(r);
  for (i = 0; i < n; i++) {
    const char *hn, *hv;

    read += bh_http_resp_header_at(r, i, &hn, &hv) == 0 && hn != NULL &&
            hv != NULL && bh_http_resp_header(r, hn) != NULL;
  }
  past = bh_http_resp_header_at(r, n, &name, &value);
  bh_http_resp_free(r);
  return bh_return(t, "[I I i b]", (int64_t)n, (int64_t)read, past,
                   strcmp(name, "n") == 0 && strcmp(value, "v") == 0);
}

static const bh_task_def wtasks[] = {{"probe", probe},   {"get", get},
                                     {"get_n", get_n},   {"connects", connects},
                                     {"headers", headers}, {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = wtasks};

/* ---- queen tasks ------------------------------------------------------- */

/* [task, args...] as given: delegates it once and returns its result. */
static int
q_one(bh_task *t) {
  const msgpack_object *a = bh_task_args(t);
  char name[32];
  bh_result *r;
  int rc;

  if (bh_task_unpack(t, "[s *]", name, sizeof(name)) != 0)
    return BH_ERAISED;
  rc = bh_delegate_value(t, &r, name, a->via.array.ptr[1].type ==
                                              MSGPACK_OBJECT_ARRAY
                                          ? &a->via.array.ptr[1]
                                          : NULL,
                         NULL);
  if (rc == 0)
    rc = bh_return_object(t, bh_result_value(r));
  else if (r != NULL)
    rc = bh_raise_result(t, r);
  bh_result_free(r);
  return rc;
}

/* [task args] for probe, run by the queen herself. */
static int
q_probe(bh_task *t) {
  return probe(t);
}

static const bh_task_def qtasks[] = {
    {"one", q_one}, {"probe", q_probe}, {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = qtasks};

static int
hive(const char *task, bh_value *args, bh_result **r, int max_frame) {
  bh_run_opts o = {.queen_class = &queen, .worker_class = &worker,
                   .task_name = task, .task_args = args, .workers = 1,
                   .min_workers = 1, .max_workers = 1,
                   .max_frame = (size_t)max_frame};
  int rc = bh_run(&o, r);

  bh_value_free(args);
  return rc;
}

/* Runs probe(u, timeout, max) in a worker (queen: in the queen). */
static int
probe_in(int in_queen, const char *u, int64_t timeout, int64_t max,
         bh_result **r) {
  bh_value *args =
      in_queen ? bh_value_pack(NULL, "[s I I]", u, timeout, max)
               : bh_value_pack(NULL, "[s [s I I]]", "probe", u, timeout, max);

  return hive(in_queen ? "probe" : "one", args, r, 0);
}

/* ---- tests --------------------------------------------------------------- */

static int
get_case(int in_queen) {
  bh_result *r;
  int status, version, code;
  const void *body;
  size_t len;
  char type[64] = "", why[8] = ""; /* type: Content-Length here */

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(probe_in(in_queen, url("/a.txt"), 0, 0, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i y# s i s]", &status,
                                 &version, &body, &len, type, sizeof(type),
                                 &code, why, sizeof(why)),
                BH_ETYPE); /* errmsg is nil: a success leaves no message */
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i y# s i *]", &status,
                                 &version, &body, &len, type, sizeof(type),
                                 &code),
                0);
  ASSERT_INT_EQ(status, 200);
  ASSERT_INT_EQ(version, 11);
  ASSERT_INT_EQ(code, 0);
  ASSERT(len == 6 && memcmp(body, "hello\n", 6) == 0);
  ASSERT_STR_EQ(type, "6");
  bh_result_free(r);
  /* A 404 is an answer, not a failure. */
  ASSERT_INT_EQ(probe_in(in_queen, url("/status/404"), 0, 0, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i * * * i *]", &status, &code),
                0);
  ASSERT_INT_EQ(status, 404);
  ASSERT_INT_EQ(code, 0);
  bh_result_free(r);
  down();
  return 0;
}

TEST(get_in_a_worker) {
  return get_case(0);
}

TEST(get_in_the_queen) {
  return get_case(1);
}

/* Every header by index; past the last, BH_EINVAL and nothing written. */
TEST(headers_by_index) {
  bh_result *r;
  int64_t n, read;
  int past, untouched;

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(hive("one", bh_value_pack(NULL, "[s [s]]", "headers",
                                          url("/a.txt")), &r, 0), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I i b]", &n, &read, &past,
                                 &untouched), 0);
  bh_result_free(r);
  ASSERT(n >= 3); /* Server, Date, Content-Length... */
  ASSERT_INT_EQ(read, n);
  ASSERT_INT_EQ(past, BH_EINVAL);
  ASSERT(untouched);
  down();
  return 0;
}

/* timeout_ms -1 (BH_NONE) is no limit, as 0: a GET answered after 300 ms
 * succeeds where a limit of 100 ms times out. */
TEST(timeout_none_is_no_limit) {
  bh_result *r;
  int status, code;

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(probe_in(0, url("/delay/300/a.txt"), 100, 0, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i * * * i *]", &status, &code),
                0);
  ASSERT_INT_EQ(code, BH_ETIMEDOUT);
  bh_result_free(r);
  ASSERT_INT_EQ(probe_in(0, url("/delay/300/a.txt"), BH_NONE, 0, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i * * * i *]", &status, &code),
                0);
  ASSERT_INT_EQ(code, 0);
  ASSERT_INT_EQ(status, 200);
  bh_result_free(r);
  down();
  return 0;
}

/* A port nobody listens on: bound (so nobody else takes it), not
 * listening, so a connection is refused. */
static int
refusing_port(int *fd) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof(a);

  *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(*fd, (struct sockaddr *)&a, &n) != 0)
    return -1;
  return ntohs(a.sin_port);
}

/* probe's code and message for u: the code is want and the message names
 * the method and the URL, and says `says`. */
static int
fails_with(const char *u, int64_t timeout, int64_t max, int want,
           const char *says) {
  bh_result *r;
  char why[1024], named[300];
  int code;

  ASSERT_INT_EQ(probe_in(0, u, timeout, max, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[* * * * i s]", &code, why,
                                 sizeof(why)),
                0);
  fprintf(stderr, "%s -> %s: %s\n", u, bh_err_name(code), why);
  ASSERT_STR_EQ(bh_err_name(code), bh_err_name(want));
  snprintf(named, sizeof(named), "(GET %s)", u);
  ASSERT(strstr(why, named) != NULL);
  ASSERT(strstr(why, says) != NULL);
  bh_result_free(r);
  return 0;
}

TEST(errors_are_distinct_and_name_the_url) {
  char u[128];
  int fd, port;

  ASSERT_INT_EQ(up(), 0);
  ASSERT((port = refusing_port(&fd)) > 0);
  snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", port);
  ASSERT_INT_EQ(fails_with(u, 0, 0, BH_ECONNREFUSED, "connection refused"),
                0);
  ASSERT_INT_EQ(fails_with("http://no-such-host.invalid/x", 20000, 0,
                           BH_EDNS, "host name not resolved"),
                0);
  ASSERT_INT_EQ(fails_with(url("/delay/5000/a.txt"), 200, 0, BH_ETIMEDOUT,
                           "timed out"),
                0);
  ASSERT_INT_EQ(fails_with(url("/big.bin"), 0, 1000, BH_ETOOBIG,
                           "larger than the limit of 1000 bytes"),
                0);
  snprintf(u, sizeof(u), "https://127.0.0.1:%d/a.txt", srv.port);
  ASSERT_INT_EQ(fails_with(u, 0, 0, BH_ETLS, "TLS failure"), 0);
  ASSERT_INT_EQ(fails_with("ftp://127.0.0.1/x", 0, 0, BH_EINVAL, "GET "), 0);
  close(fd);
  down();
  return 0;
}

/* A handler that passes the code on raises HTTPError with the message. */
TEST(a_failure_passed_on_is_raised_with_its_message) {
  bh_result *r;
  char u[128];
  int fd, port;

  ASSERT_INT_EQ(up(), 0);
  ASSERT((port = refusing_port(&fd)) > 0);
  snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", port);
  ASSERT_INT_EQ(hive("one", bh_value_pack(NULL, "[s [s]]", "get", u), &r, 0),
                BH_ERAISED);
  fprintf(stderr, "%s: %s\n", bh_result_root_errtype(r),
          bh_result_root_errmsg(r));
  ASSERT_STR_EQ(bh_result_root_errtype(r), "HTTPError");
  ASSERT(strstr(bh_result_root_errmsg(r), "connection refused (GET ") !=
         NULL);
  ASSERT(strstr(bh_result_root_errmsg(r), u) != NULL);
  bh_result_free(r);
  close(fd);
  down();
  return 0;
}

/* 100 GETs in a row over one connection, also as nginx counts them. */
TEST(connections_are_reused) {
  long acc0, acc1, req0, req1;
  int64_t opened;
  bh_result *r;

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(bh_test_http_connections(&srv, &acc0, &req0), 0);
  ASSERT_INT_EQ(hive("one", bh_value_pack(NULL, "[s [s I]]", "get_n",
                                          url("/a.txt"), (int64_t)100),
                     &r, 0),
                0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "I", &opened), 0);
  ASSERT_INT_EQ(bh_test_http_connections(&srv, &acc1, &req1), 0);
  ASSERT_INT_EQ(opened, 1);
  ASSERT_INT_EQ(acc1 - acc0, 1);
  ASSERT_INT_EQ(req1 - req0, 100);
  bh_result_free(r);
  down();
  return 0;
}

/* [url]: delegates probe of url with a 300 ms deadline, then asks the same
 * worker how many connections it opened and its pid. Returns [status of
 * the probe, ms it took, connects, pid, connects, pid]. */
static int
q_cancel(bh_task *t) {
  char u[256];
  bh_group *g = bh_group_new(t);
  bh_deleg_opts dopt = {.timeout_ms = 300};
  bh_future *f;
  bh_result *a = NULL, *b = NULL;
  int64_t t0 = bh_now(), took, c1 = 0, p1 = 0, c2 = 0, p2 = 0;
  int st, rc;

  if (bh_task_unpack(t, "[s]", u, sizeof(u)) != 0)
    return BH_ERAISED;
  bh_group_set_opts(g, &dopt);
  bh_group_delegate(g, &f, NULL, "probe", "[s I I]", u, (int64_t)0,
                    (int64_t)0);
  rc = bh_future_wait(f, -1);
  took = bh_now() - t0;
  st = (int)bh_result_status(bh_future_result(f));
  bh_future_free(f);
  bh_group_free(g);
  if (rc == 0 && (rc = bh_delegate(t, &a, "connects", NULL)) == 0)
    rc = bh_result_unpack(a, NULL, 0, "[I I]", &c1, &p1);
  /* A fresh request in that worker needs a new connection: the aborted
   * transfer's was closed, not returned to the pool. */
  if (rc == 0 && (rc = bh_delegate(t, &b, "get_n", "[s I]", url("/a.txt"),
                                   (int64_t)1)) == 0)
    rc = bh_result_unpack(b, NULL, 0, "I", &c2);
  bh_result_free(a);
  bh_result_free(b);
  if (rc == 0 && (rc = bh_delegate(t, &a, "connects", NULL)) == 0)
    rc = bh_result_unpack(a, NULL, 0, "[* I]", &p2);
  bh_result_free(a);
  return rc != 0 ? rc
                 : bh_return(t, "[i I I I I I]", st, took, c1, p1, c2, p2);
}

static const bh_task_def ctasks[] = {{"cancel", q_cancel}, {NULL, NULL}};
static const bh_class cqueen = {.name = "CQ", .tasks = ctasks};

TEST(cancelling_the_task_aborts_its_transfer) {
  bh_run_opts o = {.queen_class = &cqueen, .worker_class = &worker,
                   .task_name = "cancel", .workers = 1, .min_workers = 1,
                   .max_workers = 1, .kill_grace_ms = 60000};
  int64_t took, c1, p1, c2, p2;
  bh_result *r;
  bh_stats s;
  int st;

  ASSERT_INT_EQ(up(), 0);
  o.task_args = bh_value_pack(NULL, "[s]", url("/delay/60000/a.txt"));
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i I I I I I]", &st, &took, &c1,
                                 &p1, &c2, &p2),
                0);
  fprintf(stderr, "cancelled after %lld ms\n", (long long)took);
  ASSERT_INT_EQ(st, BH_CANCELLED);
  ASSERT(took >= 300 && took < 5000);
  /* The same worker answered: it was not killed for want of an answer
   * (the grace is a minute), its task gave up the transfer. */
  ASSERT(p1 == p2 && p1 > 0);
  ASSERT_INT_EQ(c1, 1);
  ASSERT_INT_EQ(c2, 1);
  (void)s;
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  down();
  return 0;
}

/* A 1 MiB body reaches the queen through a 64 KiB frame limit: it was
 * received into shared memory and travels as a blob. */
TEST(a_body_larger_than_max_frame_reaches_the_queen) {
  bh_result *r;
  const void *body;
  size_t len;

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(hive("one", bh_value_pack(NULL, "[s [s]]", "get",
                                          url("/big.bin")),
                     &r, 64 << 10),
                0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "y#", &body, &len), 0);
  ASSERT_INT_EQ(len, BIG);
  ASSERT(holds_pattern(body, len));
  bh_result_free(r);
  down();
  return 0;
}

/* [url, n]: n delegations of get at once, to one worker that takes them
 * all at once. Returns [answers that held "hello\n", the worker's
 * connections]. */
static int
q_many(bh_task *t) {
  char u[256];
  int64_t n, i, good = 0, conns = 0;
  bh_group *g = bh_group_new(t);
  bh_future *f;
  bh_result *c;
  int rc;

  if (bh_task_unpack(t, "[s I]", u, sizeof(u), &n) != 0)
    return BH_ERAISED;
  for (i = 0; i < n; i++)
    bh_group_delegate(g, NULL, NULL, "get", "[s]", u);
  while ((rc = bh_group_next(g, &f, -1)) == 0) {
    const void *b;
    size_t len;

    good += bh_result_unpack(bh_future_result(f), NULL, 0, "y#", &b,
                             &len) == 0 &&
            len == 6 && memcmp(b, "hello\n", 6) == 0;
    bh_future_free(f);
  }
  bh_group_free(g);
  if (rc != BH_EDONE)
    return rc;
  if ((rc = bh_delegate(t, &c, "connects", NULL)) == 0)
    rc = bh_result_unpack(c, NULL, 0, "[I *]", &conns);
  bh_result_free(c);
  return rc != 0 ? rc : bh_return(t, "[I I]", good, conns);
}

static const bh_task_def mtasks[] = {{"many", q_many}, {NULL, NULL}};
static const bh_class mqueen = {.name = "MQ", .tasks = mtasks};

TEST(ten_thousand_concurrent_gets_in_one_worker) {
  bh_run_opts o = {.queen_class = &mqueen, .worker_class = &worker,
                   .task_name = "many", .workers = 1, .min_workers = 1,
                   .max_workers = 1, .max_concurrency = 10001};
  long acc0, acc1;
  int64_t good, conns, t0;
  bh_result *r;

  ASSERT_INT_EQ(up(), 0);
  bh_test_raise_nofile(20000);
  ASSERT_INT_EQ(bh_test_http_connections(&srv, &acc0, NULL), 0);
  o.task_args = bh_value_pack(NULL, "[s I]", url("/delay/20/a.txt"),
                              (int64_t)10000);
  t0 = now_ms();
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &good, &conns), 0);
  ASSERT_INT_EQ(bh_test_http_connections(&srv, &acc1, NULL), 0);
  fprintf(stderr, "10,000 GETs in %lld ms over %lld connections\n",
          (long long)(now_ms() - t0), (long long)conns);
  ASSERT_INT_EQ(good, 10000);
  /* At most the default per-host limit, and more than one: they ran at
   * once, not one after the other. */
  ASSERT(conns > 1 && conns <= 1024);
  ASSERT_INT_EQ(acc1 - acc0, conns);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  down();
  return 0;
}

/* [slow, fast] with one connection per host: probe(slow) holds it; a
 * probe(slow) with a 300 ms timeout and a probe(fast) with a 200 ms
 * deadline wait behind it. Returns [code of the second, ms it took, its
 * message, status of the third, ms it took, status of the first, status
 * of a probe(fast) made after them all]. */
static int
q_queue(bh_task *t) {
  char slow[256], fast[256], why[256] = "";
  bh_group *g = bh_group_new(t), *gd = bh_group_new(t);
  bh_deleg_opts deadline = {.timeout_ms = 200};
  bh_future *f1, *f2, *f3, *f4;
  int64_t t0 = bh_now(), took2, took3;
  int code2 = 0, st3, s1 = 0, s4 = 0;

  if (bh_task_unpack(t, "[s s]", slow, sizeof(slow), fast, sizeof(fast)))
    return BH_ERAISED;
  bh_group_set_opts(gd, &deadline);
  bh_group_delegate(g, &f1, NULL, "probe", "[s I I]", slow, (int64_t)0,
                    (int64_t)0);
  bh_group_delegate(g, &f2, NULL, "probe", "[s I I]", slow, (int64_t)300,
                    (int64_t)0);
  bh_group_delegate(gd, &f3, NULL, "probe", "[s I I]", fast, (int64_t)0,
                    (int64_t)0);
  bh_future_wait(f3, -1);
  took3 = bh_now() - t0;
  st3 = (int)bh_result_status(bh_future_result(f3));
  bh_future_wait(f2, -1);
  took2 = bh_now() - t0;
  bh_result_unpack(bh_future_result(f2), NULL, 0, "[* * * * i s]", &code2,
                   why, sizeof(why));
  bh_future_wait(f1, -1);
  bh_result_unpack(bh_future_result(f1), NULL, 0, "[i * * * * *]", &s1);
  bh_group_delegate(gd, &f4, NULL, "probe", "[s I I]", fast, (int64_t)0,
                    (int64_t)0);
  bh_future_wait(f4, -1);
  bh_result_unpack(bh_future_result(f4), NULL, 0, "[i * * * * *]", &s4);
  bh_future_free(f1);
  bh_future_free(f2);
  bh_future_free(f3);
  bh_future_free(f4);
  bh_group_free(g);
  bh_group_free(gd);
  return bh_return(t, "[i I s i I i i]", code2, took2, why, st3, took3, s1,
                   s4);
}

static const bh_task_def qqtasks[] = {{"queue", q_queue}, {NULL, NULL}};
static const bh_class qqueen = {.name = "QQ", .tasks = qqtasks};

/* Transfers beyond the per-host limit wait in the session for a
 * connection: their timeout and their task's deadline run meanwhile, and
 * the slot they never got is not lost. */
TEST(a_transfer_waiting_for_a_connection_keeps_its_timeout) {
  bh_run_opts o = {.queen_class = &qqueen, .worker_class = &worker,
                   .task_name = "queue", .workers = 1, .min_workers = 1,
                   .max_workers = 1, .max_concurrency = 8,
                   .http_max_host_connections = 1};
  int64_t took2, took3;
  int code2, st3, s1, s4;
  char why[256];
  bh_result *r;

  ASSERT_INT_EQ(up(), 0);
  o.task_args = bh_value_pack(NULL, "[s s]", url("/delay/1500/a.txt"),
                              url("/a.txt"));
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i I s i I i i]", &code2,
                                 &took2, why, sizeof(why), &st3, &took3, &s1,
                                 &s4),
                0);
  fprintf(stderr, "timed out after %lld ms: %s; cancelled after %lld ms\n",
          (long long)took2, why, (long long)took3);
  ASSERT_STR_EQ(bh_err_name(code2), bh_err_name(BH_ETIMEDOUT));
  ASSERT(strstr(why, "no connection to the host came free within 300 ms"));
  ASSERT(strstr(why, "(GET http://127.0.0.1:") != NULL);
  /* Not after the first transfer's 1.5 s: while waiting. */
  ASSERT(took2 >= 300 && took2 < 1200);
  ASSERT_INT_EQ(st3, BH_CANCELLED);
  ASSERT(took3 >= 200 && took3 < 1200);
  ASSERT_INT_EQ(s1, 200);
  ASSERT_INT_EQ(s4, 200);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  down();
  return 0;
}

/* bh_run_opts.http_max_host_connections reaches the worker's session:
 * 200 GETs at once to one host share 4 connections. */
TEST(connections_per_host_are_limited) {
  bh_run_opts o = {.queen_class = &mqueen, .worker_class = &worker,
                   .task_name = "many", .workers = 1, .min_workers = 1,
                   .max_workers = 1, .max_concurrency = 200,
                   .http_max_host_connections = 4};
  long acc0, acc1;
  int64_t good, conns;
  bh_result *r;

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(bh_test_http_connections(&srv, &acc0, NULL), 0);
  o.task_args = bh_value_pack(NULL, "[s I]", url("/delay/20/a.txt"),
                              (int64_t)200);
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &good, &conns), 0);
  ASSERT_INT_EQ(bh_test_http_connections(&srv, &acc1, NULL), 0);
  ASSERT_INT_EQ(good, 200);
  ASSERT_INT_EQ(conns, 4);
  ASSERT_INT_EQ(acc1 - acc0, 4);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  down();
  return 0;
}

/* ---- HTTPS and HTTP/2 -------------------------------------------------- */

/* One hive: probe(u) in its worker, started by `start`, or in the queen;
 * every bee's session trusting ca (NULL: the system's CAs). */
static int
tls_probe(int in_queen, bh_start start, const char *ca, const char *u,
          bh_result **r) {
  bh_run_opts o = {.queen_class = &queen, .worker_class = &worker,
                   .task_name = in_queen ? "probe" : "one", .workers = 1,
                   .min_workers = 1, .max_workers = 1, .start = start,
                   .http_ca_file = ca};
  int rc;

  o.task_args = in_queen ? bh_value_pack(NULL, "[s I I]", u, (int64_t)0,
                                         (int64_t)0)
                         : bh_value_pack(NULL, "[s [s I I]]", "probe", u,
                                         (int64_t)0, (int64_t)0);
  rc = run_hive(&o, r);
  bh_value_free((bh_value *)o.task_args);
  return rc;
}

/* probe's answer was a 200 "hello\n" that came over HTTP/2. */
static int
got_hello_h2(const bh_result *r) {
  int status, version, code;
  const void *body;
  size_t len;
  char why[1024];

  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i i y# * i *]", &status,
                                 &version, &body, &len, &code),
                0);
  if (code != 0 && bh_result_unpack(r, NULL, 0, "[* * * * * s]", why,
                                    sizeof(why)) == 0)
    fprintf(stderr, "probe failed: %s: %s\n", bh_err_name(code), why);
  ASSERT_INT_EQ(code, 0);
  ASSERT_INT_EQ(status, 200);
  ASSERT_INT_EQ(version, 20);
  ASSERT(len == 6 && memcmp(body, "hello\n", 6) == 0);
  return 0;
}

/* With http_ca_file naming the server's self-signed certificate, HTTPS
 * works in a worker and in the queen, over HTTP/2; and 50 GETs at once
 * in one worker share one connection, as streams of it (over HTTP/1.1
 * they would need 50: ten_thousand_concurrent_gets_in_one_worker). */
TEST(https_with_the_ca_file_is_http2_on_one_connection) {
  bh_run_opts o = {.queen_class = &mqueen, .worker_class = &worker,
                   .task_name = "many", .workers = 1, .min_workers = 1,
                   .max_workers = 1, .max_concurrency = 50};
  long acc0, acc1, req0, req1;
  int64_t good, conns;
  bh_result *r;

  ASSERT_INT_EQ(up_with(1), 0);
  ASSERT_INT_EQ(tls_probe(0, BH_START_FORK, srv.ca_file, tls_url("/a.txt"),
                          &r),
                0);
  ASSERT_INT_EQ(got_hello_h2(r), 0);
  bh_result_free(r);
  ASSERT_INT_EQ(tls_probe(1, BH_START_FORK, srv.ca_file, tls_url("/a.txt"),
                          &r),
                0);
  ASSERT_INT_EQ(got_hello_h2(r), 0);
  bh_result_free(r);
  o.http_ca_file = srv.ca_file;
  o.task_args = bh_value_pack(NULL, "[s I]", tls_url("/delay/200/a.txt"),
                              (int64_t)50);
  ASSERT_INT_EQ(bh_test_http_connections(&srv, &acc0, &req0), 0);
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_test_http_connections(&srv, &acc1, &req1), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[I I]", &good, &conns), 0);
  ASSERT_INT_EQ(good, 50);
  ASSERT_INT_EQ(conns, 1);
  ASSERT_INT_EQ(acc1 - acc0, 1);
  ASSERT_INT_EQ(req1 - req0, 50);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  down();
  return 0;
}

/* Without it the system's CAs do not know the certificate: BH_ETLS, the
 * message naming the URL and what is wrong with the certificate. */
TEST(https_without_the_ca_file_is_a_tls_failure) {
  ASSERT_INT_EQ(up_with(1), 0);
  ASSERT_INT_EQ(fails_with(tls_url("/a.txt"), 0, 0, BH_ETLS,
                           "SSL certificate problem: self-signed "
                           "certificate"),
                0);
  down();
  return 0;
}

/* An exec-started worker has the setting from its bootstrap frame. */
TEST(an_exec_started_worker_trusts_the_ca_file) {
  bh_result *r;

  ASSERT_INT_EQ(up_with(1), 0);
  ASSERT_INT_EQ(tls_probe(0, BH_START_EXEC, srv.ca_file, tls_url("/a.txt"),
                          &r),
                0);
  ASSERT_INT_EQ(got_hello_h2(r), 0);
  bh_result_free(r);
  down();
  return 0;
}

TEST_MAIN_WORKER(worker,
    TEST_ENTRY_T(get_in_a_worker, 20), TEST_ENTRY_T(get_in_the_queen, 20),
    TEST_ENTRY_T(headers_by_index, 20),
    TEST_ENTRY_T(timeout_none_is_no_limit, 20),
    TEST_ENTRY_T(errors_are_distinct_and_name_the_url, 60),
    TEST_ENTRY_T(a_failure_passed_on_is_raised_with_its_message, 20),
    TEST_ENTRY_T(connections_are_reused, 20),
    TEST_ENTRY_T(cancelling_the_task_aborts_its_transfer, 30),
    TEST_ENTRY_T(a_body_larger_than_max_frame_reaches_the_queen, 20),
    TEST_ENTRY_T(ten_thousand_concurrent_gets_in_one_worker, 120),
    TEST_ENTRY_T(connections_per_host_are_limited, 30),
    TEST_ENTRY_T(a_transfer_waiting_for_a_connection_keeps_its_timeout, 30),
    TEST_ENTRY_T(https_with_the_ca_file_is_http2_on_one_connection, 30),
    TEST_ENTRY_T(https_without_the_ca_file_is_a_tls_failure, 20),
    TEST_ENTRY_T(an_exec_started_worker_trusts_the_ca_file, 20))
