/* bench_io.c - rows that wait on the network: GETs from nginx on loopback
 * (tests/servers.h) that answer after 20 ms, done
 *   - by a serial loop (libcurl's easy interface, one after another): the
 *     loop a hive replaces;
 *   - by a plain libcurl multi client in one process, N in flight: what
 *     the server and libcurl manage without the hive (its floor);
 *   - by the hive: the queen keeps N delegations in flight over 2 workers,
 *     each a task that GETs its row through the bee's HTTP session.
 * Efficiency is rows/s over the ideal N / 20 ms. Then GETs of a small
 * object from s3rver behind the SigV4 proxy: the hive's S3 client against
 * raw libcurl (CURLOPT_AWS_SIGV4) with as many in flight.
 *
 *   bench_io [ROUNDS]  (BENCH_IO_ROUNDS: waves of N requests, default 30) */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "servers.h"

#define DELAY_MS 20
#define ROW "P5\n8 8\n16\n0123456789012345678901234567890123456789012345678901234567890123"

static char docroot[] = "/tmp/bh_bench_io_XXXXXX";
static bh_test_http web;
static bh_test_s3 s3;
static char row_url[160], obj_url[160];

static size_t
sink(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  *(size_t *)ud += size * n;
  return size * n;
}

/* ---- floors --------------------------------------------------------------- */

static double
serial_rows_per_s(int n) {
  CURL *e = curl_easy_init();
  size_t got = 0;
  int64_t t0 = bench_now_ns();
  int i;

  curl_easy_setopt(e, CURLOPT_URL, row_url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &got);
  for (i = 0; i < n; i++)
    if (curl_easy_perform(e) != CURLE_OK)
      bench_die("serial GET", BH_EHTTP, NULL);
  curl_easy_cleanup(e);
  return n / ((double)(bench_now_ns() - t0) / 1e9);
}

/* total requests, `inflight` at once, through one multi handle. s3: sign
 * with CURLOPT_AWS_SIGV4. */
static double
multi_rows_per_s(const char *url, int inflight, int total, int s3_sign) {
  CURLM *m = curl_multi_init();
  struct curl_slist *h = curl_slist_append(
      NULL, "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e"
            "4649b934ca495991b7852b855");
  char userpwd[256];
  size_t got = 0;
  int started = 0, done = 0, running, i, left;
  int64_t t0 = bench_now_ns();
  CURLMsg *msg;

  snprintf(userpwd, sizeof(userpwd), "%s:%s", s3.access_key, s3.secret_key);
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 1024L);
  for (i = 0; i < inflight && started < total; i++, started++) {
    CURL *e = curl_easy_init();

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &got);
    if (s3_sign) {
      curl_easy_setopt(e, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
      curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    }
    curl_multi_add_handle(m, e);
  }
  while (done < total) {
    curl_multi_perform(m, &running);
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      CURL *e = msg->easy_handle;
      long status = 0;

      if (msg->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result != CURLE_OK || status != 200)
        bench_die("multi GET", BH_EHTTP, NULL);
      done++;
      curl_multi_remove_handle(m, e);
      if (started < total) { /* the same handle, the next request */
        started++;
        curl_multi_add_handle(m, e);
      } else {
        curl_easy_cleanup(e);
      }
    }
    if (done < total)
      curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  curl_multi_cleanup(m);
  curl_slist_free_all(h);
  return total / ((double)(bench_now_ns() - t0) / 1e9);
}

/* ---- the hive --------------------------------------------------------------- */

static int
w_fetch(bh_task *t) {
  char url[160];
  bh_http_resp *r;
  size_t n;
  int rc;

  if (bh_task_unpack(t, "[s]", url, sizeof(url)) != 0)
    return BH_ERAISED;
  if ((rc = bh_http_get(t, url, &r)) != 0)
    return rc;
  bh_http_resp_body(r, &n);
  rc = bh_http_resp_status(r) == 200
           ? bh_return(t, "I", (int64_t)n)
           : bh_raise(t, "HTTPError", "status %ld", bh_http_resp_status(r));
  bh_http_resp_free(r);
  return rc;
}

static int
w_s3get(bh_task *t) {
  char url[160];
  bh_http_resp *r;
  size_t n;
  int rc;

  if (bh_task_unpack(t, "[s]", url, sizeof(url)) != 0)
    return BH_ERAISED;
  if ((rc = bh_s3_get(t, url, -1, -1, &r)) != 0)
    return rc;
  bh_http_resp_body(r, &n);
  rc = bh_return(t, "I", (int64_t)n);
  bh_http_resp_free(r);
  return rc;
}

static const bh_task_def wtasks[] = {
    {"fetch", w_fetch}, {"s3get", w_s3get}, {NULL, NULL}};
static const bh_class worker = {.name = "IOWorker", .tasks = wtasks};

/* [task, url, total, inflight] -> seconds from the first delegation to
 * the last answer, `inflight` kept in flight. */
static int
q_fan(bh_task *t) {
  char task[16], url[160];
  int64_t total, inflight, started = 0, t0 = bench_now_ns();
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int rc = 0;

  if (bh_task_unpack(t, "[s s I I]", task, sizeof(task), url, sizeof(url),
                     &total, &inflight) != 0)
    return BH_ERAISED;
  for (; started < inflight && started < total; started++)
    bh_group_delegate(g, NULL, NULL, task, "[s]", url);
  while (rc == 0 && (rc = bh_group_next(g, &f, -1)) == 0) {
    if (bh_result_status(bh_future_result(f)) != BH_SUCCEEDED)
      rc = bh_raise_result(t, bh_future_result(f));
    bh_future_free(f);
    if (rc == 0 && started < total && ++started)
      bh_group_delegate(g, NULL, NULL, task, "[s]", url);
  }
  bh_group_free(g);
  if (rc != BH_EDONE)
    return rc;
  return bh_return(t, "f", (double)(bench_now_ns() - t0) / 1e9);
}

static const bh_task_def qtasks[] = {{"fan", q_fan}, {NULL, NULL}};
static const bh_class queen = {.name = "IOQueen", .tasks = qtasks};

static double
hive_rows_per_s(const char *task, const char *url, int inflight, int total,
                const char *profile) {
  bh_value *args = bh_value_pack(NULL, "[s s I I]", task, url,
                                 (int64_t)total, (int64_t)inflight);
  bh_run_opts o = {.queen_class = &queen, .worker_class = &worker,
                   .task_name = "fan", .task_args = args,
                   .max_concurrency = inflight, .s3_profile = profile};
  bh_result *r = bench_run_opts(&o, 2);
  double secs;

  if (bh_result_unpack(r, NULL, 0, "f", &secs) != 0)
    bench_die("fan", BH_ETYPE, r);
  bh_result_free(r);
  bh_value_free(args);
  return total / secs;
}

/* ---- set-up ----------------------------------------------------------------- */

static void
setup_web(void) {
  char path[300];
  FILE *f;

  if (mkdtemp(docroot) == NULL)
    bench_die("mkdtemp", BH_EINVAL, NULL);
  snprintf(path, sizeof(path), "%s/row.pgm", docroot);
  if ((f = fopen(path, "w")) == NULL || fputs(ROW, f) < 0 || fclose(f) != 0)
    bench_die("row file", BH_EINVAL, NULL);
  bh_test_raise_nofile(20000);
  if (bh_test_http_start(&web, docroot, 2) != 0)
    bench_die("nginx", BH_ESPAWN, NULL);
  snprintf(row_url, sizeof(row_url), "%s/delay/%d/row.pgm", web.base,
           DELAY_MS);
}

/* s3rver with one small object, and a profile for the hive's client in a
 * temporary HOME. */
static void
setup_s3(char *home, size_t len) {
  static const char *const buckets[] = {"bench", NULL};
  char path[400], cmd[600];
  FILE *f;

  snprintf(home, len, "%s/home", docroot);
  snprintf(path, sizeof(path), "%s/.aws", home);
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
  if (system(cmd) != 0 || bh_test_s3_start(&s3, buckets) != 0)
    bench_die("s3rver", BH_ESPAWN, NULL);
  snprintf(path, sizeof(path), "%s/.aws/credentials", home);
  if ((f = fopen(path, "w")) == NULL)
    bench_die("profile", BH_EINVAL, NULL);
  fprintf(f, "[bench]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
          s3.access_key, s3.secret_key);
  fclose(f);
  snprintf(path, sizeof(path), "%s/.aws/config", home);
  if ((f = fopen(path, "w")) == NULL)
    bench_die("profile", BH_EINVAL, NULL);
  fprintf(f, "[profile bench]\nregion = %s\nendpoint_url = %s\n", s3.region,
          s3.endpoint);
  fclose(f);
  setenv("HOME", home, 1);
  /* The object, put through the unchecked store directly. */
  snprintf(cmd, sizeof(cmd),
           "curl -sf -X PUT --data-binary '%s' '%s/bench/row.pgm' "
           ">/dev/null", "P5 8 8 16 0123456789", s3.store);
  if (system(cmd) != 0)
    bench_die("s3 put", BH_EHTTP, NULL);
  snprintf(obj_url, sizeof(obj_url), "%s/bench/row.pgm", s3.endpoint);
}

int
main(int argc, char **argv) {
  long rounds = bench_arg(argc, argv, 1, "BENCH_IO_ROUNDS", 30);
  int sizes[] = {256, 1024};
  char key[64], home[256], cmd[400];
  double serial, raw, hive;
  size_t i;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  setup_web();
  serial = serial_rows_per_s(100);
  bench_out("io_serial_gets_per_s_20ms", serial, "gets/s");
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    int n = sizes[i], total = n * (int)rounds;
    double ideal = n / (DELAY_MS / 1000.0);

    raw = multi_rows_per_s(row_url, n, total, 0);
    hive = hive_rows_per_s("fetch", row_url, n, total, NULL);
    snprintf(key, sizeof(key), "io_raw_rows_per_s_%d", n);
    bench_out(key, raw, "rows/s");
    snprintf(key, sizeof(key), "io_hive_rows_per_s_%d", n);
    bench_out(key, hive, "rows/s");
    snprintf(key, sizeof(key), "io_raw_efficiency_%d", n);
    bench_out(key, raw / ideal, "ratio");
    snprintf(key, sizeof(key), "io_efficiency_%d", n);
    bench_out(key, hive / ideal, "ratio");
    if (n == 256) {
      bench_out("io_hive_vs_serial_256", hive / serial, "ratio");
    }
  }
  bh_test_http_stop(&web);
  setup_s3(home, sizeof(home));
  {
    char s3url[64] = "s3://bench/row.pgm";
    int n = 16, total = 2000;

    raw = multi_rows_per_s(obj_url, n, total, 1);
    hive = hive_rows_per_s("s3get", s3url, n, total, "bench");
    bench_out("s3_raw_gets_per_s", raw, "gets/s");
    bench_out("s3_gets_per_s", hive, "gets/s");
    bench_out("s3_gets_ratio", hive / raw, "ratio");
  }
  bh_test_s3_stop(&s3);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", docroot);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_io: could not remove %s\n", docroot);
  curl_global_cleanup();
  return 0;
}
