/* procwatch.c - the end of a child process, known the moment it happens:
 * a pidfd watched by the loop, or where pidfds are missing (old kernels,
 * valgrind, a seccomp filter that does not know the call) SIGCHLD, on which
 * every process of the set is checked. See procwatch.h. */
#include "runtime/procwatch.h"
#include "runtime/sig.h"
#include "base/base.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utlist.h>

struct bh__procs {
  uv_loop_t *loop;
  uv_signal_t *sigchld; /* only where pidfds are missing */
  uv_timer_t *recheck;  /* ...and the sweep after a process joins */
  bh__proc *head;       /* every process watched */
  unsigned round;       /* of the SIGCHLD sweep (sweep) */
};

struct bh__proc {
  bh__procs *set;
  pid_t pid;
  int pidfd;            /* -1: watched by the set's SIGCHLD */
  uv_poll_t poll;       /* on pidfd */
  bh__proc_end_cb on_end;
  void *udata;
  bool reaped;
  int wstatus;          /* once reaped */
  unsigned round;       /* the last sweep that checked it */
  bh__proc *prev, *next; /* in set->head */
};

bool
bh__proc_ended(const bh__proc *p) {
  siginfo_t si = {0};
  int r;

  do
    r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT);
  while (r < 0 && errno == EINTR);
  return (r == 0 && si.si_pid == p->pid) || (r < 0 && errno == ECHILD);
}

/* PF_EXITING is in the flags of /proc/<pid>/stat (the ninth field, counted
 * after the command name's closing parenthesis). */
bool
bh__proc_exiting(const bh__proc *p) {
  char path[64], buf[512], *s = NULL;
  unsigned flags = 0;
  size_t n = 0;
  FILE *f;

  if (bh__proc_ended(p))
    return true;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
  f = fopen(path, "r");
  if (f != NULL) {
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
  }
  buf[n] = '\0';
  s = strrchr(buf, ')');
  return s != NULL &&
         sscanf(s + 1, " %*c %*d %*d %*d %*d %*d %u", &flags) == 1 &&
         (flags & 0x4) != 0; /* PF_EXITING */
}

bool
bh__proc_reap(bh__proc *p) {
  pid_t r;

  if (p->reaped)
    return true;
  do
    r = waitpid(p->pid, &p->wstatus, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == p->pid || (r < 0 && errno == ECHILD))
    p->reaped = true;
  return p->reaped;
}

int
bh__proc_status(const bh__proc *p) {
  return p->wstatus;
}

void
bh__proc_kill(bh__proc *p) {
  if (!p->reaped)
    kill(p->pid, SIGKILL);
}

/* ------------------------------------------------------------------------
 * The SIGCHLD fallback. */

/* Checks every process of the set not reaped yet. A callback may free any
 * process and watch new ones, so the walk starts over after each, and the
 * round marks those already checked. */
static void
sweep(bh__procs *set) {
  bh__proc *p;

  set->round++;
again:
  DL_FOREACH(set->head, p) {
    if (p->round == set->round || p->reaped)
      continue;
    p->round = set->round;
    if (bh__proc_ended(p)) {
      p->on_end(p, p->udata);
      goto again;
    }
  }
}

/* Like a pidfd's poll, the watch keeps the loop running while a process
 * of the set has not been reaped, and only then. */
static void
sigchld_ref(bh__procs *set) {
  bh__proc *p;
  bool waiting = false;

  DL_FOREACH(set->head, p)
    waiting |= !p->reaped;
  if (waiting)
    uv_ref((uv_handle_t *)set->sigchld);
  else
    uv_unref((uv_handle_t *)set->sigchld);
}

static void
sigchld_cb(uv_signal_t *h, int signum) {
  bh__procs *set = h->data;

  (void)signum;
  sweep(set);
  sigchld_ref(set);
}

/* A process may have ended before the set's handler was in place: its
 * SIGCHLD then went to no one. So every process the signal watches is
 * checked once on the loop after it joined the set (not at once: its
 * watcher is not ready for the news inside bh__proc_watch). */
static void
recheck_cb(uv_timer_t *h) {
  bh__procs *set = h->data;

  sweep(set);
  sigchld_ref(set);
}

/* Starts the set's SIGCHLD watch once; p (not in the set yet) then waits
 * to be reaped, which keeps the loop running. */
static int
sigchld_start(bh__procs *set) {
  int err = 0;

  if (set->sigchld == NULL) {
    set->sigchld = bh__calloc(1, sizeof(*set->sigchld));
    set->recheck = bh__calloc(1, sizeof(*set->recheck));
    if (set->sigchld == NULL || set->recheck == NULL) {
      bh__free(set->sigchld);
      bh__free(set->recheck);
      set->sigchld = NULL;
      set->recheck = NULL;
      return BH_ENOMEM;
    }
    uv_signal_init(set->loop, set->sigchld);
    uv_timer_init(set->loop, set->recheck);
    set->sigchld->data = set;
    set->recheck->data = set;
    err = bh__sig_start(set->sigchld, sigchld_cb, SIGCHLD);
  }
  if (err == 0)
    uv_ref((uv_handle_t *)set->sigchld);
  return err;
}

/* ------------------------------------------------------------------------
 * Pidfds. */

/* BH_NO_PIDFD=1 makes the watch use SIGCHLD, as where pidfds are missing
 * (the tests run the protocol and fault suites so). */
static bool
no_pidfd(void) {
  static int no = -1;

  if (no < 0) {
    const char *e = getenv("BH_NO_PIDFD");

    no = e != NULL && e[0] == '1';
  }
  return no;
}

static void
pidfd_cb(uv_poll_t *h, int status, int events) {
  bh__proc *p = h->data;

  (void)status;
  (void)events;
  if (bh__proc_ended(p))
    p->on_end(p, p->udata);
}

/* Watches p by its pidfd, or by SIGCHLD where pidfds are missing. On
 * failure p->pidfd >= 0 says that the poll handle must be closed. */
static int
pidfd_start(bh__proc *p) {
  int err;

  p->pidfd = no_pidfd() ? (errno = ENOSYS, -1) : pidfd_open(p->pid, 0);
  if (p->pidfd < 0) {
    err = -errno;
    /* ENOSYS: before Linux 5.3, or valgrind; EPERM: a seccomp filter
     * (some container runtimes) that does not know the call. */
    return err == -ENOSYS || err == -EPERM ? sigchld_start(p->set) : err;
  }
  p->poll.data = p;
  err = uv_poll_init(p->set->loop, &p->poll, p->pidfd);
  if (err != 0) {
    close(p->pidfd);
    p->pidfd = -1;
    return err;
  }
  return uv_poll_start(&p->poll, UV_READABLE, pidfd_cb);
}

static void
handle_free_cb(uv_handle_t *h) {
  bh__free(h);
}

static void
proc_closed(uv_handle_t *h) {
  bh__proc *p = h->data;

  close(p->pidfd);
  bh__free(p);
}

static void
kill_and_reap(pid_t pid, int *wstatus) {
  kill(pid, SIGKILL);
  while (waitpid(pid, wstatus, 0) < 0 && errno == EINTR)
    ;
}

int
bh__proc_watch(bh__proc **out, bh__procs **set, uv_loop_t *loop, pid_t pid,
               bh__proc_end_cb on_end, void *udata) {
  bh__proc *p;
  int err;

  BH_ASSERT(pid > 0); /* (kill(0) or kill(-1) would reach others) */
  if (*set == NULL && (*set = bh__calloc(1, sizeof(**set))) != NULL)
    (*set)->loop = loop;
  p = *set != NULL ? bh__calloc(1, sizeof(*p)) : NULL;
  if (p == NULL) {
    kill_and_reap(pid, NULL);
    return BH_ENOMEM;
  }
  *p = (bh__proc){.set = *set, .pid = pid, .pidfd = -1, .on_end = on_end,
                  .udata = udata};
  err = pidfd_start(p);
  if (err != 0) {
    kill_and_reap(pid, NULL);
    if (p->pidfd >= 0)
      uv_close((uv_handle_t *)&p->poll, proc_closed);
    else
      bh__free(p);
    return err;
  }
  DL_APPEND((*set)->head, p);
  if (p->pidfd < 0)
    uv_timer_start((*set)->recheck, recheck_cb, 0, 0);
  *out = p;
  return 0;
}

void
bh__proc_free(bh__proc *p) {
  if (p == NULL)
    return;
  if (!p->reaped)
    kill_and_reap(p->pid, &p->wstatus);
  DL_DELETE(p->set->head, p);
  if (p->pidfd < 0) {
    bh__free(p);
    return;
  }
  uv_close((uv_handle_t *)&p->poll, proc_closed);
}

void
bh__procs_free(bh__procs *set) {
  if (set == NULL)
    return;
  BH_ASSERT(set->head == NULL);
  if (set->sigchld != NULL) {
    bh__sig_stop(set->sigchld);
    uv_close((uv_handle_t *)set->sigchld, handle_free_cb);
    uv_close((uv_handle_t *)set->recheck, handle_free_cb);
  }
  bh__free(set);
}
