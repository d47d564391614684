/* sig.h - the signal watches a hive process starts, kept in one registry
 * so that a forked worker can take them down, and the signal dispositions
 * of a worker process.
 *
 * libuv's signal handler and its table of watches are process-wide and
 * survive fork(): a worker forked from a process that watches SIGINT
 * would, on a terminal's Ctrl-C, run libuv's handler on its parent's
 * watch and write to its parent's loop, whose descriptors the worker has
 * closed, and abort in an assertion. */
#ifndef BH_SIG_H
#define BH_SIG_H

#include <signal.h>
#include <uv.h>

/* uv_signal_start(), remembered. Returns 0 or a libuv error. */
int bh__sig_start(uv_signal_t *h, uv_signal_cb cb, int signum);
/* uv_signal_stop(), forgotten. */
void bh__sig_stop(uv_signal_t *h);
/* In a forked child, first thing: stops every watch the parent had
 * started (the child's copies of them), so that libuv's handler is gone
 * or serves the child's own watches only. */
void bh__sig_forget_all(void);
/* Blocks every signal on this thread around a fork; *old receives the
 * mask to restore with bh__sig_restore(). */
void bh__sig_block_all(sigset_t *old);
void bh__sig_restore(const sigset_t *old);
/* A worker process ignores SIGINT and SIGTERM: a terminal or a supervisor
 * signals the whole process group, and the queen, who gets the same
 * signal, leads the shutdown (docs/ARCHITECTURE.md, "Dying"). Ignored
 * signals stay ignored across exec, so exec-started workers inherit it. */
void bh__sig_worker(void);

#endif
