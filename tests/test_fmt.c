/* test_fmt.c - the format language (src/value/fmt.c): malformed formats are
 * refused with a message naming the place, when packing and unpacking. */
#include "value_util.h"

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
    {"#", "format: '#' must be followed by one of iIuUfbs at 0"},
    {"[i #x]", "format: '#' must be followed by one of iIuUfbs at 3"},
    {"[# I]", "format: '#' must be followed by one of iIuUfbs at 1"},
    {"[#y#]", "format: '#' must be followed by one of iIuUfbs at 1"},
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
  EXPECT_FAIL(BH_EFORMAT,
              "format: '#s' is pack-only: unpack strings with '#s#' at 1",
              bh_value_object(v), "[#s]");
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

TEST_MAIN(TEST_ENTRY(format_errors_when_unpacking),
          TEST_ENTRY(format_errors_when_packing))
