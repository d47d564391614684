/* deleg.c - the delegating side of the protocol, up to the hand-over:
 * offering a task to every child with free capacity, choosing the first
 * accepter, telling late accepters the task was taken, the pickup timeout.
 * Answers are deleg_answer.c's; deadlines and cancellation deleg_cancel.c's.
 *
 * A delegation waits in the bee's backlog, in order, while every living
 * child is at its max_concurrency, so a burst never overruns the workers
 * and spreads over them as their slots free up. */
#include "hive/deleg.h"
#include "transport/send.h"
#include "value/blob.h"

#include <string.h>
#include <utlist.h>

#include "observe/trace.h"

static void arm_pickup(bh_bee *bee);

void
bh__d_maybe_free(bh__deleg *d) {
  if (d->state != D_OVER || d->n_open > 0)
    return;
  HASH_DEL(d->bee->delegs, d);
  bh__d_timer_free(d);
  bh_value_free(d->call);
  bh__free(d->name);
  bh__free(d->cands);
  bh__free(d);
}

void
bh__d_unqueue(bh__deleg *d) {
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

void
bh__d_conclude(bh__deleg *d, bh_result *r) {
  if (d->state != D_OVER && d->state != D_ABANDONED)
    account(d, r);
  bh__d_unqueue(d);
  if (d->state != D_ABANDONED)
    d->state = D_OVER;
  if (d->state == D_OVER) {
    bh_value_free(d->call);
    d->call = NULL;
  }
  if (d->fut != NULL)
    bh__future_complete(d->fut, r);
  else
    bh_result_free(r);
  d->fut = NULL;
}

void
bh__d_cancelled(bh__deleg *d, int64_t child, const char *reason) {
  bh__d_conclude(d, bh__result_make(BH_CANCELLED, child, NULL, NULL, reason,
                                    NULL, NULL));
}

bh__child *
bh__d_child(const bh__deleg *d) {
  return d->child < 0 ? NULL : bh__child_find(d->bee, d->child);
}

static bool
has_room(const bh__child *c) {
  return c->alive && !c->told_die && c->chan != NULL &&
         (c->capacity < 0 || c->inflight < (size_t)c->capacity);
}

void
bh__d_send(bh__child *c, bh__msg_type type, int64_t tid) {
  if (c != NULL && c->chan != NULL)
    bh__send_simple(c->chan, type, tid);
}

static cand *
find_cand(bh__deleg *d, int64_t child) {
  uint32_t i;

  for (i = 0; i < d->n_cands; i++)
    if (d->cands[i].child == child)
      return &d->cands[i];
  return NULL;
}

/* Puts d's call on c's channel with put (task_info or a direct offer).
 * Its middle-sized bins go out from d->call itself, which the channel
 * holds until they are written (blob.h, bh__borrow). */
static int
put_call(bh__deleg *d, bh__child *c, bh__wire_put_info_fn put) {
  const msgpack_object *call = bh_value_object(d->call);

  return bh__send_call(c->chan, put, d->tid, d->name,
                       &call->via.array.ptr[0],
                       call->via.array.size > 1 ? &call->via.array.ptr[1]
                                                : NULL,
                       d->call);
}

/* A direct offer: new_task carrying the info, to the only child with
 * room. False if it cannot be encoded (the plain offer then goes, and
 * task_info will report why). */
static bool
offer_direct(bh__deleg *d, bh__child *c) {
  return d->call != NULL && put_call(d, c, bh__wire_put_direct_offer) == 0;
}

/* Offers d to every child with a free slot that has not an offer of it
 * open already (a retried task keeps its earlier candidates). When only
 * one child has room, the offer carries the info (PROTOCOL.md section
 * 5.1): one round trip instead of two. False: no child has a slot now. */
static bool
offer(bh__deleg *d) {
  bh_bee *bee = d->bee;
  size_t i, n = 0;
  cand *grown;

  for (i = 0; i < bee->n_kids; i++)
    n += has_room(bee->kids[i]);
  if (n == 0)
    return false;
  grown = bh__realloc(d->cands, (d->n_cands + n) * sizeof(cand));
  if (grown == NULL)
    return false;
  d->cands = grown;
  for (i = 0; i < bee->n_kids; i++) {
    bh__child *c = bee->kids[i];
    cand *k = find_cand(d, c->id);

    if (!has_room(c) || (k != NULL && k->open))
      continue;
    if (k == NULL)
      k = &d->cands[d->n_cands++];
    *k = (cand){c->id, true, n == 1 && bee->direct_offers && offer_direct(d, c)};
    d->n_open++;
    c->inflight++;
    if (!k->direct)
      bh__d_send(c, BH__MSG_NEW_TASK, d->tid);
  }
  d->t0 = bh_now(); /* the pickup clock runs from the offer */
  bh__d_unqueue(d);
  d->state = D_OFFERED;
  d->queued = true;
  DL_APPEND(bee->unpicked_head, d);
  return true;
}

static void
fail_backlog(bh_bee *bee) {
  while (bee->backlog_head != NULL) {
    bh__deleg *d = bee->backlog_head;

    if (bee->pop_failed != NULL)
      bh__d_conclude(d, bh__result_make(BH_RAISED, -1, "PopulationError",
                                        bee->pop_failed, NULL, NULL, NULL));
    else
      bh__d_cancelled(d, -1, DENIED_ALL);
    bh__d_maybe_free(d);
  }
}

/* Offers backlogged delegations, oldest first, while children have room;
 * a queen short of room grows her population. */
void
bh__d_pump(bh_bee *bee) {
  if (bee->pop_failed != NULL ||
      (bee->n_alive == 0 && !bh__queen_can_grow(bee)))
    fail_backlog(bee);
  while (bee->backlog_head != NULL && offer(bee->backlog_head))
    ;
  if (bee->backlog_head != NULL)
    bh__queen_saturated(bee);
  arm_pickup(bee);
}

static char *
pickup_reason(const bh_bee *bee) {
  if (bee->pickup_ms == 600000)
    return bh__strdup("No child bee has picked up the task for 10 minutes.");
  return bh__asprintf("No child bee has picked up the task for %lld ms.",
                      (long long)bee->pickup_ms);
}

static void
pickup_cb(uv_timer_t *h) {
  bh_bee *bee = h->data;
  int64_t now = bh_now();
  bh__deleg *d;

  /* now - t0, not t0 + pickup_ms: any pickup time is valid, even one
   * that would overflow the sum. */
  while ((d = bee->unpicked_head) != NULL && now - d->t0 >= bee->pickup_ms) {
    char *why = pickup_reason(bee);

    bh__d_cancelled(d, -1, why ? why : "pickup timeout");
    bh__free(why);
    bh__d_maybe_free(d);
  }
  arm_pickup(bee);
}

/* One timer serves every offer nobody has taken: it fires for the oldest.
 * Time in the backlog does not count: there every child is busy, which is
 * not a failure to pick up. */
static void
arm_pickup(bh_bee *bee) {
  bh__deleg *d = bee->unpicked_head;
  int64_t left;

  /* Offers are in the list in the order they were made, so the head's
   * deadline only moves later: a running timer is early or right, and
   * pickup_cb re-arms it for the head of the moment. No churn per offer. */
  if (d == NULL || bee->pickup_ms < 0 ||
      uv_is_active((uv_handle_t *)&bee->pickup_timer))
    return;
  left = bee->pickup_ms - (bh_now() - d->t0);
  uv_timer_start(&bee->pickup_timer, pickup_cb, left > 0 ? (uint64_t)left : 0,
                 0);
}

static bh__deleg *
deleg_new(bh_bee *bee, const char *name, bh_value *call) {
  bh__deleg *d = bh__calloc(1, sizeof(*d));

  if (d != NULL)
    d->name = bh__strdup(name);
  if (d == NULL || d->name == NULL) {
    bh_value_free(call);
    bh__free(d);
    return NULL;
  }
  d->call = call;
  d->bee = bee;
  d->tid = bee->next_tid++;
  d->child = -1;
  if (bee->trace != NULL)
    d->made_ns = uv_hrtime();
  return d;
}

int
bh__deleg_start(bh_bee *bee, bh_future *fut, const char *name,
                bh_value *call, const bh_deleg_opts *o) {
  bh__deleg *d = deleg_new(bee, name, call);

  if (d == NULL)
    return BH_ENOMEM;
  d->fut = fut;
  d->retries = o && o->retries >= 0 ? o->retries : bee->ft.retries;
  d->timeout_ms = o && o->timeout_ms >= 0 ? o->timeout_ms
                                          : bee->ft.timeout_ms;
  d->state = D_BACKLOG;
  d->queued = true;
  HASH_ADD(hh, bee->delegs, tid, sizeof(d->tid), d);
  DL_APPEND(bee->backlog_head, d);
  bee->n_backlog++;
  bee->st.delegated++;
  if (fut != NULL)
    bh__future_set_deleg(fut, d);
  if (bh__d_arm_deadline(d) != 0) {
    bh__d_cancelled(d, -1, "No memory for the task's deadline.");
    bh__d_maybe_free(d);
    return 0;
  }
  bh__d_pump(bee);
  return 0;
}

void
bh__d_requeue(bh__deleg *d) {
  bh_bee *bee = d->bee;

  d->state = D_BACKLOG;
  d->child = -1;
  d->queued = true;
  DL_PREPEND(bee->backlog_head, d);
  bee->n_backlog++;
  bee->st.retried++;
}

/* The future's owner went away: an answer not yet given is dropped; a
 * task that runs on a child is cancelled there, and its child killed if
 * it does not answer within the grace, as for a deadline. */
void
bh__deleg_forget(bh__deleg *d) {
  d->fut = NULL;
  if (d->state == D_BACKLOG || d->state == D_OFFERED) {
    bh__d_unqueue(d);
    d->state = D_OVER;
    bh__d_maybe_free(d);
  } else if (d->state == D_STARTED) {
    bh__d_abandon(d, true);
  }
}

/* d starts on c: the info is on its way or already there. */
static void
started(bh__deleg *d, bh__child *c) {
  if (d->retries == 0) {
    bh_value_free(d->call);
    d->call = NULL;
  }
  if (c->bee->trace != NULL)
    d->start_ns = uv_hrtime();
}

/* Why d's task_info could not be encoded (rc). Returns owned or NULL. */
static char *
info_error(const bh__deleg *d, const bh__child *c, int rc) {
  size_t n = strlen(d->name);

  if (rc != BH_EMSGSIZE)
    return bh__strdup("The task's arguments could not be encoded.");
  if (!bh__wire_name_fits(n, c->bee->max_frame))
    return bh__asprintf("The task's name (%zu bytes) exceeds the frame "
                        "size limit.", n);
  return bh__wire_too_big("The task's arguments", c->bee->max_frame);
}

static void
send_info(bh__deleg *d, bh__child *c) {
  int rc = put_call(d, c, bh__wire_put_task_info);

  if (rc != 0) {
    char *why = info_error(d, c, rc);

    bh__d_conclude(d, bh__result_make(
                          BH_RAISED, c->id,
                          rc == BH_EMSGSIZE ? "FrameSizeError" : "EncodeError",
                          why ? why : "The task could not be encoded.", NULL,
                          NULL, NULL));
    bh__free(why);
    c->inflight--;
    bh__d_send(c, BH__MSG_TASK_TAKEN, d->tid);
    return;
  }
  started(d, c);
}

/* An accept. One that started from a direct offer of a task whose answer
 * was given meanwhile (deadline, cancel, pickup timeout) runs there: it
 * is abandoned, as a started task would be. */
static void
on_accepted(bh__child *c, bh__deleg *d, cand *k, bool now_running) {
  k->open = false;
  d->n_open--;
  if (d->state != D_OFFERED && now_running) {
    d->child = c->id;
    bh__d_abandon(d, true);
    return;
  }
  if (d->state != D_OFFERED) {
    c->inflight--;
    bh__d_send(c, BH__MSG_TASK_TAKEN, d->tid);
    return;
  }
  bh__d_unqueue(d);
  d->state = D_STARTED;
  d->child = c->id;
  if (now_running)
    started(d, c);
  else
    send_info(d, c);
}

static void
on_denied(bh__child *c, bh__deleg *d, cand *k) {
  k->open = false;
  d->n_open--;
  c->inflight--;
  if (d->state == D_OFFERED && d->n_open == 0)
    bh__d_cancelled(d, -1, DENIED_ALL);
}

/* A child's answer to an offer. False: it fits no open offer to it. */
bool
bh__d_on_offer_answer(bh__child *c, bh__deleg *d, const bh__msg *m) {
  cand *k = d ? find_cand(d, c->id) : NULL;

  if (k == NULL || !k->open || (m->started && !k->direct))
    return false;
  if (m->type == BH__MSG_TASK_ACCEPTED)
    on_accepted(c, d, k, m->started);
  else
    on_denied(c, d, k);
  return true;
}


/* A child is gone with an offer open. Death is not a denial: when it was
 * the last open candidate the task goes back to the head of the backlog,
 * for the other children or a replacement (pump fails it if there can be
 * none). */
void
bh__d_close_offers(bh__child *c, bh__deleg *d) {
  cand *k = find_cand(d, c->id);

  if (k == NULL || !k->open)
    return;
  k->open = false;
  if (--d->n_open > 0 || d->state != D_OFFERED)
    return;
  bh__d_unqueue(d);
  d->state = D_BACKLOG;
  d->queued = true;
  DL_PREPEND(d->bee->backlog_head, d);
  d->bee->n_backlog++;
}

void
bh__deleg_init(bh_bee *bee) {
  uv_timer_init(bee->loop, &bee->pickup_timer);
  bee->pickup_timer.data = bee;
  /* It may run on after the last offer is taken (see arm_pickup): it must
   * not keep the loop alive by itself. */
  uv_unref((uv_handle_t *)&bee->pickup_timer);
}

/* Frees every delegation record; the bee is going away. */
void
bh__deleg_close(bh_bee *bee) {
  bh__deleg *d, *tmp;

  HASH_ITER(hh, bee->delegs, d, tmp) {
    bh__d_unqueue(d);
    d->state = D_OVER;
    d->n_open = 0;
    if (d->fut != NULL)
      bh__future_set_deleg(d->fut, NULL);
    bh__d_maybe_free(d);
  }
}
