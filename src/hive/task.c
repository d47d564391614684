/* task.c - a task's life on its fiber: the bee's run queue, running the
 * handler within max_concurrency, packing its outcome into task_done (or
 * completing the future of local work), and the calls a handler makes
 * (arguments, return value, exceptions, waiting). */
#include "hive/bee.h"
#include "hive/life.h"
#include "hive/result.h"
#include "hive/task.h"
#include "hive/taskname.h"
#include "transport/send.h"
#include "value/blob.h"
#include "runtime/timer.h"

#include <stddef.h>
#include <string.h>

/* Temporaries that back the objects of a bh__wire_done. */
typedef struct outcome {
  bh__wire_done d;
  bh_value *exc;
  msgpack_unpacked ret;
  bool has_ret;
  bh_value *retv;  /* a large result, taken from t->ret */
  bh_value *hold;  /* the value the result's bins lie in, or NULL */
  int err;         /* the outcome could not be made (no memory) */
} outcome;

static const msgpack_object nil_obj = {.type = MSGPACK_OBJECT_NIL};

int
bh__task_tb_add(bh_task *t, const char *line) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  const msgpack_object *old = t->tb ? bh_value_object(t->tb) : NULL;
  uint32_t i, n = old ? old->via.array.size : 0;
  bh_value *v;

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, n + 1);
  for (i = 0; i < n; i++)
    msgpack_pack_object(&pk, old->via.array.ptr[i]);
  msgpack_pack_str_with_body(&pk, line, strlen(line));
  v = bh_value_from_bytes(sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  if (v == NULL)
    return BH_ENOMEM;
  bh_value_free(t->tb);
  t->tb = v;
  return 0;
}

/* A traceback's frame line, as Python writes it. */
static void
file_line(const char *file, int line, const char *func, char *buf,
          size_t len) {
  snprintf(buf, len, "  File \"%s\", line %d, in %s", bh__src_path(file),
           line, func);
}

int
bh__task_tb_file(bh_task *t, const char *file, int line, const char *func) {
  char buf[512];

  file_line(file, line, func, buf, sizeof(buf));
  return bh__task_tb_add(t, buf);
}

static void
where_line(const bh_task *t, char *line, size_t len) {
  snprintf(line, len, "  in task '%s' (id %lld) of bee %lld (class %s)",
           t->name ? t->name : "?", (long long)t->id, (long long)t->bee->id,
           t->bee->cls && t->bee->cls->name ? t->bee->cls->name : "-");
}

void
bh__task_tb_where(bh_task *t) {
  char line[256];

  where_line(t, line, sizeof(line));
  bh__task_tb_add(t, line);
}

bh_value *
bh__task_frames(const bh_task *t, const bh__site *site) {
  char file[512], where[256];

  where_line(t, where, sizeof(where));
  if (site == NULL || site->call == NULL)
    return bh_value_pack(NULL, "[s]", where);
  file_line(site->file, site->line, site->func, file, sizeof(file));
  return bh_value_pack(NULL, "[s s]", file, where);
}

void
bh__task_set_error(bh_task *t, const char *type, char *msg) {
  bh__free(t->errtype);
  bh__free(t->errmsg);
  t->errtype = bh__strdup(type);
  t->errmsg = msg;
}

void
bh__task_error_of_rc(bh_task *t, int rc) {
  if (t->errtype == NULL && rc < 0 && rc == t->io_err && t->io_msg) {
    /* The handler passed on the code of its failed I/O call. */
    bh__task_set_error(t, t->io_type, bh__strdup(t->io_msg));
    bh_value_free(t->tb);
    t->tb = NULL;
    if (t->io_site.call != NULL)
      bh__task_tb_file(t, t->io_site.file, t->io_site.line,
                       t->io_site.func);
    bh__task_tb_where(t);
  } else if (t->errtype == NULL) {
    const char *type;
    char *msg = bh__code_error(rc, &type);

    bh__task_set_error(t, type, msg);
    bh__task_tb_where(t);
  }
}

/* Fills o from the handler's return code. A task that was cancelled
 * answers cancelled whatever its handler returned afterwards: a handler
 * that stops at a wait's BH_ECANCELLED and returns what it has must not
 * turn the cancellation into a success with a partial result. */
static void
outcome_make(bh_task *t, int rc, outcome *o) {
  memset(o, 0, sizeof(*o));
  if (rc == BH_ECANCELLED || t->cancelled) {
    o->d.status = BH_CANCELLED;
    o->d.reason = t->reason;
    return;
  }
  if (rc == 0) {
    o->d.status = BH_SUCCEEDED;
    o->d.returning_value = t->ret_arg != NULL ? t->ret_arg : &nil_obj;
    if (t->ret_arg != NULL) {
      o->hold = t->info;
    } else if (t->ret.len >= BH__BORROW_MIN) {
      /* A value of its own, so that the channel can hold its bytes while
       * it writes them from where they lie. */
      o->retv = bh__value_adopt(t->ret.data, t->ret.len);
      t->ret = (bh__buf){0};
      o->err = o->retv != NULL ? 0 : BH_ENOMEM;
      if (o->retv != NULL)
        o->d.returning_value = bh_value_object(o->retv);
      o->hold = o->retv;
    } else if (t->ret.len > 0) {
      size_t off = 0;

      msgpack_unpacked_init(&o->ret);
      o->has_ret = true;
      if (msgpack_unpack_next(&o->ret, t->ret.data, t->ret.len, &off) ==
          MSGPACK_UNPACK_SUCCESS)
        o->d.returning_value = &o->ret.data;
    }
    return;
  }
  bh__task_error_of_rc(t, rc);
  o->d.status = BH_RAISED;
  o->exc = bh_value_pack(NULL, "{s:s s:s}", "type", t->errtype, "message",
                         t->errmsg ? t->errmsg : "");
  o->d.exception = o->exc ? bh_value_object(o->exc) : &nil_obj;
  o->d.traceback = t->tb ? bh_value_object(t->tb) : NULL;
  o->d.other_details = t->details ? bh_value_object(t->details) : NULL;
}

static void
outcome_free(outcome *o) {
  bh_value_free(o->exc);
  bh_value_free(o->retv);
  if (o->has_ret)
    msgpack_unpacked_destroy(&o->ret);
}

bh_task_fn
bh__task_handler(bh_task *t, const char *name) {
  bh_task_fn fn = bh__class_find_task(t->bee->cls, t->bee->builtins, name);

  if (fn == NULL) {
    /* No frame of the library's: where it happened is the task line. */
    bh__task_set_error(t, "AttributeError",
                       bh__class_no_task(t->bee->cls, t->bee->builtins,
                                         name));
    bh__task_tb_where(t);
  }
  return fn;
}

static int
run_handler(bh_task *t) {
  bh_task_fn fn;

  if (t->local_fn != NULL)
    return t->local_fn(t, t->local_arg);
  if (t->name == NULL)
    return BH_ENOMEM;
  fn = bh__task_handler(t, t->name);
  return fn != NULL ? fn(t) : BH_ERAISED;
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

/* A task from the parent answered: its slot is free for the next. */
static void
finished(bh_bee *bee, bh_task *t) {
  HASH_DEL(bee->tasks, t);
  bee->n_reserved--;
  if (t->state == TASK_RUNNING)
    bee->n_running--;
  run_queued(bee);
  bh__bee_progress(bee);
}

void
bh__task_queue(bh_bee *bee, bh_task *t) {
  enqueue(bee, t);
  run_queued(bee);
}

/* The outcome could not be encoded (too big, nested too deep, no memory):
 * the task still gets exactly one answer, raised with why, or cancelled if
 * even that cannot be packed. */
static void
send_fallback(bh_task *t, int err) {
  bh_bee *bee = t->bee;
  bh__wire_done d = {.status = BH_RAISED};
  char *why = err == BH_EMSGSIZE
                  ? bh__wire_too_big("The task's result", bee->max_frame)
                  : NULL;
  bh_value *exc = bh_value_pack(
      NULL, "{s:s s:s}", "type",
      err == BH_EMSGSIZE ? "FrameSizeError" : "EncodeError", "message",
      why != NULL ? why : err == BH_EMSGSIZE
                              ? "The task's result exceeds the frame size "
                                "limit."
                              : "The task's outcome could not be encoded.");

  bh__free(why);
  d.exception = exc ? bh_value_object(exc) : NULL;
  if (exc == NULL ||
      bh__send_task_done(bee->parent, t->id, &d, NULL) != 0) {
    d = (bh__wire_done){.status = BH_CANCELLED,
                        .reason = "The task's outcome could not be encoded."};
    if (bh__send_task_done(bee->parent, t->id, &d, NULL) != 0)
      BH_ASSERT(!"no memory left to answer a task");
  }
  bh_value_free(exc);
}

/* Sends the outcome of a task from the parent as task_done. */
static void
finish_remote(bh_task *t, int rc) {
  bh_bee *bee = t->bee;
  outcome o;
  int err;

  outcome_make(t, rc, &o);
  err = o.err != 0 ? o.err
                   : bh__send_task_done(bee->parent, t->id, &o.d, o.hold);
  if (err != 0)
    send_fallback(t, err);
  outcome_free(&o);
  finished(bee, t);
}

/* Completes the future of a local task with its outcome. */
static void
finish_local(bh_task *t, int rc) {
  bh_bee *bee = t->bee;
  outcome o;

  outcome_make(t, rc, &o);
  if (t->fut != NULL)
    t->complete(
        t->fut, o.err == 0 ? bh__result_from_done(&o.d, bee->id)
                           : bh__result_make(BH_RAISED, bee->id, "EncodeError",
                                             "The task's outcome could not "
                                             "be encoded.",
                                             NULL, NULL, NULL));
  outcome_free(&o);
  bee->n_local--;
  bh__bee_progress(bee);
}

void
bh__task_cancel_queued(bh_task *t) {
  finish_remote(t, BH_ECANCELLED);
  bh__task_free(t);
}

static void
task_main(void *arg) {
  bh_task *t = arg;
  int rc = run_handler(t);

  if (t->state == TASK_LOCAL)
    finish_local(t, rc);
  else
    finish_remote(t, rc);
  bh__task_free(t);
}

bh_task *
bh__task_local_new(bh_bee *bee, const char *name, bh_local_fn fn,
                   void *arg) {
  static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
  static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};
  bh_task *t = bh__calloc(1, sizeof(*t));

  if (t == NULL)
    return NULL;
  t->bee = bee;
  t->id = -1;
  t->state = TASK_LOCAL;
  t->name = bh__strdup(name);
  t->args = &empty_array;
  t->kwargs = &empty_map;
  t->local_fn = fn;
  t->local_arg = arg;
  return t;
}

/* The task could not have a fiber, or its fiber a stack: it raises. */
static void
task_nofiber(void *arg) {
  bh_task *t = arg;

  t->fiber = NULL;
  bh__task_set_error(t, "MemoryError",
                     bh__strdup("No memory for a task fiber."));
  if (t->state == TASK_LOCAL)
    finish_local(t, BH_ERAISED);
  else
    finish_remote(t, BH_ERAISED);
  bh__task_free(t);
}

void
bh__task_start(bh_task *t) {
  bh_bee *bee = t->bee;

  if (t->state != TASK_LOCAL) {
    t->state = TASK_RUNNING;
    bee->n_running++;
  } else {
    bee->n_local++;
  }
  t->fiber = bh__fiber_new(task_main, t,
                           bee->cls != NULL ? bee->cls->stack_size : 0);
  if (t->fiber == NULL) {
    task_nofiber(t);
    return;
  }
  bh__fiber_label(t->fiber, t->name, bee->cls ? bee->cls->name : NULL);
  bh__fiber_on_nostack(t->fiber, task_nofiber);
  bh__fiber_wake(t->fiber, 0);
}

static void
task_release(bh_task *t) {
  bh_value_free(t->info);
  bh__free((char *)t->name);
  bh__buf_free(&t->ret);
  bh__blobs_release(&t->ret_blobs);
  bh__free(t->errtype);
  bh__free(t->errmsg);
  bh__free(t->reason);
  bh__free(t->io_msg);
  bh_value_free(t->tb);
  bh_value_free(t->details);
  bh__free(t);
}

void
bh__task_free(bh_task *t) {
  bh__timer_stop(t->bee->timers, &t->deadline);
  task_release(t);
}

static void
deadline_cb(bh__tentry *e) {
  bh_task *t = (bh_task *)((char *)e - offsetof(bh_task, deadline));

  bh__task_wake(t, BH_ETIMEDOUT);
}

int
bh__task_wait_ns(bh_task *t, int64_t due) {
  bh_bee *bee = t->bee;
  int st;

  BH_ASSERT(bh__fiber_current() == t->fiber && !t->waiting);
  if (t->cancelled)
    return BH_ECANCELLED;
  if (due >= 0) {
    if (bee->timers == NULL &&
        (st = bh__timers_open(&bee->timers, bee->loop)) != 0)
      return st;
    t->deadline.cb = deadline_cb;
    if ((st = bh__timer_start(bee->timers, &t->deadline, (uint64_t)due)) != 0)
      return st;
  }
  t->waiting = true;
  st = bh__fiber_suspend();
  t->waiting = false;
  bh__timer_stop(bee->timers, &t->deadline);
  return st;
}

int64_t
bh__ns_after(int64_t base, int64_t ms) {
  if (ms <= 0)
    return base;
  return ms > (INT64_MAX - base) / 1000000 ? INT64_MAX : base + ms * 1000000;
}

int
bh__task_wait(bh_task *t, int64_t deadline) {
  return bh__task_wait_ns(t, deadline < 0 ? -1 : bh__ns_after(0, deadline));
}

void
bh__task_wake(bh_task *t, int status) {
  if (!t->waiting)
    return;
  t->waiting = false;
  bh__fiber_wake(t->fiber, status);
}

int
bh__task_io_result(bh_task *t, int err, const char *type, char *msg) {
  bh__free(t->io_msg);
  t->io_msg = NULL;
  t->io_site.call = NULL;
  t->io_err = err;
  t->io_type = type;
  if (err != 0)
    t->io_msg = msg != NULL ? msg : bh__strdup(bh_strerror(err));
  else
    bh__free(msg);
  return err;
}

int
bh__task_call_error(bh_task *t, int err, const char *type, char *msg,
                    const bh__site *site) {
  bh__task_io_result(t, err, type, msg);
  if (site != NULL && site->call != NULL)
    t->io_site = *site;
  return err;
}
