/* make.c - a bee put together from its parts (bee.h) and taken apart,
 * the class's init, and what the bee does with what its children report
 * (child.h): their messages and deaths go to the delegations, the
 * population and the stats, in that order, and a burial may let the end
 * of its life proceed. */
#include "hive/deleg.h"
#include "hive/door.h"
#include "hive/life.h"
#include "hive/make.h"
#include "hive/parent.h"
#include "hive/pop.h"
#include "hive/stats.h"
#include "hive/task.h"
#include "io/s3.h"
#include "transport/transport.h"

#include <unistd.h>

static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

/* The one way up from the children (child.h). */
static void
kid_report(bh__kids *k, bh__child *c, bh__kid_event ev, const bh__msg *m) {
  bh_bee *bee = k->owner;

  switch (ev) {
  case BH__KID_BORN:
    bee->st.spawned++;
    bh__stats_child_lane(bee, c);
    break;
  case BH__KID_MSG:
    bh__deleg_on_msg(bee, c, m);
    break;
  case BH__KID_GONE:
    bh__deleg_on_death(bee, c);
    bh__pop_on_death(bee, c);
    bh__stats_bury(bee, c);
    break;
  case BH__KID_BURIED:
    bh__bee_progress(bee);
    break;
  }
}

static int
bee_init_user(bh_bee *bee, const msgpack_object *args,
              const msgpack_object *kwargs, char **err_text) {
  const bh_class *c = bee->cls;

  if (c->state_size > 0) {
    bee->state = bh__calloc(1, c->state_size);
    if (bee->state == NULL)
      return BH_ENOMEM;
  }
  if (bee->ctx.s3_client == NULL && bee->ctx.s3_profile != NULL) {
    int rc = bh__s3_new(bee->ctx.s3_profile, bee->ctx.http_session,
                        &bee->ctx.s3_client, err_text);

    if (rc != 0)
      return rc;
    bee->own_s3 = true;
  }
  if (c->context_new != NULL)
    bee->ctx.user = c->context_new(bee, bee->ctx.s3_profile);
  if (c->init != NULL &&
      c->init(bee, args ? args : &empty_array,
              kwargs ? kwargs : &empty_map) != 0) {
    *err_text = bh__asprintf("The init of bee class '%s' failed.", c->name);
    return BH_EINVAL;
  }
  return 0;
}

int
bh__bee_init(bh_bee *bee, const msgpack_object *args,
             const msgpack_object *kwargs, char **err_text) {
  *err_text = NULL;
  if (bee->cls == NULL)
    return 0;
  return bee_init_user(bee, args, kwargs, err_text);
}

int
bh__bee_new(bh_bee **out, uv_loop_t *loop, int parent_fd,
            const bh__bee_opts *o) {
  bh_bee *bee = bh__calloc(1, sizeof(*bee));
  int err = 0;

  if (bee == NULL)
    return BH_ENOMEM;
  bee->loop = loop;
  bee->born_ns = uv_hrtime();
  bee->cls = o->cls;
  bee->builtins = bh__builtin_tasks;
  bee->id = o->id;
  bee->log = o->log;
  bee->max_conc = o->max_conc;
  bee->prefetch = o->prefetch > 0 ? o->prefetch : 0;
  bee->direct_offers = true;
  bee->max_frame = o->max_frame ? o->max_frame : BH__DEFAULT_MAX_FRAME;
  /* -1: never (deleg.c arms no pickup timer). */
  bee->pickup_ms = o->pickup_ms != 0 ? (o->pickup_ms < 0 ? -1 : o->pickup_ms)
                                     : 600000;
  bee->on_dead = o->on_dead;
  bee->on_orphan = o->on_orphan;
  bee->ft.poison_kills = 2;
  bee->ft.grace_ms = 1000;
  bee->ft.shutdown_ms = BH__SHUTDOWN_GRACE_MS;
  bee->owner = o->owner;
  if (o->ctx != NULL)
    bee->ctx = *o->ctx;
  bee->ctx.async = 1;
  bh__kids_init(&bee->kids, loop, bee->max_frame, bee->log, bee->id,
                kid_report, bee);
  bh__deleg_init(bee);
  if ((bee->ctx.http_session = bh__http_new(loop, &o->http)) == NULL) {
    if (parent_fd >= 0)
      close(parent_fd);
    if (o->parent_t != NULL)
      o->parent_t->ops->close(o->parent_t, NULL, NULL);
    bh__bee_free(bee);
    return BH_ENOMEM;
  }
  if (parent_fd >= 0 || o->parent_t != NULL) {
    err = bh__parent_open(bee, parent_fd, o->parent_t);
    if (err != 0) {
      bh__bee_free(bee);
      return err;
    }
  }
  *out = bee;
  return 0;
}

static void
bee_closed(uv_handle_t *h) {
  bh__free(h->data);
}

void
bh__bee_free(bh_bee *bee) {
  bh_task *t, *tmp;

  if (bee == NULL)
    return;
  HASH_ITER(hh, bee->tasks, t, tmp) {
    HASH_DEL(bee->tasks, t);
    bh__task_free(t);
  }
  bh__timers_close(bee->timers);
  bee->timers = NULL;
  if (bee->own_s3)
    bh__s3_free(bee->ctx.s3_client);
  bee->ctx.s3_client = NULL;
  bh__http_free(bee->ctx.http_session);
  bee->ctx.http_session = NULL;
  bh__bee_shutdown_stop(bee);
  bh__children_free(&bee->kids);
  bh__deleg_close(bee);
  bh__pop_free(bee);
  bh__door_free(bee);
  bh__chan_close(bee->parent);
  bh_value_free(bee->w_args);
  bh__wcfg_clear(&bee->w_cfg);
  bh_value_free(bee->w_kwargs);
  bh__stats_free(bee);
  bh__free(bee->pop_failed);
  bh__free(bee->state);
  bh__free(bee->exit_code);
  /* The pickup timer lives in the bee: free it once libuv lets go. */
  uv_close((uv_handle_t *)&bee->pickup_timer, bee_closed);
}

void *
bh_bee_state(bh_bee *bee) {
  return bee->state;
}

int64_t
bh_bee_id(const bh_bee *bee) {
  return bee->id;
}

const bh_class *
bh_bee_class(const bh_bee *bee) {
  return bee->cls;
}

bh_logger *
bh_bee_logger(bh_bee *bee) {
  return bee->log;
}

const bh_context *
bh_bee_context(const bh_bee *bee) {
  return &bee->ctx;
}

size_t
bh_bee_children(const bh_bee *bee) {
  return bee->kids.n_alive;
}

size_t
bh_bee_running(const bh_bee *bee) {
  return bee->n_running;
}

int
bh__child_add(bh_bee *bee, int fd, pid_t pid, int capacity,
              char *last_words, bh__child **out) {
  return bh__kids_add(&bee->kids, &bee->next_kid, fd, pid, capacity, 0,
                      last_words, out);
}
