/* wcfg.c - a worker's settings as one record (wcfg.h). */
#include "hive/wcfg.h"
#include "wire/wire.h"

#include <string.h>

int
bh__wcfg_from_spawn(bh__wcfg *c, const bh__spawn_opts *o) {
  memset(c, 0, sizeof(*c));
  c->max_concurrency = bh__conc_norm(o->max_concurrency);
  c->prefetch = bh__prefetch_norm(o->prefetch, c->max_concurrency,
                                  o->cls != NULL && o->cls->program != NULL);
  c->max_frame = (int64_t)(o->max_frame ? o->max_frame
                                        : BH__DEFAULT_MAX_FRAME);
  /* -1 (no limit) travels as the largest limit and as 0: the bootstrap's
   * ranges (docs/PROTOCOL.md section 6) have no -1 for these. */
  c->http_max_host_connections = o->http_max_host_connections < 0
                                     ? INT_MAX
                                     : o->http_max_host_connections;
  c->http_max_connections = o->http_max_connections > 0
                                ? o->http_max_connections
                                : 0;
  if ((o->s3_profile != NULL &&
       (c->s3_profile = bh__strdup(o->s3_profile)) == NULL) ||
      (o->http_ca_file != NULL &&
       (c->http_ca_file = bh__strdup(o->http_ca_file)) == NULL)) {
    bh__wcfg_clear(c);
    return BH_ENOMEM;
  }
  return 0;
}

void
bh__wcfg_clear(bh__wcfg *c) {
#define CLEAR_INT(name)
#define CLEAR_OPT(name)
#define CLEAR_STR(name) bh__free(c->name);
#define CLEAR(kind, name, min, max) CLEAR_##kind(name)
  BH__WCFG_MAP(CLEAR)
#undef CLEAR
#undef CLEAR_STR
#undef CLEAR_INT
#undef CLEAR_OPT
  memset(c, 0, sizeof(*c));
}

int
bh__wcfg_copy(bh__wcfg *dst, const bh__wcfg *src) {
  int rc = 0;

  *dst = *src;
#define COPY_INT(name)
#define COPY_OPT(name)
#define COPY_STR(name)                                                       \
  if (src->name != NULL && (dst->name = bh__strdup(src->name)) == NULL)     \
    rc = BH_ENOMEM;
#define COPY(kind, name, min, max) COPY_##kind(name)
  BH__WCFG_MAP(COPY)
#undef COPY
#undef COPY_STR
#undef COPY_INT
#undef COPY_OPT
  if (rc != 0)
    bh__wcfg_clear(dst);
  return rc;
}

static int
pack_one(msgpack_packer *pk, const char *name, int64_t v) {
  return msgpack_pack_str_with_body(pk, name, strlen(name)) ||
         msgpack_pack_int64(pk, v);
}

static int
pack_str(msgpack_packer *pk, const char *name, const char *v) {
  return msgpack_pack_str_with_body(pk, name, strlen(name)) ||
         (v == NULL ? msgpack_pack_nil(pk)
                    : msgpack_pack_str_with_body(pk, v, strlen(v)));
}

bh_value *
bh__wcfg_value(const bh__wcfg *c) {
  bh__buf b = {0};
  msgpack_packer pk;
  bh_value *v;
  int rc;

  msgpack_packer_init(&pk, &b, bh__buf_write);
#define ONE_INT(name) +1
#define ONE_STR(name) +1
#define ONE_OPT(name) +(c->name != 0)
#define ONE(kind, name, min, max) ONE_##kind(name)
  rc = msgpack_pack_map(&pk, 0 BH__WCFG_MAP(ONE));
#undef ONE
#undef ONE_INT
#undef ONE_STR
#undef ONE_OPT
#define PACK_INT(name) rc = rc || pack_one(&pk, #name, c->name);
#define PACK_OPT(name) rc = rc || (c->name != 0 && pack_one(&pk, #name, c->name));
#define PACK_STR(name) rc = rc || pack_str(&pk, #name, c->name);
#define PACK(kind, name, min, max) PACK_##kind(name)
  BH__WCFG_MAP(PACK)
#undef PACK
#undef PACK_STR
#undef PACK_INT
#undef PACK_OPT
  v = rc == 0 ? bh_value_from_bytes(b.data, b.len) : NULL;
  bh__buf_free(&b);
  return v;
}

static const char *const names[] = {
#define NAME(kind, name, min, max) #name,
    BH__WCFG_MAP(NAME)
#undef NAME
};
/* The keys a config may leave out (OPT). */
static const bool optional[] = {
#define IS_OPT(kind, name, min, max) BH__WCFG_IS_OPT_##kind,
#define BH__WCFG_IS_OPT_INT false
#define BH__WCFG_IS_OPT_STR false
#define BH__WCFG_IS_OPT_OPT true
    BH__WCFG_MAP(IS_OPT)
#undef IS_OPT
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

/* One entry of the table, by key: its index, or -1. */
static int
find(const msgpack_object *key) {
  size_t i;

  for (i = 0; key->type == MSGPACK_OBJECT_STR && i < N_NAMES; i++)
    if (strlen(names[i]) == key->via.str.size &&
        memcmp(names[i], key->via.str.ptr, key->via.str.size) == 0)
      return (int)i;
  return -1;
}

static int
get_int(const msgpack_object *v, const char *name, int64_t min, int64_t max,
        int64_t *out, char *why, size_t len) {
  if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
    *out = (int64_t)v->via.u64;
  else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
    *out = v->via.i64;
  else {
    snprintf(why, len, "config: %s must be an int", name);
    return BH_EINVAL;
  }
  if (*out < min || *out > max) {
    snprintf(why, len, "config: %s %lld is out of range %lld..%lld", name,
             (long long)*out, (long long)min, (long long)max);
    return BH_EINVAL;
  }
  return 0;
}

static int
get_str(const msgpack_object *v, const char *name, char **out, char *why,
        size_t len) {
  if (v->type == MSGPACK_OBJECT_NIL)
    return 0;
  if (v->type != MSGPACK_OBJECT_STR ||
      memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL) {
    snprintf(why, len, "config: %s must be a str or nil", name);
    return BH_EINVAL;
  }
  *out = bh__strndup(v->via.str.ptr, v->via.str.size);
  return *out != NULL ? 0 : BH_ENOMEM;
}

static int
get_one(bh__wcfg *c, int i, const msgpack_object *v, char *why, size_t len) {
  int n = 0;

#define GET_INT(name, min, max)                                              \
  if (n++ == i)                                                              \
    return get_int(v, #name, min, max, &c->name, why, len);
#define GET_OPT GET_INT
#define GET_STR(name, min, max)                                              \
  if (n++ == i)                                                              \
    return get_str(v, #name, &c->name, why, len);
#define GET(kind, name, min, max) GET_##kind(name, min, max)
  BH__WCFG_MAP(GET)
#undef GET
#undef GET_STR
#undef GET_INT
#undef GET_OPT
  return BH_EINVAL;
}

int
bh__wcfg_unpack(bh__wcfg *c, const msgpack_object *map, char *why,
                size_t len) {
  uint64_t seen = 0;
  uint32_t k;
  int i, rc = 0;

  memset(c, 0, sizeof(*c));
  for (k = 0; rc == 0 && k < map->via.map.size; k++) {
    const msgpack_object_kv *kv = &map->via.map.ptr[k];

    if ((i = find(&kv->key)) < 0 || (seen & (1ull << i))) {
      snprintf(why, len, "config: %s key", i < 0 ? "unknown" : "duplicate");
      rc = BH_EINVAL;
    } else {
      seen |= 1ull << i;
      rc = get_one(c, i, &kv->val, why, len);
    }
  }
  for (i = 0; rc == 0 && (size_t)i < N_NAMES; i++)
    if (!(seen & (1ull << i)) && !optional[i]) {
      snprintf(why, len, "config: %s is missing", names[i]);
      rc = BH_EINVAL;
    }
  if (rc == 0 && c->max_concurrency == 0) {
    snprintf(why, len, "config: max_concurrency is never 0 (-1: no limit)");
    rc = BH_EINVAL;
  }
  if (rc != 0)
    bh__wcfg_clear(c);
  return rc;
}

int
bh__conc_norm(int n) {
  return n == 0 ? 1024 : (n < 0 ? -1 : n);
}

int
bh__prefetch_norm(int prefetch, int max_conc, bool external) {
  int share;

  if (prefetch != 0)
    return prefetch > 0 ? prefetch : 0;
  if (external || max_conc <= 0)
    return 0;
  share = max_conc / BH__PREFETCH_SHARE;
  return share <= INT_MAX - max_conc ? share : INT_MAX - max_conc;
}
