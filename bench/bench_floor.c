/* bench_floor.c - the physical floor the hive is measured against, with
 * the hive's own transport: an AF_UNIX stream socketpair between two
 * processes (a pipe pair is measured too, for comparison).
 *
 *   pipe_rtt_us            median 1-byte round trip over a socketpair, both
 *                          processes where the scheduler puts them (as the
 *                          hive runs)
 *   pipe_rtt_same_cpu_us   the same, both processes pinned to one CPU
 *   pipe_rtt_cross_cpu_us  the same, each pinned to its own CPU
 *   pipe_rtt_pipe_*_us     the same two over a pair of pipes
 *   ..._p99_us             the 99th percentile of each
 *   stream32_msgs_per_s    32-byte frames (4-byte big-endian length + 28
 *                          bytes) written in 64 KiB batches, parsed one by
 *                          one on the other side
 *   stream256_msgs_per_s   the same with 256-byte frames
 *   raw_stream_mb_per_s_64k, raw_stream_mb_per_s_16m
 *                          one-way stream of 64 KiB / 16 MiB frames, each
 *                          read whole into one buffer, both processes on
 *                          one CPU (as bench_payload's pinned run); payload
 *                          bytes, 1 MB = 10^6 bytes
 *   raw_stream_unpinned_mb_per_s_*   the same, unpinned
 *
 * The stream32/256 figures run on one CPU too: on the machine this suite
 * was written on, that is the fastest placement for every stream. Usage:
 * bench_floor [rtt-samples] (env BENCH_RTT_N; default 20000). */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define RTT_WARMUP 2000

static void
die_errno(const char *what) {
  perror(what);
  exit(2);
}

static void
reap(pid_t pid) {
  int st;

  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "bench_floor: a helper process failed\n");
    exit(2);
  }
}

/* ---- round trips ------------------------------------------------------ */

/* Channel ends: the parent reads pr, writes pw; the child reads cr,
 * writes cw. */
typedef struct ends {
  int pr, pw, cr, cw;
} ends;

static void
make_socketpair(ends *e) {
  int sv[2];

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    die_errno("socketpair");
  *e = (ends){sv[0], sv[0], sv[1], sv[1]};
}

static void
make_pipes(ends *e) {
  int down[2], up[2];

  if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0)
    die_errno("pipe");
  *e = (ends){up[0], down[1], down[0], up[1]};
}

static void
close_ends(const ends *e) {
  int fds[4] = {e->pr, e->pw, e->cr, e->cw};
  int i, j;

  for (i = 0; i < 4; i++) {
    for (j = 0; j < i && fds[j] != fds[i]; j++)
      ;
    if (j == i)
      close(fds[i]);
  }
}

/* Where the two processes run: wherever the scheduler puts them, both on
 * the first CPU, or the parent on the first and the child on the second. */
typedef enum placement { UNPINNED, SAME_CPU, CROSS_CPU } placement;

/* Pins the calling process for `where`; the parent is the first CPU. */
static void
place(placement where, bool child) {
  int cpu = where == UNPINNED ? -1 : bench_cpu(child && where == CROSS_CPU);

  if (where != UNPINNED && bench_pin(cpu) != 0)
    die_errno("sched_setaffinity");
}

/* The child echoes each byte until end of stream. */
static void
echo_child(const ends *e, placement where) {
  char b;

  place(where, true);
  if (e->pr != e->cr)
    close(e->pr);
  if (e->pw != e->cr && e->pw != e->cw)
    close(e->pw);
  while (bench_read_all(e->cr, &b, 1) == 0)
    bench_write_all(e->cw, &b, 1);
  _exit(0);
}

/* Prints the median round trip in microseconds over n samples as `key`,
 * and its 99th percentile as key with _us turned into _p99_us. */
static void
rtt(const char *key, bool pipes, placement where, size_t n) {
  double *us = malloc(n * sizeof(*us));
  char k99[64];
  ends e;
  pid_t pid;
  size_t i;
  char b = 'x';

  if (us == NULL)
    die_errno("rtt");
  if (pipes)
    make_pipes(&e);
  else
    make_socketpair(&e);
  pid = fork();
  if (pid < 0)
    die_errno("fork");
  if (pid == 0)
    echo_child(&e, where);
  place(where, false);
  for (i = 0; i < RTT_WARMUP + n; i++) {
    int64_t t0 = bench_now_ns();

    bench_write_all(e.pw, &b, 1);
    if (bench_read_all(e.pr, &b, 1) != 0)
      die_errno("echo child quit");
    if (i >= RTT_WARMUP)
      us[i - RTT_WARMUP] = (double)(bench_now_ns() - t0) / 1e3;
  }
  bench_pin(-1);
  close_ends(&e);
  reap(pid);
  bench_out(key, bench_quantile(us, n, 0.5), "us");
  snprintf(k99, sizeof(k99), "%.*s_p99_us", (int)(strlen(key) - 3), key);
  bench_out(k99, bench_quantile(us, n, 0.99), "us");
  free(us);
}

/* ---- streams ---------------------------------------------------------- */

static void
put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static uint32_t
get_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* Writes `count` frames of `body` bytes: small frames packed into 64 KiB
 * batches, large ones as header + body in one writev each. */
static void
stream_writer(int fd, size_t body, size_t count) {
  size_t frame = 4 + body, per = body < 4096 ? (64 << 10) / frame : 1;
  unsigned char *batch = calloc(per, frame);
  size_t i, sent = 0;

  if (batch == NULL)
    die_errno("calloc");
  for (i = 0; i < per; i++) {
    put_be32(batch + i * frame, (uint32_t)body);
    memset(batch + i * frame + 4, (int)(i & 0x7f), body);
  }
  while (sent < count) {
    size_t k = count - sent < per ? count - sent : per;

    bench_write_all(fd, batch, k * frame);
    sent += k;
  }
  free(batch);
}

/* Reads small frames in bulk and splits them where they lie. Returns the
 * frames seen; `check` sums a byte of each body so none is skipped. */
static size_t
read_small(int fd, size_t body, size_t count, unsigned *check) {
  size_t cap = 256 << 10, len = 0, seen = 0;
  unsigned char *buf = malloc(cap);

  if (buf == NULL)
    die_errno("malloc");
  while (seen < count) {
    ssize_t k = read(fd, buf + len, cap - len);
    size_t off = 0;

    if (k <= 0)
      break;
    len += (size_t)k;
    while (len - off >= 4 && len - off - 4 >= get_be32(buf + off)) {
      uint32_t n = get_be32(buf + off);

      if (n != body)
        die_errno("bad frame");
      *check += buf[off + 4 + n - 1];
      off += 4 + n;
      seen++;
    }
    memmove(buf, buf + off, len - off);
    len -= off;
  }
  free(buf);
  return seen;
}

/* Reads each large frame's header, then its body whole into one buffer. */
static size_t
read_large(int fd, size_t body, size_t count, unsigned *check) {
  unsigned char hdr[4], *buf = malloc(body);
  size_t seen = 0;

  if (buf == NULL)
    die_errno("malloc");
  while (seen < count && bench_read_all(fd, hdr, 4) == 0) {
    if (get_be32(hdr) != body || bench_read_all(fd, buf, body) != 0)
      die_errno("bad frame");
    *check += buf[body - 1];
    seen++;
  }
  free(buf);
  return seen;
}

/* Streams count frames of body bytes from a child; returns frames/s. */
static double
stream(size_t body, size_t count, placement where) {
  int sv[2];
  pid_t pid;
  int64_t t0;
  size_t seen;
  unsigned check = 0;

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    die_errno("socketpair");
  t0 = bench_now_ns();
  pid = fork();
  if (pid < 0)
    die_errno("fork");
  if (pid == 0) {
    place(where, true);
    close(sv[0]);
    stream_writer(sv[1], body, count);
    _exit(0);
  }
  place(where, false);
  close(sv[1]);
  seen = body < 4096 ? read_small(sv[0], body, count, &check)
                     : read_large(sv[0], body, count, &check);
  t0 = bench_now_ns() - t0;
  bench_pin(-1);
  close(sv[0]);
  reap(pid);
  if (seen != count) {
    fprintf(stderr, "bench_floor: %zu of %zu frames arrived\n", seen, count);
    exit(2);
  }
  return (double)count / ((double)t0 / 1e9);
}

/* Prints the one-way stream of `size`-byte frames in MB/s as `key`. */
static void
bytes(const char *key, size_t size, size_t count, placement where) {
  bench_out(key, stream(size, count, where) * (double)size / 1e6, "MB/s");
}

int
main(int argc, char **argv) {
  size_t n = (size_t)bench_arg(argc, argv, 1, "BENCH_RTT_N", 20000);
  bool two = bench_cpu(1) >= 0;

  signal(SIGPIPE, SIG_IGN);
  rtt("pipe_rtt_us", false, UNPINNED, n);
  rtt("pipe_rtt_same_cpu_us", false, SAME_CPU, n);
  if (two)
    rtt("pipe_rtt_cross_cpu_us", false, CROSS_CPU, n);
  rtt("pipe_rtt_pipe_same_cpu_us", true, SAME_CPU, n);
  if (two)
    rtt("pipe_rtt_pipe_cross_cpu_us", true, CROSS_CPU, n);
  bench_out("stream32_msgs_per_s", stream(28, 16u << 20, SAME_CPU), "msgs/s");
  bench_out("stream256_msgs_per_s", stream(252, 4u << 20, SAME_CPU), "msgs/s");
  bytes("raw_stream_mb_per_s_64k", 64 << 10, 8192, SAME_CPU);
  bytes("raw_stream_mb_per_s_16m", 16 << 20, 48, SAME_CPU);
  bytes("raw_stream_unpinned_mb_per_s_64k", 64 << 10, 8192, UNPINNED);
  bytes("raw_stream_unpinned_mb_per_s_16m", 16 << 20, 48, UNPINNED);
  return 0;
}
