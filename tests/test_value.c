/* test_value.c - owned values, the pack/unpack format language, the
 * position-naming error messages, and bh_value_repr(). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "runner.h"
#include "value.h"

/* ------------------------------------------------------------------------
 * Helpers. */

/* Renders o with bh_value_repr() into a static buffer. */
static const char *
repr(const msgpack_object *o) {
  static char buf[4096];

  bh_value_repr(o, buf, sizeof(buf));
  return buf;
}

/* The hex of a value's encoded bytes, e.g. "93 01 02 03". */
static const char *
hex(const bh_value *v) {
  static char buf[512];
  const unsigned char *p;
  size_t n, i, off = 0;

  p = (const unsigned char *)bh_value_data(v, &n);
  buf[0] = '\0';
  for (i = 0; i < n && off + 4 < sizeof(buf); i++)
    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%02x",
                            i > 0 ? " " : "", p[i]);
  return buf;
}

/* A value decoded from hand-written bytes. */
static bh_value *
bytes(const char *data, size_t n) {
  return bh_value_from_bytes(data, n);
}

/* n nested one-item arrays around an empty array: n+1 levels. */
static char *
nested_bytes(size_t levels, size_t *n) {
  char *p = malloc(levels);
  size_t i;

  for (i = 0; i + 1 < levels; i++)
    p[i] = (char)0x91;
  p[levels - 1] = (char)0x90;
  *n = levels;
  return p;
}

/* Unpacks and expects failure `code` with message `msg`. */
#define EXPECT_FAIL(code, msg, obj, ...)                                       \
  do {                                                                         \
    char e_[256];                                                              \
    memset(e_, 'X', sizeof(e_));                                               \
    ASSERT_INT_EQ(bh_unpack((obj), e_, sizeof(e_), __VA_ARGS__), (code));      \
    ASSERT_STR_EQ(e_, (msg));                                                  \
  } while (0)

#define EXPECT_OK(obj, ...)                                                    \
  do {                                                                         \
    char e_[256] = "";                                                         \
    int rc_ = bh_unpack((obj), e_, sizeof(e_), __VA_ARGS__);                   \
    if (rc_ != 0)                                                              \
      fprintf(stderr, "unpack failed: %d %s\n", rc_, e_);                      \
    ASSERT_INT_EQ(rc_, 0);                                                     \
  } while (0)

/* ------------------------------------------------------------------------
 * Packing. */

TEST(pack_encodes_each_letter) {
  static const char bin[2] = {0, 1};
  struct {
    bh_value *v;
    const char *hex;
  } c[12];
  int err, i;

  c[0].v = bh_value_pack(&err, "n"), c[0].hex = "c0";
  c[1].v = bh_value_pack(&err, "b", 7), c[1].hex = "c3";
  c[2].v = bh_value_pack(&err, "b", 0), c[2].hex = "c2";
  c[3].v = bh_value_pack(&err, "i", -1), c[3].hex = "ff";
  c[4].v = bh_value_pack(&err, "I", (int64_t)-129), c[4].hex = "d1 ff 7f";
  c[5].v = bh_value_pack(&err, "u", 200u), c[5].hex = "cc c8";
  c[6].v = bh_value_pack(&err, "U", UINT64_MAX);
  c[6].hex = "cf ff ff ff ff ff ff ff ff";
  c[7].v = bh_value_pack(&err, "f", 1.5),
  c[7].hex = "cb 3f f8 00 00 00 00 00 00";
  c[8].v = bh_value_pack(&err, "s", "ab"), c[8].hex = "a2 61 62";
  c[9].v = bh_value_pack(&err, "s#", "a\0b", (size_t)3),
  c[9].hex = "a3 61 00 62";
  c[10].v = bh_value_pack(&err, "y#", bin, sizeof(bin)),
  c[10].hex = "c4 02 00 01";
  c[11].v = bh_value_pack(&err, "[i, {s: n}]", 1, "k"),
  c[11].hex = "92 01 81 a1 6b c0";
  for (i = 0; i < 12; i++) {
    ASSERT(c[i].v != NULL);
    ASSERT_STR_EQ(hex(c[i].v), c[i].hex);
    bh_value_free(c[i].v);
  }
  return 0;
}

TEST(round_trip_every_letter) {
  static const char bin[4] = {0, 1, 2, (char)0xff};
  int b1 = -1, b2 = -1, i1 = 0, i2 = 0;
  int64_t I1 = 0, I2 = 0;
  unsigned u1 = 0;
  uint64_t U1 = 0;
  double f1 = 0;
  char s1[16], s2[4];
  const char *sp = NULL;
  const void *yp = NULL;
  size_t sl = 0, yl = 0;
  const msgpack_object *o = NULL;
  int err = 1;
  bh_value *v;

  v = bh_value_pack(&err, "[n b b i i I I u U f s s# y# s n]", 1, 0, INT_MIN,
                    INT_MAX, INT64_MIN, INT64_MAX, UINT_MAX, UINT64_MAX, -2.25,
                    "h\xc3\xa9llo", "a\0b", (size_t)3, bin, sizeof(bin), "");
  ASSERT(v != NULL);
  ASSERT_INT_EQ(err, 0);
  EXPECT_OK(bh_value_object(v), "[n b b i i I I u U f s s# y# s o]", &b1, &b2,
            &i1, &i2, &I1, &I2, &u1, &U1, &f1, s1, sizeof(s1), &sp, &sl, &yp,
            &yl, s2, sizeof(s2), &o);
  ASSERT_INT_EQ(b1, 1);
  ASSERT_INT_EQ(b2, 0);
  ASSERT_INT_EQ(i1, INT_MIN);
  ASSERT_INT_EQ(i2, INT_MAX);
  ASSERT(I1 == INT64_MIN && I2 == INT64_MAX);
  ASSERT(u1 == UINT_MAX && U1 == UINT64_MAX);
  ASSERT(f1 == -2.25);
  ASSERT_STR_EQ(s1, "h\xc3\xa9llo");
  ASSERT(sl == 3 && memcmp(sp, "a\0b", 3) == 0);
  ASSERT(yl == 4 && memcmp(yp, bin, 4) == 0);
  ASSERT_STR_EQ(s2, "");
  ASSERT(o == &bh_value_object(v)->via.array.ptr[14]);
  ASSERT_INT_EQ(o->type, MSGPACK_OBJECT_NIL);
  bh_value_free(v);
  return 0;
}

TEST(borrowed_pointers_point_into_the_value) {
  const char *sp;
  const void *yp;
  const char *data;
  size_t sl, yl, n;
  bh_value *v = bh_value_pack(NULL, "[s y#]", "hello", "xyz", (size_t)3);

  ASSERT(v != NULL);
  data = bh_value_data(v, &n);
  EXPECT_OK(bh_value_object(v), "[s# y#]", &sp, &sl, &yp, &yl);
  ASSERT(sp > data && sp + sl <= data + n);
  ASSERT((const char *)yp > data && (const char *)yp + yl <= data + n);
  bh_value_free(v);
  return 0;
}

TEST(top_level_items) {
  bh_value *one = bh_value_pack(NULL, "i", 7);
  bh_value *two = bh_value_pack(NULL, "i s", 7, "x");
  bh_value *empty_a = bh_value_pack(NULL, "[]");
  bh_value *empty_m = bh_value_pack(NULL, " { } ");
  int i = 0;
  char s[4];

  ASSERT(one && two && empty_a && empty_m);
  ASSERT_STR_EQ(repr(bh_value_object(one)), "7");
  ASSERT_STR_EQ(repr(bh_value_object(two)), "[7, \"x\"]");
  ASSERT_STR_EQ(hex(empty_a), "90");
  ASSERT_STR_EQ(hex(empty_m), "80");
  EXPECT_OK(bh_value_object(two), "i s", &i, s, sizeof(s));
  ASSERT_INT_EQ(i, 7);
  ASSERT_STR_EQ(s, "x");
  EXPECT_FAIL(BH_ETYPE, "[]: expected array of 3 items, got 2",
              bh_value_object(two), "i s n", &i, s, sizeof(s));
  EXPECT_OK(bh_value_object(empty_a), "[]");
  EXPECT_OK(bh_value_object(empty_m), "{}");
  bh_value_free(one);
  bh_value_free(two);
  bh_value_free(empty_a);
  bh_value_free(empty_m);
  return 0;
}

TEST(null_pointers_pack_nil) {
  bh_value *v = bh_value_pack(NULL, "[s s# y# o v]", (const char *)NULL,
                              (const char *)NULL, (size_t)5, (const void *)NULL,
                              (size_t)5, (const msgpack_object *)NULL,
                              (const bh_value *)NULL);

  ASSERT(v != NULL);
  ASSERT_STR_EQ(hex(v), "95 c0 c0 c0 c0 c0");
  bh_value_free(v);
  return 0;
}

TEST(pack_object_and_value) {
  bh_value *inner = bh_value_pack(NULL, "{s:i}", "a", 1);
  bh_value *outer;

  ASSERT(inner != NULL);
  ASSERT_STR_EQ(hex(inner), "81 a1 61 01");
  outer = bh_value_pack(NULL, "[v o v]", inner, bh_value_object(inner), inner);
  ASSERT(outer != NULL);
  ASSERT_STR_EQ(hex(outer), "93 81 a1 61 01 81 a1 61 01 81 a1 61 01");
  ASSERT_STR_EQ(repr(bh_value_object(outer)),
                "[{\"a\": 1}, {\"a\": 1}, {\"a\": 1}]");
  bh_value_free(inner);
  bh_value_free(outer);
  return 0;
}

TEST(map_keys_are_any_item) {
  bh_value *v = bh_value_pack(NULL, "{i:s, n:b, [i]:f}", 1, "x", 1, 2, 0.5);

  ASSERT(v != NULL);
  ASSERT_STR_EQ(repr(bh_value_object(v)), "{1: \"x\", null: true, [2]: 0.5}");
  bh_value_free(v);
  return 0;
}

TEST(pack_into_an_existing_packer) {
  msgpack_sbuffer sb;
  msgpack_packer pk;

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  ASSERT_INT_EQ(bh_pack(&pk, "i", 1), 0);
  ASSERT_INT_EQ(bh_pack(&pk, "[s]", "a"), 0);
  ASSERT_INT_EQ(bh_pack(&pk, "i i", 2, 3), 0);
  ASSERT_INT_EQ(sb.size, 7);
  ASSERT(memcmp(sb.data, "\x01\x91\xa1\x61\x92\x02\x03", 7) == 0);
  ASSERT_INT_EQ(bh_pack(NULL, "i", 1), BH_EINVAL);
  msgpack_sbuffer_destroy(&sb);
  return 0;
}

static int
failing_write(void *data, const char *buf, size_t len) {
  int *calls = data;

  (void)buf;
  (void)len;
  return ++*calls >= 2 ? -1 : 0;
}

TEST(pack_write_failure_is_enomem) {
  msgpack_packer pk;
  int calls = 0;

  msgpack_packer_init(&pk, &calls, failing_write);
  ASSERT_INT_EQ(bh_pack(&pk, "[i s]", 1, "abc"), BH_ENOMEM);
  calls = 0;
  ASSERT_INT_EQ(bh_pack(&pk, "n"), 0);
  return 0;
}

TEST(pack_refuses_oversized_strings) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  int err = 0;

  if (SIZE_MAX <= UINT32_MAX)
    return 0; /* a 32-bit size_t cannot express the case */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  /* The length is refused before the (tiny) buffer is read. */
  ASSERT_INT_EQ(bh_pack(&pk, "s#", "x", (size_t)UINT32_MAX + 1), BH_EMSGSIZE);
  ASSERT_INT_EQ(bh_pack(&pk, "y#", "x", (size_t)UINT32_MAX + 1), BH_EMSGSIZE);
  ASSERT(bh_value_pack(&err, "[y#]", "x", (size_t)UINT32_MAX + 1) == NULL);
  ASSERT_INT_EQ(err, BH_EMSGSIZE);
  msgpack_sbuffer_destroy(&sb);
  return 0;
}

/* ------------------------------------------------------------------------
 * Unpacking. */

TEST(nested_structures) {
  bh_value *v = bh_value_pack(NULL, "{s:[i,{s:s}], s:{}, s:[[]]}", "a", 1, "b",
                              "c", "d", "e");
  char s[8];
  int i = 0;

  ASSERT(v != NULL);
  ASSERT_STR_EQ(repr(bh_value_object(v)),
                "{\"a\": [1, {\"b\": \"c\"}], \"d\": {}, \"e\": [[]]}");
  EXPECT_OK(bh_value_object(v), "{s:[i {s:s}] s:{} s:[[]]}", "a", &i, "b", s,
            sizeof(s), "d", "e");
  ASSERT_INT_EQ(i, 1);
  ASSERT_STR_EQ(s, "c");
  bh_value_free(v);
  return 0;
}

TEST(optional_keys) {
  bh_value *v =
      bh_value_pack(NULL, "{s:i s:s s:[i i]}", "a", 1, "c", "z", "p", 5, 6);
  int a = 0, b = -7, x = -7, p1 = 0, p2 = 0;
  const char *sp = "untouched";
  size_t sl = 99;
  char c[4];

  ASSERT(v != NULL);
  /* Missing optional keys leave targets alone and consume their pattern's
   * arguments, even nested ones, so later targets line up. */
  EXPECT_OK(bh_value_object(v), "{s:i s?:i s?:[i s# {s:i}] s:s s?:[i i]}", "a",
            &a, "b", &b, "x", &x, &sp, &sl, "deep", &x, "c", c, sizeof(c), "p",
            &p1, &p2);
  ASSERT_INT_EQ(a, 1);
  ASSERT_INT_EQ(b, -7);
  ASSERT_INT_EQ(x, -7);
  ASSERT_STR_EQ(sp, "untouched");
  ASSERT_INT_EQ(sl, 99);
  ASSERT_STR_EQ(c, "z");
  ASSERT(p1 == 5 && p2 == 6);
  /* Optional keys that are present are checked like any other. */
  EXPECT_FAIL(BH_ETYPE, "{c}: expected int, got str", bh_value_object(v),
              "{s?:i}", "c", &a);
  bh_value_free(v);
  return 0;
}

TEST(skip_and_unnamed_keys) {
  bh_value *arr = bh_value_pack(NULL, "[s i [i i] {}]", "x", 5, 1, 2);
  bh_value *map = bh_value_pack(NULL, "{s:i s:s s:n}", "a", 1, "b", "x", "c");
  int i = 0;

  ASSERT(arr && map);
  EXPECT_OK(bh_value_object(arr), "[* i * *]", &i);
  ASSERT_INT_EQ(i, 5);
  EXPECT_OK(bh_value_object(map), "{s:i}", "a", &i);
  ASSERT_INT_EQ(i, 1);
  EXPECT_OK(bh_value_object(map), "{s:* s:*}", "b", "c");
  EXPECT_OK(bh_value_object(map), "{}");
  EXPECT_OK(bh_value_object(map), "*");
  bh_value_free(arr);
  bh_value_free(map);
  return 0;
}

TEST(null_targets_check_without_storing) {
  bh_value *v = bh_value_pack(NULL, "[i s s y# f b o]", 1, "a", "b", "c",
                              (size_t)1, 1.0, 1, NULL);

  ASSERT(v != NULL);
  EXPECT_OK(bh_value_object(v), "[i s s# y# f b o]", (int *)NULL, (char *)NULL,
            (size_t)0, (const char **)NULL, (size_t *)NULL, (const void **)NULL,
            (size_t *)NULL, (double *)NULL, (int *)NULL,
            (const msgpack_object **)NULL);
  EXPECT_FAIL(BH_ETYPE, "[1]: expected int, got str", bh_value_object(v),
              "[i i * * * * *]", (int *)NULL, (int *)NULL);
  bh_value_free(v);
  return 0;
}

TEST(map_lookup_ignores_non_string_keys) {
  bh_value *v = bh_value_pack(NULL, "{i:i s:i s:i}", 1, 10, "1", 20, "1", 30);
  int x = -1;

  ASSERT(v != NULL);
  EXPECT_OK(bh_value_object(v), "{s:i}", "1", &x);
  ASSERT_INT_EQ(x, 20); /* the first str key "1" wins */
  bh_value_free(v);
  return 0;
}

TEST(null_object_is_refused) {
  char e[64];
  int i;

  ASSERT_INT_EQ(bh_unpack(NULL, e, sizeof(e), "i", &i), BH_EINVAL);
  ASSERT_STR_EQ(e, "value: NULL object");
  return 0;
}

/* ------------------------------------------------------------------------
 * Error messages. */

TEST(errors_name_array_positions) {
  bh_value *v = bh_value_pack(NULL, "[i i [i s]]", 1, 2, 3, "x");
  const msgpack_object *o = bh_value_object(v);
  int i = -5;
  char s[8];

  ASSERT(v != NULL);
  EXPECT_FAIL(BH_ETYPE, "[1]: expected str, got int", o, "[i s *]", &i, s,
              sizeof(s));
  EXPECT_FAIL(BH_ETYPE, "[2][1]: expected int, got str", o, "[* * [i i]]", &i,
              &i);
  EXPECT_FAIL(BH_ETYPE, "[]: expected array of 2 items, got 3", o, "[i i]", &i,
              &i);
  EXPECT_FAIL(BH_ETYPE, "[2][]: expected array of 1 item, got 2", o,
              "[* * [i]]", &i);
  EXPECT_FAIL(BH_ETYPE, "value: expected map, got array", o, "{s:i}", "a", &i);
  EXPECT_FAIL(BH_ETYPE, "[2]: expected map, got array", o, "[* * {}]");
  EXPECT_FAIL(BH_ETYPE, "[0]: expected array, got int", o, "[[] * *]");
  bh_value_free(v);
  return 0;
}

TEST(errors_name_map_positions) {
  bh_value *v =
      bh_value_pack(NULL, "{s:[b i i n], s:s}", "opts", 1, 2, 3, "name", "x");
  const msgpack_object *o = bh_value_object(v);
  int b, i;
  double f;

  ASSERT(v != NULL);
  EXPECT_FAIL(BH_ETYPE, "{opts}[3]: expected bool, got nil", o, "{s:[b i i b]}",
              "opts", &b, &i, &i, &b);
  EXPECT_FAIL(BH_ETYPE, "{timeout}: missing key", o, "{s:* s:i}", "name",
              "timeout", &i);
  EXPECT_FAIL(BH_ETYPE, "{name}: expected int, got str", o, "{s?:i s:i}",
              "timeout", &i, "name", &i);
  EXPECT_FAIL(BH_ETYPE, "{opts}: expected map, got array", o, "{s:{s:i}}",
              "opts", "x", &i);
  EXPECT_FAIL(BH_ETYPE, "{opts}[]: expected array of 1 item, got 4", o,
              "{s:[*]}", "opts");
  EXPECT_FAIL(BH_ETYPE, "{name}: expected float, got str", o, "{s:f}", "name",
              &f);
  bh_value_free(v);
  return 0;
}

/* Each letter against a value of another type. */
TEST(errors_name_expected_and_actual_types) {
  bh_value *v = bh_value_pack(NULL, "[n b i f s y# [] {}]", 1, 2, 0.5, "s", "y",
                              (size_t)1);
  const msgpack_object *o = bh_value_object(v);
  const char *sp;
  const void *yp;
  size_t n;
  char s[8];
  int i;
  int64_t I;
  unsigned u;
  uint64_t U;
  double f;

  ASSERT(v != NULL);
  EXPECT_FAIL(BH_ETYPE, "[2]: expected nil, got int", o, "[* * n * * * * *]");
  EXPECT_FAIL(BH_ETYPE, "[2]: expected bool, got int", o, "[* * b * * * * *]",
              &i);
  EXPECT_FAIL(BH_ETYPE, "[3]: expected int, got float", o, "[* * * i * * * *]",
              &i);
  EXPECT_FAIL(BH_ETYPE, "[4]: expected int, got str", o, "[* * * * I * * *]",
              &I);
  EXPECT_FAIL(BH_ETYPE, "[0]: expected int, got nil", o, "[u * * * * * * *]",
              &u);
  EXPECT_FAIL(BH_ETYPE, "[1]: expected int, got bool", o, "[* U * * * * * *]",
              &U);
  EXPECT_FAIL(BH_ETYPE, "[4]: expected float, got str", o, "[* * * * f * * *]",
              &f);
  EXPECT_FAIL(BH_ETYPE, "[5]: expected str, got bin", o, "[* * * * * s * *]", s,
              sizeof(s));
  EXPECT_FAIL(BH_ETYPE, "[5]: expected str, got bin", o, "[* * * * * s# * *]",
              &sp, &n);
  EXPECT_FAIL(BH_ETYPE, "[2]: expected bin, got int", o, "[* * y# * * * * *]",
              &yp, &n);
  EXPECT_FAIL(BH_ETYPE, "[7]: expected array, got map", o,
              "[* * * * * * * []]");
  EXPECT_FAIL(BH_ETYPE, "[6]: expected map, got array", o,
              "[* * * * * * {} *]");
  bh_value_free(v);
  return 0;
}

TEST(bin_target_accepts_str) {
  bh_value *v = bh_value_pack(NULL, "[s y#]", "abc", "de", (size_t)2);
  const void *p1, *p2;
  size_t n1, n2;

  ASSERT(v != NULL);
  EXPECT_OK(bh_value_object(v), "[y# y#]", &p1, &n1, &p2, &n2);
  ASSERT(n1 == 3 && memcmp(p1, "abc", 3) == 0);
  ASSERT(n2 == 2 && memcmp(p2, "de", 2) == 0);
  bh_value_free(v);
  return 0;
}

TEST(error_buffer_is_optional_and_truncated) {
  bh_value *v = bh_value_pack(NULL, "[i]", 1);
  char small[8];
  const char *sp;
  size_t n;

  ASSERT(v != NULL);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), NULL, 0, "[s#]", &sp, &n),
                BH_ETYPE);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), NULL, 0, "[x]"), BH_EFORMAT);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), small, sizeof(small), "[n]"),
                BH_ETYPE);
  ASSERT_STR_EQ(small, "[0]: ex");
  bh_value_free(v);
  return 0;
}

TEST(long_paths_are_cut_not_overflowed) {
  char key[400], e[600];
  bh_value *v;
  int i = 0;

  memset(key, 'k', sizeof(key) - 1);
  key[sizeof(key) - 1] = '\0';
  v = bh_value_pack(NULL, "{s:s}", key, "x");
  ASSERT(v != NULL);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), e, sizeof(e), "{s:i}", key, &i),
                BH_ETYPE);
  ASSERT(strncmp(e, "{kkkk", 5) == 0);
  ASSERT(strstr(e, ": expected int, got str") != NULL);
  ASSERT(strlen(e) < 300);
  bh_value_free(v);
  return 0;
}

/* ------------------------------------------------------------------------
 * Integer ranges and conversions. */

TEST(int_targets_are_range_checked) {
  bh_value *v =
      bh_value_pack(NULL, "[I I I I I U U]", (int64_t)10000000000,
                    (int64_t)INT_MIN - 1, (int64_t)INT_MIN, (int64_t)INT_MAX,
                    (int64_t)-1, (uint64_t)UINT_MAX + 1, UINT64_MAX);
  const msgpack_object *a = bh_value_object(v), *o = a->via.array.ptr;
  int i = 42;
  unsigned u = 42;
  int64_t I = 42;
  uint64_t U = 42;

  ASSERT(v != NULL);
  EXPECT_FAIL(BH_ETYPE,
              "[0]: expected int from -2147483648 to 2147483647, "
              "got 10000000000",
              a, "[i * * * * * *]", &i);
  EXPECT_FAIL(BH_ETYPE,
              "value: expected int from -2147483648 to 2147483647, "
              "got -2147483649",
              &o[1], "i", &i);
  ASSERT_INT_EQ(i, 42); /* untouched on failure */
  EXPECT_OK(&o[2], "i", &i);
  ASSERT_INT_EQ(i, INT_MIN);
  EXPECT_OK(&o[3], "i", &i);
  ASSERT_INT_EQ(i, INT_MAX);
  EXPECT_FAIL(BH_ETYPE, "value: expected int from 0 to 4294967295, got -1",
              &o[4], "u", &u);
  EXPECT_FAIL(BH_ETYPE,
              "value: expected int from 0 to 4294967295, "
              "got 4294967296",
              &o[5], "u", &u);
  ASSERT_INT_EQ(u, 42);
  EXPECT_OK(&o[3], "u", &u);
  ASSERT_INT_EQ(u, INT_MAX);
  EXPECT_FAIL(BH_ETYPE,
              "value: expected int from 0 to 18446744073709551615, "
              "got -1",
              &o[4], "U", &U);
  EXPECT_OK(&o[6], "U", &U);
  ASSERT(U == UINT64_MAX);
  EXPECT_FAIL(BH_ETYPE,
              "value: expected int from -9223372036854775808 to "
              "9223372036854775807, got 18446744073709551615",
              &o[6], "I", &I);
  ASSERT_INT_EQ(I, 42);
  EXPECT_OK(&o[4], "I", &I);
  ASSERT_INT_EQ(I, -1);
  EXPECT_OK(&o[5], "I", &I);
  ASSERT_INT_EQ(I, (int64_t)UINT_MAX + 1);
  bh_value_free(v);
  return 0;
}

TEST(int_extremes_round_trip) {
  bh_value *v = bh_value_pack(NULL, "[I I U]", INT64_MIN, INT64_MAX,
                              (uint64_t)INT64_MAX + 1);
  int64_t a, b;
  uint64_t c;

  ASSERT(v != NULL);
  EXPECT_OK(bh_value_object(v), "[I I U]", &a, &b, &c);
  ASSERT(a == INT64_MIN && b == INT64_MAX && c == (uint64_t)INT64_MAX + 1);
  bh_value_free(v);
  return 0;
}

TEST(hand_built_negative_type_with_positive_value) {
  msgpack_object o;
  unsigned u = 0;
  int i = 0;

  /* msgpack-c never decodes this, but a caller may build it. */
  o.type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
  o.via.i64 = 5;
  EXPECT_OK(&o, "i", &i);
  EXPECT_OK(&o, "u", &u);
  ASSERT(i == 5 && u == 5);
  return 0;
}

TEST(float_target_takes_floats_and_ints) {
  /* [1.5f as float32, -3, 7, 0.25] */
  bh_value *v = bytes("\x94\xca\x3f\xc0\x00\x00\xfd\x07"
                      "\xcb\x3f\xd0\x00\x00\x00\x00\x00\x00",
                      17);
  double a, b, c, d;

  ASSERT(v != NULL);
  ASSERT_INT_EQ(bh_value_object(v)->via.array.ptr[0].type,
                MSGPACK_OBJECT_FLOAT32);
  EXPECT_OK(bh_value_object(v), "[f f f f]", &a, &b, &c, &d);
  ASSERT(a == 1.5 && b == -3.0 && c == 7.0 && d == 0.25);
  bh_value_free(v);
  return 0;
}

/* ------------------------------------------------------------------------
 * Strings into caller buffers. */

TEST(string_buffers) {
  bh_value *v = bh_value_pack(NULL, "[s s s#]", "abc", "", "a\0b", (size_t)3);
  const msgpack_object *o = bh_value_object(v)->via.array.ptr;
  char b4[4], b3[3], b1[1];

  ASSERT(v != NULL);
  EXPECT_OK(&o[0], "s", b4, sizeof(b4));
  ASSERT_STR_EQ(b4, "abc");
  memcpy(b3, "zz", 3);
  EXPECT_FAIL(BH_ETYPE, "value: string longer than 2 bytes", &o[0], "s", b3,
              sizeof(b3));
  ASSERT_STR_EQ(b3, "zz"); /* untouched on failure */
  EXPECT_OK(&o[1], "s", b1, sizeof(b1));
  ASSERT_STR_EQ(b1, "");
  EXPECT_FAIL(BH_ETYPE, "value: no room for a string in a 0-byte buffer", &o[1],
              "s", b1, (size_t)0);
  EXPECT_FAIL(BH_ETYPE, "[2]: string holds a NUL byte", bh_value_object(v),
              "[* * s]", b4, sizeof(b4));
  bh_value_free(v);
  return 0;
}

/* ------------------------------------------------------------------------
 * Format errors. */

static const struct {
  const char *fmt;
  const char *msg; /* as bh_unpack() reports it */
} bad_formats[] = {
    {"[ix]", "format: unknown letter 'x' at 2"},
    {"[i", "format: unclosed '[' at 0"},
    {"  {s:i", "format: unclosed '{' at 2"},
    {"i]", "format: unexpected ']' at 1"},
    {"[s:i}", "format: unexpected '}' at 4"},
    {"{s}", "format: map key without value at 1"},
    {"{s: i, s }", "format: map key without value at 7"},
    {"y", "format: 'y' must be followed by '#' at 0"},
    {"[y #]", "format: 'y' must be followed by '#' at 1"},
    {"#", "format: unknown letter '#' at 0"},
    {"[\x01]", "format: unknown byte 0x01 at 1"},
    {"", "format: empty"},
    {" ,: ", "format: empty"},
};

TEST(format_errors_when_unpacking) {
  bh_value *v = bh_value_pack(NULL, "[i]", 1);
  size_t k;
  int i = 42;

  ASSERT(v != NULL);
  for (k = 0; k < sizeof(bad_formats) / sizeof(bad_formats[0]); k++) {
    fprintf(stderr, "case %s\n", bad_formats[k].fmt);
    EXPECT_FAIL(BH_EFORMAT, bad_formats[k].msg, bh_value_object(v),
                bad_formats[k].fmt);
  }
  EXPECT_FAIL(BH_EFORMAT, "format: NULL", bh_value_object(v), NULL);
  EXPECT_FAIL(BH_EFORMAT, "format: '?' must follow a map key at 1",
              bh_value_object(v), "[?]");
  EXPECT_FAIL(BH_EFORMAT, "format: 'v' is pack-only at 1", bh_value_object(v),
              "[v]");
  EXPECT_FAIL(BH_EFORMAT, "format: map key must be 's' at 1",
              bh_value_object(v), "{i:i}");
  EXPECT_FAIL(BH_EFORMAT, "format: map key must be 's' at 2",
              bh_value_object(v), "{ ?s:i}");
  /* The format is checked before anything is stored. */
  EXPECT_FAIL(BH_EFORMAT, "format: unknown letter 'x' at 3", bh_value_object(v),
              "[i x]", &i);
  ASSERT_INT_EQ(i, 42);
  bh_value_free(v);
  return 0;
}

TEST(format_errors_when_packing) {
  static const char *pack_only_bad[] = {"*", "[*]", "?", "{s?:i}", "{i}"};
  msgpack_sbuffer sb;
  msgpack_packer pk;
  size_t k;
  int err = 0;

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  for (k = 0; k < sizeof(bad_formats) / sizeof(bad_formats[0]); k++) {
    ASSERT_INT_EQ(bh_pack(&pk, bad_formats[k].fmt, 1, 2), BH_EFORMAT);
    err = 0;
    ASSERT(bh_value_pack(&err, bad_formats[k].fmt, 1, 2) == NULL);
    ASSERT_INT_EQ(err, BH_EFORMAT);
  }
  for (k = 0; k < sizeof(pack_only_bad) / sizeof(pack_only_bad[0]); k++)
    ASSERT_INT_EQ(bh_pack(&pk, pack_only_bad[k], "a", 1), BH_EFORMAT);
  ASSERT_INT_EQ(bh_pack(&pk, NULL), BH_EFORMAT);
  ASSERT_INT_EQ(bh_pack(&pk, "[i i x]", 1, 2), BH_EFORMAT);
  ASSERT(bh_value_pack(NULL, "[i x]", 1) == NULL); /* err may be NULL */
  ASSERT_INT_EQ(sb.size, 0);                       /* nothing was written */
  msgpack_sbuffer_destroy(&sb);
  return 0;
}

/* ------------------------------------------------------------------------
 * Nesting limits: msgpack-c decodes at most 32 nested containers. */

static char *
nested_format(int levels) {
  char *f = malloc((size_t)levels * 2 + 3);
  int i;

  for (i = 0; i < levels; i++)
    f[i] = '[';
  for (i = 0; i < levels; i++)
    f[levels + i] = ']';
  f[levels * 2] = '\0';
  return f;
}

TEST(nesting_limit_in_formats) {
  char *f32 = nested_format(32), *f33 = nested_format(33), e[128];
  char two[80];
  msgpack_sbuffer sb;
  msgpack_packer pk;
  bh_value *v;
  int err = 0;

  v = bh_value_pack(&err, f32);
  ASSERT(v != NULL);
  EXPECT_OK(bh_value_object(v), f32);
  ASSERT(bh_value_pack(&err, f33) == NULL);
  ASSERT_INT_EQ(err, BH_EFORMAT);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), e, sizeof(e), f33), BH_EFORMAT);
  ASSERT_STR_EQ(e, "format: nesting deeper than 32 at 32");
  /* Two top-level items make an array: one level more. */
  snprintf(two, sizeof(two), "n %s", f32);
  ASSERT(bh_value_pack(&err, two) == NULL);
  ASSERT_INT_EQ(err, BH_EFORMAT);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), e, sizeof(e), two), BH_EFORMAT);
  ASSERT_STR_EQ(e, "format: nesting deeper than 32 at 33");
  /* Found by the format check, so the packer is left untouched. */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  ASSERT_INT_EQ(bh_pack(&pk, two), BH_EFORMAT);
  ASSERT_INT_EQ(sb.size, 0);
  msgpack_sbuffer_destroy(&sb);
  bh_value_free(v);
  free(f32);
  free(f33);
  return 0;
}

TEST(nesting_limit_for_objects_and_values) {
  char *f32 = nested_format(32);
  bh_value *deep = bh_value_pack(NULL, f32), *v;
  msgpack_object *chain;
  int err = 0, i;

  ASSERT(deep != NULL);
  v = bh_value_pack(&err, "o", bh_value_object(deep));
  ASSERT(v != NULL);
  bh_value_free(v);
  v = bh_value_pack(&err, "v", deep);
  ASSERT(v != NULL);
  bh_value_free(v);
  ASSERT(bh_value_pack(&err, "[o]", bh_value_object(deep)) == NULL);
  ASSERT_INT_EQ(err, BH_EFORMAT);
  ASSERT(bh_value_pack(&err, "[v]", deep) == NULL);
  ASSERT_INT_EQ(err, BH_EFORMAT);
  /* A hand-built 33-deep object cannot become a value. */
  chain = calloc(33, sizeof(*chain));
  for (i = 0; i < 33; i++) {
    chain[i].type = MSGPACK_OBJECT_ARRAY;
    chain[i].via.array.size = i < 32 ? 1 : 0;
    chain[i].via.array.ptr = i < 32 ? &chain[i + 1] : NULL;
  }
  ASSERT(bh_value_from_object(&chain[0]) == NULL);
  v = bh_value_from_object(&chain[1]);
  ASSERT(v != NULL);
  bh_value_free(v);
  free(chain);
  bh_value_free(deep);
  free(f32);
  return 0;
}

TEST(nesting_limit_for_bytes) {
  size_t n;
  char *b32 = nested_bytes(32, &n), *b33;
  bh_value *v = bh_value_from_bytes(b32, n);

  ASSERT(v != NULL);
  bh_value_free(v);
  b33 = nested_bytes(33, &n);
  ASSERT(bh_value_from_bytes(b33, n) == NULL);
  free(b32);
  free(b33);
  return 0;
}

/* ------------------------------------------------------------------------
 * Owned values. */

TEST(from_bytes_takes_exactly_one_value) {
  static const char good[] = "\x93\x01\xa2hi\xc4\x01\x00";
  const size_t n = sizeof(good) - 1;
  char buf[16];
  bh_value *v;
  size_t k, size;

  v = bh_value_from_bytes(good, n);
  ASSERT(v != NULL);
  ASSERT_STR_EQ(repr(bh_value_object(v)), "[1, \"hi\", <bin 1 bytes>]");
  ASSERT(bh_value_data(v, &size) != good && size == n);
  bh_value_free(v);
  for (k = 1; k < n; k++) /* every truncation */
    ASSERT(bh_value_from_bytes(good, k) == NULL);
  memcpy(buf, good, n);
  buf[n] = 0x01; /* one trailing byte */
  ASSERT(bh_value_from_bytes(buf, n + 1) == NULL);
  ASSERT(bh_value_from_bytes("\xc1", 1) == NULL); /* never-used byte */
  ASSERT(bh_value_from_bytes("\x92\x01\xc1", 3) == NULL);
  ASSERT(bh_value_from_bytes("", 0) == NULL);
  ASSERT(bh_value_from_bytes(NULL, 0) == NULL);
  ASSERT(bh_value_from_bytes(NULL, 4) == NULL);
  return 0;
}

TEST(from_bytes_copies) {
  char buf[4] = {(char)0xa3, 'a', 'b', 'c'};
  bh_value *v = bh_value_from_bytes(buf, sizeof(buf));

  ASSERT(v != NULL);
  memset(buf, 0, sizeof(buf));
  ASSERT_STR_EQ(repr(bh_value_object(v)), "\"abc\"");
  bh_value_free(v);
  return 0;
}

TEST(from_object_is_a_deep_copy) {
  bh_value *orig = bh_value_pack(NULL, "{s:[i s y#] s:{s:f}}", "a", 1, "two",
                                 "3", (size_t)1, "m", "x", 0.5);
  const char *data;
  char saved[128], before[256];
  size_t n, n2;
  bh_value *copy;

  ASSERT(orig != NULL);
  data = bh_value_data(orig, &n);
  ASSERT(n < sizeof(saved));
  memcpy(saved, data, n);
  ASSERT(bh_value_repr(bh_value_object(orig), before, sizeof(before)) <
         sizeof(before));
  copy = bh_value_from_object(bh_value_object(orig));
  ASSERT(copy != NULL);
  bh_value_free(orig); /* the copy must not borrow anything from it */
  ASSERT_STR_EQ(repr(bh_value_object(copy)), before);
  data = bh_value_data(copy, &n2);
  ASSERT(n2 == n && memcmp(data, saved, n) == 0);
  ASSERT(bh_value_from_object(NULL) == NULL);
  bh_value_free(copy);
  return 0;
}

TEST(accessors_and_null) {
  size_t n = 99;

  ASSERT(bh_value_object(NULL) == NULL);
  ASSERT(bh_value_data(NULL, &n) == NULL);
  ASSERT_INT_EQ(n, 0);
  bh_value_free(NULL);
  return 0;
}

TEST(large_values) {
  const size_t n = (size_t)1 << 20;
  char *big = malloc(n), *out = malloc(n + 1);
  const void *yp;
  const char *sp, *data;
  size_t yl, sl, i, size;
  bh_value *v, *copy;

  ASSERT(big && out);
  for (i = 0; i < n; i++)
    big[i] = (char)('a' + i % 26);
  v = bh_value_pack(NULL, "[y# s#]", big, n, big, n);
  ASSERT(v != NULL);
  EXPECT_OK(bh_value_object(v), "[y# s#]", &yp, &yl, &sp, &sl);
  ASSERT(yl == n && memcmp(yp, big, n) == 0);
  ASSERT(sl == n && memcmp(sp, big, n) == 0);
  EXPECT_OK(bh_value_object(v), "[* s]", out, n + 1);
  ASSERT(strlen(out) == n && memcmp(out, big, n) == 0);
  ASSERT_STR_EQ(repr(&bh_value_object(v)->via.array.ptr[0]),
                "<bin 1048576 bytes>");
  ASSERT_INT_EQ(bh_value_repr(bh_value_object(v), NULL, 0),
                strlen("[<bin 1048576 bytes>, \"\"]") + n);
  data = bh_value_data(v, &size);
  copy = bh_value_from_bytes(data, size);
  ASSERT(copy != NULL);
  EXPECT_OK(bh_value_object(copy), "[y# *]", &yp, &yl);
  ASSERT(yl == n && memcmp(yp, big, n) == 0);
  bh_value_free(copy);
  bh_value_free(v);
  free(big);
  free(out);
  return 0;
}

TEST(large_arrays) {
  const uint32_t n = 100000;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  const msgpack_object *o;
  uint64_t sum = 0;
  bh_value *v;
  uint32_t i;

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, n);
  for (i = 0; i < n; i++) {
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, i);
    msgpack_pack_str_with_body(&pk, "x", 1);
  }
  v = bh_value_from_bytes(sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  ASSERT(v != NULL);
  o = bh_value_object(v);
  ASSERT_INT_EQ(o->via.array.size, n);
  for (i = 0; i < n; i++)
    sum += o->via.array.ptr[i].via.array.ptr[0].via.u64;
  ASSERT(sum == (uint64_t)n * (n - 1) / 2);
  bh_value_free(v);
  return 0;
}

/* An allocator that fails from the Nth call on. */
static int fail_at, calls;

static void *
f_malloc(size_t n) {
  return ++calls >= fail_at ? NULL : malloc(n);
}

static void *
f_realloc(void *p, size_t n) {
  return ++calls >= fail_at ? NULL : realloc(p, n);
}

TEST(out_of_memory_is_reported_and_leaks_nothing) {
  static const bh_allocator failing = {f_malloc, f_realloc, free};
  size_t live0 = bh__alloc_live();
  bh_value *v = NULL, *src = bh_value_pack(NULL, "[s]", "z");
  char big[300];
  int err = 0, n;

  ASSERT(src != NULL);
  memset(big, 'q', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  for (n = 1; v == NULL; n++) {
    ASSERT(n < 100);
    fail_at = n, calls = 0;
    bh_set_allocator(&failing);
    v = bh_value_pack(&err, "[s {s:i} v y#]", big, "k", 1, src, "ab",
                      (size_t)2);
    bh_set_allocator(NULL);
    if (v == NULL) {
      ASSERT_INT_EQ(err, BH_ENOMEM);
      ASSERT_INT_EQ(bh__alloc_live(), live0 + 2); /* src and its bytes */
    }
  }
  ASSERT(n > 2); /* at least one failure was seen */
  ASSERT_INT_EQ(err, 0);
  bh_value_free(v);
  for (v = NULL, n = 1; v == NULL; n++) {
    ASSERT(n < 100);
    fail_at = n, calls = 0;
    bh_set_allocator(&failing);
    v = bh_value_from_object(bh_value_object(src));
    bh_set_allocator(NULL);
    ASSERT_INT_EQ(bh__alloc_live(), live0 + 2 + (v != NULL ? 2 : 0));
  }
  bh_value_free(v);
  fail_at = 1, calls = 0;
  bh_set_allocator(&failing);
  v = bh_value_from_bytes("\xc0", 1);
  bh_set_allocator(NULL);
  ASSERT(v == NULL);
  bh_value_free(src);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ------------------------------------------------------------------------
 * Rendering. */

TEST(repr_scalars_and_containers) {
  bh_value *v = bh_value_pack(NULL, "[n b b i i U I]", 1, 0, 0, -1, UINT64_MAX,
                              INT64_MIN);
  bh_value *m = bh_value_pack(NULL, "{s:[i i] i:{} s:[]}", "a", 1, 2, 3, "e");
  bh_value *ext = bytes("\xd4\x05\x2a", 3);
  int i;

  ASSERT(v && m && ext);
  ASSERT_STR_EQ(repr(bh_value_object(v)),
                "[null, true, false, 0, -1, 18446744073709551615, "
                "-9223372036854775808]");
  ASSERT_STR_EQ(repr(bh_value_object(m)), "{\"a\": [1, 2], 3: {}, \"e\": []}");
  ASSERT_STR_EQ(repr(bh_value_object(ext)), "<ext 5, 1 bytes>");
  ASSERT_STR_EQ(repr(NULL), "NULL");
  ASSERT_STR_EQ(bh__type_name(bh_value_object(ext)), "ext");
  EXPECT_FAIL(BH_ETYPE, "value: expected int, got ext", bh_value_object(ext),
              "i", &i);
  bh_value_free(v);
  bh_value_free(m);
  bh_value_free(ext);
  return 0;
}

TEST(repr_floats) {
  static const struct {
    double d;
    const char *text;
  } c[] = {{1.5, "1.5"},
           {0.1, "0.1"},
           {100.0, "100.0"},
           {-0.0, "-0.0"},
           {1e300, "1e+300"},
           {1.0 / 3, "0.3333333333333333"},
           {123456789.0, "123456789.0"},
           {5e-324, "4.94065645841247e-324"}};
  size_t k;
  bh_value *v;

  for (k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
    v = bh_value_pack(NULL, "f", c[k].d);
    ASSERT(v != NULL);
    ASSERT_STR_EQ(repr(bh_value_object(v)), c[k].text);
    bh_value_free(v);
  }
  v = bh_value_pack(NULL, "[f f f]", NAN, INFINITY, -INFINITY);
  ASSERT(v != NULL);
  ASSERT_STR_EQ(repr(bh_value_object(v)), "[nan, inf, -inf]");
  bh_value_free(v);
  v = bytes("\xca\x3d\xcc\xcc\xcd", 5); /* 0.1f as float32 */
  ASSERT(v != NULL);
  ASSERT_STR_EQ(repr(bh_value_object(v)), "0.1");
  bh_value_free(v);
  return 0;
}

TEST(repr_escapes_strings) {
  bh_value *v = bh_value_pack(
      NULL, "s#", "a\"b\\c\n\r\t\b\f\x01\x7f\0z\xc3\xa9", (size_t)16);

  ASSERT(v != NULL);
  ASSERT_STR_EQ(repr(bh_value_object(v)),
                "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u007f\\u0000z\xc3\xa9\"");
  bh_value_free(v);
  return 0;
}

TEST(repr_truncates_like_snprintf) {
  bh_value *v = bh_value_pack(NULL, "[i i i]", 1, 2, 3);
  const msgpack_object *o = bh_value_object(v);
  char buf[16];

  ASSERT(v != NULL);
  ASSERT_INT_EQ(bh_value_repr(o, NULL, 0), 9);
  memset(buf, 'X', sizeof(buf));
  ASSERT_INT_EQ(bh_value_repr(o, buf, 0), 9);
  ASSERT(buf[0] == 'X');
  ASSERT_INT_EQ(bh_value_repr(o, buf, 1), 9);
  ASSERT_STR_EQ(buf, "");
  ASSERT_INT_EQ(bh_value_repr(o, buf, 5), 9);
  ASSERT_STR_EQ(buf, "[1, ");
  ASSERT(buf[5] == 'X');
  ASSERT_INT_EQ(bh_value_repr(o, buf, 9), 9);
  ASSERT_STR_EQ(buf, "[1, 2, 3");
  ASSERT_INT_EQ(bh_value_repr(o, buf, 10), 9);
  ASSERT_STR_EQ(buf, "[1, 2, 3]");
  bh_value_free(v);
  return 0;
}

/* ------------------------------------------------------------------------
 * Internal helpers. */

TEST(type_names) {
  msgpack_object o;

  memset(&o, 0, sizeof(o));
  ASSERT_STR_EQ(bh__type_name(NULL), "NULL");
  o.type = MSGPACK_OBJECT_NIL;
  ASSERT_STR_EQ(bh__type_name(&o), "nil");
  o.type = MSGPACK_OBJECT_BOOLEAN;
  ASSERT_STR_EQ(bh__type_name(&o), "bool");
  o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  ASSERT_STR_EQ(bh__type_name(&o), "int");
  o.type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
  ASSERT_STR_EQ(bh__type_name(&o), "int");
  o.type = MSGPACK_OBJECT_FLOAT32;
  ASSERT_STR_EQ(bh__type_name(&o), "float");
  o.type = MSGPACK_OBJECT_FLOAT64;
  ASSERT_STR_EQ(bh__type_name(&o), "float");
  o.type = MSGPACK_OBJECT_STR;
  ASSERT_STR_EQ(bh__type_name(&o), "str");
  o.type = MSGPACK_OBJECT_BIN;
  ASSERT_STR_EQ(bh__type_name(&o), "bin");
  o.type = MSGPACK_OBJECT_ARRAY;
  ASSERT_STR_EQ(bh__type_name(&o), "array");
  o.type = MSGPACK_OBJECT_MAP;
  ASSERT_STR_EQ(bh__type_name(&o), "map");
  o.type = MSGPACK_OBJECT_EXT;
  ASSERT_STR_EQ(bh__type_name(&o), "ext");
  return 0;
}

TEST(map_get) {
  bh_value *v = bh_value_pack(NULL, "{i:i s:i s:i s:i s:i}", 1, 10, "ab", 20,
                              "", 30, "a", 40, "a", 50);
  const msgpack_object *m = bh_value_object(v), *o;

  ASSERT(v != NULL);
  ASSERT((o = bh__map_get(m, "a")) != NULL && o->via.u64 == 40);
  ASSERT((o = bh__map_get(m, "ab")) != NULL && o->via.u64 == 20);
  ASSERT((o = bh__map_get(m, "")) != NULL && o->via.u64 == 30);
  ASSERT(bh__map_get(m, "b") == NULL);
  ASSERT(bh__map_get(m, "abc") == NULL);
  ASSERT(bh__map_get(m, "1") == NULL);
  ASSERT(bh__map_get(m, NULL) == NULL);
  ASSERT(bh__map_get(NULL, "a") == NULL);
  ASSERT(bh__map_get(&m->via.map.ptr[0].val, "a") == NULL); /* not a map */
  bh_value_free(v);
  return 0;
}

TEST(pack_object_helper) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  bh_value *v = bh_value_pack(NULL, "[s i]", "x", 2);

  ASSERT(v != NULL);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  ASSERT_INT_EQ(bh__pack_object(&pk, bh_value_object(v)), 0);
  ASSERT_INT_EQ(bh__pack_object(&pk, NULL), 0);
  ASSERT_INT_EQ(sb.size, 5);
  ASSERT(memcmp(sb.data, "\x92\xa1x\x02\xc0", 5) == 0);
  msgpack_sbuffer_destroy(&sb);
  bh_value_free(v);
  return 0;
}

/* The task module's pattern: "[...]{...}" in two parts. */
static int
unpack_two(const msgpack_object *args, const msgpack_object *kwargs, char *e,
           size_t elen, const char *fmt, ...) {
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = bh__unpack_item(args, "args", e, elen, &fmt, &ap);
  if (rc == 0 && !bh__fmt_empty(fmt))
    rc = bh__unpack_item(kwargs, "kwargs", e, elen, &fmt, &ap);
  if (rc == 0 && !bh__fmt_empty(fmt))
    rc = -1;
  va_end(ap);
  return rc;
}

static int
pack_two(msgpack_packer *pk, const char *fmt, ...) {
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = bh__pack_item(pk, &fmt, &ap);
  if (rc == 0)
    rc = bh__pack_item(pk, &fmt, &ap);
  va_end(ap);
  return rc != 0 ? rc : bh__fmt_empty(fmt) ? 0 : -1;
}

TEST(item_helpers_for_args_and_kwargs) {
  bh_value *args = bh_value_pack(NULL, "[i s]", 1, "x");
  bh_value *kw = bh_value_pack(NULL, "{s:i}", "t", 5);
  const msgpack_object *a = bh_value_object(args), *k = bh_value_object(kw);
  msgpack_sbuffer sb;
  msgpack_packer pk;
  char e[128], s[4];
  int i = 0, t = 0;

  ASSERT(args && kw);
  ASSERT_INT_EQ(
      unpack_two(a, k, e, sizeof(e), "[i s] {s:i}", &i, s, sizeof(s), "t", &t),
      0);
  ASSERT(i == 1 && t == 5 && strcmp(s, "x") == 0);
  ASSERT_INT_EQ(unpack_two(a, k, e, sizeof(e), "[i i]", &i, &i), BH_ETYPE);
  ASSERT_STR_EQ(e, "args[1]: expected int, got str");
  ASSERT_INT_EQ(unpack_two(a, k, e, sizeof(e), "[* *]{s:i}", "u", &t),
                BH_ETYPE);
  ASSERT_STR_EQ(e, "kwargs{u}: missing key");
  ASSERT_INT_EQ(unpack_two(k, k, e, sizeof(e), "[* *]"), BH_ETYPE);
  ASSERT_STR_EQ(e, "args: expected array, got map");
  ASSERT_INT_EQ(unpack_two(a, k, e, sizeof(e), "[* *] {s:i"), BH_EFORMAT);
  ASSERT_STR_EQ(e, "format: unclosed '{' at 1");
  ASSERT_INT_EQ(unpack_two(a, NULL, e, sizeof(e), "[* *] {}"), BH_EINVAL);
  ASSERT_STR_EQ(e, "kwargs: NULL object");
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  ASSERT_INT_EQ(pack_two(&pk, " [i s], {s:i} ", 1, "x", "t", 5), 0);
  ASSERT_INT_EQ(sb.size, 8);
  ASSERT(memcmp(sb.data, "\x92\x01\xa1x\x81\xa1t\x05", 8) == 0);
  ASSERT_INT_EQ(pack_two(&pk, "[i] x", 1), BH_EFORMAT);
  ASSERT_INT_EQ(pack_two(&pk, "", 1), BH_EFORMAT);
  ASSERT(bh__fmt_empty(NULL) && bh__fmt_empty(" ,:") && !bh__fmt_empty(" n"));
  msgpack_sbuffer_destroy(&sb);
  bh_value_free(args);
  bh_value_free(kw);
  return 0;
}

/* The packer remembers the last valid format: a different format is
 * still checked, an invalid one is never remembered, and a valid one packs
 * the same the second time. */
TEST(remembered_format_is_checked_again_when_it_changes) {
  int err = 0;
  bh_value *v;
  int64_t a = 0, b = 0;

  v = bh_value_pack(&err, "[I I]", (int64_t)1, (int64_t)2);
  ASSERT(v != NULL);
  bh_value_free(v);
  ASSERT(bh_value_pack(&err, "[I I", (int64_t)1, (int64_t)2) == NULL);
  ASSERT_INT_EQ(err, BH_EFORMAT);
  ASSERT(bh_value_pack(&err, "[I x]", (int64_t)1) == NULL);
  ASSERT(bh_value_pack(&err, "[I x]", (int64_t)1) == NULL);
  ASSERT_INT_EQ(err, BH_EFORMAT);
  v = bh_value_pack(&err, "[I I]", (int64_t)3, (int64_t)4);
  ASSERT(v != NULL);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), NULL, 0, "[I I]", &a, &b), 0);
  ASSERT(a == 3 && b == 4);
  bh_value_free(v);
  return 0;
}

TEST_MAIN(
    TEST_ENTRY(remembered_format_is_checked_again_when_it_changes),
    TEST_ENTRY(pack_encodes_each_letter), TEST_ENTRY(round_trip_every_letter),
    TEST_ENTRY(borrowed_pointers_point_into_the_value),
    TEST_ENTRY(top_level_items), TEST_ENTRY(null_pointers_pack_nil),
    TEST_ENTRY(pack_object_and_value), TEST_ENTRY(map_keys_are_any_item),
    TEST_ENTRY(pack_into_an_existing_packer),
    TEST_ENTRY(pack_write_failure_is_enomem),
    TEST_ENTRY(pack_refuses_oversized_strings), TEST_ENTRY(nested_structures),
    TEST_ENTRY(optional_keys), TEST_ENTRY(skip_and_unnamed_keys),
    TEST_ENTRY(null_targets_check_without_storing),
    TEST_ENTRY(map_lookup_ignores_non_string_keys),
    TEST_ENTRY(null_object_is_refused), TEST_ENTRY(errors_name_array_positions),
    TEST_ENTRY(errors_name_map_positions),
    TEST_ENTRY(errors_name_expected_and_actual_types),
    TEST_ENTRY(bin_target_accepts_str),
    TEST_ENTRY(error_buffer_is_optional_and_truncated),
    TEST_ENTRY(long_paths_are_cut_not_overflowed),
    TEST_ENTRY(int_targets_are_range_checked),
    TEST_ENTRY(int_extremes_round_trip),
    TEST_ENTRY(hand_built_negative_type_with_positive_value),
    TEST_ENTRY(float_target_takes_floats_and_ints), TEST_ENTRY(string_buffers),
    TEST_ENTRY(format_errors_when_unpacking),
    TEST_ENTRY(format_errors_when_packing),
    TEST_ENTRY(nesting_limit_in_formats),
    TEST_ENTRY(nesting_limit_for_objects_and_values),
    TEST_ENTRY(nesting_limit_for_bytes),
    TEST_ENTRY(from_bytes_takes_exactly_one_value),
    TEST_ENTRY(from_bytes_copies), TEST_ENTRY(from_object_is_a_deep_copy),
    TEST_ENTRY(accessors_and_null), TEST_ENTRY(large_values),
    TEST_ENTRY(large_arrays),
    TEST_ENTRY(out_of_memory_is_reported_and_leaks_nothing),
    TEST_ENTRY(repr_scalars_and_containers), TEST_ENTRY(repr_floats),
    TEST_ENTRY(repr_escapes_strings), TEST_ENTRY(repr_truncates_like_snprintf),
    TEST_ENTRY(type_names), TEST_ENTRY(map_get), TEST_ENTRY(pack_object_helper),
    TEST_ENTRY(item_helpers_for_args_and_kwargs))
