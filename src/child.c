/* child.c - a bee's children: their channels, their processes (watched
 * through a pidfd, so a death is known the moment it happens), and
 * mourning them with the cause of their end. */
#include "bee.h"
#include "oom.h"
#include "sig.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void
describe_status(bh__child *c) {
  int st = c->wstatus, sig = WTERMSIG(st);

  /* SIGKILL is the OOM killer's only on evidence naming this process. */
  if (c->cause == NULL && WIFSIGNALED(st) && sig == SIGKILL)
    c->cause = bh__oom_cause(c->oom, c->pid);
  bh__oom_free(c->oom);
  c->oom = NULL;
  if (c->cause != NULL)
    return;
  if (WIFSIGNALED(st))
    c->cause = bh__asprintf("killed by signal SIG%s (%s)",
                            sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                            strsignal(sig));
  else if (WIFEXITED(st))
    c->cause = bh__asprintf("exited with status %d", WEXITSTATUS(st));
}

bool
bh__child_normal_end(const bh__child *c) {
  return c->got_dead && !c->killed;
}

/* Both the channel and the process have ended: the child is gone. */
static void
mourn(bh__child *c) {
  bh_bee *bee = c->bee;

  if (!c->alive)
    return;
  c->alive = false;
  bee->n_alive--;
  if (c->pid != 0)
    describe_status(c);
  if (c->cause == NULL && !c->got_dead)
    c->cause = bh__strdup("its channel closed");
  bh_log(bee->log, bh__child_normal_end(c) ? BH_LOG_DEBUG : BH_LOG_WARNING,
         "bee %lld: child bee %lld is gone%s%s", (long long)bee->id,
         (long long)c->id, c->cause ? ": " : "", c->cause ? c->cause : "");
  bh__deleg_on_death(c);
  bh__queen_on_death(c);
  bh__bee_progress(bee);
}

static void
maybe_mourn(bh__child *c) {
  if (c->eof && (c->pid == 0 || c->exited))
    mourn(c);
}

static void
close_chan(bh__child *c) {
  bh__chan_close(c->chan);
  c->chan = NULL;
  c->eof = true;
}

void
bh__child_kill(bh__child *c, const char *cause) {
  if (c->cause == NULL && cause != NULL)
    c->cause = bh__strdup(cause);
  if (c->pid != 0 && !c->exited)
    kill(c->pid, SIGKILL);
  close_chan(c);
  maybe_mourn(c);
}

void
bh__children_kill(bh_bee *bee, const char *cause) {
  size_t i;

  for (i = 0; i < bee->n_kids; i++)
    if (bee->kids[i]->alive && bee->kids[i]->pid != 0)
      bh__child_kill(bee->kids[i], cause);
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

static void
child_err(bh__chan *ch, int err, const char *why, void *udata) {
  bh__child *c = udata;
  char *cause = NULL;

  (void)ch;
  if (err != BH_EPIPE)
    cause = bh__asprintf("protocol error: %s", why);
  else if (c->got_dead)
    cause = NULL; /* a normal end: the process exits on its own */
  if (err != BH_EPIPE || !c->got_dead)
    bh__child_kill(c, cause);
  else {
    close_chan(c);
    maybe_mourn(c);
  }
  bh__free(cause);
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

static void
pidwatch_cb(uv_poll_t *p, int status, int events) {
  pidwatch *w = p->data;
  bh__child *c = w->c;

  (void)status;
  (void)events;
  if (c == NULL || !reap(c))
    return;
  pidwatch_stop(c);
  maybe_mourn(c);
}

/* Where pidfds are missing (old kernels, valgrind), SIGCHLD tells the bee
 * that some child ended, and every living child is checked. */
static void
sigchld_cb(uv_signal_t *h, int signum) {
  bh_bee *bee = h->data;
  bool waiting = false;
  size_t i;

  (void)signum;
  for (i = 0; i < bee->n_kids; i++) {
    bh__child *c = bee->kids[i];

    if (c->alive && c->pid != 0 && !c->exited && reap(c))
      maybe_mourn(c);
    waiting |= c->pid != 0 && !c->exited;
  }
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
    /* A child may have ended before the handler was in place. */
    if (err == 0)
      sigchld_cb(bee->sigchld, SIGCHLD);
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
              bh__child **out) {
  bh__child *c;
  int err = kids_grow(bee);

  c = err == 0 ? bh__calloc(1, sizeof(*c)) : NULL;
  if (c == NULL) {
    close(fd);
    return BH_ENOMEM;
  }
  c->bee = bee;
  c->id = (int64_t)bee->n_kids;
  c->pid = pid;
  c->capacity = capacity;
  c->alive = true;
  c->oom = pid != 0 ? bh__oom_start(pid) : NULL;
  err = bh__chan_open(&c->chan, bee->loop, fd, bee->max_frame, child_msg,
                      child_err, c);
  if (err == 0 && pid != 0)
    err = pidwatch_start(c);
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

/* Frees every child record. A process still running is killed and reaped
 * here, so no zombie outlives its bee. */
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
