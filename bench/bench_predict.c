/* bench_predict.c - the main job (examples/predict) on its three sources,
 * against the loop it replaces and the peer a Python user would pick:
 *
 *   - file://: the queen's image cache on local disk;
 *   - http://: the same images from nginx on loopback, each GET answered
 *     after 20 ms (/delay/20/);
 *   - s3://: the same images uploaded to s3rver behind the SigV4 proxy.
 *
 * For each source: the hive (the predict program as a user runs it, its
 * own "rows/s" line, which times the queen's task), a serial C loop doing
 * the same per-row work in one process (read the row, decode the PGM, the
 * 64x10 model, format the CSV line) with libcurl's easy interface for the
 * network, and bench/predict_peer.py (a plain loop for files, asyncio with
 * aiohttp for http and S3, botocore signing S3 requests) when python3 has
 * aiohttp and botocore. The hive's CSV over http and S3 is checked
 * byte-identical to its CSV over files.
 *
 *   bench_predict PREDICT [ROWS]
 *     PREDICT: the built examples/predict (`make bench` builds it)
 *     ROWS (BENCH_PREDICT_ROWS): rows of the file and http runs (default
 *       20000); the S3 runs take ROWS / 4, the serial network loops 100.
 *     BENCH_PREDICT_SOURCES: which of file, http and s3 to measure (default
 *       all three), e.g. "file". */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* The main job's own decoder and model; not every helper is used here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../examples/input.h"
#pragma GCC diagnostic pop
#include "bench.h"
#include "servers.h"

#define DELAY_MS 20
#define SERIAL_NET_ROWS 100
#define PEER_INFLIGHT 512 /* predict's default: 256 connections x 2 workers */
#define NROWS 1797        /* the dataset's rows, cycled */

static char work[] = "/tmp/bh_bench_predict_XXXXXX";
static char predict_bin[1024], data_dir[1100], py[64];
static bh_test_http web;
static bh_test_s3 s3;
static digits_model model;
static digits_data frame; /* the dataframe: the rows' labels */
/* The CSV the network runs' must equal: the file run's, or the warm-up's
 * when only network sources run. */
static const char *ref = "warm";
static long ref_rows = NROWS;

/* ---- running programs ------------------------------------------------------ */

/* CPU seconds (user + system) used so far by who (RUSAGE_SELF, or
 * RUSAGE_CHILDREN: every descendant waited for, the hive's workers too). */
static double
cpu_s(int who) {
  struct rusage u;

  getrusage(who, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* The kernel's part of it (system time). */
static double
sys_s(int who) {
  struct rusage u;

  getrusage(who, &u);
  return (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of the last hive run, all its processes, and the kernel's
 * part of them. */
static double hive_cpu, hive_sys;

/* Runs the shell command and returns the number after `tag` in its
 * output's last line that has it; dies if the command fails. */
static double
run_for(const char *cmd, const char *tag) {
  FILE *p = popen(cmd, "r");
  char line[1024];
  double v = -1;
  const char *at;

  if (p == NULL)
    bench_die("popen", BH_ESPAWN, NULL);
  while (fgets(line, sizeof(line), p) != NULL)
    if ((at = strstr(line, tag)) != NULL)
      v = strtod(at + strlen(tag), NULL);
  if (pclose(p) != 0 || v <= 0) {
    fprintf(stderr, "bench_predict: failed: %s\n", cmd);
    bench_die("run", BH_ESPAWN, NULL);
  }
  return v;
}

/* The hive: predict with `args`, its CSV to work/NAME.csv. */
static double
hive(const char *name, long rows, const char *args) {
  char cmd[2048];

  double c0 = cpu_s(RUSAGE_CHILDREN), k0 = sys_s(RUSAGE_CHILDREN), v;

  snprintf(cmd, sizeof(cmd),
           "'%s' --quiet --rows %ld --cache '%s/rows' --out '%s/%s.csv' %s",
           predict_bin, rows, work, work, name, args);
  v = run_for(cmd, "rows/s ");
  hive_cpu = cpu_s(RUSAGE_CHILDREN) - c0;
  hive_sys = sys_s(RUSAGE_CHILDREN) - k0;
  return v;
}

/* The first n lines of a file, owned; NULL if unreadable. */
static char *
head_lines(const char *name, long n) {
  char path[200], *buf = NULL;
  size_t cap = 0, len = 0;
  FILE *f;
  int c;

  snprintf(path, sizeof(path), "%s/%s.csv", work, name);
  if ((f = fopen(path, "r")) == NULL)
    return NULL;
  while (n > 0 && (c = getc(f)) != EOF) {
    if (len + 2 > cap && (buf = realloc(buf, cap = cap * 2 + 4096)) == NULL)
      break;
    buf[len++] = (char)c;
    n -= c == '\n';
  }
  fclose(f);
  if (buf != NULL)
    buf[len] = '\0';
  return buf;
}

/* Whether work/a.csv's header and first rows lines equal work/b.csv's. */
static int
same_rows(const char *a, const char *b, long rows) {
  char *x = head_lines(a, rows + 1), *y = head_lines(b, rows + 1);
  int same = x != NULL && y != NULL && strcmp(x, y) == 0;

  free(x);
  free(y);
  return same;
}

static double
peer(const char *args) {
  char cmd[3300];

  snprintf(cmd, sizeof(cmd), "'%s' '%s/predict_peer.py' '%s' %s", py,
           BH_BENCH_SRC_DIR, data_dir, args);
  return run_for(cmd, "rows_per_s ");
}

/* ---- the serial loop --------------------------------------------------------- */

typedef struct sink {
  unsigned char buf[INPUT_MAX];
  size_t len;
} sink;

static size_t
take(char *p, size_t size, size_t n, void *ud) {
  sink *s = ud;

  if (s->len + size * n > sizeof(s->buf))
    return 0;
  memcpy(s->buf + s->len, p, size * n);
  s->len += size * n;
  return size * n;
}

/* Row i's input into s: from a file, or by GET through e. */
static void
serial_fetch(CURL *e, const char *prefix, size_t i, sink *s) {
  char url[700];
  FILE *f;
  long status = 0;

  snprintf(url, sizeof(url), "%sdigit-%05zu.pgm", prefix, i % NROWS);
  s->len = 0;
  if (e == NULL) {
    if ((f = fopen(url + strlen("file://"), "rb")) == NULL)
      bench_die(url, -errno, NULL);
    s->len = fread(s->buf, 1, sizeof(s->buf), f);
    fclose(f);
    return;
  }
  curl_easy_setopt(e, CURLOPT_URL, url);
  if (curl_easy_perform(e) != CURLE_OK ||
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
      status != 200)
    bench_die(url, BH_EHTTP, NULL);
}

/* One row's work after its input: decode, predict, the CSV line, as the
 * main job writes it (its label from the dataframe). */
static void
serial_row(const sink *s, size_t i, FILE *out) {
  float x[DIGITS_FEATURES];
  double p[DIGITS_CLASSES], tp[1];
  char why[128], lab[24] = "";
  int pred, label = frame.rows[i % frame.n].label;

  if (pgm_decode(s->buf, s->len, x, why, sizeof(why)) != 0)
    bench_die(why, BH_EINVAL, NULL);
  digits_predict(&model, x, 1, p);
  digits_top(p, 1, &pred, tp);
  if (label >= 0)
    snprintf(lab, sizeof(lab), "%d", label);
  fprintf(out, "%zu,%s,%d,%.6f\n", i, lab, pred, tp[0]);
}

/* CPU seconds of the last serial loop, and the kernel's part. */
static double serial_cpu, serial_sys;

/* rows through the serial loop from prefix, its CSV to work/serial.csv;
 * signed: S3 request signing. */
static double
serial(const char *prefix, long rows, int network, int sign) {
  static sink s;
  struct curl_slist *h = curl_slist_append(
      NULL, "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e"
            "4649b934ca495991b7852b855");
  CURL *e = network ? curl_easy_init() : NULL;
  char userpwd[256], region[80], path[200];
  FILE *out;
  int64_t t0;
  long i;

  snprintf(path, sizeof(path), "%s/serial.csv", work);
  if ((out = fopen(path, "w")) == NULL)
    bench_die(path, -errno, NULL);
  fputs("row_id,label,predicted,probability\n", out);
  if (e != NULL) {
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
  }
  if (sign) {
    snprintf(userpwd, sizeof(userpwd), "%s:%s", s3.access_key,
             s3.secret_key);
    snprintf(region, sizeof(region), "aws:amz:%s:s3", s3.region);
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, region);
    curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  }
  serial_cpu = cpu_s(RUSAGE_SELF);
  serial_sys = sys_s(RUSAGE_SELF);
  t0 = bench_now_ns();
  for (i = 0; i < rows; i++) {
    serial_fetch(e, prefix, (size_t)i, &s);
    serial_row(&s, (size_t)i, out);
  }
  fflush(out);
  t0 = bench_now_ns() - t0;
  serial_cpu = cpu_s(RUSAGE_SELF) - serial_cpu;
  serial_sys = sys_s(RUSAGE_SELF) - serial_sys;
  if (e != NULL)
    curl_easy_cleanup(e);
  curl_slist_free_all(h);
  fclose(out);
  return rows / ((double)t0 / 1e9);
}

/* ---- set-up ------------------------------------------------------------------ */

static void
setup_profile(void) {
  char path[200];
  FILE *f;

  snprintf(path, sizeof(path), "%s/home", work);
  if (mkdir(path, 0700) != 0)
    bench_die("home", -errno, NULL);
  snprintf(path, sizeof(path), "%s/home/.aws", work);
  if (mkdir(path, 0700) != 0)
    bench_die("home", -errno, NULL);
  snprintf(path, sizeof(path), "%s/home/.aws/credentials", work);
  if ((f = fopen(path, "w")) == NULL)
    bench_die("profile", -errno, NULL);
  fprintf(f, "[bench]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
          s3.access_key, s3.secret_key);
  fclose(f);
  snprintf(path, sizeof(path), "%s/home/.aws/config", work);
  if ((f = fopen(path, "w")) == NULL)
    bench_die("profile", -errno, NULL);
  fprintf(f, "[profile bench]\nregion = %s\nendpoint_url = %s\n", s3.region,
          s3.endpoint);
  fclose(f);
  snprintf(path, sizeof(path), "%s/home", work);
  setenv("HOME", path, 1);
  setenv("AWS_ACCESS_KEY_ID", s3.access_key, 1); /* for the Python peer */
  setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key, 1);
}

static void
setup(const char *bin) {
  char path[1200], err[1300], cmd[200];

  if (mkdtemp(work) == NULL)
    bench_die("mkdtemp", -errno, NULL);
  if (realpath(bin, predict_bin) == NULL)
    bench_die(bin, -errno, NULL);
  snprintf(data_dir, sizeof(data_dir), "%s/data", BH_BENCH_ROOT_DIR);
  snprintf(path, sizeof(path), "%s/digits_model.txt", data_dir);
  if (digits_model_load(path, &model, err, sizeof(err)) != 0)
    bench_die(err, BH_EINVAL, NULL);
  snprintf(path, sizeof(path), "%s/digits.csv.gz", data_dir);
  if (digits_load(path, &frame, err, sizeof(err)) != 0 || frame.n != NROWS)
    bench_die(err, BH_EINVAL, NULL);
  /* Debian's python3 has the packages (make's SERVER_PKGS); another one
   * first in PATH (pyenv) may not. */
  snprintf(py, sizeof(py), "%s",
           access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                                 : "python3");
  snprintf(cmd, sizeof(cmd), "'%s' -c 'import aiohttp, botocore' 2>/dev/null",
           py);
  if (system(cmd) != 0)
    py[0] = '\0';
  bh_test_raise_nofile(20000);
}

/* One source of rows, and its figures' keys: the hive, the serial loop,
 * the peer, hive / serial, hive / peer. */
typedef struct source {
  const char *name;      /* the hive's CSV: work/NAME.csv */
  char args[900];        /* predict's options for it */
  char prefix[600];      /* the rows' URL prefix for the loop and the peer */
  long rows, serial_rows;
  int network, sign;     /* the loop GETs; S3 signs them */
  const char *keys[5];
  const char *cpu_keys[4]; /* CPU per row of the hive and the loop, and
                            * the kernel's part of each (or NULL) */
} source;

static void
out_ratio(const char *key, double a, double b) {
  if (a > 0 && b > 0)
    bench_out(key, a / b, "ratio");
}

/* The hive, the loop and the peer on one source; the hive's CSV must
 * equal the file run's, and the loop's the hive's. */
static void
measure(const source *src) {
  char args[1200];
  double h, s, p = 0;

  h = hive(src->name, src->rows, src->args);
  if (strcmp(src->name, "file") != 0 &&
      !same_rows(src->name, ref, src->rows < ref_rows ? src->rows
                                                       : ref_rows)) {
    fprintf(stderr, "bench_predict: the CSV from %s differs from the CSV "
                    "from files\n", src->name);
    bench_die("csv", BH_EINVAL, NULL);
  }
  s = serial(src->prefix, src->serial_rows, src->network, src->sign);
  if (!same_rows("serial", src->name, src->serial_rows)) {
    fprintf(stderr, "bench_predict: the serial loop's CSV differs from the "
                    "hive's (%s)\n", src->name);
    bench_die("csv", BH_EINVAL, NULL);
  }
  if (py[0] != '\0') {
    snprintf(args, sizeof(args), "%s '%s' %ld %d %s", src->name, src->prefix,
             src->rows, src->network ? PEER_INFLIGHT : 1,
             src->sign ? s3.region : "");
    p = peer(args);
  }
  bench_out(src->keys[0], h, "rows/s");
  bench_out(src->keys[1], s, "rows/s");
  if (p > 0)
    bench_out(src->keys[2], p, "rows/s");
  out_ratio(src->keys[3], h, s);
  out_ratio(src->keys[4], h, p);
  if (src->cpu_keys[0] != NULL) {
    bench_out(src->cpu_keys[0], hive_cpu / (double)src->rows * 1e6, "us");
    bench_out(src->cpu_keys[1], serial_cpu / (double)src->serial_rows * 1e6,
              "us");
  }
  if (src->cpu_keys[2] != NULL) {
    bench_out(src->cpu_keys[2], hive_sys / (double)src->rows * 1e6, "us");
    bench_out(src->cpu_keys[3], serial_sys / (double)src->serial_rows * 1e6,
              "us");
  }
}

int
main(int argc, char **argv) {
  static const char *const buckets[] = {"bench", NULL};
  source file = {"file", "", "", 0, 0, 0, 0,
                 {"predict_rows_per_s", "serial_rows_per_s",
                  "predict_file_py_rows_per_s", "predict_vs_serial",
                  "predict_file_hive_vs_py"},
                 {"predict_cpu_us_per_row", "serial_cpu_us_per_row",
                  "predict_sys_us_per_row", "serial_sys_us_per_row"}};
  source http = {"http", "", "", 0, SERIAL_NET_ROWS, 1, 0,
                 {"io_rows_per_s_20ms", "io_serial_rows_per_s_20ms",
                  "predict_http_py_rows_per_s_20ms", "io_hive_vs_serial_20ms",
                  "predict_http_hive_vs_py"},
                 {NULL, NULL, NULL, NULL}};
  source s3src = {"s3", "--inputs s3://bench/rows/ --s3-profile bench", "",
                  0, SERIAL_NET_ROWS, 1, 1,
                  {"predict_s3_rows_per_s", "predict_s3_serial_rows_per_s",
                   "predict_s3_py_rows_per_s", "predict_s3_hive_vs_serial",
                   "predict_s3_hive_vs_py"},
                  {NULL, NULL, NULL, NULL}};
  const char *only;
  char cmd[1000];

  if (argc < 2) {
    fprintf(stderr, "usage: bench_predict PREDICT [ROWS]\n");
    return 2;
  }
  file.rows = http.rows = bench_arg(argc, argv, 2, "BENCH_PREDICT_ROWS",
                                    20000);
  file.serial_rows = file.rows;
  s3src.rows = file.rows / 4 > NROWS ? file.rows / 4 : NROWS;
  if ((only = getenv("BENCH_PREDICT_SOURCES")) == NULL || *only == '\0')
    only = "file,http,s3";
  setup(argv[1]);

  /* Local files. A first run writes the image cache (which the servers
   * serve too), so that the timed one, like the serial loop, reads files
   * that are there. */
  snprintf(file.prefix, sizeof(file.prefix), "file://%s/rows/", work);
  hive("warm", NROWS, "");
  if (strstr(only, "file") != NULL) {
    measure(&file);
    ref = "file";
    ref_rows = file.rows;
  }

  /* http, every answer after 20 ms. */
  if (strstr(only, "http") == NULL)
    goto s3;
  if (bh_test_http_start(&web, work, 2) != 0)
    bench_die("nginx", BH_ESPAWN, NULL);
  snprintf(http.prefix, sizeof(http.prefix), "%s/delay/%d/rows/", web.base,
           DELAY_MS);
  snprintf(http.args, sizeof(http.args), "--inputs '%s'", http.prefix);
  measure(&http);
  bh_test_http_stop(&web);

s3: /* S3: the images uploaded through the workers, then read back. */
  if (strstr(only, "s3") == NULL)
    goto done;
  if (bh_test_s3_start(&s3, buckets) != 0)
    bench_die("s3rver", BH_ESPAWN, NULL);
  setup_profile();
  snprintf(cmd, sizeof(cmd), "%s --upload", s3src.args);
  hive("upload", NROWS, cmd);
  snprintf(s3src.prefix, sizeof(s3src.prefix), "%s/bench/rows/", s3.endpoint);
  measure(&s3src);
  bh_test_s3_stop(&s3);

done:
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
  return system(cmd) == 0 ? 0 : 1;
}
