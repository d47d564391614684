/* test_mpi.c - the MPI start-up (beehive_mpi.h, libbeehive_mpi), under
 * OpenMPI's mpirun on this host: `mpirun -np 3 beehive-predict --mpi`
 * (and -np 1) writes the CSV of a local run, byte for byte, also when a
 * worker rank is SIGKILLed from outside mid-run; a worker rank that kills
 * itself in the middle of a task (the job started with --enable-recovery)
 * leaves the queen alive with every answer, its task retried on another
 * rank; a lone rank has workers of its own; worker ranks are released
 * when the queen gives up before her hive, and
 * give up themselves when she does not come within their wait; bad
 * options are refused by name, and a predict built without MPI refuses
 * --mpi; libbeehive itself links no MPI. Skipped (77) where the build
 * found no MPI.
 *
 * mpirun here (README.md, "Across hosts"): --allow-run-as-root as root,
 * --oversubscribe for 3 ranks on 2 cores, --bind-to none so that two
 * ranks do not share one core while another idles. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"
#include "text_util.h"
#include "wait_util.h"
#define WORKDIR_NAME "bh_test_mpi"
#include "workdir.h"

#define ROWS 3000

#ifdef BH_MPIEXEC /* else main() skips */

/* ---- paths --------------------------------------------------------------- */

/* <build>/<rest>, from BH_HELPER_DIR ("<build>/tests/helpers"). */
static const char *
in_build(const char *rest) {
  static char paths[4][4096];
  static int next;
  char *p = paths[next++ % 4];
  const char *h = BH_HELPER_DIR;
  size_t n = strlen(h), cut = strlen("/tests/helpers");

  snprintf(p, 4096, "%.*s/%s", (int)(n > cut ? n - cut : n), h, rest);
  return p;
}

static const char *
data_dir(void) {
  return BH_TEST_SRC_DIR "/../data";
}

/* ---- running programs ---------------------------------------------------- */

/* Starts argv with stdin from `in` (-1: /dev/null) and stdout and stderr
 * into the files out and err (NULL: /dev/null), or stderr into err_fd
 * when it is not -1. Returns its pid, or -1. */
static pid_t
spawn(char *const argv[], int in, const char *out, const char *err,
      int err_fd) {
  pid_t pid = fork();

  if (pid == 0) {
    int i = in >= 0 ? in : open("/dev/null", O_RDONLY);
    int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = err_fd >= 0 ? err_fd
                        : open(err ? err : "/dev/null",
                               O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 ||
        dup2(e, 2) < 0)
      _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

/* Runs argv to its end: its exit status (bh_test_exit_code). */
static int
run(char *const argv[], const char *out, const char *err) {
  pid_t pid = spawn(argv, -1, out, err, -1);

  return pid < 0 ? -1 : bh_test_exit_code(pid);
}

/* mpirun on this host with np ranks of prog (NULL-terminated, at most 16
 * words) into argv (32 words). */
static void
mpirun(char **argv, int np, bool recovery, const char *const *prog) {
  static char nps[16];
  int n = 0;

  snprintf(nps, sizeof(nps), "%d", np);
  argv[n++] = (char *)BH_MPIEXEC;
  if (geteuid() == 0)
    argv[n++] = (char *)"--allow-run-as-root";
  argv[n++] = (char *)"--oversubscribe";
  argv[n++] = (char *)"--bind-to";
  argv[n++] = (char *)"none";
  if (recovery)
    argv[n++] = (char *)"--enable-recovery";
  argv[n++] = (char *)"-np";
  argv[n++] = nps;
  while (*prog != NULL && n < 31)
    argv[n++] = (char *)*prog++;
  argv[n] = NULL;
}

/* beehive-predict --rows ROWS --data D --cache C --quiet plus `extra`
 * (NULL-terminated), under mpirun with np ranks when np > 0. */
static int
predict(int np, const char *out, const char *err, const char *const *extra) {
  static char rows[24];
  const char *words[24] = {BH_PREDICT_BIN, "--rows", rows, "--data",
                           data_dir(), "--cache", in_work("cache"),
                           "--quiet"};
  char *argv[32];
  int n = 8;

  snprintf(rows, sizeof(rows), "%d", ROWS);
  while (*extra != NULL && n < 23)
    words[n++] = *extra++;
  words[n] = NULL;
  if (np > 0)
    mpirun(argv, np, true, words);
  else
    memcpy(argv, words, sizeof(words));
  return run(argv, out, err);
}

/* The file's text (or an empty one), to be freed. */
static char *
text_of(const char *path) {
  size_t len;
  char *t = slurp(path, &len);

  return t != NULL ? t : calloc(1, 1);
}

/* Whether process pid's environment holds `var` ("NAME=value"). */
static bool
has_env(int pid, const char *var) {
  char path[64], env[65536];
  size_t n, at;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/environ", pid);
  if ((f = fopen(path, "r")) == NULL)
    return false;
  n = fread(env, 1, sizeof(env) - 1, f);
  fclose(f);
  env[n] = '\0';
  for (at = 0; at < n; at += strlen(env + at) + 1)
    if (strcmp(env + at, var) == 0)
      return true;
  return false;
}

/* The pid of MPI rank `rank` among mpirun's children (OpenMPI gives each
 * its OMPI_COMM_WORLD_RANK), or -1. */
static pid_t
rank_pid(pid_t mpirun, int rank) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  pid_t found = -1;
  char var[64];

  snprintf(var, sizeof(var), "OMPI_COMM_WORLD_RANK=%d", rank);
  while (d != NULL && found < 0 && (e = readdir(d)) != NULL) {
    char path[300], state;
    int pid = atoi(e->d_name), ppid;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (pid <= 0 || (f = fopen(path, "r")) == NULL)
      continue;
    if (fscanf(f, "%*d (%*[^)]) %c %d", &state, &ppid) == 2 &&
        ppid == mpirun && state != 'Z' && has_env(pid, var))
      found = pid;
    fclose(f);
  }
  if (d != NULL)
    closedir(d);
  return found;
}

/* ---- tests ---------------------------------------------------------------- */

TEST(the_core_library_links_no_mpi) {
  char *argv[] = {(char *)"/usr/bin/readelf", (char *)"-d",
                  (char *)in_build("libbeehive.so"), NULL};
  char *mpi_argv[] = {(char *)"/usr/bin/readelf", (char *)"-d",
                      (char *)in_build("libbeehive_mpi.so"), NULL};
  char *core, *comp;

  ASSERT_INT_EQ(run(argv, in_work("core.txt"), NULL), 0);
  ASSERT_INT_EQ(run(mpi_argv, in_work("mpi.txt"), NULL), 0);
  core = text_of(in_work("core.txt"));
  comp = text_of(in_work("mpi.txt"));
  ASSERT(strstr(core, "(NEEDED)") != NULL);
  ASSERT(strstr(core, "libmpi") == NULL);
  ASSERT(strstr(comp, "[libmpi.so") != NULL);
  ASSERT(strstr(comp, "[libbeehive.so") != NULL);
  free(core);
  free(comp);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* mpirun -np np beehive-predict --mpi writes the CSV of a local run, and
 * says how many workers it had: the other ranks (none on rank 0's host
 * besides them), or with one rank alone, the 2 of a local run. */
static int
same_csv_over_mpi(int np, const char *workers) {
  const char *local[] = {"--out", in_work("local.csv"), NULL};
  const char *mpi[] = {"--mpi", "--stats", "--out", in_work("mpi.csv"),
                       NULL};
  char *a, *b, *out, *err;
  size_t la, lb;

  ASSERT_INT_EQ(predict(0, NULL, NULL, local), 0);
  ASSERT_INT_EQ(predict(np, in_work("out"), in_work("err"), mpi), 0);
  out = text_of(in_work("out"));
  err = text_of(in_work("err"));
  fprintf(stderr, "# -np %d:\n%s%s", np, out, err);
  ASSERT(strstr(out, "predict: rows 3000, accuracy ") != NULL);
  ASSERT(strstr(out, workers) != NULL);
  ASSERT(strstr(err, "predict: workers may join at ") != NULL);
  a = slurp(in_work("local.csv"), &la);
  b = slurp(in_work("mpi.csv"), &lb);
  ASSERT(a != NULL && b != NULL);
  ASSERT_INT_EQ(count(a, "\n"), ROWS + 1);
  ASSERT_INT_EQ(lb, la);
  ASSERT(memcmp(a, b, la) == 0);
  free(a), free(b), free(out), free(err);
  return 0;
}

/* How many of the --stats worker lines name `where`. */
static size_t
workers_at(const char *where) {
  char *out = text_of(in_work("out"));
  size_t n = count(out, where);

  free(out);
  return n;
}

TEST(predict_over_mpi_writes_the_csv_of_a_local_run) {
  ASSERT_INT_EQ(same_csv_over_mpi(3, ", workers 2, retried 0\n"), 0);
  ASSERT_INT_EQ(workers_at(" (on "), 2); /* the ranks, joined */
  ASSERT_INT_EQ(same_csv_over_mpi(1, ", workers 2, retried 0\n"), 0);
  ASSERT_INT_EQ(workers_at(" (pid "), 2); /* alone: local workers */
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* The main job: a worker rank SIGKILLed from outside (an operator, the OOM
 * killer) while its tasks are in flight; with --retries they go to the
 * other rank and the CSV is the local run's. */
TEST(predict_over_mpi_survives_a_killed_rank) {
  const char *local[] = {"--rows", "60000", "--out", in_work("local.csv"),
                         NULL};
  const char *words[] = {BH_PREDICT_BIN, "--mpi", "--rows", "60000",
                         "--retries", "3", "--stats", "--quiet", "--data",
                         data_dir(), "--cache", in_work("cache"), "--out",
                         in_work("mpi.csv"), NULL};
  pid_t pid, queen, victim;
  char *argv[32], *a, *b, *out;
  size_t la, lb;
  int pidfd, killed;

  ASSERT_INT_EQ(predict(0, NULL, NULL, local), 0);
  mpirun(argv, 3, true, words);
  ASSERT((pid = spawn(argv, -1, in_work("out"), in_work("err"), -1)) > 0);
  ASSERT((pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) >= 0);
  /* About 5,000 rows written: the workers hold tasks. The queen stops
   * meanwhile, so that the run cannot end before the kill. */
  ASSERT_INT_EQ(wait_size(work_dir(), in_work("mpi.csv"), 100000, pidfd),
                0);
  queen = rank_pid(pid, 0);
  victim = rank_pid(pid, 1);
  ASSERT(queen > 0 && victim > 0);
  ASSERT_INT_EQ(kill(queen, SIGSTOP), 0);
  killed = kill(victim, SIGKILL) == 0;
  ASSERT_INT_EQ(kill(queen, SIGCONT), 0);
  ASSERT(killed);
  bh_test_exit_code(pid); /* 0 under --enable-recovery, whatever */
  close(pidfd);
  out = text_of(in_work("out"));
  fprintf(stderr, "%s", out);
  ASSERT(strstr(out, "predict: rows 60000, accuracy ") != NULL);
  ASSERT(strstr(out, ", deaths 1, ") != NULL); /* the queen's count */
  ASSERT_INT_EQ(count(out, ", deaths 1: "), 1); /* the rank, with a cause */
  a = slurp(in_work("local.csv"), &la);
  b = slurp(in_work("mpi.csv"), &lb);
  ASSERT(a != NULL && b != NULL);
  ASSERT_INT_EQ(count(a, "\n"), 60001);
  ASSERT_INT_EQ(lb, la);
  ASSERT(memcmp(a, b, la) == 0);
  free(a), free(b), free(out);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

TEST(a_killed_rank_leaves_the_queen_every_answer) {
  enum { TASKS = 400, VICTIM = 200 };
  const char *prog[] = {in_build("tests/helpers/mpi_hive"), "400", "200",
                        in_work("victim"), NULL};
  unsigned long long sum, answered, deaths, retried;
  char *argv[32], *out, *err, *pid;
  const char *line;

  mpirun(argv, 3, true, prog);
  ASSERT_INT_EQ(run(argv, in_work("out"), in_work("err")), 0);
  out = text_of(in_work("out"));
  err = text_of(in_work("err"));
  pid = text_of(in_work("victim"));
  fprintf(stderr, "# out: %s# err: %s# victim: %s", out, err, pid);
  /* The victim's rank died of it: its pid is gone. */
  ASSERT(atoi(pid) > 0);
  ASSERT(kill(atoi(pid), 0) != 0 && errno == ESRCH);
  ASSERT((line = strstr(out, "mpi_hive: ")) != NULL);
  ASSERT_INT_EQ(sscanf(line, "mpi_hive: sum %llu of %llu, deaths %llu, "
                       "retried %llu", &sum, &answered, &deaths, &retried),
                4);
  ASSERT_INT_EQ(answered, TASKS);
  ASSERT_INT_EQ(sum, (unsigned long long)(TASKS - 1) * TASKS *
                         (2 * TASKS - 1) / 6);
  ASSERT_INT_EQ(deaths, 1);
  ASSERT(retried >= 1);
  free(out), free(err), free(pid);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* mpirun -np 1: no other rank, so the hive's workers are its own (the
 * class's default), and no task is lost. */
TEST(a_lone_rank_is_a_hive_of_its_own) {
  const char *prog[] = {in_build("tests/helpers/mpi_hive"), "100", "-1",
                        in_work("victim"), NULL};
  char *argv[32], *out, *err;

  mpirun(argv, 1, true, prog);
  ASSERT_INT_EQ(run(argv, in_work("out"), in_work("err")), 0);
  out = text_of(in_work("out"));
  err = text_of(in_work("err"));
  fprintf(stderr, "# out: %s# err: %s", out, err);
  ASSERT(strstr(out, "mpi_hive: sum 328350 of 100, deaths 0, retried 0\n")
         != NULL);
  free(out), free(err);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

TEST(worker_ranks_hear_why_the_queen_gave_up) {
  const char *mpi[] = {"--mpi", "--data", in_work("nowhere"), NULL};
  char *err;
  int rc = predict(3, NULL, in_work("err"), mpi);

  /* mpirun's own status says nothing: under --enable-recovery OpenMPI
   * 4.1's is 0 whatever the ranks return (README.md, "Across hosts"). */
  err = text_of(in_work("err"));
  fprintf(stderr, "# mpirun: %d\n# %s", rc, err);
  ASSERT(strstr(err, "predict: ") != NULL);
  ASSERT(strstr(err, "nowhere") != NULL);
  ASSERT_INT_EQ(count(err, "the queen (rank 0) gave up before her hive "
                           "started: predict: the queen's data or --out "
                           "could not be opened"),
                2);
  free(err);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* Reads fd into buf (cap bytes) until it holds `want` times `needle`
 * (NULL: until its end): 0, or -1 at its end first. */
static int
read_until(int fd, char *buf, size_t cap, size_t *len, const char *needle,
           size_t want) {
  while (needle == NULL || count(buf, needle) < want) {
    ssize_t n = *len + 1 < cap ? read(fd, buf + *len, cap - 1 - *len) : 0;

    if (n <= 0)
      return needle == NULL && n == 0 ? 0 : -1;
    *len += (size_t)n;
    buf[*len] = '\0';
  }
  return 0;
}

TEST(worker_ranks_give_up_on_a_queen_who_does_not_come) {
  const char *prog[] = {in_build("tests/helpers/mpi_hive"), "--wait-ms",
                        "300", NULL};
  static char buf[16384];
  char *argv[32];
  int in[2], err[2], rc;
  size_t len = 0;
  pid_t pid;

  ASSERT(pipe2(in, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
  mpirun(argv, 3, true, prog);
  pid = spawn(argv, in[0], NULL, NULL, err[1]);
  close(in[0]);
  close(err[1]);
  ASSERT(pid > 0);
  /* The queen reads her stdin until it closes: both workers give up
   * first, each saying so. */
  rc = read_until(err[0], buf, sizeof(buf), &len, "did not listen within "
                  "300 ms", 2);
  fprintf(stderr, "# %s", buf);
  ASSERT_INT_EQ(rc, 0);
  close(in[1]);
  read_until(err[0], buf, sizeof(buf), &len, NULL, 0); /* to its end */
  close(err[0]);
  ASSERT_INT_EQ(bh_test_exit_code(pid), 0);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

TEST(bad_mpi_options_are_refused_by_name) {
  static const struct {
    const char *args[4], *says;
  } cases[] = {
      {{"--mpi", "--key-file", "k", NULL}, "no --key-file"},
      {{"--mpi", "--join", "h:1", NULL}, "--mpi and --join exclude"},
  };
  char *hive[] = {(char *)in_build("tests/helpers/mpi_hive"),
                  (char *)"--wait-ms", (char *)"-2", NULL};
  char *nompi[] = {(char *)in_build("tests/helpers/predict_nompi"),
                   (char *)"--mpi", NULL};
  char *err;
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ASSERT_INT_EQ(predict(0, NULL, in_work("err"), cases[i].args), 2);
    err = text_of(in_work("err"));
    fprintf(stderr, "# %s", err);
    ASSERT(strstr(err, cases[i].says) != NULL);
    free(err);
  }
  /* Refused before MPI starts: no mpirun needed. */
  ASSERT_INT_EQ(run(hive, NULL, in_work("err")), 2);
  err = text_of(in_work("err"));
  fprintf(stderr, "# %s", err);
  ASSERT(strstr(err, "bh_mpi_start: wait_ms -2 is out of range") != NULL);
  free(err);
  ASSERT_INT_EQ(run(nompi, NULL, in_work("err")), 2);
  err = text_of(in_work("err"));
  fprintf(stderr, "# %s", err);
  ASSERT(strstr(err, "predict: --mpi: this predict was built without MPI")
         != NULL);
  free(err);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* Appends `more` to the environment variable `name` (":"-separated). */
static void
env_add(const char *name, const char *more) {
  const char *old = getenv(name);
  char v[2048];

  snprintf(v, sizeof(v), "%s%s%s", old ? old : "", old && *old ? ":" : "",
           more);
  setenv(name, v, 1);
}

/* For the ranks, in a sanitizer build: OpenMPI's own leaks suppressed
 * (tests/mpi/lsan.supp says why), ours still reported. This process
 * read its own options when it started. */
static void
sanitizer_env(void) {
  env_add("ASAN_OPTIONS", "fast_unwind_on_malloc=0");
  env_add("LSAN_OPTIONS", "suppressions=" BH_TEST_SRC_DIR "/mpi/lsan.supp");
}

static const bh_test tests[] = {
    TEST_ENTRY(the_core_library_links_no_mpi),
    TEST_ENTRY_T(predict_over_mpi_writes_the_csv_of_a_local_run, 60),
    TEST_ENTRY_T(predict_over_mpi_survives_a_killed_rank, 90),
    TEST_ENTRY_T(a_killed_rank_leaves_the_queen_every_answer, 60),
    TEST_ENTRY_T(a_lone_rank_is_a_hive_of_its_own, 30),
    TEST_ENTRY_T(worker_ranks_hear_why_the_queen_gave_up, 60),
    TEST_ENTRY_T(worker_ranks_give_up_on_a_queen_who_does_not_come, 60),
    TEST_ENTRY_T(bad_mpi_options_are_refused_by_name, 30),
    {NULL, NULL, 0}};
#endif

int
main(int argc, char **argv) {
#ifndef BH_MPIEXEC
  (void)argc, (void)argv;
  printf("1..0 # SKIP built without MPI: libbeehive_mpi needs an MPI "
         "(Debian: libopenmpi-dev and openmpi-bin), found when CMake "
         "configures\n");
  return 77;
#else
  if (access(BH_MPIEXEC, X_OK) != 0) {
    printf("1..0 # SKIP %s: %s\n", BH_MPIEXEC, strerror(errno));
    return 77;
  }
  sanitizer_env();
  return bh_test_main(argc, argv, tests);
#endif
}
