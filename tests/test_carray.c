/* test_carray.c - C arrays in the format language (#I and the other #X
 * letters of src/value/pack.c and src/value/unpack.c): packing from a C array of n
 * items, unpacking into the caller's array with its capacity, and the
 * errors naming the position. */
#include "value_util.h"

TEST(pack_each_element_letter) {
  static const int ints[] = {-1, 2}, bools[] = {1, 0, 7};
  static const int64_t bigs[] = {INT64_MIN, 0, INT64_MAX};
  static const unsigned us[] = {UINT_MAX};
  static const uint64_t Us[] = {UINT64_MAX, 1};
  static const double ds[] = {1.5, -0.25};
  static const char *const ss[] = {"a", NULL, "h\xc3\xa9"};
  static const char *const sp[] = {"x\0y", "zz"};
  static const size_t sl[] = {3, 1};
  bh_value *v;
  int err = 1;

  v = bh_value_pack(&err, "[#i #b #I #u #U #f #s #s#]", ints, (size_t)2,
                    bools, (size_t)3, bigs, (size_t)3, us, (size_t)1, Us,
                    (size_t)2, ds, (size_t)2, ss, (size_t)3, sp, sl,
                    (size_t)2);
  ASSERT(v != NULL);
  ASSERT_INT_EQ(err, 0);
  ASSERT_STR_EQ(repr(bh_value_object(v)),
                "[[-1, 2], [true, false, true], [-9223372036854775808, 0, "
                "9223372036854775807], [4294967295], [18446744073709551615, "
                "1], [1.5, -0.25], [\"a\", null, \"h\xc3\xa9\"], "
                "[\"x\\u0000y\", \"z\"]]");
  bh_value_free(v);
  return 0;
}

TEST(pack_empty_null_and_top_level) {
  static const int64_t xs[] = {7, 8, 9};
  bh_value *v;

  /* One #X at top level is the array itself, as one [ ] would be. */
  v = bh_value_pack(NULL, "#I", xs, (size_t)3);
  ASSERT(v != NULL);
  ASSERT_STR_EQ(hex(v), "93 07 08 09");
  bh_value_free(v);
  v = bh_value_pack(NULL, "[#I #I #f]", xs, (size_t)0, NULL, (size_t)5,
                    (const double *)NULL, (size_t)0);
  ASSERT(v != NULL);
  ASSERT_STR_EQ(repr(bh_value_object(v)), "[[], null, null]");
  bh_value_free(v);
  /* Arguments after a C array line up. */
  v = bh_value_pack(NULL, "{s:#I s:i}", "xs", xs, (size_t)2, "after", 5);
  ASSERT(v != NULL);
  ASSERT_STR_EQ(repr(bh_value_object(v)), "{\"xs\": [7, 8], \"after\": 5}");
  bh_value_free(v);
  return 0;
}

TEST(unpack_round_trip) {
  static const int64_t xs[] = {INT64_MIN, -1, 0, INT64_MAX};
  static const double ds[] = {0.5, 3};
  int64_t ys[8] = {0};
  double es[2] = {0};
  int bs[3] = {-1, -1, -1}, after = 0;
  const char *sp[4];
  size_t sl[4], n = 99, nb = 0, ns = 0;
  bh_value *v;

  v = bh_value_pack(NULL, "[#I #f [b b] [s s#] i]", xs, (size_t)4, ds,
                    (size_t)2, 1, 0, "ab", "c\0d", (size_t)3, 42);
  ASSERT(v != NULL);
  EXPECT_OK(bh_value_object(v), "[#I #f #b #s# i]", ys, sizeof(ys) / 8, &n,
            es, (size_t)2, NULL, bs, (size_t)3, &nb, sp, sl, (size_t)4, &ns,
            &after);
  ASSERT_INT_EQ(n, 4);
  ASSERT(memcmp(ys, xs, sizeof(xs)) == 0);
  ASSERT_INT_EQ(ys[4], 0); /* nothing past the count */
  ASSERT(es[0] == 0.5 && es[1] == 3.0);
  ASSERT_INT_EQ(nb, 2);
  ASSERT(bs[0] == 1 && bs[1] == 0 && bs[2] == -1);
  ASSERT_INT_EQ(ns, 2);
  ASSERT(sl[0] == 2 && memcmp(sp[0], "ab", 2) == 0);
  ASSERT(sl[1] == 3 && memcmp(sp[1], "c\0d", 3) == 0);
  ASSERT_INT_EQ(after, 42);
  /* A NULL array checks the elements and stores nothing. */
  EXPECT_OK(bh_value_object(v), "[#I * * * *]", (int64_t *)NULL, (size_t)4,
            (size_t *)NULL);
  bh_value_free(v);
  return 0;
}

TEST(unpack_a_large_array) {
  size_t n = 100000, got = 0, i;
  int64_t *xs = malloc(n * sizeof(*xs)), *ys = malloc(n * sizeof(*ys));
  bh_value *v;

  ASSERT(xs != NULL && ys != NULL);
  for (i = 0; i < n; i++)
    xs[i] = (int64_t)(i * i) - 5;
  v = bh_value_pack(NULL, "#I", xs, n);
  ASSERT(v != NULL);
  EXPECT_OK(bh_value_object(v), "#I", ys, n, &got);
  ASSERT_INT_EQ(got, n);
  ASSERT(memcmp(xs, ys, n * sizeof(*xs)) == 0);
  bh_value_free(v);
  free(xs);
  free(ys);
  return 0;
}

TEST(unpack_errors_name_the_position) {
  bh_value *v = bh_value_pack(NULL, "[i [i i s] [i i i] [i i]]", 0, 1, 2,
                              "three", 4, 5, 6, 7, -1);
  int64_t ys[4] = {0, 0, 0, -5};
  unsigned us[2];
  size_t n = 77;
  const msgpack_object *o;

  ASSERT(v != NULL);
  o = bh_value_object(v);
  EXPECT_FAIL(BH_ETYPE, "[1][2]: expected int, got str", o, "[i #I * *]",
              NULL, ys, (size_t)4, &n);
  ASSERT(ys[0] == 1 && ys[1] == 2); /* stored up to the bad one */
  ASSERT_INT_EQ(n, 77);             /* no count on failure */
  EXPECT_FAIL(BH_ETYPE, "[2][]: expected at most 2 items, got 3", o,
              "[* * #I *]", ys, (size_t)2, &n);
  ASSERT_INT_EQ(ys[3], -5); /* nothing stored past the capacity */
  EXPECT_FAIL(BH_ETYPE, "[2][]: expected array of 4 items, got 3", o,
              "[* * #I *]", ys, (size_t)4, NULL);
  EXPECT_FAIL(BH_ETYPE, "[2][]: expected array of 1 item, got 3", o,
              "[* * #I *]", ys, (size_t)1, NULL);
  EXPECT_FAIL(BH_ETYPE,
              "[3][1]: expected int from 0 to 4294967295, got -1", o,
              "[* * * #u]", us, (size_t)2, NULL);
  EXPECT_FAIL(BH_ETYPE, "[0]: expected array, got int", o, "[#I * * *]", ys,
              (size_t)4, &n);
  EXPECT_FAIL(BH_ETYPE, "[1][0]: expected str, got int", o,
              "[* #s# * *]", NULL, NULL, (size_t)3, NULL);
  bh_value_free(v);
  return 0;
}

TEST(optional_keys_skip_c_arrays) {
  bh_value *v = bh_value_pack(NULL, "{s:i}", "b", 3);
  int64_t ys[2] = {-1, -1};
  const char *sp[1];
  size_t n = 9, sl[1];
  int b = 0;

  ASSERT(v != NULL);
  /* A missing optional key consumes its C array's four or five targets,
   * so later ones line up. */
  EXPECT_OK(bh_value_object(v), "{s?:#I s?:#s# s:i}", "a", ys, (size_t)2, &n,
            "s", sp, sl, (size_t)1, &n, "b", &b);
  ASSERT_INT_EQ(b, 3);
  ASSERT(n == 9 && ys[0] == -1);
  bh_value_free(v);
  return 0;
}

TEST(c_arrays_count_as_nesting) {
  static const int64_t xs[] = {1};
  bh_value *v, *one = bh_value_pack(NULL, "i", 1);
  char fmt[80], e[128];
  int i;

  /* 31 arrays around one #I make 32 levels: allowed; one more is not. */
  for (i = 0; i < 31; i++)
    fmt[i] = '[', fmt[33 + i] = ']';
  memcpy(fmt + 31, "#I", 2);
  fmt[64] = '\0';
  v = bh_value_pack(NULL, fmt, xs, (size_t)1);
  ASSERT(v != NULL && one != NULL);
  bh_value_free(v);
  memmove(fmt + 1, fmt, 65);
  memcpy(fmt + 65, "]", 2);
  ASSERT(bh_value_pack(NULL, fmt, xs, (size_t)1) == NULL);
  ASSERT_INT_EQ(
      bh_unpack(bh_value_object(one), e, sizeof(e), fmt, xs, (size_t)1, NULL),
      BH_EFORMAT);
  ASSERT_STR_EQ(e, "format: nesting deeper than 32 at 32");
  bh_value_free(one);
  return 0;
}

TEST_MAIN(TEST_ENTRY(pack_each_element_letter),
          TEST_ENTRY(pack_empty_null_and_top_level),
          TEST_ENTRY(unpack_round_trip), TEST_ENTRY(unpack_a_large_array),
          TEST_ENTRY(unpack_errors_name_the_position),
          TEST_ENTRY(optional_keys_skip_c_arrays),
          TEST_ENTRY(c_arrays_count_as_nesting))
