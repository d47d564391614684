/* child.c - a bee's children: their channels, their processes (watched
 * through a pidfd, so a death is known the moment it happens), and
 * mourning them with the cause of their end.
 *
 * A worker process's end is its death. Its channel need not end with it:
 * a task may have forked a process that inherited the socket and lives on.
 * So when the process has ended, the bee reads what it wrote before (its
 * task_done and dead messages are in the socket by then), closes its end
 * of the channel and mourns. The bee does not hunt the worker's own
 * descendants: without a cgroup it cannot know them reliably. They lose
 * the channel (reads see its end, writes fail with EPIPE); what they do
 * then is theirs. A worker itself is started with PR_SET_PDEATHSIG, so it
 * does not outlive its bee's process. The in-process queen (pid 0) has no
 * process of her own: her channel's end is her death.
 *
 * A child's record is freed when it is mourned (bury); what bh_bee_stats
 * shows of the dead is kept apart, bounded (stats.c). */
#include "bee.h"
#include "lastword.h"
#include "oom.h"
#include "sig.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* The cause from the reaped status. A child the bee killed because its
 * channel had ended says so first: the kill was the bee's answer, not the
 * cause. */
static void
describe_status(bh__child *c) {
  int st = c->wstatus, sig = WTERMSIG(st);
  const char *first = c->chan_first ? "its channel closed, then it " : "";
  const char *was = c->chan_first ? "was " : "";

  /* SIGKILL is the OOM killer's only on evidence naming this process. */
  if (c->cause == NULL && WIFSIGNALED(st) && sig == SIGKILL)
    c->cause = bh__oom_cause(c->oom, c->pid);
  bh__oom_free(c->oom);
  c->oom = NULL;
  if (c->cause != NULL)
    return;
  if (WIFSIGNALED(st))
    c->cause = bh__asprintf("%s%skilled by signal SIG%s (%s)", first, was,
                            sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                            strsignal(sig));
  else if (WIFEXITED(st))
    c->cause = bh__asprintf("%sexited with status %d", first,
                            WEXITSTATUS(st));
}

/* What the child wrote on its last-words page before it died (a stack
 * overflow) goes before the rest of the cause: it says why. */
static void
add_last_words(bh__child *c) {
  const char *words = bh__lastword_text(c->last_words);
  char *both;

  if (words == NULL)
    return;
  both = c->cause != NULL ? bh__asprintf("%s; %s", words, c->cause)
                          : bh__strdup(words);
  if (both == NULL)
    return;
  bh__free(c->cause);
  c->cause = both;
}

bool
bh__child_normal_end(const bh__child *c) {
  return c->got_dead && !c->killed;
}

/* The index of the first living child whose id is at least id. The kids
 * are in ascending id order: they are appended with growing ids and bury()
 * keeps the order. */
static size_t
kid_index(const bh_bee *bee, int64_t id) {
  size_t lo = 0, hi = bee->n_kids;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (bee->kids[mid]->id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

bh__child *
bh__child_find(const bh_bee *bee, int64_t id) {
  size_t i = kid_index(bee, id);

  return i < bee->n_kids && bee->kids[i]->id == id ? bee->kids[i] : NULL;
}

/* The living child after id, or NULL: walking the kids so stays right
 * whatever a step mourns (and frees). */
static bh__child *
kid_after(const bh_bee *bee, int64_t id) {
  size_t i = id == INT64_MAX ? bee->n_kids : kid_index(bee, id + 1);

  return i < bee->n_kids ? bee->kids[i] : NULL;
}

static void pidwatch_stop(bh__child *c);

/* Frees the record of a mourned child: nothing names it by pointer any
 * more (delegations know it by id), and stats.c keeps its numbers. */
static void
bury(bh__child *c) {
  bh_bee *bee = c->bee;
  size_t i = kid_index(bee, c->id);

  BH_ASSERT(i < bee->n_kids && bee->kids[i] == c);
  memmove(&bee->kids[i], &bee->kids[i + 1],
          (bee->n_kids - i - 1) * sizeof(*bee->kids));
  bee->n_kids--;
  bh__stats_bury(bee, c);
  pidwatch_stop(c);
  bh__chan_close(c->chan);
  bh__oom_free(c->oom);
  bh__lastword_free(c->last_words);
  bh_value_free(c->dead_msg);
  bh__free(c->cause);
  bh__free(c);
}

/* The child is gone: its process has ended (or, in-process, its channel):
 * its delegations are answered or retried, the queen may replace it, and
 * its record is freed. */
static void
mourn(bh__child *c) {
  bh_bee *bee = c->bee;

  if (!c->alive)
    return;
  c->alive = false;
  bee->n_alive--;
  if (c->pid != 0)
    describe_status(c);
  add_last_words(c);
  if (c->cause == NULL && !c->got_dead)
    c->cause = bh__strdup("its channel closed");
  bh_log(bee->log, bh__child_normal_end(c) ? BH_LOG_DEBUG : BH_LOG_WARNING,
         "bee %lld: child bee %lld is gone%s%s", (long long)bee->id,
         (long long)c->id, c->cause ? ": " : "", c->cause ? c->cause : "");
  bh__deleg_on_death(c);
  bh__queen_on_death(c);
  bury(c);
  bh__bee_progress(bee);
}

static void
close_chan(bh__child *c) {
  bh__chan_close(c->chan);
  c->chan = NULL;
}

/* A child process is mourned when its process has ended (child_ended); an
 * in-process one at once. */
void
bh__child_kill(bh__child *c, const char *cause) {
  if (c->cause == NULL && cause != NULL)
    c->cause = bh__strdup(cause);
  if (c->pid != 0 && !c->exited)
    kill(c->pid, SIGKILL);
  close_chan(c);
  if (c->pid == 0)
    mourn(c);
}

void
bh__children_kill(bh_bee *bee, const char *cause) {
  bh__child *c;
  int64_t id = INT64_MIN;

  while ((c = kid_after(bee, id)) != NULL) {
    id = c->id;
    if (c->alive && c->pid != 0)
      bh__child_kill(c, cause);
  }
}

void
bh__child_die(bh__child *c) {
  if (c->told_die || c->chan == NULL)
    return;
  c->told_die = true;
  if (bh__wire_put_die(bh__chan_out(c->chan), c->bee->max_frame) == 0)
    bh__chan_kick(c->chan);
}

/* The child's last wish. A killed one (its init failed, its life broke)
 * is an abnormal death like a crash: it counts towards the restart limit,
 * and its exception becomes the cause. */
static void
on_dead_msg(bh__child *c, const bh__msg *m) {
  const msgpack_object *type, *msg;

  c->got_dead = true;
  c->told_die = true;
  bh_value_free(c->dead_msg);
  c->dead_msg = bh_value_from_object(m->root);
  if (m->death_type != BH__DEATH_KILLED)
    return;
  c->killed = true;
  type = bh__map_get(m->exception, "type");
  msg = bh__map_get(m->exception, "message");
  if (c->cause == NULL && type != NULL && msg != NULL)
    c->cause = bh__asprintf("it died by an error: %.*s: %.*s",
                            (int)type->via.str.size, type->via.str.ptr,
                            (int)msg->via.str.size, msg->via.str.ptr);
}

static void
child_msg(bh__chan *ch, const bh__msg *m, void *udata) {
  bh__child *c = udata;
  char *why;

  (void)ch;
  switch (m->type) {
  case BH__MSG_TASK_ACCEPTED:
  case BH__MSG_TASK_DENIED:
  case BH__MSG_TASK_DONE:
    bh__deleg_on_msg(c, m);
    break;
  case BH__MSG_DEAD:
    on_dead_msg(c, m);
    break;
  default:
    why = bh__asprintf("protocol error: Unknown message with type '%.*s'.",
                       (int)m->type_len, m->type_str);
    bh__child_kill(c, why ? why : "protocol error");
    bh__free(why);
    break;
  }
}

/* True if the process has ended, reaped or not (it is then a zombie, and
 * its pid cannot be another's yet). Someone else may have reaped it. */
static bool
ended(const bh__child *c) {
  siginfo_t si = {0};
  int r;

  do
    r = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT);
  while (r < 0 && errno == EINTR);
  return (r == 0 && si.si_pid == c->pid) || (r < 0 && errno == ECHILD);
}

/* True if the process has ended or is ending: the kernel closes a dying
 * process's descriptors before its pidfd says it has ended, so its channel
 * may end first. PF_EXITING is in the flags of /proc/<pid>/stat (the ninth
 * field, counted after the command name's closing parenthesis). */
static bool
exiting(const bh__child *c) {
  char path[64], buf[512], *p = NULL;
  unsigned flags = 0;
  size_t n = 0;
  FILE *f;

  if (ended(c))
    return true;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)c->pid);
  f = fopen(path, "r");
  if (f != NULL) {
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
  }
  buf[n] = '\0';
  p = strrchr(buf, ')');
  return p != NULL &&
         sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %u", &flags) == 1 &&
         (flags & 0x4) != 0; /* PF_EXITING */
}

/* The channel ended or failed. Hostile input kills the child. An end of
 * stream without a dead message, while the process lives on, leaves a
 * worker nobody can talk to: it is killed, and its cause will say that the
 * channel closed first. A process that is ending closed it by ending: its
 * cause is its end. Either way a child process is mourned when its pidfd
 * (or SIGCHLD) reports the end (child_ended). */
static void
child_err(bh__chan *ch, int err, const char *why, void *udata) {
  bh__child *c = udata;
  char *cause = NULL;

  (void)ch;
  if (err != BH_EPIPE) {
    cause = bh__asprintf("protocol error: %s", why);
    bh__child_kill(c, cause ? cause : "protocol error");
    bh__free(cause);
    return;
  }
  if (c->pid == 0 || c->got_dead || c->exited || exiting(c)) {
    close_chan(c);
    if (c->pid == 0)
      mourn(c);
    return;
  }
  c->chan_first = true;
  bh__child_kill(c, NULL);
}

typedef struct pidwatch {
  uv_poll_t poll;
  int fd;
  bh__child *c; /* NULL once the child record is gone */
} pidwatch;

static void
pidwatch_closed(uv_handle_t *h) {
  pidwatch *w = h->data;

  close(w->fd);
  bh__free(w);
}

static void
pidwatch_stop(bh__child *c) {
  pidwatch *w = (pidwatch *)c->pidpoll;

  if (w == NULL)
    return;
  c->pidpoll = NULL;
  w->c = NULL;
  uv_close((uv_handle_t *)&w->poll, pidwatch_closed);
}

/* Reaps the child if it has exited; true if it has. */
static bool
reap(bh__child *c) {
  pid_t r;

  if (c->exited)
    return true;
  do
    r = waitpid(c->pid, &c->wstatus, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == c->pid || (r < 0 && errno == ECHILD))
    c->exited = true;
  return c->exited;
}

/* The child's process has ended: that is its death. What it wrote before
 * its end is in the socket already: read it first, so that its last
 * task_done and its dead message count (the process is still a zombie
 * then, so a kill for a protocol error there cannot reach another). Then
 * reap it and close the channel, which its own descendants may still hold
 * open (see the top of the file), and mourn. */
static void
child_ended(bh__child *c) {
  if (c->chan != NULL)
    bh__chan_drain(c->chan);
  if (!reap(c))
    return;
  pidwatch_stop(c);
  close_chan(c);
  mourn(c);
}

static void
pidwatch_cb(uv_poll_t *p, int status, int events) {
  pidwatch *w = p->data;
  bh__child *c = w->c;

  (void)status;
  (void)events;
  if (c != NULL && ended(c))
    child_ended(c);
}

/* Where pidfds are missing (old kernels, valgrind), SIGCHLD tells the bee
 * that some child ended, and every living child is checked. */
static void
sigchld_cb(uv_signal_t *h, int signum) {
  bh_bee *bee = h->data;
  bool waiting = false;
  int64_t id = INT64_MIN;
  bh__child *c;
  size_t i;

  (void)signum;
  while ((c = kid_after(bee, id)) != NULL) {
    id = c->id;
    if (c->alive && c->pid != 0 && !c->exited && ended(c))
      child_ended(c);
  }
  for (i = 0; i < bee->n_kids; i++)
    waiting |= bee->kids[i]->pid != 0 && !bee->kids[i]->exited;
  /* Like a pidfd's poll, the watch keeps the loop running while a child
   * process has not been reaped, and only then. */
  if (bee->sigchld == NULL)
    return;
  if (waiting)
    uv_ref((uv_handle_t *)bee->sigchld);
  else
    uv_unref((uv_handle_t *)bee->sigchld);
}

static int
sigchld_start(bh__child *c) {
  bh_bee *bee = c->bee;
  int err = 0;

  if (bee->sigchld == NULL) {
    bee->sigchld = bh__calloc(1, sizeof(*bee->sigchld));
    if (bee->sigchld == NULL)
      return BH_ENOMEM;
    uv_signal_init(bee->loop, bee->sigchld);
    bee->sigchld->data = bee;
    err = bh__sig_start(bee->sigchld, sigchld_cb, SIGCHLD);
    /* A child may have ended before the handler was in place, c too (an
     * exec'd program that exits at once): a SIGCHLD of the bee's own
     * makes the handler look, on the loop, once c is among the kids. */
    if (err == 0)
      raise(SIGCHLD);
  }
  if (err == 0) /* c (not in bee->kids yet) waits to be reaped */
    uv_ref((uv_handle_t *)bee->sigchld);
  return err;
}

static void
handle_free_cb(uv_handle_t *h) {
  bh__free(h);
}

/* BH_NO_PIDFD=1 makes the bee watch its children by SIGCHLD, as where
 * pidfds are missing (the tests run the protocol and fault suites so). */
static bool
no_pidfd(void) {
  static int no = -1;

  if (no < 0) {
    const char *e = getenv("BH_NO_PIDFD");

    no = e != NULL && e[0] == '1';
  }
  return no;
}

static int
pidwatch_start(bh__child *c) {
  pidwatch *w = bh__calloc(1, sizeof(*w));
  int err;

  if (w == NULL)
    return BH_ENOMEM;
  w->fd = no_pidfd() ? (errno = ENOSYS, -1) : pidfd_open(c->pid, 0);
  if (w->fd < 0) {
    err = -errno;
    bh__free(w);
    /* ENOSYS: before Linux 5.3, or valgrind; EPERM: a seccomp filter
     * (some container runtimes) that does not know the call. */
    return err == -ENOSYS || err == -EPERM ? sigchld_start(c) : err;
  }
  w->c = c;
  w->poll.data = w;
  err = uv_poll_init(c->bee->loop, &w->poll, w->fd);
  if (err == 0)
    err = uv_poll_start(&w->poll, UV_READABLE, pidwatch_cb);
  if (err != 0) {
    close(w->fd);
    bh__free(w);
    return err;
  }
  c->pidpoll = (uv_poll_t *)w;
  return 0;
}

static int
kids_grow(bh_bee *bee) {
  size_t cap = bee->cap_kids ? bee->cap_kids * 2 : 8;
  bh__child **k;

  if (bee->n_kids < bee->cap_kids)
    return 0;
  k = bh__realloc(bee->kids, cap * sizeof(*k));
  if (k == NULL)
    return BH_ENOMEM;
  bee->kids = k;
  bee->cap_kids = cap;
  return 0;
}

int
bh__child_add(bh_bee *bee, int fd, pid_t pid, int capacity,
              char *last_words, bh__child **out) {
  bh__child *c;
  int err = kids_grow(bee);

  c = err == 0 ? bh__calloc(1, sizeof(*c)) : NULL;
  if (c == NULL) {
    close(fd);
    bh__lastword_free(last_words);
    return BH_ENOMEM;
  }
  c->bee = bee;
  c->last_words = last_words;
  c->id = bee->next_kid++;
  c->pid = pid;
  c->capacity = capacity;
  c->alive = true;
  c->oom = pid != 0 ? bh__oom_start(pid) : NULL;
  err = bh__chan_open(&c->chan, bee->loop, fd, bee->max_frame, child_msg,
                      child_err, c);
  /* Watched even without a channel: the kill below ends it, and only the
   * end of its process lets it be mourned. */
  if (pid != 0) {
    int werr = pidwatch_start(c);

    err = err != 0 ? err : werr;
  }
  bee->kids[bee->n_kids++] = c;
  bee->n_alive++;
  bee->st.spawned++;
  bh__stats_child_lane(bee, c);
  if (err != 0) {
    bh__child_kill(c, "its channel could not be opened");
    return err;
  }
  if (out != NULL)
    *out = c;
  return 0;
}

/* Frees every living child's record. A process still running is killed
 * and reaped here, so no zombie outlives its bee. */
void
bh__children_free(bh_bee *bee) {
  size_t i;

  for (i = 0; i < bee->n_kids; i++) {
    bh__child *c = bee->kids[i];

    if (c->pid != 0 && !c->exited) {
      kill(c->pid, SIGKILL);
      while (waitpid(c->pid, &c->wstatus, 0) < 0 && errno == EINTR)
        ;
    }
    pidwatch_stop(c);
    bh__oom_free(c->oom);
    bh__lastword_free(c->last_words);
    bh__chan_close(c->chan);
    bh_value_free(c->dead_msg);
    bh__free(c->cause);
    bh__free(c);
  }
  if (bee->sigchld != NULL) {
    bh__sig_stop(bee->sigchld);
    uv_close((uv_handle_t *)bee->sigchld, handle_free_cb);
  }
  bee->sigchld = NULL;
  bh__free(bee->kids);
  bee->kids = NULL;
  bee->n_kids = bee->cap_kids = 0;
}
