/* test_pack.c - packing by format (src/value/pack.c): every letter, top-level
 * items, objects and values, existing packers, write failures, oversized
 * strings, and the remembered format. */
#include "value_util.h"

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

TEST_MAIN(TEST_ENTRY(pack_encodes_each_letter),
          TEST_ENTRY(round_trip_every_letter),
          TEST_ENTRY(borrowed_pointers_point_into_the_value),
          TEST_ENTRY(top_level_items),
          TEST_ENTRY(null_pointers_pack_nil),
          TEST_ENTRY(pack_object_and_value),
          TEST_ENTRY(map_keys_are_any_item),
          TEST_ENTRY(pack_into_an_existing_packer),
          TEST_ENTRY(pack_write_failure_is_enomem),
          TEST_ENTRY(pack_refuses_oversized_strings),
          TEST_ENTRY(remembered_format_is_checked_again_when_it_changes))
