/* test_s3.c - every worker's S3 client against s3rver behind our
 * SigV4-checking proxy (servers.h), with settings from profile files in a
 * temporary HOME or from the environment: every operation, S3's errors
 * with their codes, a wrong secret, a missing profile, a session token,
 * an object larger than max_frame, connection reuse, a GET cancelled
 * while its body arrives, an https:// endpoint trusted with
 * http_ca_file. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "base/base.h"
#include "runner.h"
#include "servers.h"

#define BIG ((size_t)1 << 20)

static bh_test_s3 srv;
static char home[] = "/tmp/bh_test_s3_home_XXXXXX";
static const char *const BUCKETS[] = {"bh-test", NULL};

static int
write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  int ok = f != NULL && fputs(text, f) >= 0;

  if (f != NULL && fclose(f) != 0)
    ok = 0;
  return ok ? 0 : -1;
}

/* ~/.aws/credentials with [test] (the plain pair), [tok] (the pair that
 * needs a token, with it), [bad] (a wrong secret), [nobody] (an unknown
 * key); ~/.aws/config gives every profile the proxy as endpoint. */
static int
profiles(void) {
  char path[256], text[4096], *p = text;
  static const char *const names[] = {"test", "tok", "bad", "nobody"};
  size_t i;

  snprintf(path, sizeof(path), "%s/.aws", home);
  if (mkdir(path, 0700) != 0)
    return -1;
  snprintf(text, sizeof(text),
           "[test]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
           "[tok]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
           "aws_session_token = %s\n"
           "[bad]\naws_access_key_id = %s\naws_secret_access_key = x%s\n"
           "[nobody]\naws_access_key_id = AKIANOBODY\n"
           "aws_secret_access_key = %s\n",
           srv.access_key, srv.secret_key, srv.token_access_key,
           srv.token_secret_key, srv.session_token, srv.access_key,
           srv.secret_key, srv.secret_key);
  snprintf(path, sizeof(path), "%s/.aws/credentials", home);
  if (write_text(path, text) != 0)
    return -1;
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    p += sprintf(p, "[profile %s]\nregion = %s\nendpoint_url = %s\n",
                 names[i], srv.region, srv.endpoint);
  snprintf(path, sizeof(path), "%s/.aws/config", home);
  return write_text(path, text);
}

static int
up(void) {
  if (bh_test_s3_start(&srv, BUCKETS) != 0 || mkdtemp(home) == NULL ||
      profiles() != 0)
    return -1;
  setenv("HOME", home, 1);
  unsetenv("AWS_PROFILE");
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  unsetenv("AWS_SESSION_TOKEN");
  unsetenv("AWS_CONFIG_FILE");
  unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_ENDPOINT_URL_S3");
  unsetenv("AWS_REGION");
  unsetenv("AWS_DEFAULT_REGION");
  return 0;
}

static void
down(void) {
  char cmd[300];

  bh_test_s3_stop(&srv);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", home);
}

/* ---- worker tasks ---------------------------------------------------------- */

/* [url, data]: puts data there. */
static int
put(bh_task *t) {
  char u[256];
  const void *p;
  size_t n;

  if (bh_task_unpack(t, "[s y#]", u, sizeof(u), &p, &n) != 0)
    return BH_ERAISED;
  return bh_s3_put(t, u, p, n, "application/octet-stream");
}

/* [url, first, last] -> [status, body, ETag]; a failure is raised. */
static int
get(bh_task *t) {
  char u[256];
  int64_t first, last;
  bh_http_resp *r;
  const void *b;
  size_t n;
  int rc;

  if (bh_task_unpack(t, "[s I I]", u, sizeof(u), &first, &last) != 0)
    return BH_ERAISED;
  if ((rc = bh_s3_get(t, u, first, last, &r)) != 0)
    return rc;
  b = bh_http_resp_body(r, &n);
  rc = bh_return(t, "[i y# s]", (int)bh_http_resp_status(r), b, n,
                 bh_http_resp_header(r, "etag"));
  bh_http_resp_free(r);
  return rc;
}

/* [url] -> Content-Length. */
static int
head(bh_task *t) {
  char u[256];
  bh_http_resp *r;
  const char *cl;
  int rc;

  if (bh_task_unpack(t, "[s]", u, sizeof(u)) != 0)
    return BH_ERAISED;
  if ((rc = bh_s3_head(t, u, &r)) != 0)
    return rc;
  cl = bh_http_resp_header(r, "content-length");
  rc = bh_return(t, "I", (int64_t)(cl ? atoll(cl) : -1));
  bh_http_resp_free(r);
  return rc;
}

static int
del(bh_task *t) {
  char u[256];

  if (bh_task_unpack(t, "[s]", u, sizeof(u)) != 0)
    return BH_ERAISED;
  return bh_s3_delete(t, u);
}

/* [prefix url, page size] -> every key under it, page by page, as
 * "key:size" strings, and the number of pages. */
static int
list(bh_task *t) {
  char u[256], all[4096] = "", *token = NULL;
  int64_t page, pages = 0;
  bh_s3_listing *l;
  size_t i, len = 0;
  int rc;

  if (bh_task_unpack(t, "[s I]", u, sizeof(u), &page) != 0)
    return BH_ERAISED;
  do {
    if ((rc = bh_s3_list(t, u, token, (int)page, &l)) != 0)
      break;
    pages++;
    for (i = 0; i < bh_s3_listing_count(l); i++) {
      int64_t size;
      const char *k = bh_s3_listing_key(l, i, &size);

      len += (size_t)snprintf(all + len, sizeof(all) - len, "%s:%lld ", k,
                              (long long)size);
    }
    free(token);
    token = bh_s3_listing_next(l) ? strdup(bh_s3_listing_next(l)) : NULL;
    bh_s3_listing_free(l);
  } while (token != NULL);
  free(token);
  return rc != 0 ? rc : bh_return(t, "[s I]", all, pages);
}

/* [url, n] -> n GETs in a row; the session's connections for them. */
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
    if ((rc = bh_s3_get(t, u, -1, -1, &r)) != 0)
      return rc;
    bh_http_resp_free(r);
  }
  return bh_return(t, "I", (int64_t)(bh_http_connects(
                              bh_task_context(t)->http_session) - c0));
}

static int
pid(bh_task *t) {
  return bh_return(t, "I", (int64_t)getpid());
}

/* Calls that cannot be, in a bee without an S3 client: every call's
 * code, NULL t or out first, then each operation on a good address
 * (the message of the last), then a bad address. */
static int
no_client(bh_task *t) {
  bh_http_resp *r = NULL;
  bh_s3_listing *l = NULL;
  char last[256];
  int c[9];

  c[0] = bh_s3_get(NULL, "s3://b/k", -1, -1, &r);
  c[1] = bh_s3_get(t, "s3://b/k", -1, -1, NULL);
  c[2] = bh_s3_list(t, "s3://b/", NULL, 0, NULL);
  c[3] = bh_s3_get(t, "s3://b/k", -1, -1, &r);
  c[4] = bh_s3_head(t, "s3://b/k", &r);
  c[5] = bh_s3_put(t, "s3://b/k", "x", 1, NULL);
  c[6] = bh_s3_list(t, "s3://b/", NULL, 0, &l);
  c[7] = bh_s3_delete(t, "s3://b/k");
  snprintf(last, sizeof(last), "%s", bh_task_errmsg(t));
  c[8] = bh_s3_delete(t, "http://b/k");
  return bh_return(t, "[[i i i i i i i i i] s s b]", c[0], c[1], c[2], c[3],
                   c[4], c[5], c[6], c[7], c[8], last, bh_task_errmsg(t),
                   r == NULL && l == NULL);
}

static const bh_task_def wtasks[] = {
    {"put", put},   {"get", get},     {"head", head}, {"del", del},
    {"list", list}, {"get_n", get_n}, {"pid", pid},
    {"no_client", no_client}, {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = wtasks};

/* ---- the queen: a script of delegations -------------------------------- */

static const bh_task_def qtasks[] = {{"script", fixture_script},
                                     {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = qtasks};

/* The script in a hive whose sessions trust ca (NULL: the system's). */
static int
run_script_ca(const char *profile, size_t max_frame, const char *ca,
              bh_value *steps, bh_result **r) {
  bh_run_opts o = {.queen_class = &queen, .worker_class = &worker,
                   .task_name = "script", .workers = 1, .min_workers = 1,
                   .max_workers = 1, .s3_profile = profile,
                   .max_frame = max_frame, .http_ca_file = ca};
  bh_value *args = bh_value_pack(NULL, "[v]", steps);
  int rc;

  o.task_args = args;
  rc = run_hive(&o, r);
  bh_value_free(args);
  bh_value_free(steps);
  return rc;
}

static int
run_script(const char *profile, size_t max_frame, bh_value *steps,
           bh_result **r) {
  return run_script_ca(profile, max_frame, NULL, steps, r);
}

/* Step i failed with exception type S3Error and a message holding each
 * of the NULL-terminated strings. */
static int
failed(const bh_result *r, uint32_t i, const char *const *says) {
  char type[32], msg[1024];

  ASSERT(fixture_step(r, i) != NULL);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, i), NULL, 0, "[s s]", type, sizeof(type),
                          msg, sizeof(msg)),
                0);
  fprintf(stderr, "step %u: %s: %s\n", i, type, msg);
  ASSERT_STR_EQ(type, "S3Error");
  for (; *says != NULL; says++)
    ASSERT(strstr(msg, *says) != NULL);
  return 0;
}

#define SAYS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- tests --------------------------------------------------------------- */

TEST(every_operation) {
  bh_result *r;
  const void *b;
  size_t n;
  int64_t len, pages;
  int status;
  char keys[1024], etag[64];

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(
      run_script(
          "test", 0,
          bh_value_pack(
              NULL,
              "[[s[s y#]] [s[s y#]] [s[s y#]] [s[s y#]] [s[s y#]]"
              " [s[s I I]] [s[s I I]] [s[s]] [s[s I]] [s[s I]]"
              " [s[s]] [s[s I I]] [s[s I]]]",
              "put", "s3://bh-test/d/a b+c", "hello world", (size_t)11,
              "put", "s3://bh-test/d/2", "x", (size_t)1, "put",
              "s3://bh-test/d/3", "yy", (size_t)2, "put", "s3://bh-test/d/ü",
              "zzz", (size_t)3, "put", "s3://bh-test/e/1", "e", (size_t)1,
              "get", "s3://bh-test/d/a b+c", (int64_t)-1, (int64_t)-1, "get",
              "s3://bh-test/d/a b+c", (int64_t)6, (int64_t)10, "head",
              "s3://bh-test/d/a b+c", "list", "s3://bh-test/d/", (int64_t)2,
              "list", "s3://bh-test/", (int64_t)0, "del",
              "s3://bh-test/d/2", "get", "s3://bh-test/d/2", (int64_t)-1,
              (int64_t)-1, "list", "s3://bh-test/d/", (int64_t)0),
          &r),
      0);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 5), NULL, 0, "[i y# s]", &status, &b, &n,
                          etag, sizeof(etag)),
                0);
  ASSERT(status == 200 && n == 11 && memcmp(b, "hello world", 11) == 0);
  ASSERT(etag[0] == '"');
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 6), NULL, 0, "[i y# *]", &status, &b, &n),
                0);
  ASSERT(status == 206 && n == 5 && memcmp(b, "world", 5) == 0);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 7), NULL, 0, "I", &len), 0);
  ASSERT_INT_EQ(len, 11);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 8), NULL, 0, "[s I]", keys, sizeof(keys),
                          &pages),
                0);
  ASSERT_STR_EQ(keys, "d/2:1 d/3:2 d/a b+c:11 d/ü:3 ");
  ASSERT_INT_EQ(pages, 2);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 9), NULL, 0, "[s I]", keys, sizeof(keys),
                          &pages),
                0);
  ASSERT_STR_EQ(keys, "d/2:1 d/3:2 d/a b+c:11 d/ü:3 e/1:1 ");
  ASSERT_INT_EQ(pages, 1);
  ASSERT(fixture_step(r, 10)->type == MSGPACK_OBJECT_NIL);
  ASSERT_INT_EQ(failed(r, 11, SAYS("NoSuchKey: ", "(GET s3://bh-test/d/2, ",
                                   "bucket 'bh-test', key 'd/2', HTTP 404")),
                0);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 12), NULL, 0, "[s I]", keys, sizeof(keys),
                          &pages),
                0);
  ASSERT_STR_EQ(keys, "d/3:2 d/a b+c:11 d/ü:3 ");
  bh_result_free(r);
  down();
  return 0;
}

TEST(s3_errors_name_code_bucket_and_key) {
  bh_result *r;

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(run_script("test", 0,
                           bh_value_pack(NULL, "[[s[s I I]] [s[s I]] [s[s]]"
                                               " [s[s I I]]]",
                                         "get", "s3://no-such-bucket/k",
                                         (int64_t)-1, (int64_t)-1, "list",
                                         "s3://no-such-bucket/", (int64_t)0,
                                         "head", "s3://bh-test/nothing",
                                         "get", "http://bh-test/k",
                                         (int64_t)-1, (int64_t)-1),
                           &r),
                0);
  ASSERT_INT_EQ(failed(r, 0, SAYS("NoSuchBucket: ", "bucket 'no-such-bucket'",
                                  "key 'k'", "HTTP 404")),
                0);
  ASSERT_INT_EQ(failed(r, 1, SAYS("NoSuchBucket: ", "HTTP 404")), 0);
  ASSERT_INT_EQ(failed(r, 2, SAYS("NoSuchKey: ", "(HEAD s3://bh-test/nothing",
                                  "HTTP 404")),
                0);
  ASSERT_INT_EQ(failed(r, 3, SAYS("not an s3:// address: http://bh-test/k")),
                0);
  bh_result_free(r);
  down();
  return 0;
}

/* The proxy checks every signature: a wrong secret or an unknown key is
 * refused as S3 refuses it. */
TEST(wrong_secret_and_unknown_key_are_refused) {
  bh_result *r;

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(run_script("bad", 0,
                           bh_value_pack(NULL, "[[s[s y#]]]", "put",
                                         "s3://bh-test/k", "v", (size_t)1),
                           &r),
                0);
  ASSERT_INT_EQ(failed(r, 0, SAYS("SignatureDoesNotMatch: ",
                                  "(PUT s3://bh-test/k", "HTTP 403")),
                0);
  bh_result_free(r);
  ASSERT_INT_EQ(run_script("nobody", 0,
                           bh_value_pack(NULL, "[[s[s I I]]]", "get",
                                         "s3://bh-test/k", (int64_t)-1,
                                         (int64_t)-1),
                           &r),
                0);
  ASSERT_INT_EQ(failed(r, 0, SAYS("InvalidAccessKeyId: ", "HTTP 403")), 0);
  bh_result_free(r);
  down();
  return 0;
}

/* A key pair that needs its session token: the token is sent, signed. */
TEST(session_token_from_the_profile) {
  bh_result *r;
  const void *b;
  size_t n;

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(run_script("tok", 0,
                           bh_value_pack(NULL, "[[s[s y#]] [s[s I I]]]",
                                         "put", "s3://bh-test/t", "tok",
                                         (size_t)3, "get", "s3://bh-test/t",
                                         (int64_t)-1, (int64_t)-1),
                           &r),
                0);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 1), NULL, 0, "[* y# *]", &b, &n), 0);
  ASSERT(n == 3 && memcmp(b, "tok", 3) == 0);
  bh_result_free(r);
  down();
  return 0;
}

/* No profile named (""): the environment's keys and endpoint. */
TEST(environment_credentials_and_endpoint) {
  bh_result *r;
  const void *b;
  size_t n;

  ASSERT_INT_EQ(up(), 0);
  setenv("AWS_ACCESS_KEY_ID", srv.access_key, 1);
  setenv("AWS_SECRET_ACCESS_KEY", srv.secret_key, 1);
  setenv("AWS_ENDPOINT_URL_S3", srv.endpoint, 1);
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1); /* _S3 wins */
  setenv("AWS_REGION", srv.region, 1);
  setenv("AWS_PROFILE", "bad", 1); /* env keys win over AWS_PROFILE */
  ASSERT_INT_EQ(run_script("", 0,
                           bh_value_pack(NULL, "[[s[s y#]] [s[s I I]]]",
                                         "put", "s3://bh-test/env", "e",
                                         (size_t)1, "get", "s3://bh-test/env",
                                         (int64_t)-1, (int64_t)-1),
                           &r),
                0);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 1), NULL, 0, "[* y# *]", &b, &n), 0);
  ASSERT(n == 1 && memcmp(b, "e", 1) == 0);
  bh_result_free(r);
  down();
  return 0;
}

/* A profile that is not there: the hive does not start, and says why. */
TEST(missing_profile_is_a_clear_error) {
  bh_result *r;
  char text[2048];

  ASSERT_INT_EQ(up(), 0);
  ASSERT(run_script("nosuch", 0, bh_value_pack(NULL, "[]"), &r) != 0);
  bh_result_format(r, text, sizeof(text));
  fprintf(stderr, "%s\n", text);
  ASSERT(strstr(text, "nosuch") != NULL);
  ASSERT(strstr(text, "could not be found") != NULL);
  bh_result_free(r);
  down();
  return 0;
}

/* 1 MiB through a 64 KiB frame limit, both ways: the put's argument and
 * the get's answer travel as blobs. */
TEST(object_larger_than_max_frame) {
  char *big = malloc(BIG);
  bh_result *r;
  const void *b;
  size_t n;

  ASSERT(big != NULL);
  fill(big, BIG);
  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(run_script("test", 64 << 10,
                           bh_value_pack(NULL, "[[s[s y#]] [s[s I I]]]",
                                         "put", "s3://bh-test/big", big, BIG,
                                         "get", "s3://bh-test/big",
                                         (int64_t)-1, (int64_t)-1),
                           &r),
                0);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 1), NULL, 0, "[* y# *]", &b, &n), 0);
  ASSERT_INT_EQ(n, BIG);
  ASSERT(holds_pattern(b, n));
  bh_result_free(r);
  free(big);
  down();
  return 0;
}

TEST(connections_are_reused) {
  long acc0, acc1;
  int64_t opened;
  bh_result *r;

  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(run_script("test", 0,
                           bh_value_pack(NULL, "[[s[s y#]]]", "put",
                                         "s3://bh-test/r", "r", (size_t)1),
                           &r),
                0);
  bh_result_free(r);
  ASSERT_INT_EQ(bh_test_s3_connections(&srv, &acc0, NULL), 0);
  ASSERT_INT_EQ(run_script("test", 0,
                           bh_value_pack(NULL, "[[s[s I]]]", "get_n",
                                         "s3://bh-test/r", (int64_t)20),
                           &r),
                0);
  ASSERT_INT_EQ(bh_test_s3_connections(&srv, &acc1, NULL), 0);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 0), NULL, 0, "I", &opened), 0);
  ASSERT_INT_EQ(opened, 1);
  ASSERT_INT_EQ(acc1 - acc0, 1);
  bh_result_free(r);
  down();
  return 0;
}

/* ---- cancelling a GET while its body arrives ----------------------------- */

#define HUGE ((size_t)4 << 20)
#define RATE (256L << 10) /* the proxy's bytes a second: HUGE in 16 s */

/* The pid of the (only) worker, or -1. */
static int64_t
worker_pid(bh_task *t) {
  bh_result *r;
  int64_t p = -1;

  if (bh_delegate(t, &r, "pid", NULL) != 0 ||
      bh_result_unpack(r, NULL, 0, "I", &p) != 0)
    p = -1;
  bh_result_free(r);
  return p;
}

/* [huge url, small url, data, deadline ms]: puts data at the huge url and
 * "s" at the small one, then gets the huge object with the deadline, then
 * the small one, in the one worker, which runs a task at a time: the
 * second get starts only when the first task has ended. Returns [the
 * first's status, its reason, ms until its answer, ms until the second's,
 * the second's body, the worker's pid before, after]. */
static int
q_cancel_get(bh_task *t) {
  char huge[256], small[256], reason[256] = "";
  const void *data, *body = "";
  size_t len, blen = 0;
  int64_t ms, t0, took, total, p1, p2;
  bh_deleg_opts dopt = {0};
  bh_group *g = bh_group_new(t);
  bh_result *r = NULL;
  bh_future *f;
  int st, rc;

  if (bh_task_unpack(t, "[s s y# I]", huge, sizeof(huge), small,
                     sizeof(small), &data, &len, &ms) != 0)
    return BH_ERAISED;
  if ((rc = bh_delegate(t, &r, "put", "[s y#]", huge, data, len)) != 0 ||
      (bh_result_free(r), rc = bh_delegate(t, &r, "put", "[s y#]", small,
                                           "s", (size_t)1)) != 0)
    return bh_raise_result(t, r);
  bh_result_free(r);
  p1 = worker_pid(t);
  dopt.timeout_ms = ms;
  bh_group_set_opts(g, &dopt);
  t0 = bh_now();
  bh_group_delegate(g, &f, NULL, "get", "[s I I]", huge, (int64_t)-1,
                    (int64_t)-1);
  bh_future_wait(f, -1);
  took = bh_now() - t0;
  st = (int)bh_result_status(bh_future_result(f));
  if (bh_result_reason(bh_future_result(f)) != NULL)
    snprintf(reason, sizeof(reason), "%s",
             bh_result_reason(bh_future_result(f)));
  bh_future_free(f);
  bh_group_free(g);
  rc = bh_delegate(t, &r, "get", "[s I I]", small, (int64_t)-1, (int64_t)-1);
  total = bh_now() - t0;
  if (rc == 0)
    bh_result_unpack(r, NULL, 0, "[* y# *]", &body, &blen);
  p2 = worker_pid(t);
  rc = bh_return(t, "[i s I I y# I I]", st, reason, took, total, body, blen,
                 p1, p2);
  bh_result_free(r);
  return rc;
}

static const bh_task_def ctasks[] = {{"cancel_get", q_cancel_get},
                                     {NULL, NULL}};
static const bh_class cqueen = {.name = "CQ", .tasks = ctasks};

/* The proxy sends bodies at 256 KiB/s, so the 4 MiB GET would take 16 s;
 * its 1 s deadline passes while the body arrives. The delegation answers
 * cancelled at the deadline, and the worker's task gives up its transfer
 * at once (the proxy sees the client leave midway): the next GET, which
 * the worker takes only when that task has ended, is answered long before
 * the big body could have arrived. The worker was not killed (the grace
 * is a minute): it answered the cancellation itself. */
TEST(get_cancelled_while_the_body_arrives) {
  bh_run_opts o = {.queen_class = &cqueen, .worker_class = &worker,
                   .task_name = "cancel_get", .workers = 1, .min_workers = 1,
                   .max_workers = 1, .max_concurrency = 1,
                   .kill_grace_ms = 60000, .s3_profile = "test"};
  char *data = malloc(HUGE), reason[256];
  int64_t took, total, p1, p2;
  long cut, cut_bytes;
  const void *body;
  size_t len;
  bh_result *r;
  int st;

  ASSERT(data != NULL);
  fill(data, HUGE);
  ASSERT_INT_EQ(up(), 0);
  ASSERT_INT_EQ(bh_test_s3_throttle(&srv, RATE), 0);
  o.task_args = bh_value_pack(NULL, "[s s y# I]", "s3://bh-test/huge",
                              "s3://bh-test/small", data, HUGE,
                              (int64_t)1000);
  free(data);
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i s I I y# I I]", &st, reason,
                                 sizeof(reason), &took, &total, &body, &len,
                                 &p1, &p2),
                0);
  ASSERT_INT_EQ(bh_test_s3_cut(&srv, &cut, &cut_bytes), 0);
  fprintf(stderr, "cancelled after %lld ms (%s); the next GET done after "
          "%lld ms; the proxy cut %ld response(s) after %ld bytes\n",
          (long long)took, reason, (long long)total, cut, cut_bytes);
  ASSERT_INT_EQ(st, BH_CANCELLED);
  ASSERT(strstr(reason, "deadline") != NULL);
  ASSERT(took >= 1000 && took < 3000);
  ASSERT(total < (int64_t)(HUGE / RATE) * 1000 / 2);
  ASSERT(len == 1 && memcmp(body, "s", 1) == 0);
  ASSERT(p1 > 0 && p1 == p2);
  ASSERT_INT_EQ(cut, 1);
  ASSERT(cut_bytes > 0 && (size_t)cut_bytes < HUGE);
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  down();
  return 0;
}

/* ---- an https:// endpoint ------------------------------------------------ */

/* The S3 client's requests go through the bee's HTTP session, so they
 * trust what http_ca_file names: nginx stands in for S3 over TLS (it
 * serves bucket/key as a file and ignores the signature), with its
 * self-signed certificate. Without the option the same GET is a TLS
 * failure. */
TEST(https_endpoint_is_trusted_with_the_ca_file) {
  char docroot[] = "/tmp/bh_test_s3_tls_XXXXXX", path[300], cmd[300];
  bh_test_http web;
  bh_result *r;
  const void *b;
  size_t n;
  int status;
  FILE *f;

  ASSERT_INT_EQ(up(), 0);
  ASSERT(mkdtemp(docroot) != NULL);
  snprintf(path, sizeof(path), "%s/bh-test", docroot);
  ASSERT_INT_EQ(mkdir(path, 0755), 0);
  snprintf(path, sizeof(path), "%s/bh-test/k", docroot);
  ASSERT_INT_EQ(write_text(path, "over tls"), 0);
  ASSERT_INT_EQ(bh_test_http_start_tls(&web, docroot, 1), 0);
  snprintf(path, sizeof(path), "%s/.aws/config", home);
  ASSERT((f = fopen(path, "a")) != NULL);
  fprintf(f, "[profile tls]\nregion = %s\nendpoint_url = %s\n", srv.region,
          web.tls_base);
  ASSERT_INT_EQ(fclose(f), 0);
  ASSERT_INT_EQ(run_script_ca("tls", 0, web.ca_file,
                              bh_value_pack(NULL, "[[s[s I I]]]", "get",
                                            "s3://bh-test/k", (int64_t)-1,
                                            (int64_t)-1),
                              &r),
                0);
  if (bh_unpack(fixture_step(r, 0), NULL, 0, "[i y# *]", &status, &b,
                &n) != 0) {
    failed(r, 0, SAYS("no failure")); /* prints the failure */
    return 1;
  }
  ASSERT(status == 200 && n == 8 && memcmp(b, "over tls", 8) == 0);
  bh_result_free(r);
  ASSERT_INT_EQ(run_script("tls", 0,
                           bh_value_pack(NULL, "[[s[s I I]]]", "get",
                                         "s3://bh-test/k", (int64_t)-1,
                                         (int64_t)-1),
                           &r),
                0);
  ASSERT_INT_EQ(failed(r, 0, SAYS("s3://bh-test/k: TLS failure (GET https://",
                                  "/bh-test/k): SSL certificate problem")),
                0);
  bh_result_free(r);
  bh_test_http_stop(&web);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", docroot);
  ASSERT_INT_EQ(system(cmd), 0);
  down();
  return 0;
}

/* Without an S3 client (s3_profile NULL), or with an address that is not
 * s3://, every call is BH_EINVAL and says why; no server needed. */
TEST(calls_that_cannot_be_are_einval) {
  bh_run_opts o = {.queen_class = &queen, .worker_class = &worker,
                   .task_name = "script", .workers = 1};
  const msgpack_object *codes;
  char last[256], bad[256];
  bh_result *r;
  int cleared;
  uint32_t i;

  o.task_args = bh_value_pack(NULL, "[[[s[]]]]", "no_client");
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  bh_value_free((bh_value *)o.task_args);
  ASSERT_INT_EQ(bh_unpack(fixture_step(r, 0), NULL, 0, "[o s s b]", &codes,
                          last, sizeof(last), bad, sizeof(bad), &cleared),
                0);
  for (i = 0; i < codes->via.array.size; i++)
    ASSERT_INT_EQ(codes->via.array.ptr[i].via.i64, BH_EINVAL);
  ASSERT_INT_EQ(codes->via.array.size, 9);
  ASSERT_STR_EQ(last, "s3://b/k: this bee has no S3 client "
                      "(bh_run_opts.s3_profile is NULL)");
  ASSERT_STR_EQ(bad, "not an s3:// address: http://b/k");
  ASSERT(cleared);
  bh_result_free(r);
  return 0;
}

TEST_MAIN(TEST_ENTRY(calls_that_cannot_be_are_einval),
          TEST_ENTRY_T(every_operation, 60),
          TEST_ENTRY_T(s3_errors_name_code_bucket_and_key, 60),
          TEST_ENTRY_T(wrong_secret_and_unknown_key_are_refused, 60),
          TEST_ENTRY_T(session_token_from_the_profile, 60),
          TEST_ENTRY_T(environment_credentials_and_endpoint, 60),
          TEST_ENTRY_T(missing_profile_is_a_clear_error, 60),
          TEST_ENTRY_T(object_larger_than_max_frame, 60),
          TEST_ENTRY_T(connections_are_reused, 60),
          TEST_ENTRY_T(get_cancelled_while_the_body_arrives, 60),
          TEST_ENTRY_T(https_endpoint_is_trusted_with_the_ca_file, 60))
