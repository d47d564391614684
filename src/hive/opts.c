/* opts.c - the ranges of bh_run_opts (include/beehive.h) and of a worker's
 * options (bh__spawn_opts, wcfg.h).
 * Every option is checked before anything starts, and a refusal names the
 * option, its value and its range: a value out of range must never reach
 * the machinery, where it hung a hive (max_frame 8: not even new_task
 * fits) or aborted the caller (max_frame 55: no answer to a task fits).
 * What the checks let through is what a worker gets in its bootstrap
 * frame, so it is valid there by construction.
 *
 * One rule for every number (the header's BH_NONE): 0 picks the default,
 * -1 says "none" (no limit, nothing, off), anything below -1 is refused.
 * The few options where "none" means nothing (how many workers, a share
 * of the machine's CPU) say so in their refusal. */
#include "hive/opts.h"
#include "hive/wcfg.h"
#include "runtime/fiber.h"
#include "value/value.h"
#include "wire/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where a refusal is written: "who: why". */
typedef struct chk {
  const char *who;
  char *buf;
  size_t len;
} chk;

static bool refuse(chk *c, const char *fmt, ...) BH_PRINTF(2, 3);

/* Writes why and returns true, so that checks chain with ||. */
static bool
refuse(chk *c, const char *fmt, ...) {
  va_list ap;
  int n = snprintf(c->buf, c->len, "%s: ", c->who);

  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < c->len)
    vsnprintf(c->buf + n, c->len - (size_t)n, fmt, ap);
  va_end(ap);
  return true;
}

static bool
below(chk *c, const char *name, int64_t v, int64_t min, const char *range) {
  return v < min && refuse(c, "%s %lld is out of range: it must be %s", name,
                           (long long)v, range);
}

/* A value that must be an array (or a map) when given. */
static bool
shape_bad(chk *c, const char *name, const bh_value *v, bool array) {
  const msgpack_object *o = bh_value_object(v);
  msgpack_object_type want = array ? MSGPACK_OBJECT_ARRAY
                                   : MSGPACK_OBJECT_MAP;

  return o != NULL && o->type != want &&
         refuse(c, "%s must be %s or NULL, not %s", name,
                array ? "an array" : "a map", bh__type_name(o));
}

static bool
frame_bad(chk *c, size_t v) {
  return v != 0 && v < BH_MAX_FRAME_MIN &&
         refuse(c, "max_frame %zu is out of range: it must be 0 (default "
                "64 MiB) or at least %d", v, BH_MAX_FRAME_MIN);
}

/* max_concurrency and prefetch; their sum is a child's capacity (int). */
static bool
conc_bad(chk *c, int conc, int prefetch) {
  int n = bh__conc_norm(conc);

  return below(c, "max_concurrency", conc, -1,
               "-1 (no limit), 0 (default 1024) or at least 1") ||
         below(c, "prefetch", prefetch, -1,
               "-1 (none), 0 (default: max_concurrency / 4) or more") ||
         (n > 0 && prefetch > INT_MAX - n &&
          refuse(c, "prefetch %d is out of range: max_concurrency (%d) + "
                 "prefetch must be at most %d", prefetch, n, INT_MAX));
}

static bool
start_bad(chk *c, bh_start s) {
  return s != BH_START_FORK && s != BH_START_EXEC &&
         refuse(c, "start %d is out of range: it must be BH_START_FORK (0) "
                "or BH_START_EXEC (1)", (int)s);
}

/* A class's stack_size: 0, or a size its tasks' fibers can be made with
 * (fiber.h). */
static bool
stack_bad(chk *c, const bh_class *cls) {
  return cls->stack_size != 0 &&
         (cls->stack_size < BH__STACK_MIN || cls->stack_size > BH__STACK_MAX) &&
         refuse(c, "stack_size %zu of class '%s' is out of range: it must "
                "be 0 (default %zu KiB) or from %zu (%zu KiB) to %zu "
                "(%zu GiB)", cls->stack_size, cls->name ? cls->name : "?",
                BH__STACK_SIZE >> 10, BH__STACK_MIN, BH__STACK_MIN >> 10,
                BH__STACK_MAX, BH__STACK_MAX >> 30);
}

/* An external class (bh_class.program): a name for its bootstrap frame,
 * a path, an argv with argv[0], an environment of NAME=value, and no
 * workers of its own to run here. */
static bool
program_bad(chk *c, const bh_class *cls) {
  const bh_program *p = cls->program;
  const char *name = cls->name ? cls->name : "?";
  size_t i;

  if (cls->name == NULL)
    return refuse(c, "a class with a program needs a name: the program's "
                  "bootstrap frame names its class");
  if (p->path == NULL || p->path[0] == '\0')
    return refuse(c, "class '%s': its program has no path", name);
  if (p->argv != NULL && p->argv[0] == NULL)
    return refuse(c, "class '%s': its program's argv is empty: it must "
                  "hold argv[0] at least, or be NULL ({path})", name);
  for (i = 0; p->env != NULL && p->env[i] != NULL; i++)
    if (strchr(p->env[i], '=') == NULL || p->env[i][0] == '=')
      return refuse(c, "class '%s': its program's env[%zu] \"%.64s\" is "
                    "not NAME=value", name, i, p->env[i]);
  return cls->worker_class != NULL &&
         refuse(c, "class '%s' has a program and a worker_class: an "
                "external program starts its own workers, if any; set one "
                "of the two", name);
}

/* The stack size of cls and the worker count of cls if it is a queen, and
 * of the classes below it. The walk is bounded: a class that is its own
 * worker class is the caller's to find out, not a reason to hang here. */
static bool
classes_bad(chk *c, const bh_class *cls) {
  int depth;

  for (depth = 0; cls != NULL && depth < 16;
       cls = cls->worker_class, depth++) {
    if (cls->program != NULL)
      return program_bad(c, cls);
    if (stack_bad(c, cls))
      return true;
    if (cls->worker_class != NULL && cls->workers < 0)
      return refuse(c, "workers %d of class '%s' is out of range: it must "
                    "be 0 (1) or more", cls->workers,
                    cls->name ? cls->name : "?");
  }
  return false;
}

/* ------------------------------------------------------------------------
 * bh_run_opts. */

static bool
run_required(chk *c, const bh_run_opts *o) {
  if (o->queen_class == NULL)
    return refuse(c, "queen_class is required");
  if (o->queen_class->program != NULL)
    return refuse(c, "queen_class '%s' has a program: the queen runs in "
                  "this process, so her class cannot be external",
                  o->queen_class->name ? o->queen_class->name : "?");
  if (o->worker_class == NULL && o->queen_class->worker_class == NULL)
    return refuse(c, "worker_class is required: neither it nor "
                  "queen_class->worker_class is set");
  if (o->task_name == NULL)
    return refuse(c, "task_name is required");
  if (o->task_name[0] == '\0')
    return refuse(c, "task_name is empty");
  return frame_bad(c, o->max_frame) ||
         (!bh__wire_name_fits(strlen(o->task_name), o->max_frame) &&
          refuse(c, "task_name is too long: %zu bytes do not fit in a "
                 "frame of %zu bytes (max_frame)", strlen(o->task_name),
                 o->max_frame ? o->max_frame : BH__DEFAULT_MAX_FRAME));
}

static bool
run_values(chk *c, const bh_run_opts *o) {
  return shape_bad(c, "task_args", o->task_args, true) ||
         shape_bad(c, "task_kwargs", o->task_kwargs, false) ||
         shape_bad(c, "queen_init_args", o->queen_init_args, true) ||
         shape_bad(c, "queen_init_kwargs", o->queen_init_kwargs, false) ||
         shape_bad(c, "worker_init_args", o->worker_init_args, true) ||
         shape_bad(c, "worker_init_kwargs", o->worker_init_kwargs, false);
}

static bool
http_bad(chk *c, int host, int all) {
  return below(c, "http_max_host_connections", host, -1,
               "-1 (no limit), 0 (default 1024) or more") ||
         below(c, "http_max_connections", all, -1,
               "-1 or 0 (no limit) or more");
}

/* The CA bundle every HTTP session will read: a path that cannot be read
 * is refused here, naming it, rather than failing each https:// request
 * of every worker later with a TLS error. Opened without blocking (a
 * FIFO), and only looked at: curl reads it. */
static bool
ca_file_bad(chk *c, const char *path) {
  struct stat st;
  int fd, err = 0;

  if (path == NULL)
    return false;
  if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
    err = errno;
  else if (fstat(fd, &st) != 0)
    err = errno;
  if (fd >= 0)
    close(fd);
  if (err != 0)
    return refuse(c, "http_ca_file '%s' cannot be read: %s", path,
                  strerror(err));
  return !S_ISREG(st.st_mode) &&
         refuse(c, "http_ca_file '%s' is not a file (a PEM CA bundle)",
                path);
}

static bool
run_counts(chk *c, const bh_run_opts *o) {
  return conc_bad(c, o->max_concurrency, o->prefetch) ||
         http_bad(c, o->http_max_host_connections, o->http_max_connections) ||
         ca_file_bad(c, o->http_ca_file) ||
         (o->direct_offer != 0 && o->direct_offer != -1 &&
          refuse(c, "direct_offer %d is out of range: it must be 0 (on) or "
                 "-1 (off)", o->direct_offer)) ||
         below(c, "queen_max_concurrency", o->queen_max_concurrency, -1,
               "0 or -1 (no limit) or at least 1") ||
         below(c, "retries", o->retries, -1, "-1 or 0 (none) or more") ||
         below(c, "poison_kills", o->poison_kills, -1,
               "-1 (never refused), 0 (default 2) or more");
}

static bool
share_bad(chk *c, const char *name, double v) {
  /* Written so that NaN is refused too. */
  return !(v == -1.0 || (v >= 0.0 && v <= 1.0)) &&
         refuse(c, "%s %g is out of range: it must be -1 (never), 0 "
                "(default 0.9) or a share in (0, 1]", name, v);
}

static bool
run_pop(chk *c, const bh_run_opts *o) {
  /* No "none" for these: a hive starts with a worker and keeps one, and
   * one with no maximum would grow by a worker every pop_interval_ms. */
  return (o->listen == NULL &&
          below(c, "workers", o->workers, 0,
                "0 (the class's, else min_workers) or more; a hive starts "
                "with a worker (-1, none here, only with listen)")) ||
         below(c, "workers", o->workers, -1,
               "-1 (none on this host), 0 (the class's, else min_workers) "
               "or more") ||
         (o->workers == BH_NONE &&
          (o->min_workers != 0 || o->max_workers != 0) &&
          refuse(c, "workers -1 (none on this host) leaves no room for "
                 "min_workers %d or max_workers %d: set them to 0",
                 o->min_workers, o->max_workers)) ||
         below(c, "min_workers", o->min_workers, 0,
               "0 (default 1) or more; a queen keeps a worker") ||
         below(c, "max_workers", o->max_workers, 0,
               "0 (default: the CPU count - 1) or more; a queen without a "
               "maximum would grow for ever") ||
         (o->max_workers > 0 && o->min_workers > o->max_workers &&
          refuse(c, "min_workers %d is more than max_workers %d",
                 o->min_workers, o->max_workers)) ||
         (o->max_workers > 0 && o->workers > o->max_workers &&
          refuse(c, "workers %d is more than max_workers %d", o->workers,
                 o->max_workers)) ||
         classes_bad(c, o->queen_class) ||
         classes_bad(c, o->worker_class) ||
         below(c, "max_restarts", o->max_restarts, -1,
               "-1 (no restarts), 0 (default 10) or more") ||
         below(c, "recycle_after", o->recycle_after, -1,
               "-1 or 0 (never) or more") ||
         share_bad(c, "cpu_high", o->cpu_high) ||
         share_bad(c, "mem_high", o->mem_high);
}

static bool
run_times(chk *c, const bh_run_opts *o) {
#define T(field, range) {offsetof(bh_run_opts, field), #field, range}
  static const struct {
    size_t off;
    const char *name, *range;
  } times[] = {
      T(pickup_timeout_ms, "-1 (never), 0 (default 600,000) or more"),
      T(pop_interval_ms, "-1 (no cadence), 0 (default 10,000) or more"),
      T(restart_period_ms, "-1 (the whole run), 0 (default 10,000) or "
        "more"),
      T(task_timeout_ms, "-1 or 0 (none) or more"),
      T(kill_grace_ms, "-1 (none: kill at once), 0 (default 1,000) or "
        "more"),
      T(shutdown_grace_ms, "-1 (none: kill at once), 0 (default 5,000) or "
        "more"),
      T(progress_interval_ms, "-1 (none: the final call only), 0 (default "
        "200) or more"),
  };
#undef T
  size_t i;

  for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
    int64_t v;

    memcpy(&v, (const char *)o + times[i].off, sizeof(v));
    if (below(c, times[i].name, v, -1, times[i].range))
      return true;
  }
  return false;
}

/* Without listen, nothing of the remote workers may be set: a key or a
 * count given for nothing is a mistake worth saying. */
static bool
remote_unset(chk *c, const bh_run_opts *o) {
  const char *set = o->key_file ? "key_file" : o->key ? "key"
                    : o->remote_workers ? "remote_workers"
                    : o->join_timeout_ms ? "join_timeout_ms"
                    : o->heartbeat_ms ? "heartbeat_ms"
                    : o->remote_loss ? "remote_loss"
                    : o->on_listen ? "on_listen" : NULL;

  return set != NULL &&
         refuse(c, "%s is set, but listen is NULL: nobody can join", set);
}

static bool
run_remote(chk *c, const bh_run_opts *o) {
  const bh_class *wc = o->worker_class ? o->worker_class
                                       : o->queen_class->worker_class;

  if (o->listen == NULL)
    return remote_unset(c, o);
  if (o->key == NULL && o->key_file == NULL)
    return refuse(c, "listen needs the hive's key: key_file or key");
  if (o->key != NULL && o->key_file != NULL)
    return refuse(c, "key and key_file are both set: give one");
  if (wc->name == NULL || wc->program != NULL)
    return refuse(c, "listen: the worker class needs a name and no "
                  "program: a joining worker is this same program, told "
                  "its class by name");
  return below(c, "remote_workers", o->remote_workers, 0, "0 or more") ||
         below(c, "join_timeout_ms", o->join_timeout_ms, -1,
               "-1 (wait for ever), 0 (default 60,000) or more") ||
         (o->heartbeat_ms != 0 &&
          (o->heartbeat_ms < 10 || o->heartbeat_ms > 3600000) &&
          refuse(c, "heartbeat_ms %lld is out of range: it must be 0 "
                 "(default 1,000) or 10 to 3,600,000",
                 (long long)o->heartbeat_ms)) ||
         ((o->remote_loss < BH_REMOTE_CONTINUE ||
           o->remote_loss > BH_REMOTE_FAIL) &&
          refuse(c, "remote_loss %d is out of range: it must be "
                 "BH_REMOTE_CONTINUE (0), BH_REMOTE_WAIT (1) or "
                 "BH_REMOTE_FAIL (2)", o->remote_loss));
}

int
bh__run_opts_check(const bh_run_opts *o, char *why, size_t len) {
  chk c = {"bh_run", why, len};

  if (o == NULL)
    return refuse(&c, "the options are required (o is NULL)") ? BH_EINVAL
                                                               : 0;
  if (run_required(&c, o) || run_values(&c, o) || run_counts(&c, o) ||
      run_pop(&c, o) || run_times(&c, o) || run_remote(&c, o) ||
      start_bad(&c, o->start) ||
      (o->on_signal != BH_SIGNALS_CANCEL && o->on_signal != BH_SIGNALS_FINISH &&
       o->on_signal != BH_SIGNALS_IGNORE &&
       refuse(&c, "on_signal %d is out of range: it must be "
              "BH_SIGNALS_CANCEL (0), BH_SIGNALS_FINISH (1) or "
              "BH_SIGNALS_IGNORE (2)", o->on_signal)))
    return BH_EINVAL;
  return 0;
}

/* ------------------------------------------------------------------------
 * A worker's options (the bootstrap frame an exec-started worker reads). */

int
bh__spawn_opts_check(const bh__spawn_opts *o, const char *who, char *why,
                     size_t len) {
  chk c = {who, why, len};

  if (o->cls == NULL)
    return refuse(&c, "cls is required") ? BH_EINVAL : 0;
  if (o->start == BH_START_EXEC && o->cls->name == NULL)
    return refuse(&c, "cls->name is required to start by exec") ? BH_EINVAL
                                                                : 0;
  if (shape_bad(&c, "init_args", o->init_args, true) ||
      shape_bad(&c, "init_kwargs", o->init_kwargs, false) ||
      conc_bad(&c, o->max_concurrency, o->prefetch) ||
      http_bad(&c, o->http_max_host_connections, o->http_max_connections) ||
      ca_file_bad(&c, o->http_ca_file) || start_bad(&c, o->start) ||
      frame_bad(&c, o->max_frame) ||
      classes_bad(&c, o->cls))
    return BH_EINVAL;
  return 0;
}
