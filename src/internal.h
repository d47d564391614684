/* internal.h - declarations shared by the library's modules (bh__ prefix).
 * Nothing here is part of the public API. */
#ifndef BH_INTERNAL_H
#define BH_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "beehive.h"

/* Aborts with file:line for broken invariants (bugs, never outside input). */
#define BH_ASSERT(cond)                                                      \
  do {                                                                       \
    if (!(cond))                                                             \
      bh__assert_fail(#cond, __FILE__, __LINE__);                            \
  } while (0)
void bh__assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));
/* error.c: how a handler's bare return code reads as an exception: the
 * library's own codes by name ("BH_ETIMEDOUT", "timed out"), any other
 * errno as OSError "ENOENT: No such file or directory (errno 2)", anything
 * else as a TaskError that says what a handler returns. Returns owned
 * (NULL: no memory); *type is static. */
char *bh__code_error(int rc, const char **type);
/* error.c: a source path as a traceback shows it: the library's own files
 * relative to its source tree ("src/task.c"), any other as it is. */
const char *bh__src_path(const char *file);

/* callsite.c: where a call through the header's macros came from. */
typedef struct bh__site {
  const char *call; /* "bh_delegate"...; NULL: none recorded */
  const char *file, *func;
  int line;
} bh__site;
/* Takes the site the macros recorded for `call` on this thread, into *out
 * (may be NULL): false when the last call recorded was not `call`. Every
 * take clears the record, so a later call cannot take a stale one. */
bool bh__site_take(const char *call, bh__site *out);

/* alloc.c: every allocation goes through these (bh_set_allocator). */
void *bh__malloc(size_t size);
void *bh__calloc(size_t n, size_t size);
void *bh__realloc(void *p, size_t size);
void bh__free(void *p);
/* bh__free() of a block that may be large (at least hint bytes in use):
 * it may go to the cache of large blocks for reuse. */
void bh__free_large(void *p, size_t hint);
char *bh__strdup(const char *s);
char *bh__strndup(const char *s, size_t n);
/* printf into a new string. Returns owned or NULL. */
char *bh__asprintf(const char *fmt, ...) BH_PRINTF(1, 2);
char *bh__vasprintf(const char *fmt, va_list ap);
/* "." to end a sentence with s, or "" if s ends in a period already (a
 * cause quoted at the end of a message may be a sentence of its own). */
const char *bh__stop(const char *s);
/* The number of blocks allocated and not yet freed through the functions
 * above; tests check it returns to its starting value. */
size_t bh__alloc_live(void);
/* Frees this thread's cache of large blocks (alloc.c); a hive calls it as
 * it ends. */
void bh__alloc_trim(void);
/* The bytes this thread's cache holds now. */
size_t bh__alloc_cached(void);
/* False when the cache is built out (ASan, -DBH_NO_BLOCK_CACHE) or
 * allocator hooks are set. */
bool bh__alloc_caching(void);

/* buf.c: a growable byte buffer, usable as a msgpack write target. */
typedef struct bh__buf {
  char *data;
  size_t len;
  size_t cap;
} bh__buf;
int bh__buf_reserve(bh__buf *b, size_t extra); /* 0 or BH_ENOMEM */
int bh__buf_append(bh__buf *b, const void *p, size_t n);
void bh__buf_free(bh__buf *b);
/* Writes all n bytes to fd, again after EINTR and short writes: 0, or
 * -errno (-EIO if write wrote nothing). Async-signal-safe. */
int bh__write_all(int fd, const void *p, size_t n);
/* msgpack_packer write callback; data is a bh__buf *. */
int bh__buf_write(void *data, const char *buf, size_t len);

/* ------------------------------------------------------------------------
 * wire.c (decoding) and wire_put.c (encoding): frames and messages. A
 * frame is a 4-byte big-endian length, then that many bytes holding
 * exactly one msgpack map (docs/PROTOCOL.md). */
#define BH__FRAME_HDR 4
#define BH__DEFAULT_MAX_FRAME ((size_t)64 << 20)
/* How long a dying bee waits for a child told to die before it kills it
 * (bh_run_opts.shutdown_grace_ms). */
#define BH__SHUTDOWN_GRACE_MS 5000
/* msgpack-c's unpacker keeps at most this many containers open at once (its
 * MSGPACK_EMBED_STACK_SIZE): nothing deeper is ever packed, and a deeper
 * frame can never be decoded. */
#define BH__MAX_DEPTH 32
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
                                    first frame, parent to child */

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
/* task_info and task_done: with a blob queue q (bh__chan_blobs()), bins
 * of at least the blob threshold go as blobs whose descriptors q holds
 * until the channel sends them; with q NULL every bin is inline. A blob
 * ext that names no live blob of this process fails with BH_EINVAL. */
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
/* bh__wire_put_task_info or bh__wire_put_direct_offer. */
typedef int (*bh__wire_put_info_fn)(bh__buf *b, struct bh__blobq *q,
                                    size_t max_frame, int64_t task_id,
                                    const char *name,
                                    const msgpack_object *args,
                                    const msgpack_object *kwargs);
int bh__wire_put_accepted_started(bh__buf *b, size_t max_frame,
                                  int64_t task_id);
int bh__wire_put_die(bh__buf *b, size_t max_frame);
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

/* ------------------------------------------------------------------------
 * blob.c (blob.h): references held on blobs, large bins in sealed memfds. */
typedef struct bh__blob bh__blob;
typedef struct bh__blobs {
  bh__blob **v;
  uint32_t len, cap;
} bh__blobs;
int bh__blobs_add(bh__blobs *h, bh__blob *b); /* takes a new reference */
void bh__blobs_release(bh__blobs *h);         /* drops them all */

/* ------------------------------------------------------------------------
 * value.c internals. */
struct bh_value {
  char *data; /* the encoded bytes */
  size_t size;
  msgpack_zone zone;
  msgpack_object obj;
  bh__blobs blobs; /* the blobs its bins lie in (blob exts resolved) */
  uint32_t holds;  /* owners besides the first (bh__value_hold); each
                    * bh_value_free() drops one. Loop thread only. */
  uint32_t base_off; /* data lies this far into the allocation freed with
                      * the value (a frame's input buffer, chan.c) */
};
/* Adds an owner to v (a channel sending its bytes); returns v. */
bh_value *bh__value_hold(bh_value *v);
/* bh_vpack() that also packs a y# bin of at least the blob threshold lying
 * inside a blob as a LOCAL blob ext, adding a reference to `held`. */
int bh__vpack_blobs(msgpack_packer *pk, const char *fmt, va_list ap,
                    bh__blobs *held);
/* Why packing fmt failed with rc, into buf: the format's fault ("format:
 * unknown letter 'x' at 1"), a value nested too deep, a str or bin too
 * long, no memory. */
void bh__pack_why(const char *fmt, int rc, char *buf, size_t len);
/* bh_value_vpack() of "[" fmt "]", without building that string: fmt's
 * items as one array, however many there are. */
bh_value *bh__value_vpack_seq(int *err, const char *fmt, va_list ap);
/* A value of data[0..size) (from bh__malloc), which it takes over. */
bh_value *bh__value_adopt(char *data, size_t size);
/* The same for data[0..size) lying inside base (from bh__malloc). */
bh_value *bh__value_adopt_at(char *base, char *data, size_t size);
/* The msgpack type name used in messages: "nil", "bool", "int", "float",
 * "str", "bin", "array", "map", "ext". */
const char *bh__type_name(const msgpack_object *o);
/* Finds key `key` (a str) in map `map`; NULL if absent or not a map. */
const msgpack_object *bh__map_get(const msgpack_object *map, const char *key);
/* Packs one object into pk. */
int bh__pack_object(msgpack_packer *pk, const msgpack_object *o);

/* ------------------------------------------------------------------------
 * log.c internals. */
/* Logs `obj` rendered as text at `level`, prefixed by `label`. */
void bh__log_object(bh_logger *lg, bh_log_level level, const char *label,
                    const msgpack_object *obj);

/* ------------------------------------------------------------------------
 * progress.c internals. */
/* Seconds left for total - done units at per_s: 0 once done reaches
 * total, -1 when unknown (total 0, or no rate). */
double bh__progress_eta(uint64_t done, uint64_t total, double per_s);

#endif /* BH_INTERNAL_H */
