/* test_alloc.c - the allocator hooks, the live counter and bh__buf. */
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "base/base.h"
#include "runner.h"

/* A counting allocator that can fail from the Nth call on (0: never), and
 * fills fresh blocks with 0xAA so that a missed zeroing shows. */
static struct {
  int mallocs, reallocs, frees;
  int calls, fail_at;
} ca;

static int
should_fail(void) {
  ca.calls++;
  return ca.fail_at != 0 && ca.calls >= ca.fail_at;
}

static void *
c_malloc(size_t n) {
  void *p;

  if (should_fail())
    return NULL;
  ca.mallocs++;
  p = malloc(n);
  if (p != NULL)
    memset(p, 0xAA, n);
  return p;
}

static void *
c_realloc(void *p, size_t n) {
  if (should_fail())
    return NULL;
  ca.reallocs++;
  return realloc(p, n);
}

static void
c_free(void *p) {
  ca.frees++;
  free(p);
}

static const bh_allocator counting = {c_malloc, c_realloc, c_free};

static void
use_counting(int fail_at) {
  memset(&ca, 0, sizeof(ca));
  ca.fail_at = fail_at;
  bh_set_allocator(&counting);
}

TEST(hooks_see_every_call) {
  size_t live0 = bh__alloc_live();
  char *a, *b, *c, *d;
  void *e;

  use_counting(0);
  a = bh__malloc(10);
  b = bh__strdup("hello");
  c = bh__strndup("hello world", 5);
  d = bh__asprintf("%d-%s", 42, "x");
  e = bh__calloc(4, 8);
  ASSERT(a && b && c && d && e);
  ASSERT_INT_EQ(ca.mallocs, 5);
  ASSERT_INT_EQ(bh__alloc_live(), live0 + 5);
  a = bh__realloc(a, 1000);
  ASSERT(a != NULL);
  ASSERT_INT_EQ(ca.reallocs, 1);
  ASSERT_STR_EQ(b, "hello");
  ASSERT_STR_EQ(c, "hello");
  ASSERT_STR_EQ(d, "42-x");
  bh__free(a);
  bh__free(b);
  bh__free(c);
  bh__free(d);
  bh__free(e);
  bh__free(NULL);
  ASSERT_INT_EQ(ca.frees, 5);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(null_restores_libc) {
  void *p;

  use_counting(0);
  bh_set_allocator(NULL);
  p = bh__malloc(16);
  ASSERT(p != NULL);
  bh__free(p);
  ASSERT_INT_EQ(ca.mallocs, 0);
  ASSERT_INT_EQ(ca.frees, 0);
  return 0;
}

TEST(calloc_zeroes_with_custom_hooks) {
  unsigned char *p;
  size_t i;

  use_counting(0);
  p = bh__calloc(100, 3);
  ASSERT(p != NULL);
  for (i = 0; i < 300; i++)
    ASSERT_INT_EQ(p[i], 0);
  bh__free(p);
  return 0;
}

TEST(calloc_overflow_is_refused) {
  use_counting(0);
  ASSERT(bh__calloc(SIZE_MAX / 2 + 2, 2) == NULL);
  ASSERT(bh__calloc(2, SIZE_MAX) == NULL);
  ASSERT_INT_EQ(ca.calls, 0); /* refused before asking the allocator */
  return 0;
}

TEST(zero_sizes_give_blocks) {
  size_t live0 = bh__alloc_live();
  void *a = bh__malloc(0), *b = bh__calloc(0, 5);

  ASSERT(a != NULL && b != NULL);
  a = bh__realloc(a, 0);
  ASSERT(a != NULL); /* realloc to 0 keeps a block rather than freeing */
  bh__free(a);
  bh__free(b);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(failures_return_null_and_count_nothing) {
  size_t live0 = bh__alloc_live();
  char *p;

  use_counting(1);
  ASSERT(bh__malloc(8) == NULL);
  ASSERT(bh__calloc(2, 8) == NULL);
  ASSERT(bh__strdup("x") == NULL);
  ASSERT(bh__strndup("xyz", 2) == NULL);
  ASSERT(bh__asprintf("%s", "long enough") == NULL);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  use_counting(2);
  p = bh__malloc(8);
  ASSERT(p != NULL);
  ASSERT(bh__realloc(p, 4096) == NULL); /* p stays valid and owned */
  strcpy(p, "still");
  ASSERT_STR_EQ(p, "still");
  ASSERT_INT_EQ(bh__alloc_live(), live0 + 1);
  bh__free(p);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(strings) {
  char big[3000], *s;

  memset(big, 'z', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  ASSERT(bh__strdup(NULL) == NULL);
  s = bh__asprintf("[%s]", big);
  ASSERT(s != NULL);
  ASSERT_INT_EQ(strlen(s), sizeof(big) + 1);
  ASSERT(s[0] == '[' && s[sizeof(big)] == ']');
  bh__free(s);
  s = bh__strndup("abc", 100); /* n past the end stops at the NUL */
  ASSERT_STR_EQ(s, "abc");
  bh__free(s);
  s = bh__strndup("abc", 0);
  ASSERT_STR_EQ(s, "");
  bh__free(s);
  return 0;
}

/* Runs fn in a child; returns 1 if it aborted with `needle` on stderr. */
static int
aborts_saying(void (*fn)(void), const char *needle) {
  char msg[512];

  if (!fixture_aborts(fn, msg, sizeof(msg))) {
    fprintf(stderr, "child did not abort; it wrote: %s\n", msg);
    return 0;
  }
  return strstr(msg, needle) != NULL;
}

static void
set_half_allocator(void) {
  static const bh_allocator half = {c_malloc, NULL, c_free};

  bh_set_allocator(&half);
}

static void
free_foreign_block(void) {
  bh__free(malloc(8)); /* live is 0 in a fresh case: nothing to free */
}

/* Both are caller bugs: BH_ASSERT aborts with file:line. */
TEST(misuse_aborts) {
  ASSERT_INT_EQ(bh__alloc_live(), 0);
  ASSERT(aborts_saying(set_half_allocator, "alloc.c:"));
  ASSERT(aborts_saying(set_half_allocator, "assertion failed: a->malloc"));
  ASSERT(aborts_saying(free_foreign_block, "assertion failed: was > 0"));
  return 0;
}

TEST(buf_appends_and_grows_geometrically) {
  bh__buf b = {0};
  size_t i, live0 = bh__alloc_live();

  use_counting(0);
  for (i = 0; i < 100000; i++)
    ASSERT_INT_EQ(bh__buf_append(&b, (char[]){(char)(i % 251)}, 1), 0);
  ASSERT_INT_EQ(b.len, 100000);
  ASSERT(b.cap >= b.len);
  for (i = 0; i < 100000; i++)
    ASSERT_INT_EQ((unsigned char)b.data[i], i % 251);
  /* Doubling from 64 past 100000 takes 1 malloc and 11 reallocs; growing
   * by a constant step would take hundreds. */
  ASSERT(ca.mallocs + ca.reallocs <= 12);
  ASSERT_INT_EQ(bh__alloc_live(), live0 + 1);
  bh__buf_free(&b);
  ASSERT(b.data == NULL && b.len == 0 && b.cap == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  bh__buf_free(&b); /* twice is harmless */
  bh__buf_free(NULL);
  return 0;
}

TEST(buf_reserve) {
  bh__buf b = {0};

  ASSERT_INT_EQ(bh__buf_reserve(&b, 1000), 0);
  ASSERT(b.cap >= 1000 && b.len == 0);
  ASSERT_INT_EQ(bh__buf_append(&b, "abc", 3), 0);
  ASSERT_INT_EQ(bh__buf_reserve(&b, SIZE_MAX - 1), BH_ENOMEM);
  ASSERT_INT_EQ(bh__buf_append(&b, "", 0), 0);
  ASSERT(b.len == 3 && memcmp(b.data, "abc", 3) == 0);
  bh__buf_free(&b);
  return 0;
}

TEST(buf_failure_leaves_contents) {
  bh__buf b = {0};
  char big[200];

  memset(big, 'q', sizeof(big));
  use_counting(2); /* the first block succeeds, growing it fails */
  ASSERT_INT_EQ(bh__buf_append(&b, "hello", 5), 0);
  ASSERT_INT_EQ(bh__buf_append(&b, big, sizeof(big)), BH_ENOMEM);
  ASSERT_INT_EQ(b.len, 5);
  ASSERT(memcmp(b.data, "hello", 5) == 0);
  bh__buf_free(&b);
  return 0;
}

TEST(buf_is_a_msgpack_target) {
  bh__buf b = {0};
  msgpack_packer pk;
  msgpack_unpacked u;
  size_t off = 0;

  msgpack_packer_init(&pk, &b, bh__buf_write);
  ASSERT_INT_EQ(msgpack_pack_map(&pk, 1), 0);
  ASSERT_INT_EQ(msgpack_pack_str_with_body(&pk, "answer", 6), 0);
  ASSERT_INT_EQ(msgpack_pack_int64(&pk, -4200000000LL), 0);
  msgpack_unpacked_init(&u);
  ASSERT_INT_EQ(msgpack_unpack_next(&u, b.data, b.len, &off),
                MSGPACK_UNPACK_SUCCESS);
  ASSERT_INT_EQ(off, b.len);
  ASSERT_INT_EQ(u.data.type, MSGPACK_OBJECT_MAP);
  ASSERT_INT_EQ(u.data.via.map.size, 1);
  ASSERT(u.data.via.map.ptr[0].key.via.str.size == 6);
  ASSERT(memcmp(u.data.via.map.ptr[0].key.via.str.ptr, "answer", 6) == 0);
  ASSERT_INT_EQ(u.data.via.map.ptr[0].val.via.i64, -4200000000LL);
  msgpack_unpacked_destroy(&u);
  bh__buf_free(&b);
  return 0;
}

TEST(buf_write_failure_reaches_the_packer) {
  bh__buf b = {0};
  msgpack_packer pk;

  use_counting(1);
  msgpack_packer_init(&pk, &b, bh__buf_write);
  ASSERT_INT_EQ(msgpack_pack_str_with_body(&pk, "abc", 3), BH_ENOMEM);
  ASSERT_INT_EQ(b.len, 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(hooks_see_every_call), TEST_ENTRY(null_restores_libc),
          TEST_ENTRY(calloc_zeroes_with_custom_hooks),
          TEST_ENTRY(calloc_overflow_is_refused),
          TEST_ENTRY(zero_sizes_give_blocks),
          TEST_ENTRY(failures_return_null_and_count_nothing),
          TEST_ENTRY(strings), TEST_ENTRY(misuse_aborts),
          TEST_ENTRY(buf_appends_and_grows_geometrically),
          TEST_ENTRY(buf_reserve), TEST_ENTRY(buf_failure_leaves_contents),
          TEST_ENTRY(buf_is_a_msgpack_target),
          TEST_ENTRY(buf_write_failure_reaches_the_packer))
