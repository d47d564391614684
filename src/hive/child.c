/* child.c - a bee's children: their channels, their processes (watched
 * apart from the channel, procwatch.h, so a death is known the moment it
 * happens), and mourning them with the cause of their end.
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
#include "hive/child.h"
#include "proc/lastword.h"
#include "proc/oom.h"
#include "runtime/procwatch.h"
#include "transport/send.h"
#include "transport/transport.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
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
kid_index(const bh__kids *k, int64_t id) {
  size_t lo = 0, hi = k->n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (k->all[mid]->id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

bh__child *
bh__child_find(const bh__kids *k, int64_t id) {
  size_t i = kid_index(k, id);

  return i < k->n && k->all[i]->id == id ? k->all[i] : NULL;
}

/* The living child after id, or NULL: walking the kids so stays right
 * whatever a step mourns (and frees). */
static bh__child *
kid_after(const bh__kids *k, int64_t id) {
  size_t i = id == INT64_MAX ? k->n : kid_index(k, id + 1);

  return i < k->n ? k->all[i] : NULL;
}

/* Frees the record of a mourned child: nothing names it by pointer any
 * more (delegations know it by id), and its owner kept its numbers when
 * it was told the child is gone. */
static void
bury(bh__child *c) {
  bh__kids *k = c->kids;
  size_t i = kid_index(k, c->id);

  BH_ASSERT(i < k->n && k->all[i] == c);
  memmove(&k->all[i], &k->all[i + 1], (k->n - i - 1) * sizeof(*k->all));
  k->n--;
  bh__proc_free(c->proc); /* reaped by now (child_ended) */
  bh__chan_close(c->chan);
  bh__oom_free(c->oom);
  bh__lastword_free(c->last_words);
  bh_value_free(c->dead_msg);
  bh__free(c->cause);
  bh__free(c->host);
  bh__free(c);
}

/* The child is gone: its process has ended (or, in-process, its channel):
 * the owner hears it (its delegations are answered or retried, the queen
 * may replace it), its record is freed, and the owner hears that too (the
 * end of its own life may proceed). */
static void
mourn(bh__child *c) {
  bh__kids *k = c->kids;

  if (!c->alive)
    return;
  c->alive = false;
  k->n_alive--;
  if (c->pid != 0)
    describe_status(c);
  add_last_words(c);
  if (c->cause == NULL && !c->got_dead)
    c->cause = bh__strdup(c->host != NULL ? "connection lost"
                                          : "its channel closed");
  bh_log(k->log, bh__child_normal_end(c) ? BH_LOG_DEBUG : BH_LOG_WARNING,
         "bee %lld: child bee %lld%s%s is gone%s%s", (long long)k->owner_id,
         (long long)c->id, c->host ? " on " : "", c->host ? c->host : "",
         c->cause ? ": " : "", c->cause ? c->cause : "");
  k->report(k, c, BH__KID_GONE, NULL);
  bury(c);
  k->report(k, NULL, BH__KID_BURIED, NULL);
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
  if (c->proc != NULL)
    bh__proc_kill(c->proc);
  close_chan(c);
  if (c->pid == 0)
    mourn(c);
}

void
bh__children_kill(bh__kids *k, const char *cause) {
  bh__child *c;
  int64_t id = INT64_MIN;

  while ((c = kid_after(k, id)) != NULL) {
    id = c->id;
    if (c->alive && (c->pid != 0 || c->host != NULL))
      bh__child_kill(c, cause);
  }
}

void
bh__child_die(bh__child *c) {
  if (c->told_die || c->chan == NULL)
    return;
  c->told_die = true;
  bh__send_die(c->chan);
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
    c->kids->report(c->kids, c, BH__KID_MSG, m);
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

/* The channel ended or failed. Hostile input kills the child. An end of
 * stream without a dead message, while the process lives on, leaves a
 * worker nobody can talk to: it is killed, and its cause will say that the
 * channel closed first. A process that is ending closed it by ending: its
 * cause is its end. Either way a child process is mourned when its pidfd
 * (or SIGCHLD) reports the end (child_ended). */
/* A remote worker's link ended: that is its death (it has no process
 * here). A heartbeat's silence says so as it is; an error of the link
 * (keepalive, a reset host) is a connection lost, with the kernel's
 * words. */
static void
remote_err(bh__child *c, int err, const char *why) {
  char *cause = NULL;

  if (err != BH_EPIPE && c->cause == NULL)
    cause = strncmp(why, "no heartbeat", 12) == 0
                ? bh__strdup(why)
                : bh__asprintf("connection lost: %s", why);
  bh__child_kill(c, cause);
  bh__free(cause);
}

static void
child_err(bh__chan *ch, int err, const char *why, void *udata) {
  bh__child *c = udata;
  char *cause = NULL;

  (void)ch;
  if (c->host != NULL && err != BH_EPROTO && err != BH_EMSGSIZE) {
    remote_err(c, err, why);
    return;
  }
  if (err != BH_EPIPE) {
    cause = bh__asprintf("protocol error: %s", why);
    bh__child_kill(c, cause ? cause : "protocol error");
    bh__free(cause);
    return;
  }
  /* (A process whose watch could not start was killed and reaped.) */
  if (c->pid == 0 || c->got_dead || c->exited || c->proc == NULL ||
      bh__proc_exiting(c->proc)) {
    close_chan(c);
    if (c->pid == 0)
      mourn(c);
    return;
  }
  c->chan_first = true;
  bh__child_kill(c, NULL);
}

/* The child's process has ended: that is its death. What it wrote before
 * its end is in the socket already: read it first, so that its last
 * task_done and its dead message count (the process is still a zombie
 * then, so a kill for a protocol error there cannot reach another). Then
 * reap it and close the channel, which its own descendants may still hold
 * open (see the top of the file), and mourn. */
static void
child_ended(bh__proc *p, void *udata) {
  bh__child *c = udata;

  if (c->chan != NULL)
    bh__chan_drain(c->chan);
  if (!bh__proc_reap(p))
    return;
  c->exited = true;
  c->wstatus = bh__proc_status(p);
  close_chan(c);
  mourn(c);
}

static int
kids_grow(bh__kids *k) {
  size_t cap = k->cap ? k->cap * 2 : 8;
  bh__child **all;

  if (k->n < k->cap)
    return 0;
  all = bh__realloc(k->all, cap * sizeof(*all));
  if (all == NULL)
    return BH_ENOMEM;
  k->all = all;
  k->cap = cap;
  return 0;
}

void
bh__kids_init(bh__kids *k, uv_loop_t *loop, size_t max_frame,
              bh_logger *log, int64_t owner_id, bh__kid_report report,
              void *owner) {
  *k = (bh__kids){.loop = loop, .max_frame = max_frame, .log = log,
                  .owner_id = owner_id, .report = report, .owner = owner};
}

/* A new child's record, with its id, or NULL (no memory). */
static bh__child *
kid_new(bh__kids *k, int64_t *next_id, pid_t pid, int max_conc,
        int prefetch) {
  bh__child *c = kids_grow(k) == 0 ? bh__calloc(1, sizeof(*c)) : NULL;

  if (c == NULL)
    return NULL;
  c->kids = k;
  c->id = (*next_id)++;
  c->pid = pid;
  c->max_conc = max_conc;
  c->prefetch = prefetch;
  c->alive = true;
  return c;
}

/* The child joins the living and its owner hears of it; err, from
 * opening it, kills it at once. */
static int
kid_born(bh__kids *k, bh__child *c, int err, bh__child **out) {
  k->all[k->n++] = c;
  k->n_alive++;
  k->report(k, c, BH__KID_BORN, NULL);
  if (err != 0) {
    bh__child_kill(c, "its channel could not be opened");
    return err;
  }
  if (out != NULL)
    *out = c;
  return 0;
}

int
bh__kids_add(bh__kids *k, int64_t *next_id, int fd, pid_t pid,
             int max_conc, int prefetch, char *last_words,
             bh__child **out) {
  bh__child *c = kid_new(k, next_id, pid, max_conc, prefetch);
  int err;

  if (c == NULL) {
    close(fd);
    bh__lastword_free(last_words);
    return BH_ENOMEM;
  }
  c->last_words = last_words;
  c->oom = pid != 0 ? bh__oom_start(pid) : NULL;
  err = bh__chan_open(&c->chan, k->loop, fd, k->max_frame, child_msg,
                      child_err, c);
  /* Watched even without a channel: the kill below ends it, and only the
   * end of its process lets it be mourned. */
  if (pid != 0) {
    int werr = bh__proc_watch(&c->proc, &k->procs, k->loop, pid,
                              child_ended, c);

    err = err != 0 ? err : werr;
  }
  return kid_born(k, c, err, out);
}

int
bh__kids_add_remote(bh__kids *k, int64_t *next_id, bh__transport *t,
                    const char *host, int max_conc, int prefetch,
                    int (*first)(bh__child *c, void *arg), void *arg,
                    bh__child **out) {
  bh__child *c = kid_new(k, next_id, 0, max_conc, prefetch);
  int err;

  if (c == NULL || (c->host = bh__strdup(host)) == NULL) {
    bh__free(c);
    t->ops->close(t, NULL, NULL);
    return BH_ENOMEM;
  }
  err = bh__chan_open_on(&c->chan, t, k->max_frame, child_msg, child_err,
                         c);
  if (err == 0 && first != NULL)
    err = first(c, arg);
  return kid_born(k, c, err, out);
}

/* Frees every living child's record. A process still running is killed
 * and reaped here, so no zombie outlives its bee. */
void
bh__children_free(bh__kids *k) {
  size_t i;

  for (i = 0; i < k->n; i++) {
    bh__child *c = k->all[i];

    bh__proc_free(c->proc); /* kills and reaps it if it still runs */
    bh__oom_free(c->oom);
    bh__lastword_free(c->last_words);
    bh__chan_close(c->chan);
    bh_value_free(c->dead_msg);
    bh__free(c->cause);
    bh__free(c->host);
    bh__free(c);
  }
  bh__procs_free(k->procs);
  k->procs = NULL;
  bh__free(k->all);
  k->all = NULL;
  k->n = k->cap = 0;
}
