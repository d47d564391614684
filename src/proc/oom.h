/* oom.h - whether the kernel's OOM killer ended a child process, told only
 * from evidence that names it (oom.c says which, and why a machine-wide
 * count is none). */
#ifndef BH_OOM_H
#define BH_OOM_H

#include <sys/types.h>

typedef struct bh__oom bh__oom;

/* Notes where evidence about process pid, just started, will be found: the
 * kernel log from now on, its memory cgroup's oom_kill count now. Returns
 * owned (bh__oom_free) or NULL when there is nowhere to look. */
bh__oom *bh__oom_start(pid_t pid);
/* After pid died of SIGKILL: its cause ("killed by signal SIGKILL
 * (Killed), by the kernel's OOM killer: ...", or "..., possibly by the OOM
 * killer: ..." with a reason the user can check) as returned owned text;
 * NULL without evidence, or o NULL. Reads without blocking, a bounded
 * number of kernel log records. */
char *bh__oom_cause(bh__oom *o, pid_t pid);
/* Releases o (NULL allowed). */
void bh__oom_free(bh__oom *o);

#endif
