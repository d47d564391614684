/* task.h - a task on its fiber (task.c) and what handlers call
 * (task_api.c): the record of a task from the parent or of local work,
 * its outcome, and its waits. */
#ifndef BH_TASK_H
#define BH_TASK_H

#include <uthash.h>

#include "base/base.h"
#include "runtime/fiber.h"
#include "runtime/timer.h"
#include "value/blob.h"
#include "value/callsite.h"
#include "wire/wire.h"

/* Where a task from the parent is in its life. */
typedef enum task_state {
  TASK_ACCEPTED, /* said task_accepted, awaiting task_info or task_taken */
  TASK_QUEUED,   /* has its info, waits for a free slot */
  TASK_RUNNING,  /* its fiber exists */
  TASK_LOCAL     /* local work started with bh_group_go() */
} task_state;

struct bh_task {
  bh_bee *bee;
  int64_t id;            /* the parent's task id */
  task_state state;
  bh_value *info;        /* the task_info message; args/kwargs point in */
  const char *name;      /* NUL-terminated copy owned by the task */
  const msgpack_object *args, *kwargs;
  bh__fiber *fiber;
  /* Outcome. */
  bh__buf ret;           /* packed return value; empty means nil */
  const msgpack_object *ret_arg; /* or: part of its own args/kwargs */
  bh__blobs ret_blobs;   /* blobs that ret names by LOCAL exts */
  char *errtype, *errmsg, *reason;
  int io_err;            /* the last failed I/O call's code (0: none) */
  const char *io_type;   /* ...its exception type (static) */
  char *io_msg;          /* ...and message (bh_task_errmsg) */
  bh__site io_site;      /* ...and the caller's site, if recorded */
  bh_value *tb;          /* traceback lines: array of str */
  bh_value *details;     /* other_details */
  /* Waiting. */
  bh__tentry deadline;   /* of its current wait (timer.h) */
  bool waiting;
  bool cancelled;
  /* Local work: the future it completes (through complete, group.c's:
   * tasks sit below the futures), and what it runs. */
  bh_future *fut;
  void (*complete)(bh_future *f, bh_result *r); /* takes r */
  bh_local_fn local_fn;
  void *local_arg;
  bh_task *parent_task;
  UT_hash_handle hh;     /* bee->tasks, by id */
  bh_task *qnext;        /* bee's run queue */
};

/* Starts t on a fiber of its own; when it ends, it answers (task_done
 * or its future) and is freed. */
void bh__task_start(bh_task *t);
/* Puts a task from the parent, its info taken, in the bee's run queue,
 * and starts what fits under max_concurrency. */
void bh__task_queue(bh_bee *bee, bh_task *t);
/* Returns owned: a local task of bee running fn(t, arg), not started. */
bh_task *bh__task_local_new(bh_bee *bee, const char *name, bh_local_fn fn,
                            void *arg);
void bh__task_free(bh_task *t);
/* Answers a queued task cancelled without running it, and frees it. */
void bh__task_cancel_queued(bh_task *t);
/* Suspends t until woken (the status it was woken with) or until the
 * deadline: BH_ETIMEDOUT. deadline: ms on bh_now()'s clock, or -1: none. */
int bh__task_wait(bh_task *t, int64_t deadline);
/* The same with the deadline in ns on uv_hrtime()'s clock. */
int bh__task_wait_ns(bh_task *t, int64_t due);
/* base (ns) plus ms milliseconds, at most INT64_MAX; base when ms <= 0. */
int64_t bh__ns_after(int64_t base, int64_t ms);
void bh__task_wake(bh_task *t, int status);
/* Appends a traceback line; adds the "in task ... of bee ..." line. */
int bh__task_tb_add(bh_task *t, const char *line);
void bh__task_tb_where(bh_task *t);
/* Appends the frame line "  File "f", line n, in fn" (the library's own
 * files relative to its source tree). */
int bh__task_tb_file(bh_task *t, const char *file, int line,
                     const char *func);
/* Returns owned: a traceback of t's frame at site (when recorded) and
 * its "in task" line, for a result made in t without raising. */
bh_value *bh__task_frames(const bh_task *t, const bh__site *site);
/* Records the outcome of an I/O call: err 0 clears; otherwise type
 * (static) and msg (owned; NULL: the code's text) become what
 * bh_task_errmsg() says and what returning err raises. Returns err. */
int bh__task_io_result(bh_task *t, int err, const char *type, char *msg);
/* The same for a failed call that the header's macros recorded at site
 * (NULL: none), whose frame then leads the traceback of what returning
 * err raises (bh_return's format, bh_group_delegate's refusal). */
int bh__task_call_error(bh_task *t, int err, const char *type, char *msg,
                        const bh__site *site);
/* Sets the exception; takes ownership of msg. */
void bh__task_set_error(bh_task *t, const char *type, char *msg);
/* The handler returned rc, a failure other than a cancellation: unless it
 * raised, t gets the exception of its failed I/O call (rc is that call's
 * code) or one naming rc. */
void bh__task_error_of_rc(bh_task *t, int rc);
/* The handler of task `name` through t's class chain, or NULL with t
 * raising AttributeError ("Bee class 'W' has no task 'x'."). */
bh_task_fn bh__task_handler(bh_task *t, const char *name);

#endif
