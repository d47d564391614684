/* predict.c - the main job: predictions over a dataframe in a hive.
 *
 * The queen owns the dataframe (the UCI handwritten digits, data/) and the
 * model (multinomial logistic regression, data/digits_model.txt). She
 * delegates the rows' preprocessing to the workers, a batch at a time as a
 * map (bh_map_new) in chunks of rows, one task message per chunk: a worker
 * reads each row's image (an 8x8 PGM) through the reader of its URL's
 * scheme, decodes and normalises it, and returns 64 floats. The images are
 * files the queen writes once into a cache directory (the default), or any
 * file://, http:// or s3:// prefix (--inputs; --upload first writes them
 * to S3, one task per image in the workers). The queen predicts each batch
 * whole (a matrix product and a softmax), then delegates its rows'
 * postprocessing (top-3 labels with probabilities and the output CSV line)
 * as another map.
 *
 * Batches flow through a bounded window: the workers preprocess the next
 * batches while the queen predicts one and writes the lines of the one
 * before, so memory stays bounded whatever --rows is, and the CSV comes out
 * in input order whatever the number of workers, the batch or chunk size
 * or where the images come from.
 *
 *   predict [--rows N] [--workers N] [--inputs PREFIX] [--out FILE] ...
 *   mpirun -np N predict --mpi ...   (rank 0 the queen, the others workers)
 *   (predict --help lists every option)
 *
 * It ends with one line on stdout:
 *   predict: rows N, accuracy A, rows/s R, workers W, retried K
 * A row that cannot be read ends the run with status 1 and a message on
 * stderr naming the URL and what failed (the HTTP status, S3's error code,
 * the system's error); SIGINT and SIGTERM end it with 130 and 143.
 *
 * The dataframe and the model are in digits.h, the input readers and the
 * image format in input.h.
 */
#include <beehive.h>
#ifdef BH_HAVE_MPI
#include <beehive_mpi.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digits.h"
#include "input.h"

#define TOP_K 3

/* ---- options ------------------------------------------------------------ */

#define URL_MAX (PATH_MAX + 64)      /* a row's input URL, at most */
#define IMAGE_NAME "digit-%05zu.pgm" /* dataset row i's, after the prefix */

typedef struct opts {
  const char *data_dir, *cache_dir, *out, *trace, *timeline;
  const char *inputs;     /* the rows' URL prefix; NULL: the cache's */
  const char *s3_profile; /* as given, or NULL */
  const char *listen;     /* --listen HOST:PORT: remote workers join here */
  const char *join;       /* --join HOST:PORT: be a worker of that queen */
  const char *key_file;   /* the hive's key (--key-file) */
  uint64_t rows;
  long workers, max_conc, batch, window, chunk, retries, http_conns;
  long min_remote;        /* remote workers to wait for (--min-remote) */
  long heartbeat_ms;      /* --heartbeat-ms; 0: the library's 1,000 */
  int quiet, stats, upload;
  int mpi;                /* --mpi: started by mpirun, rank 0 the queen */
} opts;

static void
usage(FILE *f) {
  fputs("usage: predict [options]\n"
        "  --rows N             rows to predict, cycling the dataset "
        "(default 100000)\n"
        "  --workers N          worker bees on this host (default 2, 0 "
        "with --mpi;\n"
        "                       0: none, with --listen or --mpi)\n"
        "  --max-concurrency N  tasks at once per worker (default 64 for "
        "file://; for\n"
        "                       http:// and s3://, window / workers, so that "
        "the window\n"
        "                       bounds the rows waiting on the network, at "
        "most\n"
        "                       --http-connections)\n"
        "  --batch N            rows per batch prediction (default 256)\n"
        "  --window N           rows in flight at most (default 4096, at "
        "least 2 batches)\n"
        "  --chunk N            rows per task message to a worker (default: "
        "for file://\n"
        "                       a batch over 2 x workers; 1 for http:// and "
        "s3://,\n"
        "                       whose rows wait on the network together)\n"
        "  --retries N          re-offers of a task lost with its worker "
        "(default 0)\n"
        "  --out FILE           write row_id,label,predicted,probability "
        "CSV\n"
        "  --data DIR           digits.csv.gz and digits_model.txt "
        "(default:\n"
        "                       $BEEHIVE_DATA, else ./data, else the "
        "installed data)\n"
        "  --cache DIR          where the queen writes the per-row image "
        "files (default\n"
        "                       $TMPDIR/beehive-digits-cache-UID)\n"
        "  --inputs PREFIX      where dataset row i (before cycling) is: "
        "PREFIX +\n"
        "                       digit-NNNNN.pgm, PREFIX one of file://DIR/,\n"
        "                       http://HOST:PORT/PATH/ or s3://BUCKET/PATH/\n"
        "                       (default file://CACHE/, the --cache the queen "
        "writes)\n"
        "  --upload             first write the images to the s3:// --inputs "
        "prefix,\n"
        "                       one put task per image in the workers\n"
        "  --s3-profile NAME    the AWS profile of the workers' S3 clients, "
        "for s3://\n"
        "                       (default $AWS_PROFILE, else \"default\")\n"
        "  --http-connections N connections to one host per worker, for "
        "http:// and\n"
        "                       s3:// (default 256: within the usual 1,024 "
        "open files;\n"
        "                       0: the library's 1,024)\n"
        "  --trace FILE.json    write the timeline as Chrome trace-event "
        "JSON\n"
        "  --timeline FILE.svg  draw the timeline as SVG\n"
        "  --stats              print per-worker counts at the end\n"
        "  --listen HOST:PORT   let workers of other hosts join (\"*:0\": "
        "any address,\n"
        "                       a free port, said on stderr); needs "
        "--key-file\n"
        "  --key-file F         the hive's key: 64 hex digits, mode 0600; "
        "made when\n"
        "                       missing (copy it to the workers' hosts)\n"
        "  --min-remote N       start once N remote workers joined (default "
        "0)\n"
        "  --heartbeat-ms N     a remote worker silent 3 x N ms is lost "
        "(default 1000)\n"
        "  --join HOST:PORT     be one worker of the queen there (with "
        "--key-file);\n"
        "                       the rows' --inputs must be reachable from "
        "this host\n"
        "  --mpi                under mpirun or srun: rank 0 is the queen, "
        "every other\n"
        "                       rank one worker (the key drawn and "
        "broadcast; --listen\n"
        "                       HOST:PORT or $BH_MPI_HOST choose the "
        "queen's address)\n"
        "  --quiet              no progress line\n", f);
}

static int
number(const char *name, const char *s, long min, long *out) {
  char *end;
  long long v;

  errno = 0;
  v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v < min || v > LONG_MAX) {
    fprintf(stderr, "predict: %s wants an integer >= %ld, got \"%s\"\n",
            name, min, s);
    return -1;
  }
  *out = (long)v;
  return 0;
}

/* The option at argv[i] that takes a value: stores it, returns 1; 0 if
 * argv[i] is not `name`; -1 on a bad value. */
static int
valued(int argc, char **argv, int *i, const char *name, const char **val) {
  if (strcmp(argv[*i], name) != 0)
    return 0;
  if (*i + 1 >= argc) {
    fprintf(stderr, "predict: %s wants a value\n", name);
    return -1;
  }
  *val = argv[++*i];
  return 1;
}

static int
parse_number(int argc, char **argv, int *i, opts *o) {
  static const struct { const char *name; long min; size_t off; } nums[] = {
      {"--workers", 0, offsetof(opts, workers)},
      {"--min-remote", 0, offsetof(opts, min_remote)},
      {"--heartbeat-ms", 0, offsetof(opts, heartbeat_ms)},
      {"--max-concurrency", 1, offsetof(opts, max_conc)},
      {"--batch", 1, offsetof(opts, batch)},
      {"--window", 1, offsetof(opts, window)},
      {"--chunk", 1, offsetof(opts, chunk)},
      {"--retries", 0, offsetof(opts, retries)},
      {"--http-connections", 0, offsetof(opts, http_conns)}};
  const char *v;
  long rows;
  size_t k;
  int r;

  if ((r = valued(argc, argv, i, "--rows", &v)) != 0) {
    if (r < 0 || number("--rows", v, 0, &rows) != 0)
      return -1;
    o->rows = (uint64_t)rows;
    return 1;
  }
  for (k = 0; k < sizeof(nums) / sizeof(nums[0]); k++)
    if ((r = valued(argc, argv, i, nums[k].name, &v)) != 0)
      return r < 0 ? -1 : number(nums[k].name, v, nums[k].min,
                                 (long *)((char *)o + nums[k].off)) == 0
                              ? 1 : -1;
  return 0;
}

static int
parse_path(int argc, char **argv, int *i, opts *o) {
  static const struct { const char *name; size_t off; } paths[] = {
      {"--out", offsetof(opts, out)},
      {"--data", offsetof(opts, data_dir)},
      {"--cache", offsetof(opts, cache_dir)},
      {"--trace", offsetof(opts, trace)},
      {"--timeline", offsetof(opts, timeline)},
      {"--inputs", offsetof(opts, inputs)},
      {"--s3-profile", offsetof(opts, s3_profile)},
      {"--listen", offsetof(opts, listen)},
      {"--join", offsetof(opts, join)},
      {"--key-file", offsetof(opts, key_file)}};
  size_t k;
  int r;

  for (k = 0; k < sizeof(paths) / sizeof(paths[0]); k++)
    if ((r = valued(argc, argv, i, paths[k].name,
                    (const char **)((char *)o + paths[k].off))) != 0)
      return r;
  return 0;
}

/* --mpi's options: the launcher starts every rank, and the key is drawn
 * and broadcast, never in a file. */
static const char *
settle_mpi(const opts *o) {
#ifndef BH_HAVE_MPI
  (void)o;
  return "--mpi: this predict was built without MPI (no libbeehive_mpi): "
         "rebuild it where MPI is installed (Debian: libopenmpi-dev "
         "openmpi-bin)";
#else
  if (o->join != NULL)
    return "--mpi and --join exclude each other: under --mpi every rank "
           "but 0 joins by itself";
  if (o->key_file != NULL)
    return "--mpi draws the hive's key and broadcasts it: no --key-file";
  return NULL;
#endif
}

/* The options of workers on other hosts. 0, or -1 (said on stderr). */
static int
settle_hosts(const opts *o) {
  const char *bad = NULL;

  if (o->mpi)
    bad = settle_mpi(o);
  else if ((o->listen != NULL || o->join != NULL) && o->key_file == NULL)
    bad = "--listen and --join need --key-file, the hive's key";
  else if (o->listen != NULL && o->join != NULL)
    bad = "--listen and --join exclude each other";
  else if (o->listen == NULL && o->workers == 0)
    bad = "--workers 0 needs --listen or --mpi: someone must do the work";
  else if (o->listen == NULL && o->min_remote > 0)
    bad = "--min-remote needs --listen or --mpi";
  else if (o->listen == NULL && o->heartbeat_ms > 0)
    bad = "--heartbeat-ms needs --listen or --mpi (a worker takes its "
          "queen's)";
  else if (o->listen == NULL && o->join == NULL && o->key_file != NULL)
    bad = "--key-file needs --listen or --join";
  if (bad != NULL)
    fprintf(stderr, "predict: %s\n", bad);
  return bad != NULL ? -1 : 0;
}

/* Whether the options go together. Returns 0, or -1 (said on stderr). */
static int
settle(opts *o) {
  const char *in = o->inputs;

  if (o->workers < 0) /* not given */
    o->workers = o->mpi ? 0 : 2;
  if (settle_hosts(o) != 0)
    return -1;
  if (in != NULL && reader_for(in) == NULL) {
    fprintf(stderr, "predict: --inputs wants a file://, http:// or s3:// "
                    "prefix, got \"%s\"\n", in);
    return -1;
  }
  if (in != NULL && strlen(in) + sizeof(IMAGE_NAME) >= URL_MAX) {
    fprintf(stderr, "predict: --inputs is longer than %d bytes\n",
            (int)(URL_MAX - sizeof(IMAGE_NAME)));
    return -1;
  }
  if (o->upload && (in == NULL || strncmp(in, "s3://", 5) != 0)) {
    fprintf(stderr, "predict: --upload wants an s3:// --inputs prefix\n");
    return -1;
  }
  return 0;
}

/* The sizes of the work, once the queen knows how many workers she waits
 * for (under --mpi, the ranks). */
static void
size_work(opts *o) {
  const char *in = o->inputs;
  /* Every worker, of this host or another, takes chunks. */
  long workers = o->workers + o->min_remote > 0 ? o->workers + o->min_remote
                                                : 1;

  if (o->window < 2 * o->batch)
    o->window = 2 * o->batch;
  /* Files: two chunks of each batch per worker, so that a batch's rows
   * spread over every worker, and each worker has the next chunk while it
   * ends one. A chunk's rows run one after the other in one task, so rows
   * that wait on the network go one per task: they wait together. */
  if (o->chunk == 0 && in != NULL && strncmp(in, "file://", 7) != 0)
    o->chunk = 1;
  if (o->chunk == 0)
    o->chunk = o->batch / (2 * workers) > 0 ? o->batch / (2 * workers) : 1;
  if (o->chunk > o->batch)
    o->chunk = o->batch;
  /* Rows read from files keep the workers' CPUs busy with a few tasks
   * each; rows that wait on the network need as many in flight as the
   * window holds, but no more than a worker has connections: a task
   * beyond them would only wait for one (holding a fiber), where the
   * queen's backlog holds a row for a few bytes. */
  if (o->max_conc == 0) {
    long conns = o->http_conns > 0 ? o->http_conns : 1024;

    o->max_conc = (o->window + workers - 1) / workers;
    if (in == NULL || strncmp(in, "file://", 7) == 0)
      o->max_conc = 64;
    else if (o->max_conc > conns)
      o->max_conc = conns;
  }
}

/* Returns 0, 1 after --help, -1 on a bad option (explained on stderr). */
static int
parse(int argc, char **argv, opts *o) {
  int i, r;

  /* workers -1 and max_conc 0: settle() and size_work() pick them. 256 connections per host keep a
   * worker well within the usual limit of 1,024 open files. */
  *o = (opts){.rows = 100000, .workers = -1, .max_conc = 0, .batch = 256,
              .window = 4096, .retries = 0, .http_conns = 256};
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 1;
    } else if (strcmp(argv[i], "--quiet") == 0) {
      o->quiet = 1;
    } else if (strcmp(argv[i], "--stats") == 0) {
      o->stats = 1;
    } else if (strcmp(argv[i], "--upload") == 0) {
      o->upload = 1;
    } else if (strcmp(argv[i], "--mpi") == 0) {
      o->mpi = 1;
    } else if ((r = parse_number(argc, argv, &i, o)) == 0 &&
               (r = parse_path(argc, argv, &i, o)) == 0) {
      fprintf(stderr, "predict: unknown option \"%s\"\n", argv[i]);
      usage(stderr);
      return -1;
    } else if (r < 0) {
      return -1;
    }
  }
  return settle(o);
}

/* ---- the queen's world (she runs in this process) ------------------------ */

typedef struct app {
  opts o;
  digits_data data;   /* the dataframe */
  digits_model model;
  char **urls;        /* per dataset row, its image's URL */
  FILE *out;          /* the CSV, or NULL */
  uint64_t done;      /* rows written, in order */
  struct timespec t0; /* when the run started */
  int live;           /* draw the progress line */
  int drawn;          /* a progress line is on the terminal */
  bh_stats final;     /* the queen's counts at the end */
  bh_child_stats *kids;
} app;

static app A;

static double
since(const struct timespec *t0) {
  struct timespec t;

  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) +
         (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- the worker's tasks ------------------------------------------------- */

/* Items of a map (bh_task_args is [item]). [[row_id, url]] -> 64 float32
 * (a bin, native byte order). A read that
 * fails raises what its reader says: OSError, HTTPError or S3Error naming
 * the URL, and the HTTP status or S3's code (input.h). */
static int
preprocess(bh_task *t) {
  unsigned char raw[INPUT_MAX]; /* on the fiber's stack: reads may wait */
  char url[URL_MAX], why[160];
  float x[DIGITS_FEATURES];
  size_t n;
  int64_t row;
  int rc;

  if (bh_task_unpack(t, "[[I s]]", &row, url, sizeof(url)) != 0)
    return BH_ERAISED;
  if ((rc = fetch(t, url, raw, sizeof(raw), &n)) != 0)
    return rc;
  if (pgm_decode(raw, n, x, why, sizeof(why)) != 0)
    return bh_raise(t, "ValueError", "row %lld: %s: %s", (long long)row, url,
                    why);
  return bh_return(t, "y#", (const void *)x, sizeof(x));
}

/* [url, image]: writes one image to S3 through the worker's client
 * (--upload). A failure raises S3Error (or HTTPError) naming the URL. */
static int
upload_image(bh_task *t) {
  char url[URL_MAX];
  const void *img;
  size_t n;

  if (bh_task_unpack(t, "[s y#]", url, sizeof(url), &img, &n) != 0)
    return BH_ERAISED;
  return bh_s3_put(t, url, img, n, "image/x-portable-graymap");
}

/* [[row_id, label or nil, [10 probabilities]]] -> [csv line, [top-3
 * labels], [their probabilities]]. */
static int
postprocess(bh_task *t) {
  const msgpack_object *label;
  double p[DIGITS_CLASSES], top_p[TOP_K];
  int top[TOP_K];
  char line[128], lab[24] = "";
  int64_t row;

  if (bh_task_unpack(t, "[[I o #f]]", &row, &label, p, (size_t)DIGITS_CLASSES,
                     (size_t *)NULL) != 0)
    return BH_ERAISED;
  if (label->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    snprintf(lab, sizeof(lab), "%llu", (unsigned long long)label->via.u64);
  else if (label->type != MSGPACK_OBJECT_NIL)
    return bh_raise(t, "TypeError", "row %lld: label must be an int or nil",
                    (long long)row);
  digits_top(p, TOP_K, top, top_p);
  snprintf(line, sizeof(line), "%lld,%s,%d,%.6f", (long long)row, lab,
           top[0], top_p[0]);
  return bh_return(t, "[s #i #f]", line, top, (size_t)TOP_K, top_p,
                   (size_t)TOP_K);
}

/* ---- the queen: the image cache ------------------------------------------ */

/* Writes buf to path unless the file already holds exactly that. Every
 * run checks the whole cache before its first row, so the check is plain
 * system calls (open, one read, close): stdio's would add an fstat and a
 * buffer per file, a tenth of a short run's time over 1,797 files. */
static int
write_once(const char *path, const unsigned char *buf, size_t n) {
  unsigned char old[256];
  char tmp[PATH_MAX + 64];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t got = fd >= 0 ? read(fd, old, sizeof(old)) : -1;
  FILE *f;
  int ok;

  if (fd >= 0)
    close(fd);
  if (got == (ssize_t)n && memcmp(old, buf, n) == 0)
    return 0;
  snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
  if ((f = fopen(tmp, "wb")) == NULL)
    return -1;
  ok = fwrite(buf, 1, n, f) == n;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* One image file per dataset row in the cache directory; its file://
 * prefix into `prefix` (URL_MAX bytes). */
static int
write_cache(bh_task *t, char *prefix) {
  char dir[PATH_MAX], path[PATH_MAX + 32];
  unsigned char img[128];
  size_t i;

  if (mkdir(A.o.cache_dir, 0700) != 0 && errno != EEXIST)
    return bh_raise(t, "OSError", "%s: %s", A.o.cache_dir, strerror(errno));
  if (realpath(A.o.cache_dir, dir) == NULL)
    return bh_raise(t, "OSError", "%s: %s", A.o.cache_dir, strerror(errno));
  for (i = 0; i < A.data.n; i++) {
    snprintf(path, sizeof(path), "%s/" IMAGE_NAME, dir, i);
    if (write_once(path, img, pgm_image(A.data.rows[i].px, img)) != 0)
      return bh_raise(t, "OSError", "%s: %s", path, strerror(errno));
  }
  snprintf(prefix, URL_MAX, "file://%s/", dir);
  return 0;
}

/* Every dataset row's URL: the prefix and the row's image name. */
static int
make_urls(bh_task *t, const char *prefix) {
  size_t i, n = strlen(prefix) + sizeof(IMAGE_NAME);

  if ((A.urls = calloc(A.data.n, sizeof(*A.urls))) == NULL)
    return bh_raise(t, "MemoryError", "no memory for the URLs");
  for (i = 0; i < A.data.n; i++) {
    if ((A.urls[i] = malloc(n)) == NULL)
      return bh_raise(t, "MemoryError", "no memory for the URLs");
    snprintf(A.urls[i], n, "%s" IMAGE_NAME, prefix, i);
  }
  return 0;
}

/* --upload: every image to its URL, one task per image in the workers
 * (their S3 clients), all delegated at once. */
static int
upload(bh_task *t) {
  unsigned char img[128];
  bh_group *g = bh_group_new(t);
  bh_future *f;
  size_t i;
  int rc = 0;

  if (g == NULL)
    return bh_raise(t, "MemoryError", "no memory for the uploads");
  for (i = 0; rc == 0 && i < A.data.n; i++)
    rc = bh_group_delegate(g, NULL, NULL, "upload_image", "[s y#]",
                           A.urls[i], (const void *)img,
                           pgm_image(A.data.rows[i].px, img));
  while (rc == 0 && bh_group_pending(g) > 0 &&
         (rc = bh_group_next(g, &f, -1)) == 0) {
    if (bh_result_status(bh_future_result(f)) != BH_SUCCEEDED)
      rc = bh_raise_result(t, bh_future_result(f));
    bh_future_free(f);
  }
  bh_group_free(g);
  if (rc != 0 && rc != BH_ERAISED && rc != BH_ECANCELLED)
    rc = bh_raise(t, "RuntimeError", "the upload stopped: %s",
                  bh_strerror(rc));
  return rc;
}

/* The rows' URLs, from --inputs or the cache the queen writes, and their
 * images uploaded first with --upload. */
static int
prepare_inputs(bh_task *t) {
  char cache[URL_MAX];
  const char *prefix = A.o.inputs;
  int rc = 0;

  if (prefix == NULL && (rc = write_cache(t, cache)) == 0)
    prefix = cache;
  if (rc == 0)
    rc = make_urls(t, prefix);
  if (rc == 0 && A.o.upload)
    rc = upload(t);
  return rc;
}

/* ---- the queen: the pipeline --------------------------------------------- */

/* Rows go in batches of --batch through two maps (bh_map_new), each in
 * chunks of --chunk rows per task message: the preprocessing of the
 * batch's rows, then, once the queen has predicted the batch, their
 * postprocessing. The batches in flight are a ring: the newest are being
 * preprocessed while the queen predicts the oldest preprocessed one and
 * writes the lines of the one before it. Everything is taken in input
 * order, so the CSV comes out in order without any reordering. */

typedef struct batch {
  uint64_t first; /* its first row */
  size_t n;       /* its rows */
  bh_map *m;      /* its preprocessing, then its postprocessing */
} batch;

typedef struct pipeline {
  bh_task *t;
  bh_map_opts mo;
  batch *ring;      /* batches [head, tail) live in ring[b % cap] */
  size_t cap, size; /* batches, and rows per batch */
  uint64_t n_rows, next_row, labelled, correct;
  uint64_t head, pre, tail; /* [head, pre) are postprocessing, [pre,
                             * tail) preprocessing */
  float *bx;          /* a batch's inputs, size x 64 */
  double *bp;         /* its probabilities, size x 10 */
  msgpack_object *io; /* the items of one map being made */
} pipeline;

/* A msgpack array object over n objects at p. */
static msgpack_object
array_of(msgpack_object *p, uint32_t n) {
  msgpack_object a = {.type = MSGPACK_OBJECT_ARRAY};

  a.via.array.ptr = p;
  a.via.array.size = n;
  return a;
}

static msgpack_object
uint_of(uint64_t v) {
  msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};

  o.via.u64 = v;
  return o;
}

/* Starts the next batch's preprocessing: items [row_id, url]. The map
 * copies them, so they are made in the pipeline's scratch space. */
static int
start_batch(pipeline *pl) {
  batch *b = &pl->ring[pl->tail % pl->cap];
  msgpack_object *items = pl->io, *pair = pl->io + pl->size, all;
  size_t i;

  b->first = pl->next_row;
  b->n = pl->n_rows - b->first < pl->size ? pl->n_rows - b->first : pl->size;
  for (i = 0; i < b->n; i++) {
    const char *url = A.urls[(b->first + i) % A.data.n];

    pair[2 * i] = uint_of(b->first + i);
    pair[2 * i + 1] = (msgpack_object){.type = MSGPACK_OBJECT_STR};
    pair[2 * i + 1].via.str.ptr = url;
    pair[2 * i + 1].via.str.size = (uint32_t)strlen(url);
    items[i] = array_of(pair + 2 * i, 2);
  }
  all = array_of(items, (uint32_t)b->n);
  pl->next_row += b->n;
  pl->tail++;
  return bh_map_new(pl->t, &b->m, "preprocess", &pl->mo, "o", &all);
}

/* The next item of b's map, which must have succeeded. */
static int
next_item(pipeline *pl, batch *b, bh_map_item *it) {
  int rc = bh_map_next(b->m, it, -1);

  if (rc == 0 && it->status != BH_SUCCEEDED)
    return bh_raise_result(pl->t, it->result);
  return rc;
}

/* Takes the oldest batch's inputs, predicts it whole, and starts its
 * postprocessing: items [row_id, label or nil, [10 probabilities]]. */
static int
predict_batch(pipeline *pl) {
  batch *b = &pl->ring[pl->pre % pl->cap];
  const size_t per = 3 + DIGITS_CLASSES; /* an item's objects */
  msgpack_object *items = pl->io, *o = pl->io + pl->size, all;
  bh_map_item it;
  int64_t span;
  size_t i;
  int rc = 0, j;

  for (i = 0; i < b->n && rc == 0; i++)
    if ((rc = next_item(pl, b, &it)) == 0 &&
        (it.value->type != MSGPACK_OBJECT_BIN ||
         it.value->via.bin.size != DIGITS_FEATURES * sizeof(float)))
      rc = bh_raise(pl->t, "ValueError", "row %llu: bad preprocess answer",
                    (unsigned long long)(b->first + i));
    else if (rc == 0)
      memcpy(pl->bx + i * DIGITS_FEATURES, it.value->via.bin.ptr,
             DIGITS_FEATURES * sizeof(float));
  bh_map_free(b->m);
  b->m = NULL;
  if (rc != 0)
    return rc;
  span = bh_span_begin(pl->t, "predict");
  digits_predict(&A.model, pl->bx, b->n, pl->bp);
  bh_span_end(pl->t, span, BH_SUCCEEDED);
  for (i = 0; i < b->n; i++, o += per) {
    int label = A.data.rows[(b->first + i) % A.data.n].label;

    o[0] = uint_of(b->first + i);
    o[1] = label >= 0 ? uint_of((uint64_t)label)
                      : (msgpack_object){.type = MSGPACK_OBJECT_NIL};
    for (j = 0; j < DIGITS_CLASSES; j++) {
      o[3 + j] = (msgpack_object){.type = MSGPACK_OBJECT_FLOAT64};
      o[3 + j].via.f64 = pl->bp[i * DIGITS_CLASSES + j];
    }
    o[2] = array_of(o + 3, DIGITS_CLASSES);
    items[i] = array_of(o, 3);
  }
  all = array_of(items, (uint32_t)b->n);
  pl->pre++;
  return bh_map_new(pl->t, &b->m, "postprocess", &pl->mo, "o", &all);
}

/* Writes the oldest batch's lines, in input order. */
static int
write_batch(pipeline *pl) {
  batch *b = &pl->ring[pl->head % pl->cap];
  bh_map_item it;
  const char *line;
  size_t i, n;
  int rc = 0, predicted;

  for (i = 0; i < b->n && rc == 0; i++) {
    int label = A.data.rows[(b->first + i) % A.data.n].label;

    if ((rc = next_item(pl, b, &it)) != 0)
      break;
    if (bh_unpack(it.value, NULL, 0, "[s# [i * *] *]", &line, &n,
                  &predicted) != 0) {
      rc = bh_raise(pl->t, "ValueError", "row %llu: bad postprocess answer",
                    (unsigned long long)(b->first + i));
      break;
    }
    if (A.out != NULL) {
      fwrite(line, 1, n, A.out);
      fputc('\n', A.out);
    }
    pl->labelled += label >= 0;
    pl->correct += label >= 0 && label == predicted;
  }
  bh_map_free(b->m);
  b->m = NULL;
  pl->head++;
  A.done += i;
  bh_progress_add(pl->t, i); /* the progress line counts rows */
  return rc;
}

/* The loop: keep the ring full of batches being preprocessed; predict the
 * oldest of them (the workers prepare the others meanwhile), then write
 * the batch postprocessed before it. */
static int
pump(pipeline *pl) {
  int rc = 0;

  while (rc == 0 && (pl->head < pl->tail || pl->next_row < pl->n_rows)) {
    while (rc == 0 && pl->next_row < pl->n_rows &&
           pl->tail - pl->head < pl->cap)
      rc = start_batch(pl);
    if (rc == 0 && pl->pre < pl->tail)
      rc = predict_batch(pl);
    if (rc == 0 && pl->head < pl->pre &&
        (pl->pre - pl->head > 1 || pl->pre == pl->tail))
      rc = write_batch(pl);
  }
  /* A cancellation (a signal, a deadline) is answered as such. */
  if (rc != 0 && rc != BH_ERAISED && rc != BH_ECANCELLED)
    rc = bh_raise(pl->t, "RuntimeError", "the pipeline stopped: %s",
                  bh_strerror(rc));
  return rc;
}

static void
pipeline_free(pipeline *pl) {
  size_t i;

  for (i = 0; pl->ring != NULL && i < pl->cap; i++)
    bh_map_free(pl->ring[i].m);
  free(pl->ring);
  free(pl->io);
  free(pl->bx);
  free(pl->bp);
}

/* The queen's task: [rows, batch, window, chunk] -> [rows, labelled,
 * correct]. */
static int
predict(bh_task *t) {
  pipeline pl = {.t = t};
  int64_t rows, size, window, chunk;
  int rc;

  if (bh_task_unpack(t, "[I I I I]", &rows, &size, &window, &chunk) != 0)
    return BH_ERAISED;
  bh_progress_total(t, (uint64_t)rows);
  if ((rc = prepare_inputs(t)) != 0)
    return rc;
  pl.n_rows = (uint64_t)rows;
  pl.size = (size_t)size;
  pl.cap = (size_t)(window / size); /* at least 2: size_work() */
  pl.mo = (bh_map_opts){.chunk = (int)chunk};
  pl.ring = calloc(pl.cap, sizeof(*pl.ring));
  pl.io = calloc(pl.size * (4 + DIGITS_CLASSES), sizeof(*pl.io));
  pl.bx = calloc(pl.size * DIGITS_FEATURES, sizeof(*pl.bx));
  pl.bp = calloc(pl.size * DIGITS_CLASSES, sizeof(*pl.bp));
  if (!pl.ring || !pl.io || !pl.bx || !pl.bp)
    rc = bh_raise(t, "MemoryError", "no memory for a window of %zu batches",
                  pl.cap);
  else
    rc = pump(&pl);
  pipeline_free(&pl);
  if (rc == 0)
    rc = bh_return(t, "[U U U]", A.done, pl.labelled, pl.correct);
  return rc;
}

/* ---- progress and stats -------------------------------------------------- */

/* Copies the final counts: s and what it points to are only lent. */
static void
keep_stats(app *a, const bh_stats *s) {
  size_t i;

  a->final = *s;
  a->final.children = NULL;
  a->kids = s->n_children ? calloc(s->n_children, sizeof(*a->kids)) : NULL;
  if (a->kids == NULL) {
    a->final.n_children = 0;
    return;
  }
  for (i = 0; i < s->n_children; i++) {
    a->kids[i] = s->children[i];
    if (s->children[i].cause != NULL)
      a->kids[i].cause = strdup(s->children[i].cause);
    if (s->children[i].host != NULL)
      a->kids[i].host = strdup(s->children[i].host);
  }
}

/* The line from the hook's stats: rows (the queen's task counts them with
 * bh_progress_add), the elapsed time, the rate and the ETA. */
static void
on_progress(void *udata, const bh_stats *s, int final) {
  app *a = udata;
  char line[160];

  if (a->live) {
    bh_progress_format_stats(line, sizeof(line), s, "rows");
    fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    a->drawn = !final;
  }
  if (final)
    keep_stats(a, s);
}

static void
print_stats(const app *a) {
  const bh_stats *s = &a->final;
  size_t i;

  printf("stats: queen: delegated %llu, succeeded %llu, raised %llu, "
         "cancelled %llu, in flight %llu, retried %llu, deaths %llu, "
         "spawned %llu\n", (unsigned long long)s->delegated,
         (unsigned long long)s->succeeded, (unsigned long long)s->raised,
         (unsigned long long)s->cancelled, (unsigned long long)s->inflight,
         (unsigned long long)s->retried, (unsigned long long)s->deaths,
         (unsigned long long)s->spawned);
  for (i = 0; i < s->n_children; i++) {
    const bh_child_stats *c = &a->kids[i];
    char where[80];

    if (c->host != NULL) /* a remote worker: its host, not its pid */
      snprintf(where, sizeof(where), "on %s", c->host);
    else
      snprintf(where, sizeof(where), "pid %d", (int)c->pid);
    printf("stats: worker %lld (%s): done %llu, raised %llu, "
           "cancelled %llu, in flight %llu, lost %llu, deaths %llu%s%s\n",
           (long long)c->id, where, (unsigned long long)c->done,
           (unsigned long long)c->raised, (unsigned long long)c->cancelled,
           (unsigned long long)c->inflight, (unsigned long long)c->lost,
           (unsigned long long)c->deaths, c->cause ? ": " : "",
           c->cause ? c->cause : "");
  }
}

/* ---- main ----------------------------------------------------------------- */

static const bh_task_def worker_tasks[] = {{"preprocess", preprocess},
                                           {"postprocess", postprocess},
                                           {"upload_image", upload_image},
                                           {NULL, NULL}};
static const bh_class worker = {.name = "Worker", .tasks = worker_tasks};
static const bh_task_def queen_tasks[] = {{"predict", predict},
                                          {NULL, NULL}};
static const bh_class queen = {.name = "Queen", .tasks = queen_tasks,
                               .worker_class = &worker};

/* Where the data is installed relative to this program, found from
 * /proc/self/exe at run time so that a moved install still finds it:
 * BH_EXE_TO_DATA is the path from the program's directory (set by
 * CMakeLists.txt for each place it is installed). Writes the directory to
 * buf; 0 when the data is there. */
static int
installed_data(char *buf, size_t len) {
#ifdef BH_EXE_TO_DATA
  char exe[PATH_MAX], model[PATH_MAX], *slash;
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  struct stat st;
  int m;

  if (n <= 0)
    return -1;
  exe[n] = '\0';
  if ((slash = strrchr(exe, '/')) != NULL)
    *slash = '\0';
  m = snprintf(buf, len, "%s/%s", exe, BH_EXE_TO_DATA);
  if (m < 0 || (size_t)m >= len)
    return -1;
  m = snprintf(model, sizeof(model), "%s/digits_model.txt", buf);
  if (m < 0 || (size_t)m >= sizeof(model))
    return -1;
  return stat(model, &st);
#else
  (void)buf, (void)len;
  return -1;
#endif
}

/* --data, else $BEEHIVE_DATA, else ./data, else where it is installed,
 * else (not for the installed command) the source tree's. */
static const char *
data_dir(const char *given, char *buf, size_t len) {
  const char *env = getenv("BEEHIVE_DATA");
  struct stat st;

  if (given != NULL)
    return given;
  if (env != NULL && *env != '\0')
    return env;
  if (stat("data/digits_model.txt", &st) == 0)
    return "data";
  if (installed_data(buf, len) == 0)
    return buf;
#ifdef BH_INSTALLED_ONLY
  return buf; /* not there either: the error names where it should be */
#else
  const char *slash = strrchr(__FILE__, '/');
  snprintf(buf, len, "%.*s/../data", slash ? (int)(slash - __FILE__) : 1,
           slash ? __FILE__ : ".");
  return buf;
#endif
}

static int
load(app *a) {
  char dir[PATH_MAX], path[PATH_MAX + 32], err[PATH_MAX + 512];
  const char *d = data_dir(a->o.data_dir, dir, sizeof(dir));

  snprintf(path, sizeof(path), "%s/digits.csv.gz", d);
  if (digits_load(path, &a->data, err, sizeof(err)) != 0) {
    fprintf(stderr, "predict: %s%s\n", err,
            a->o.data_dir != NULL ? ""
                                  : " (--data DIR or $BEEHIVE_DATA names "
                                    "the data's directory)");
    return -1;
  }
  snprintf(path, sizeof(path), "%s/digits_model.txt", d);
  if (digits_model_load(path, &a->model, err, sizeof(err)) != 0) {
    fprintf(stderr, "predict: %s\n", err);
    return -1;
  }
  if (a->o.out != NULL && (a->out = fopen(a->o.out, "w")) == NULL) {
    fprintf(stderr, "predict: %s: %s\n", a->o.out, strerror(errno));
    return -1;
  }
  if (a->out != NULL)
    fputs("row_id,label,predicted,probability\n", a->out);
  return 0;
}

static void
default_cache(opts *o, char *buf, size_t len) {
  const char *tmp = getenv("TMPDIR");

  if (o->cache_dir != NULL)
    return;
  snprintf(buf, len, "%s/beehive-digits-cache-%d",
           tmp && *tmp ? tmp : "/tmp", (int)getuid());
  o->cache_dir = buf;
}

/* Says why the hive failed. Returns the exit status: 128 + the signal
 * when SIGINT or SIGTERM interrupted it (130, 143, as a shell expects),
 * else 1. */
static int
say_failure(const app *a, int rc, const bh_result *r) {
  char why[4096];
  int sig = r != NULL ? bh_result_signal(r) : 0;

  if (a->drawn)
    fputc('\n', stderr);
  if (rc == BH_ECANCELLED && sig != 0) {
    fprintf(stderr, "predict: interrupted by SIG%s after %llu of %llu rows\n",
            sigabbrev_np(sig), (unsigned long long)a->done,
            (unsigned long long)a->o.rows);
    return 128 + sig;
  }
  if (r != NULL)
    bh_result_format(r, why, sizeof(why));
  else
    snprintf(why, sizeof(why), "%s", bh_strerror(rc));
  fprintf(stderr, "predict: the hive failed (%s):\n%s\n", bh_err_name(rc),
          why);
  return 1;
}

/* The workers' S3 profile: --s3-profile, else $AWS_PROFILE, else
 * "default"; NULL (no S3 client, no AWS configuration needed) unless the
 * rows come from s3://. */
static const char *
s3_profile(const opts *o) {
  const char *env = getenv("AWS_PROFILE");

  if (o->inputs == NULL || strncmp(o->inputs, "s3://", 5) != 0)
    return NULL;
  if (o->s3_profile != NULL)
    return o->s3_profile;
  return env != NULL && *env != '\0' ? env : "default";
}

/* Where the workers of other hosts join: said once the queen listens, so
 * that a launcher (or the user) can start them. */
static void
on_listen(void *udata, const char *address) {
  (void)udata;
  fprintf(stderr, "predict: workers may join at %s\n", address);
}

/* --listen: the queen's door, and no workers here with --workers 0.
 * --mpi: the MPI component opens the door (on --listen, if given) and
 * takes workers 0 for none here. */
static void
hosts_opts(const opts *p, bh_run_opts *o) {
  if (p->listen == NULL && !p->mpi)
    return;
  o->listen = p->listen;
  o->key_file = p->key_file;
  o->remote_workers = (int)p->min_remote;
  o->heartbeat_ms = p->heartbeat_ms;
  o->on_listen = on_listen;
  if (p->workers == 0 && !p->mpi)
    o->workers = BH_NONE, o->min_workers = o->max_workers = 0;
}

/* bh_run, or under --mpi its MPI form, which runs it for rank 0. */
static int
run_hive(const opts *p, const bh_run_opts *o, bh_result **r) {
#ifdef BH_HAVE_MPI
  if (p->mpi)
    return bh_mpi_run(o, r);
#endif
  (void)p;
  return bh_run(o, r);
}

/* Runs the hive. Returns 0 with the queen's counts, or an exit status
 * (say_failure). */
static int
run(app *a, bh_trace *tr, uint64_t counts[3]) {
  bh_value *args = bh_value_pack(NULL, "[I I I I]", (int64_t)a->o.rows,
                                 (int64_t)a->o.batch, (int64_t)a->o.window,
                                 (int64_t)a->o.chunk);
  bh_run_opts o = {.queen_class = &queen, .task_name = "predict",
                   .task_args = args, .workers = (int)a->o.workers,
                   .min_workers = (int)a->o.workers,
                   .max_workers = (int)a->o.workers,
                   .max_concurrency = (int)a->o.max_conc,
                   .retries = (int)a->o.retries, .trace = tr,
                   .progress = on_progress, .progress_udata = a,
                   .s3_profile = s3_profile(&a->o),
                   .http_max_host_connections = (int)a->o.http_conns};
  bh_result *r = NULL;
  char why[4096];
  int rc;

  hosts_opts(&a->o, &o);
  rc = args ? run_hive(&a->o, &o, &r) : BH_ENOMEM;

  if (rc == 0 && bh_result_unpack(r, why, sizeof(why), "[U U U]", &counts[0],
                                  &counts[1], &counts[2]) != 0)
    rc = BH_ETYPE;
  if (rc != 0)
    rc = say_failure(a, rc, r);
  bh_result_free(r);
  bh_value_free(args);
  return rc;
}

static int
write_trace(const opts *o, const bh_trace *tr) {
  int rc = 0, e;

  if (o->trace != NULL && (e = bh_trace_write_json(tr, o->trace)) != 0) {
    fprintf(stderr, "predict: %s: %s\n", o->trace, bh_strerror(e));
    rc = 1;
  }
  if (o->timeline != NULL && (e = bh_trace_write_svg(tr, o->timeline)) != 0) {
    fprintf(stderr, "predict: %s: %s\n", o->timeline, bh_strerror(e));
    rc = 1;
  }
  return rc;
}

static void
summary(const app *a, const uint64_t counts[3], double secs) {
  char acc[16] = "n/a";

  if (counts[1] > 0)
    snprintf(acc, sizeof(acc), "%.4f",
             (double)counts[2] / (double)counts[1]);
  printf("predict: rows %llu, accuracy %s, rows/s %.0f, workers %ld, "
         "retried %llu\n", (unsigned long long)counts[0], acc,
         secs > 0 ? (double)counts[0] / secs : 0.0,
         a->o.workers + a->o.min_remote,
         (unsigned long long)a->final.retried);
}

static void
cleanup(app *a) {
  size_t i;

  for (i = 0; a->urls != NULL && i < a->data.n; i++)
    free(a->urls[i]);
  free(a->urls);
  for (i = 0; a->kids != NULL && i < a->final.n_children; i++)
    free((char *)a->kids[i].cause), free((char *)a->kids[i].host);
  free(a->kids);
  digits_data_free(&a->data);
}

/* --mpi: every rank but 0 serves as a worker and ends here (returns its
 * exit status); rank 0 goes on as the queen (returns -1), waiting for
 * every other rank unless --min-remote says otherwise. */
static int
mpi_start(int *argc, char ***argv, opts *o) {
#ifdef BH_HAVE_MPI
  int status = 2, role = bh_mpi_start(argc, argv, NULL,
                                      (const bh_class *const[]){&worker, NULL},
                                      &status);

  if (role < 0)
    return 2;
  if (role == BH_MPI_WORKER)
    return status;
  if (o->min_remote == 0)
    o->min_remote = bh_mpi_ranks() - 1;
  if (bh_mpi_ranks() == 1 && o->workers == 0) /* alone: a local run */
    o->workers = 2;
#else
  (void)argc, (void)argv, (void)o;
#endif
  return -1;
}

/* The queen gave up before her hive: the worker ranks are told why. */
static void
mpi_end(const opts *o, const char *why) {
#ifdef BH_HAVE_MPI
  if (o->mpi)
    bh_mpi_end(why);
#else
  (void)o, (void)why;
#endif
}

int
main(int argc, char **argv) {
  char cache[PATH_MAX];
  uint64_t counts[3] = {0, 0, 0};
  bh_trace *tr = NULL;
  double secs;
  int rc = parse(argc, argv, &A.o);

  if (rc != 0)
    return rc > 0 ? 0 : 2;
  if (A.o.join != NULL) { /* a worker of another host's queen */
    bh_join_opts j = {.address = A.o.join, .key_file = A.o.key_file};

    return bh_join(&j, (const bh_class *const[]){&worker, NULL});
  }
  if (A.o.mpi && (rc = mpi_start(&argc, &argv, &A.o)) >= 0)
    return rc; /* a worker rank, done */
  rc = 0;
  size_work(&A.o);
  default_cache(&A.o, cache, sizeof(cache));
  A.live = !A.o.quiet && isatty(2);
  if (load(&A) != 0) {
    mpi_end(&A.o, "predict: the queen's data or --out could not be opened");
    return 1;
  }
  if ((A.o.trace || A.o.timeline) && (tr = bh_trace_new()) == NULL) {
    mpi_end(&A.o, "predict: no memory for the trace");
    rc = 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &A.t0);
  if (rc == 0)
    rc = run(&A, tr, counts);
  secs = since(&A.t0);
  if (A.out != NULL && fclose(A.out) != 0 && rc == 0) {
    fprintf(stderr, "predict: %s: %s\n", A.o.out, strerror(errno));
    rc = 1;
  }
  if (rc == 0)
    rc = write_trace(&A.o, tr);
  if (rc == 0 && A.o.stats)
    print_stats(&A);
  if (rc == 0)
    summary(&A, counts, secs);
  bh_trace_free(tr);
  cleanup(&A);
  return rc;
}
