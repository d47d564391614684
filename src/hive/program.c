/* program.c - starting an external worker program (program.h). */
#include "hive/program.h"

#include "proc/lastword.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Above the descriptors the child's exec moves into place (3 and 4):
 * there the report's write end cannot be overwritten on the way. */
#define REPORT_FD_MIN 10

/* Where a bare name is looked for when PATH is unset, as glibc's execvp
 * does. */
#define DEFAULT_PATH "/bin:/usr/bin"

/* True when `entry` ("NAME=value") sets variable `name`. */
static bool
sets(const char *entry, const char *name) {
  size_t n = strlen(name);

  return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* The environment: the program's own (or the queen's), less any variable
 * the library sets, then those: BH_WORKER=1 and, last, the last-words
 * variable. Returns owned (the strings borrowed) or NULL. */
static const char **
make_env(const char *const *env, size_t *n) {
  const char *const *src = env ? env : (const char *const *)environ;
  size_t count = 0, k = 0;
  const char **out;

  while (src[count] != NULL)
    count++;
  if ((out = bh__malloc((count + 3) * sizeof(*out))) == NULL)
    return NULL;
  for (; *src != NULL; src++)
    if (!sets(*src, "BH_WORKER") && !sets(*src, BH__LASTWORD_ENV))
      out[k++] = *src;
  out[k++] = "BH_WORKER=1";
  out[k++] = BH__LASTWORD_ENV "=" BH__LASTWORD_FD_TEXT;
  out[k] = NULL;
  *n = k;
  return out;
}

/* The file a bare name runs, as execvp() finds it: the first executable
 * regular file of that name in the directories of PATH (an empty entry
 * is the working directory). NULL with *err: -ENOENT, -EACCES (found, but
 * not executable), BH_ENOMEM. Returns owned. */
static char *
search_path(const char *name, int *err) {
  const char *path = getenv("PATH"), *p = path ? path : DEFAULT_PATH;
  struct stat st;

  *err = -ENOENT;
  for (;;) {
    const char *end = strchrnul(p, ':');
    char *file = end > p ? bh__asprintf("%.*s/%s", (int)(end - p), p, name)
                         : bh__asprintf("./%s", name);

    if (file == NULL) {
      *err = BH_ENOMEM;
      return NULL;
    }
    if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(file, X_OK) == 0)
        return file;
      *err = -EACCES;
    }
    bh__free(file);
    if (*end == '\0')
      return NULL;
    p = end + 1;
  }
}

/* What a system error means for starting a program, beyond its name. */
static const char *
hint(int err) {
  switch (-err) {
  case EACCES:
    return " (is it an executable file? chmod +x)";
  case ENOEXEC:
    return " (a script needs a #! line naming its interpreter)";
  default:
    return "";
  }
}

/* "class 'W': its program 'P' could not be started: ENOENT: ..." */
static char *
explain(const bh_class *cls, const char *what, int err) {
  const char *type;
  char *text = bh__code_error(err, &type);
  char *why = text == NULL ? NULL
                           : bh__asprintf("class '%s': its program '%s' %s: "
                                          "%s%s", cls->name,
                                          cls->program->path, what, text,
                                          hint(err));

  bh__free(text);
  return why;
}

/* A descriptor moved to REPORT_FD_MIN or above (close-on-exec), or -1. */
static int
high(int fd) {
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, REPORT_FD_MIN);

  close(fd);
  return moved;
}

static int
resolve(bh__exec *x, char **why) {
  const char *path = x->cls->program->path;
  int err;

  if (strchr(path, '/') != NULL) {
    x->path = bh__strdup(path);
    return x->path != NULL ? 0 : BH_ENOMEM;
  }
  if ((x->path = search_path(path, &err)) != NULL)
    return 0;
  if (err == BH_ENOMEM)
    return err;
  if (err == -EACCES)
    *why = explain(x->cls, "is in PATH but cannot be run", err);
  else
    *why = bh__asprintf("class '%s': its program '%s' was not found in "
                        "PATH (%s): give its whole path", x->cls->name, path,
                        getenv("PATH") ? getenv("PATH")
                                       : "unset: " DEFAULT_PATH);
  return BH_ESPAWN;
}

int
bh__program_prepare(bh__exec *x, const bh_class *cls, char **why) {
  const bh_program *p = cls->program;
  int rc;

  *x = (bh__exec){.cls = cls, .report = {-1, -1}};
  if ((rc = resolve(x, why)) != 0)
    return rc;
  x->argv = bh__malloc(2 * sizeof(*x->argv));
  x->envp = make_env(p->env, &x->n_env);
  if (x->argv == NULL || x->envp == NULL) {
    bh__program_clear(x);
    return BH_ENOMEM;
  }
  x->argv[0] = p->path;
  x->argv[1] = NULL;
  if (pipe2(x->report, O_CLOEXEC) != 0 ||
      (x->report[0] = high(x->report[0])) < 0 ||
      (x->report[1] = high(x->report[1])) < 0) {
    rc = -errno;
    bh__program_clear(x);
    return rc;
  }
  return 0;
}

int
bh__program_report_fd(const bh__exec *x) {
  return x->report[1];
}

void
bh__program_exec(bh__exec *x, bool last_words) {
  const char *const *argv = x->cls->program->argv;
  int err;

  if (!last_words) /* this process's copy of the array */
    x->envp[x->n_env - 1] = NULL;
  execve(x->path, (char *const *)(argv != NULL ? argv : x->argv),
         (char *const *)x->envp);
  err = errno;
  if (write(x->report[1], &err, sizeof(err)) != sizeof(err))
    _exit(126);
  _exit(127);
}

int
bh__program_started(bh__exec *x, char **why) {
  int err = 0;
  ssize_t n;

  close(x->report[1]);
  x->report[1] = -1;
  do
    n = read(x->report[0], &err, sizeof(err));
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof(err))
    return 0; /* the pipe closed at the exec */
  *why = explain(x->cls, "could not be started", -err);
  return BH_ESPAWN;
}

void
bh__program_clear(bh__exec *x) {
  int i;

  for (i = 0; i < 2; i++)
    if (x->report[i] >= 0)
      close(x->report[i]);
  bh__free(x->path);
  bh__free(x->argv);
  bh__free(x->envp);
  *x = (bh__exec){.report = {-1, -1}};
}
