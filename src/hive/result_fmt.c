/* result_fmt.c - rendering a result's chain of causes as text (raising a
 * failed result from a task is task_api.c's). */
#include "hive/result.h"

#include <string.h>

typedef struct out {
  char *buf;
  size_t len, pos; /* pos counts what would have been written */
} out;

static void
put(out *o, const char *fmt, ...) BH_PRINTF(2, 3);

static void
put(out *o, const char *fmt, ...) {
  va_list ap;
  size_t room = o->pos < o->len ? o->len - o->pos : 0;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(room ? o->buf + o->pos : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    o->pos += (size_t)n;
}

static void
put_str(out *o, const msgpack_object *s) {
  if (s != NULL && s->type == MSGPACK_OBJECT_STR)
    put(o, "%.*s", (int)s->via.str.size, s->via.str.ptr);
  else
    put(o, "?");
}

static void
put_level(out *o, const msgpack_object *m) {
  const msgpack_object *exc = bh__map_get(m, "exception");
  const msgpack_object *tb = bh__map_get(m, "traceback");
  const msgpack_object *d = bh__map_get(m, "other_details");
  const msgpack_object *id = d ? bh__map_get(d, "child_id") : NULL;
  const msgpack_object *reason = bh__map_get(m, "reason");
  uint32_t i;

  if (exc != NULL && exc->type == MSGPACK_OBJECT_MAP) {
    put_str(o, bh__map_get(exc, "type"));
    put(o, ": ");
    put_str(o, bh__map_get(exc, "message"));
  } else if (reason != NULL) {
    put(o, "Cancelled: ");
    put_str(o, reason);
  } else {
    put(o, "(no exception)");
  }
  if (id != NULL && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    put(o, " [child bee %llu]", (unsigned long long)id->via.u64);
  put(o, "\n");
  if (d != NULL && (reason = bh__map_get(d, "reason")) != NULL &&
      reason->type == MSGPACK_OBJECT_STR) {
    put(o, "  reason: ");
    put_str(o, reason);
    put(o, "\n");
  }
  for (i = 0; tb && tb->type == MSGPACK_OBJECT_ARRAY && i < tb->via.array.size;
       i++) {
    put_str(o, &tb->via.array.ptr[i]);
    put(o, "\n");
  }
}

size_t
bh_result_format(const bh_result *r, char *buf, size_t len) {
  out o = {buf, len, 0};
  const msgpack_object *m = bh_result_message(r), *d, *c;

  if (buf != NULL && len > 0)
    buf[0] = '\0';
  if (r == NULL)
    return 0;
  if (bh_result_status(r) == BH_SUCCEEDED) {
    put(&o, "succeeded\n");
    return o.pos;
  }
  for (; m != NULL; m = c) {
    put_level(&o, m);
    d = bh__map_get(m, "other_details");
    c = d ? bh__map_get(d, "cause") : NULL;
    if (c == NULL || c->type != MSGPACK_OBJECT_MAP)
      break;
    put(&o, "Caused by: ");
  }
  return o.pos;
}
