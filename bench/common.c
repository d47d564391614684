/* common.c - see bench.h. */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t
bench_now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return (x > y) - (x < y);
}

double
bench_quantile(double *v, size_t n, double q) {
  size_t rank;

  if (n == 0)
    return 0.0;
  qsort(v, n, sizeof(*v), cmp_double);
  rank = (size_t)(q * (double)n + 0.999999); /* ceil, nearest rank */
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return v[rank - 1];
}

void
bench_out(const char *key, double value, const char *unit) {
  double mag = value < 0 ? -value : value;

  if (mag >= 1000)
    printf("%s %.0f %s\n", key, value, unit);
  else if (mag >= 0.01 || mag == 0.0)
    printf("%s %.3f %s\n", key, value, unit);
  else
    printf("%s %.3g %s\n", key, value, unit);
  fflush(stdout);
}

void
bench_write_all(int fd, const void *p, size_t n) {
  const char *c = p;

  while (n > 0) {
    ssize_t k = write(fd, c, n);

    if (k < 0 && errno != EINTR) {
      perror("bench: write");
      exit(2);
    }
    c += k > 0 ? k : 0;
    n -= k > 0 ? (size_t)k : 0;
  }
}

int
bench_read_all(int fd, void *p, size_t n) {
  char *c = p;

  while (n > 0) {
    ssize_t k = read(fd, c, n);

    if (k < 0 && errno != EINTR) {
      perror("bench: read");
      exit(2);
    }
    if (k == 0)
      return -1;
    c += k > 0 ? k : 0;
    n -= k > 0 ? (size_t)k : 0;
  }
  return 0;
}

int
bench_listen(const char *host, char *addr, size_t len) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t sl = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
      bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(fd, 128) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
    fprintf(stderr, "bench: cannot listen on %s: %s\n", host,
            strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  snprintf(addr, len, "%s:%d", host, ntohs(sa.sin_port));
  return fd;
}

static FILE *
open_proc(pid_t pid, const char *leaf) {
  char path[64];

  if (pid == 0)
    snprintf(path, sizeof(path), "/proc/self/%s", leaf);
  else
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, leaf);
  return fopen(path, "r");
}

/* The number after "field:" in a /proc file of "Name:   123 kB" lines. */
static long
proc_field(pid_t pid, const char *leaf, const char *field) {
  char line[256];
  size_t len = strlen(field);
  long v = -1;
  FILE *f = open_proc(pid, leaf);

  while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, field, len) == 0 && line[len] == ':') {
      v = strtol(line + len + 1, NULL, 10);
      break;
    }
  }
  if (f != NULL)
    fclose(f);
  return v;
}

long
bench_status_kib(pid_t pid, const char *field) {
  return proc_field(pid, "status", field);
}

long
bench_pss_kib(pid_t pid) {
  return proc_field(pid, "smaps_rollup", "Pss");
}

long
bench_rss_bytes(void) {
  long size = 0, resident = -1;
  FILE *f = fopen("/proc/self/statm", "r");

  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
      resident = -1;
    fclose(f);
  }
  return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static cpu_set_t start_mask;
static int start_mask_read;

static int
read_start_mask(void) {
  if (!start_mask_read &&
      sched_getaffinity(0, sizeof(start_mask), &start_mask) == 0)
    start_mask_read = 1;
  return start_mask_read ? 0 : -1;
}

int
bench_cpu(int k) {
  int i;

  if (read_start_mask() != 0)
    return -1;
  for (i = 0; i < CPU_SETSIZE; i++)
    if (CPU_ISSET(i, &start_mask) && k-- == 0)
      return i;
  return -1;
}

int
bench_pin(int cpu) {
  cpu_set_t one;

  if (read_start_mask() != 0)
    return -1;
  if (cpu < 0)
    return sched_setaffinity(0, sizeof(start_mask), &start_mask);
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return sched_setaffinity(0, sizeof(one), &one);
}

long
bench_arg(int argc, char **argv, int i, const char *env, long def) {
  const char *s = i < argc ? argv[i] : NULL;
  char *end;
  long v;

  if (s == NULL && env != NULL)
    s = getenv(env);
  if (s == NULL || *s == '\0')
    return def;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < 0) {
    fprintf(stderr, "bench: not a count: \"%s\"\n", s);
    exit(2);
  }
  return v;
}

_Noreturn void
bench_die(const char *what, int rc, const bh_result *r) {
  char buf[2048] = "";

  if (r != NULL)
    bh_result_format(r, buf, sizeof(buf));
  fprintf(stderr, "bench: %s: %s (%s)\n%s\n", what, bh_err_name(rc),
          bh_strerror(rc), buf);
  exit(2);
}

_Noreturn void
bench_die_errno(const char *what) {
  bench_die(what, -errno, NULL);
}

bh_result *
bench_run_opts(bh_run_opts *o, int workers) {
  bh_result *r = NULL;
  int rc;

  o->workers = workers;
  o->min_workers = workers;
  o->max_workers = workers;
  rc = bh_run(o, &r);
  if (rc != 0)
    bench_die(o->task_name, rc, r);
  return r;
}

bh_result *
bench_run(const bh_class *queen, const char *task, const bh_value *args,
          int workers, int max_conc) {
  bh_run_opts o = {.queen_class = queen,
                   .task_name = task,
                   .task_args = args,
                   .max_concurrency = max_conc};

  return bench_run_opts(&o, workers);
}

int
bench_seq_loop(bh_task *t, double *us, size_t warm, size_t n) {
  bh_result *r;
  size_t i;
  int rc;

  for (i = 0; i < warm + n; i++) {
    int64_t t0 = bench_now_ns();

    rc = bh_delegate(t, &r, "noop", NULL);
    if (i >= warm)
      us[i - warm] = (double)(bench_now_ns() - t0) / 1e3;
    if (rc != 0) {
      rc = r != NULL ? bh_raise_result(t, r) : rc;
      bh_result_free(r);
      return rc;
    }
    bh_result_free(r);
  }
  return 0;
}

int
bench_collect(bh_task *t, bh_group *g) {
  bh_future *f;
  int rc = bh_group_next(g, &f, -1);

  if (rc != 0)
    return bh_raise(t, "RuntimeError", "bh_group_next: %s", bh_strerror(rc));
  if (bh_result_status(bh_future_result(f)) != BH_SUCCEEDED)
    rc = bh_raise_result(t, bh_future_result(f));
  bh_future_free(f);
  return rc;
}

/* ---- the usual worker ------------------------------------------------- */

static int
w_noop(bh_task *t) {
  (void)t;
  return 0;
}

static int
w_echo(bh_task *t) {
  const msgpack_object *a = bh_task_args(t);

  if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size < 1)
    return bh_raise(t, "TypeError", "echo takes one argument");
  return bh_return_object(t, &a->via.array.ptr[0]);
}

static int
w_pid(bh_task *t) {
  return bh_return(t, "[I]", (int64_t)getpid());
}

/* Sleeps args[0] ms; returns the microseconds it really slept. */
static int
w_nap(bh_task *t) {
  int64_t ms, t0 = bench_now_ns();
  int rc;

  if (bh_task_unpack(t, "[I]", &ms) != 0)
    return BH_ERAISED;
  rc = bh_sleep(t, ms);
  if (rc != 0)
    return rc;
  return bh_return(t, "I", (bench_now_ns() - t0) / 1000);
}

static int
w_pin(bh_task *t) {
  int cpu;

  if (bh_task_unpack(t, "[i]", &cpu) != 0)
    return BH_ERAISED;
  if (bench_pin(cpu) != 0)
    return bh_raise(t, "OSError", "cannot pin to CPU %d", cpu);
  return 0;
}

static const bh_task_def worker_tasks[] = {{"noop", w_noop}, {"echo", w_echo},
                                           {"pid", w_pid},   {"nap", w_nap},
                                           {"pin", w_pin},   {NULL, NULL}};

const bh_class bench_worker = {.name = "BenchWorker", .tasks = worker_tasks};
