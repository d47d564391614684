/* test_value.c - owned values (src/value/value.c): nesting limits, copies from
 * bytes and objects, large values, out of memory, bh_value_repr(), and the
 * internal helpers for args and kwargs. */
#include "value_util.h"

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

TEST_MAIN(TEST_ENTRY(nesting_limit_in_formats),
          TEST_ENTRY(nesting_limit_for_objects_and_values),
          TEST_ENTRY(nesting_limit_for_bytes),
          TEST_ENTRY(from_bytes_takes_exactly_one_value),
          TEST_ENTRY(from_bytes_copies),
          TEST_ENTRY(from_object_is_a_deep_copy),
          TEST_ENTRY(accessors_and_null),
          TEST_ENTRY(large_values),
          TEST_ENTRY(large_arrays),
          TEST_ENTRY(out_of_memory_is_reported_and_leaks_nothing),
          TEST_ENTRY(repr_scalars_and_containers),
          TEST_ENTRY(repr_floats),
          TEST_ENTRY(repr_escapes_strings),
          TEST_ENTRY(repr_truncates_like_snprintf),
          TEST_ENTRY(type_names),
          TEST_ENTRY(map_get),
          TEST_ENTRY(pack_object_helper),
          TEST_ENTRY(item_helpers_for_args_and_kwargs))
