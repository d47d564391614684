/* deleg_cancel.c - deadlines and cancellation of delegations. The caller
 * gets its answer the moment the deadline passes or it cancels; a task
 * already running on a child is told cancel_task, and a child that does
 * not answer within the grace period (C code stuck in a loop) is killed
 * and mourned, so a deadline always holds and nothing leaks. */
#include "hive/deleg.h"

static void
timer_closed(uv_handle_t *h) {
  bh__free(h);
}

void
bh__d_timer_free(bh__deleg *d) {
  if (d->timer == NULL)
    return;
  d->timer->data = NULL;
  uv_close((uv_handle_t *)d->timer, timer_closed);
  d->timer = NULL;
}

static int
timer_get(bh__deleg *d) {
  if (d->timer != NULL)
    return 0;
  d->timer = bh__malloc(sizeof(*d->timer));
  if (d->timer == NULL)
    return BH_ENOMEM;
  uv_timer_init(d->bee->loop, d->timer);
  d->timer->data = d;
  return 0;
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
  d->state = D_ABANDONED;
  bh__d_send(bh__d_child(d), BH__MSG_CANCEL_TASK, d->tid);
  if (grace && timer_get(d) == 0)
    uv_timer_start(d->timer, grace_cb, (uint64_t)d->bee->ft.grace_ms, 0);
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
           "%lld ms.", (long long)d->timeout_ms);
  cancel_now(d, reason);
}

int
bh__d_arm_deadline(bh__deleg *d) {
  if (d->timeout_ms <= 0)
    return 0;
  if (timer_get(d) != 0)
    return BH_ENOMEM;
  /* libuv counts from the loop's cached time, which may lag: the deadline
   * must not come early. */
  uv_update_time(d->bee->loop);
  uv_timer_start(d->timer, deadline_cb, (uint64_t)d->timeout_ms, 0);
  return 0;
}

void
bh__deleg_cancel(bh__deleg *d) {
  cancel_now(d, "Cancelled by the delegating bee.");
}
