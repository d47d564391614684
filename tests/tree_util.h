/* tree_util.h - a test process's own directory: made at first use under
 * $TMPDIR (or /tmp), paths in it, and removed with all below it (test_ini,
 * test_awsconf, test_predict, test_netns_hive). */
#ifndef BH_TEST_TREE_UTIL_H
#define BH_TEST_TREE_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static inline int
rm_tree_entry(const char *path, const struct stat *st, int flag,
              struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes directory dir and all below it, following no link: 0, or -1. */
static inline int
rm_tree(const char *dir) {
  return nftw(dir, rm_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* This process's directory, $TMPDIR/<prefix>_XXXXXX, made at the first
 * call (the prefix of later calls is not read); "" if it cannot be. */
static inline const char *
work_dir_of(const char *prefix) {
  static char path[256];
  const char *tmp = getenv("TMPDIR");

  if (path[0] == '\0') {
    snprintf(path, sizeof(path), "%s/%s_XXXXXX", tmp && *tmp ? tmp : "/tmp",
             prefix);
    if (mkdtemp(path) == NULL)
      path[0] = '\0';
  }
  return path;
}

/* name in that directory; valid until 8 more calls. */
static inline const char *
in_work_dir_of(const char *prefix, const char *name) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];

  snprintf(p, 512, "%s/%s", work_dir_of(prefix), name);
  return p;
}

#endif
