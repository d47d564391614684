/* deleg.c - the offer/accept state machine of a delegation, up to the
 * hand-over: offering a task directly to the child with the most room
 * (passing it on at a denial), or the reference's way to every child with
 * room, choosing the first accepter, telling late accepters the task was
 * taken, sending the info.
 * Answers and deaths are deleg_answer.c's; the clocks and cancelling
 * deleg_cancel.c's (deleg.h).
 *
 * The states (deleg_rec.h) and what moves a delegation between them:
 *   BACKLOG   -> OFFERED    a child has room (offer)
 *   BACKLOG   -> OVER       no child can come any more, deadline, cancel,
 *                           forgotten
 *   OFFERED   -> STARTED    the first accept (task_info sent, or it came
 *                           with a direct offer)
 *   OFFERED   -> BACKLOG    its last open candidate died (bh__d_close_offers)
 *   OFFERED   -> OVER       every candidate denied; pickup timeout,
 *                           deadline, cancel, forgotten
 *   STARTED   -> OVER       task_done; its info could not be encoded; its
 *                           worker died and no retry is left
 *   STARTED   -> BACKLOG    its worker died and a retry is left
 *   STARTED   -> ABANDONED  deadline, cancel, forgotten: answered at once,
 *                           cancel_task sent, the grace runs
 *   ABANDONED -> OVER       task_done, or its worker's death
 *   OVER      -> ABANDONED  a direct offer accepted after the answer: it
 *                           runs there, and is cancelled as above
 *
 * Invariants: while BACKLOG a delegation is in the bee's backlog, while
 * OFFERED in its unpicked list (`queued` says so), else in neither; every
 * open candidate counts one in its child's inflight, and so does the task
 * while STARTED or ABANDONED; a record is freed only once OVER with no
 * offer open (bh__d_maybe_free), so that late answers still find it.
 *
 * A delegation waits in the bee's backlog, in order, while every living
 * child is at its max_concurrency (cap.h), so a burst never overruns the
 * workers and spreads over them as their slots free up. */
#include "hive/bee.h"
#include "hive/cap.h"
#include "hive/deleg_rec.h"
#include "hive/feed.h"
#include "hive/pop.h"
#include "hive/result.h"
#include "transport/send.h"
#include "value/blob.h"

#include <stddef.h>
#include <string.h>
#include <utlist.h>

deleg_x *
bh__d_x(bh__deleg *d) {
  if (d->x == NULL)
    d->x = bh__calloc(1, sizeof(*d->x));
  return d->x;
}

void
bh__d_maybe_free(bh__deleg *d) {
  if (d->state != D_OVER || d->n_open > 0)
    return;
  bh__d_table_del(d);
  bh__d_timer_free(d);
  bh__free(d->x);
  bh__call_free(d->call);
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

bh__child *
bh__d_child(const bh__deleg *d) {
  return d->child < 0 ? NULL : bh__child_find(&d->bee->kids, d->child);
}

/* The parent's side of the accept rule (cap.h). */
static bool
has_room(const bh__child *c) {
  return c->alive && !c->told_die && c->chan != NULL &&
         bh__cap_room(c->max_conc, c->inflight, c->prefetch);
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

/* Puts d's call on c's channel as a message of type `type` (task_info or
 * a direct offer): as it was packed, or walked item by item, when its
 * middle-sized bins go out from the call's value itself, which the
 * channel holds until they are written (blob.h, bh__borrow). */
static int
put_call(bh__deleg *d, bh__child *c, bh__msg_type type) {
  bh__wire_call w = {NULL, NULL, NULL, 0, 0};
  bh_value *v = NULL, *tmp = NULL;
  const msgpack_object *o;
  int rc;

  if (!bh__call_raw(d->call, &w.raw, &w.args_len, &w.kwargs_len)) {
    if ((v = bh__call_value(d->call, &tmp)) == NULL)
      return BH_ENOMEM;
    o = bh_value_object(v);
    w.args = &o->via.array.ptr[0];
    w.kwargs = o->via.array.size > 1 ? &o->via.array.ptr[1] : NULL;
  }
  rc = bh__send_call(c->chan, type, d->tid, d->name, &w, v);
  bh_value_free(tmp);
  return rc;
}

/* A direct offer: new_task carrying the info, to one child. False if it
 * cannot be encoded (the plain offer then goes, and task_info will report
 * why). */
static bool
offer_direct(bh__deleg *d, bh__child *c) {
  return d->call != NULL && put_call(d, c, BH__MSG_NEW_TASK) == 0;
}

/* What c can take beyond what it holds; no limit counts as most. */
static int64_t
room_left(const bh__child *c) {
  if (c->max_conc < 0)
    return INT64_MAX - (int64_t)c->inflight;
  return (int64_t)c->max_conc + c->prefetch - (int64_t)c->inflight;
}

/* The child with the most room that d may be offered to: none with its
 * offer open, and with `fresh` none offered d before (a denier). Ties go
 * round the children from the one after the last chosen, so that equal
 * workers take turns. NULL: none has room. */
static bh__child *
least_loaded(bh__deleg *d, bool fresh) {
  bh_bee *bee = d->bee;
  size_t i, n = bee->kids.n, at = bee->offer_next < n ? bee->offer_next : 0;
  bh__child *best = NULL;
  int64_t most = 0;

  for (i = 0; i < n; i++, at = at + 1 < n ? at + 1 : 0) {
    bh__child *c = bee->kids.all[at];
    cand *k;

    if (!has_room(c) || room_left(c) <= most)
      continue;
    k = find_cand(d, c->id);
    if (k != NULL && (fresh || k->open))
      continue;
    best = c;
    most = room_left(c);
    bee->offer_next = at + 1;
  }
  return best;
}

/* Opens an offer of d to c, as d's candidate: a direct offer (the info
 * with it: one round trip) when `direct` and the call can be encoded,
 * else the reference's new_task. False: no memory. */
static bool
offer_to(bh__deleg *d, bh__child *c, bool direct) {
  cand *k = find_cand(d, c->id);

  if (k == NULL) {
    cand *grown = bh__realloc(d->cands, (d->n_cands + 1) * sizeof(cand));

    if (grown == NULL)
      return false;
    d->cands = grown;
    k = &d->cands[d->n_cands++];
  }
  *k = (cand){c->id, true, direct && offer_direct(d, c)};
  d->n_open++;
  c->inflight++;
  if (!k->direct)
    bh__d_send(c, BH__MSG_NEW_TASK, d->tid);
  return true;
}

/* d is offered from now: the pickup clock runs. */
static void
now_offered(bh__deleg *d) {
  d->t0 = bh_now();
  bh__d_unqueue(d);
  d->state = D_OFFERED;
  d->queued = true;
  DL_APPEND(d->bee->unpicked_head, d);
}

/* Offers d. With direct offers (the default), to the child with the
 * most room alone, with the info (PROTOCOL.md section 5.1); without, to
 * every child with a free slot that has not an offer of it open already
 * (a retried task keeps its earlier candidates), as the reference does.
 * False: no child has a slot now. */
static bool
offer(bh__deleg *d) {
  bh_bee *bee = d->bee;
  size_t i, n = 0;

  if (bee->direct_offers) {
    bh__child *c = least_loaded(d, false);

    if (c == NULL || !offer_to(d, c, true))
      return false;
    now_offered(d);
    return true;
  }
  for (i = 0; i < bee->kids.n; i++) {
    bh__child *c = bee->kids.all[i];
    cand *k = find_cand(d, c->id);

    if (has_room(c) && (k == NULL || !k->open))
      n += offer_to(d, c, false);
  }
  if (n == 0)
    return false;
  now_offered(d);
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
bh__deleg_pump(bh_bee *bee) {
  if (bee->pop_failed != NULL ||
      (bee->kids.n_alive == 0 && !bh__pop_can_grow(bee)))
    fail_backlog(bee);
  while (bee->backlog_head != NULL && offer(bee->backlog_head))
    ;
  if (bee->backlog_head != NULL)
    bh__pop_saturated(bee);
  bh__d_arm_pickup(bee);
}

/* A new record, in the table: NULL when out of memory (call freed). */
static bh__deleg *
deleg_new(bh_bee *bee, const char *name, bh__call *call) {
  size_t n = strlen(name) + 1;
  bh__deleg *d = bh__malloc(offsetof(bh__deleg, name) + n);

  if (d != NULL) {
    memset(d, 0, offsetof(bh__deleg, name));
    memcpy(d->name, name, n);
    d->bee = bee;
    d->tid = bee->next_tid;
  }
  if (d == NULL || (bee->trace != NULL && bh__d_x(d) == NULL) ||
      !bh__d_table_add(d)) {
    bh__call_free(call);
    if (d != NULL)
      bh__free(d->x);
    bh__free(d);
    return NULL;
  }
  bee->next_tid++;
  d->call = call;
  d->child = -1;
  if (bee->trace != NULL)
    d->x->made_ns = uv_hrtime();
  return d;
}

int
bh__deleg_start(bh_bee *bee, bh_future *fut, const bh__deleg_owner *ow,
                const char *name, bh__call *call, const bh_deleg_opts *o) {
  bh__deleg *d = deleg_new(bee, name, call);
  int64_t timeout_ms = o && o->timeout_ms >= 0 ? o->timeout_ms
                                               : bee->ft.timeout_ms;

  if (d == NULL)
    return BH_ENOMEM;
  BH_ASSERT(bee->deleg_owner == NULL || bee->deleg_owner == ow);
  bee->deleg_owner = ow;
  d->fut = fut;
  d->retries = o && o->retries >= 0 ? o->retries : bee->ft.retries;
  d->state = D_BACKLOG;
  d->queued = true;
  DL_APPEND(bee->backlog_head, d);
  bee->n_backlog++;
  bee->st.delegated++;
  if (fut != NULL)
    ow->bind(fut, d);
  if (bh__d_arm_deadline(d, timeout_ms) != 0) {
    bh__d_cancelled(d, -1, "No memory for the task's deadline.");
    bh__d_maybe_free(d);
    return 0;
  }
  bh__deleg_pump(bee);
  bh__feed_children(bee);
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

/* d starts on c: the info is on its way or already there. */
static void
started(bh__deleg *d) {
  if (d->retries == 0) {
    bh__call_free(d->call);
    d->call = NULL;
  }
  if (d->bee->trace != NULL)
    d->x->start_ns = uv_hrtime();
}

/* Why d's task_info could not be encoded (rc). Returns owned or NULL. */
static char *
info_error(const bh__deleg *d, const bh__child *c, int rc) {
  size_t n = strlen(d->name);

  if (rc != BH_EMSGSIZE)
    return bh__strdup("The task's arguments could not be encoded.");
  if (!bh__wire_name_fits(n, c->kids->max_frame))
    return bh__asprintf("The task's name (%zu bytes) exceeds the frame "
                        "size limit.", n);
  return bh__wire_too_big("The task's arguments", c->kids->max_frame);
}

static void
send_info(bh__deleg *d, bh__child *c) {
  int rc = put_call(d, c, BH__MSG_TASK_INFO);

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
  started(d);
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
    started(d);
  else
    send_info(d, c);
}

/* A denial. A direct offer, made to one child, goes on to the next with
 * room that has not had it; the task is cancelled once everyone offered
 * it has denied. */
static void
on_denied(bh__child *c, bh__deleg *d, cand *k) {
  bh__child *next;

  k->open = false;
  d->n_open--;
  c->inflight--;
  if (d->state != D_OFFERED || d->n_open > 0)
    return;
  /* (it stays in the unpicked list: the pickup clock runs on from the
   * first offer, as it does for the reference's offer to all) */
  next = d->bee->direct_offers ? least_loaded(d, true) : NULL;
  if (next == NULL || !offer_to(d, next, true))
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

static void
close_one(bh__deleg *d, void *arg) {
  (void)arg;
  bh__d_unqueue(d);
  d->state = D_OVER;
  d->n_open = 0;
  if (d->fut != NULL)
    d->bee->deleg_owner->bind(d->fut, NULL);
  bh__d_maybe_free(d);
}

/* Frees every delegation record; the bee is going away. */
void
bh__deleg_close(bh_bee *bee) {
  bh__d_each(bee, close_one, NULL);
  bh__free(bee->delegs.b);
  bee->delegs.b = NULL;
}
