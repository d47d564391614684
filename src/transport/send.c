/* send.c - one call per message (send.h): each hands its fields to the
 * channel's bh__chan_send() with the encoder that packs them, so that the
 * output buffer, the blob queue and its hold never leave chan.c. */
#include "transport/send.h"

typedef struct simple_args {
  bh__msg_type type;
  int64_t task_id;
} simple_args;

static int
put_simple(bh__buf *b, struct bh__blobq *q, size_t max_frame,
           const void *arg) {
  const simple_args *a = arg;

  (void)q;
  return bh__wire_put_simple(b, max_frame, a->type, a->task_id);
}

int
bh__send_simple(bh__chan *c, bh__msg_type type, int64_t task_id) {
  simple_args a = {type, task_id};

  return bh__chan_send(c, put_simple, &a, NULL, false);
}

static int
put_started(bh__buf *b, struct bh__blobq *q, size_t max_frame,
            const void *arg) {
  (void)q;
  return bh__wire_put_accepted_started(b, max_frame, *(const int64_t *)arg);
}

int
bh__send_accepted_started(bh__chan *c, int64_t task_id) {
  return bh__chan_send(c, put_started, &task_id, NULL, true);
}

typedef struct call_args {
  bh__msg_type type;
  int64_t task_id;
  const char *name;
  const bh__wire_call *call;
} call_args;

static int
put_call(bh__buf *b, struct bh__blobq *q, size_t max_frame,
         const void *arg) {
  const call_args *a = arg;

  return bh__wire_put_call(b, q, max_frame, a->type, a->task_id, a->name,
                           a->call);
}

int
bh__send_call(bh__chan *c, bh__msg_type type, int64_t task_id,
              const char *name, const bh__wire_call *call, bh_value *hold) {
  call_args a = {type, task_id, name, call};

  return bh__chan_send(c, put_call, &a, hold, false);
}

typedef struct done_args {
  int64_t task_id;
  const bh__wire_done *d;
} done_args;

static int
put_done(bh__buf *b, struct bh__blobq *q, size_t max_frame,
         const void *arg) {
  const done_args *a = arg;

  return bh__wire_put_task_done(b, q, max_frame, a->task_id, a->d);
}

int
bh__send_task_done(bh__chan *c, int64_t task_id, const bh__wire_done *d,
                   bh_value *hold) {
  done_args a = {task_id, d};

  return bh__chan_send(c, put_done, &a, hold, false);
}

static int
put_die(bh__buf *b, struct bh__blobq *q, size_t max_frame, const void *arg) {
  (void)q;
  (void)arg;
  return bh__wire_put_die(b, max_frame);
}

typedef struct boot_args {
  const char *cls;
  int64_t id;
  const msgpack_object *args, *kwargs, *config;
} boot_args;

static int
put_boot(bh__buf *b, struct bh__blobq *q, size_t max_frame, const void *arg) {
  const boot_args *a = arg;

  (void)q;
  return bh__wire_put_bootstrap(b, max_frame, a->cls, a->id, a->args,
                                a->kwargs, a->config);
}

int
bh__send_bootstrap(bh__chan *c, const char *cls, int64_t id,
                   const msgpack_object *args, const msgpack_object *kwargs,
                   const msgpack_object *config) {
  boot_args a = {cls, id, args, kwargs, config};

  return bh__chan_send(c, put_boot, &a, NULL, false);
}

int
bh__send_die(bh__chan *c) {
  return bh__chan_send(c, put_die, NULL, NULL, false);
}

static int
put_dead_normal(bh__buf *b, struct bh__blobq *q, size_t max_frame,
                const void *arg) {
  (void)q;
  return bh__wire_put_dead_normal(b, max_frame, arg);
}

int
bh__send_dead_normal(bh__chan *c, const char *exit_code) {
  return bh__chan_send(c, put_dead_normal, exit_code, NULL, false);
}

typedef struct killed_args {
  const msgpack_object *exception, *traceback;
} killed_args;

static int
put_dead_killed(bh__buf *b, struct bh__blobq *q, size_t max_frame,
                const void *arg) {
  const killed_args *a = arg;

  (void)q;
  return bh__wire_put_dead_killed(b, max_frame, a->exception, a->traceback);
}

int
bh__send_dead_killed(bh__chan *c, const msgpack_object *exception,
                     const msgpack_object *traceback) {
  killed_args a = {exception, traceback};

  return bh__chan_send(c, put_dead_killed, &a, NULL, false);
}
