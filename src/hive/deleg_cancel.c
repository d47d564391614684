/* deleg_cancel.c - a delegation's clocks and its cancellation: its
 * deadline, the pickup timeout of offers nobody takes, bh_future_cancel,
 * a forgotten future, and the grace kill. The caller gets its answer the
 * moment the deadline passes or it cancels; a task already running on a
 * child is told cancel_task, and a child that does not answer within the
 * grace period (C code stuck in a loop) is killed and mourned, so a
 * deadline always holds and nothing leaks.
 *
 * Invariants: a delegation has at most one timer of its own, which is its
 * deadline until it is ABANDONED and its grace after (deleg.c has the
 * states); the timer's data is NULL once the record is freed. The pickup
 * clock is the bee's one timer for the unpicked list, which is in the
 * order of the offers: it only ever runs early or on time for its head. */
#include "hive/bee.h"
#include "hive/deleg_rec.h"

static void
timer_closed(uv_handle_t *h) {
  bh__free(h);
}

void
bh__d_timer_free(bh__deleg *d) {
  if (d->x == NULL || d->x->timer == NULL)
    return;
  d->x->timer->data = NULL;
  uv_close((uv_handle_t *)d->x->timer, timer_closed);
  d->x->timer = NULL;
}

/* d's timer, made if it has none: NULL when out of memory. */
static uv_timer_t *
timer_get(bh__deleg *d) {
  deleg_x *x = bh__d_x(d);

  if (x == NULL || x->timer != NULL)
    return x != NULL ? x->timer : NULL;
  x->timer = bh__malloc(sizeof(*x->timer));
  if (x->timer == NULL)
    return NULL;
  uv_timer_init(d->bee->loop, x->timer);
  x->timer->data = d;
  return x->timer;
}

static void
grace_cb(uv_timer_t *h) {
  bh__deleg *d = h->data;
  bh__child *c;
  char why[160];

  if (d == NULL || d->state != D_ABANDONED || (c = bh__d_child(d)) == NULL)
    return;
  if (d->bee->ft.grace_ms == 0)
    snprintf(why, sizeof(why), "it was killed at once on the cancellation "
             "of task %lld (kill_grace_ms -1: no grace)", (long long)d->tid);
  else
    snprintf(why, sizeof(why), "it did not answer the cancellation of task "
             "%lld within %lld ms", (long long)d->tid,
             (long long)d->bee->ft.grace_ms);
  bh__child_kill(c, why);
}

void
bh__d_abandon(bh__deleg *d, bool grace) {
  uv_timer_t *timer;

  d->state = D_ABANDONED;
  bh__d_send(bh__d_child(d), BH__MSG_CANCEL_TASK, d->tid);
  if (grace && (timer = timer_get(d)) != NULL)
    uv_timer_start(timer, grace_cb, (uint64_t)d->bee->ft.grace_ms, 0);
}

/* Answers d cancelled with reason now, wherever it is. */
static void
cancel_now(bh__deleg *d, const char *reason) {
  switch (d->state) {
  case D_BACKLOG:
  case D_OFFERED:
    bh__d_cancelled(d, -1, reason);
    bh__d_maybe_free(d);
    break;
  case D_STARTED:
    bh__d_cancelled(d, d->child, reason);
    bh__d_abandon(d, true);
    break;
  default:
    break;
  }
}

static void
deadline_cb(uv_timer_t *h) {
  bh__deleg *d = h->data;
  char reason[96];

  if (d == NULL)
    return;
  snprintf(reason, sizeof(reason), "Delegated task passed its deadline of "
           "%lld ms.", (long long)d->x->timeout_ms);
  cancel_now(d, reason);
}

int
bh__d_arm_deadline(bh__deleg *d, int64_t timeout_ms) {
  uv_timer_t *timer;

  if (timeout_ms <= 0)
    return 0;
  if ((timer = timer_get(d)) == NULL)
    return BH_ENOMEM;
  d->x->timeout_ms = timeout_ms;
  /* libuv counts from the loop's cached time, which may lag: the deadline
   * must not come early. */
  uv_update_time(d->bee->loop);
  uv_timer_start(timer, deadline_cb, (uint64_t)timeout_ms, 0);
  return 0;
}

void
bh__deleg_cancel(bh__deleg *d) {
  cancel_now(d, "Cancelled by the delegating bee.");
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
  bh__d_arm_pickup(bee);
}

/* One timer serves every offer nobody has taken: it fires for the oldest.
 * Time in the backlog does not count: there every child is busy, which is
 * not a failure to pick up. */
void
bh__d_arm_pickup(bh_bee *bee) {
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

void
bh__deleg_init(bh_bee *bee) {
  uv_timer_init(bee->loop, &bee->pickup_timer);
  bee->pickup_timer.data = bee;
  /* It may run on after the last offer is taken (see bh__d_arm_pickup):
   * it must not keep the loop alive by itself. */
  uv_unref((uv_handle_t *)&bee->pickup_timer);
}
