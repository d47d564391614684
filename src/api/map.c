/* map.c - bh_map_new(): one task over many items, as concurrent.futures'
 * Executor.map(fn, items, chunksize=k), from inside a task.
 *
 * - The items are one msgpack array, packed once from the caller's format
 *   ("#I" packs a C array) and owned by the map.
 * - A chunk is k consecutive items (the last may be shorter). With k = 1
 *   an item is a plain delegation of task `name` with args [item], which
 *   any worker serves. With k > 1 a chunk is one delegation of the
 *   built-in task __map_chunk__ with args [name, [item...]]: the worker
 *   runs the user's per-item handler k times and answers each item's
 *   outcome (map_chunk.c). One task message then carries k items, and its
 *   round trip and bookkeeping are paid once per chunk.
 * - The window bounds the chunks started and not wholly handed back: the
 *   next chunk starts when the caller asks for the item after a chunk's
 *   last. So memory holds at most `window` chunks, however many items.
 * - Ordered: chunks are handed back in input order (the head one is
 *   waited for; later ones that end first wait in the window). As
 *   completed: chunks in the order they end, a chunk's items in order.
 * - An item's failure is its own: the worker goes on with the rest of its
 *   chunk, and the item comes back raised with its chain. A chunk that
 *   fails whole (its worker died, its deadline passed, no such task)
 *   fails each of its items with the chunk's result.
 * - Cancellation: bh_map_free() frees the group, which cancels every
 *   chunk in flight (cancel_task to its worker, which stops between
 *   items); the task's own cancellation makes bh_map_next() return
 *   BH_ECANCELLED, and the caller then frees the map. */
#include "hive/bee.h"
#include "hive/map_chunk.h"
#include "hive/taskname.h"
#include "hive/result.h"
#include "value/fmt.h"

#include <limits.h>
#include <string.h>

#define DEFAULT_WINDOW_ITEMS 4096 /* as the main job's default window */

struct bh_map {
  bh_task *t;
  bh_group *g;               /* the chunks' delegations */
  char *name;                /* the per-item task */
  bh_value *items;           /* the input array */
  size_t n, k;               /* items, and items per chunk */
  size_t window;             /* chunks started and not wholly handed back,
                              * at most */
  size_t n_chunks, next;     /* chunks in all; the next to start */
  size_t live;               /* started and not wholly handed back */
  bool ordered;
  bh_future **ring;          /* ordered: chunk c's future at c % n_ring */
  size_t n_ring, head;       /* ...and the next chunk to hand back */
  /* The chunk being handed back. */
  bh_future *cur;
  size_t first, count, pos;  /* its items, and the next one to hand back */
  const msgpack_object *vals, *fails; /* k > 1: its answer's two parts */
  uint32_t fail_at;          /* the next entry of fails */
  bh_result *bad;            /* an answer of the wrong shape: every item's
                              * failure */
  bh_result *item_res;       /* the failure of the item handed back last */
};

static const msgpack_object nil_obj = {.type = MSGPACK_OBJECT_NIL};

/* ------------------------------------------------------------------------
 * Starting chunks. */

/* Delegates chunk c: its items go as they lie in the input array. */
static int
start_chunk(bh_map *m, size_t c) {
  const msgpack_object *all = bh_value_object(m->items);
  msgpack_object two[2], args = {.type = MSGPACK_OBJECT_ARRAY};
  size_t first = c * m->k;
  void *udata = (void *)(uintptr_t)c;
  bh_future *f;
  int rc;

  two[1].type = MSGPACK_OBJECT_ARRAY;
  two[1].via.array.ptr = all->via.array.ptr + first;
  two[1].via.array.size = (uint32_t)(m->n - first < m->k ? m->n - first : m->k);
  if (m->k == 1) {
    rc = bh_group_delegate_value(m->g, &f, udata, m->name, &two[1], NULL);
  } else {
    two[0].type = MSGPACK_OBJECT_STR;
    two[0].via.str.ptr = m->name;
    two[0].via.str.size = (uint32_t)strlen(m->name);
    args.via.array.ptr = two;
    args.via.array.size = 2;
    rc = bh_group_delegate_value(m->g, &f, udata, BH__MAP_CHUNK_TASK, &args,
                                 NULL);
  }
  if (rc == 0 && m->ordered)
    m->ring[c % m->n_ring] = f;
  return rc;
}

/* Starts chunks while the window has room. */
static int
fill(bh_map *m) {
  int rc;

  while (m->live < m->window && m->next < m->n_chunks) {
    if ((rc = start_chunk(m, m->next)) != 0)
      return rc;
    m->next++;
    m->live++;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * Handing items back. */

/* True when o is [[value...] of count, {index: map}] with ascending
 * indexes below count: the answer of a chunk (map_chunk.c). */
static bool
answer_ok(const msgpack_object *o, size_t count) {
  const msgpack_object *vals, *fails;
  uint64_t prev = 0;
  uint32_t i;

  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2)
    return false;
  vals = &o->via.array.ptr[0];
  fails = &o->via.array.ptr[1];
  if (vals->type != MSGPACK_OBJECT_ARRAY || vals->via.array.size != count ||
      fails->type != MSGPACK_OBJECT_MAP)
    return false;
  for (i = 0; i < fails->via.map.size; i++) {
    const msgpack_object_kv *kv = &fails->via.map.ptr[i];

    if (kv->key.type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        kv->key.via.u64 >= count || (i > 0 && kv->key.via.u64 <= prev) ||
        kv->val.type != MSGPACK_OBJECT_MAP)
      return false;
    prev = kv->key.via.u64;
  }
  return true;
}

/* Makes f, which holds chunk udata's answer, the chunk being handed back. */
static void
take(bh_map *m, bh_future *f) {
  const bh_result *r = bh_future_result(f);
  size_t c = (size_t)(uintptr_t)bh_future_udata(f);
  const msgpack_object *v = bh_result_value(r);
  char msg[200];

  m->cur = f;
  m->first = c * m->k;
  m->count = m->n - m->first < m->k ? m->n - m->first : m->k;
  m->pos = 0;
  m->fail_at = 0;
  if (m->k == 1 || bh_result_status(r) != BH_SUCCEEDED)
    return;
  if (answer_ok(v, m->count)) {
    m->vals = &v->via.array.ptr[0];
    m->fails = &v->via.array.ptr[1];
    return;
  }
  snprintf(msg, sizeof(msg), "bh_map: the answer to items %zu to %zu is not "
           "[[value...], {index: outcome...}]", m->first,
           m->first + m->count - 1);
  m->bad = bh__result_make(BH_RAISED, bh_result_child_id(r), "TypeError",
                           msg, NULL, NULL, NULL);
}

/* Waits for the next chunk to hand back. */
static int
wait_chunk(bh_map *m, int64_t deadline) {
  bh_future *f;
  int rc;

  if (m->ordered) {
    f = m->ring[m->head % m->n_ring];
    rc = bh_future_wait(f, deadline);
  } else {
    rc = bh_group_next(m->g, &f, deadline);
  }
  if (rc == 0)
    take(m, f);
  return rc;
}

/* The chunk being handed back has been, wholly. */
static void
chunk_done(bh_map *m) {
  if (m->ordered)
    m->ring[m->head++ % m->n_ring] = NULL;
  bh_future_free(m->cur);
  bh_result_free(m->bad);
  m->cur = NULL;
  m->bad = NULL;
  m->vals = m->fails = NULL;
  m->live--;
}

/* Item j of the chunk failed in the worker, which said `outcome`: wrapped
 * as a delegation's failure is, naming the item. */
static bh_result *
wrap_item(bh_map *m, size_t j, const msgpack_object *outcome) {
  const msgpack_object *st = bh__map_get(outcome, "status");
  int64_t child = bh_result_child_id(bh_future_result(m->cur));
  bool cancelled = st != NULL && st->type == MSGPACK_OBJECT_STR &&
                   st->via.str.size == 9 &&
                   memcmp(st->via.str.ptr, "cancelled", 9) == 0;
  const msgpack_object *reason = bh__map_get(outcome, "reason");
  char line[256];

  snprintf(line, sizeof(line), "  in item %zu of a map of task '%s' by bee "
           "%lld to child bee %lld", m->first + j, m->name,
           (long long)m->t->bee->id, (long long)child);
  if (cancelled)
    return bh__result_wrap(child, line, "RuntimeError",
                           "Delegated task has been cancelled.", "reason",
                           reason != NULL ? reason : &nil_obj);
  return bh__result_wrap(child, line, "RuntimeError",
                         "Delegated task raised an exception.", "cause",
                         outcome);
}

/* Fills *out with item pos of the chunk being handed back. */
static int
hand_out(bh_map *m, bh_map_item *out) {
  const bh_result *r = bh_future_result(m->cur);
  const msgpack_object_kv *fail = NULL;
  size_t j = m->pos;

  *out = (bh_map_item){.index = m->first + j, .value = &nil_obj};
  if (m->fails != NULL && m->fail_at < m->fails->via.map.size &&
      m->fails->via.map.ptr[m->fail_at].key.via.u64 == j)
    fail = &m->fails->via.map.ptr[m->fail_at];
  if (fail != NULL) {
    m->item_res = wrap_item(m, j, &fail->val);
    if (m->item_res == NULL)
      return BH_ENOMEM;
    m->fail_at++;
  }
  m->pos++;
  if (m->bad != NULL || fail != NULL || bh_result_status(r) != BH_SUCCEEDED) {
    out->result = m->bad ? m->bad : fail ? m->item_res : r;
    out->status = bh_result_status(out->result);
  } else {
    out->status = BH_SUCCEEDED;
    out->value = m->k == 1 ? bh_result_value(r) : &m->vals->via.array.ptr[j];
  }
  return 0;
}

int
bh_map_next(bh_map *m, bh_map_item *out, int64_t deadline) {
  int rc;

  if (m == NULL || out == NULL)
    return BH_EINVAL;
  bh_result_free(m->item_res);
  m->item_res = NULL;
  if (m->cur != NULL && m->pos == m->count)
    chunk_done(m);
  if ((rc = fill(m)) != 0)
    return rc;
  if (m->cur == NULL) {
    if (m->live == 0)
      return BH_EDONE;
    if ((rc = wait_chunk(m, deadline)) != 0)
      return rc;
  }
  return hand_out(m, out);
}

/* ------------------------------------------------------------------------
 * Making and freeing. */

void
bh_map_free(bh_map *m) {
  size_t i;

  if (m == NULL)
    return;
  if (m->ordered) {
    for (i = 0; i < m->n_ring; i++)
      bh_future_free(m->ring[i]);
  } else {
    bh_future_free(m->cur);
  }
  bh_group_free(m->g); /* cancels the chunks in flight */
  bh_result_free(m->item_res);
  bh_result_free(m->bad);
  bh_value_free(m->items);
  bh__free(m->ring);
  bh__free(m->name);
  bh__free(m);
}

/* A call the caller got wrong: rc, with why as the task's error message
 * (bh_task_errmsg), which returning rc from the handler raises. */
static int
refuse(bh_task *t, int rc, const char *fmt, ...) BH_PRINTF(3, 4);
static int
refuse(bh_task *t, int rc, const char *fmt, ...) {
  va_list ap;
  char *msg;

  va_start(ap, fmt);
  msg = bh__vasprintf(fmt, ap);
  va_end(ap);
  return bh__task_io_result(t, rc,
                            rc == BH_ENOMEM ? "MemoryError" : "ValueError",
                            msg);
}

/* An external worker class runs a chunk only if its program has the
 * built-in task of chunks, which is no part of the protocol. */
static bool
external_without_chunks(const bh_class *wc) {
  return wc != NULL && wc->program != NULL &&
         !bh__class_lists_task(wc, BH__MAP_CHUNK_TASK);
}

/* The options' ranges (include/beehive.h); 0 or a refusal naming one. */
static int
check_opts(bh_task *t, const char *name, const bh_map_opts *o) {
  if (name == NULL || name[0] == '\0')
    return refuse(t, BH_EINVAL, "bh_map_new: the task name is %s",
                  name == NULL ? "NULL" : "empty");
  if (o == NULL)
    return 0;
  if (o->chunk < -1 || o->chunk > BH_MAP_CHUNK_MAX)
    return refuse(t, BH_EINVAL, "bh_map_new: chunk %d is out of range: it "
                  "must be -1 or 0 (default 1) or 1 to %d", o->chunk,
                  BH_MAP_CHUNK_MAX);
  if (o->chunk > 1 && external_without_chunks(t->bee->worker_class))
    return refuse(t, BH_EINVAL, "bh_map_new: chunk %d needs the built-in "
                  "task " BH__MAP_CHUNK_TASK ", which worker class '%s' (an "
                  "external program) does not list: give chunk 1", o->chunk,
                  t->bee->worker_class->name);
  if (o->window < -1)
    return refuse(t, BH_EINVAL, "bh_map_new: window %d is out of range: it "
                  "must be -1 (no limit), 0 (default: 4096 items' worth) or "
                  "at least 1", o->window);
  if (o->order != BH_MAP_ORDERED && o->order != BH_MAP_AS_COMPLETED)
    return refuse(t, BH_EINVAL, "bh_map_new: order %d is out of range: it "
                  "must be BH_MAP_ORDERED (0) or BH_MAP_AS_COMPLETED (1)",
                  o->order);
  return 0;
}

/* Packs the items; they must make one array. */
static int
pack_items(bh_task *t, bh_value **out, const char *fmt, va_list ap) {
  char why[160];
  size_t count;
  int rc = 0;

  if (bh__check_format(fmt, false, why, sizeof(why), &count) != 0)
    return refuse(t, BH_EFORMAT, "bh_map_new: the items' %s", why);
  *out = bh_value_vpack(&rc, fmt, ap);
  if (*out == NULL && (rc == BH_EMSGSIZE || rc == BH_EFORMAT)) {
    bh__pack_why(fmt, rc, why, sizeof(why)); /* "format \"...\": ..." */
    return refuse(t, rc, "bh_map_new: the items' %s", why);
  }
  if (*out == NULL)
    return refuse(t, rc != 0 ? rc : BH_ENOMEM, "bh_map_new: the items: %s",
                  bh_strerror(rc != 0 ? rc : BH_ENOMEM));
  if (bh_value_object(*out)->type != MSGPACK_OBJECT_ARRAY) {
    rc = refuse(t, BH_EINVAL, "bh_map_new: the items must make an array, "
                "got %s (\"%s\")", bh__type_name(bh_value_object(*out)), fmt);
    bh_value_free(*out);
    *out = NULL;
  }
  return rc;
}

/* Fills m's sizes from the options. */
static int
setup(bh_map *m, const bh_map_opts *o) {
  int chunk = o != NULL ? o->chunk : 0, window = o != NULL ? o->window : 0;

  m->n = bh_value_object(m->items)->via.array.size;
  m->k = chunk > 0 ? (size_t)chunk : 1;
  m->n_chunks = (m->n + m->k - 1) / m->k;
  /* window -1: no limit, every chunk at once; chunk -1: none, as 0. */
  m->window = window > 0    ? (size_t)window
              : window < 0 ? SIZE_MAX
                           : (DEFAULT_WINDOW_ITEMS + m->k - 1) / m->k;
  if (m->window < 2 && window == 0)
    m->window = 2;
  m->ordered = o == NULL || o->order == BH_MAP_ORDERED;
  if ((m->g = bh_group_new(m->t)) == NULL)
    return BH_ENOMEM;
  bh_group_set_opts(m->g, o != NULL ? o->deleg : NULL);
  if (!m->ordered || m->n_chunks == 0)
    return 0;
  m->n_ring = m->window < m->n_chunks ? m->window : m->n_chunks;
  m->ring = bh__calloc(m->n_ring, sizeof(*m->ring));
  return m->ring != NULL ? 0 : BH_ENOMEM;
}

int
bh_map_new(bh_task *t, bh_map **out, const char *name, const bh_map_opts *o,
           const char *fmt, ...) {
  bh_map *m;
  va_list ap;
  int rc;

  if (out == NULL || t == NULL)
    return BH_EINVAL;
  *out = NULL;
  if ((rc = check_opts(t, name, o)) != 0)
    return rc;
  m = bh__calloc(1, sizeof(*m));
  if (m == NULL || (m->name = bh__strdup(name)) == NULL) {
    bh__free(m);
    return refuse(t, BH_ENOMEM, "bh_map_new: %s", bh_strerror(BH_ENOMEM));
  }
  m->t = t;
  va_start(ap, fmt);
  rc = pack_items(t, &m->items, fmt, ap);
  va_end(ap);
  if (rc != 0) {
    bh_map_free(m);
    return rc;
  }
  rc = setup(m, o);
  if (rc == 0)
    rc = fill(m);
  if (rc != 0) {
    bh_map_free(m);
    return refuse(t, rc, "bh_map_new: %s", bh_strerror(rc));
  }
  bh__task_io_result(t, 0, NULL, NULL);
  *out = m;
  return 0;
}
