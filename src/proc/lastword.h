/* lastword.h - a worker's last words: a shared page its parent makes for
 * each worker process it starts, which the worker writes the cause of its
 * death into when it dies in a way no message can tell (a stack overflow:
 * its channel may hold half a frame, and a signal handler cannot finish
 * it). The parent reads the page when it mourns the worker, so that the
 * cause its tasks come back with names what happened.
 *
 * The page is a memfd: mapped by the parent, inherited as a mapping by a
 * fork-started worker, and as descriptor BH__LASTWORD_FD by an
 * exec-started one, whose environment then holds BH_LAST_WORDS_FD
 * (docs/PROTOCOL.md section 2). */
#ifndef BH_LASTWORD_H
#define BH_LASTWORD_H

#define BH__LASTWORD_SIZE 4096
#define BH__LASTWORD_FD 4
#define BH__LASTWORD_FD_TEXT "4" /* the same, for the environment */
#define BH__LASTWORD_ENV "BH_LAST_WORDS_FD"

/* Makes a page; *fd receives its memfd, for the worker (close it once the
 * worker is started). Returns the mapping (owned: bh__lastword_free), or
 * NULL: no page, and the worker's death is told by its status alone. */
char *bh__lastword_new(int *fd);
/* In an exec-started worker: the page named by BH_LAST_WORDS_FD (which
 * is then unset), mapped; NULL if there is none. Owned. */
char *bh__lastword_open(void);
/* The words, NUL-terminated, or NULL if the worker wrote none. Read once
 * the worker's process has ended. Borrowed from the page. */
const char *bh__lastword_text(char *page);
/* Unmaps the page; NULL does nothing. */
void bh__lastword_free(char *page);

#endif
