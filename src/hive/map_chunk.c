/* map_chunk.c - the worker's side of bh_map_new() (map.c): the built-in
 * task that runs one chunk of a map. Its args are [name, [item...]]. It
 * calls the handler of task `name` once per item, one after the other in
 * its own fiber, each call seeing that item as its only argument
 * (bh_task_args() is [item]) and the name `name`, as if it were a task of
 * its own; so the user writes one handler per item, and the same handler
 * serves a plain delegation. The chunk answers
 *
 *   [[value...], {index: outcome...}]
 *
 * a value per item (nil for one that failed) and, for each item that
 * failed, a task_done-like map: {status: "raised", exception, traceback,
 * other_details}, or {status: "cancelled", reason} for a handler that
 * returned BH_ECANCELLED. An item's failure never stops the others. The
 * chunk's own cancellation (a deadline, its map freed) stops it between
 * items, and it answers cancelled: the items after are never run. */
#include "hive/map_chunk.h"

#include <string.h>

static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

/* The answer being made. */
typedef struct chunk_out {
  bh__buf vals;     /* the values, without their array's header */
  bh__buf fails;    /* the failures' pairs, without their map's header */
  msgpack_packer vp, fp;
  uint32_t nfail;
  bh__blobs held;   /* the blobs that values name by LOCAL exts */
} chunk_out;

/* Forgets what the last item's handler left in t, as a new task would
 * start; but the reason of the chunk's own cancellation stays. */
static void
item_reset(bh_task *t) {
  t->ret.len = 0;
  t->ret_arg = NULL;
  bh__blobs_release(&t->ret_blobs);
  bh__free(t->errtype);
  bh__free(t->errmsg);
  t->errtype = t->errmsg = NULL;
  if (!t->cancelled) {
    bh__free(t->reason);
    t->reason = NULL;
  }
  bh_value_free(t->tb);
  bh_value_free(t->details);
  t->tb = t->details = NULL;
  bh__task_io_result(t, 0, NULL, NULL);
}

/* The value the item's handler set, with the blobs it names. */
static int
add_value(chunk_out *out, bh_task *t) {
  uint32_t i;

  if (t->ret_arg != NULL) /* part of the item: it lies in the chunk's args */
    return msgpack_pack_object(&out->vp, *t->ret_arg) == 0 ? 0 : BH_ENOMEM;
  if (t->ret.len == 0)
    return msgpack_pack_nil(&out->vp) == 0 ? 0 : BH_ENOMEM;
  for (i = 0; i < t->ret_blobs.len; i++)
    if (bh__blobs_add(&out->held, t->ret_blobs.v[i]) != 0)
      return BH_ENOMEM;
  return bh__buf_append(&out->vals, t->ret.data, t->ret.len);
}

/* Item j failed with rc: nil among the values, and its outcome. */
static int
add_failure(chunk_out *out, bh_task *t, uint32_t j, int rc) {
  msgpack_packer *pk = &out->fp;

  out->nfail++;
  if (msgpack_pack_nil(&out->vp) != 0 || msgpack_pack_uint32(pk, j) != 0)
    return BH_ENOMEM;
  if (rc == BH_ECANCELLED)
    return bh_pack(pk, "{s:s s:s}", "status", "cancelled", "reason",
                   t->reason);
  bh__task_error_of_rc(t, rc);
  return bh_pack(pk, "{s:s s:{s:s s:s} s:o s:o}", "status", "raised",
                 "exception", "type", t->errtype, "message",
                 t->errmsg != NULL ? t->errmsg : "", "traceback",
                 t->tb != NULL ? bh_value_object(t->tb) : &empty_array,
                 "other_details",
                 t->details != NULL ? bh_value_object(t->details) : NULL);
}

/* Runs fn on every item until the chunk is cancelled. Returns 0,
 * BH_ECANCELLED, or BH_ENOMEM (the answer could not be made). */
static int
run_items(bh_task *t, bh_task_fn fn, const msgpack_object *items,
          chunk_out *out) {
  msgpack_object one = {.type = MSGPACK_OBJECT_ARRAY};
  uint32_t j;
  int rc = 0;

  one.via.array.size = 1;
  for (j = 0; j < items->via.array.size && rc == 0 && !t->cancelled; j++) {
    one.via.array.ptr = items->via.array.ptr + j;
    t->args = &one;
    t->kwargs = &empty_map;
    item_reset(t);
    rc = fn(t);
    rc = rc == 0 ? add_value(out, t) : add_failure(out, t, j, rc);
  }
  return t->cancelled ? BH_ECANCELLED : rc; /* what it made is dropped */
}

/* Sets the chunk's return value: [[values], {failures}]. */
static int
answer(bh_task *t, chunk_out *out, uint32_t n) {
  msgpack_packer pk;

  t->ret.len = 0;
  msgpack_packer_init(&pk, &t->ret, bh__buf_write);
  if (msgpack_pack_array(&pk, 2) != 0 || msgpack_pack_array(&pk, n) != 0 ||
      bh__buf_append(&t->ret, out->vals.data, out->vals.len) != 0 ||
      msgpack_pack_map(&pk, out->nfail) != 0 ||
      bh__buf_append(&t->ret, out->fails.data, out->fails.len) != 0) {
    t->ret.len = 0;
    return BH_ENOMEM;
  }
  bh__blobs_release(&t->ret_blobs);
  t->ret_blobs = out->held;
  out->held = (bh__blobs){0};
  return 0;
}

/* Runs the items with t named and shaped as each item's task, then puts
 * t back as the chunk it is. */
static int
run_chunk(bh_task *t, char *name, const msgpack_object *items) {
  const msgpack_object *args = t->args, *kwargs = t->kwargs;
  const char *own_name = t->name;
  bh_task_fn fn = bh__task_handler(t, name);
  chunk_out out = {0};
  int rc;

  if (fn == NULL)
    return BH_ERAISED;
  msgpack_packer_init(&out.vp, &out.vals, bh__buf_write);
  msgpack_packer_init(&out.fp, &out.fails, bh__buf_write);
  t->name = name;
  rc = run_items(t, fn, items, &out);
  t->name = own_name;
  t->args = args;
  t->kwargs = kwargs;
  item_reset(t);
  if (rc == 0)
    rc = answer(t, &out, items->via.array.size);
  bh__buf_free(&out.vals);
  bh__buf_free(&out.fails);
  bh__blobs_release(&out.held);
  return rc;
}

int
bh__map_chunk_task(bh_task *t) {
  const msgpack_object *a = t->args, *items;
  char *name;
  int rc;

  if (a->via.array.size != 2 || a->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
      a->via.array.ptr[1].type != MSGPACK_OBJECT_ARRAY)
    return bh_raise(t, "TypeError", "%s takes [task name, [item...]]",
                    BH__MAP_CHUNK_TASK);
  items = &a->via.array.ptr[1];
  name = bh__strndup(a->via.array.ptr[0].via.str.ptr,
                     a->via.array.ptr[0].via.str.size);
  if (name == NULL)
    return BH_ENOMEM;
  rc = run_chunk(t, name, items);
  bh__free(name);
  return rc;
}
