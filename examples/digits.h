/* digits.h - the data and the model of the main job (examples/predict.c),
 * header-only so that tests/test_predict.c computes the same predictions
 * serially with the same code (CMake builds every .c file of examples/ as its
 * own program, so shared code lives here as static functions).
 *
 *   - The dataframe: data/digits.csv.gz, the UCI handwritten digits as
 *     scikit-learn ships them: one row per image, 64 pixel values 0..16
 *     (8x8, row by row) then the label 0..9 (an empty label is unknown).
 *   - The model: data/digits_model.txt, multinomial logistic regression
 *     trained by scripts/train_digits.py: per class k,
 *     p(k | x) = softmax_k(b_k + sum_j w_kj x_j) with x_j = pixel_j / 16.
 */
#ifndef BEEHIVE_EXAMPLE_DIGITS_H
#define BEEHIVE_EXAMPLE_DIGITS_H

#include <math.h>

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DIGITS_FEATURES 64
#define DIGITS_CLASSES 10
#define DIGITS_MAXVAL 16 /* pixels are 0..16 */

typedef struct digits_row {
  uint8_t px[DIGITS_FEATURES];
  int label; /* 0..9, or -1 when unknown */
} digits_row;

typedef struct digits_data {
  digits_row *rows; /* owned; free with digits_data_free() */
  size_t n;
} digits_data;

typedef struct digits_model {
  double bias[DIGITS_CLASSES];
  double w[DIGITS_CLASSES][DIGITS_FEATURES];
} digits_model;

/* The normalised input of one pixel, as the workers compute it. */
static inline float
digits_normalise(unsigned v, unsigned maxval) {
  return (float)((double)v / (double)maxval);
}

static void
digits_data_free(digits_data *d) {
  free(d->rows);
  d->rows = NULL;
  d->n = 0;
}

/* Parses one CSV line into *row. Returns 0 or -1 with a message in err. */
static int
digits_parse_row(char *line, digits_row *row, char *err, size_t errlen) {
  char *p = line, *end;
  long v;
  int j;

  for (j = 0; j < DIGITS_FEATURES; j++) {
    errno = 0;
    v = strtol(p, &end, 10);
    if (end == p || errno != 0 || v < 0 || v > DIGITS_MAXVAL || *end != ',') {
      snprintf(err, errlen, "column %d: expected a pixel 0..%d then a comma",
               j + 1, DIGITS_MAXVAL);
      return -1;
    }
    row->px[j] = (uint8_t)v;
    p = end + 1;
  }
  end = p + strcspn(p, "\r\n");
  *end = '\0';
  if (*p == '\0') {
    row->label = -1;
    return 0;
  }
  if (p[0] < '0' || p[0] > '9' || p[1] != '\0') {
    snprintf(err, errlen, "column 65: expected a label 0..9 or nothing, "
             "got \"%.20s\"", p);
    return -1;
  }
  row->label = p[0] - '0';
  return 0;
}

/* Reads every row of f into d. Returns 0 or -1 with a message in err. */
static int
digits_read_rows(FILE *f, const char *path, digits_data *d, char *err,
                 size_t errlen) {
  char line[1024], why[160];
  size_t cap = 0;

  while (fgets(line, sizeof(line), f) != NULL) {
    if (line[0] == '\n' || line[0] == '\0')
      continue;
    if (d->n == cap) {
      digits_row *grown;

      cap = cap ? cap * 2 : 2048;
      if ((grown = realloc(d->rows, cap * sizeof(*grown))) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
      }
      d->rows = grown;
    }
    if (digits_parse_row(line, &d->rows[d->n], why, sizeof(why)) != 0) {
      snprintf(err, errlen, "%s: line %zu: %s", path, d->n + 1, why);
      return -1;
    }
    d->n++;
  }
  return 0;
}

/* Opens path for reading; a .gz file through `gzip -dc` (no shell), whose
 * pid goes to *pid (0 for a plain file). */
static FILE *
digits_open(const char *path, pid_t *pid) {
  size_t n = strlen(path);
  char *argv[] = {(char *)"gzip", (char *)"-dc", (char *)"--", (char *)path,
                  NULL};
  posix_spawn_file_actions_t fa;
  int fd[2], rc;

  *pid = 0;
  if (n < 3 || strcmp(path + n - 3, ".gz") != 0)
    return fopen(path, "r");
  if (access(path, R_OK) != 0 || pipe2(fd, O_CLOEXEC) != 0)
    return NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  rc = posix_spawnp(pid, "gzip", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  if (rc != 0) {
    close(fd[0]);
    errno = rc;
    return NULL;
  }
  return fdopen(fd[0], "r");
}

/* Loads the dataframe from path (.csv or .csv.gz). Returns 0, or -1 with
 * a message in err (and d empty). */
static int
digits_load(const char *path, digits_data *d, char *err, size_t errlen) {
  pid_t pid;
  FILE *f = digits_open(path, &pid);
  int rc, status = 0;

  memset(d, 0, sizeof(*d));
  if (f == NULL) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  rc = digits_read_rows(f, path, d, err, errlen);
  fclose(f);
  if (pid > 0 && (waitpid(pid, &status, 0) != pid || status != 0) &&
      rc == 0) {
    snprintf(err, errlen, "%s: gzip -dc failed (status %d)", path, status);
    rc = -1;
  }
  if (rc == 0 && d->n == 0) {
    snprintf(err, errlen, "%s: no rows", path);
    rc = -1;
  }
  if (rc != 0)
    digits_data_free(d);
  return rc;
}

/* Reads `n` numbers after the keyword at the start of line into out. */
static int
digits_numbers(const char *line, double *out, int n) {
  const char *p = line + strcspn(line, " ");
  char *end;
  int i;

  for (i = 0; i < n; i++) {
    out[i] = strtod(p, &end);
    if (end == p)
      return -1;
    p = end;
  }
  p += strspn(p, " \r\n");
  return *p == '\0' ? 0 : -1;
}

/* One line of the model file; `seen` counts bias (bit 10) and weights
 * (bits 0..9). */
static int
digits_model_line(char *line, digits_model *m, unsigned *seen) {
  int k;

  if (line[0] == '#' || line[strspn(line, " \r\n")] == '\0')
    return 0;
  if (strcmp(line, "beehive-logreg 1\n") == 0 ||
      strcmp(line, "classes 10\n") == 0 ||
      strcmp(line, "features 64\n") == 0 ||
      strcmp(line, "input_scale 0.0625\n") == 0)
    return 0;
  if (strncmp(line, "bias ", 5) == 0) {
    *seen |= 1u << 10;
    return digits_numbers(line, m->bias, DIGITS_CLASSES);
  }
  if (sscanf(line, "weights %d ", &k) == 1 && k >= 0 && k < DIGITS_CLASSES) {
    *seen |= 1u << k;
    return digits_numbers(line + strlen("weights "), m->w[k],
                          DIGITS_FEATURES);
  }
  return -1;
}

/* Loads the model. Returns 0, or -1 with a message in err. */
static int
digits_model_load(const char *path, digits_model *m, char *err,
                  size_t errlen) {
  FILE *f = fopen(path, "r");
  char line[4096];
  unsigned seen = 0;
  int n = 0;

  memset(m, 0, sizeof(*m));
  if (f == NULL) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  while (fgets(line, sizeof(line), f) != NULL) {
    n++;
    if (digits_model_line(line, m, &seen) != 0) {
      snprintf(err, errlen, "%s: line %d: not a line of a beehive-logreg 1 "
               "model with 10 classes and 64 features", path, n);
      fclose(f);
      return -1;
    }
  }
  fclose(f);
  if (seen != (1u << 11) - 1) {
    snprintf(err, errlen, "%s: the bias or some class's weights are missing",
             path);
    return -1;
  }
  return 0;
}

/* The batch prediction: probs (n x 10) = softmax(x (n x 64) W^T + b). Each
 * row's numbers do not depend on the other rows of the batch, so the
 * result is the same whatever the batch size. */
static void
digits_predict(const digits_model *m, const float *x, size_t n,
               double *probs) {
  size_t i;
  int k, j;

  for (i = 0; i < n; i++) {
    const float *xi = x + i * DIGITS_FEATURES;
    double *p = probs + i * DIGITS_CLASSES, max, sum = 0;

    for (k = 0; k < DIGITS_CLASSES; k++) {
      double z = m->bias[k];

      for (j = 0; j < DIGITS_FEATURES; j++)
        z += m->w[k][j] * (double)xi[j];
      p[k] = z;
    }
    for (max = p[0], k = 1; k < DIGITS_CLASSES; k++)
      max = p[k] > max ? p[k] : max;
    for (k = 0; k < DIGITS_CLASSES; k++)
      sum += (p[k] = exp(p[k] - max));
    for (k = 0; k < DIGITS_CLASSES; k++)
      p[k] /= sum;
  }
}

/* The k most probable labels, most probable first (the lower label first
 * on a tie). */
static void
digits_top(const double *p, int k, int *labels, double *probs) {
  unsigned taken = 0;
  int i, c, best;

  for (i = 0; i < k; i++) {
    for (best = -1, c = 0; c < DIGITS_CLASSES; c++)
      if (!(taken & (1u << c)) && (best < 0 || p[c] > p[best]))
        best = c;
    taken |= 1u << best;
    labels[i] = best;
    probs[i] = p[best];
  }
}

#endif
