/* deleg_rec.h - the delegation record, and the calls between the three
 * files of the delegations (deleg.h says which does what); nothing
 * outside them includes it. */
#ifndef BH_DELEG_REC_H
#define BH_DELEG_REC_H

#include <stddef.h>
#include <uv.h>

#include "hive/deleg.h"
#include "value/call.h"

typedef struct cand {
  int64_t child;
  bool open;   /* no answer yet */
  bool direct; /* the offer carried the info (a direct offer) */
} cand;

typedef enum deleg_state {
  D_BACKLOG,   /* not offered yet */
  D_OFFERED,   /* offered, nobody accepted yet */
  D_STARTED,   /* task_info sent to `child` */
  D_ABANDONED, /* answered early (deadline, cancel, forgotten) while it
                * still runs on `child`: waits for its task_done */
  D_OVER       /* answered or forgotten; waits for late answers */
} deleg_state;

/* What few delegations need, allocated the first time one does
 * (bh__d_x): a deadline or a cancellation grace, or a trace to appear
 * on. A million delegations in flight carry none. */
typedef struct deleg_x {
  uv_timer_t *timer;    /* the deadline, then the cancellation grace */
  int64_t timeout_ms;   /* its deadline, from when it was made; 0: none */
  uint64_t made_ns, start_ns; /* for the timeline */
} deleg_x;

/* A record per delegation in flight, so kept small: the name is inline,
 * the call one block (value/call.h), the owner of its future the bee's
 * (bee->deleg_owner), what few need in x. */
struct bh__deleg {
  int64_t tid;
  bh__deleg *hnext;     /* in its bucket of the bee's table (bh__d_find) */
  bh_bee *bee;
  bh_future *fut;       /* NULL once forgotten */
  bh__call *call;       /* [args, kwargs]: until task_info is sent, or
                         * for good when it may be retried */
  bh__deleg *prev, *next; /* in the backlog or the unpicked list */
  int64_t child;
  cand *cands;
  uint32_t n_cands, n_open;
  int64_t t0;           /* when it was offered, for the pickup timeout */
  deleg_x *x;           /* NULL until needed */
  int retries;          /* re-offers left after a worker's death */
  int kills;            /* workers that died while running it */
  uint8_t state;        /* a deleg_state */
  bool queued;          /* in backlog or unpicked list */
  char name[];          /* the task's */
};
/* With a name of up to 13 bytes, a record is a malloc chunk of 128. */
_Static_assert(offsetof(struct bh__deleg, name) <= 106,
               "a delegation record grew: see deleg_x for what few need");

#define DENIED_ALL "Every child bee has denied the task."

/* deleg_table.c: the bee's delegations by task id. */
/* The delegation of task id tid, or NULL. */
bh__deleg *bh__d_find(bh_bee *bee, int64_t tid);
/* Adds d (false: no memory) and takes it out. */
bool bh__d_table_add(bh__deleg *d);
void bh__d_table_del(bh__deleg *d);
/* Calls fn on every delegation, which fn may free (no other). */
void bh__d_each(bh_bee *bee, void (*fn)(bh__deleg *d, void *arg), void *arg);

/* deleg.c: the offers. */
/* d's side record, made if it has none: NULL when out of memory. */
deleg_x *bh__d_x(bh__deleg *d);
/* Frees d once it is OVER with no offer open. */
void bh__d_maybe_free(bh__deleg *d);
/* Takes d out of the backlog or the unpicked list. */
void bh__d_unqueue(bh__deleg *d);
/* Sends a message of one task id to c (if it is still there). */
void bh__d_send(bh__child *c, bh__msg_type type, int64_t tid);
/* The child d runs on, or NULL (none, or dead). */
bh__child *bh__d_child(const bh__deleg *d);
/* Puts d back at the head of the backlog (a retry). */
void bh__d_requeue(bh__deleg *d);
/* A child's accept or deny of an offer (false if it fits no open offer),
 * and its open offers on its death. */
bool bh__d_on_offer_answer(bh__child *c, bh__deleg *d, const bh__msg *m);
void bh__d_close_offers(bh__child *c, bh__deleg *d);

/* deleg_answer.c: the answers. */
/* Hands the answer r (owned) to the future, if any; the record is D_OVER
 * after, unless it was abandoned. */
void bh__d_conclude(bh__deleg *d, bh_result *r);
void bh__d_cancelled(bh__deleg *d, int64_t child, const char *reason);

/* deleg_cancel.c: the clocks. */
/* Starts d's deadline timer after timeout_ms (0: none). */
int bh__d_arm_deadline(bh__deleg *d, int64_t timeout_ms);
/* Runs the pickup timer for the oldest offer nobody has taken. */
void bh__d_arm_pickup(bh_bee *bee);
/* d runs on its child but its answer is given: tell the child to cancel;
 * with grace, kill the child if it has not answered in time. */
void bh__d_abandon(bh__deleg *d, bool grace);
void bh__d_timer_free(bh__deleg *d);

#endif
