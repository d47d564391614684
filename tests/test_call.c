/* test_call.c - a delegation's call (src/value/call.c) and the walk of
 * msgpack bytes it stands on (src/value/walk.c): which calls go out as
 * they were packed, that those make the very frames the objects' walk
 * makes, what a call costs, and what is not a call. */
#include "value/call.h"
#include "value/walk.h"
#include "wire_util.h"

/* A call of fmt, or NULL with *rc set. */
static bh__call *
mk_rc(int *rc, const char *fmt, ...) {
  bh__call *c = NULL;
  va_list ap;

  va_start(ap, fmt);
  *rc = bh__call_vpack(&c, fmt, ap);
  va_end(ap);
  return c;
}

#define mk(...) mk_rc(&(int){0}, __VA_ARGS__)

/* The frame of type `type` that c makes, into b, by whichever path
 * bh__call_raw() says; *raw tells which. */
static int
frame_of_call(bh__buf *b, bh__call *c, bh__msg_type type, bool *raw) {
  bh__wire_call w = {NULL, NULL, NULL, 0, 0};
  bh_value *tmp = NULL, *v;
  const msgpack_object *o;
  int rc;

  *raw = bh__call_raw(c, &w.raw, &w.args_len, &w.kwargs_len);
  if (!*raw) {
    v = bh__call_value(c, &tmp);
    if (v == NULL)
      return BH_ENOMEM;
    o = bh_value_object(v);
    w.args = &o->via.array.ptr[0];
    w.kwargs = o->via.array.size > 1 ? &o->via.array.ptr[1] : NULL;
  }
  rc = bh__wire_put_call(b, NULL, 1 << 20, type, 9, "work", &w);
  bh_value_free(tmp);
  return rc;
}

/* 1 if fmt packs a call that goes out by copy and whose frame of type
 * `type` is byte for byte the one its objects make (the way every call
 * went out before), else 0. */
static int
same_frames(bh__msg_type type, const char *fmt, ...) {
  bh__buf a = {0}, b = {0};
  const msgpack_object *o;
  bh__call *c = NULL;
  bh_value *v;
  va_list ap, aq;
  bool raw = false;
  int rc, ok;

  va_start(ap, fmt);
  va_copy(aq, ap);
  ok = bh__call_vpack(&c, fmt, ap) == 0;
  v = bh__value_vpack_seq(&rc, fmt, aq);
  va_end(aq);
  va_end(ap);
  ok = ok && v != NULL && frame_of_call(&a, c, type, &raw) == 0;
  o = bh_value_object(v);
  ok = ok && (type == BH__MSG_TASK_INFO ? bh__wire_put_task_info
                                         : bh__wire_put_direct_offer)(
                 &b, NULL, 1 << 20, 9, "work", &o->via.array.ptr[0],
                 o->via.array.size > 1 ? &o->via.array.ptr[1] : NULL) == 0;
  ok = ok && raw && a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
  if (!ok)
    fprintf(stderr, "format \"%s\": raw %d, %zu and %zu bytes\n", fmt, raw,
            a.len, b.len);
  bh__call_free(c);
  bh_value_free(v);
  bh__buf_free(&a);
  bh__buf_free(&b);
  return ok;
}

/* ------------------------------------------------------------------------
 * Calls that go out as they were packed. */

/* Each format packs a call that goes out by copy, as task_info and as a
 * direct offer, in the frame its objects make. */
TEST(raw_calls_make_the_frames_objects_make) {
  static const bh__msg_type types[] = {BH__MSG_TASK_INFO, BH__MSG_NEW_TASK};
  static const char small[100] = "bytes";
  static const int64_t ints[] = {1, 2, 300000};
  size_t k;

  for (k = 0; k < 2; k++) {
    bh__msg_type t = types[k];

    ASSERT(same_frames(t, "[]"));
    ASSERT(same_frames(t, "[]{}"));
    ASSERT(same_frames(t, "[i]", 7));
    ASSERT(same_frames(t, "[s I f n b]", "text", -((int64_t)1 << 40), 2.5,
                       1));
    ASSERT(same_frames(t, "[[i [s]]]{s:i s:[]}", -3, "deep", "k", 1,
                       "empty"));
    ASSERT(same_frames(t, "[y#]{s:y#}", small, sizeof(small), "bin", small,
                       (size_t)3));
    ASSERT(same_frames(t, "[#I]", ints, (size_t)3));
  }
  return 0;
}

/* A small call is one block: the delegation record points at it, and
 * nothing else is allocated for it (a bh_value took three). */
TEST(a_small_call_is_one_block) {
  size_t live = bh__alloc_live();
  bh__call *c = mk("[i s]{s:f}", 1, "two", "three", 3.0);

  ASSERT(c != NULL);
  ASSERT_INT_EQ(bh__alloc_live() - live, 1);
  bh__call_free(c);
  ASSERT_INT_EQ(bh__alloc_live(), live);
  return 0;
}

/* A call of objects: none gives [[], {}]. */
TEST(call_of_objects) {
  msgpack_zone z;
  msgpack_object args, kwargs;
  bh__buf a = {0}, b = {0};
  bh__call *c = bh__call_of(NULL, NULL);
  const char *raw;
  size_t alen, klen;
  bool is_raw;

  ASSERT(c != NULL);
  ASSERT(bh__call_raw(c, &raw, &alen, &klen));
  ASSERT(alen == 1 && klen == 1);
  ASSERT((unsigned char)raw[0] == 0x90 && (unsigned char)raw[1] == 0x80);
  bh__call_free(c);
  msgpack_zone_init(&z, 1024);
  args = obj_spec(&z, "[3 i1 \"two [1 n");
  kwargs = obj_spec(&z, "{1 \"k d0.5");
  c = bh__call_of(&args, &kwargs);
  ASSERT(c != NULL);
  ASSERT_INT_EQ(frame_of_call(&a, c, BH__MSG_TASK_INFO, &is_raw), 0);
  ASSERT(is_raw);
  ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, 1 << 20, 9, "work", &args,
                                       &kwargs),
                0);
  ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
  bh__call_free(c);
  bh__buf_free(&a);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

/* An empty str or bin object may have no bytes at all (ptr NULL), which
 * msgpack-c hands to the packer's sink as they are (UBSan sees a memcpy
 * from NULL if the sink copies them). */
TEST(empty_strs_and_bins_without_bytes) {
  msgpack_object items[2] = {{.type = MSGPACK_OBJECT_STR},
                             {.type = MSGPACK_OBJECT_BIN}};
  msgpack_object args = {.type = MSGPACK_OBJECT_ARRAY,
                         .via.array = {2, items}};
  bh__buf a = {0}, b = {0};
  bh__call *c = bh__call_of(&args, NULL);
  bool raw;

  ASSERT(c != NULL);
  ASSERT_INT_EQ(frame_of_call(&a, c, BH__MSG_NEW_TASK, &raw), 0);
  ASSERT(raw);
  ASSERT_INT_EQ(bh__wire_put_direct_offer(&b, NULL, 1 << 20, 9, "work",
                                          &args, NULL),
                0);
  ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
  bh__call_free(c);
  bh__buf_free(&a);
  bh__buf_free(&b);
  return 0;
}

/* ------------------------------------------------------------------------
 * Calls the encoder walks. */

/* A bin large enough to be borrowed, or lying in a blob (packed as a
 * LOCAL blob ext), needs the walk: the call is then a value of its own
 * (no copy of it per send), whose bins the channel can borrow. */
TEST(large_bins_and_blobs_are_walked) {
  size_t n = BH__BORROW_MIN, alen, klen, th;
  char *big = calloc(1, n), *blob;
  bh_value *tmp, *v;
  const char *raw;
  bh__call *c;

  ASSERT(big != NULL);
  c = mk("[y#]", big, n);
  ASSERT(c != NULL);
  ASSERT(!bh__call_raw(c, &raw, &alen, &klen));
  v = bh__call_value(c, &tmp);
  ASSERT(v != NULL && tmp == NULL);
  ASSERT_INT_EQ(bh_value_object(v)->via.array.ptr[0].via.array.ptr[0].type,
                MSGPACK_OBJECT_BIN);
  bh__call_free(c);
  c = mk("[y#]", big, n - 1); /* just under: a copy is cheaper */
  ASSERT(c != NULL && bh__call_raw(c, &raw, &alen, &klen));
  bh__call_free(c);
  free(big);

  th = bh_blob_threshold();
  bh_set_blob_threshold(4096);
  blob = bh_blob_alloc(8192);
  ASSERT(blob != NULL);
  memset(blob, 'x', 8192);
  c = mk("[y#]", blob, (size_t)8192);
  bh_blob_free(blob); /* the call holds the blob */
  ASSERT(c != NULL);
  ASSERT(!bh__call_raw(c, &raw, &alen, &klen));
  v = bh__call_value(c, &tmp);
  ASSERT(v != NULL && tmp == NULL);
  {
    const msgpack_object *o = &bh_value_object(v)->via.array.ptr[0];

    ASSERT_INT_EQ(o->via.array.ptr[0].type, MSGPACK_OBJECT_BIN);
    ASSERT(o->via.array.ptr[0].via.bin.size == 8192 &&
           o->via.array.ptr[0].via.bin.ptr[8191] == 'x');
  }
  bh__call_free(c);
  bh_set_blob_threshold(th);
  return 0;
}

/* A blob threshold set after the call was packed, below one of its
 * bins, sends that bin as a blob: the call is walked then, from a value
 * made of its bytes for the send. */
TEST(a_lower_threshold_walks_a_raw_call) {
  static const char bytes[1000];
  const char *raw;
  size_t alen, klen;
  bh_value *tmp, *v;
  bh__call *c = mk("[y#]", bytes, sizeof(bytes));
  size_t th = bh_blob_threshold();

  ASSERT(c != NULL && bh__call_raw(c, &raw, &alen, &klen));
  bh_set_blob_threshold(512);
  ASSERT(!bh__call_raw(c, &raw, &alen, &klen));
  v = bh__call_value(c, &tmp);
  ASSERT(v != NULL && v == tmp);
  ASSERT(bh_value_object(v)->via.array.ptr[0].via.array.ptr[0].via.bin.size ==
         sizeof(bytes));
  bh_value_free(tmp);
  bh_set_blob_threshold(th);
  ASSERT(bh__call_raw(c, &raw, &alen, &klen));
  bh__call_free(c);
  return 0;
}

/* ------------------------------------------------------------------------
 * What is not a call. */

TEST(only_args_then_kwargs_make_a_call) {
  size_t live = bh__alloc_live();
  bh__call *c;
  int rc;

#define BAD(...)                                                              \
  do {                                                                        \
    ASSERT(mk_rc(&rc, __VA_ARGS__) == NULL);                                  \
    ASSERT_INT_EQ(rc, BH_EINVAL);                                             \
  } while (0)
  BAD("i", 1);
  BAD("s", "x");
  BAD("[i] i", 1, 2);
  BAD("{s:i}", "k", 1);
  BAD("{s:i}[i]", "k", 1, 2);
  BAD("[i][i]", 1, 2);
  BAD("[i]{s:i}[i]", 1, "k", 2, 3);
  BAD("[i]{s:i}{s:i}", 1, "k", 2, "j", 3);
#undef BAD
  ASSERT(mk_rc(&rc, "q") == NULL);
  ASSERT_INT_EQ(rc, BH_EFORMAT);
  ASSERT_INT_EQ(bh__alloc_live(), live);
  c = mk_rc(&rc, "[i] {s:i}", 1, "k", 2);
  ASSERT(c != NULL && rc == 0);
  bh__call_free(c);
  return 0;
}

/* ------------------------------------------------------------------------
 * The walk. */

/* Packs spec (wire_util.h) into b. */
static void
bytes_of(bh__buf *b, const char *spec) {
  msgpack_packer pk;

  b->len = 0;
  msgpack_packer_init(&pk, b, bh__buf_write);
  pack_spec(&pk, spec);
}

TEST(walk_sees_bins_exts_and_depth) {
  bh__walk_seen s = {0, false, 0, 0};
  bh__buf b = {0};
  size_t end = 0, i;

  bytes_of(&b, "[3 b5 [1 [0 {1 \"k b7");
  ASSERT(bh__walk_one((unsigned char *)b.data, b.len, &end, &s) == NULL);
  ASSERT(end == b.len);
  ASSERT(s.max_bin == 7 && !s.exts && s.blob_exts == 0);
  ASSERT_INT_EQ(s.depth, 3);
  s = (bh__walk_seen){0, false, 0, 0};
  bytes_of(&b, "[2 e4 i1 n"); /* and a trailing nil: the walk stops */
  ASSERT(bh__walk_one((unsigned char *)b.data, b.len, &end, &s) == NULL);
  ASSERT(end == b.len - 1 && s.exts && s.blob_exts == 0 && s.depth == 1);
  s = (bh__walk_seen){0, false, 0, 0};
  bytes_of(&b, "i5");
  ASSERT(bh__walk_one((unsigned char *)b.data, b.len, &end, &s) == NULL);
  ASSERT_INT_EQ(s.depth, 0);
  bytes_of(&b, "[3 i1 i2");
  ASSERT_STR_EQ(bh__walk_one((unsigned char *)b.data, b.len, &end, &s), "");
  bytes_of(&b, "");
  for (i = 0; i < BH__MAX_DEPTH + 1; i++)
    msgpack_pack_array(&(msgpack_packer){&b, bh__buf_write}, 1);
  msgpack_pack_nil(&(msgpack_packer){&b, bh__buf_write});
  ASSERT_STR_EQ(bh__walk_one((unsigned char *)b.data, b.len, &end, &s),
                ": nested deeper than 32 levels");
  bh__buf_free(&b);
  return 0;
}

TEST_MAIN(TEST_ENTRY(raw_calls_make_the_frames_objects_make),
          TEST_ENTRY(a_small_call_is_one_block), TEST_ENTRY(call_of_objects),
          TEST_ENTRY(empty_strs_and_bins_without_bytes),
          TEST_ENTRY(large_bins_and_blobs_are_walked),
          TEST_ENTRY(a_lower_threshold_walks_a_raw_call),
          TEST_ENTRY(only_args_then_kwargs_make_a_call),
          TEST_ENTRY(walk_sees_bins_exts_and_depth))
