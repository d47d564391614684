/* wire.h - frames and messages: wire.c decodes, wire_put.c encodes. The
 * message table (BH__MSG_MAP) is the protocol's (docs/PROTOCOL.md). */
#ifndef BH_WIRE_H
#define BH_WIRE_H

#include "base/base.h"
#include "value/value.h"

/* wire.c (decoding) and wire_put.c (encoding): frames and messages. A
 * frame is a 4-byte big-endian length, then that many bytes holding
 * exactly one msgpack map (docs/PROTOCOL.md). */
#define BH__FRAME_HDR 4
#define BH__DEFAULT_MAX_FRAME ((size_t)64 << 20)
/* How long a dying bee waits for a child told to die before it kills it
 * (bh_run_opts.shutdown_grace_ms). */
#define BH__SHUTDOWN_GRACE_MS 5000
/* A map holding str "type" and str "message" (an exception), and an array
 * of str (a traceback): decoding accepts them, encoding checks with them. */
bool bh__wire_is_exception(const msgpack_object *o);
bool bh__wire_is_str_array(const msgpack_object *o);

/* Every message type: enum suffix, wire string. */
#define BH__MSG_MAP(XX)                                                      \
  XX(NEW_TASK, "new_task")                                                   \
  XX(TASK_ACCEPTED, "task_accepted")                                         \
  XX(TASK_DENIED, "task_denied")                                             \
  XX(TASK_TAKEN, "task_taken")                                               \
  XX(TASK_INFO, "task_info")                                                 \
  XX(TASK_DONE, "task_done")                                                 \
  XX(DIE, "die")                                                             \
  XX(DEAD, "dead")                                                           \
  XX(CANCEL_TASK, "cancel_task") /* beehive's extension: parent to child */ \
  XX(BOOTSTRAP, "bootstrap")     /* beehive's extension: an exec start's  \
                                    first frame, parent to child */        \
  XX(HEARTBEAT, "heartbeat")     /* beehive's extension: both ways, over \
                                    a transport that asks for it (TCP) */

typedef enum bh__msg_type {
#define BH__MSG_ENUM(e, s) BH__MSG_##e,
  BH__MSG_MAP(BH__MSG_ENUM)
#undef BH__MSG_ENUM
      BH__MSG_UNKNOWN
} bh__msg_type;

typedef enum bh__death { BH__DEATH_NORMAL = 0, BH__DEATH_KILLED = 1 } bh__death;

/* A decoded message. Pointers borrow from the zone and frame given to
 * bh__wire_decode(); absent optional fields are NULL. */
typedef struct bh__msg {
  bh__msg_type type;
  const char *type_str; /* the msg_type string as sent (not NUL-terminated) */
  size_t type_len;
  int64_t task_id;      /* valid for every type but die and dead */
  const char *name;     /* task_info, or new_task that carries the info
                           (a direct offer): the task name (not
                           NUL-terminated); NULL for a plain new_task */
  size_t name_len;
  const msgpack_object *args;   /* task_info (direct offer): array */
  const msgpack_object *kwargs; /* task_info (direct offer): map */
  bool started;                 /* task_accepted: it started from the
                                   direct offer's info */
  bh_status status;             /* task_done */
  const msgpack_object *returning_value; /* task_done succeeded (any) */
  const msgpack_object *reason;          /* task_done cancelled: str or nil */
  const msgpack_object *exception;       /* raised / killed: map */
  const msgpack_object *traceback;       /* raised / killed: array of str */
  const msgpack_object *other_details;   /* raised: any */
  bh__death death_type;                  /* dead */
  const msgpack_object *exit_code;       /* dead normal: nil, int or str */
  const char *cls;                       /* bootstrap: the class name */
  size_t cls_len;
  int64_t bee_id;                        /* bootstrap: the worker's id */
  const msgpack_object *config;          /* bootstrap: map (wcfg.h) */
  const msgpack_object *root;            /* the whole map */
  const char *body;                      /* its encoded bytes, borrowed */
  size_t body_len;
  size_t blobs; /* blob exts in it (blob.h), resolved by the channel */
  char **own;   /* a large frame's own buffer (bh__msg_value may take it),
                   or NULL: body lies in the channel's shared buffer */
  bh_value *value; /* the whole message as a value, when the decoder made
                      it (bh__wire_decode_keep): bh__msg_value takes it;
                      else whoever decoded frees it */
} bh__msg;

/* The message's whole map as a value: it takes over a large frame's own
 * buffer (no copy) the first time, else copies the body. */
bh_value *bh__msg_value(const bh__msg *m);

/* The wire string of a message type ("new_task"...); NULL for UNKNOWN. */
const char *bh__msg_type_str(bh__msg_type t);

/* Decodes one frame body (without the length header): exactly one msgpack
 * map whose fields have the reference's types. Objects are allocated in
 * `zone` and strings borrow from `body`. Returns 0, or BH_EPROTO with a
 * message in err ("task_info: field 'name' must be str"). A map with an
 * unknown msg_type decodes with type BH__MSG_UNKNOWN and returns 0. */
int bh__wire_decode(const char *body, size_t len, msgpack_zone *zone,
                    bh__msg *out, char *err, size_t errlen);
/* The same, but a message whose handler keeps it as a value (a succeeded
 * task_done: the result; a direct offer or a task_info: the task's call)
 * is decoded once, into a value of its own (out->value), instead of into
 * the zone and again by bh__msg_value. The caller frees out->value if
 * nobody took it (bh_value_free), whatever the return. */
int bh__wire_decode_keep(const char *body, size_t len, msgpack_zone *zone,
                         bh__msg *out, char *err, size_t errlen);

/* Reads a frame header: the body length it announces. */
size_t bh__wire_frame_len(const unsigned char hdr[BH__FRAME_HDR]);

/* Encoding. Each bh__wire_put_* appends one whole frame (header and body)
 * to `b`. Returns 0, BH_ENOMEM, or BH_EMSGSIZE when the body would exceed
 * max_frame (then b is left as it was). */
typedef struct bh__wire_done {
  bh_status status;
  const msgpack_object *returning_value; /* succeeded: any, NULL is nil */
  const char *reason;                    /* cancelled: or NULL for nil */
  const msgpack_object *exception;       /* raised: map {type, message} */
  const msgpack_object *traceback;       /* raised: array of str */
  const msgpack_object *other_details;   /* raised: any, NULL is nil */
} bh__wire_done;

int bh__wire_put_simple(bh__buf *b, size_t max_frame, bh__msg_type type,
                        int64_t task_id); /* new_task, accepted, denied,
                                             taken, cancel_task */
/* task_info and task_done: with a blob queue q (the channel's), bins
 * of at least the blob threshold go as blobs whose descriptors q holds
 * until the channel sends them, or inline when q says no descriptor can
 * go (q->inline_bins); with q NULL every bin is inline. A blob ext that
 * names no live blob of this process fails with BH_EINVAL. */
struct bh__blobq;
int bh__wire_put_task_info(bh__buf *b, struct bh__blobq *q, size_t max_frame,
                           int64_t task_id, const char *name,
                           const msgpack_object *args,
                           const msgpack_object *kwargs);
int bh__wire_put_task_done(bh__buf *b, struct bh__blobq *q, size_t max_frame,
                           int64_t task_id, const bh__wire_done *d);
/* new_task carrying what task_info would (PROTOCOL.md section 5.1), and
 * the task_accepted {started: true} that answers it when the child took
 * the info and started the task. */
int bh__wire_put_direct_offer(bh__buf *b, struct bh__blobq *q,
                              size_t max_frame, int64_t task_id,
                              const char *name, const msgpack_object *args,
                              const msgpack_object *kwargs);
/* A task's call as the encoder takes it: its objects (args NULL: [],
 * kwargs NULL: {}), or, when raw is not NULL, bytes packed already that go
 * into the frame as they are: args_len bytes of args, then kwargs_len of
 * kwargs (0: {}). Raw bytes hold nothing the objects' walk would treat
 * (blob exts, bins to borrow or to send as blobs) and nest at most
 * BH__MAX_DEPTH - 1 deep: value/call.h decides. */
typedef struct bh__wire_call {
  const msgpack_object *args, *kwargs;
  const char *raw;
  size_t args_len, kwargs_len;
} bh__wire_call;
/* task_info (type BH__MSG_TASK_INFO) or a direct offer (BH__MSG_NEW_TASK)
 * of call, as bh__wire_put_task_info. */
int bh__wire_put_call(bh__buf *b, struct bh__blobq *q, size_t max_frame,
                      bh__msg_type type, int64_t task_id, const char *name,
                      const bh__wire_call *call);
/* bh__wire_put_task_info or bh__wire_put_direct_offer. */
typedef int (*bh__wire_put_info_fn)(bh__buf *b, struct bh__blobq *q,
                                    size_t max_frame, int64_t task_id,
                                    const char *name,
                                    const msgpack_object *args,
                                    const msgpack_object *kwargs);
int bh__wire_put_accepted_started(bh__buf *b, size_t max_frame,
                                  int64_t task_id);
int bh__wire_put_die(bh__buf *b, size_t max_frame);
/* heartbeat: msg_type alone (PROTOCOL.md section 5.7). */
int bh__wire_put_heartbeat(bh__buf *b, size_t max_frame);
/* bootstrap: class name, the worker's id, init args (array or NULL) and
 * kwargs (map or NULL), and its settings (config: a map, wcfg.h). */
int bh__wire_put_bootstrap(bh__buf *b, size_t max_frame, const char *cls,
                           int64_t id, const msgpack_object *args,
                           const msgpack_object *kwargs,
                           const msgpack_object *config);
/* dead normal: exit_code str or NULL (nil). dead killed: exception and
 * traceback maps/arrays. */
int bh__wire_put_dead_normal(bh__buf *b, size_t max_frame,
                             const char *exit_code);
int bh__wire_put_dead_killed(bh__buf *b, size_t max_frame,
                             const msgpack_object *exception,
                             const msgpack_object *traceback);
/* True if a task_info (or a direct offer) naming a task of name_len bytes,
 * with no arguments and any task id, fits in max_frame (0: the default). */
bool bh__wire_name_fits(size_t name_len, size_t max_frame);
/* Returns owned (NULL: no memory): why the last frame this thread refused
 * for its size (BH_EMSGSIZE) did not go, with its size, the limit and the
 * remedies: "The task's result: a frame of 100042 bytes, over the
 * limit of 65536 (max_frame). Raise max_frame..., or send the bytes as a
 * bin (y#)...". `what` starts the sentence. */
char *bh__wire_too_big(const char *what, size_t max_frame);
/* The texts the library makes and sends (exit codes, reasons) are cut to
 * at most this many bytes when their message would not fit whole: so every
 * message the library must send fits in BH_MAX_FRAME_MIN (PROTOCOL.md 3.4). */
#define BH__TEXT_MAX 1024
/* s, or s cut to BH__TEXT_MAX bytes ending in "..." at a UTF-8 character
 * boundary, written into buf. */
const char *bh__text_cut(const char *s, char buf[BH__TEXT_MAX + 1]);

#endif /* BH_WIRE_H */
