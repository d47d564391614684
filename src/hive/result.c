/* result.c - the result of a delegation as the delegating bee records it:
 * a map with the reference's keys, and accessors over its chain of causes
 * (other_details.cause, recursively). */
#include "hive/result.h"

#include <string.h>

struct bh_result {
  bh_value *msg;
  int64_t child_id;
  bh_status status;
  char *errtype, *errmsg, *reason; /* top of the chain */
  char *root_type, *root_msg;      /* innermost exception */
  int signum;                      /* bh_run's: the cancelling signal */
};

static const msgpack_object nil_obj = {.type = MSGPACK_OBJECT_NIL};

static char *
str_dup(const msgpack_object *o) {
  if (o == NULL || o->type != MSGPACK_OBJECT_STR)
    return NULL;
  return bh__strndup(o->via.str.ptr, o->via.str.size);
}

static bool
str_is(const msgpack_object *o, const char *s) {
  return o != NULL && o->type == MSGPACK_OBJECT_STR &&
         o->via.str.size == strlen(s) &&
         memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* The next message down the chain, or NULL. */
static const msgpack_object *
cause_of(const msgpack_object *m) {
  const msgpack_object *d = bh__map_get(m, "other_details");
  const msgpack_object *c = d ? bh__map_get(d, "cause") : NULL;

  return (c != NULL && c->type == MSGPACK_OBJECT_MAP) ? c : NULL;
}

static void
find_root(bh_result *r) {
  const msgpack_object *m = bh_value_object(r->msg), *exc = NULL;

  for (; m != NULL; m = cause_of(m)) {
    const msgpack_object *e = bh__map_get(m, "exception");

    if (e != NULL && e->type == MSGPACK_OBJECT_MAP)
      exc = e;
  }
  if (exc != NULL) {
    r->root_type = str_dup(bh__map_get(exc, "type"));
    r->root_msg = str_dup(bh__map_get(exc, "message"));
  }
}

bh_result *
bh__result_new(bh_value *v, int64_t child_id) {
  bh_result *r = v ? bh__calloc(1, sizeof(*r)) : NULL;
  const msgpack_object *m, *st, *exc;

  if (r == NULL) {
    bh_value_free(v);
    return NULL;
  }
  r->msg = v;
  r->child_id = child_id;
  m = bh_value_object(v);
  st = bh__map_get(m, "status");
  r->status = str_is(st, "succeeded") ? BH_SUCCEEDED
              : str_is(st, "cancelled") ? BH_CANCELLED
                                        : BH_RAISED;
  exc = bh__map_get(m, "exception");
  if (r->status == BH_RAISED && exc != NULL) {
    r->errtype = str_dup(bh__map_get(exc, "type"));
    r->errmsg = str_dup(bh__map_get(exc, "message"));
  } else if (r->status == BH_CANCELLED) {
    r->reason = str_dup(bh__map_get(m, "reason"));
    r->errtype = bh__strdup("CancelledError");
    r->errmsg = bh__strdup(r->reason ? r->reason : "cancelled");
  }
  find_root(r);
  return r;
}

static void
pack_cstr(msgpack_packer *pk, const char *s) {
  if (s == NULL)
    msgpack_pack_nil(pk);
  else
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static const char *const status_str[] = {"succeeded", "raised", "cancelled"};

/* Packs the map of a result; exc_type NULL means no exception field. */
static bh_result *
pack_result(bh_status st, int64_t child_id, const char *exc_type,
            const char *exc_msg, const bh__wire_done *d) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  bh_value *v;

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, st == BH_RAISED ? 4 : 2);
  pack_cstr(&pk, "status");
  pack_cstr(&pk, status_str[st]);
  if (st == BH_SUCCEEDED) {
    pack_cstr(&pk, "returning_value");
    msgpack_pack_object(&pk, d->returning_value ? *d->returning_value
                                                : nil_obj);
  } else if (st == BH_CANCELLED) {
    pack_cstr(&pk, "reason");
    pack_cstr(&pk, d->reason);
  } else {
    pack_cstr(&pk, "exception");
    if (exc_type != NULL) {
      msgpack_pack_map(&pk, 2);
      pack_cstr(&pk, "type");
      pack_cstr(&pk, exc_type);
      pack_cstr(&pk, "message");
      pack_cstr(&pk, exc_msg);
    } else {
      msgpack_pack_object(&pk, d->exception ? *d->exception : nil_obj);
    }
    pack_cstr(&pk, "traceback");
    if (d->traceback != NULL)
      msgpack_pack_object(&pk, *d->traceback);
    else
      msgpack_pack_array(&pk, 0);
    pack_cstr(&pk, "other_details");
    msgpack_pack_object(&pk, d->other_details ? *d->other_details : nil_obj);
  }
  v = bh_value_from_bytes(sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  return bh__result_new(v, child_id);
}

bh_result *
bh__result_from_done(const bh__wire_done *d, int64_t child_id) {
  return pack_result(d->status, child_id, NULL, NULL, d);
}

bh_result *
bh__result_make(bh_status st, int64_t child_id, const char *type,
                const char *message, const char *reason,
                const msgpack_object *traceback,
                const msgpack_object *details) {
  bh__wire_done d = {.status = st,
                     .reason = reason,
                     .traceback = traceback,
                     .other_details = details};

  return pack_result(st, child_id, type, message, &d);
}

bh_result *
bh__result_wrap(int64_t child_id, const char *tb_line, const char *type,
                const char *msg, const char *key, const msgpack_object *obj) {
  bh_value *det = bh_value_pack(NULL, "{s:I s:o}", "child_id", child_id, key,
                                obj);
  bh_value *tb = bh_value_pack(NULL, "[s]", tb_line);
  bh_result *r;

  r = bh__result_make(BH_RAISED, child_id, type, msg, NULL,
                      tb ? bh_value_object(tb) : NULL,
                      det ? bh_value_object(det) : NULL);
  bh_value_free(det);
  bh_value_free(tb);
  return r;
}

/* The accessors take NULL, the *out of a call that failed: a caller that
 * reads it before checking the code gets "raised, nothing", not a crash. */
bh_status
bh_result_status(const bh_result *r) {
  return r != NULL ? r->status : BH_RAISED;
}

int64_t
bh_result_child_id(const bh_result *r) {
  return r != NULL ? r->child_id : -1;
}

const msgpack_object *
bh_result_value(const bh_result *r) {
  const msgpack_object *v;

  if (r == NULL || r->status != BH_SUCCEEDED)
    return &nil_obj;
  v = bh__map_get(bh_value_object(r->msg), "returning_value");
  return v ? v : &nil_obj;
}

/* The name in parentheses: beehive.h's call macro stays out. */
int
(bh_result_unpack)(const bh_result *r, char *errbuf, size_t errlen,
                 const char *fmt, ...) {
  va_list ap;
  int rc;

  if (r == NULL)
    return BH_EINVAL;
  va_start(ap, fmt);
  rc = bh_vunpack(bh_result_value(r), errbuf, errlen, fmt, ap);
  va_end(ap);
  return rc;
}

const char *
bh_result_errtype(const bh_result *r) {
  return r != NULL ? r->errtype : NULL;
}

const char *
bh_result_errmsg(const bh_result *r) {
  return r != NULL ? r->errmsg : NULL;
}

const char *
bh_result_reason(const bh_result *r) {
  return r != NULL ? r->reason : NULL;
}

int
bh_result_signal(const bh_result *r) {
  return r->signum;
}

void
bh__result_set_signal(bh_result *r, int signum) {
  r->signum = signum;
}

const char *
bh_result_root_errtype(const bh_result *r) {
  if (r == NULL)
    return NULL;
  return r->root_type ? r->root_type : r->errtype;
}

const char *
bh_result_root_errmsg(const bh_result *r) {
  if (r == NULL)
    return NULL;
  return r->root_msg ? r->root_msg : r->errmsg;
}

const msgpack_object *
bh_result_message(const bh_result *r) {
  return r != NULL ? bh_value_object(r->msg) : NULL;
}

void
bh_result_free(bh_result *r) {
  if (r == NULL)
    return;
  bh_value_free(r->msg);
  bh__free(r->errtype);
  bh__free(r->errmsg);
  bh__free(r->reason);
  bh__free(r->root_type);
  bh__free(r->root_msg);
  bh__free(r);
}
