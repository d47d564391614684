/* life.h - the end of a bee's life, in order (life.c). */
#ifndef BH_LIFE_H
#define BH_LIFE_H

#include "hive/bee.h"

/* Starts dying: stop accepting, let the work finish, children die first,
 * then send dead with exit_code. */
void bh__bee_terminate(bh_bee *bee, const char *exit_code);
/* Checks whether the end of life can proceed; called after every event
 * that may have finished the work. */
void bh__bee_progress(bh_bee *bee);
/* Ends the bee's life at once with a dead message of type killed. */
void bh__bee_die_killed(bh_bee *bee, const char *type, const char *msg);
/* Stops the shutdown grace's timer (the bee is freed). */
void bh__bee_shutdown_stop(bh_bee *bee);

#endif
