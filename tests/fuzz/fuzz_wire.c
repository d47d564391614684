/* fuzz_wire.c - libFuzzer target for the wire module.
 *
 * The input is a byte stream cut into frames as a bee reads its channel:
 * 4-byte big-endian length, then the body. Each whole frame is decoded. A
 * decode must return 0 or BH_EPROTO with a message, never anything else.
 * Every message that decodes is encoded again with the bh__wire_put_*
 * functions and decoded a second time: the fields must come back the same.
 *
 * Not part of the CMake build. Build and run by hand, from the top of the
 * repository:
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Iinclude -Isrc tests/fuzz/fuzz_wire.c src/wire/wire.c src/wire/wire_put.c \
 *     src/value/blob.c src/value/value.c src/value/fmt.c src/value/pack.c src/value/unpack.c src/base/buf.c \
 *     src/base/alloc.c src/base/error.c -luv -lmsgpackc -o fuzz_wire
 *   mkdir -p corpus && ./fuzz_wire corpus tests/fuzz/corpus \
 *     -max_total_time=600
 * (the first directory collects new inputs; tests/fuzz/corpus is the seed
 * corpus: valid frames of every message type, and one conversation).
 */
#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frames larger than this are skipped, as a bee would refuse them. */
#define FUZZ_MAX_FRAME ((size_t)1 << 20)

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_wire.c:%d: check failed: %s\n", __LINE__, #cond);  \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static const msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};

/* Two objects are the same when they pack to the same bytes (NULL packs as
 * nil). Unlike msgpack_object_equal(), NaN equals NaN. */
static bool
same(const msgpack_object *a, const msgpack_object *b) {
  msgpack_sbuffer sa, sb;
  msgpack_packer pa, pb;
  bool eq;

  msgpack_sbuffer_init(&sa);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pa, &sa, msgpack_sbuffer_write);
  msgpack_packer_init(&pb, &sb, msgpack_sbuffer_write);
  CHECK(msgpack_pack_object(&pa, a != NULL ? *a : nil) == 0);
  CHECK(msgpack_pack_object(&pb, b != NULL ? *b : nil) == 0);
  eq = sa.size == sb.size && memcmp(sa.data, sb.data, sa.size) == 0;
  msgpack_sbuffer_destroy(&sa);
  msgpack_sbuffer_destroy(&sb);
  return eq;
}

/* A NUL-terminated copy of str object o (up to its first NUL byte), or NULL
 * when o is NULL or not a str. */
static char *
cstr(const msgpack_object *o) {
  if (o == NULL || o->type != MSGPACK_OBJECT_STR)
    return NULL;
  return strndup(o->via.str.ptr, o->via.str.size);
}

/* A str whose text is s. */
static bool
str_is(const msgpack_object *o, const char *s) {
  return o != NULL && o->type == MSGPACK_OBJECT_STR &&
         o->via.str.size == strlen(s) &&
         memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static int
put_task_done(bh__buf *b, const bh__msg *m, char **reason) {
  bh__wire_done d = {.status = m->status,
                     .returning_value = m->returning_value,
                     .exception = m->exception,
                     .traceback = m->traceback,
                     .other_details = m->other_details};

  *reason = cstr(m->reason);
  d.reason = *reason;
  return bh__wire_put_task_done(b, NULL, BH__DEFAULT_MAX_FRAME, m->task_id, &d);
}

/* Encodes m again; returns the put's result, or 1 when m cannot be put
 * back (an int exit_code: the encoder only writes str or nil). */
static int
reencode(bh__buf *b, const bh__msg *m, char **text) {
  *text = NULL;
  switch (m->type) {
  case BH__MSG_TASK_INFO:
    *text = strndup(m->name, m->name_len);
    return bh__wire_put_task_info(b, NULL, BH__DEFAULT_MAX_FRAME, m->task_id, *text,
                                  m->args, m->kwargs);
  case BH__MSG_TASK_DONE:
    return put_task_done(b, m, text);
  case BH__MSG_DIE:
    return bh__wire_put_die(b, BH__DEFAULT_MAX_FRAME);
  case BH__MSG_HEARTBEAT:
    return bh__wire_put_heartbeat(b, BH__DEFAULT_MAX_FRAME);
  case BH__MSG_DEAD:
    if (m->death_type == BH__DEATH_KILLED)
      return bh__wire_put_dead_killed(b, BH__DEFAULT_MAX_FRAME, m->exception,
                                      m->traceback);
    if (m->exit_code != NULL && m->exit_code->type != MSGPACK_OBJECT_NIL &&
        m->exit_code->type != MSGPACK_OBJECT_STR)
      return 1;
    *text = cstr(m->exit_code);
    return bh__wire_put_dead_normal(b, BH__DEFAULT_MAX_FRAME, *text);
  case BH__MSG_NEW_TASK:
    if (m->name == NULL)
      break;
    *text = strndup(m->name, m->name_len); /* a direct offer */
    return bh__wire_put_direct_offer(b, NULL, BH__DEFAULT_MAX_FRAME,
                                     m->task_id, *text, m->args, m->kwargs);
  case BH__MSG_TASK_ACCEPTED:
    if (!m->started)
      break;
    return bh__wire_put_accepted_started(b, BH__DEFAULT_MAX_FRAME,
                                         m->task_id);
  case BH__MSG_BOOTSTRAP:
    if (memchr(m->cls, '\0', m->cls_len) != NULL)
      return 1; /* the encoder takes the class name as a C string */
    *text = strndup(m->cls, m->cls_len);
    return bh__wire_put_bootstrap(b, BH__DEFAULT_MAX_FRAME, *text, m->bee_id,
                                  m->args, m->kwargs, m->config);
  case BH__MSG_UNKNOWN:
    return 1;
  default:
    break;
  }
  return bh__wire_put_simple(b, BH__DEFAULT_MAX_FRAME, m->type, m->task_id);
}

/* The second decoding r of a message must match the first, m. `text` is
 * the C string given to the encoder (name, reason or exit code). */
static void
compare(const bh__msg *m, const bh__msg *r, const char *text) {
  CHECK(r->type == m->type);
  if (m->type != BH__MSG_DIE && m->type != BH__MSG_DEAD &&
      m->type != BH__MSG_HEARTBEAT && m->type != BH__MSG_BOOTSTRAP)
    CHECK(r->task_id == m->task_id);
  CHECK(r->started == m->started && (r->name == NULL) == (m->name == NULL));
  if (m->name != NULL) { /* task_info, or a direct offer */
    CHECK(r->name_len == m->name_len);
    CHECK(memcmp(r->name, m->name, m->name_len) == 0);
    CHECK(same(r->args, m->args) && same(r->kwargs, m->kwargs));
  }
  if (m->type == BH__MSG_TASK_DONE) {
    CHECK(r->status == m->status);
    CHECK(same(r->returning_value, m->returning_value));
    CHECK(same(r->exception, m->exception));
    CHECK(same(r->traceback, m->traceback));
    CHECK(same(r->other_details, m->other_details));
    if (m->status == BH_CANCELLED)
      CHECK(text == NULL ? r->reason->type == MSGPACK_OBJECT_NIL
                         : str_is(r->reason, text));
  }
  if (m->type == BH__MSG_BOOTSTRAP) {
    CHECK(r->cls_len == m->cls_len && memcmp(r->cls, m->cls, m->cls_len) == 0);
    CHECK(r->bee_id == m->bee_id);
    CHECK(same(r->args, m->args) && same(r->kwargs, m->kwargs));
    CHECK(same(r->config, m->config));
  }
  if (m->type == BH__MSG_DEAD) {
    CHECK(r->death_type == m->death_type);
    CHECK(same(r->exception, m->exception));
    CHECK(same(r->traceback, m->traceback));
    if (m->death_type == BH__DEATH_NORMAL)
      CHECK(text == NULL ? r->exit_code->type == MSGPACK_OBJECT_NIL
                         : str_is(r->exit_code, text));
  }
}

static void
roundtrip(const bh__msg *m) {
  msgpack_zone zone;
  bh__buf b = {0};
  bh__msg r;
  char err[256], *text;
  int rc = reencode(&b, m, &text);

  if (rc == 1) {
    free(text);
    return;
  }
  CHECK(rc == 0);
  CHECK(b.len >= BH__FRAME_HDR);
  CHECK(bh__wire_frame_len((const unsigned char *)b.data) ==
        b.len - BH__FRAME_HDR);
  msgpack_zone_init(&zone, 1024);
  rc = bh__wire_decode(b.data + BH__FRAME_HDR, b.len - BH__FRAME_HDR, &zone, &r,
                       err, sizeof(err));
  if (rc != 0)
    fprintf(stderr, "re-decode: %s\n", err);
  CHECK(rc == 0);
  compare(m, &r, text);
  free(text);
  msgpack_zone_destroy(&zone);
  bh__buf_free(&b);
}

/* a and b pack to the same bytes. */
static bool
same_bytes(const msgpack_object *a, const msgpack_object *b) {
  msgpack_sbuffer sa, sb;
  msgpack_packer pa, pb;
  bool same;

  msgpack_sbuffer_init(&sa);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pa, &sa, msgpack_sbuffer_write);
  msgpack_packer_init(&pb, &sb, msgpack_sbuffer_write);
  same = msgpack_pack_object(&pa, *a) == 0 && msgpack_pack_object(&pb, *b) == 0 &&
         sa.size == sb.size && memcmp(sa.data, sb.data, sa.size) == 0;
  msgpack_sbuffer_destroy(&sa);
  msgpack_sbuffer_destroy(&sb);
  return same;
}

/* The same frame through bh__wire_decode_keep (the channel's way): the
 * same verdict and fields, the message's value (if it made one) equal to
 * the map. */
static void
keep_frame(const char *body, size_t len, int rc0, const bh__msg *m0) {
  msgpack_zone zone;
  bh__msg m;
  char err[256];
  int rc;

  msgpack_zone_init(&zone, 1024);
  rc = bh__wire_decode_keep(body, len, &zone, &m, err, sizeof(err));
  CHECK(rc == rc0);
  if (rc == 0) {
    CHECK(m.type == m0->type && m.task_id == m0->task_id &&
          m.status == m0->status && m.started == m0->started);
    CHECK(same_bytes(m.root, m0->root)); /* (NaN != NaN: not _equal) */
    CHECK(m.value == NULL || bh_value_object(m.value) == m.root);
  }
  bh_value_free(m.value);
  msgpack_zone_destroy(&zone);
}

static void
one_frame(const char *body, size_t len) {
  msgpack_zone zone;
  bh__msg m;
  char err[256];
  int rc;

  msgpack_zone_init(&zone, 1024);
  rc = bh__wire_decode(body, len, &zone, &m, err, sizeof(err));
  CHECK(rc == 0 || rc == BH_EPROTO);
  if (rc == BH_EPROTO)
    CHECK(err[0] != '\0');
  if (rc == 0) {
    CHECK(m.root != NULL && m.root->type == MSGPACK_OBJECT_MAP);
    CHECK(m.type_str != NULL);
    roundtrip(&m);
  }
  keep_frame(body, len, rc, &m); /* while m's objects live */
  msgpack_zone_destroy(&zone);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0, n;

  while (size - off >= BH__FRAME_HDR) {
    n = bh__wire_frame_len(data + off);
    off += BH__FRAME_HDR;
    if (n > FUZZ_MAX_FRAME || n > size - off)
      break; /* too large, or the rest of the frame never came */
    one_frame((const char *)data + off, n);
    off += n;
  }
  return 0;
}
