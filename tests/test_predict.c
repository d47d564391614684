/* test_predict.c - the main job, examples/predict, run as a program: the
 * CSV is byte-identical whatever the number of workers or the batch size;
 * the accuracy and every prediction equal a serial in-process computation
 * of the same model on the same rows, also when workers are killed during
 * the run with retries on; the C inference agrees with scikit-learn's
 * recorded accuracy; the trace holds one complete span per row task;
 * the progress line shows on a terminal only; unknown labels and bad
 * options; rows read over HTTP (nginx) and from S3 (s3rver behind a
 * SigV4-checking proxy, after --upload) give the file:// run's CSV, and
 * their failures end the run naming the HTTP status or S3 code and the
 * URL. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../examples/digits.h"
#include "json_check.h"
#include "runner.h"
#include "servers.h"
#include "text_util.h"
#include "wait_util.h"
#define WORKDIR_NAME "bh_test_predict"
#include "workdir.h"

#define ROWS 3000

/* ---- paths --------------------------------------------------------------- */

/* BH_HELPER_DIR is "<build>/tests/helpers"; the examples are built into
 * "<build>/examples". */
static const char *
predict_bin(void) {
  static char path[4096];
  const char *h = BH_HELPER_DIR;
  size_t n = strlen(h), cut = strlen("/tests/helpers");

  if (n > cut && strcmp(h + n - cut, "/tests/helpers") == 0)
    snprintf(path, sizeof(path), "%.*s/examples/predict", (int)(n - cut), h);
  else
    snprintf(path, sizeof(path), "%s/../../examples/predict", h);
  return path;
}

/* Whether the program is there, else why not (on stderr). */
static int
bin_ok(void) {
  if (access(predict_bin(), X_OK) == 0)
    return 1;
  fprintf(stderr, "%s: %s (the examples must be built: BH_BUILD_EXAMPLES)\n",
          predict_bin(), strerror(errno));
  return 0;
}

/* The source tree's data/, next to tests/ where this file is. */
static const char *
data_dir(void) {
  static char path[4096];
  const char *slash = strrchr(__FILE__, '/');

  snprintf(path, sizeof(path), "%.*s/../data",
           slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
  return path;
}

/* ---- running it ------------------------------------------------------------ */

/* Runs argv with stdout and stderr into files (NULL: /dev/null). Returns
 * the exit status, or -1. */
static int
run(char *const argv[], const char *out, const char *err) {
  int st;
  pid_t pid = fork();

  if (pid < 0)
    return -1;
  if (pid == 0) {
    int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
      _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  if (waitpid(pid, &st, 0) != pid)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* predict --rows N --data D --cache C plus `extra` (at most 15,
 * NULL-terminated). */
static int
predict_rows(int n_rows, const char *out, const char *err,
             const char *const *extra) {
  char rows[24];
  char *argv[24] = {(char *)predict_bin(), (char *)"--rows", rows,
                    (char *)"--data", (char *)data_dir(), (char *)"--cache",
                    (char *)in_work("cache")};
  int n = 7;

  snprintf(rows, sizeof(rows), "%d", n_rows);
  while (*extra != NULL && n < 22)
    argv[n++] = (char *)*extra++;
  argv[n] = NULL;
  return run(argv, out, err);
}

/* predict --rows ROWS ... */
static int
predict(const char *out, const char *err, const char *const *extra) {
  return predict_rows(ROWS, out, err, extra);
}

/* The summary: the last line of stdout, and the only "predict:" line. */
static int
summary(const char *text, char *acc, size_t acclen, unsigned long *rows) {
  const char *line = strstr(text, "predict: ");
  char fmt[64];

  if (line == NULL || strstr(line + 1, "predict: ") != NULL ||
      strchr(line, '\n') == NULL || strchr(line, '\n')[1] != '\0')
    return -1;
  snprintf(fmt, sizeof(fmt), "predict: rows %%lu, accuracy %%%zu[^,]",
           acclen - 1);
  return sscanf(line, fmt, rows, acc) == 2 ? 0 : -1;
}

/* ---- the serial computation ----------------------------------------------- */

typedef struct serial {
  digits_data data;
  digits_model model;
} serial;

static int
serial_load(serial *s) {
  char path[4200], err[4800];

  snprintf(path, sizeof(path), "%s/digits.csv.gz", data_dir());
  if (digits_load(path, &s->data, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  snprintf(path, sizeof(path), "%s/digits_model.txt", data_dir());
  if (digits_model_load(path, &s->model, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  return 0;
}

/* Row i's CSV line, one row at a time: what the hive must have written. */
static void
serial_line(const serial *s, size_t i, char *line, size_t len, int *pred) {
  const digits_row *r = &s->data.rows[i % s->data.n];
  float x[DIGITS_FEATURES];
  double p[DIGITS_CLASSES], tp[1];
  char lab[16] = "";
  int j;

  for (j = 0; j < DIGITS_FEATURES; j++)
    x[j] = digits_normalise(r->px[j], DIGITS_MAXVAL);
  digits_predict(&s->model, x, 1, p);
  digits_top(p, 1, pred, tp);
  if (r->label >= 0)
    snprintf(lab, sizeof(lab), "%d", r->label);
  snprintf(line, len, "%zu,%s,%d,%.6f", i, lab, *pred, tp[0]);
}

/* ---- tests ------------------------------------------------------------------ */

TEST(csv_is_identical_across_workers_and_batches) {
  static const char *const runs[][8] = {
      {"--workers", "1", "--batch", "256", NULL},
      {"--workers", "2", "--batch", "1", NULL},
      {"--workers", "2", "--batch", "64", "--max-concurrency", "3", NULL},
      {"--workers", "2", "--batch", "512", "--window", "700", NULL},
      /* rows per task message: one, a few that do not divide the batch,
       * more than a batch (one message per batch) */
      {"--workers", "2", "--chunk", "1", NULL},
      {"--workers", "2", "--batch", "64", "--chunk", "7", NULL},
      {"--workers", "3", "--batch", "100", "--chunk", "5000", NULL}};
  char *first = NULL, *text, *extra[12];
  size_t len0 = 0, len, i, k;

  ASSERT(bin_ok());
  ASSERT(work_dir()[0] != '\0');
  for (i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
    for (k = 0; runs[i][k] != NULL; k++)
      extra[k] = (char *)runs[i][k];
    extra[k++] = (char *)"--quiet";
    extra[k++] = (char *)"--out";
    extra[k++] = (char *)in_work("out.csv");
    extra[k] = NULL;
    ASSERT_INT_EQ(predict(NULL, NULL, (const char *const *)extra), 0);
    text = slurp(in_work("out.csv"), &len);
    ASSERT(text != NULL);
    ASSERT(strncmp(text, "row_id,label,predicted,probability\n", 35) == 0);
    ASSERT_INT_EQ(count(text, "\n"), ROWS + 1);
    if (first == NULL) {
      first = text;
      len0 = len;
      continue;
    }
    ASSERT_INT_EQ(len, len0);
    ASSERT(memcmp(text, first, len) == 0);
    free(text);
  }
  free(first);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* Checks that the CSV at path holds exactly the serial computation's lines
 * for rows 0..n-1, and the summary in `out` its accuracy. */
static int
check_csv(const serial *s, const char *path, const char *out, size_t n) {
  char *csv, *line, *save = NULL, want[96], acc[16], want_acc[16];
  size_t len, i, labelled = 0, correct = 0;
  unsigned long rows;
  int pred;

  ASSERT((csv = slurp(path, &len)) != NULL);
  line = strtok_r(csv, "\n", &save);
  ASSERT(line != NULL && strcmp(line, "row_id,label,predicted,probability")
                             == 0);
  for (i = 0; i < n; i++) {
    line = strtok_r(NULL, "\n", &save);
    ASSERT(line != NULL);
    serial_line(s, i, want, sizeof(want), &pred);
    ASSERT_STR_EQ(line, want);
    labelled += s->data.rows[i % s->data.n].label >= 0;
    correct += s->data.rows[i % s->data.n].label == pred;
  }
  ASSERT(strtok_r(NULL, "\n", &save) == NULL);
  free(csv);
  ASSERT_INT_EQ(summary(out, acc, sizeof(acc), &rows), 0);
  ASSERT_INT_EQ(rows, n);
  snprintf(want_acc, sizeof(want_acc), "%.4f",
           (double)correct / (double)labelled);
  ASSERT_STR_EQ(acc, want_acc);
  fprintf(stderr, "# accuracy %s over %zu rows\n", acc, n);
  return 0;
}

TEST(predictions_match_a_serial_computation) {
  static const char *const extra[] = {"--workers", "2", "--quiet", "--out",
                                      NULL, NULL};
  const char *args[6];
  serial s;
  char *out;
  size_t len;

  ASSERT(bin_ok());
  ASSERT_INT_EQ(serial_load(&s), 0);
  memcpy(args, extra, sizeof(args));
  args[4] = in_work("serial.csv");
  ASSERT_INT_EQ(predict(in_work("serial.out"), NULL, args), 0);
  ASSERT((out = slurp(in_work("serial.out"), &len)) != NULL);
  ASSERT_INT_EQ(check_csv(&s, in_work("serial.csv"), out, ROWS), 0);
  ASSERT(strstr(out, ", workers 2, retried 0\n") != NULL);
  free(out);
  digits_data_free(&s.data);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* The accuracy of the C inference over rows [from, to), as "0.xxxx". */
static void
serial_accuracy(const serial *s, size_t from, size_t to, char *buf,
                size_t len) {
  char line[96];
  size_t i, right = 0;
  int pred;

  for (i = from; i < to; i++) {
    serial_line(s, i, line, sizeof(line), &pred);
    right += pred == s->data.rows[i].label;
  }
  snprintf(buf, len, "%.4f", (double)right / (double)(to - from));
}

/* The model file's header records scikit-learn's accuracy on the training
 * rows and on the held-out rows: the C inference must agree (a misread
 * weight would not). */
TEST(model_agrees_with_scikit_learn) {
  char path[4200], line[256], train[16], held[16], got[16];
  unsigned from = 0, to = 0;
  serial s;
  FILE *f;
  int found = 0;

  ASSERT_INT_EQ(serial_load(&s), 0);
  snprintf(path, sizeof(path), "%s/digits_model.txt", data_dir());
  ASSERT((f = fopen(path, "r")) != NULL);
  while (!found && fgets(line, sizeof(line), f) != NULL)
    found = sscanf(line, "# accuracy: train %15[0-9.], held out (rows "
                         "%u..%u) %15[0-9.]", train, &from, &to, held) == 4;
  fclose(f);
  ASSERT(found);
  ASSERT(from > 0 && to + 1 == s.data.n);
  serial_accuracy(&s, 0, from, got, sizeof(got));
  ASSERT_STR_EQ(got, train);
  serial_accuracy(&s, from, to + 1, got, sizeof(got));
  ASSERT_STR_EQ(got, held);
  digits_data_free(&s.data);
  return 0;
}

/* ---- killing workers during a run ------------------------------------------ */

static pid_t
start(char *const argv[], const char *out) {
  pid_t pid = fork();

  if (pid == 0) {
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (o < 0 || dup2(o, 1) < 0)
      _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

static int
finish(pid_t pid) {
  int st;

  if (waitpid(pid, &st, 0) != pid)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A living (not zombie) child of `parent` other than `not`, or -1. */
static pid_t
child_of(pid_t parent, pid_t not) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  pid_t found = -1;

  while (d != NULL && found < 0 && (e = readdir(d)) != NULL) {
    char path[300], state;
    int pid = atoi(e->d_name), ppid;
    FILE *f;

    if (pid <= 0 || pid == not)
      continue;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    if (fscanf(f, "%*d (%*[^)]) %c %d", &state, &ppid) == 2 &&
        ppid == parent && state != 'Z')
      found = pid;
    fclose(f);
  }
  if (d != NULL)
    closedir(d);
  return found;
}

/* Every task lost with a killed worker was retried once (--retries 3 is
 * plenty): the workers' lost counts add up to the queen's retried, which
 * the summary repeats. (A worker killed after it answered everything it
 * held loses nothing, so 0 is possible.) */
static int
lost_and_retried(const char *out) {
  unsigned long long lost = 0, n, retried, summary_retried;
  const char *p = out, *q;

  ASSERT((q = strstr(out, "stats: queen: ")) != NULL);
  ASSERT((q = strstr(q, ", retried ")) != NULL);
  ASSERT(sscanf(q, ", retried %llu", &retried) == 1);
  while ((p = strstr(p, "stats: worker ")) != NULL) {
    ASSERT((q = strstr(p, ", lost ")) != NULL);
    ASSERT(sscanf(q, ", lost %llu", &n) == 1);
    lost += n;
    p = q;
  }
  ASSERT((q = strstr(out, "predict: rows ")) != NULL);
  ASSERT((q = strstr(q, ", retried ")) != NULL);
  ASSERT(sscanf(q, ", retried %llu", &summary_retried) == 1);
  ASSERT_INT_EQ(lost, retried);
  ASSERT_INT_EQ(summary_retried, retried);
  fprintf(stderr, "# %llu tasks lost with the killed workers, retried\n",
          retried);
  return 0;
}

/* Kills two workers, one after the other, while predict runs with retries:
 * their tasks go to the other workers and the output stays the same. */
TEST(killed_workers_with_retries_change_nothing) {
  enum { N = 60000 };
  const char *csv = in_work("kill.csv");
  char *argv[] = {(char *)predict_bin(), (char *)"--rows", (char *)"60000",
                  (char *)"--workers", (char *)"2", (char *)"--retries",
                  (char *)"3", (char *)"--quiet", (char *)"--stats",
                  (char *)"--data", (char *)data_dir(), (char *)"--cache",
                  (char *)in_work("cache"), (char *)"--out", (char *)csv,
                  NULL};
  pid_t pid, victim = -1;
  serial s;
  char *out;
  size_t len;
  int pidfd, k, killed;

  ASSERT(bin_ok());
  ASSERT_INT_EQ(serial_load(&s), 0);
  ASSERT((pid = start(argv, in_work("kill.out"))) > 0);
  ASSERT((pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) >= 0);
  for (k = 1; k <= 2; k++) { /* at about 5,000 and 10,000 rows */
    ASSERT_INT_EQ(wait_size(work_dir(), csv, k * 100000, pidfd), 0);
    /* The queen stops meanwhile, so the run cannot end before the kill. */
    ASSERT_INT_EQ(kill(pid, SIGSTOP), 0);
    victim = child_of(pid, victim);
    killed = victim > 0 && kill(victim, SIGKILL) == 0;
    ASSERT_INT_EQ(kill(pid, SIGCONT), 0);
    ASSERT(killed);
  }
  ASSERT_INT_EQ(finish(pid), 0);
  close(pidfd);
  ASSERT((out = slurp(in_work("kill.out"), &len)) != NULL);
  fprintf(stderr, "%s", out); /* shown if the test fails */
  ASSERT_INT_EQ(check_csv(&s, csv, out, N), 0);
  ASSERT(strstr(out, ", deaths 2, ") != NULL);           /* the queen's */
  /* Each killed worker's line names a cause. (Not asserted: which one. A
   * worker killed with bytes unread in its socket reads as "protocol
   * error: connection reset by peer" rather than "killed by signal
   * SIGKILL" for now.) */
  ASSERT_INT_EQ(count(out, ", deaths 1: "), 2);
  ASSERT_INT_EQ(lost_and_retried(out), 0);
  free(out);
  digits_data_free(&s.data);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* With --chunk 1, every row is a task of its own in each stage. */
TEST(trace_has_one_span_per_row_task) {
  static const char *const extra[] = {"--quiet", "--trace", NULL, "--timeline",
                                      NULL, "--batch", "100", "--chunk", "1",
                                      NULL};
  const char *args[10];
  char *json, *svg;
  size_t len;

  ASSERT(bin_ok());
  memcpy(args, extra, sizeof(args));
  args[2] = in_work("t.json");
  args[4] = in_work("t.svg");
  ASSERT_INT_EQ(predict(NULL, NULL, args), 0);
  ASSERT((json = slurp(in_work("t.json"), &len)) != NULL);
  ASSERT(json_ok(json));
  ASSERT_INT_EQ(count(json, "{\"name\":\"preprocess\",\"cat\":\"task\","
                            "\"ph\":\"X\""), ROWS);
  ASSERT_INT_EQ(count(json, "{\"name\":\"postprocess\",\"cat\":\"task\","
                            "\"ph\":\"X\""), ROWS);
  ASSERT_INT_EQ(count(json, "\"ph\":\"X\""),
                2 * ROWS + count(json, "{\"name\":\"predict\""));
  ASSERT(count(json, "{\"name\":\"predict\"") >= ROWS / 100);
  ASSERT_INT_EQ(count(json, "\"status\":\"succeeded\""),
                count(json, "\"ph\":\"X\""));
  ASSERT_INT_EQ(count(json, "\"thread_name\""), 3); /* queen, 2 workers */
  ASSERT((svg = slurp(in_work("t.svg"), &len)) != NULL);
  ASSERT(strncmp(svg, "<svg", 4) == 0 && strstr(svg, "</svg>") != NULL);
  ASSERT_INT_EQ(count(svg, "class=\"lane\""), 3);
  free(json);
  free(svg);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* By default a batch's rows go in chunks, one task per chunk in each
 * stage: batches of 100 over 2 workers make 4 chunks of 25, and --chunk 40
 * makes 3 per batch, the last of 20 rows. */
TEST(trace_has_one_span_per_chunk) {
  static const char *const runs[][5] = {{"--batch", "100", NULL},
                                        {"--batch", "100", "--chunk", "40",
                                         NULL}};
  const size_t per_batch[] = {4, 3};
  const char *args[8];
  char *json;
  size_t len, i, k;

  ASSERT(bin_ok());
  for (i = 0; i < 2; i++) {
    args[0] = "--quiet";
    args[1] = "--trace";
    args[2] = in_work("c.json");
    for (k = 0; runs[i][k] != NULL; k++)
      args[3 + k] = runs[i][k];
    args[3 + k] = NULL;
    ASSERT_INT_EQ(predict(NULL, NULL, args), 0);
    ASSERT((json = slurp(in_work("c.json"), &len)) != NULL);
    ASSERT(json_ok(json));
    ASSERT_INT_EQ(count(json, "{\"name\":\"__map_chunk__\",\"cat\":\"task\","
                              "\"ph\":\"X\""), 2 * per_batch[i] * ROWS / 100);
    ASSERT_INT_EQ(count(json, "{\"name\":\"preprocess\""), 0);
    ASSERT_INT_EQ(count(json, "{\"name\":\"predict\""), ROWS / 100);
    ASSERT_INT_EQ(count(json, "\"status\":\"succeeded\""),
                  count(json, "\"ph\":\"X\""));
    free(json);
  }
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* Runs predict under `script` (a pseudo-terminal on stdin, stdout and
 * stderr); what the terminal showed goes to `out`. Returns the exit status,
 * or -2 when `script` is missing. */
static int
on_terminal(const char *out, const char *more) {
  char cmd[16384];
  char *argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};

  if (system("command -v script >/dev/null 2>&1") != 0)
    return -2;
  snprintf(cmd, sizeof(cmd),
           "exec script -qec \"'%s' --rows 10000 --data '%s' --cache '%s' %s\""
           " /dev/null", predict_bin(), data_dir(), in_work("cache"), more);
  return run(argv, out, NULL);
}

TEST(progress_shows_on_a_terminal_only) {
  char *text;
  size_t len;
  int rc;

  ASSERT(bin_ok());
  rc = on_terminal(in_work("tty.out"), "");
  if (rc == -2) {
    fprintf(stderr, "# no script(1): the terminal case is skipped\n");
  } else {
    ASSERT_INT_EQ(rc, 0);
    ASSERT((text = slurp(in_work("tty.out"), &len)) != NULL);
    ASSERT(strstr(text, "\r[####################] 10000/10000 rows  ") !=
           NULL);
    ASSERT(strstr(text, " rows/s  elapsed ") != NULL);
    ASSERT(strstr(text, "  ETA 0:00  workers 2") != NULL);
    ASSERT(strstr(text, "predict: rows 10000, accuracy ") != NULL);
    free(text);
    ASSERT_INT_EQ(on_terminal(in_work("quiet.out"), "--quiet"), 0);
    ASSERT((text = slurp(in_work("quiet.out"), &len)) != NULL);
    ASSERT(strstr(text, "predict: rows 10000, accuracy ") != NULL);
    ASSERT(strchr(text, '\r') == strrchr(text, '\r')); /* the pty's CRLF */
    ASSERT(strstr(text, "rows/s  elapsed") == NULL);
    free(text);
  }
  /* stderr a file: nothing on it, the summary on stdout. */
  ASSERT_INT_EQ(predict(in_work("plain.out"), in_work("plain.err"),
                        (const char *const[]){NULL}), 0);
  ASSERT((text = slurp(in_work("plain.err"), &len)) != NULL);
  ASSERT_INT_EQ(len, 0);
  free(text);
  ASSERT((text = slurp(in_work("plain.out"), &len)) != NULL);
  ASSERT(strncmp(text, "predict: rows 3000, accuracy 0.", 31) == 0);
  free(text);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* Writes a 3-row dataframe, the middle row without a label, as .csv.gz,
 * next to a copy of the model. */
static int
tiny_data(const char *dir) {
  char path[600], model[4200], cmd[6000];
  int j, r;
  FILE *f;

  mkdir(dir, 0700);
  snprintf(path, sizeof(path), "%s/digits.csv", dir);
  if ((f = fopen(path, "w")) == NULL)
    return -1;
  for (r = 0; r < 3; r++) {
    for (j = 0; j < DIGITS_FEATURES; j++)
      fprintf(f, "%d,", (j * (r + 3)) % 17);
    fputs(r == 1 ? "\n" : r == 0 ? "4\n" : "7\n", f);
  }
  fclose(f);
  snprintf(model, sizeof(model), "%s/digits_model.txt", data_dir());
  snprintf(cmd, sizeof(cmd), "gzip -f '%s' && cp '%s' '%s/'", path, model,
           dir);
  return system(cmd) == 0 ? 0 : -1;
}

TEST(unknown_labels_stay_empty) {
  const char *dir = in_work("tiny");
  char *argv[] = {(char *)predict_bin(), (char *)"--rows", (char *)"6",
                  (char *)"--data", (char *)dir, (char *)"--cache",
                  (char *)in_work("tiny-cache"), (char *)"--out",
                  (char *)in_work("tiny.csv"), NULL};
  char *csv, *out, acc[16];
  unsigned long rows;
  size_t len;

  ASSERT(bin_ok());
  ASSERT_INT_EQ(tiny_data(dir), 0);
  ASSERT_INT_EQ(run(argv, in_work("tiny.out"), NULL), 0);
  ASSERT((csv = slurp(in_work("tiny.csv"), &len)) != NULL);
  ASSERT_INT_EQ(count(csv, "\n"), 7);
  ASSERT(strstr(csv, "\n0,4,") != NULL);
  ASSERT(strstr(csv, "\n1,,") != NULL);
  ASSERT(strstr(csv, "\n4,,") != NULL);
  ASSERT(strstr(csv, "\n5,7,") != NULL);
  ASSERT((out = slurp(in_work("tiny.out"), &len)) != NULL);
  ASSERT_INT_EQ(summary(out, acc, sizeof(acc), &rows), 0);
  ASSERT_INT_EQ(rows, 6);
  /* accuracy over the 4 labelled rows: 0, 1/4, 2/4, 3/4 or 1 */
  ASSERT(strlen(acc) == 6 && strstr("0.0000 0.2500 0.5000 0.7500 1.0000",
                                    acc) != NULL);
  free(csv);
  free(out);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

TEST(bad_input_gets_a_clear_error) {
  char *bad_rows[] = {(char *)predict_bin(), (char *)"--rows", (char *)"x",
                      NULL};
  char *bad_opt[] = {(char *)predict_bin(), (char *)"--frobnicate", NULL};
  char *no_data[] = {(char *)predict_bin(), (char *)"--data",
                     (char *)"/nonexistent", NULL};
  char *bad_scheme[] = {(char *)predict_bin(), (char *)"--inputs",
                        (char *)"ftp://host/digits/", NULL};
  char *bad_upload[] = {(char *)predict_bin(), (char *)"--upload",
                        (char *)"--inputs", (char *)"http://host/d/", NULL};
  char *bad_chunk[] = {(char *)predict_bin(), (char *)"--chunk", (char *)"0",
                       NULL};
  char *text;
  size_t len;

  ASSERT(bin_ok());
  ASSERT_INT_EQ(run(bad_rows, NULL, in_work("e1")), 2);
  ASSERT((text = slurp(in_work("e1"), &len)) != NULL);
  ASSERT(strstr(text, "--rows wants an integer >= 0, got \"x\"") != NULL);
  free(text);
  ASSERT_INT_EQ(run(bad_opt, NULL, in_work("e2")), 2);
  ASSERT((text = slurp(in_work("e2"), &len)) != NULL);
  ASSERT(strstr(text, "unknown option \"--frobnicate\"") != NULL);
  free(text);
  ASSERT_INT_EQ(run(no_data, NULL, in_work("e3")), 1);
  ASSERT((text = slurp(in_work("e3"), &len)) != NULL);
  ASSERT(strstr(text, "/nonexistent/digits.csv.gz: No such file") != NULL);
  free(text);
  ASSERT_INT_EQ(run(bad_scheme, NULL, in_work("e4")), 2);
  ASSERT((text = slurp(in_work("e4"), &len)) != NULL);
  ASSERT(strstr(text, "--inputs wants a file://, http:// or s3:// prefix, "
                      "got \"ftp://host/digits/\"") != NULL);
  free(text);
  ASSERT_INT_EQ(run(bad_upload, NULL, in_work("e5")), 2);
  ASSERT((text = slurp(in_work("e5"), &len)) != NULL);
  ASSERT(strstr(text, "--upload wants an s3:// --inputs prefix") != NULL);
  free(text);
  ASSERT_INT_EQ(run(bad_chunk, NULL, in_work("e6")), 2);
  ASSERT((text = slurp(in_work("e6"), &len)) != NULL);
  ASSERT(strstr(text, "--chunk wants an integer >= 1, got \"0\"") != NULL);
  free(text);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* ---- interrupted from a terminal -------------------------------------------- */

/* Starts predict for far more rows than it can do in a second, in a session
 * of its own (a terminal's job), with stdout and stderr into files. */
static pid_t
start_job(const char *csv, const char *out, const char *err) {
  pid_t pid = fork();

  if (pid == 0) {
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    setsid();
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
      _exit(126);
    execl(predict_bin(), predict_bin(), "--rows", "100000000", "--data",
          data_dir(), "--cache", in_work("cache"), "--out", csv,
          (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* A terminal's Ctrl-C (SIGINT) or a supervisor's SIGTERM goes to the whole
 * process group: the job stops in order, says so, exits 128 + the signal,
 * and nothing of its process group is left two seconds later. */
static int
interrupted(int sig) {
  const char *csv = in_work("int.csv"), *err = in_work("int.err");
  char want[64], *text;
  int pidfd, st;
  size_t len;
  pid_t pid;

  ASSERT(bin_ok());
  ASSERT((pid = start_job(csv, in_work("int.out"), err)) > 0);
  ASSERT((pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) >= 0);
  /* Rows are being written: every worker is up and busy. */
  ASSERT_INT_EQ(wait_size(work_dir(), csv, 100000, pidfd), 0);
  ASSERT_INT_EQ(kill(-pid, sig), 0);
  ASSERT_INT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT((text = slurp(err, &len)) != NULL);
  fprintf(stderr, "its stderr: %s\n", text); /* shown if the test fails */
  ASSERT(WIFEXITED(st));
  ASSERT_INT_EQ(WEXITSTATUS(st), 128 + sig);
  snprintf(want, sizeof(want), "predict: interrupted by SIG%s after ",
           sigabbrev_np(sig));
  ASSERT(strstr(text, want) != NULL);
  ASSERT(strstr(text, "ssertion") == NULL);
  ASSERT_INT_EQ(count(text, "\n"), 1);
  free(text);
  /* The workers were this job's children: gone with it, or soon after. */
  for (st = 0; st < 200 && kill(-pid, 0) == 0; st++)
    poll(NULL, 0, 10);
  ASSERT(kill(-pid, 0) == -1 && errno == ESRCH);
  close(pidfd);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

TEST(ctrl_c_stops_the_job_in_order) {
  return interrupted(SIGINT);
}

TEST(sigterm_stops_the_job_in_order) {
  return interrupted(SIGTERM);
}

/* ---- rows over HTTP and from S3 ------------------------------------------ */

#define NET_ROWS 2000   /* rows of a network run */
#define DELAY_ROWS 1000 /* rows of the run that waits 20 ms per row */

/* The file:// run whose CSV the network runs must equal, and whose cache
 * directory (work_dir()/cache/, the 1,797 images) nginx serves. */
static int
file_run(const char *csv) {
  const char *const extra[] = {"--quiet", "--out", csv, NULL};

  ASSERT(bin_ok());
  ASSERT(work_dir()[0] != '\0');
  ASSERT_INT_EQ(predict_rows(NET_ROWS, NULL, NULL, extra), 0);
  return 0;
}

/* The CSV at `path` is the CSV at `want` cut to its first `rows` rows,
 * byte for byte. */
static int
csv_is_head(const char *path, const char *want, int rows) {
  char *got, *all, *end;
  size_t len, wlen;
  int i;

  ASSERT((got = slurp(path, &len)) != NULL);
  ASSERT((all = slurp(want, &wlen)) != NULL);
  for (end = all, i = 0; i <= rows; i++) {
    ASSERT((end = strchr(end, '\n')) != NULL);
    end++;
  }
  ASSERT_INT_EQ(len, (size_t)(end - all));
  ASSERT(memcmp(got, all, len) == 0);
  free(got);
  free(all);
  return 0;
}

/* predict with `extra`, which must fail: exit status 1, and stderr says
 * the hive failed, and each of the NULL-terminated `says`. */
static int
fails_saying(const char *const *extra, const char *const *says) {
  char *text;
  size_t len;

  ASSERT_INT_EQ(predict_rows(100, NULL, in_work("fail.err"), extra), 1);
  ASSERT((text = slurp(in_work("fail.err"), &len)) != NULL);
  fprintf(stderr, "its stderr: %s", text); /* shown if the test fails */
  ASSERT(strncmp(text, "predict: the hive failed (BH_ERAISED):\n", 39) ==
         0);
  for (; *says != NULL; says++)
    ASSERT(strstr(text, *says) != NULL);
  free(text);
  return 0;
}

#define SAYS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static double
now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* nginx serves the work directory, the file:// run's cache in it: the
 * CSV read over HTTP is the file:// one, byte for byte; and so is the
 * head of it read with 20 ms of latency per row, which only many rows in
 * flight at once make quick (one at a time it would take 20 s). */
TEST(rows_over_http_give_the_same_csv) {
  char prefix[128];
  bh_test_http srv = {0};
  double t0, secs;

  ASSERT_INT_EQ(file_run(in_work("file.csv")), 0);
  ASSERT_INT_EQ(bh_test_http_start(&srv, work_dir(), 0), 0);
  /* A profile that is nowhere: a run without s3:// makes no S3 client,
   * so it needs no AWS configuration. */
  ASSERT_INT_EQ(setenv("AWS_PROFILE", "no-such-profile", 1), 0);
  snprintf(prefix, sizeof(prefix), "%s/cache/", srv.base);
  ASSERT_INT_EQ(predict_rows(NET_ROWS, NULL, NULL,
                             ARGS("--quiet", "--inputs", prefix, "--out",
                                  in_work("http.csv"))),
                0);
  ASSERT_INT_EQ(csv_is_head(in_work("http.csv"), in_work("file.csv"),
                            NET_ROWS),
                0);
  snprintf(prefix, sizeof(prefix), "%s/delay/20/cache/", srv.base);
  t0 = now_s();
  ASSERT_INT_EQ(predict_rows(DELAY_ROWS, NULL, NULL,
                             ARGS("--quiet", "--inputs", prefix, "--out",
                                  in_work("delay.csv"))),
                0);
  secs = now_s() - t0;
  fprintf(stderr, "# %d rows at 20 ms each in %.2f s\n", DELAY_ROWS, secs);
  ASSERT(secs < DELAY_ROWS * 0.020 / 4);
  ASSERT_INT_EQ(csv_is_head(in_work("delay.csv"), in_work("file.csv"),
                            DELAY_ROWS),
                0);
  bh_test_http_stop(&srv);
  ASSERT_INT_EQ(clean(), 0);
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

TEST(http_failures_name_the_status_and_the_url) {
  char prefix[128], url[160];
  bh_test_http srv = {0};
  int fd, port;

  ASSERT(bin_ok());
  ASSERT(work_dir()[0] != '\0');
  ASSERT_INT_EQ(bh_test_http_start(&srv, work_dir(), 1), 0);
  snprintf(prefix, sizeof(prefix), "%s/nothing/", srv.base);
  snprintf(url, sizeof(url), "(GET %sdigit-", prefix);
  ASSERT_INT_EQ(fails_saying(ARGS("--inputs", prefix),
                             SAYS("HTTPError: HTTP status 404 ", url)),
                0);
  bh_test_http_stop(&srv);
  ASSERT((port = refusing_port(&fd)) > 0);
  snprintf(prefix, sizeof(prefix), "http://127.0.0.1:%d/digits/", port);
  snprintf(url, sizeof(url), "(GET %sdigit-", prefix);
  ASSERT_INT_EQ(fails_saying(ARGS("--inputs", prefix),
                             SAYS("HTTPError: connection refused ", url)),
                0);
  close(fd);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

/* ~/.aws in a fresh HOME for the predict runs: [default] the fixture's
 * key pair, [bad] its key with a wrong secret; both with the proxy as
 * endpoint. Nothing from this environment's AWS settings is left. */
static int
aws_home(const bh_test_s3 *srv) {
  static const char *const vars[] = {
      "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
      "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL",
      "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", NULL};
  const char *const *v;
  FILE *f;

  ASSERT_INT_EQ(mkdir(in_work("home"), 0700), 0);
  ASSERT_INT_EQ(mkdir(in_work("home/.aws"), 0700), 0);
  ASSERT((f = fopen(in_work("home/.aws/credentials"), "w")) != NULL);
  fprintf(f, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
             "[bad]\naws_access_key_id = %s\naws_secret_access_key = x%s\n",
          srv->access_key, srv->secret_key, srv->access_key,
          srv->secret_key);
  ASSERT_INT_EQ(fclose(f), 0);
  ASSERT((f = fopen(in_work("home/.aws/config"), "w")) != NULL);
  fprintf(f, "[default]\nregion = %s\nendpoint_url = %s\n"
             "[profile bad]\nregion = %s\nendpoint_url = %s\n",
          srv->region, srv->endpoint, srv->region, srv->endpoint);
  ASSERT_INT_EQ(fclose(f), 0);
  ASSERT_INT_EQ(setenv("HOME", in_work("home"), 1), 0);
  for (v = vars; *v != NULL; v++)
    unsetenv(*v);
  return 0;
}

/* The queen's delegations, from --stats. */
static unsigned long long
delegated(const char *out) {
  const char *q = strstr(out, "stats: queen: delegated ");
  unsigned long long n = 0;

  if (q != NULL)
    sscanf(q, "stats: queen: delegated %llu", &n);
  return n;
}

/* --upload writes the images through the workers (one task each), then
 * the rows read back from S3 give the file:// run's CSV, byte for byte. */
TEST(rows_uploaded_to_s3_give_the_same_csv) {
  static const char *const buckets[] = {"bh-test", NULL};
  bh_test_s3 srv = {0};
  serial s;
  char *out;
  size_t len;

  ASSERT_INT_EQ(serial_load(&s), 0);
  ASSERT_INT_EQ(file_run(in_work("file.csv")), 0);
  ASSERT_INT_EQ(bh_test_s3_start(&srv, buckets), 0);
  ASSERT_INT_EQ(aws_home(&srv), 0);
  ASSERT_INT_EQ(predict_rows(NET_ROWS, in_work("s3.out"), NULL,
                             ARGS("--quiet", "--stats", "--upload",
                                  "--inputs", "s3://bh-test/digits/",
                                  "--out", in_work("s3.csv"))),
                0);
  ASSERT_INT_EQ(csv_is_head(in_work("s3.csv"), in_work("file.csv"),
                            NET_ROWS),
                0);
  ASSERT((out = slurp(in_work("s3.out"), &len)) != NULL);
  ASSERT_INT_EQ(delegated(out), s.data.n + 2 * NET_ROWS);
  free(out);
  digits_data_free(&s.data);
  bh_test_s3_stop(&srv);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

TEST(s3_failures_name_the_code_and_the_url) {
  static const char *const buckets[] = {"bh-test", NULL};
  bh_test_s3 srv = {0};

  ASSERT(bin_ok());
  ASSERT(work_dir()[0] != '\0');
  ASSERT_INT_EQ(bh_test_s3_start(&srv, buckets), 0);
  ASSERT_INT_EQ(aws_home(&srv), 0);
  ASSERT_INT_EQ(fails_saying(ARGS("--inputs", "s3://bh-test/nothing/"),
                             SAYS("S3Error: NoSuchKey: ",
                                  "(GET s3://bh-test/nothing/digit-")),
                0);
  ASSERT_INT_EQ(fails_saying(ARGS("--inputs", "s3://bh-test/digits/",
                                  "--s3-profile", "bad"),
                             SAYS("S3Error: SignatureDoesNotMatch: ",
                                  "(GET s3://bh-test/digits/digit-")),
                0);
  /* Without --s3-profile, $AWS_PROFILE names the profile. */
  ASSERT_INT_EQ(setenv("AWS_PROFILE", "bad", 1), 0);
  ASSERT_INT_EQ(fails_saying(ARGS("--inputs", "s3://bh-test/digits/"),
                             SAYS("S3Error: SignatureDoesNotMatch: ",
                                  "(GET s3://bh-test/digits/digit-")),
                0);
  bh_test_s3_stop(&srv);
  ASSERT_INT_EQ(clean(), 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY_T(csv_is_identical_across_workers_and_batches, 30),
          TEST_ENTRY_T(predictions_match_a_serial_computation, 20),
          TEST_ENTRY(model_agrees_with_scikit_learn),
          TEST_ENTRY_T(trace_has_one_span_per_row_task, 20),
          TEST_ENTRY_T(trace_has_one_span_per_chunk, 20),
          TEST_ENTRY_T(killed_workers_with_retries_change_nothing, 30),
          TEST_ENTRY_T(progress_shows_on_a_terminal_only, 30),
          TEST_ENTRY_T(unknown_labels_stay_empty, 10),
          TEST_ENTRY_T(bad_input_gets_a_clear_error, 10),
          TEST_ENTRY_T(ctrl_c_stops_the_job_in_order, 30),
          TEST_ENTRY_T(sigterm_stops_the_job_in_order, 30),
          TEST_ENTRY_T(rows_over_http_give_the_same_csv, 30),
          TEST_ENTRY_T(http_failures_name_the_status_and_the_url, 30),
          TEST_ENTRY_T(rows_uploaded_to_s3_give_the_same_csv, 60),
          TEST_ENTRY_T(s3_failures_name_the_code_and_the_url, 30))
