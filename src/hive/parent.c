/* parent.c - a bee toward its parent: accepting or denying offers (the
 * accept rule is cap.h's), taking task_info into the run queue (task.c
 * runs it within max_concurrency), task_taken, cancel_task, and die,
 * which starts the end of its life (life.c). The delegating side is
 * deleg.c; children are child.c; make.c puts a bee together. */
#include "hive/bee.h"
#include "transport/send.h"
#include "hive/cap.h"
#include "hive/life.h"
#include "hive/map_chunk.h"
#include "hive/parent.h"
#include "hive/task.h"

#include <string.h>

static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

static void
send_simple(bh_bee *bee, bh__msg_type type, int64_t id) {
  bh__send_simple(bee->parent, type, id);
}

/* The child's side of the accept rule (cap.h): not terminating, and
 * room under max_concurrency plus the prefetch. */
static bool
has_room(const bh_bee *bee) {
  return !bee->terminating &&
         bh__cap_room(bee->max_conc, bee->n_reserved, bee->prefetch);
}

static int take_info(bh_task *t, const bh__msg *m);

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
  bh__task_queue(bee, t);
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
  bh__task_queue(bee, t);
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

int
bh__parent_open(bh_bee *bee, int fd, bh__transport *t) {
  if (t != NULL)
    return bh__chan_open_on(&bee->parent, t, bee->max_frame, parent_msg,
                            parent_err, bee);
  return bh__chan_open(&bee->parent, bee->loop, fd, bee->max_frame,
                       parent_msg, parent_err, bee);
}
