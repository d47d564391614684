/* deleg.h - a bee's delegations to its children, as the rest of the bee
 * sees them: start one, forget or cancel it, and feed it what the
 * children say and do. The record and the calls between the three files
 * that make the module are deleg_rec.h's:
 *   deleg.c         the offer/accept state machine, up to the hand-over;
 *   deleg_answer.c  answers and deaths: results, retries, poison tasks;
 *   deleg_cancel.c  the clocks (deadline, pickup, grace) and cancelling. */
#ifndef BH_DELEG_H
#define BH_DELEG_H

#include "base/base.h"
#include "hive/child.h"
#include "value/call.h"
#include "wire/wire.h"

typedef struct bh__deleg bh__deleg;

/* How a delegation reaches the future it completes (group.c's): the
 * delegations sit below the futures and call up only through these. */
typedef struct bh__deleg_owner {
  /* d is in flight for f (NULL: not any more, the bee is freed). */
  void (*bind)(bh_future *f, bh__deleg *d);
  /* f's answer, r (owned), is given; d is over. */
  void (*complete)(bh_future *f, bh_result *r);
} bh__deleg_owner;

/* Starts a delegation whose result completes `fut` (through ow, the one
 * owner of every future of the bee), with options o (NULL: the bee's
 * defaults). Takes `call` whatever happens. */
int bh__deleg_start(bh_bee *bee, bh_future *fut, const bh__deleg_owner *ow,
                    const char *name, bh__call *call, const bh_deleg_opts *o);
/* The future's owner went away: drop the answer when it comes. */
void bh__deleg_forget(bh__deleg *d);
/* Answers d cancelled now, and cancels it on its child. */
void bh__deleg_cancel(bh__deleg *d);
/* Child c's message about a delegation (accepted, denied, done). */
void bh__deleg_on_msg(bh_bee *bee, bh__child *c, const bh__msg *m);
/* Child c is gone: fail or re-home its delegations. */
void bh__deleg_on_death(bh_bee *bee, bh__child *c);
/* Offers backlogged delegations while children have room (after any
 * change in the children: a new one, a failed population). */
void bh__deleg_pump(bh_bee *bee);
void bh__deleg_init(bh_bee *bee);
void bh__deleg_close(bh_bee *bee);

#endif
