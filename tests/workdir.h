/* workdir.h - a test program's directory of files: made on first use as
 * $TMPDIR/<WORKDIR_NAME>_XXXXXX (define WORKDIR_NAME before including),
 * paths in it, and its removal; rm_tree removes any directory. */
#ifndef BH_TEST_WORKDIR_H
#define BH_TEST_WORKDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static inline int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes the directory at path and everything in it: 0, or -1. */
static inline int
rm_tree(const char *path) {
  return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#ifdef WORKDIR_NAME
/* This test process's directory ("" if it could not be made). */
static inline const char *
work_dir(void) {
  static char path[256];
  const char *tmp = getenv("TMPDIR");

  if (path[0] == '\0') {
    snprintf(path, sizeof(path), "%s/" WORKDIR_NAME "_XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(path) == NULL)
      path[0] = '\0';
  }
  return path;
}

/* work_dir()/name, in a rotation of 8 static buffers. */
static inline const char *
in_work(const char *name) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];

  snprintf(p, 512, "%s/%s", work_dir(), name);
  return p;
}

/* Removes the work directory (left behind when a test fails). */
static inline int
clean(void) {
  return rm_tree(work_dir());
}
#endif

#endif
