/* test_callsite.c - the header's call macros in a debug build: every
 * argument's C type checked against its letter (a mismatch aborts naming
 * the call, the argument and the fix), calls that agree left alone, and
 * the function itself, called in parentheses, unchecked. */
#include <stdbool.h>

#include "fixture.h"
#include "base/base.h"
#include "runner.h"

#if defined(NDEBUG)
#error "test_callsite checks the debug-build checks: build it without NDEBUG"
#endif

/* 0 when fn aborted with a message holding `want` and
 * "test_callsite.c:<line>: ". */
static int
aborts_with(void (*fn)(void), int line, const char *want) {
  char msg[1024], where[64];

  snprintf(where, sizeof(where), "test_callsite.c:%d: ", line);
  if (!fixture_aborts(fn, msg, sizeof(msg)) || strstr(msg, want) == NULL ||
      strstr(msg, where) == NULL) {
    fprintf(stderr, "wanted an abort at \"%s\" saying \"%s\"; got \"%s\"\n",
            where, want, msg);
    return 1;
  }
  return 0;
}

/* A call on one line, and that line, known without running it. */
#define LINE_CASE(name, stmt)                                                \
  enum { name##_line = __LINE__ };                                           \
  static void name(void) { stmt; }

static char buf[16];
static msgpack_packer pk;
LINE_CASE(int_for_I, bh_value_free(bh_value_pack(NULL, "[I]", -3)))
LINE_CASE(int_for_f, bh_pack(&pk, "f", 1))
LINE_CASE(double_for_i, bh_pack(&pk, "i", 1.5))
LINE_CASE(int_for_size, bh_pack(&pk, "s#", "abc", 3))
LINE_CASE(long_for_i, bh_pack(&pk, "[i]", 3L))
LINE_CASE(too_few, bh_pack(&pk, "[i i]", 1))
LINE_CASE(too_many, bh_pack(&pk, "[i]", 1, 2))
static const msgpack_object o_int = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
static const msgpack_object o_str = {.type = MSGPACK_OBJECT_STR};
static const msgpack_object o_map = {.type = MSGPACK_OBJECT_MAP};
static int x_int;
static float x_float;
static bool x_bool;
static size_t x_size;
LINE_CASE(int_target_for_I, bh_unpack(&o_int, NULL, 0, "I", &x_int))
LINE_CASE(float_target_for_f, bh_unpack(&o_int, NULL, 0, "f", &x_float))
LINE_CASE(bool_target_for_b, bh_unpack(&o_int, NULL, 0, "b", &x_bool))
LINE_CASE(int_size_for_s, bh_unpack(&o_str, NULL, 0, "s", buf, 16))
LINE_CASE(buffer_for_s_hash, bh_unpack(&o_str, NULL, 0, "s#", buf, &x_size))
static const char *ka = "a", *kb = "b";
LINE_CASE(in_map, bh_unpack(&o_map, 0, 0, "{s:i s?:I}", ka, &x_int, kb, &x_int))

/* C arrays (#X): the count is a size_t, an unpacked array's items point
 * to its element type. */
static const int64_t i64s[2] = {1, 2};
static int ints[2];
static const msgpack_object o_arr = {.type = MSGPACK_OBJECT_ARRAY};
LINE_CASE(int_count_for_carray, bh_pack(&pk, "#I", i64s, 2))
LINE_CASE(ints_for_arr, bh_unpack(&o_arr, 0, 0, "#I", ints, (size_t)2, NULL))

TEST(c_arrays_are_checked) {
  ASSERT_INT_EQ(aborts_with(int_count_for_carray, int_count_for_carray_line,
                            "argument 2 after the format is an int, but "
                            "'#I' at 0 takes a size_t: cast it, (size_t)n"),
                0);
  ASSERT_INT_EQ(aborts_with(ints_for_arr, ints_for_arr_line,
                            "argument 1 after the format is an int *, but "
                            "'#I' at 0 takes an int64_t *"),
                0);
  return 0;
}

TEST(mismatches_name_call_argument_and_fix) {
  /* The issue's case: an int where the format says I packed 4294967293. */
  ASSERT_INT_EQ(aborts_with(int_for_I, int_for_I_line,
                            "in int_for_I: bh_value_pack: format \"[I]\": "
                            "argument 1 after the format is an int, but 'I' "
                            "at 1 takes an int64_t: cast it, (int64_t)x"),
                0);
  return 0;
}

TEST(each_letter_takes_its_type) {
  ASSERT_INT_EQ(aborts_with(int_for_f, int_for_f_line,
                            "argument 1 after the format is an int, but 'f' "
                            "at 0 takes a double: write 1.0 or cast it"),
                0);
  ASSERT_INT_EQ(aborts_with(double_for_i, double_for_i_line,
                            "argument 1 after the format is a double, but "
                            "'i' at 0 takes an int"),
                0);
  ASSERT_INT_EQ(aborts_with(int_for_size, int_for_size_line,
                            "argument 2 after the format is an int, but 's#' "
                            "at 0 takes a size_t: cast it, (size_t)n"),
                0);
  ASSERT_INT_EQ(aborts_with(long_for_i, long_for_i_line,
                            "argument 1 after the format is a 64-bit "
                            "integer, but 'i' at 1 takes an int"),
                0);
  ASSERT_INT_EQ(aborts_with(too_few, too_few_line,
                            "the call gives 1 argument, and 'i' at 3 reads "
                            "one more, an int"),
                0);
  ASSERT_INT_EQ(aborts_with(too_many, too_many_line,
                            "it reads 1 argument, and the call gives 2"),
                0);
  return 0;
}

TEST(each_target_is_checked) {
  ASSERT_INT_EQ(aborts_with(int_target_for_I, int_target_for_I_line,
                            "bh_unpack: format \"I\": argument 1 after the "
                            "format is an int *, but 'I' at 0 takes an "
                            "int64_t *"),
                0);
  ASSERT_INT_EQ(aborts_with(float_target_for_f, float_target_for_f_line,
                            "is a float *, but 'f' at 0 takes a double *"),
                0);
  ASSERT_INT_EQ(aborts_with(bool_target_for_b, bool_target_for_b_line,
                            "is a bool *, but 'b' at 0 takes an int *"),
                0);
  ASSERT_INT_EQ(aborts_with(int_size_for_s, int_size_for_s_line,
                            "argument 2 after the format is an int, but 's' "
                            "at 0 takes a size_t"),
                0);
  ASSERT_INT_EQ(aborts_with(buffer_for_s_hash, buffer_for_s_hash_line,
                            "argument 1 after the format is a char *, but "
                            "'s#' at 0 takes a const char **"),
                0);
  /* A map pattern's keys take their names; the values are checked. */
  ASSERT_INT_EQ(aborts_with(in_map, in_map_line,
                            "argument 4 after the format is an int *, but "
                            "'I' at 8 takes an int64_t *"),
                0);
  return 0;
}

/* Every letter with the type it takes passes, both ways; so do NULL
 * targets, narrow integers, a float for f, and size_t for I. */
TEST(calls_that_agree_pass) {
  msgpack_sbuffer sb;
  int64_t i64 = -3, got64 = 0;
  uint64_t u64 = 5, gotu64 = 0;
  unsigned u = 7, gotu = 0;
  int i = 1, goti = 0, gotb = 0;
  double d = 0.5, gotd = 0;
  const char *s = "str", *sp;
  char sbuf[8];
  const void *yp;
  size_t n1, n2;
  const msgpack_object *op;
  short sh = 2;
  float fl = 1.5f;
  bh_value *inner = bh_value_pack(NULL, "[I]", i64), *v;

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  ASSERT_INT_EQ(bh_pack(&pk, "[n b i I u U f s s# y# o v i f I]", true, i,
                        i64, u, u64, d, s, s, (size_t)3, "bin", (size_t)3,
                        bh_value_object(inner), inner, sh, fl, sizeof(int)),
                0);
  v = bh_value_from_bytes(sb.data, sb.size);
  ASSERT(v != NULL);
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), NULL, 0,
                          "[n b i I u U f s s# y# o * i * *]", &gotb, &goti,
                          &got64, &gotu, &gotu64, &gotd, sbuf, sizeof(sbuf),
                          &sp, &n1, &yp, &n2, &op, NULL),
                0);
  ASSERT_INT_EQ(got64, -3);
  ASSERT(gotb == 1 && goti == 1 && gotu == 7 && gotu64 == 5 && gotd == 0.5);
  ASSERT_STR_EQ(sbuf, "str");
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), NULL, 0,
                          "[* * * I * * * * * * * * * * *]", NULL),
                0);
  bh_value_free(v);
  v = bh_value_pack(NULL, "{s:I s:s}", "a", i64, "b", "x");
  ASSERT_INT_EQ(bh_unpack(bh_value_object(v), NULL, 0, "{s:I s?:s s?:f}",
                          "a", &got64, "b", NULL, (size_t)0, "c", &gotd),
                0);
  bh_value_free(v);
  bh_value_free(inner);
  msgpack_sbuffer_destroy(&sb);
  return 0;
}

/* The function itself, in parentheses, is not the macro: it takes what
 * it is given, as before (and packs what va_arg reads). */
TEST(the_function_in_parentheses_is_unchecked) {
  bh_value *v = (bh_value_pack)(NULL, "[I]", (int64_t)-3);

  ASSERT(v != NULL);
  bh_value_free(v);
  return 0;
}

TEST_MAIN(TEST_ENTRY(mismatches_name_call_argument_and_fix),
          TEST_ENTRY(c_arrays_are_checked),
          TEST_ENTRY(each_letter_takes_its_type),
          TEST_ENTRY(each_target_is_checked),
          TEST_ENTRY(calls_that_agree_pass),
          TEST_ENTRY(the_function_in_parentheses_is_unchecked))
