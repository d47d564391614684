/* deleg_answer.c - what the delegating bee makes of its children's answers
 * and deaths: every answer a delegation gets passes here
 * (bh__d_conclude), wrapped as the original does (docs/PROTOCOL.md
 * section 10, "Results at the delegating bee"); a task lost with its
 * worker is retried or refused as poison.
 *
 * Invariants: a delegation gets exactly one answer, counted once in the
 * bee's stats and span (account) when it leaves BACKLOG, OFFERED or
 * STARTED; an ABANDONED one was answered already, and its task_done or
 * its worker's death only ends it (OVER). A lost task is retried only
 * while its retries last, its call is kept (retries > 0 keeps it), and it
 * has killed fewer than poison_kills workers; retried, it goes to the head
 * of the backlog (deleg.c). */
#include "hive/bee.h"
#include "hive/deleg_rec.h"
#include "hive/pop.h"
#include "hive/result.h"
#include "observe/trace.h"

#include <string.h>

static const msgpack_object nil_obj = {.type = MSGPACK_OBJECT_NIL};

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
  if (bee->trace != NULL) /* then every delegation has its x */
    bh__trace_add(bee->trace, d->child, d->name, d->tid, d->x->made_ns,
                  d->x->start_ns, uv_hrtime(), st);
}

void
bh__d_conclude(bh__deleg *d, bh_result *r) {
  if (d->state != D_OVER && d->state != D_ABANDONED)
    account(d, r);
  bh__d_unqueue(d);
  if (d->state != D_ABANDONED)
    d->state = D_OVER;
  if (d->state == D_OVER) {
    bh__call_free(d->call);
    d->call = NULL;
  }
  if (d->fut != NULL)
    d->bee->deleg_owner->complete(d->fut, r);
  else
    bh_result_free(r);
  d->fut = NULL;
}

void
bh__d_cancelled(bh__deleg *d, int64_t child, const char *reason) {
  bh__d_conclude(d, bh__result_make(BH_CANCELLED, child, NULL, NULL, reason,
                                    NULL, NULL));
}

static bh_result *
wrap(const bh__deleg *d, const bh__child *c, const char *type,
     const char *msg, const char *key, const msgpack_object *obj) {
  char line[256];

  snprintf(line, sizeof(line),
           "  in delegation of task '%s' (id %lld) by bee %lld to child "
           "bee %lld", d->name, (long long)d->tid, (long long)d->bee->id,
           (long long)c->id);
  return bh__result_wrap(c->id, line, type, msg, key, obj);
}

static bh_result *
wrap_done(const bh__deleg *d, const bh__child *c, const bh__msg *m) {
  switch (m->status) {
  case BH_SUCCEEDED:
    /* The child's message is the result: its bytes, no repack (and no
     * copy for a large frame). */
    return bh__result_new(bh__msg_value(m), c->id);
  case BH_CANCELLED:
    return wrap(d, c, "RuntimeError", "Delegated task has been cancelled.",
                "reason", m->reason ? m->reason : &nil_obj);
  default:
    return wrap(d, c, "RuntimeError", "Delegated task raised an exception.",
                "cause", m->root);
  }
}

static void
count_answer(bh__child *c, bh_status st) {
  if (st == BH_SUCCEEDED)
    c->done++;
  else if (st == BH_CANCELLED)
    c->cancelled++;
  else
    c->raised++;
}

static void
on_done(bh__child *c, bh__deleg *d, const bh__msg *m) {
  c->inflight--;
  count_answer(c, m->status);
  if (d->state == D_ABANDONED) /* its answer was given already */
    d->state = D_OVER;
  else
    bh__d_conclude(d, wrap_done(d, c, m));
  bh__pop_task_done(d->bee, c);
}

/* A child's message about delegation m->task_id. Anything that does not
 * fit what this bee asked of that child is a protocol error: the child is
 * killed and mourned, and nothing else is affected. */
void
bh__deleg_on_msg(bh_bee *bee, bh__child *c, const bh__msg *m) {
  bh__deleg *d;
  char why[160];
  bool ok;

  d = bh__d_find(bee, m->task_id);
  if (m->type == BH__MSG_TASK_DONE)
    ok = d != NULL && d->child == c->id &&
         (d->state == D_STARTED || d->state == D_ABANDONED);
  else
    ok = bh__d_on_offer_answer(c, d, m);
  if (!ok) {
    snprintf(why, sizeof(why), "protocol error: %s for task %lld, which "
             "was not asked of child bee %lld", bh__msg_type_str(m->type),
             (long long)m->task_id, (long long)c->id);
    bh__child_kill(c, why);
    return;
  }
  if (m->type == BH__MSG_TASK_DONE)
    on_done(c, d, m);
  bh__d_maybe_free(d);
  bh__deleg_pump(bee);
}

/* The message that says how child c ended, as the cause of its tasks. */
static bh_value *
death_cause(const bh__child *c) {
  const char *cause = c->cause ? c->cause : "?";
  char msg[300];

  if (c->dead_msg != NULL)
    return bh_value_from_object(bh_value_object(c->dead_msg));
  /* A cause may be a sentence of its own ("protocol error: Unknown message
   * with type 'X'."): it ends this one too, without a second period. */
  snprintf(msg, sizeof(msg), "Child bee id %lld has died without sending a "
           "last wish: %s%s", (long long)c->id, cause, bh__stop(cause));
  return bh_value_pack(NULL, "{s:s s:s s:{s:s s:s} s:[]}", "msg_type", "dead",
                       "death_type", "killed", "exception", "type",
                       "BeeDied", "message", msg, "traceback");
}

/* d was running on c when c died: retry it, refuse it as poison, or
 * answer it raised with the cause of death. */
static void
lost(bh__deleg *d, bh__child *c, const msgpack_object *cause) {
  char msg[200];

  c->lost++;
  d->kills++;
  if (d->retries > 0 && d->kills < d->bee->ft.poison_kills &&
      d->call != NULL) {
    d->retries--;
    bh__d_requeue(d);
    return;
  }
  if (d->retries > 0 || d->kills >= d->bee->ft.poison_kills) {
    snprintf(msg, sizeof(msg), "poison task: task '%s' was running in %d "
             "workers that died; it is not tried again.", d->name, d->kills);
    bh__d_conclude(d, wrap(d, c, "PoisonTaskError", msg, "cause", cause));
    return;
  }
  bh__d_conclude(d, wrap(d, c, "RuntimeError", "Delegated task cancelled as "
                         "the delegated bee has been killed.", "cause",
                         cause));
}

/* A death's news for one delegation. */
typedef struct death {
  bh__child *c;
  const msgpack_object *cause;
} death;

static void
on_death_one(bh__deleg *d, void *arg) {
  const death *x = arg;

  if (d->state == D_STARTED && d->child == x->c->id)
    lost(d, x->c, x->cause);
  else if (d->state == D_ABANDONED && d->child == x->c->id)
    d->state = D_OVER;
  bh__d_close_offers(x->c, d);
  bh__d_maybe_free(d);
}

void
bh__deleg_on_death(bh_bee *bee, bh__child *c) {
  bh_value *cause = death_cause(c);
  death x = {c, cause ? bh_value_object(cause) : &nil_obj};

  if (!bh__child_normal_end(c))
    bee->st.deaths++;
  bh__d_each(bee, on_death_one, &x);
  bh_value_free(cause);
  c->inflight = 0;
  bh__deleg_pump(bee);
}
