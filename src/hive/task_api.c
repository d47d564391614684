/* task_api.c - what a task handler calls: its arguments, its return value,
 * its exceptions (and a failed result raised on), and waiting for time or
 * descriptors. */
#include "hive/bee.h"
#include "hive/task.h"
#include "value/fmt.h"

#include <string.h>

bh_bee *
bh_task_bee(bh_task *t) {
  return t->bee;
}

const char *
bh_task_name(const bh_task *t) {
  return t->name;
}

int64_t
bh_task_id(const bh_task *t) {
  return t->id;
}

const msgpack_object *
bh_task_args(const bh_task *t) {
  return t->args;
}

const msgpack_object *
bh_task_kwargs(const bh_task *t) {
  return t->kwargs;
}

const bh_context *
bh_task_context(const bh_task *t) {
  return &t->bee->ctx;
}

/* True when fmt has a part after its first bracketed group (kwargs). */
static bool
has_kwargs(const char *fmt) {
  int depth = 0;
  const char *p;

  for (p = fmt; *p != '\0'; p++) {
    if (*p == '[' || *p == '{')
      depth++;
    else if ((*p == ']' || *p == '}') && --depth == 0)
      break;
  }
  return *p != '\0' && p[1 + strspn(p + 1, " ,")] != '\0';
}

/* Raises from the caller's frame when the call macro recorded it, else
 * from the library's own line. */
#define RAISE_AT(site, ...)                                                   \
  ((site).call != NULL ? bh_raise_at(t, (site).file, (site).line,             \
                                     (site).func, __VA_ARGS__)                \
                       : bh_raise(t, __VA_ARGS__))

/* Unpacks args and kwargs in one pass, as the items of a two-item array,
 * so that one va_list serves both; errors name "args[1]" or
 * "kwargs{key}". */
/* The name in parentheses: beehive.h's call macro stays out. */
int
(bh_task_unpack)(bh_task *t, const char *fmt, ...) {
  msgpack_object items[2] = {*t->args, *t->kwargs}, both;
  char wrapped[512], err[256];
  bh__site site = {NULL, NULL, NULL, 0};
  va_list ap;
  int rc, n;

  bh__site_take("bh_task_unpack", &site);
  both.type = MSGPACK_OBJECT_ARRAY;
  both.via.array.ptr = items;
  both.via.array.size = has_kwargs(fmt) ? 2 : 1;
  n = snprintf(wrapped, sizeof(wrapped), "[%s]", fmt);
  if (n < 0 || (size_t)n >= sizeof(wrapped))
    return RAISE_AT(site, "ValueError", "bh_task_unpack: format longer "
                    "than %zu bytes", sizeof(wrapped) - 3);
  va_start(ap, fmt);
  rc = bh_vunpack(&both, err, sizeof(err), wrapped, ap);
  va_end(ap);
  if (rc == 0)
    return 0;
  /* Checked alone, so that the message's offsets are the caller's. */
  if (rc == BH_EFORMAT &&
      bh__check_format_quoted(fmt, true, err, sizeof(err)) != 0)
    return RAISE_AT(site, "ValueError", "bh_task_unpack: %s", err);
  if (strncmp(err, "[0]", 3) == 0)
    return RAISE_AT(site, "TypeError", "args%s", err + 3);
  if (strncmp(err, "[1]", 3) == 0)
    return RAISE_AT(site, "TypeError", "kwargs%s", err + 3);
  return RAISE_AT(site, "TypeError", "arguments: %s", err);
}

/* A call that failed: its code, and why (bh_task_errmsg), which a handler
 * returning the code raises from the caller's frame. */
static int
call_failed(bh_task *t, int rc, const bh__site *site, const char *call,
            const char *fmt) {
  char why[256];

  bh__pack_why(fmt, rc, why, sizeof(why));
  return bh__task_call_error(t, rc,
                             rc == BH_ENOMEM ? "MemoryError" : "ValueError",
                             bh__asprintf("%s: %s", call, why), site);
}

/* The name in parentheses: beehive.h's call macro stays out. */
int
(bh_return)(bh_task *t, const char *fmt, ...) {
  bh__site site = {NULL, NULL, NULL, 0};
  msgpack_packer pk;
  va_list ap;
  int rc;

  bh__site_take("bh_return", &site);
  t->ret.len = 0;
  t->ret_arg = NULL;
  bh__blobs_release(&t->ret_blobs);
  msgpack_packer_init(&pk, &t->ret, bh__buf_write);
  va_start(ap, fmt);
  rc = bh__vpack_blobs(&pk, fmt, ap, &t->ret_blobs);
  va_end(ap);
  if (rc != 0) {
    t->ret.len = 0;
    return call_failed(t, rc, &site, "bh_return", fmt);
  }
  return 0;
}

/* True if o is root or an object inside it (by address). */
static bool
holds(const msgpack_object *root, const msgpack_object *o) {
  uint32_t i;

  if (root == o)
    return true;
  if (root->type == MSGPACK_OBJECT_ARRAY) {
    for (i = 0; i < root->via.array.size; i++)
      if (holds(&root->via.array.ptr[i], o))
        return true;
  } else if (root->type == MSGPACK_OBJECT_MAP) {
    for (i = 0; i < root->via.map.size; i++)
      if (holds(&root->via.map.ptr[i].val, o))
        return true;
  }
  return false;
}

int
bh_return_object(bh_task *t, const msgpack_object *obj) {
  msgpack_packer pk;

  if (obj == NULL)
    return BH_EINVAL;
  t->ret.len = 0;
  t->ret_arg = NULL;
  /* Part of the task's own arguments lives as long as the task: it is
   * answered from where it is, not copied (an echo, a forward). */
  if (obj != NULL && t->info != NULL &&
      (holds(t->args, obj) || holds(t->kwargs, obj))) {
    bh__blobs_release(&t->ret_blobs);
    t->ret_arg = obj;
    return 0;
  }
  bh__blobs_release(&t->ret_blobs);
  msgpack_packer_init(&pk, &t->ret, bh__buf_write);
  if (msgpack_pack_object(&pk, *obj) != 0) {
    t->ret.len = 0;
    return BH_ENOMEM;
  }
  return 0;
}

int
bh_raise_at(bh_task *t, const char *file, int line, const char *func,
            const char *type, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  bh__task_set_error(t, type, bh__vasprintf(fmt, ap));
  va_end(ap);
  bh_value_free(t->tb);
  t->tb = NULL;
  bh__task_tb_file(t, file, line, func);
  bh__task_tb_where(t);
  return BH_ERAISED;
}

void
bh_cancel_reason(bh_task *t, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  bh__free(t->reason);
  t->reason = bh__vasprintf(fmt, ap);
  va_end(ap);
}

/* Sleeps ms from now to the nanosecond (timer.h), not to the millisecond
 * tick after. */
int
bh_sleep(bh_task *t, int64_t ms) {
  int rc = bh__task_wait_ns(t, bh__ns_after((int64_t)uv_hrtime(), ms));

  return rc == BH_ETIMEDOUT ? 0 : rc;
}

typedef struct fd_wait {
  uv_poll_t poll;
  bh_task *t;
} fd_wait;

static void
poll_cb(uv_poll_t *p, int status, int events) {
  fd_wait *w = p->data;
  int got = (events & UV_READABLE ? BH_READABLE : 0) |
            (events & UV_WRITABLE ? BH_WRITABLE : 0);

  bh__task_wake(w->t, status < 0 ? status : got);
}

static void
poll_closed(uv_handle_t *h) {
  bh__free(h->data);
}

int
bh_wait_fd(bh_task *t, int fd, int events, int64_t deadline) {
  fd_wait *w;
  int rc;

  /* A wait on no event would only end at its deadline: surely a slip. */
  if ((events & (BH_READABLE | BH_WRITABLE)) == 0 ||
      (events & ~(BH_READABLE | BH_WRITABLE)) != 0)
    return bh__task_call_error(
        t, BH_EINVAL, "ValueError",
        bh__asprintf("bh_wait_fd: events %d: give BH_READABLE, "
                     "BH_WRITABLE or both", events), NULL);
  if ((w = bh__calloc(1, sizeof(*w))) == NULL)
    return BH_ENOMEM;
  w->t = t;
  w->poll.data = w;
  rc = uv_poll_init(t->bee->loop, &w->poll, fd);
  if (rc != 0) {
    bh__free(w);
    return rc;
  }
  rc = uv_poll_start(&w->poll, (events & BH_READABLE ? UV_READABLE : 0) |
                                   (events & BH_WRITABLE ? UV_WRITABLE : 0),
                     poll_cb);
  if (rc == 0)
    rc = bh__task_wait(t, deadline);
  uv_close((uv_handle_t *)&w->poll, poll_closed);
  return rc;
}

int
bh_raise_result_at(bh_task *t, const char *file, int line, const char *func,
                   const bh_result *r) {
  const msgpack_object *m = bh_result_message(r);
  const msgpack_object *tb = bh__map_get(m, "traceback");
  const msgpack_object *d = bh__map_get(m, "other_details");
  char where[512];
  uint32_t i;

  bh_raise_at(t, file, line, func,
              bh_result_errtype(r) ? bh_result_errtype(r) : "RuntimeError",
              "%s", bh_result_errmsg(r) ? bh_result_errmsg(r) : "failed");
  for (i = 0; tb && tb->type == MSGPACK_OBJECT_ARRAY && i < tb->via.array.size;
       i++) {
    const msgpack_object *s = &tb->via.array.ptr[i];

    if (s->type != MSGPACK_OBJECT_STR)
      continue;
    snprintf(where, sizeof(where), "%.*s", (int)s->via.str.size,
             s->via.str.ptr);
    bh__task_tb_add(t, where);
  }
  bh_value_free(t->details);
  t->details = d ? bh_value_from_object(d) : NULL;
  return BH_ERAISED;
}
