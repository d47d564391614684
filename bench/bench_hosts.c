/* bench_hosts.c - the main job (examples/predict, installed as
 * beehive-predict) with its workers on other hosts: the queen with
 * --listen and --workers 0, each worker a `predict --join` process,
 * against the same job with 2 local workers. Each figure is predict's own
 * rows/s, which times the whole bh_run: for joined workers, their start
 * and handshake too. The joined runs' CSV is checked byte-identical to
 * the local run's.
 *
 *   hosts_predict_local_rows_per_s   2 local workers, rows from the
 *          queen's file:// cache (written by a run before)
 *   hosts_predict_tcp_rows_per_s   2 workers joined over loopback,
 *          started the moment the queen says where (as a launcher that
 *          reads her address would)
 *   hosts_predict_tcp_together_rows_per_s   the same with the workers
 *          started together with the queen at a port fixed beforehand (as
 *          mpirun or srun start everyone): they find nobody listening yet
 *          and try again
 *   hosts_predict_tcp_vs_local, hosts_predict_tcp_together_vs_local
 *   hosts_predict_{local,tcp}_cpu_us_per_row   CPU time (user + system)
 *          of all the run's processes per row
 *   hosts_io_local_rows_per_s_20ms   2 local workers, rows from nginx
 *          answering each GET after 20 ms (the latency-bound job)
 *   hosts_io_netns3_rows_per_s_20ms   3 workers joined from 3 network
 *          namespace hosts (tests/netns.h), over their veth links, the
 *          rows from the same nginx (it listens on the first host's
 *          gateway too)
 *   hosts_io_netns3_vs_local_20ms
 *   hosts_io_tcp3_rows_per_s_20ms, hosts_io_tcp3_vs_local_20ms   the
 *          same 3 joined workers on this host, over loopback: what the
 *          namespaces' links add, and what 3 joined workers do
 *   hosts_io_{local,tcp3,netns3}_cpu_us_per_row   CPU time of the hive's
 *          processes per row (nginx's is not counted)
 * The namespace figures are skipped (a "skipped:" line says why) where
 * namespaces cannot be made, e.g. not root.
 *
 *   bench_hosts PREDICT [ROWS] [HTTP_ROWS]
 *     PREDICT: the built examples/predict
 *     ROWS (BENCH_HOSTS_ROWS): rows of the file:// runs (default 100000)
 *     HTTP_ROWS (BENCH_HOSTS_HTTP_ROWS): of the http:// runs (default
 *       20000)
 *     BENCH_HOSTS_PARTS: which of file and http to run (default both) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "netns.h"
#include "servers.h"

#define DELAY_MS 20
#define NROWS 1797 /* the dataset's rows: the warm-up writes their cache */
#define MAX_JOINERS 3
#define MAX_ARGS 40

static char work[] = "/tmp/bh_bench_hosts_XXXXXX";
static char predict_bin[PATH_MAX], data_dir[PATH_MAX], key[PATH_MAX + 8];

/* One run of the main job. */
typedef struct job {
  const char *name; /* its CSV: work/NAME.csv */
  long rows;
  const char *inputs;    /* --inputs, or NULL: the queen's cache */
  int joiners;           /* 0: 2 local workers; else joined ones */
  bh_test_host *hosts;   /* the joiners' hosts, or NULL: this one */
  const char *listen;    /* the queen's door: "HOST:0" */
  bool together;         /* joiners start with the queen, not after */
  double cpu_us_per_row; /* out: all its processes' CPU per row */
} job;

static double
cpu_children(void) {
  struct rusage u;

  getrusage(RUSAGE_CHILDREN, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static int
wait_status(pid_t pid) {
  int st;

  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      bench_die_errno("waitpid");
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Starts argv with stdout to the file `out` and stderr to err_fd (-1:
 * ours). */
static pid_t
spawn(char *const argv[], const char *out, int err_fd) {
  pid_t pid = fork();

  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0 || dup2(fd, 1) < 0 || (err_fd >= 0 && dup2(err_fd, 2) < 0))
      _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  if (pid < 0)
    bench_die_errno("fork");
  return pid;
}

/* A worker joining the queen at addr: in host h, or here. */
static pid_t
start_joiner(const bh_test_host *h, const char *addr) {
  char *argv[] = {predict_bin,  (char *)"--join",
                  (char *)addr, (char *)"--key-file",
                  key,          NULL};

  if (h != NULL)
    return bh_test_host_exec(h, predict_bin, argv, NULL);
  return spawn(argv, "/dev/null", -1);
}

/* The queen's command line for j; her door's address in door. */
static void
queen_argv(const job *j, char *argv[], char *rows, char *cache, char *csv,
           char *door) {
  int n = 0;

  snprintf(rows, 24, "%ld", j->rows);
  snprintf(cache, PATH_MAX, "%s/rows", work);
  snprintf(csv, PATH_MAX, "%s/%s.csv", work, j->name);
  argv[n++] = predict_bin;
  argv[n++] = (char *)"--quiet";
  argv[n++] = (char *)"--rows", argv[n++] = rows;
  argv[n++] = (char *)"--data", argv[n++] = data_dir;
  argv[n++] = (char *)"--cache", argv[n++] = cache;
  argv[n++] = (char *)"--out", argv[n++] = csv;
  if (j->inputs != NULL)
    argv[n++] = (char *)"--inputs", argv[n++] = (char *)j->inputs;
  if (j->joiners > 0) {
    if (j->together)
      snprintf(door, 64, "127.0.0.1:%d", bh_test_free_port());
    else
      snprintf(door, 64, "%s", j->listen);
    argv[n++] = (char *)"--listen", argv[n++] = door;
    argv[n++] = (char *)"--key-file", argv[n++] = key;
    argv[n++] = (char *)"--workers", argv[n++] = (char *)"0";
    argv[n++] = (char *)"--min-remote";
    argv[n++] = j->joiners == 2 ? (char *)"2" : (char *)"3";
  }
  argv[n] = NULL;
}

/* Reads the queen's stderr until she says where workers may join (into
 * addr); false if she ended first. Whatever else she said goes on to our
 * stderr. */
static bool
door_said(FILE *err, char *addr, size_t len) {
  static const char tag[] = "workers may join at ";
  char line[512], *at;

  while (fgets(line, sizeof(line), err) != NULL) {
    if ((at = strstr(line, tag)) != NULL) {
      snprintf(addr, len, "%s", at + sizeof(tag) - 1);
      addr[strcspn(addr, "\r\n")] = '\0';
      return true;
    }
    fputs(line, stderr);
  }
  return false;
}

/* The number after "rows/s " in the file, or -1. */
static double
rows_per_s(const char *path) {
  char line[512], *at;
  double v = -1;
  FILE *f = fopen(path, "r");

  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if ((at = strstr(line, "rows/s ")) != NULL)
      v = strtod(at + 7, NULL);
  if (f != NULL)
    fclose(f);
  return v;
}

/* Starts j's joiners at addr. */
static void
start_joiners(const job *j, const char *addr, pid_t *pids) {
  int i;

  for (i = 0; i < j->joiners; i++)
    if ((pids[i] = start_joiner(j->hosts ? &j->hosts[i] : NULL, addr)) < 0)
      bench_die_errno("a joiner");
}

/* Runs j; returns its rows/s, or dies saying what failed. */
static double
run_job(job *j) {
  char *argv[MAX_ARGS], rows[24], cache[PATH_MAX], csv[PATH_MAX];
  char door[64], out[PATH_MAX + 32], addr[64];
  pid_t queen, joiner[MAX_JOINERS];
  double c0 = cpu_children(), v;
  int p[2], i, bad;
  FILE *err;

  queen_argv(j, argv, rows, cache, csv, door);
  snprintf(out, sizeof(out), "%s/%s.out", work, j->name);
  if (j->together)
    start_joiners(j, door, joiner);
  if (pipe2(p, O_CLOEXEC) != 0 || (err = fdopen(p[0], "r")) == NULL)
    bench_die_errno("pipe");
  queen = spawn(argv, out, p[1]);
  close(p[1]);
  if (j->joiners > 0 && !j->together) {
    if (!door_said(err, addr, sizeof(addr))) {
      fprintf(stderr, "bench_hosts: %s: the queen never listened\n", j->name);
      exit(2);
    }
    start_joiners(j, addr, joiner);
  }
  for (char line[512]; fgets(line, sizeof(line), err) != NULL;)
    if (strstr(line, "workers may join at ") == NULL)
      fputs(line, stderr); /* until she ends */
  fclose(err);
  bad = wait_status(queen);
  for (i = 0; i < j->joiners; i++)
    bad |= wait_status(joiner[i]);
  v = rows_per_s(out);
  if (bad != 0 || v <= 0) {
    fprintf(stderr, "bench_hosts: %s failed (status %d)\n", j->name, bad);
    exit(2);
  }
  j->cpu_us_per_row = (cpu_children() - c0) / (double)j->rows * 1e6;
  return v;
}

/* Whether work/a.csv and work/b.csv hold the same bytes. */
static bool
same_csv(const char *a, const char *b) {
  char pa[PATH_MAX + 32], pb[PATH_MAX + 32];
  FILE *fa, *fb;
  int ca, cb;

  snprintf(pa, sizeof(pa), "%s/%s.csv", work, a);
  snprintf(pb, sizeof(pb), "%s/%s.csv", work, b);
  fa = fopen(pa, "r");
  fb = fopen(pb, "r");
  do {
    ca = fa != NULL ? getc(fa) : -2;
    cb = fb != NULL ? getc(fb) : -3;
  } while (ca == cb && ca != EOF);
  if (fa != NULL)
    fclose(fa);
  if (fb != NULL)
    fclose(fb);
  return ca == cb;
}

/* Runs the joined job, checks its CSV against the local one's, and
 * prints its rows/s and their ratio to the local run's. */
static double
versus(job *j, const char *local, double local_rate, const char *rate_key,
       const char *ratio_key) {
  double v = run_job(j);

  if (!same_csv(j->name, local)) {
    fprintf(stderr, "bench_hosts: the CSV of %s differs from %s's\n", j->name,
            local);
    exit(2);
  }
  bench_out(rate_key, v, "rows/s");
  bench_out(ratio_key, v / local_rate, "ratio");
  return v;
}

/* The hive's key file: 64 hexadecimal digits, mode 0600. It must be there
 * before workers that start with their queen look for it. */
static void
make_key(void) {
  unsigned char k[32];
  char hex[66];
  int i, fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

  if (fd < 0 || read(fd, k, sizeof(k)) != (ssize_t)sizeof(k))
    bench_die_errno("/dev/urandom");
  close(fd);
  for (i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", k[i]);
  hex[64] = '\n';
  fd = open(key, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, hex, 65) != 65)
    bench_die_errno(key);
  close(fd);
}

/* ---- the runs --------------------------------------------------------- */

static void
files(long rows) {
  job local = {.name = "local", .rows = rows};
  job tcp = {
      .name = "tcp", .rows = rows, .joiners = 2, .listen = "127.0.0.1:0"};
  job together = {
      .name = "together", .rows = rows, .joiners = 2, .together = true};
  double l = run_job(&local);

  bench_out("hosts_predict_local_rows_per_s", l, "rows/s");
  versus(&tcp, "local", l, "hosts_predict_tcp_rows_per_s",
         "hosts_predict_tcp_vs_local");
  versus(&together, "local", l, "hosts_predict_tcp_together_rows_per_s",
         "hosts_predict_tcp_together_vs_local");
  bench_out("hosts_predict_local_cpu_us_per_row", local.cpu_us_per_row, "us");
  bench_out("hosts_predict_tcp_cpu_us_per_row", tcp.cpu_us_per_row, "us");
}

/* 3 hosts whose workers GET their rows from nginx. */
static void
network(long rows) {
  bh_test_host h[MAX_JOINERS];
  bh_test_http web;
  char why[200], inputs[160], listen[40], docroot[PATH_MAX];
  job local = {.name = "http_local", .rows = rows, .inputs = inputs};
  job near = {.name = "http_tcp3",
              .rows = rows,
              .inputs = inputs,
              .joiners = 3,
              .listen = "127.0.0.1:0"};
  job far = {.name = "http_netns3",
             .rows = rows,
             .inputs = inputs,
             .joiners = 3,
             .hosts = h,
             .listen = listen};
  double rate;
  int i;

  if (bh_test_netns_usable(why, sizeof(why)) != 0) {
    printf("skipped: hosts_io_*: %s\n", why);
    fflush(stdout);
    return;
  }
  for (i = 0; i < MAX_JOINERS; i++)
    if (bh_test_host_make(&h[i], i + 1) != 0)
      exit(2);
  snprintf(docroot, sizeof(docroot), "%s", work);
  if (bh_test_http_start_also(&web, docroot, 2, h[0].gateway) != 0)
    exit(2);
  snprintf(inputs, sizeof(inputs), "http://%s:%d/delay/%d/rows/", h[0].gateway,
           web.port, DELAY_MS);
  snprintf(listen, sizeof(listen), "%s:0", h[0].gateway);
  rate = run_job(&local);
  bench_out("hosts_io_local_rows_per_s_20ms", rate, "rows/s");
  versus(&near, "http_local", rate, "hosts_io_tcp3_rows_per_s_20ms",
         "hosts_io_tcp3_vs_local_20ms");
  versus(&far, "http_local", rate, "hosts_io_netns3_rows_per_s_20ms",
         "hosts_io_netns3_vs_local_20ms");
  bench_out("hosts_io_local_cpu_us_per_row", local.cpu_us_per_row, "us");
  bench_out("hosts_io_tcp3_cpu_us_per_row", near.cpu_us_per_row, "us");
  bench_out("hosts_io_netns3_cpu_us_per_row", far.cpu_us_per_row, "us");
  bh_test_http_stop(&web);
  for (i = 0; i < MAX_JOINERS; i++)
    bh_test_host_free(&h[i]);
}

int
main(int argc, char **argv) {
  job warm = {.name = "warm", .rows = NROWS};
  long rows, http_rows;
  char cmd[PATH_MAX + 16];
  const char *parts;

  if (argc < 2) {
    fprintf(stderr, "usage: bench_hosts PREDICT [ROWS] [HTTP_ROWS]\n");
    return 2;
  }
  rows = bench_arg(argc, argv, 2, "BENCH_HOSTS_ROWS", 100000);
  http_rows = bench_arg(argc, argv, 3, "BENCH_HOSTS_HTTP_ROWS", 20000);
  if (rows == 0 || http_rows == 0 || realpath(argv[1], predict_bin) == NULL ||
      mkdtemp(work) == NULL)
    bench_die_errno("set-up");
  snprintf(data_dir, sizeof(data_dir), "%s/data", BH_BENCH_ROOT_DIR);
  snprintf(key, sizeof(key), "%s/key", work);
  make_key();
  bh_test_raise_nofile(20000);
  if ((parts = getenv("BENCH_HOSTS_PARTS")) == NULL || *parts == '\0')
    parts = "file,http";
  run_job(&warm); /* the image cache, which the servers serve too */
  if (strstr(parts, "file") != NULL)
    files(rows);
  if (strstr(parts, "http") != NULL)
    network(http_rows);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
  return system(cmd) == 0 ? 0 : 1;
}
