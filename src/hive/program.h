/* program.h - starting an external worker program (bh_program): a worker
 * bee in any language, exec'd in place of this program's own worker mode
 * (spawn.c does the fork, the channel and the bootstrap frame for both).
 *
 * Everything the exec needs is made in the parent before the fork: after a
 * fork in a process that may hold threads (libuv's pool, the caller's),
 * the child may only make async-signal-safe calls until it execs. A
 * failed exec is reported to the parent through a pipe that closes at a
 * successful one, so that a missing program fails the start with its
 * errno, as a caller expects, instead of passing for a worker that died
 * at once. */
#ifndef BH_PROGRAM_H
#define BH_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "base/base.h"

typedef struct bh__exec {
  const bh_class *cls;  /* the external class (its name in messages) */
  char *path;           /* the file to exec: the program's path, or what
                         * PATH gave for a bare name (owned) */
  const char **argv;    /* owned array of borrowed strings */
  const char **envp;    /* the same; its last entry is the last-words
                         * variable, dropped when there is no page */
  size_t n_env;
  int report[2];        /* the exec's report: an errno, or nothing */
} bh__exec;

/* Prepares the exec of cls->program. Returns 0; BH_ESPAWN with *why
 * (owned) when a bare name is not found in PATH; or BH_ENOMEM / -errno.
 * On failure x holds nothing to clear. */
int bh__program_prepare(bh__exec *x, const bh_class *cls, char **why);
/* The report's write end, which the child must keep until its exec. */
int bh__program_report_fd(const bh__exec *x);
/* In the forked child, its channel on descriptor 3 and its last-words
 * page on 4 when `last_words`: execs the program. Returns only by
 * _exit(127), having reported the exec's errno. */
void bh__program_exec(bh__exec *x, bool last_words);
/* In the parent, once the child is forked: waits for its exec. Returns 0
 * once the program runs, or BH_ESPAWN with *why (owned) naming the class,
 * the program and the reason ("class 'W': its program '/x' could not be
 * started: ENOENT: No such file or directory (errno 2)"). */
int bh__program_started(bh__exec *x, char **why);
void bh__program_clear(bh__exec *x);

#endif
