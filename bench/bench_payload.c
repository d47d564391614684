/* bench_payload.c - large binary arguments: the queen's task delegates
 * "echo" (the worker returns its argument) of a `size`-byte bin to one
 * worker, keeping `window` echoes in flight, and checks each answer's size
 * and bytes at both ends.
 *
 *   payload_mb_per_s_64k, payload_mb_per_s_16m
 *          payload bytes carried both ways (the argument to the worker and
 *          the same bytes back) per second of the queen's task, queen and
 *          worker pinned to one CPU; 1 MB = 10^6 bytes. bench_floor's
 *          raw_stream_mb_per_s_* is the one-way stream of frames of the
 *          same size in the same placement; scripts/bench.sh divides the
 *          two into payload_ratio_*.
 *   payload_unpinned_mb_per_s_64k, payload_unpinned_mb_per_s_16m
 *          the same where the scheduler puts them
 *
 * The hive runs with max_frame 64 MiB (room for a 16 MiB bin and its
 * frame). Usage: bench_payload [scale [64k|16m]]: the counts are divided
 * by scale (env BENCH_PAYLOAD_SCALE; default 1); 64k or 16m runs that
 * size only; env BENCH_PAYLOAD_ONLY=key runs that measure only (for
 * profiling). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static struct {
  unsigned char *buf;
  size_t size, count, window;
  double secs;
} S;

static int
check(bh_task *t, bh_future *f) {
  const bh_result *r = bh_future_result(f);
  const void *p;
  size_t n;

  if (bh_result_status(r) != BH_SUCCEEDED)
    return bh_raise_result(t, r);
  if (bh_result_unpack(r, NULL, 0, "y#", &p, &n) != 0 || n != S.size ||
      memcmp(p, S.buf, 64) != 0 ||
      memcmp((const char *)p + n - 64, S.buf + n - 64, 64) != 0)
    return bh_raise(t, "ValueError", "echo came back wrong");
  return 0;
}

static int
q_payload(bh_task *t) {
  bh_group *g = bh_group_new(t);
  size_t started = 0, done = 0;
  int64_t t0 = bench_now_ns();
  bh_future *f;
  int rc = 0;

  if (g == NULL)
    return BH_ENOMEM;
  while (rc == 0 && done < S.count) {
    if (started < S.count && bh_group_pending(g) < S.window) {
      rc = bh_group_delegate(g, NULL, NULL, "echo", "[y#]", S.buf, S.size);
      started++;
    } else if ((rc = bh_group_next(g, &f, -1)) == 0) {
      rc = check(t, f);
      bh_future_free(f);
      done++;
    }
  }
  S.secs = (double)(bench_now_ns() - t0) / 1e9;
  bh_group_free(g);
  return rc;
}

static const bh_task_def queen_tasks[] = {{"payload", q_payload}, {NULL, NULL}};
static const bh_class queen = {.name = "PayloadQueen",
                               .tasks = queen_tasks,
                               .worker_class = &bench_worker};

/* How the payload travels. */
enum mode {
  M_DEFAULT, /* a malloc()ed buffer, the default blob threshold */
  M_INLINE,  /* the same with blobs off: every byte through the socket */
  M_BLOB     /* a bh_blob_alloc() buffer, threshold 64 KiB: no copy */
};

/* Echoes count payloads of `size` bytes, `window` in flight, with the
 * queen and her worker on one CPU (pinned) or where the scheduler puts
 * them; prints the MB/s as `key`. */
static void
measure(const char *key, size_t size, size_t count, size_t window,
        bool pinned, enum mode mode) {
  bh_run_opts o = {.queen_class = &queen,
                   .task_name = "payload",
                   .max_frame = (size_t)64 << 20};
  size_t i, threshold = bh_blob_threshold();
  const char *only = getenv("BENCH_PAYLOAD_ONLY");

  if (only != NULL && strcmp(only, key) != 0)
    return;
  if (mode == M_INLINE)
    bh_set_blob_threshold(0);
  else if (mode == M_BLOB)
    bh_set_blob_threshold((size_t)64 << 10);
  S.buf = mode == M_BLOB ? bh_blob_alloc(size) : malloc(size);
  if (S.buf == NULL || (pinned && bench_pin(bench_cpu(0)) != 0))
    exit(2);
  for (i = 0; i < size; i++)
    S.buf[i] = (unsigned char)(i * 131 + 7);
  S.size = size;
  S.count = count > 0 ? count : 1;
  S.window = window;
  bh_result_free(bench_run_opts(&o, 1)); /* the worker inherits the pin */
  bench_pin(-1);
  bench_out(key, 2.0 * (double)size * (double)S.count / S.secs / 1e6, "MB/s");
  if (mode == M_BLOB)
    bh_blob_free(S.buf);
  else
    free(S.buf);
  bh_set_blob_threshold(threshold);
}

#define K64 ((size_t)64 << 10)
#define M16 ((size_t)16 << 20)

int
main(int argc, char **argv) {
  size_t scale = (size_t)bench_arg(argc, argv, 1, "BENCH_PAYLOAD_SCALE", 1);
  const char *only = argc > 2 ? argv[2] : "";
  size_t n64 = 8192 / scale, n16 = 48 / scale;

  if (scale == 0)
    return 2;
  if (strcmp(only, "16m") != 0) {
    measure("payload_mb_per_s_64k", K64, n64, 16, true, M_DEFAULT);
    measure("payload_unpinned_mb_per_s_64k", K64, n64, 16, false, M_DEFAULT);
    measure("payload_blob_mb_per_s_64k", K64, n64, 16, true, M_BLOB);
    measure("payload_blob_unpinned_mb_per_s_64k", K64, n64, 16, false, M_BLOB);
  }
  if (strcmp(only, "64k") != 0) {
    measure("payload_mb_per_s_16m", M16, n16, 2, true, M_DEFAULT);
    measure("payload_unpinned_mb_per_s_16m", M16, n16, 2, false, M_DEFAULT);
    measure("payload_inline_mb_per_s_16m", M16, n16, 2, true, M_INLINE);
    measure("payload_blob_mb_per_s_16m", M16, n16 * 4, 2, true, M_BLOB);
    measure("payload_blob_unpinned_mb_per_s_16m", M16, n16 * 4, 2, false,
            M_BLOB);
  }
  return 0;
}
