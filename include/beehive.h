/* beehive.h - the BeeHive concurrency model in C.
 *
 * A queen bee (the caller's process) spawns worker bees (subprocesses) and
 * delegates named tasks to them over private full-duplex channels. Every bee
 * runs up to `max_concurrency` tasks at once; each task is a fiber that reads
 * top to bottom and may delegate subtasks, sleep, or wait for a descriptor.
 *
 * This is the only supported header. Anything not declared here is internal
 * and may change without notice.
 *
 * Threads: a hive lives on the thread that called bh_run() (or
 * bh_worker_main()). Every function below must be called on that thread;
 * functions taking a bh_task must be called from inside that task's fiber.
 */
#ifndef BEEHIVE_H
#define BEEHIVE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BH_EXTERN __attribute__((visibility("default")))
#define BH_DEPRECATED __attribute__((deprecated))
#define BH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BH_EXTERN
#define BH_DEPRECATED
#define BH_PRINTF(f, a)
#endif

#define BH_VERSION_MAJOR 0
#define BH_VERSION_MINOR 2
#define BH_VERSION_PATCH 0

/* Returns the library version as "MAJOR.MINOR.PATCH". */
BH_EXTERN const char *bh_version(void);

/* Changes to this header, newest first (README.md, "Changes to the public
 * API", says why and what to do):
 * 0.2.0:
 * - bh_class gains `program` (worker programs in any language): a
 *   layout change, so programs built against 0.1 must be rebuilt.
 * - BH_NONE (-1) says "none" in every options struct: 0 is always the
 *   default (see bh_run_opts). Options that refused -1 now take it.
 * - bh_subprocess_workerbee() and bh_spawn_opts are gone: nothing public
 *   could adopt the channel it returned. bh_run() starts every worker.
 * - BH_ECANCELED and BH_ENOENT are deprecated (see bh_errno). */

/* "None" in an options field: no limit for a limit, nothing (off) for a
 * count, a grace or an interval. 0 in an options field is the library's
 * default, whatever the default is (bh_run_opts states the rule). */
#define BH_NONE (-1)

/* ------------------------------------------------------------------------
 * Errors. 0 is success; failures are negative. OS-level codes are -errno, so
 * libuv's UV_E* values pass through unchanged. */
#define BH_ERRNO_MAP(XX)                                                     \
  XX(EINVAL, -22, "invalid argument")                                        \
  XX(ENOMEM, -12, "out of memory")                                           \
  XX(EPIPE, -32, "channel closed")                                           \
  XX(EMSGSIZE, -90, "frame larger than the size limit")                      \
  XX(EPROTO, -71, "protocol error")                                          \
  XX(ETIMEDOUT, -110, "timed out")                                           \
  XX(ERAISED, -30001, "task raised an exception")                            \
  XX(ECANCELLED, -30002, "cancelled")                                        \
  XX(ETYPE, -30003, "value of the wrong type")                               \
  XX(EDONE, -30004, "nothing left to wait for")                              \
  XX(ECLOSED, -30005, "bee is shutting down")                                \
  XX(ESPAWN, -30006, "could not start a worker bee")                         \
  XX(EFORMAT, -30007, "bad format string")                                   \
  XX(ECONNREFUSED, -111, "connection refused")                               \
  XX(EDNS, -30008, "host name not resolved")                                 \
  XX(ETOOBIG, -30009, "response larger than the limit")                      \
  XX(ETLS, -30010, "TLS failure")                                            \
  XX(EHTTP, -30011, "HTTP transfer failed")                                  \
  XX(ES3, -30012, "S3 error")                                                \
  XX(ENOTFOUND, -30013, "no such object")                                    \
  XX(ENOTASK, -30014, "no such task")

typedef enum bh_errno {
#define BH__ERR_ENUM(name, value, text) BH_##name = (value),
  BH_ERRNO_MAP(BH__ERR_ENUM)
#undef BH__ERR_ENUM
  /* Deprecated: the one cancellation code is BH_ECANCELLED, which waits
   * return, handlers return and delegations report alike. */
  BH_ECANCELED BH_DEPRECATED = BH_ECANCELLED,
  /* Deprecated: -ENOENT, an errno like any other ("no such file or
   * directory"). The library's own "no such task" is BH_ENOTASK. */
  BH_ENOENT BH_DEPRECATED = -2
} bh_errno;

/* A static English description of `err` (a BH_E*, UV_E* or -errno code):
 * -ENOENT is "no such file or directory", never a task's name. */
BH_EXTERN const char *bh_strerror(int err);
/* The symbolic name of `err`, e.g. "BH_ETIMEDOUT"; "BH_UNKNOWN" if unknown. */
BH_EXTERN const char *bh_err_name(int err);

/* ------------------------------------------------------------------------
 * Memory. All of the library's allocations go through these hooks.
 * Set them before any other call; NULL restores the libc functions. */
typedef struct bh_allocator {
  void *(*malloc)(size_t size);
  void *(*realloc)(void *ptr, size_t size);
  void (*free)(void *ptr);
} bh_allocator;
BH_EXTERN void bh_set_allocator(const bh_allocator *a);

/* ------------------------------------------------------------------------
 * Values: task arguments, keyword arguments, return values and error details
 * are msgpack values. A format string describes them, each letter taking
 * exactly this C type, packing (the value) and unpacking (where it goes):
 *
 *   letter  packing                       unpacking
 *   n       nothing: packs nil            nothing: checks nil
 *   b       int (a bool is one)           int *
 *   i       int                           int *
 *   I       int64_t                       int64_t *
 *   u       unsigned                      unsigned *
 *   U       uint64_t                      uint64_t *
 *   f       double (a float is one)       double * (from a float or an int)
 *   s       const char * (NULL packs nil) char *buf, size_t bufsize
 *   s#      const char *, size_t          const char **, size_t *
 *   y#      const void *, size_t (a bin)  const void **, size_t *
 *   o       const msgpack_object *        const msgpack_object **
 *   v       const bh_value * (its value)  -
 *   *       -                             nothing: skips one item
 *   [ ... ] an array                      { k:v ... } a map
 *   #X      an array from a C array: X one of i I u U f b s (its element
 *           letter), taking const T *items, size_t n (#s: const char
 *           *const *; #s#: const char *const *, const size_t *lens, size_t
 *           n); after an s, put a blank before it: "s#I" reads as s# then I
 *
 * The arguments after a format are variadic, so C converts nothing: an int
 * given to I packs 4294967293 for -3, a literal 3 given as a size_t reads
 * garbage, and an int * given to I when unpacking gets 8 bytes written
 * into 4. Cast what is not already of the letter's type: (int64_t)n,
 * (size_t)len, 1.0. A debug build checks every call for this ("Calls
 * through macros", at the end of this header).
 *
 * Blanks, commas and colons are ignored. Several items at top level make one
 * array, both ways. s#, y#, o and v with NULL pack nil too. Containers nest at
 * most 32 deep (msgpack-c's decoder limit). A malformed format fails with
 * BH_EFORMAT before anything is packed or stored; after any other packing
 * error the packer may hold a partial value (bh_value_pack() discards it).
 *
 * When unpacking, integers are range-checked for the target; s# (not
 * NUL-terminated), y# (a bin or a str) and o are borrowed; s copies the
 * string NUL-terminated into buf (BH_ETYPE if it does not fit or holds a
 * NUL byte). A NULL target checks the type and stores nothing. In a map
 * pattern each key is an s taking the const char * name to look up; `?`
 * after it marks the key optional (the target is left untouched when
 * missing); keys the pattern does not name are ignored. When packing, a
 * map's keys are any item, usually s. An array pattern matches only an
 * array of exactly as many items. #X (X one of i I u U f b, or s# for
 * borrowed strings) unpacks an array into the caller's C array: it takes
 * T *items, size_t cap, size_t *n (#s#: const char **, size_t *lens,
 * size_t cap, size_t *n); *n gets the count, at most cap, and with n NULL
 * the array must hold exactly cap items ("[]: expected at most 4 items,
 * got 5"; an element's error names it, "[7]: expected int, got str").
 * v and #s are pack-only. Unpacking never allocates: borrowed
 * pointers are valid as long as the object. Messages name the position:
 * "[2][0]", "{opts}[3]", "[]" for an array's length, "value" for the top;
 * a format error reads "format: unknown letter 'x' at 3" (a 0-based
 * offset). */

/* ------------------------------------------------------------------------
 * Large binary values. A bin of at least bh_blob_threshold() bytes in a
 * task's arguments or result does not travel through the channel's byte
 * stream: it goes as a memfd sealed against shrinking, passed with the
 * frame (docs/PROTOCOL.md section 3.3), and the receiver maps it read-only.
 * The receiver's bin points into that mapping, for as long as the object
 * holding it lives. Sending such a bin on (a worker returning or
 * delegating its argument, or any part of it) passes the same memfd: no
 * byte is copied. Any other large bin is copied once, into a new memfd.
 *
 * bh_blob_alloc() gives shared memory to fill in place: a bin anywhere
 * inside it (y#) is sent without any copy. Do not change its bytes after
 * handing them to bh_delegate() or bh_return() until the answer came: the
 * receiver sees the same pages. bh_value_data() of a value holding blobs
 * names them by a process-local id; use bh_value_object() to read them.
 *
 * The threshold is per process; the default is 256 KiB, or the environment
 * variable BH_BLOB_THRESHOLD when set (read at first use); 0 turns blobs
 * off (every bin inline, subject to max_frame). A fork-started worker
 * inherits its queen's setting. These three may be called from any thread.
 */
BH_EXTERN void bh_set_blob_threshold(size_t bytes);
BH_EXTERN size_t bh_blob_threshold(void);
/* size bytes of zeroed shared memory, or NULL (size 0, or out of memory or
 * descriptors). Release with bh_blob_free(p); a value or a message in
 * flight that holds it keeps it alive past that. */
BH_EXTERN void *bh_blob_alloc(size_t size);
BH_EXTERN void bh_blob_free(void *p);

/* An owned, immutable msgpack value. */
typedef struct bh_value bh_value;

/* Packs one value (or several, as an array if fmt has more than one item at
 * top level: use explicit [ ] to be clear). Returns owned, or NULL with
 * *err set when err is not NULL: BH_EFORMAT (a bad format, or an o or v
 * item nesting more than 32 deep), BH_EMSGSIZE (a str or bin of 4 GiB or
 * more) or BH_ENOMEM. */
BH_EXTERN bh_value *bh_value_pack(int *err, const char *fmt, ...);
BH_EXTERN bh_value *bh_value_vpack(int *err, const char *fmt, va_list ap);
/* Returns owned: a deep copy of `obj`; NULL for a NULL obj, one nesting
 * more than 32 deep (it could not be decoded again), or out of memory. */
BH_EXTERN bh_value *bh_value_from_object(const msgpack_object *obj);
/* Returns owned: the value decoded from msgpack bytes (copied). NULL if the
 * bytes are not exactly one msgpack value (or none: data NULL or size 0),
 * or out of memory. */
BH_EXTERN bh_value *bh_value_from_bytes(const void *data, size_t size);
/* Borrows: the decoded object, valid until bh_value_free(). */
BH_EXTERN const msgpack_object *bh_value_object(const bh_value *v);
/* Borrows: the encoded bytes, valid until bh_value_free(). */
BH_EXTERN const char *bh_value_data(const bh_value *v, size_t *size);
BH_EXTERN void bh_value_free(bh_value *v);

/* Packs into an existing msgpack packer. Returns 0, BH_EFORMAT, BH_EMSGSIZE
 * or BH_ENOMEM as bh_value_pack() sets them (BH_ENOMEM: the packer's write
 * failed), or BH_EINVAL for a NULL pk. */
BH_EXTERN int bh_pack(msgpack_packer *pk, const char *fmt, ...);
BH_EXTERN int bh_vpack(msgpack_packer *pk, const char *fmt, va_list ap);

/* Unpacks `obj` by `fmt` into the pointers that follow. Returns 0, BH_ETYPE
 * (a value of the wrong type or shape), BH_EFORMAT (a bad format) or
 * BH_EINVAL (obj NULL: "value: NULL object"). On failure, when errbuf is
 * not NULL, writes a message that names the position and the expected
 * type, e.g. "[1]: expected str, got int" or "{timeout}: missing key". */
BH_EXTERN int bh_unpack(const msgpack_object *obj, char *errbuf,
                        size_t errlen, const char *fmt, ...);
BH_EXTERN int bh_vunpack(const msgpack_object *obj, char *errbuf,
                         size_t errlen, const char *fmt, va_list ap);

/* Writes a short human-readable rendering of `obj` (JSON-like) into buf,
 * truncated to len. Returns the length it would have written. */
BH_EXTERN size_t bh_value_repr(const msgpack_object *obj, char *buf,
                               size_t len);

/* ------------------------------------------------------------------------
 * Logging, in indented blocks like the reference's IndentedLoggerAdapter. */
typedef enum bh_log_level {
  BH_LOG_DEBUG = 10,
  BH_LOG_INFO = 20,
  BH_LOG_WARNING = 30,
  BH_LOG_ERROR = 40
} bh_log_level;

/* Receives one finished line, without indentation or newline; `indent` is
 * the block depth. */
typedef void (*bh_log_fn)(void *udata, bh_log_level level, int indent,
                          const char *line);

typedef struct bh_logger bh_logger;

/* Returns owned: a logger that passes lines at or above `min_level` to `fn`
 * (NULL: stderr, as "LEVEL indent+line"); NULL when out of memory. */
BH_EXTERN bh_logger *bh_logger_new(bh_log_level min_level, bh_log_fn fn,
                                   void *udata);
BH_EXTERN void bh_logger_free(bh_logger *lg);
/* Logs one line (or several, split on '\n'). A NULL logger does nothing. */
BH_EXTERN void bh_log(bh_logger *lg, bh_log_level level, const char *fmt, ...)
    BH_PRINTF(3, 4);
/* Opens an indented block titled `title`: later lines are indented one more
 * level until the matching bh_log_end(). */
BH_EXTERN void bh_log_begin(bh_logger *lg, bh_log_level level,
                            const char *fmt, ...) BH_PRINTF(3, 4);
BH_EXTERN void bh_log_end(bh_logger *lg);
BH_EXTERN int bh_logger_enabled(const bh_logger *lg, bh_log_level level);

/* The reference's logger_debug_msg(): logs a bee message at DEBUG level in
 * blocks "Traceback", "Message", "Exception" and "Other details", recursing
 * into a message nested in other details. Does nothing if lg is NULL. */
BH_EXTERN void bh_logger_debug_msg(bh_logger *lg, const msgpack_object *msg);

/* ------------------------------------------------------------------------
 * Bees, tasks and classes. */
typedef struct bh_bee bh_bee;
typedef struct bh_task bh_task;
typedef struct bh_result bh_result;
typedef struct bh_future bh_future;
typedef struct bh_group bh_group;

/* A task handler. Read the arguments with bh_task_args()/bh_task_unpack(),
 * set the return value with bh_return(), and return:
 *   0             succeeded (the value set, or nil);
 *   BH_ERAISED    raised (what bh_raise() set);
 *   BH_ECANCELLED cancelled (reason from bh_cancel_reason(), if set);
 *   other BH_E*   raised, with the code's name and text ("BH_ETIMEDOUT:
 *                 timed out"), or what bh_task_errmsg() says of the
 *                 call that failed with it;
 *   -errno        raised OSError, "ENOENT: No such file or directory
 *                 (errno 2)": a system call's error passed on;
 *   anything else raised TaskError, saying what a handler returns.
 * A task that has been cancelled (its waits return BH_ECANCELLED) answers
 * cancelled whatever its handler returns afterwards: stopping at a wait's
 * BH_ECANCELLED and returning what was gathered so far cannot turn a
 * cancellation into a success with a partial result. */
typedef int (*bh_task_fn)(bh_task *t);

typedef struct bh_task_def {
  const char *name; /* the task name delegators use */
  bh_task_fn fn;
} bh_task_def;

typedef struct bh_http bh_http; /* a bee's HTTP session (bh_http_request) */
typedef struct bh_s3 bh_s3;     /* an S3 client (bh_s3_get...) */

/* A context_vars set, handed to every task of a bee. */
typedef struct bh_context {
  int async;              /* must be true: the bee runs tasks asynchronously */
  const char *s3_profile; /* the S3 profile asked for, or NULL */
  bh_s3 *s3_client;       /* made from s3_profile in every bee; NULL when
                           * s3_profile is NULL */
  bh_http *http_session;  /* every bee's own; never NULL in a bee */
  void *user;             /* what the class's context_new hook made */
} bh_context;

/* A worker bee written in any language: a program that speaks
 * docs/PROTOCOL.md on the channel it finds on descriptor 3 (section 2.1
 * says all it gets). The queen forks and execs it for each worker,
 * sends it the bootstrap frame (the class's name, the worker's id, its
 * init arguments and settings) and then talks to it as to any worker:
 * its deaths, hangs and protocol errors are handled as a C worker's are.
 * examples/worker.py is one, in Python. All borrowed: they must live as
 * long as the class is used. */
typedef struct bh_program {
  const char *path;         /* the executable (required): a path with a
                             * '/' is taken as it is (relative to the
                             * queen's working directory); a bare name is
                             * looked up in the queen's PATH, as execvp()
                             * does */
  const char *const *argv;  /* its arguments from argv[0] on, NULL-
                             * terminated, at least argv[0]; NULL: {path} */
  const char *const *env;   /* its environment, "NAME=value" strings,
                             * NULL-terminated; NULL: the queen's. Either
                             * way the library adds BH_WORKER=1 and
                             * BH_LAST_WORDS_FD (PROTOCOL.md section 2.1) */
} bh_program;

/* A bee class: its tasks by name, and hooks. Besides its own tasks,
 * every bee answers two built-in tasks (docs/PROTOCOL.md section 11):
 * - "busy_status", no arguments: returns a double, how busy the bee is,
 *   from 0.0 to below 1.0: the tasks it runs besides this one over its
 *   max_concurrency (it does not count itself: 0.0 on an otherwise idle
 *   bee, 0.5 with 2 of 4 slots busy, at most (n - 1) / n with n slots);
 *   always 0.0 with max_concurrency -1 (no limit). It is an ordinary task:
 *   a bee with no free slot denies it like any other.
 * - "__map_chunk__": bh_map_new()'s chunks of k items.
 * Names are looked up in the class, then its base chain, then the
 * built-ins: a class task named "busy_status" (or "__map_chunk__")
 * shadows the built-in one, and delegating it runs the class's.
 *
 * A class with a `program` is external: its bees are that program, never
 * run in this process, whatever the start method. Only its name (required:
 * the bootstrap frame names the class, and one program may serve several)
 * and `tasks` count. With tasks NULL the queen sends any task name and the
 * program answers one it lacks (AttributeError, PROTOCOL.md section 8);
 * with tasks set (fn may be NULL) she refuses other names before sending,
 * as for any class (BH_ENOTASK, "Did you mean"), "busy_status" apart. Its
 * hooks, state_size, stack_size and base are not used, and a queen class
 * cannot be external, nor have a worker_class (bh_run refuses both);
 * bh_map_new's chunks of more than one item need a program that lists
 * "__map_chunk__" (not in the protocol), else chunk 1. A program that
 * cannot be started (missing, not executable) fails bh_run with
 * BH_ESPAWN, a SpawnError naming it and the system's reason. */
typedef struct bh_class bh_class;
struct bh_class {
  const char *name;         /* for logs and tracebacks, and exec starts */
  const bh_class *base;     /* tasks not found here are looked up in base */
  const bh_task_def *tasks; /* terminated by an entry with name NULL */
  size_t state_size;        /* per-bee user state, zeroed, bh_bee_state() */
  /* Called once in the bee's process before any task, with the init args
   * (array) and kwargs (map). Non-zero fails the bee's start. */
  int (*init)(bh_bee *bee, const msgpack_object *args,
              const msgpack_object *kwargs);
  void (*cleanup)(bh_bee *bee); /* called once when the bee's life ends */
  /* Makes context_vars.user in each bee of the class; may be NULL. */
  void *(*context_new)(bh_bee *bee, const char *s3_profile);
  void (*context_free)(bh_bee *bee, void *user);
  /* Queen classes only: the class of her workers. A class with a
   * worker_class is a queen: she spawns `workers` workers (0: 1). */
  const bh_class *worker_class;
  int workers;
  /* The stack of each of its tasks, in bytes: 0 means 256 KiB, else from
   * 64 KiB to 1 GiB, rounded up to whole pages (only the pages a task
   * touches cost memory). bh_run() refuses a size out of range
   * (BH_EINVAL), and an exec-started worker exits with status 2. A task
   * that runs past its stack is reported as "stack overflow in task 'X'
   * (stack N KiB)": in a worker, which then dies of SIGSEGV, as the cause
   * its tasks come back raised with; in the queen's process on stderr,
   * and the process aborts (SIGABRT), since it cannot safely go on. */
  size_t stack_size;
  /* NULL, or the external program its bees are (above). */
  const bh_program *program;
};

/* Borrows: the bee's user state (class state_size bytes), its id, its
 * class, its logger (may be NULL) and its context vars. */
BH_EXTERN void *bh_bee_state(bh_bee *bee);
BH_EXTERN int64_t bh_bee_id(const bh_bee *bee);
BH_EXTERN const bh_class *bh_bee_class(const bh_bee *bee);
BH_EXTERN bh_logger *bh_bee_logger(bh_bee *bee);
BH_EXTERN const bh_context *bh_bee_context(const bh_bee *bee);
/* Number of living children and of tasks this bee now runs. */
BH_EXTERN size_t bh_bee_children(const bh_bee *bee);
BH_EXTERN size_t bh_bee_running(const bh_bee *bee);

/* ------------------------------------------------------------------------
 * Inside a task. All borrowed pointers are valid until the task returns. */
BH_EXTERN bh_bee *bh_task_bee(bh_task *t);
BH_EXTERN const char *bh_task_name(const bh_task *t);
BH_EXTERN int64_t bh_task_id(const bh_task *t);
BH_EXTERN const msgpack_object *bh_task_args(const bh_task *t);   /* array */
BH_EXTERN const msgpack_object *bh_task_kwargs(const bh_task *t); /* map */
BH_EXTERN const bh_context *bh_task_context(const bh_task *t);
/* Unpacks the arguments with a format "[...]" for args, optionally followed
 * by "{...}" for kwargs. On a mismatch the task raises TypeError naming the
 * position ("args[1]: expected str, got int") and BH_ERAISED is returned:
 * return it from the handler. */
BH_EXTERN int bh_task_unpack(bh_task *t, const char *fmt, ...);

/* Sets the task's return value (one value). Returns 0, or BH_EFORMAT,
 * BH_EMSGSIZE or BH_ENOMEM as bh_value_pack() sets them; on failure
 * bh_task_errmsg() says why ("bh_return: format \"[x]\": unknown letter
 * 'x' at 1"), and returning the code raises ValueError (MemoryError for
 * BH_ENOMEM) with it, from the caller's line. */
BH_EXTERN int bh_return(bh_task *t, const char *fmt, ...);
/* Sets the return value to obj (copied, unless it is part of the task's
 * own arguments, which live as long as the task). Returns 0, BH_ENOMEM,
 * or BH_EINVAL for a NULL obj (bh_return(t, "n") returns nil). */
BH_EXTERN int bh_return_object(bh_task *t, const msgpack_object *obj);

/* Raises an exception of type `type` (e.g. "ValueError") with a printf
 * message; the traceback records file:line and function. Returns BH_ERAISED,
 * to be returned from the handler. */
#define bh_raise(t, type, ...)                                               \
  bh_raise_at((t), __FILE__, __LINE__, __func__, (type), __VA_ARGS__)
BH_EXTERN int bh_raise_at(bh_task *t, const char *file, int line,
                          const char *func, const char *type,
                          const char *fmt, ...) BH_PRINTF(6, 7);
/* Raises a failed delegated result again, so that its chain reaches the
 * caller: the exception has r's own type and message (bh_result_errtype()
 * and bh_result_errmsg()), r's traceback lines follow this call's file
 * and line, and r's other_details (with the child's message as `cause`)
 * become the task's. A child's raise, cancellation or death comes as a
 * "RuntimeError" ("Delegated task raised an exception." ...,
 * docs/PROTOCOL.md section 10); a delegation cancelled on this side (a
 * deadline, bh_future_cancel(), every child denying) as a
 * "CancelledError" with the reason; a NULL r (a bh_delegate() that
 * failed before it started) as a "RuntimeError". Returns BH_ERAISED.
 * Borrows r. */
#define bh_raise_result(t, r)                                                \
  bh_raise_result_at((t), __FILE__, __LINE__, __func__, (r))
BH_EXTERN int bh_raise_result_at(bh_task *t, const char *file, int line,
                                 const char *func, const bh_result *r);
/* Sets the reason that goes with returning BH_ECANCELLED. */
BH_EXTERN void bh_cancel_reason(bh_task *t, const char *fmt, ...)
    BH_PRINTF(2, 3);

/* ------------------------------------------------------------------------
 * Waiting, from inside a task's fiber. Deadlines are absolute milliseconds
 * of bh_now(); -1 waits forever. A wait returns BH_ECANCELLED when the task
 * is cancelled (at once if it was before the call), BH_ETIMEDOUT when the
 * deadline passes; a wait with a deadline, the first in its bee, makes
 * the bee's timerfd and may fail as that does (-errno, BH_ENOMEM). */
BH_EXTERN int64_t bh_now(void);
/* Sleeps at least ms milliseconds from now (measured in nanoseconds, not
 * to the next millisecond tick), and wakes on the first loop turn after.
 * Returns 0 once slept (ms 0 or less: at the next turn), or BH_ECANCELLED
 * (or the timerfd's error, above). */
BH_EXTERN int bh_sleep(bh_task *t, int64_t ms);
enum { BH_READABLE = 1, BH_WRITABLE = 2 };
/* Waits until fd is ready for `events`: BH_READABLE, BH_WRITABLE or both.
 * Returns the ready events (> 0), or BH_ETIMEDOUT, BH_ECANCELLED,
 * BH_EINVAL for other events (bh_task_errmsg() says so), BH_ENOMEM, or
 * what libuv says of the descriptor: UV_EBADF (not open), UV_EPERM (one
 * epoll cannot watch, such as a regular file), UV_EEXIST (another task of
 * the bee already waits on it, or the bee itself: one waiter per
 * descriptor), or an error the poll reports while waiting. */
BH_EXTERN int bh_wait_fd(bh_task *t, int fd, int events, int64_t deadline);

/* ------------------------------------------------------------------------
 * Network and file I/O, from inside a task's fiber: the task waits while
 * the bee's other tasks run. Every call names what failed: on an error it
 * returns a BH_E* code and bh_task_errmsg() says what and where; a
 * handler that returns that code as it is raises HTTPError, S3Error or
 * OSError with that message. Cancelling the task (a deadline,
 * cancel_task) aborts its transfer at once: the call returns
 * BH_ECANCELLED. */

/* The message of this task's last failed I/O call, e.g. "connection
 * refused (GET http://127.0.0.1:9/x): Failed to connect ...", or NULL
 * when its last I/O call succeeded; also of a bh_return(),
 * bh_group_delegate(), bh_map_new() or bh_wait_fd() that refused its
 * call. Borrowed until the next such call. */
BH_EXTERN const char *bh_task_errmsg(const bh_task *t);

/* An HTTP request through the bee's session (libcurl's multi interface
 * on the bee's loop: connections and DNS answers are reused; HTTP/2 where
 * a TLS server offers it). */
typedef struct bh_http_req {
  const char *method;          /* NULL: GET, or POST when body is set */
  const char *url;             /* http:// or https:// */
  const char *const *headers;  /* "Name: value" strings, NULL-terminated;
                                * or NULL */
  const void *body;            /* sent as is; or NULL */
  size_t body_len;
  int64_t timeout_ms;          /* the whole transfer; 0 or BH_NONE: no
                                * limit but the task's own deadline */
  size_t max_response;         /* body bytes at most (BH_ETOOBIG beyond);
                                * 0: 64 MiB */
} bh_http_req;
typedef struct bh_http_resp bh_http_resp;

/* Makes the request and waits for the whole response. Returns 0 with
 * *out (owned: bh_http_resp_free) whatever the HTTP status, or
 * BH_EINVAL (a NULL t, req or out; no URL, a malformed one, a scheme
 * other than http:// and https://), BH_ECONNREFUSED, BH_EDNS,
 * BH_ETIMEDOUT, BH_ETOOBIG, BH_ETLS, BH_EHTTP (any other transfer
 * failure), BH_ENOMEM or BH_ECANCELLED, with *out NULL. */
BH_EXTERN int bh_http_request(bh_task *t, const bh_http_req *req,
                              bh_http_resp **out);
/* bh_http_request() of a GET. */
BH_EXTERN int bh_http_get(bh_task *t, const char *url, bh_http_resp **out);
BH_EXTERN long bh_http_resp_status(const bh_http_resp *r);
/* 10, 11, 20 or 30: the HTTP version the response came in. */
BH_EXTERN int bh_http_resp_version(const bh_http_resp *r);
/* Borrows: the last header named `name` (any case), or NULL. */
BH_EXTERN const char *bh_http_resp_header(const bh_http_resp *r,
                                          const char *name);
/* The number of headers, and the i-th (borrowed): 0, or BH_EINVAL with
 * *name and *value untouched when i is not below the number. */
BH_EXTERN size_t bh_http_resp_n_headers(const bh_http_resp *r);
BH_EXTERN int bh_http_resp_header_at(const bh_http_resp *r, size_t i,
                                     const char **name, const char **value);
/* Borrows: the body, NUL-terminated after its *len bytes. A body of at
 * least bh_blob_threshold() bytes whose length was announced is received
 * into shared memory: returning it (bh_return "y#") copies nothing. */
BH_EXTERN const void *bh_http_resp_body(const bh_http_resp *r, size_t *len);
BH_EXTERN void bh_http_resp_free(bh_http_resp *r);
/* Connections the bee's session has opened so far. */
BH_EXTERN uint64_t bh_http_connects(const bh_http *s);

/* Reads the file at path from byte offset: max bytes at most, or (max 0)
 * the whole rest of it (at most 1 GiB). The read runs on libuv's thread
 * pool, so a cold page cache or a slow disk stalls a pool thread, never
 * the bee: its other tasks run meanwhile. On 0, *data (NUL-terminated
 * after its *len bytes; free with bh_file_free) may be shorter than asked
 * at the end of the file. Errors, with *data NULL: BH_EINVAL (a NULL t,
 * path, data or len, or a negative offset), -errno (the message names the
 * path and the step: "No such file or directory: /x (open)"), BH_ENOMEM,
 * BH_ECANCELLED. */
BH_EXTERN int bh_file_read(bh_task *t, const char *path, int64_t offset,
                           size_t max, void **data, size_t *len);
BH_EXTERN void bh_file_free(void *data);

/* S3 through the bee's client (context_vars.s3_client, made from
 * bh_run_opts.s3_profile), on s3://bucket/key addresses as the original's
 * helpers take them. BH_EINVAL, with a message, for a NULL t or out, a
 * bee without a client ("s3://b/k: this bee has no S3 client ..."), or an
 * address that is not s3://bucket/key ("not an s3:// address: ..."; a
 * listing takes s3://bucket/ with no key).
 * Requests are signed with SigV4 and go through the bee's HTTP session.
 * Besides the HTTP errors of bh_http_request(): BH_ENOTFOUND for a
 * missing key or bucket (HTTP 404), BH_ES3 for any other S3 error; the
 * message (bh_task_errmsg) starts with S3's code and says its message,
 * the method, the address, the bucket and the key: "NoSuchKey: The
 * specified key does not exist. (GET s3://b/k, bucket 'b', key 'k', HTTP
 * 404)". A handler that passes the code on raises S3Error with it. */

/* Gets the object, whole (first -1) or bytes first..last (last -1: to
 * the end), into *out (owned): body, status (200 or 206) and headers
 * (ETag, Content-Length...). At most 1 GiB; a body of at least
 * bh_blob_threshold() bytes is received into shared memory, so that
 * returning it from a task copies nothing. */
BH_EXTERN int bh_s3_get(bh_task *t, const char *url, int64_t first,
                        int64_t last, bh_http_resp **out);
/* The object's headers, without its body. */
BH_EXTERN int bh_s3_head(bh_task *t, const char *url, bh_http_resp **out);
/* Writes len bytes as the object (content_type NULL: S3's default). */
BH_EXTERN int bh_s3_put(bh_task *t, const char *url, const void *data,
                        size_t len, const char *content_type);
/* Deletes the object (S3 says yes for a key that is not there). */
BH_EXTERN int bh_s3_delete(bh_task *t, const char *url);
/* ListObjectsV2 of the keys under s3://bucket/prefix: one page of at most
 * max_keys keys (0: S3's 1,000), from a continuation token (NULL: the
 * first page; then bh_s3_listing_next() of the page before). *out owned. */
typedef struct bh_s3_listing bh_s3_listing;
BH_EXTERN int bh_s3_list(bh_task *t, const char *url, const char *token,
                         int max_keys, bh_s3_listing **out);
BH_EXTERN size_t bh_s3_listing_count(const bh_s3_listing *l);
/* Borrows: key i, and its size in *size (may be NULL). */
BH_EXTERN const char *bh_s3_listing_key(const bh_s3_listing *l, size_t i,
                                     int64_t *size);
/* Borrows: the token of the next page, NULL on the last page. */
BH_EXTERN const char *bh_s3_listing_next(const bh_s3_listing *l);
BH_EXTERN void bh_s3_listing_free(bh_s3_listing *l);

/* ------------------------------------------------------------------------
 * Delegation. `fmt` describes the arguments: "[...]" for args, optionally
 * followed by "{...}" for kwargs; NULL or "" means no arguments. */

/* Delegates task `name` to a child and waits for it. On return *out holds
 * the result (returns owned; free with bh_result_free) and the return value
 * is 0 if it succeeded, BH_ERAISED or BH_ECANCELLED otherwise. BH_ENOMEM,
 * and BH_ECANCELLED when the calling task was cancelled while it waited,
 * return with *out NULL. Refused before anything is sent, with *out a
 * raised result that says why, from the caller's line: BH_EINVAL for a
 * NULL t or name or an empty name (ValueError "bh_delegate: the task name
 * is empty"), BH_EFORMAT for a format it cannot pack (ValueError
 * "bh_delegate: format \"[x]\": unknown letter 'x' at 1"), BH_EMSGSIZE
 * for a str or bin of 4 GiB or more, and in a queen, whose workers' class
 * is known, BH_ENOTASK for a name that class does not have (AttributeError
 * "Bee class 'W' has no task 'ecko'. Did you mean 'echo'?"). A NULL out
 * returns BH_EINVAL. */
BH_EXTERN int bh_delegate(bh_task *t, bh_result **out, const char *name,
                          const char *fmt, ...);
/* The same with pre-packed args (array or NULL) and kwargs (map or NULL);
 * borrows both. Refuses as bh_delegate() does, but for the format. */
BH_EXTERN int bh_delegate_value(bh_task *t, bh_result **out, const char *name,
                                const msgpack_object *args,
                                const msgpack_object *kwargs);

/* A group collects futures and hands them back as they complete. No fiber
 * is made per delegation, so a group can hold millions. Returns owned, or
 * NULL (t NULL, or out of memory). */
BH_EXTERN bh_group *bh_group_new(bh_task *t);
/* Frees the group; pending futures in it are cancelled (their delegations
 * are forgotten and their answers dropped) and freed. */
BH_EXTERN void bh_group_free(bh_group *g);
/* Starts a delegation in the group, without waiting. Returns 0, or an
 * error with nothing started and *out untouched:
 *   BH_EINVAL   g NULL, or the name NULL or empty;
 *   BH_ENOTASK  in a queen, a name her workers' class does not have
 *               (AttributeError "Bee class 'W' has no task 'ecko'. Did
 *               you mean 'echo'?");
 *   BH_EFORMAT, BH_EMSGSIZE  the arguments cannot be packed (ValueError);
 *   BH_ENOMEM   out of memory.
 * But for g NULL and BH_ENOMEM, bh_task_errmsg() and the bee's logger
 * (ERROR) get why, e.g. "bh_group_delegate: the task name is empty", and
 * returning the code raises it from the caller's line. What happens to
 * the task itself (raised, cancelled, its worker's death) is the
 * future's result, never this return. The future carries `udata`. If out
 * is not NULL, *out borrows the future until it is freed: the group still
 * hands it out from bh_group_next() unless it is freed or waited for
 * first. */
BH_EXTERN int bh_group_delegate(bh_group *g, bh_future **out, void *udata,
                                const char *name, const char *fmt, ...);
/* The same with pre-packed args (array or NULL) and kwargs (map or NULL,
 * both borrowed): the same errors but the format's. */
BH_EXTERN int bh_group_delegate_value(bh_group *g, bh_future **out,
                                      void *udata, const char *name,
                                      const msgpack_object *args,
                                      const msgpack_object *kwargs);
/* Starts local concurrent work: `fn(t2, arg)` runs in a new fiber of the same
 * bee (t2 is a local task sharing the bee), from the end of this loop
 * turn. Its return code and bh_return() value make the future's result as
 * for a task. Returns 0, or BH_EINVAL for a NULL g or fn, BH_ENOMEM, with
 * nothing started and *out untouched. */
typedef int (*bh_local_fn)(bh_task *t, void *arg);
BH_EXTERN int bh_group_go(bh_group *g, bh_future **out, void *udata,
                          bh_local_fn fn, void *arg);
/* Options of the delegations a group starts from now on; o NULL restores
 * the defaults. The one options struct that is not read by the BH_NONE
 * rule (bh_run_opts): it overrides the hive's settings, so 0 is a value
 * of its own ("none", as it always was) and a negative field, BH_NONE
 * included, keeps the hive's setting (bh_run_opts.retries /
 * task_timeout_ms). */
typedef struct bh_deleg_opts {
  int retries;        /* re-offers to another worker when the one running
                       * the task dies; 0: none (the reference's way);
                       * negative: the hive's */
  int64_t timeout_ms; /* the answer comes by then, cancelled if need be;
                       * 0: no deadline; negative: the hive's */
} bh_deleg_opts;
BH_EXTERN void bh_group_set_opts(bh_group *g, const bh_deleg_opts *o);
/* Cancels f: it completes now, cancelled ("Cancelled by the delegating
 * bee."); a task running on a child gets cancel_task, and a child that
 * does not answer within the grace period is killed. A local future's
 * fiber wakes with BH_ECANCELLED. Returns 0, BH_EDONE if f was done, or
 * BH_EINVAL if f is NULL. */
BH_EXTERN int bh_future_cancel(bh_future *f);
/* Waits for the next completed future in the group, in completion order
 * (as_completed). Returns 0 with *out owned by the caller (free with
 * bh_future_free), BH_EDONE when nothing is pending, a wait error
 * (BH_ETIMEDOUT, BH_ECANCELLED) with *out NULL, or BH_EINVAL if g or out
 * is NULL. */
BH_EXTERN int bh_group_next(bh_group *g, bh_future **out, int64_t deadline);
/* Number of futures started and not yet returned by bh_group_next(), nor
 * waited for or freed by the caller; 0 for NULL. */
BH_EXTERN size_t bh_group_pending(const bh_group *g);
/* Waits for one given future of the group. From the call on, the future
 * is the caller's to free and bh_group_next() will not return it. Returns
 * 0 once done (whatever its result), a wait error (BH_ETIMEDOUT,
 * BH_ECANCELLED), or BH_EINVAL if f is NULL. */
BH_EXTERN int bh_future_wait(bh_future *f, int64_t deadline);
BH_EXTERN int bh_future_done(const bh_future *f); /* 0 for NULL */
/* Borrows: the result, valid until bh_future_free(); NULL if not done (or
 * f is NULL). */
BH_EXTERN const bh_result *bh_future_result(const bh_future *f);
BH_EXTERN void *bh_future_udata(const bh_future *f);
/* Frees f, at any time: a future not done is cancelled and forgotten (as
 * bh_group_free() does with its pending ones: its answer is dropped), and
 * a group's future leaves its group, which no longer counts it nor hands
 * it out. NULL does nothing. Not while a bh_future_wait() waits on it. */
BH_EXTERN void bh_future_free(bh_future *f);

/* ------------------------------------------------------------------------
 * Results, as the delegating bee records them, the way the original
 * BeeHive does (docs/PROTOCOL.md section 10): a child's succeeded answer
 * is its value; its raised or cancelled answer, or its death, is recorded
 * raised with a RuntimeError saying which, the child's message as the
 * cause; a delegation nobody took, or cancelled here, is cancelled. The
 * accessors take NULL (a failed bh_delegate's *out): status BH_RAISED,
 * child id -1, nil value, NULL strings and message, an empty format, and
 * bh_result_unpack() returns BH_EINVAL. */
typedef enum bh_status {
  BH_SUCCEEDED = 0,
  BH_RAISED = 1,
  BH_CANCELLED = 2
} bh_status;

BH_EXTERN bh_status bh_result_status(const bh_result *r);
/* The id of the child that ran the task, -1 if none did. */
BH_EXTERN int64_t bh_result_child_id(const bh_result *r);
/* Borrows: the returned value (nil unless succeeded). */
BH_EXTERN const msgpack_object *bh_result_value(const bh_result *r);
/* Unpacks the returned value by fmt, as bh_unpack() (its codes; r NULL:
 * BH_EINVAL). */
BH_EXTERN int bh_result_unpack(const bh_result *r, char *errbuf,
                               size_t errlen, const char *fmt, ...);
/* Borrows: the exception type and message of the top of the chain (NULL
 * when succeeded), and the reason when cancelled (NULL otherwise). */
BH_EXTERN const char *bh_result_errtype(const bh_result *r);
BH_EXTERN const char *bh_result_errmsg(const bh_result *r);
BH_EXTERN const char *bh_result_reason(const bh_result *r);
/* For bh_run's result: the signal (SIGINT, SIGTERM) whose arrival
 * cancelled the run, 0 when no signal did. A program that ends on it
 * exits 128 + that number, as a shell expects of an interrupted job. */
BH_EXTERN int bh_result_signal(const bh_result *r);
/* Borrows: the innermost cause's exception type and message: what the bee
 * that first failed raised. */
BH_EXTERN const char *bh_result_root_errtype(const bh_result *r);
BH_EXTERN const char *bh_result_root_errmsg(const bh_result *r);
/* Writes the whole chain, one cause per line, with every traceback line,
 * into buf (truncated to len). Returns the length it would have written. */
BH_EXTERN size_t bh_result_format(const bh_result *r, char *buf, size_t len);
/* Borrows: the whole message as a msgpack map with the reference's keys
 * (status, returning_value, exception, traceback, other_details, reason). */
BH_EXTERN const msgpack_object *bh_result_message(const bh_result *r);
BH_EXTERN void bh_result_free(bh_result *r);

/* ------------------------------------------------------------------------
 * Map: task `name` over many items, as concurrent.futures'
 * Executor.map(fn, items, chunksize=k). Each item is one call of the
 * worker's handler with the item as its only argument ([item]: a handler
 * written for bh_delegate(t, &r, name, "[I]", x) serves a map of int64s
 * as it is). At most `window` task messages are in flight; with chunk k
 * each message carries k items, and the worker calls the handler k times
 * in one task, answering every item's outcome: for short tasks the round
 * trip is paid once per k items.
 *
 * An item's failure is its own: the other items run (the rest of its
 * chunk too), and it comes back raised with its chain, as a delegation's
 * failure does ("Delegated task raised an exception.", root cause the
 * handler's exception). A chunk that fails whole (its worker died, its
 * deadline passed, no such task) fails each of its items with its result.
 * Freeing the map cancels what is in flight: each chunk's worker gets
 * cancel_task and stops between items. All calls from inside task t. */
typedef struct bh_map bh_map;
enum { BH_MAP_ORDERED = 0, BH_MAP_AS_COMPLETED = 1 };
#define BH_MAP_CHUNK_MAX (1 << 20)

/* Each field's range is in its comment; bh_map_new() refuses anything
 * outside (BH_EINVAL, bh_task_errmsg() naming it). */
typedef struct bh_map_opts {
  int chunk;   /* items per task message: 0 or BH_NONE (1: no chunks) or
                * 1 to BH_MAP_CHUNK_MAX */
  int window;  /* task messages started and not wholly handed back: 0 (as
                * many as hold 4,096 items, at least 2), BH_NONE (no
                * limit: every one at once) or at least 1. The next one
                * starts when bh_map_next() moves past one */
  int order;   /* BH_MAP_ORDERED (input order; the default) or
                * BH_MAP_AS_COMPLETED (chunks as they end, items in order
                * within one) */
  const bh_deleg_opts *deleg; /* retries and deadline of each task
                               * message (a retry runs its whole chunk
                               * again); NULL: the hive's defaults */
} bh_map_opts;

/* One item's outcome, borrowed until the next bh_map_next() or
 * bh_map_free(). */
typedef struct bh_map_item {
  size_t index;                /* its position among the items */
  bh_status status;
  const msgpack_object *value; /* what the handler returned (nil unless
                                * succeeded) */
  const bh_result *result;     /* NULL when succeeded; else why, with its
                                * chain (bh_raise_result() passes it on) */
} bh_map_item;

/* Starts a map of task `name` over the items fmt packs, which must make
 * one array: "#I" with const int64_t *, size_t n packs a C array, "o" an
 * array object (copied). o NULL: the defaults. The first window of task
 * messages starts at once. Returns 0 with *out (owned: bh_map_free), or
 * BH_EINVAL, BH_EFORMAT, BH_EMSGSIZE (a str or bin of 4 GiB or more) or
 * BH_ENOMEM with *out NULL and bh_task_errmsg(t) saying why ("bh_map_new:
 * chunk -2 is out of range: it must be -1 or 0 (default 1) or 1 to
 * 1048576"; returning the code from the handler raises ValueError with
 * it); BH_EINVAL alone for a NULL t or out. */
BH_EXTERN int bh_map_new(bh_task *t, bh_map **out, const char *name,
                         const bh_map_opts *o, const char *fmt, ...);
/* Waits for the next item's outcome (the next in input order, or in the
 * order chunks end). Returns 0 with *out filled, BH_EDONE when every item
 * has been handed back, or a wait error (BH_ETIMEDOUT: call again;
 * BH_ECANCELLED: the task is cancelled), BH_EINVAL for NULL. */
BH_EXTERN int bh_map_next(bh_map *m, bh_map_item *out, int64_t deadline);
/* Frees the map, cancelling the task messages in flight. NULL does
 * nothing. */
BH_EXTERN void bh_map_free(bh_map *m);

/* ------------------------------------------------------------------------
 * Worker subprocesses and the hive. */
typedef enum bh_start {
  BH_START_FORK = 0, /* fork(): fast; the default */
  BH_START_EXEC = 1  /* fork()+exec of /proc/self/exe in worker mode: for
                      * programs that hold threads; main() must call
                      * bh_worker_main() first */
} bh_start; /* an external class (bh_class.program) always execs its
             * program */

/* The smallest max_frame (bytes): the least that carries every message
 * the library itself must be able to send (docs/PROTOCOL.md section 3.4). */
#define BH_MAX_FRAME_MIN 4096

/* Exec-started workers: call first thing in main(). When this process was
 * started as a worker, runs the worker bee whose class is named in `classes`
 * (NULL-terminated) and exits, never returning: status 0 after its `dead`
 * (a normal end), 1 when its class's init failed, 2 on a bootstrap frame
 * it cannot use (no frame, an unknown class, a setting out of range: the
 * reason on stderr), 3 when its parent's channel broke
 * (docs/PROTOCOL.md section 9; its running tasks are cancelled first and
 * run to their end, their waits returning BH_ECANCELLED, so that their
 * cleanup runs). Otherwise returns 0 at once.
 * A process whose environment has BH_JOIN=host:port (and BH_KEY_FILE, the
 * hive's key file) joins that queen over TCP instead, as bh_join() with
 * the default timeout, and exits with its status. */
BH_EXTERN int bh_worker_main(int argc, char **argv,
                             const bh_class *const *classes);

/* ------------------------------------------------------------------------
 * Stats, progress and the timeline. A bee counts what happens to its
 * delegations and children; a bh_trace records one span per delegated task
 * (and per span a task marks on its own bee) for a timeline picture. */
typedef struct bh_child_stats {
  int64_t id;          /* the child's id */
  pid_t pid;           /* 0 for an in-process or remote child */
  const char *host;    /* a remote child's address ("10.1.2.2:40312"),
                        * NULL for a local one; borrowed like cause */
  int alive;
  uint64_t done;       /* tasks it answered succeeded */
  uint64_t raised;     /* ... raised */
  uint64_t cancelled;  /* ... cancelled */
  uint64_t lost;       /* tasks it held when it died */
  uint64_t inflight;   /* offers and tasks on it now */
  uint64_t deaths;     /* 1 when it ended other than by a normal death */
  const char *cause;   /* why it ended, or NULL; borrowed like children
                        * below: copy it to keep it past the bee's end */
} bh_child_stats;

typedef struct bh_stats {
  uint64_t delegated;  /* delegations started */
  uint64_t succeeded, raised, cancelled; /* their answers so far */
  uint64_t inflight;   /* started and not answered */
  uint64_t backlog;    /* waiting for a child with a free slot */
  uint64_t retried;    /* re-offered after their child died */
  uint64_t deaths;     /* children that ended abnormally */
  uint64_t spawned;    /* children started */
  size_t alive;        /* living children */
  size_t n_children;   /* entries in children: the last 32 dead ones
                        * (oldest first), then the living; older dead
                        * children count in deaths and spawned only */
  const bh_child_stats *children; /* borrowed: valid until the next call */
  /* Time and pace, for a progress line. The units are the bee's answered
   * delegations (succeeded + raised + cancelled), or once one of its
   * tasks has called bh_progress_add(), the units it counts (rows,
   * files...). */
  double elapsed_s;    /* seconds since the bee started (bh_run's queen:
                        * since bh_run started her) */
  uint64_t done;       /* units done so far */
  uint64_t total;      /* units expected (bh_progress_total()); 0 unknown */
  double per_s;        /* done / elapsed_s: the mean rate so far; 0 at 0 s */
  double eta_s;        /* seconds left at that rate, (total - done) /
                        * per_s; 0 once done reaches total; -1 unknown
                        * (total 0, or nothing done yet) */
} bh_stats;

/* Fills *out with the bee's counts. The children array stays valid until
 * the next bh_bee_stats() on this bee or the bee's end. Returns 0, or
 * BH_ENOMEM (no room for the children array) with *out untouched. */
BH_EXTERN int bh_bee_stats(bh_bee *bee, bh_stats *out);

/* Called on the queen's loop every interval while her task runs, and once
 * more with final = 1 when it has ended. s holds the queen's counts, with
 * the elapsed time, the rate and the ETA (bh_progress_format_stats()
 * draws them as a line). */
typedef void (*bh_progress_fn)(void *udata, const bh_stats *s, int final);

/* Progress in units of the task's choosing, as tqdm counts them: total is
 * how many the bee's work will do (0: unknown), and bh_progress_add()
 * counts n more done. Until a task of the bee calls bh_progress_add(),
 * bh_stats.done counts the bee's answered delegations. They set the
 * task's own bee: call them from the queen's task for bh_run's progress
 * hook. A NULL t does nothing. */
BH_EXTERN void bh_progress_total(bh_task *t, uint64_t total);
BH_EXTERN void bh_progress_add(bh_task *t, uint64_t n);

typedef struct bh_trace bh_trace;

typedef struct bh_span {
  int64_t lane;        /* the child's id, or -1 for the recording bee */
  const char *name;    /* the task name; borrowed from the trace */
  int64_t task_id;
  int64_t made_us;     /* delegated (µs since the trace started) */
  int64_t start_us;    /* handed to the child (task_info sent) */
  int64_t end_us;      /* answered */
  bh_status status;
} bh_span;

/* Returns owned: an empty trace, or NULL when out of memory. Give it to
 * bh_run_opts.trace (or bh_bee_trace()) and read it after. */
BH_EXTERN bh_trace *bh_trace_new(void);
BH_EXTERN void bh_trace_free(bh_trace *tr);
/* Borrows: the spans recorded so far, in the order they were recorded
 * (delegations when answered, own spans when begun). */
BH_EXTERN size_t bh_trace_spans(const bh_trace *tr, const bh_span **out);
/* The lanes seen: for lane i (a child id, or -1), its label, e.g.
 * "worker 3 (pid 1234)" or "queen 10000". Returns NULL past the end. */
BH_EXTERN const char *bh_trace_lane_label(const bh_trace *tr, int64_t lane);
/* Makes the bee record into tr from now on (NULL stops). Borrows tr. */
BH_EXTERN void bh_bee_trace(bh_bee *bee, bh_trace *tr);
/* Marks a span of the task's own work on its bee's lane (-1), e.g. a batch
 * prediction in the queen. Returns a handle for bh_span_end(), or -1 when
 * the bee records no trace (or out of memory), which bh_span_end()
 * ignores. */
BH_EXTERN int64_t bh_span_begin(bh_task *t, const char *name);
BH_EXTERN void bh_span_end(bh_task *t, int64_t span, bh_status status);
/* Writes the trace as Chrome trace-event JSON (Perfetto, chrome://tracing
 * open it) or as an SVG timeline: a lane per bee, a bar per task coloured
 * by status. Return 0, -errno (the file: -ENOENT, -EACCES...; -EIO for a
 * failed write), BH_EINVAL (tr or path NULL) or BH_ENOMEM. */
BH_EXTERN int bh_trace_write_json(const bh_trace *tr, const char *path);
BH_EXTERN int bh_trace_write_svg(const bh_trace *tr, const char *path);
/* Renders a progress line into buf (truncated to len, NUL-terminated when
 * len > 0) and returns the length it would have written, e.g.
 * "[#####---------------] 1234/100000 rows  5,432 rows/s  ETA 0:18  workers 2"
 * for done 1234, total 100000, per_s 5432.0, workers 2, unit "rows" (NULL:
 * "tasks"). total 0 means unknown: no bar and no ETA. For a
 * bh_progress_fn that redraws one terminal line. */
BH_EXTERN size_t bh_progress_format(char *buf, size_t len, uint64_t done,
                                    uint64_t total, double per_s,
                                    size_t workers, const char *unit);
/* The same line from a progress hook's stats: its done, total, per_s,
 * elapsed_s, eta_s and living workers, e.g.
 * "[#####---------------] 1234/100000 rows  5,432 rows/s  elapsed 0:00
 * ETA 0:19  workers 2" (one line). Times are m:ss, or h:mm:ss from an
 * hour; an ETA beyond 99 hours, or unknown, is "--:--". */
BH_EXTERN size_t bh_progress_format_stats(char *buf, size_t len,
                                          const bh_stats *s,
                                          const char *unit);

enum { BH_SIGNALS_CANCEL = 0, BH_SIGNALS_FINISH = 1, BH_SIGNALS_IGNORE = 2 };

/* Options of a hive. One rule for every number here, and in every
 * options struct of this header but bh_deleg_opts:
 *   0        the library's default (each field says which), so that a
 *            zeroed struct is a working hive;
 *   BH_NONE  (-1) none: no limit for a limit, nothing (off) for a count,
 *            a grace or an interval (each field says exactly what);
 *   below -1 refused.
 * Where "none" would make no sense (how many workers, max_frame, the
 * enums) -1 is refused too, and the refusal says why. Each field's range
 * is in its comment: bh_run() refuses anything outside before it starts
 * anything (BH_EINVAL, and a result naming the option, its value and its
 * range). Times are milliseconds. */
typedef struct bh_run_opts {
  const bh_class *queen_class;  /* required; its workers 0 or more */
  const bh_class *worker_class; /* NULL: queen_class->worker_class; one of
                                 * the two is required. Its workers, and
                                 * those of the classes below it, 0 or
                                 * more */
  const char *task_name;        /* the queen's task to run; required,
                                 * non-empty */
  const bh_value *task_args;    /* array or NULL; borrowed */
  const bh_value *task_kwargs;  /* map or NULL; borrowed */
  const bh_value *queen_init_args, *queen_init_kwargs;   /* the same */
  const bh_value *worker_init_args, *worker_init_kwargs; /* the same */
  /* The AWS profile every bee's S3 client is made from
   * (context_vars.s3_client): a name from the shared config and
   * credentials files; "" for botocore's default chain (the
   * AWS_ACCESS_KEY_ID... environment variables, else AWS_PROFILE, else
   * "default"); NULL: no S3 client. */
  const char *s3_profile;
  /* Every bee's HTTP session (context_vars.http_session): connections to
   * one host at once (0: 1,024; BH_NONE: no limit; transfers beyond wait
   * in the session's queue), and connections in all (0 or BH_NONE: no
   * limit). */
  int http_max_host_connections;
  int http_max_connections;
  /* The PEM file of the CA certificates every bee's HTTP session (and so
   * its S3 client) trusts for https://, instead of the system's: a
   * private CA, a test server's self-signed certificate. It must be
   * readable when bh_run() starts (BH_EINVAL otherwise). NULL: the
   * system's CA certificates. */
  const char *http_ca_file;
  int max_concurrency;       /* tasks at once per worker: 0: 1,024;
                              * BH_NONE: no limit; else at least 1 */
  /* Tasks a worker may accept beyond max_concurrency, queued until a slot
   * frees, so that a freed slot starts the next task at once instead of
   * waiting for the round trip of its offer. Running tasks never exceed
   * max_concurrency. 0: a quarter of max_concurrency, rounded down (none
   * below 4; none with no limit; none for an external class, whose
   * program may count max_concurrency only: docs/PROTOCOL.md section
   * 13); BH_NONE: none, the reference's accept rule; else at most
   * INT_MAX - max_concurrency (an external program must then honour its
   * bootstrap's prefetch). A queued task counts
   * as started: if its worker dies, it is retried or fails as a running
   * one would (`retries`). */
  int prefetch;
  /* Each offer goes to one worker, the one with the most room (equal
   * ones in turn), and carries the task's info: the worker starts it at
   * once, one round trip instead of two (docs/PROTOCOL.md section 5.1; a
   * worker that knows only the reference's protocol ignores the info and
   * the usual task_info follows). A denial passes the offer on to the
   * next worker with room. Room is counted, not asked: a worker whose
   * loop a task holds (a long computation that never waits) still gets
   * offers while it has room, and they wait for it (or the pickup
   * timeout) where the reference's way would let another worker take
   * them: run such tasks with max_concurrency 1 (a worker busy with one
   * has no room), or with direct_offer BH_NONE.
   * 0: on; BH_NONE: off, the reference's way: every offer a plain
   * new_task to every worker with room, the first to accept takes it.
   * Nothing else. Sub-queens keep it on. */
  int direct_offer;
  int queen_max_concurrency; /* the queen's tasks at once: 0 or BH_NONE:
                              * no limit (the reference's None); else at
                              * least 1 */
  const bh_context *context_vars; /* the queen's; NULL means {async: 1};
                                   * async must be true */
  bh_logger *logger;
  /* Beyond the reference. */
  int workers;               /* initial workers; 0: the class's, else
                              * min_workers (1); at most max_workers when
                              * that is set; BH_NONE only with listen:
                              * none on this host, ever (the population
                              * options below do not apply) */
  bh_start start;            /* BH_START_FORK or BH_START_EXEC */
  int64_t pickup_timeout_ms; /* an offer nobody accepts within this is
                              * cancelled; 0: 600,000; BH_NONE: never */
  size_t max_frame;          /* 0: 64 MiB, else at least BH_MAX_FRAME_MIN
                              * (a frame's header caps it at 4 GiB - 1) */
  /* Population (the queen's workers). */
  int min_workers;           /* 0: 1, else at least 1; no BH_NONE (a
                              * queen keeps a worker) */
  int max_workers;           /* 0: max(cpu count - 1, 1, min_workers,
                              * workers), else at least min_workers; no
                              * BH_NONE (the cadence would grow the hive
                              * for ever) */
  int64_t pop_interval_ms;   /* the manager's cadence: grow by one, or
                              * shrink; 0: 10,000; BH_NONE: no cadence
                              * (dead workers are still replaced, and the
                              * hive grows when tasks wait) */
  double cpu_high, mem_high; /* the cadence shrinks above these shares,
                              * and growth for waiting tasks stops above
                              * mem_high; 0: 0.9; BH_NONE: never; else a
                              * share in (0, 1] */
  /* The queen gives up after more than max_restarts workers die (other
   * than by a normal end) within restart_period_ms: every delegation not
   * yet on a worker, and every new one, then fails raised
   * ("PopulationError", "The queen gave up: more than 10 workers died
   * within 10000 ms. Last causes: ..."), while tasks already running on
   * living workers finish. Until then each dead worker is replaced. 0:
   * 10 deaths and 10,000 ms. max_restarts BH_NONE: no restarts: the first
   * worker that dies is not replaced, and the queen gives up at once, as
   * above ("... a worker died, and max_restarts -1 allows no restarts.").
   * restart_period_ms BH_NONE: the deaths of the whole run count. */
  int max_restarts;
  int64_t restart_period_ms;
  int64_t recycle_after;     /* retire a worker after N tasks; 0 or
                              * BH_NONE: never */
  /* Fault tolerance of the queen's delegations. */
  int retries;               /* default re-offers of a task lost with its
                              * worker; 0 or BH_NONE: none */
  int poison_kills;          /* a task that killed this many workers is
                              * refused ("poison task"); 0: 2; BH_NONE:
                              * never (retries alone bound it) */
  int64_t task_timeout_ms;   /* default deadline; 0 or BH_NONE: none */
  int64_t kill_grace_ms;     /* a delegation given up (deadline,
                              * bh_future_cancel, its group or future
                              * freed, the queen's task cancelled) while
                              * it runs: cancel_task, and the worker is
                              * killed if it has not answered within this;
                              * 0: 1,000; BH_NONE: no grace, the worker
                              * is killed at once, without waiting for its
                              * answer */
  int64_t shutdown_grace_ms; /* a dying hive kills the workers that have
                              * not ended this long after being told to
                              * die; 0: 5,000; BH_NONE: no grace, they are
                              * killed at once (their cleanup does not
                              * run) */
  /* SIGINT and SIGTERM while bh_run runs, sent to the queen's process
   * alone or to the whole process group (a terminal's Ctrl-C, systemd):
   * worker processes ignore both, and the queen leads. BH_SIGNALS_CANCEL
   * (the default) cancels the queen's work and shuts the hive down in
   * order, bh_run returning BH_ECANCELLED ("... interrupted by SIGINT.");
   * a further signal kills every worker at once. BH_SIGNALS_FINISH lets
   * the work finish first (a second signal cancels, a third kills).
   * BH_SIGNALS_IGNORE leaves the signals to the program. Whatever the
   * workers do, bh_run returns within kill_grace_ms + shutdown_grace_ms
   * of the cancelling signal, provided the queen's own task returns once
   * cancelled (its waits all return BH_ECANCELLED from then on). One of
   * the three. */
  int on_signal;
  bh_trace *trace;           /* the queen records her delegations here */
  bh_progress_fn progress;   /* see bh_progress_fn; NULL: none */
  void *progress_udata;
  int64_t progress_interval_ms; /* 0: 200; BH_NONE: no calls while the
                                 * task runs, the final one only */
  /* Workers on other hosts (README.md, "Across hosts"; docs/PROTOCOL.md
   * section 14). The queen listens, and
   * worker processes started elsewhere (by mpirun, srun, ssh: bh_join(),
   * or bh_worker_main() with BH_JOIN) join her once they have proved
   * that they hold the hive's key; each serves as one worker bee with
   * these options' max_concurrency. She cannot restart them: a lost one
   * is mourned with its cause ("connection lost", "no heartbeat for 3000
   * ms"), its tasks retried elsewhere as `retries` allows, and the hive
   * goes on as remote_loss says. */
  const char *listen;        /* "host:port" to listen on: "*:0" every IPv4
                              * address and a free port, "[::1]:7000";
                              * NULL: nobody joins (then the options below
                              * must be 0) */
  const char *key_file;      /* the hive's key: 64 hexadecimal digits in a
                              * file only its owner may read; made (mode
                              * 0600) when it does not exist. Required
                              * with listen unless key is set */
  const unsigned char *key;  /* or the key itself, BH_KEY_LEN bytes,
                              * borrowed (an MPI start broadcasts it) */
  int remote_workers;        /* the queen's task starts once this many
                              * workers joined; 0: at once */
  int64_t join_timeout_ms;   /* ...and the run fails (BH_ESPAWN, "only 1
                              * of 3 remote workers joined ...") if they
                              * have not within this; 0: 60,000; BH_NONE:
                              * waits for ever */
  int64_t heartbeat_ms;      /* both ends of a link send something at
                              * least this often; silent three times as
                              * long, the link is lost. 0: 1,000. The
                              * heartbeat rides the loop: a task (or a
                              * class's init) that keeps its bee's loop
                              * busy longer than the bound, without a
                              * wait, loses the link; give such work a
                              * longer heartbeat, or let it yield */
  int remote_loss;           /* after a remote worker is lost:
                              * bh_remote_loss */
  /* Called once the queen listens, with the address as bound (the port
   * picked for :0): to hand it to the workers' launcher. */
  void (*on_listen)(void *udata, const char *address);
  void *listen_udata;
} bh_run_opts;

/* What the hive does when a remote worker is lost (bh_run_opts). */
typedef enum bh_remote_loss {
  /* Goes on with the workers it has; fails once none is left and none
   * can be started here (PopulationError). */
  BH_REMOTE_CONTINUE = 0,
  /* The same, but with none left it waits for a worker to join (tasks
   * wait, bounded by pickup_timeout_ms). */
  BH_REMOTE_WAIT = 1,
  /* The first loss fails the hive as the restart limit does
   * (PopulationError, naming the worker, its host and the cause). */
  BH_REMOTE_FAIL = 2
} bh_remote_loss;

/* The length of a hive's key in bytes (256 bits). */
#define BH_KEY_LEN 32

/* A worker process on another host, joining a queen (bh_run_opts.listen). */
typedef struct bh_join_opts {
  const char *address;      /* the queen's "host:port" (required) */
  const char *key_file;     /* the hive's key file (as the queen's), or */
  const unsigned char *key; /* the key itself, BH_KEY_LEN bytes */
  int64_t timeout_ms;       /* to connect (retried while the queen is not
                             * listening yet) and prove the key: 0: 60,000;
                             * BH_NONE: for ever */
  bh_logger *logger;        /* NULL: warnings and errors to stderr */
} bh_join_opts;

/* Joins the queen at o->address and serves as one worker bee of the class
 * she names (one of `classes`, NULL-terminated, as bh_worker_main()) until
 * she ends it. Returns the exit status for the process: 0 when the queen
 * told it to die, 1 when its class's init failed, 2 when it could not
 * join (a bad option, the queen unreachable within the timeout, the key
 * refused: "beehive worker: refused by 10.0.0.1:7000: ..." on the
 * logger), 3 when it lost the queen (its running tasks cancelled first,
 * as bh_worker_main()'s). */
BH_EXTERN int bh_join(const bh_join_opts *o, const bh_class *const *classes);

/* The reference's beehive_run(): runs task `task_name` on a fresh queen and
 * waits for it. Returns 0 with *out holding the value, BH_ERAISED with the
 * whole error chain (queen's error, the worker's exception and traceback),
 * BH_ECANCELLED ("The queen bee cancelled the task. Reason: ..."), or
 * an error with an explaining result: BH_EINVAL (ValueError) for an
 * option out of its range, e.g. "bh_run: max_frame 8 is out of range: it
 * must be 0 (default 64 MiB) or at least 4096", context_vars with async
 * false, or a queen that could not start (her class's init failed: "The
 * init of bee class 'Q' failed."; her S3 profile is not there); BH_ESPAWN
 * ("SpawnError") when the hive could not start otherwise: no socketpair,
 * a worker that could not be forked; BH_ENOMEM. *out is always set
 * (returns owned; free with bh_result_free), but for a BH_ENOMEM when
 * memory for the result itself ran out; only a NULL out returns
 * BH_EINVAL with nothing to set. */
BH_EXTERN int bh_run(const bh_run_opts *o, bh_result **out);

/* The reference's beehive_run() as it is awaited inside a running event
 * loop: for a program that already runs a libuv loop (a server, a GUI),
 * which bh_run would block. Starts the hive on `loop` (a uv_loop_t the
 * caller runs on this thread) and returns at once; the program's own
 * handles keep working while the hive runs. When the task is done and the
 * hive is gone, done(udata, rc, result) runs once on that loop with what
 * bh_run would have returned (result owned by done: bh_result_free);
 * options out of range and failures to start come the same way. By then
 * every handle the hive added to the loop is closed (uv_loop_close
 * succeeds once the program closed its own); the hive never stops the
 * loop. `o` and what it points to must live until done runs.
 *
 * Signals: while the hive runs, SIGINT/SIGTERM act as on_signal says (set
 * BH_SIGNALS_IGNORE to keep them to the program's own watches, which run
 * either way). Children: workers are waited for by pid, never
 * waitpid(-1), so the program's own child processes are left alone; a
 * forked worker keeps no descriptor of the program's but its channel.
 * One hive per thread at a time: while one lives, done gets UV_EBUSY.
 * Returns 0, or BH_EINVAL (loop or done NULL) / BH_ENOMEM, and then done
 * never runs. bh_run is this on a private loop that it runs to the end. */
typedef void (*bh_run_cb)(void *udata, int rc, bh_result *result);
struct uv_loop_s;
BH_EXTERN int bh_run_start(struct uv_loop_s *loop, const bh_run_opts *o,
                           bh_run_cb done, void *udata);

/* ------------------------------------------------------------------------
 * Calls through macros. bh_task_unpack, bh_return, bh_delegate,
 * bh_group_delegate, bh_result_unpack, bh_unpack, bh_pack and
 * bh_value_pack are also macros of the same name, which record where they
 * are called from: an error such a call raises in its task (bh_task_unpack's
 * TypeError, a format that bh_return or bh_delegate refuses, a task name
 * the worker class does not have) shows the caller's file, line and
 * function as its frame, not a line of the library.
 *
 * In C11 without NDEBUG (a debug build of the caller) they also check the
 * C type of each argument against the letter of the format that reads it
 * ("Values" above): va_arg cannot see a mismatch, which packs 4294967293
 * for an int -3 given to 'I', or writes 8 bytes into an int * given to
 * 'I' when unpacking. A mismatch is a bug, so, as a failed assertion does,
 * the call aborts with a message naming the call, the argument and the
 * fix:
 *   worker.c:12: in square: bh_return: format "I": argument 1 after the
 *   format is an int, but 'I' at 0 takes an int64_t: cast it, (int64_t)x
 * Integers narrower than int count as int (as they are passed), a float
 * as a double; NULL, void * and pointers to structs pass wherever a
 * pointer goes. C++ gets the call sites only. An argument with a comma
 * outside parentheses (a compound literal) needs parentheses; at most 63
 * arguments follow the format. Calling the function itself,
 * (bh_return)(t, "I", x) or through a pointer, skips both, as does
 * defining BH_NO_CALL_MACROS before including this header. */
BH_EXTERN const char *bh__call_at(const char *fmt, const char *types,
                                  int unpack, const char *call,
                                  const char *file, int line,
                                  const char *func);

#if !defined(BH_NO_CALL_MACROS)
#define BH__CAT(a, b) BH__CAT_(a, b)
#define BH__CAT_(a, b) a##b
#define BH__PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13,     \
  _14, _15, _16, _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27,      \
  _28, _29, _30, _31, _32, _33, _34, _35, _36, _37, _38, _39, _40, _41,      \
  _42, _43, _44, _45, _46, _47, _48, _49, _50, _51, _52, _53, _54, _55,      \
  _56, _57, _58, _59, _60, _61, _62, _63, _64, n, ...) n
/* The number of arguments (1 to 64), and 1 or 2 for more than one. */
#define BH__NARGS(...) BH__PICK(__VA_ARGS__, 64, 63, 62, 61, 60, 59, 58,     \
  57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40,    \
  39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22,    \
  21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2,    \
  1, 0)
#define BH__ONE(...) BH__PICK(__VA_ARGS__, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  \
  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,    \
  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,    \
  2, 2, 2, 2, 1, 0)
/* The format (the first argument) through bh__call_at, then the rest. */
#define BH__FMT(call, unpack, ...)                                           \
  BH__CAT(BH__FMT_, BH__ONE(__VA_ARGS__))(call, unpack, __VA_ARGS__)
#define BH__FMT_1(call, unpack, fmt)                                         \
  bh__call_at((fmt), BH__TYPES0, (unpack), (call), __FILE__, __LINE__,        \
              __func__)
#define BH__FMT_2(call, unpack, fmt, ...)                                    \
  bh__call_at((fmt), BH__TYPES(__VA_ARGS__), (unpack), (call), __FILE__,      \
              __LINE__, __func__),                                           \
      __VA_ARGS__

#if !defined(NDEBUG) && !defined(__cplusplus) &&                             \
    defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
/* Each argument's class, as callsite.c reads them. */
#define BH__ARG_CLASS(x)                                                     \
  _Generic((x), _Bool: 'i', char: 'i', signed char: 'i',                     \
           unsigned char: 'i', short: 'i', unsigned short: 'i', int: 'i',    \
           unsigned: 'i', long: (sizeof(long) == 8 ? 'l' : 'i'),             \
           unsigned long: (sizeof(long) == 8 ? 'l' : 'i'), long long: 'l',  \
           unsigned long long: 'l', float: 'd', double: 'd',                 \
           long double: 'x', _Bool *: 'B', char *: 'c', signed char *: 'c',  \
           unsigned char *: 'c', short *: 'h', unsigned short *: 'h',        \
           int *: 'n', unsigned *: 'm',                                      \
           long *: (sizeof(long) == 8 ? 'q' : 'n'),                          \
           unsigned long *: (sizeof(long) == 8 ? 'Q' : 'm'),                 \
           long long *: 'q', unsigned long long *: 'Q', double *: 'D',       \
           float *: 'F', char **: 'P', const char **: 'P',                   \
           unsigned char **: 'P', const unsigned char **: 'P', void **: 'P', \
           const void **: 'P', msgpack_object **: 'P',                       \
           const msgpack_object **: 'P', default: 'p')
#define BH__TYPES0 ""
#define BH__TYPES(...)                                                       \
  ((const char[]){BH__CAT(BH__TS, BH__NARGS(__VA_ARGS__))(__VA_ARGS__), 0})
#define BH__TS1(a) BH__ARG_CLASS(a)
#define BH__TS2(a, ...) BH__ARG_CLASS(a), BH__TS1(__VA_ARGS__)
#define BH__TS3(a, ...) BH__ARG_CLASS(a), BH__TS2(__VA_ARGS__)
#define BH__TS4(a, ...) BH__ARG_CLASS(a), BH__TS3(__VA_ARGS__)
#define BH__TS5(a, ...) BH__ARG_CLASS(a), BH__TS4(__VA_ARGS__)
#define BH__TS6(a, ...) BH__ARG_CLASS(a), BH__TS5(__VA_ARGS__)
#define BH__TS7(a, ...) BH__ARG_CLASS(a), BH__TS6(__VA_ARGS__)
#define BH__TS8(a, ...) BH__ARG_CLASS(a), BH__TS7(__VA_ARGS__)
#define BH__TS9(a, ...) BH__ARG_CLASS(a), BH__TS8(__VA_ARGS__)
#define BH__TS10(a, ...) BH__ARG_CLASS(a), BH__TS9(__VA_ARGS__)
#define BH__TS11(a, ...) BH__ARG_CLASS(a), BH__TS10(__VA_ARGS__)
#define BH__TS12(a, ...) BH__ARG_CLASS(a), BH__TS11(__VA_ARGS__)
#define BH__TS13(a, ...) BH__ARG_CLASS(a), BH__TS12(__VA_ARGS__)
#define BH__TS14(a, ...) BH__ARG_CLASS(a), BH__TS13(__VA_ARGS__)
#define BH__TS15(a, ...) BH__ARG_CLASS(a), BH__TS14(__VA_ARGS__)
#define BH__TS16(a, ...) BH__ARG_CLASS(a), BH__TS15(__VA_ARGS__)
#define BH__TS17(a, ...) BH__ARG_CLASS(a), BH__TS16(__VA_ARGS__)
#define BH__TS18(a, ...) BH__ARG_CLASS(a), BH__TS17(__VA_ARGS__)
#define BH__TS19(a, ...) BH__ARG_CLASS(a), BH__TS18(__VA_ARGS__)
#define BH__TS20(a, ...) BH__ARG_CLASS(a), BH__TS19(__VA_ARGS__)
#define BH__TS21(a, ...) BH__ARG_CLASS(a), BH__TS20(__VA_ARGS__)
#define BH__TS22(a, ...) BH__ARG_CLASS(a), BH__TS21(__VA_ARGS__)
#define BH__TS23(a, ...) BH__ARG_CLASS(a), BH__TS22(__VA_ARGS__)
#define BH__TS24(a, ...) BH__ARG_CLASS(a), BH__TS23(__VA_ARGS__)
#define BH__TS25(a, ...) BH__ARG_CLASS(a), BH__TS24(__VA_ARGS__)
#define BH__TS26(a, ...) BH__ARG_CLASS(a), BH__TS25(__VA_ARGS__)
#define BH__TS27(a, ...) BH__ARG_CLASS(a), BH__TS26(__VA_ARGS__)
#define BH__TS28(a, ...) BH__ARG_CLASS(a), BH__TS27(__VA_ARGS__)
#define BH__TS29(a, ...) BH__ARG_CLASS(a), BH__TS28(__VA_ARGS__)
#define BH__TS30(a, ...) BH__ARG_CLASS(a), BH__TS29(__VA_ARGS__)
#define BH__TS31(a, ...) BH__ARG_CLASS(a), BH__TS30(__VA_ARGS__)
#define BH__TS32(a, ...) BH__ARG_CLASS(a), BH__TS31(__VA_ARGS__)
#define BH__TS33(a, ...) BH__ARG_CLASS(a), BH__TS32(__VA_ARGS__)
#define BH__TS34(a, ...) BH__ARG_CLASS(a), BH__TS33(__VA_ARGS__)
#define BH__TS35(a, ...) BH__ARG_CLASS(a), BH__TS34(__VA_ARGS__)
#define BH__TS36(a, ...) BH__ARG_CLASS(a), BH__TS35(__VA_ARGS__)
#define BH__TS37(a, ...) BH__ARG_CLASS(a), BH__TS36(__VA_ARGS__)
#define BH__TS38(a, ...) BH__ARG_CLASS(a), BH__TS37(__VA_ARGS__)
#define BH__TS39(a, ...) BH__ARG_CLASS(a), BH__TS38(__VA_ARGS__)
#define BH__TS40(a, ...) BH__ARG_CLASS(a), BH__TS39(__VA_ARGS__)
#define BH__TS41(a, ...) BH__ARG_CLASS(a), BH__TS40(__VA_ARGS__)
#define BH__TS42(a, ...) BH__ARG_CLASS(a), BH__TS41(__VA_ARGS__)
#define BH__TS43(a, ...) BH__ARG_CLASS(a), BH__TS42(__VA_ARGS__)
#define BH__TS44(a, ...) BH__ARG_CLASS(a), BH__TS43(__VA_ARGS__)
#define BH__TS45(a, ...) BH__ARG_CLASS(a), BH__TS44(__VA_ARGS__)
#define BH__TS46(a, ...) BH__ARG_CLASS(a), BH__TS45(__VA_ARGS__)
#define BH__TS47(a, ...) BH__ARG_CLASS(a), BH__TS46(__VA_ARGS__)
#define BH__TS48(a, ...) BH__ARG_CLASS(a), BH__TS47(__VA_ARGS__)
#define BH__TS49(a, ...) BH__ARG_CLASS(a), BH__TS48(__VA_ARGS__)
#define BH__TS50(a, ...) BH__ARG_CLASS(a), BH__TS49(__VA_ARGS__)
#define BH__TS51(a, ...) BH__ARG_CLASS(a), BH__TS50(__VA_ARGS__)
#define BH__TS52(a, ...) BH__ARG_CLASS(a), BH__TS51(__VA_ARGS__)
#define BH__TS53(a, ...) BH__ARG_CLASS(a), BH__TS52(__VA_ARGS__)
#define BH__TS54(a, ...) BH__ARG_CLASS(a), BH__TS53(__VA_ARGS__)
#define BH__TS55(a, ...) BH__ARG_CLASS(a), BH__TS54(__VA_ARGS__)
#define BH__TS56(a, ...) BH__ARG_CLASS(a), BH__TS55(__VA_ARGS__)
#define BH__TS57(a, ...) BH__ARG_CLASS(a), BH__TS56(__VA_ARGS__)
#define BH__TS58(a, ...) BH__ARG_CLASS(a), BH__TS57(__VA_ARGS__)
#define BH__TS59(a, ...) BH__ARG_CLASS(a), BH__TS58(__VA_ARGS__)
#define BH__TS60(a, ...) BH__ARG_CLASS(a), BH__TS59(__VA_ARGS__)
#define BH__TS61(a, ...) BH__ARG_CLASS(a), BH__TS60(__VA_ARGS__)
#define BH__TS62(a, ...) BH__ARG_CLASS(a), BH__TS61(__VA_ARGS__)
#define BH__TS63(a, ...) BH__ARG_CLASS(a), BH__TS62(__VA_ARGS__)
#else
#define BH__TYPES0 NULL
#define BH__TYPES(...) NULL
#endif

#define bh_value_pack(err, ...)                                              \
  bh_value_pack(err, BH__FMT("bh_value_pack", 0, __VA_ARGS__))
#define bh_pack(pk, ...) bh_pack(pk, BH__FMT("bh_pack", 0, __VA_ARGS__))
#define bh_unpack(obj, errbuf, errlen, ...)                                  \
  bh_unpack(obj, errbuf, errlen, BH__FMT("bh_unpack", 1, __VA_ARGS__))
#define bh_task_unpack(t, ...)                                               \
  bh_task_unpack(t, BH__FMT("bh_task_unpack", 1, __VA_ARGS__))
#define bh_return(t, ...) bh_return(t, BH__FMT("bh_return", 0, __VA_ARGS__))
#define bh_delegate(t, out, name, ...)                                       \
  bh_delegate(t, out, name, BH__FMT("bh_delegate", 0, __VA_ARGS__))
#define bh_group_delegate(g, out, udata, name, ...)                          \
  bh_group_delegate(g, out, udata, name,                                     \
                    BH__FMT("bh_group_delegate", 0, __VA_ARGS__))
#define bh_result_unpack(r, errbuf, errlen, ...)                             \
  bh_result_unpack(r, errbuf, errlen,                                        \
                   BH__FMT("bh_result_unpack", 1, __VA_ARGS__))
#endif /* BH_NO_CALL_MACROS */

#ifdef __cplusplus
}
#endif
#endif /* BEEHIVE_H */
