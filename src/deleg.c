/* deleg.c - the delegating side of the protocol: offering a task to every
 * child with free capacity, choosing the first accepter, telling late
 * accepters the task was taken, waiting for task_done, and wrapping every
 * outcome (ORIGINAL-BEHAVIOUR.md, "Results seen by the delegating bee").
 *
 * A delegation waits in the bee's backlog, in order, while every living
 * child is at its max_concurrency, so a burst never overruns the workers
 * and spreads over them as their slots free up. */
#include "bee.h"

#include <string.h>
#include <utlist.h>

#include "trace.h"

typedef struct cand {
  int64_t child;
  bool open; /* no answer yet */
} cand;

typedef enum deleg_state {
  D_BACKLOG, /* not offered yet */
  D_OFFERED, /* offered, nobody accepted yet */
  D_STARTED, /* task_info sent to `child` */
  D_OVER     /* answered or forgotten; waits for late answers */
} deleg_state;

struct bh__deleg {
  int64_t tid;
  UT_hash_handle hh;
  bh_bee *bee;
  bh_future *fut;       /* NULL once forgotten */
  char *name;
  bh_value *call;       /* [args, kwargs], until task_info is sent */
  deleg_state state;
  bool queued;          /* in backlog or unpicked list */
  int64_t child;
  cand *cands;
  uint32_t n_cands, n_open;
  int64_t t0;           /* when it was offered, for the pickup timeout */
  uint64_t made_ns, start_ns; /* for the timeline */
  bh__deleg *prev, *next;
};

#define DENIED_ALL "Every child bee has denied the task."

static void pump(bh_bee *bee);

static void
maybe_free(bh__deleg *d) {
  if (d->state != D_OVER || d->n_open > 0)
    return;
  HASH_DEL(d->bee->delegs, d);
  bh_value_free(d->call);
  bh__free(d->name);
  bh__free(d->cands);
  bh__free(d);
}

static void
unqueue(bh__deleg *d) {
  bh_bee *bee = d->bee;

  if (!d->queued)
    return;
  if (d->state == D_BACKLOG) {
    DL_DELETE(bee->backlog_head, d);
    bee->n_backlog--;
  } else {
    DL_DELETE(bee->unpicked_head, d);
  }
  d->queued = false;
}

/* Counts the answer and records its span. */
static void
account(bh__deleg *d, const bh_result *r) {
  bh_bee *bee = d->bee;
  bh_status st = r ? bh_result_status(r) : BH_RAISED;

  if (st == BH_SUCCEEDED)
    bee->st.succeeded++;
  else if (st == BH_CANCELLED)
    bee->st.cancelled++;
  else
    bee->st.raised++;
  if (bee->trace != NULL)
    bh__trace_add(bee->trace, d->child, d->name, d->tid, d->made_ns,
                  d->start_ns, uv_hrtime(), st);
}

/* The delegation has its answer: hand it to the future, if any. */
static void
conclude(bh__deleg *d, bh_result *r) {
  if (d->state != D_OVER)
    account(d, r);
  unqueue(d);
  d->state = D_OVER;
  bh_value_free(d->call);
  d->call = NULL;
  if (d->fut != NULL)
    bh__future_complete(d->fut, r);
  else
    bh_result_free(r);
  d->fut = NULL;
}

static void
conclude_cancelled(bh__deleg *d, const char *reason) {
  conclude(d, bh__result_make(BH_CANCELLED, -1, NULL, NULL, reason, NULL,
                              NULL, NULL));
}

static bool
has_room(const bh__child *c) {
  return c->alive && !c->told_die && c->chan != NULL &&
         (c->capacity < 0 || c->inflight < (size_t)c->capacity);
}

static void
send_simple(bh__child *c, bh__msg_type type, int64_t tid) {
  if (c->chan != NULL && bh__wire_put_simple(bh__chan_out(c->chan),
                                             c->bee->max_frame, type,
                                             tid) == 0)
    bh__chan_kick(c->chan);
}

/* Offers d to every child with a free slot. False: none has one now. */
static bool
offer(bh__deleg *d) {
  bh_bee *bee = d->bee;
  size_t i, n = 0;

  for (i = 0; i < bee->n_kids; i++)
    n += has_room(bee->kids[i]);
  if (n == 0)
    return false;
  d->cands = bh__calloc(n, sizeof(cand));
  if (d->cands == NULL)
    return false;
  for (i = 0; i < bee->n_kids; i++) {
    bh__child *c = bee->kids[i];

    if (!has_room(c))
      continue;
    d->cands[d->n_cands++] = (cand){c->id, true};
    c->inflight++;
    send_simple(c, BH__MSG_NEW_TASK, d->tid);
  }
  d->n_open = d->n_cands;
  d->t0 = bh_now(); /* the pickup clock runs from the offer */
  DL_DELETE(bee->backlog_head, d);
  bee->n_backlog--;
  d->state = D_OFFERED;
  DL_APPEND(bee->unpicked_head, d);
  return true;
}

static void arm_pickup(bh_bee *bee);

/* Offers backlogged delegations, oldest first, while children have room. */
static void
pump(bh_bee *bee) {
  while (bee->backlog_head != NULL) {
    bh__deleg *d = bee->backlog_head;

    if (bee->n_alive == 0) {
      conclude_cancelled(d, DENIED_ALL);
      maybe_free(d);
      continue;
    }
    if (!offer(d))
      break;
  }
  arm_pickup(bee);
}

static char *
pickup_reason(const bh_bee *bee) {
  if (bee->pickup_ms == 600000)
    return bh__strdup("No child bee has picked up the task for 10 minutes.");
  return bh__asprintf("No child bee has picked up the task for %lld ms.",
                      (long long)bee->pickup_ms);
}

/* The oldest offer nobody has taken. Time in the backlog does not count:
 * there every child is busy, which is not a failure to pick up. */
static bh__deleg *
oldest(const bh_bee *bee) {
  return bee->unpicked_head;
}

static void
pickup_cb(uv_timer_t *h) {
  bh_bee *bee = h->data;
  int64_t now = bh_now();
  bh__deleg *d;

  while ((d = oldest(bee)) != NULL && d->t0 + bee->pickup_ms <= now) {
    char *why = pickup_reason(bee);

    conclude_cancelled(d, why ? why : "pickup timeout");
    bh__free(why);
    maybe_free(d);
  }
  arm_pickup(bee);
}

/* One timer serves every waiting delegation: it fires for the oldest. */
static void
arm_pickup(bh_bee *bee) {
  bh__deleg *d = oldest(bee);
  int64_t left;

  if (d == NULL) {
    uv_timer_stop(&bee->pickup_timer);
    return;
  }
  left = d->t0 + bee->pickup_ms - bh_now();
  uv_timer_start(&bee->pickup_timer, pickup_cb, left > 0 ? (uint64_t)left : 0,
                 0);
}

int
bh__deleg_start(bh_bee *bee, bh_future *fut, const char *name,
                const msgpack_object *args, const msgpack_object *kwargs) {
  bh__deleg *d = bh__calloc(1, sizeof(*d));
  static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
  static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

  if (d == NULL)
    return BH_ENOMEM;
  d->name = bh__strdup(name);
  d->call = bh_value_pack(NULL, "[oo]", args ? args : &empty_array,
                          kwargs ? kwargs : &empty_map);
  if (d->name == NULL || d->call == NULL) {
    bh_value_free(d->call);
    bh__free(d->name);
    bh__free(d);
    return BH_ENOMEM;
  }
  d->bee = bee;
  d->fut = fut;
  d->tid = bee->next_tid++;
  d->child = -1;
  d->t0 = bh_now();
  d->made_ns = uv_hrtime();
  d->state = D_BACKLOG;
  d->queued = true;
  HASH_ADD(hh, bee->delegs, tid, sizeof(d->tid), d);
  DL_APPEND(bee->backlog_head, d);
  bee->n_backlog++;
  bee->st.delegated++;
  if (fut != NULL)
    bh__future_set_deleg(fut, d);
  pump(bee);
  return 0;
}

void
bh__deleg_forget(bh__deleg *d) {
  d->fut = NULL;
  if (d->state == D_BACKLOG || d->state == D_OFFERED) {
    unqueue(d);
    d->state = D_OVER;
    maybe_free(d);
  }
}

static cand *
find_cand(bh__deleg *d, int64_t child) {
  uint32_t i;

  for (i = 0; i < d->n_cands; i++)
    if (d->cands[i].child == child)
      return &d->cands[i];
  return NULL;
}

static void
send_info(bh__deleg *d, bh__child *c) {
  const msgpack_object *call = bh_value_object(d->call);
  int rc;

  rc = bh__wire_put_task_info(bh__chan_out(c->chan), c->bee->max_frame,
                              d->tid, d->name, &call->via.array.ptr[0],
                              &call->via.array.ptr[1]);
  if (rc == BH_EMSGSIZE) {
    conclude(d, bh__result_make(BH_RAISED, c->id, "FrameSizeError",
                                "The task's arguments exceed the frame size "
                                "limit.", NULL, NULL, NULL, NULL));
    c->inflight--;
    send_simple(c, BH__MSG_TASK_TAKEN, d->tid);
    return;
  }
  bh__chan_kick(c->chan);
  bh_value_free(d->call);
  d->call = NULL;
  d->start_ns = uv_hrtime();
}

static void
on_accepted(bh__child *c, bh__deleg *d, cand *k) {
  k->open = false;
  d->n_open--;
  if (d->state != D_OFFERED) {
    c->inflight--;
    send_simple(c, BH__MSG_TASK_TAKEN, d->tid);
    return;
  }
  unqueue(d);
  d->state = D_STARTED;
  d->child = c->id;
  send_info(d, c);
}

static void
on_denied(bh__child *c, bh__deleg *d, cand *k) {
  k->open = false;
  d->n_open--;
  c->inflight--;
  if (d->state == D_OFFERED && d->n_open == 0)
    conclude_cancelled(d, DENIED_ALL);
}

/* other_details of a wrapped result: {child_id, <key>: <obj>}. */
static bh_value *
details(int64_t child, const char *key, const msgpack_object *obj) {
  return bh_value_pack(NULL, "{s:I s:o}", "child_id", (int64_t)child, key,
                       obj);
}

static bh_result *
wrap(const bh__deleg *d, const bh__child *c, const char *msg,
     const char *key, const msgpack_object *obj) {
  bh_value *det = details(c->id, key, obj);
  char line[256];
  bh_value *tb;
  bh_result *r;

  snprintf(line, sizeof(line),
           "  in delegation of task '%s' (id %lld) by bee %lld to child "
           "bee %lld", d->name, (long long)d->tid, (long long)c->bee->id,
           (long long)c->id);
  tb = bh_value_pack(NULL, "[s]", line);
  r = bh__result_make(BH_RAISED, c->id, "RuntimeError", msg, NULL,
                      tb ? bh_value_object(tb) : NULL,
                      det ? bh_value_object(det) : NULL, NULL);
  bh_value_free(det);
  bh_value_free(tb);
  return r;
}

static bh_result *
wrap_done(const bh__deleg *d, const bh__child *c, const bh__msg *m) {
  static const msgpack_object nil_obj = {.type = MSGPACK_OBJECT_NIL};

  switch (m->status) {
  case BH_SUCCEEDED:
    return bh__result_make(BH_SUCCEEDED, c->id, NULL, NULL, NULL, NULL, NULL,
                           m->returning_value);
  case BH_CANCELLED:
    return wrap(d, c, "Delegated task has been cancelled.", "reason",
                m->reason ? m->reason : &nil_obj);
  default:
    return wrap(d, c, "Delegated task raised an exception.", "cause",
                m->root);
  }
}

static void
on_done(bh__child *c, bh__deleg *d, const bh__msg *m) {
  c->inflight--;
  if (m->status == BH_SUCCEEDED)
    c->done++;
  else if (m->status == BH_CANCELLED)
    c->cancelled++;
  else
    c->raised++;
  conclude(d, wrap_done(d, c, m));
}

/* A child's message about delegation m->task_id. Anything that does not
 * fit what this bee asked of that child is a protocol error: the child is
 * killed and mourned, and nothing else is affected. */
void
bh__deleg_on_msg(bh__child *c, const bh__msg *m) {
  bh__deleg *d;
  cand *k = NULL;
  char why[160];

  HASH_FIND(hh, c->bee->delegs, &m->task_id, sizeof(m->task_id), d);
  if (d != NULL && m->type != BH__MSG_TASK_DONE)
    k = find_cand(d, c->id);
  if (m->type == BH__MSG_TASK_DONE && d != NULL && d->state == D_STARTED &&
      d->child == c->id) {
    on_done(c, d, m);
  } else if (k != NULL && k->open && m->type == BH__MSG_TASK_ACCEPTED) {
    on_accepted(c, d, k);
  } else if (k != NULL && k->open && m->type == BH__MSG_TASK_DENIED) {
    on_denied(c, d, k);
  } else {
    snprintf(why, sizeof(why), "protocol error: %s for task %lld, which "
             "was not asked of child bee %lld", bh__msg_type_str(m->type),
             (long long)m->task_id, (long long)c->id);
    bh__child_kill(c, why);
    return;
  }
  if (d->state == D_OVER)
    maybe_free(d);
  pump(c->bee);
}

/* The message that says how child c ended, as the cause of its tasks. */
static bh_value *
death_cause(const bh__child *c) {
  char msg[300];

  if (c->dead_msg != NULL)
    return bh_value_from_object(bh_value_object(c->dead_msg));
  snprintf(msg, sizeof(msg), "Child bee id %lld has died without sending a "
           "last wish: %s.", (long long)c->id, c->cause ? c->cause : "?");
  return bh_value_pack(NULL, "{s:s s:s s:{s:s s:s} s:[]}", "msg_type", "dead",
                       "death_type", "killed", "exception", "type",
                       "BeeDied", "message", msg, "traceback");
}

void
bh__deleg_on_death(bh__child *c) {
  bh_bee *bee = c->bee;
  bh_value *cause = death_cause(c);
  static const msgpack_object nil_obj = {.type = MSGPACK_OBJECT_NIL};
  bh__deleg *d, *tmp;
  cand *k;

  if (!c->got_dead)
    bee->st.deaths++;
  HASH_ITER(hh, bee->delegs, d, tmp) {
    if (d->state == D_STARTED && d->child == c->id && ++c->lost)
      conclude(d, wrap(d, c, "Delegated task cancelled as the delegated "
                       "bee has been killed.", "cause",
                       cause ? bh_value_object(cause) : &nil_obj));
    k = find_cand(d, c->id);
    if (k != NULL && k->open) {
      k->open = false;
      if (--d->n_open == 0 && d->state == D_OFFERED)
        conclude_cancelled(d, DENIED_ALL);
    }
    maybe_free(d);
  }
  bh_value_free(cause);
  c->inflight = 0;
  pump(bee);
}

void
bh__deleg_init(bh_bee *bee) {
  uv_timer_init(bee->loop, &bee->pickup_timer);
  bee->pickup_timer.data = bee;
}

/* Frees every delegation record and the timer; the bee is going away. The
 * timer's memory is the bee's, so the bee is freed after the close. */
void
bh__deleg_close(bh_bee *bee) {
  bh__deleg *d, *tmp;

  HASH_ITER(hh, bee->delegs, d, tmp) {
    unqueue(d);
    d->state = D_OVER;
    d->n_open = 0;
    if (d->fut != NULL)
      bh__future_set_deleg(d->fut, NULL);
    maybe_free(d);
  }
}
