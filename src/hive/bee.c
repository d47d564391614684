/* bee.c - a bee's life toward its parent: accepting or denying offers,
 * running tasks within max_concurrency, and dying in order. The
 * delegating side is deleg.c; children are child.c. */
#include "hive/bee.h"
#include "hive/pop.h"
#include "io/s3.h"
#include "transport/send.h"

#include <string.h>
#include <unistd.h>

static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

static void
send_simple(bh_bee *bee, bh__msg_type type, int64_t id) {
  bh__send_simple(bee->parent, type, id);
}

/* The accept rule: not terminating, and fewer tasks accepted and not
 * finished than max_concurrency (plus the prefetch, queued). */
static bool
has_room(const bh_bee *bee) {
  return !bee->terminating &&
         (bee->max_conc < 0 ||
          bee->n_reserved < (size_t)bee->max_conc + (size_t)bee->prefetch);
}

static int take_info(bh_task *t, const bh__msg *m);
static void enqueue(bh_bee *bee, bh_task *t);
static void run_queued(bh_bee *bee);

/* A direct offer carries the info: the task starts at once, and the
 * answer says so. The answer leaves before the handler can run (an urgent
 * kick: the turn writes it before it runs the fibers), so that
 * the parent knows the task started even if the handler never yields or
 * crashes the process: a child that dies before answering never ran it,
 * and the parent offers it again, as for a plain offer. */
static void
start_offered(bh_bee *bee, bh_task *t, const bh__msg *m) {
  if (take_info(t, m) != 0)
    bh_log(bee->log, BH_LOG_ERROR, "bee %lld: out of memory",
           (long long)bee->id);
  bh__send_accepted_started(bee->parent, t->id);
  enqueue(bee, t);
  run_queued(bee);
}

static void
on_new_task(bh_bee *bee, const bh__msg *m) {
  int64_t id = m->task_id;
  bh_task *t;

  HASH_FIND(hh, bee->tasks, &id, sizeof(id), t);
  if (t != NULL || !has_room(bee)) {
    if (t != NULL)
      bh_log(bee->log, BH_LOG_WARNING, "bee %lld: task %lld offered twice",
             (long long)bee->id, (long long)id);
    send_simple(bee, BH__MSG_TASK_DENIED, id);
    return;
  }
  t = bh__calloc(1, sizeof(*t));
  if (t == NULL) {
    send_simple(bee, BH__MSG_TASK_DENIED, id);
    return;
  }
  t->bee = bee;
  t->id = id;
  t->state = TASK_ACCEPTED;
  HASH_ADD(hh, bee->tasks, id, sizeof(t->id), t);
  bee->n_reserved++;
  if (m->name != NULL)
    start_offered(bee, t, m);
  else
    send_simple(bee, BH__MSG_TASK_ACCEPTED, id);
}

static bh_task *
accepted_task(bh_bee *bee, int64_t id) {
  bh_task *t;

  HASH_FIND(hh, bee->tasks, &id, sizeof(id), t);
  return (t != NULL && t->state == TASK_ACCEPTED) ? t : NULL;
}

static void
on_taken(bh_bee *bee, int64_t id) {
  bh_task *t = accepted_task(bee, id);

  if (t == NULL) {
    bh_log(bee->log, BH_LOG_WARNING,
           "bee %lld: task_taken for task %lld it does not hold",
           (long long)bee->id, (long long)id);
    return;
  }
  HASH_DEL(bee->tasks, t);
  bee->n_reserved--;
  bh__task_free(t);
  bh__bee_progress(bee);
}

static void
enqueue(bh_bee *bee, bh_task *t) {
  t->state = TASK_QUEUED;
  t->qnext = NULL;
  if (bee->rq_tail != NULL)
    bee->rq_tail->qnext = t;
  else
    bee->rq_head = t;
  bee->rq_tail = t;
}

/* Starts queued tasks while there is a free slot. */
static void
run_queued(bh_bee *bee) {
  while (bee->rq_head != NULL &&
         (bee->max_conc < 0 || bee->n_running < (size_t)bee->max_conc)) {
    bh_task *t = bee->rq_head;

    bee->rq_head = t->qnext;
    if (bee->rq_head == NULL)
      bee->rq_tail = NULL;
    bh__task_start(t);
  }
}

static int
take_info(bh_task *t, const bh__msg *m) {
  const msgpack_object *root;

  t->info = bh__msg_value(m);
  if (t->info == NULL)
    return BH_ENOMEM;
  root = bh_value_object(t->info);
  t->args = bh__map_get(root, "args");
  t->kwargs = bh__map_get(root, "kwargs");
  if (t->args == NULL || t->args->type != MSGPACK_OBJECT_ARRAY)
    t->args = &empty_array;
  if (t->kwargs == NULL || t->kwargs->type != MSGPACK_OBJECT_MAP)
    t->kwargs = &empty_map;
  t->name = bh__strndup(m->name, m->name_len);
  return t->name == NULL ? BH_ENOMEM : 0;
}

static void
on_info(bh_bee *bee, const bh__msg *m) {
  bh_task *t = accepted_task(bee, m->task_id);
  char why[96];

  if (t == NULL) {
    snprintf(why, sizeof(why),
             "Protocol error: task_info for task %lld, which was not "
             "accepted.", (long long)m->task_id);
    bh__bee_terminate(bee, why);
    return;
  }
  if (take_info(t, m) != 0) {
    bh_log(bee->log, BH_LOG_ERROR, "bee %lld: out of memory",
           (long long)bee->id);
  }
  enqueue(bee, t);
  run_queued(bee);
}

/* Cancels t with reason: a running task's fiber wakes with BH_ECANCELLED
 * (or sees it at its next wait); a queued one is answered cancelled at
 * once. */
void
bh__bee_cancel_task(bh_bee *bee, bh_task *t, const char *reason) {
  bh_task **p;

  if (t->state == TASK_ACCEPTED || t->cancelled)
    return;
  t->cancelled = true;
  if (t->reason == NULL)
    t->reason = bh__strdup(reason);
  if (t->state == TASK_RUNNING) {
    bh__task_wake(t, BH_ECANCELLED);
    return;
  }
  for (p = &bee->rq_head; *p != NULL; p = &(*p)->qnext)
    if (*p == t) {
      *p = t->qnext;
      break;
    }
  bee->rq_tail = NULL;
  for (p = &bee->rq_head; *p != NULL; p = &(*p)->qnext)
    bee->rq_tail = *p;
  bh__task_cancel_queued(t);
}

void
bh__bee_cancel_all(bh_bee *bee, const char *reason) {
  bh_task *t, *tmp;

  HASH_ITER(hh, bee->tasks, t, tmp)
    bh__bee_cancel_task(bee, t, reason);
}

/* The parent no longer wants task id. A task already answered is not
 * found: its task_done is on its way, which is answer enough. */
static void
on_cancel(bh_bee *bee, int64_t id) {
  bh_task *t;

  HASH_FIND(hh, bee->tasks, &id, sizeof(id), t);
  if (t != NULL)
    bh__bee_cancel_task(bee, t, "Cancelled by the parent bee.");
}

static void
on_unknown(bh_bee *bee, const bh__msg *m) {
  char *why = bh__asprintf("Unknown message with type '%.*s'.",
                           (int)m->type_len, m->type_str);

  bh_log(bee->log, BH_LOG_ERROR, "bee %lld: %s", (long long)bee->id,
         why ? why : "Unknown message.");
  bh__bee_terminate(bee, why ? why : "Unknown message.");
  bh__free(why);
}

/* Messages from the parent. Only four types may come this way; anything
 * else is an unknown message for a child, as in the reference. */
static void
parent_msg(bh__chan *ch, const bh__msg *m, void *udata) {
  bh_bee *bee = udata;

  (void)ch;
  switch (m->type) {
  case BH__MSG_NEW_TASK:
    on_new_task(bee, m);
    break;
  case BH__MSG_TASK_TAKEN:
    on_taken(bee, m->task_id);
    break;
  case BH__MSG_TASK_INFO:
    on_info(bee, m);
    break;
  case BH__MSG_DIE:
    bh__bee_terminate(bee, "The parent bee ordered to die gracefully.");
    break;
  case BH__MSG_CANCEL_TASK:
    on_cancel(bee, m->task_id);
    break;
  default:
    on_unknown(bee, m);
    break;
  }
}

static void
parent_err(bh__chan *ch, int err, const char *why, void *udata) {
  bh_bee *bee = udata;

  (void)ch;
  if (bee->dead)
    return;
  bh_log(bee->log, BH_LOG_ERROR, "bee %lld: channel to parent failed: %s (%s)",
         (long long)bee->id, why, bh_err_name(err));
  if (bee->on_orphan != NULL)
    bee->on_orphan(bee);
}

void
bh__bee_task_finished(bh_bee *bee, bh_task *t) {
  HASH_DEL(bee->tasks, t);
  bee->n_reserved--;
  if (t->state == TASK_RUNNING)
    bee->n_running--;
  run_queued(bee);
  bh__bee_progress(bee);
}

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

static void
shutdown_stop(bh_bee *bee) {
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
  bh__children_kill(bee, why);
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
    for (i = 0; i < bee->n_kids; i++)
      if (bee->kids[i]->alive)
        bh__child_die(bee->kids[i]);
    if (bee->n_alive > 0)
      shutdown_start(bee);
  }
  if (bee->n_alive == 0) {
    shutdown_stop(bee);
    say_dead(bee);
  }
}

/* The built-in task of every worker: how busy the bee is, 0 to 1. */
static int
busy_status(bh_task *t) {
  bh_bee *bee = t->bee;
  double busy = 0.0;

  /* The bee's other running tasks: busy_status does not count itself, or
   * it could never say 0.0, and with max_concurrency 1 only ever 1.0. */
  if (bee->max_conc > 0 && bee->n_running > 0)
    busy = (double)(bee->n_running - 1) / (double)bee->max_conc;
  return bh_return(t, "f", busy);
}

const bh_task_def bh__builtin_tasks[] = {
    {"busy_status", busy_status},
    {BH__MAP_CHUNK_TASK, bh__map_chunk_task}, /* bh_map_new's chunks */
    {NULL, NULL}};

bh_task_fn
bh__bee_find_task(const bh_bee *bee, const char *name) {
  return bh__class_find_task(bee->cls, name);
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
  bh__deleg_init(bee);
  if ((bee->ctx.http_session = bh__http_new(loop, &o->http)) == NULL) {
    if (parent_fd >= 0)
      close(parent_fd);
    bh__bee_free(bee);
    return BH_ENOMEM;
  }
  if (parent_fd >= 0) {
    err = bh__chan_open(&bee->parent, loop, parent_fd, bee->max_frame,
                        parent_msg, parent_err, bee);
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
  shutdown_stop(bee);
  bh__children_free(bee);
  bh__deleg_close(bee);
  bh__pop_free(bee);
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
  return bee->n_alive;
}

size_t
bh_bee_running(const bh_bee *bee) {
  return bee->n_running;
}
