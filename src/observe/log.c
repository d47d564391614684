/* log.c - line loggers with indented blocks, and the bee-message dump.
 *
 * A logger hands finished lines to a callback together with the current
 * block depth, like the reference's IndentedLoggerAdapter: bh_log_begin()
 * logs a title and opens a block, bh_log_end() closes it. Text is split on
 * '\n' so that every callback call receives exactly one line.
 *
 * The default sink (fn == NULL) writes to stderr, one line per record:
 *
 *   LEVEL   <2 spaces per depth>text
 *
 * where LEVEL is the level name left-aligned in 7 columns (the width of
 * "WARNING") followed by one space, e.g. "DEBUG   Traceback:" at depth 0 and
 * "DEBUG     File ..." at depth 1. Each line goes out in one writev() call
 * so that lines written by concurrent processes to the same pipe or file
 * never interleave mid-line (for lines up to PIPE_BUF bytes on a pipe). */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/base.h"
#include "value/value.h"
#include "observe/log.h"

/* Text up to this size is formatted without allocating. */
#define LOG_STACK 512
/* Depth beyond which the stderr sink stops indenting further. */
#define MAX_SINK_INDENT 40
/* Nested messages deeper than this are shown as plain values, so that an
 * absurdly deep hand-built chain cannot exhaust the stack. */
#define MAX_MSG_DEPTH 32

struct bh_logger {
  bh_log_level min_level;
  bh_log_fn fn; /* NULL: the stderr sink */
  void *udata;
  int indent; /* the current block depth, >= 0 */
};

bh_logger *
bh_logger_new(bh_log_level min_level, bh_log_fn fn, void *udata) {
  bh_logger *lg = bh__calloc(1, sizeof(*lg));

  if (lg == NULL)
    return NULL;
  lg->min_level = min_level;
  lg->fn = fn;
  lg->udata = udata;
  return lg;
}

void
bh_logger_free(bh_logger *lg) {
  bh__free(lg);
}

int
bh_logger_enabled(const bh_logger *lg, bh_log_level level) {
  return lg != NULL && level >= lg->min_level;
}

/* ------------------------------------------------------------------------
 * The stderr sink. */

static const char *
level_name(bh_log_level level, char *buf, size_t len) {
  switch (level) {
  case BH_LOG_DEBUG:
    return "DEBUG";
  case BH_LOG_INFO:
    return "INFO";
  case BH_LOG_WARNING:
    return "WARNING";
  case BH_LOG_ERROR:
    return "ERROR";
  }
  snprintf(buf, len, "LEVEL%d", (int)level);
  return buf;
}

/* Writes all of iov[0..n) to fd, retrying on EINTR and partial writes and
 * waiting when fd is non-blocking (libuv may have made it so). */
static void
writev_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0) {
      struct pollfd p = {fd, POLLOUT, 0};
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        poll(&p, 1, -1);
      else if (errno != EINTR)
        return; /* nowhere left to report the failure */
      continue;
    }
    if (w == 0)
      return; /* no progress: give up rather than spin */
    for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
      w -= (ssize_t)iov->iov_len;
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
}

static void
stderr_sink(bh_log_level level, int indent, const char *line) {
  char pad[2 * MAX_SINK_INDENT], head[32], name[16];
  struct iovec iov[4];
  int hl;

  if (indent > MAX_SINK_INDENT)
    indent = MAX_SINK_INDENT;
  memset(pad, ' ', sizeof(pad));
  hl = snprintf(head, sizeof(head), "%-7s ",
                level_name(level, name, sizeof(name)));
  if (hl < 0 || (size_t)hl >= sizeof(head))
    hl = (int)strlen(head);
  iov[0] = (struct iovec){head, (size_t)hl};
  iov[1] = (struct iovec){pad, (size_t)indent * 2};
  iov[2] = (struct iovec){(char *)line, strlen(line)};
  iov[3] = (struct iovec){(char *)"\n", 1};
  writev_all(STDERR_FILENO, iov, 4);
}

/* ------------------------------------------------------------------------
 * Formatting and splitting. */

/* Formats into stack[0..n) or, when the text is longer, into a new
 * allocation stored in *heap (to be freed by the caller). Returns the text;
 * if the allocation fails it is the truncated stack copy. */
static char *
vformat(char *stack, size_t n, char **heap, const char *fmt, va_list ap) {
  va_list ap2;
  int len;

  *heap = NULL;
  va_copy(ap2, ap);
  len = vsnprintf(stack, n, fmt, ap2);
  va_end(ap2);
  if (len < 0) {
    snprintf(stack, n, "(log format error in \"%s\")", fmt);
    return stack;
  }
  if ((size_t)len < n)
    return stack;
  *heap = bh__malloc((size_t)len + 1);
  if (*heap == NULL)
    return stack;
  vsnprintf(*heap, (size_t)len + 1, fmt, ap);
  return *heap;
}

static void
emit_line(bh_logger *lg, bh_log_level level, const char *line) {
  if (lg->fn != NULL)
    lg->fn(lg->udata, level, lg->indent, line);
  else
    stderr_sink(level, lg->indent, line);
}

/* Emits `text` (modified in place) one line per '\n'. A single trailing
 * newline ends the last line rather than adding an empty one, so text such
 * as Python traceback entries ("...\n") does not produce blank lines. */
static void
emit_text(bh_logger *lg, bh_log_level level, char *text) {
  size_t n = strlen(text);
  char *line = text, *nl;

  if (n > 0 && text[n - 1] == '\n')
    text[n - 1] = '\0';
  for (;;) {
    nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    emit_line(lg, level, line);
    if (nl == NULL)
      return;
    line = nl + 1;
  }
}

static void
vlog(bh_logger *lg, bh_log_level level, const char *fmt, va_list ap) {
  char stack[LOG_STACK], *heap;

  emit_text(lg, level, vformat(stack, sizeof(stack), &heap, fmt, ap));
  bh__free(heap);
}

void
bh_log(bh_logger *lg, bh_log_level level, const char *fmt, ...) {
  va_list ap;

  if (!bh_logger_enabled(lg, level) || fmt == NULL)
    return;
  va_start(ap, fmt);
  vlog(lg, level, fmt, ap);
  va_end(ap);
}

/* The block opens even when its title is filtered out, so that begin/end
 * pairs stay balanced whatever the level (as in the reference). */
void
bh_log_begin(bh_logger *lg, bh_log_level level, const char *fmt, ...) {
  va_list ap;

  if (lg == NULL)
    return;
  if (bh_logger_enabled(lg, level) && fmt != NULL) {
    va_start(ap, fmt);
    vlog(lg, level, fmt, ap);
    va_end(ap);
  }
  if (lg->indent < INT_MAX)
    lg->indent++;
}

/* An end without a matching begin is a no-op. */
void
bh_log_end(bh_logger *lg) {
  if (lg != NULL && lg->indent > 0)
    lg->indent--;
}

/* ------------------------------------------------------------------------
 * Rendering msgpack objects. */

/* Renders `obj` with bh_value_repr() into stack[0..n) or a new allocation
 * stored in *heap, as vformat(). */
static char *
render(const msgpack_object *obj, char *stack, size_t n, char **heap) {
  size_t len = bh_value_repr(obj, stack, n);

  *heap = NULL;
  if (len < n)
    return stack;
  *heap = bh__malloc(len + 1);
  if (*heap == NULL)
    return stack;
  bh_value_repr(obj, *heap, len + 1);
  return *heap;
}

void
bh__log_object(bh_logger *lg, bh_log_level level, const char *label,
               const msgpack_object *obj) {
  char stack[LOG_STACK], *heap;
  const char *text;

  if (!bh_logger_enabled(lg, level) || obj == NULL)
    return;
  text = render(obj, stack, sizeof(stack), &heap);
  if (label != NULL)
    bh_log(lg, level, "%s: %s", label, text);
  else
    bh_log(lg, level, "%s", text);
  bh__free(heap);
}

/* Returns `key` as a NUL-terminated label: a str key bare, anything else
 * rendered. Storage as render(). */
static char *
label(const msgpack_object *key, char *stack, size_t n, char **heap) {
  char *out = stack;
  size_t len;

  if (key->type != MSGPACK_OBJECT_STR)
    return render(key, stack, n, heap);
  len = key->via.str.size;
  *heap = NULL;
  if (len >= n && (*heap = bh__malloc(len + 1)) != NULL)
    out = *heap;
  else if (len >= n)
    len = n - 1; /* out of memory: truncate */
  memcpy(out, key->via.str.ptr, len);
  out[len] = '\0';
  return out;
}

/* Logs "key: repr(value)" at DEBUG. */
static void
log_field(bh_logger *lg, const msgpack_object_kv *kv) {
  char kstack[128], vstack[LOG_STACK], *kheap, *vheap;
  const char *k = label(&kv->key, kstack, sizeof(kstack), &kheap);
  const char *v = render(&kv->val, vstack, sizeof(vstack), &vheap);

  bh_log(lg, BH_LOG_DEBUG, "%s: %s", k, v);
  bh__free(vheap);
  bh__free(kheap);
}

/* ------------------------------------------------------------------------
 * bh_logger_debug_msg(). */

static void debug_msg(bh_logger *lg, const msgpack_object *msg, int depth);

/* Returns the value of `key` in map `msg`, treating nil as absent. */
static const msgpack_object *
field(const msgpack_object *msg, const char *key) {
  const msgpack_object *o = bh__map_get(msg, key);

  return o != NULL && o->type != MSGPACK_OBJECT_NIL ? o : NULL;
}

static bool
key_is(const msgpack_object *key, const char *s) {
  size_t n = strlen(s);

  return key->type == MSGPACK_OBJECT_STR && key->via.str.size == n &&
         memcmp(key->via.str.ptr, s, n) == 0;
}

/* The fields shown in blocks of their own rather than under "Message:". */
static bool
own_block(const msgpack_object *key) {
  return key_is(key, "traceback") || key_is(key, "exception") ||
         key_is(key, "other_details");
}

/* A map that looks like a bee message: it has "status" or "msg_type". */
static bool
is_message(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_MAP && (bh__map_get(o, "status") != NULL ||
                                           bh__map_get(o, "msg_type") != NULL);
}

static int
str_len(const msgpack_object *o) {
  return o->via.str.size > INT_MAX ? INT_MAX : (int)o->via.str.size;
}

/* Traceback entries may hold several lines each; bh_log() splits them. */
static void
log_traceback(bh_logger *lg, const msgpack_object *tb) {
  const msgpack_object *e;

  bh_log_begin(lg, BH_LOG_DEBUG, "Traceback:");
  if (tb->type != MSGPACK_OBJECT_ARRAY)
    bh__log_object(lg, BH_LOG_DEBUG, NULL, tb);
  for (uint32_t i = 0;
       tb->type == MSGPACK_OBJECT_ARRAY && i < tb->via.array.size; i++) {
    e = &tb->via.array.ptr[i];
    if (e->type == MSGPACK_OBJECT_STR)
      bh_log(lg, BH_LOG_DEBUG, "%.*s", str_len(e), e->via.str.ptr);
    else
      bh__log_object(lg, BH_LOG_DEBUG, NULL, e);
  }
  bh_log_end(lg);
}

/* Every field without a block of its own, in map order; no block when
 * there is none. A message that is not a map is shown whole. */
static void
log_message(bh_logger *lg, const msgpack_object *msg) {
  const msgpack_object_map *m = &msg->via.map;
  uint32_t i, shown = 0;

  if (msg->type != MSGPACK_OBJECT_MAP) {
    bh_log_begin(lg, BH_LOG_DEBUG, "Message:");
    bh__log_object(lg, BH_LOG_DEBUG, NULL, msg);
    bh_log_end(lg);
    return;
  }
  for (i = 0; i < m->size; i++) {
    if (own_block(&m->ptr[i].key))
      continue;
    if (shown++ == 0)
      bh_log_begin(lg, BH_LOG_DEBUG, "Message:");
    log_field(lg, &m->ptr[i]);
  }
  if (shown > 0)
    bh_log_end(lg);
}

/* "Type: message" for the usual {type, message} map of strings, else the
 * exception rendered whole. */
static void
log_exception(bh_logger *lg, const msgpack_object *exc) {
  const msgpack_object *type = bh__map_get(exc, "type");
  const msgpack_object *text = bh__map_get(exc, "message");

  bh_log_begin(lg, BH_LOG_DEBUG, "Exception:");
  if (type != NULL && type->type == MSGPACK_OBJECT_STR && text != NULL &&
      text->type == MSGPACK_OBJECT_STR)
    bh_log(lg, BH_LOG_DEBUG, "%.*s: %.*s", str_len(type), type->via.str.ptr,
           str_len(text), text->via.str.ptr);
  else
    bh__log_object(lg, BH_LOG_DEBUG, NULL, exc);
  bh_log_end(lg);
}

/* A nested message (e.g. other_details.cause) as a block titled by its
 * key, so each level of a chain shows one step deeper. */
static void
log_nested(bh_logger *lg, const msgpack_object_kv *kv, int depth) {
  char stack[128], *heap;

  bh_log_begin(lg, BH_LOG_DEBUG,
               "%s:", label(&kv->key, stack, sizeof(stack), &heap));
  bh__free(heap);
  debug_msg(lg, &kv->val, depth + 1);
  bh_log_end(lg);
}

static void
log_details(bh_logger *lg, const msgpack_object *od, int depth) {
  const msgpack_object_kv *kv;

  bh_log_begin(lg, BH_LOG_DEBUG, "Other details:");
  if (od->type != MSGPACK_OBJECT_MAP)
    bh__log_object(lg, BH_LOG_DEBUG, NULL, od);
  for (uint32_t i = 0; od->type == MSGPACK_OBJECT_MAP && i < od->via.map.size;
       i++) {
    kv = &od->via.map.ptr[i];
    if (is_message(&kv->val) && depth < MAX_MSG_DEPTH)
      log_nested(lg, kv, depth);
    else
      log_field(lg, kv);
  }
  bh_log_end(lg);
}

static void
debug_msg(bh_logger *lg, const msgpack_object *msg, int depth) {
  const msgpack_object *o;

  if ((o = field(msg, "traceback")) != NULL)
    log_traceback(lg, o);
  log_message(lg, msg);
  if ((o = field(msg, "exception")) != NULL)
    log_exception(lg, o);
  if ((o = field(msg, "other_details")) != NULL)
    log_details(lg, o, depth);
}

void
bh_logger_debug_msg(bh_logger *lg, const msgpack_object *msg) {
  if (!bh_logger_enabled(lg, BH_LOG_DEBUG) || msg == NULL)
    return;
  debug_msg(lg, msg, 0);
}
