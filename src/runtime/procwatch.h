/* procwatch.h - watching the processes this one started, apart from any
 * channel to them: a peer may be a connection with no local process, and a
 * process may end while something it forked holds its channel open. The
 * end of a watched process is reported at once, by a pidfd, or where
 * pidfds are missing by SIGCHLD (one watch per set, which checks every
 * process of the set). A process is reaped only when its owner says so. */
#ifndef BH_PROCWATCH_H
#define BH_PROCWATCH_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

typedef struct bh__procs bh__procs; /* the watches of one owner */
typedef struct bh__proc bh__proc;   /* one watched process */

/* The process has ended (a zombie, or reaped by someone else): called
 * until it is reaped (bh__proc_reap) or freed. */
typedef void (*bh__proc_end_cb)(bh__proc *p, void *udata);

/* Watches pid, a child of this process, in *set (made on first use, on
 * loop). On failure the process is killed and reaped (nobody could know
 * its end) and an error returned (BH_ENOMEM or a libuv error). */
int bh__proc_watch(bh__proc **out, bh__procs **set, uv_loop_t *loop,
                   pid_t pid, bh__proc_end_cb on_end, void *udata);
/* True if the process has ended, reaped or not. */
bool bh__proc_ended(const bh__proc *p);
/* True if the process has ended or is ending: the kernel closes a dying
 * process's descriptors before its pidfd says it has ended, so a channel
 * to it may end first. */
bool bh__proc_exiting(const bh__proc *p);
/* Reaps the process if it has ended; true if it is reaped (also when
 * someone else reaped it: its status is then 0). */
bool bh__proc_reap(bh__proc *p);
/* The reaped status (waitpid()'s), valid once bh__proc_reap returned true. */
int bh__proc_status(const bh__proc *p);
/* Sends SIGKILL unless the process is reaped (its pid may be another's). */
void bh__proc_kill(bh__proc *p);
/* Stops watching and frees p; a process not reaped yet is killed and
 * reaped first (blocking), so that no zombie outlives its watch. NULL is
 * a no-op. */
void bh__proc_free(bh__proc *p);
/* Frees the set, whose processes must be freed already. NULL is a no-op. */
void bh__procs_free(bh__procs *set);

#endif
