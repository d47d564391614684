/* life.c - the end of a bee's life, in order: the work finishes, then
 * the children die (killed if they do not within the shutdown grace),
 * then the bee says dead; or at once, with a dead message of type killed
 * (a failed init). */
#include "hive/child.h"
#include "hive/door.h"
#include "transport/send.h"
#include "hive/life.h"
#include "hive/pop.h"

#include <string.h>

void
bh__bee_terminate(bh_bee *bee, const char *exit_code) {
  if (bee->terminating)
    return;
  bee->terminating = true;
  bee->exit_code = bh__strdup(exit_code);
  bh_log(bee->log, BH_LOG_DEBUG, "bee %lld: terminating: %s",
         (long long)bee->id, exit_code);
  bh__bee_progress(bee);
}

static void
say_dead(bh_bee *bee) {
  bee->dead = true;
  if (bee->cls != NULL && bee->cls->cleanup != NULL)
    bee->cls->cleanup(bee);
  if (bee->cls != NULL && bee->cls->context_free != NULL)
    bee->cls->context_free(bee, bee->ctx.user);
  bee->ctx.user = NULL;
  if (bee->parent != NULL)
    bh__send_dead_normal(bee->parent, bee->exit_code);
  if (bee->on_dead != NULL)
    bee->on_dead(bee);
}

static void
timer_closed(uv_handle_t *h) {
  bh__free(h);
}

void
bh__bee_shutdown_stop(bh_bee *bee) {
  if (bee->shutdown_timer == NULL)
    return;
  uv_close((uv_handle_t *)bee->shutdown_timer, timer_closed);
  bee->shutdown_timer = NULL;
}

/* Children told to die that have not ended within the shutdown grace
 * are killed and mourned: a dying hive always ends. */
static void
shutdown_cb(uv_timer_t *h) {
  bh_bee *bee = h->data;
  char why[96];

  if (bee->ft.shutdown_ms == 0)
    snprintf(why, sizeof(why), "it was killed at once when told to die "
             "(shutdown_grace_ms -1: no grace)");
  else
    snprintf(why, sizeof(why), "it did not end within %lld ms of being "
             "told to die", (long long)bee->ft.shutdown_ms);
  bh__children_kill(&bee->kids, why);
}

static void
shutdown_start(bh_bee *bee) {
  bee->shutdown_timer = bh__malloc(sizeof(*bee->shutdown_timer));
  if (bee->shutdown_timer == NULL)
    return;
  uv_timer_init(bee->loop, bee->shutdown_timer);
  bee->shutdown_timer->data = bee;
  uv_timer_start(bee->shutdown_timer, shutdown_cb,
                 (uint64_t)bee->ft.shutdown_ms, 0);
  /* The children's own watches keep the loop alive while they live. */
  uv_unref((uv_handle_t *)bee->shutdown_timer);
}

/* The end of life, in order: the work finishes, then the children die
 * (killed if they do not within the shutdown grace), then the bee says
 * dead. Called after anything that may allow a step. */
void
bh__bee_progress(bh_bee *bee) {
  size_t i;

  if (!bee->terminating || bee->dead || bee->n_reserved > 0 ||
      bee->n_local > 0)
    return;
  if (!bee->dying) {
    bee->dying = true;
    bh__pop_stop(bee);
    bh__door_close(bee); /* nobody joins a hive that ends */
    for (i = 0; i < bee->kids.n; i++)
      if (bee->kids.all[i]->alive)
        bh__child_die(bee->kids.all[i]);
    if (bee->kids.n_alive > 0)
      shutdown_start(bee);
  }
  if (bee->kids.n_alive == 0) {
    bh__bee_shutdown_stop(bee);
    say_dead(bee);
  }
}

static int
put_killed(bh_bee *bee, const char *type, const char *msg) {
  bh_value *exc = bh_value_pack(NULL, "{s:s s:s}", "type", type, "message",
                                msg);
  int rc = exc == NULL ? BH_ENOMEM
                       : bh__send_dead_killed(bee->parent,
                                              bh_value_object(exc), NULL);

  bh_value_free(exc);
  return rc;
}

/* The message is cut if it does not fit whole: the last word leaves. */
void
bh__bee_die_killed(bh_bee *bee, const char *type, const char *msg) {
  char cut[BH__TEXT_MAX + 1];

  bee->terminating = bee->dying = bee->dead = true;
  if (bee->parent != NULL && put_killed(bee, type, msg) == BH_EMSGSIZE)
    put_killed(bee, type, bh__text_cut(msg, cut));
  if (bee->on_dead != NULL)
    bee->on_dead(bee);
}
