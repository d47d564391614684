/* test_unpack.c - unpacking by format (src/value/unpack.c): nested structures,
 * optional and skipped keys, the position-naming error messages, integer
 * ranges and conversions, strings into caller buffers. */
#include "value_util.h"

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

TEST_MAIN(TEST_ENTRY(nested_structures),
          TEST_ENTRY(optional_keys),
          TEST_ENTRY(skip_and_unnamed_keys),
          TEST_ENTRY(null_targets_check_without_storing),
          TEST_ENTRY(map_lookup_ignores_non_string_keys),
          TEST_ENTRY(null_object_is_refused),
          TEST_ENTRY(errors_name_array_positions),
          TEST_ENTRY(errors_name_map_positions),
          TEST_ENTRY(errors_name_expected_and_actual_types),
          TEST_ENTRY(bin_target_accepts_str),
          TEST_ENTRY(error_buffer_is_optional_and_truncated),
          TEST_ENTRY(long_paths_are_cut_not_overflowed),
          TEST_ENTRY(int_targets_are_range_checked),
          TEST_ENTRY(int_extremes_round_trip),
          TEST_ENTRY(hand_built_negative_type_with_positive_value),
          TEST_ENTRY(float_target_takes_floats_and_ints),
          TEST_ENTRY(string_buffers))
