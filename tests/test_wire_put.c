/* test_wire_put.c - encoding messages (src/wire/wire_put.c): encode/decode
 * round trips with exact bytes, size limits and bad input. */
#include "wire_util.h"

/* ------------------------------------------------------------------------
 * Round trips. */

TEST(simple_roundtrip) {
  static const bh__msg_type types[] = {BH__MSG_NEW_TASK, BH__MSG_TASK_ACCEPTED,
                                       BH__MSG_TASK_DENIED, BH__MSG_TASK_TAKEN};
  static const int64_t ids[] = {0, 1, -5, 300, INT64_MAX, INT64_MIN};
  msgpack_zone z;
  bh__msg m;
  bh__buf b = {0};
  size_t i, j, off;

  msgpack_zone_init(&z, 1024);
  for (i = 0; i < 4; i++) {
    for (j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
      b.len = 0;
      off = 0;
      ASSERT_INT_EQ(bh__wire_put_simple(&b, 1024, types[i], ids[j]), 0);
      ASSERT_INT_EQ(bh__wire_frame_len((unsigned char *)b.data),
                    b.len - BH__FRAME_HDR);
      ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
      ASSERT_INT_EQ(m.type, types[i]);
      ASSERT(m.type_len == strlen(bh__msg_type_str(types[i])));
      ASSERT(memcmp(m.type_str, bh__msg_type_str(types[i]), m.type_len) == 0);
      ASSERT(m.task_id == ids[j]);
      ASSERT_INT_EQ(m.root->via.map.size, 2);
      ASSERT(key_at(&m, 0, "msg_type") && key_at(&m, 1, "task_id"));
    }
  }
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

TEST(task_info_roundtrip) {
  msgpack_zone z;
  msgpack_object args, kwargs;
  bh__buf b = {0};
  bh__msg m;
  size_t off = 0;

  msgpack_zone_init(&z, 1024);
  args = obj_spec(&z, "[4 i1 \"two d3.5 [2 n t");
  kwargs = obj_spec(&z, "{2 \"k {1 \"x i-1 \"bin b3");
  ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, 1024, 17, "work", &args, &kwargs),
                0);
  ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, 1024, 18, "idle", NULL, NULL), 0);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.type, BH__MSG_TASK_INFO);
  ASSERT_INT_EQ(m.task_id, 17);
  ASSERT(m.name_len == 4 && memcmp(m.name, "work", 4) == 0);
  ASSERT(msgpack_object_equal(*m.args, args));
  ASSERT(msgpack_object_equal(*m.kwargs, kwargs));
  ASSERT(key_at(&m, 0, "msg_type") && key_at(&m, 1, "task_id") &&
         key_at(&m, 2, "name") && key_at(&m, 3, "args") &&
         key_at(&m, 4, "kwargs"));
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.task_id, 18);
  ASSERT(m.args->type == MSGPACK_OBJECT_ARRAY && m.args->via.array.size == 0);
  ASSERT(m.kwargs->type == MSGPACK_OBJECT_MAP && m.kwargs->via.map.size == 0);
  ASSERT_INT_EQ(m.root->via.map.size, 5); /* written, not left out */
  ASSERT_INT_EQ(off, b.len);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

TEST(task_done_succeeded_roundtrip) {
  msgpack_zone z;
  msgpack_object v;
  bh__wire_done d = {.status = BH_SUCCEEDED};
  bh__buf b = {0};
  bh__msg m;
  size_t off = 0;

  msgpack_zone_init(&z, 1024);
  v = obj_spec(&z, "{1 \"answer [2 i42 \"yes");
  d.returning_value = &v;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 5, &d), 0);
  d.returning_value = NULL;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 6, &d), 0);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.type, BH__MSG_TASK_DONE);
  ASSERT_INT_EQ(m.task_id, 5);
  ASSERT_INT_EQ(m.status, BH_SUCCEEDED);
  ASSERT(msgpack_object_equal(*m.returning_value, v));
  ASSERT(key_at(&m, 2, "status") && key_at(&m, 3, "returning_value"));
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.task_id, 6);
  ASSERT(m.returning_value->type == MSGPACK_OBJECT_NIL);
  ASSERT(key_at(&m, 3, "returning_value")); /* nil is written */
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

TEST(task_done_raised_roundtrip) {
  msgpack_zone z;
  msgpack_object ex, tb, od;
  bh__wire_done d = {.status = BH_RAISED};
  bh__buf b = {0};
  bh__msg m;
  size_t off = 0;

  msgpack_zone_init(&z, 1024);
  ex = obj_spec(&z, "{2 \"type \"ValueError \"message \"bad");
  tb = obj_spec(&z, "[2 \"a.c:1 \"b.c:2");
  od = obj_spec(&z, "{1 \"child_id i3");
  d.exception = &ex;
  d.traceback = &tb;
  d.other_details = &od;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 7, &d), 0);
  d.traceback = NULL;
  d.other_details = NULL;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 8, &d), 0);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.task_id, 7);
  ASSERT_INT_EQ(m.status, BH_RAISED);
  ASSERT(msgpack_object_equal(*m.exception, ex));
  ASSERT(msgpack_object_equal(*m.traceback, tb));
  ASSERT(msgpack_object_equal(*m.other_details, od));
  ASSERT(key_at(&m, 3, "exception") && key_at(&m, 4, "traceback") &&
         key_at(&m, 5, "other_details"));
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.task_id, 8);
  ASSERT(m.traceback->type == MSGPACK_OBJECT_ARRAY &&
         m.traceback->via.array.size == 0);
  ASSERT(m.other_details != NULL &&
         m.other_details->type == MSGPACK_OBJECT_NIL);
  ASSERT_INT_EQ(m.root->via.map.size, 6);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

TEST(task_done_cancelled_roundtrip) {
  msgpack_zone z;
  bh__wire_done d = {.status = BH_CANCELLED, .reason = "too slow"};
  bh__buf b = {0};
  bh__msg m;
  size_t off = 0;

  msgpack_zone_init(&z, 1024);
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 9, &d), 0);
  d.reason = NULL;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 10, &d), 0);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.task_id, 9);
  ASSERT_INT_EQ(m.status, BH_CANCELLED);
  ASSERT(str_eq(m.reason, "too slow"));
  ASSERT(key_at(&m, 3, "reason"));
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.task_id, 10);
  ASSERT(m.reason != NULL && m.reason->type == MSGPACK_OBJECT_NIL);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

TEST(die_dead_roundtrip) {
  msgpack_zone z;
  msgpack_object ex, tb;
  bh__buf b = {0};
  bh__msg m;
  size_t off = 0;

  msgpack_zone_init(&z, 1024);
  ex = obj_spec(&z, "{3 \"type \"Boom \"message \"it_broke \"extra i1");
  tb = obj_spec(&z, "[1 \"main.c:10");
  ASSERT_INT_EQ(bh__wire_put_die(&b, 1024), 0);
  ASSERT_INT_EQ(bh__wire_put_dead_normal(&b, 1024, "bye"), 0);
  ASSERT_INT_EQ(bh__wire_put_dead_normal(&b, 1024, NULL), 0);
  ASSERT_INT_EQ(bh__wire_put_dead_killed(&b, 1024, &ex, &tb), 0);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.type, BH__MSG_DIE);
  ASSERT_INT_EQ(m.root->via.map.size, 1);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.type, BH__MSG_DEAD);
  ASSERT_INT_EQ(m.death_type, BH__DEATH_NORMAL);
  ASSERT(str_eq(m.exit_code, "bye"));
  ASSERT(key_at(&m, 1, "death_type") && key_at(&m, 2, "exit_code"));
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT(m.exit_code != NULL && m.exit_code->type == MSGPACK_OBJECT_NIL);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.death_type, BH__DEATH_KILLED);
  ASSERT(msgpack_object_equal(*m.exception, ex));
  ASSERT(msgpack_object_equal(*m.traceback, tb));
  ASSERT(key_at(&m, 2, "exception") && key_at(&m, 3, "traceback"));
  ASSERT_INT_EQ(off, b.len);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

/* Frames appended back to back come out in order. */
TEST(back_to_back) {
  msgpack_zone z;
  bh__buf b = {0};
  bh__msg m;
  size_t off = 0;
  int64_t i;

  msgpack_zone_init(&z, 1024);
  for (i = 0; i < 50; i++)
    ASSERT_INT_EQ(bh__wire_put_simple(&b, 1024, BH__MSG_TASK_DENIED, i), 0);
  ASSERT_INT_EQ(bh__wire_put_die(&b, 1024), 0);
  for (i = 0; i < 50; i++) {
    ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
    ASSERT_INT_EQ(m.type, BH__MSG_TASK_DENIED);
    ASSERT_INT_EQ(m.task_id, i);
  }
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.type, BH__MSG_DIE);
  ASSERT_INT_EQ(off, b.len);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

/* ------------------------------------------------------------------------
 * Encoding limits and bad input. */

TEST(max_frame) {
  bh__buf b = {0};
  size_t body, before;
  char copy[64];

  ASSERT_INT_EQ(bh__wire_put_die(&b, 1024), 0);
  before = b.len;
  memcpy(copy, b.data, before);
  ASSERT_INT_EQ(bh__wire_put_simple(&b, 1024, BH__MSG_NEW_TASK, 1), 0);
  body = b.len - before - BH__FRAME_HDR;
  b.len = before;
  /* exactly max_frame fits; one byte less does not */
  ASSERT_INT_EQ(bh__wire_put_simple(&b, body, BH__MSG_NEW_TASK, 1), 0);
  ASSERT_INT_EQ(b.len, before + BH__FRAME_HDR + body);
  b.len = before;
  ASSERT_INT_EQ(bh__wire_put_simple(&b, body - 1, BH__MSG_NEW_TASK, 1),
                BH_EMSGSIZE);
  ASSERT_INT_EQ(b.len, before);
  ASSERT(memcmp(b.data, copy, before) == 0);
  ASSERT_INT_EQ(bh__wire_put_die(&b, 3), BH_EMSGSIZE);
  ASSERT_INT_EQ(bh__wire_put_dead_normal(&b, 10, "x"), BH_EMSGSIZE);
  ASSERT_INT_EQ(b.len, before);
  ASSERT(memcmp(b.data, copy, before) == 0);
  bh__buf_free(&b);
  return 0;
}

TEST(max_frame_big_value) {
  msgpack_zone z;
  msgpack_object v;
  bh__wire_done d = {.status = BH_SUCCEEDED};
  bh__buf b = {0};
  size_t before;
  char *big = malloc(100000);

  ASSERT(big != NULL);
  memset(big, 'x', 100000);
  msgpack_zone_init(&z, 1024);
  v.type = MSGPACK_OBJECT_STR;
  v.via.str.ptr = big;
  v.via.str.size = 100000;
  d.returning_value = &v;
  ASSERT_INT_EQ(bh__wire_put_simple(&b, 1024, BH__MSG_TASK_TAKEN, 2), 0);
  before = b.len;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 65536, 3, &d), BH_EMSGSIZE);
  ASSERT_INT_EQ(b.len, before);
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, BH__DEFAULT_MAX_FRAME, 3, &d), 0);
  free(big);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

TEST(encode_bad_input) {
  msgpack_zone z;
  msgpack_object arr, map, ex, badex, tb, badtb;
  bh__wire_done d = {.status = BH_RAISED};
  bh__buf b = {0};

  msgpack_zone_init(&z, 1024);
  arr = obj_spec(&z, "[1 i1");
  map = obj_spec(&z, "{0");
  ex = obj_spec(&z, "{2 \"type \"E \"message \"m");
  badex = obj_spec(&z, "{1 \"type \"E");
  tb = obj_spec(&z, "[1 \"x");
  badtb = obj_spec(&z, "[1 i1");
  ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, 1024, 1, "", NULL, NULL), BH_EINVAL);
  ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, 1024, 1, "f", &map, NULL),
                BH_EINVAL);
  ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, 1024, 1, "f", NULL, &arr),
                BH_EINVAL);
  d.exception = &badex;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 1, &d), BH_EINVAL);
  d.exception = NULL;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 1, &d), BH_EINVAL);
  d.exception = &ex;
  d.traceback = &badtb;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 1, &d), BH_EINVAL);
  d.traceback = &tb;
  d.status = (bh_status)7;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 1, &d), BH_EINVAL);
  ASSERT_INT_EQ(bh__wire_put_dead_killed(&b, 1024, &arr, NULL), BH_EINVAL);
  ASSERT_INT_EQ(bh__wire_put_dead_killed(&b, 1024, &ex, &badtb), BH_EINVAL);
  ASSERT_INT_EQ(b.len, 0);
  d.status = BH_RAISED;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 1, &d), 0);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

/* A value the receiver could not unpack (too deep) is refused on the
 * sending side instead of failing the channel. */
TEST(encode_depth_limit) {
  msgpack_object lv[40];
  bh__wire_done d = {.status = BH_SUCCEEDED};
  bh__buf b = {0};
  msgpack_zone z;
  bh__msg m;
  size_t off = 0;
  int i;

  for (i = 0; i < 40; i++) {
    lv[i].type = MSGPACK_OBJECT_ARRAY;
    lv[i].via.array.size = i + 1 < 40 ? 1 : 0;
    lv[i].via.array.ptr = i + 1 < 40 ? &lv[i + 1] : NULL;
  }
  d.returning_value = &lv[40 - 31]; /* 31 deep: with the root, 32 */
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 1, &d), 0);
  msgpack_zone_init(&z, 1024);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  msgpack_zone_destroy(&z);
  b.len = 0;
  d.returning_value = &lv[40 - 32];
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 1, &d), BH_EINVAL);
  ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, 1024, 1, "f", &lv[0], NULL),
                BH_EINVAL);
  ASSERT_INT_EQ(b.len, 0);
  bh__buf_free(&b);
  return 0;
}

static void *
fail_malloc(size_t n) {
  (void)n;
  return NULL;
}

static void *
fail_realloc(void *p, size_t n) {
  (void)p;
  (void)n;
  return NULL;
}

/* Out of memory while packing: BH_ENOMEM and the buffer as it was, both
 * when the header cannot be reserved and when the body runs out. */
TEST(encode_nomem) {
  static const bh_allocator failing = {fail_malloc, fail_realloc, free};
  bh__buf b = {0};
  size_t full;

  bh_set_allocator(&failing);
  ASSERT_INT_EQ(bh__wire_put_die(&b, 1024), BH_ENOMEM);
  ASSERT_INT_EQ(b.len, 0);
  bh_set_allocator(NULL);
  ASSERT_INT_EQ(bh__wire_put_die(&b, 1024), 0);
  ASSERT(b.cap >= 18);
  full = b.cap - 6; /* room for a header, not for a body */
  memset(b.data, 0, b.cap);
  b.len = full;
  bh_set_allocator(&failing);
  ASSERT_INT_EQ(bh__wire_put_die(&b, 1024), BH_ENOMEM);
  ASSERT_INT_EQ(b.len, full);
  ASSERT_INT_EQ(bh__wire_put_simple(&b, 1024, BH__MSG_TASK_TAKEN, 1),
                BH_ENOMEM);
  ASSERT_INT_EQ(b.len, full);
  bh_set_allocator(NULL);
  bh__buf_free(&b);
  return 0;
}

/* ------------------------------------------------------------------------
 * The smallest max_frame (BH_MAX_FRAME_MIN) carries every message the
 * library must be able to send: the fixed ones with any task id, and those
 * with a text the library makes (an exit code, a reason), cut to
 * BH__TEXT_MAX bytes when they would not fit whole. */

/* The body length of the one frame in b. */
static size_t
body_of(const bh__buf *b) {
  return bh__wire_frame_len((const unsigned char *)b->data);
}

TEST(floor_carries_the_fixed_messages) {
  static const bh__msg_type types[] = {
      BH__MSG_NEW_TASK, BH__MSG_TASK_ACCEPTED, BH__MSG_TASK_DENIED,
      BH__MSG_TASK_TAKEN, BH__MSG_CANCEL_TASK};
  msgpack_zone z;
  msgpack_object ex;
  bh__wire_done d = {.status = BH_RAISED};
  bh__buf b = {0};
  size_t i;

  msgpack_zone_init(&z, 1024);
  for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    b.len = 0;
    ASSERT_INT_EQ(bh__wire_put_simple(&b, BH_MAX_FRAME_MIN, types[i],
                                      INT64_MIN), 0);
    ASSERT(body_of(&b) <= 64);
  }
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_accepted_started(&b, BH_MAX_FRAME_MIN,
                                              INT64_MIN), 0);
  ASSERT(body_of(&b) <= 64);
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_die(&b, BH_MAX_FRAME_MIN), 0);
  /* What a task answers when its outcome does not fit (task.c). */
  ex = obj_spec(&z, "{2 \"type \"FrameSizeError \"message "
                    "\"The_task's_result_exceeds_the_frame_size_limit.");
  d.exception = &ex;
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, BH_MAX_FRAME_MIN, INT64_MIN,
                                       &d), 0);
  ASSERT(body_of(&b) <= 256);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

/* A text of n bytes of c. Returns owned. */
static char *
text(size_t n, char c) {
  char *s = malloc(n + 1);

  memset(s, c, n);
  s[n] = '\0';
  return s;
}

TEST(floor_carries_texts_cut) {
  char *big = text(100000, 'x');
  bh__wire_done d = {.status = BH_CANCELLED, .reason = big};
  msgpack_zone z;
  bh__buf b = {0};
  bh__msg m;
  size_t off = 0;

  msgpack_zone_init(&z, 1024);
  ASSERT_INT_EQ(bh__wire_put_dead_normal(&b, BH_MAX_FRAME_MIN, big), 0);
  ASSERT(body_of(&b) <= BH__TEXT_MAX + 64);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.exit_code->via.str.size, BH__TEXT_MAX);
  ASSERT(memcmp(m.exit_code->via.str.ptr + BH__TEXT_MAX - 4, "x...", 4) ==
         0);
  b.len = off = 0;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, BH_MAX_FRAME_MIN, INT64_MIN,
                                       &d), 0);
  ASSERT(body_of(&b) <= BH__TEXT_MAX + 64);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT_INT_EQ(m.reason->via.str.size, BH__TEXT_MAX);
  /* The exception of a dead killed, its message cut (bee.c). */
  {
    char cut[BH__TEXT_MAX + 1];
    bh_value *ex = bh_value_pack(NULL, "{s:s s:s}", "type", "InitError",
                                 "message", bh__text_cut(big, cut));

    b.len = 0;
    ASSERT_INT_EQ(bh__wire_put_dead_killed(&b, BH_MAX_FRAME_MIN,
                                           bh_value_object(ex), NULL), 0);
    ASSERT(body_of(&b) <= BH__TEXT_MAX + 96);
    bh_value_free(ex);
  }
  /* A text that fits goes whole, however long. */
  b.len = off = 0;
  ASSERT_INT_EQ(bh__wire_put_dead_normal(&b, 200000, big), 0);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT(str_eq(m.exit_code, big));
  b.len = off = 0;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 200000, 1, &d), 0);
  ASSERT_INT_EQ(decode_frame(&b, &off, &z, &m), 0);
  ASSERT(str_eq(m.reason, big));
  free(big);
  bh__buf_free(&b);
  msgpack_zone_destroy(&z);
  return 0;
}

/* A cut never splits a UTF-8 character. */
TEST(text_cut_keeps_characters_whole) {
  char *s = malloc(2 * 1000 + 1), buf[BH__TEXT_MAX + 1];
  const char *cut;
  size_t i, n;

  for (i = 0; i < 1000; i++)
    memcpy(s + 2 * i, "\xc3\xa9", 2); /* e acute */
  s[2000] = '\0';
  cut = bh__text_cut(s, buf);
  n = strlen(cut);
  ASSERT(n <= BH__TEXT_MAX);
  ASSERT(strcmp(cut + n - 3, "...") == 0);
  ASSERT_INT_EQ((n - 3) % 2, 0);
  ASSERT(memcmp(cut, s, n - 3) == 0);
  ASSERT(bh__text_cut("short", buf) != buf);
  free(s);
  return 0;
}

/* bh__wire_name_fits() is exact: the longest name it allows fits with the
 * widest task id, one byte more does not. */
TEST(name_fits_at_the_edge) {
  static const size_t frames[] = {BH_MAX_FRAME_MIN, 70000};
  bh__buf b = {0};
  size_t i, len;

  for (i = 0; i < 2; i++) {
    char *name;

    for (len = frames[i]; len > 0 && !bh__wire_name_fits(len, frames[i]);)
      len--;
    name = text(len + 1, 'n');
    b.len = 0;
    ASSERT(!bh__wire_name_fits(len + 1, frames[i]));
    ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, frames[i], INT64_MIN,
                                         name, NULL, NULL), BH_EMSGSIZE);
    name[len] = '\0';
    ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, frames[i], INT64_MIN,
                                         name, NULL, NULL), 0);
    ASSERT_INT_EQ(body_of(&b), frames[i]);
    b.len = 0;
    ASSERT_INT_EQ(bh__wire_put_direct_offer(&b, NULL, frames[i], INT64_MIN,
                                            name, NULL, NULL), 0);
    free(name);
  }
  bh__buf_free(&b);
  return 0;
}

TEST_MAIN(TEST_ENTRY(simple_roundtrip),
          TEST_ENTRY(task_info_roundtrip),
          TEST_ENTRY(task_done_succeeded_roundtrip),
          TEST_ENTRY(task_done_raised_roundtrip),
          TEST_ENTRY(task_done_cancelled_roundtrip),
          TEST_ENTRY(die_dead_roundtrip),
          TEST_ENTRY(back_to_back),
          TEST_ENTRY(max_frame),
          TEST_ENTRY(max_frame_big_value),
          TEST_ENTRY(encode_bad_input),
          TEST_ENTRY(encode_depth_limit),
          TEST_ENTRY(encode_nomem),
          TEST_ENTRY(floor_carries_the_fixed_messages),
          TEST_ENTRY(floor_carries_texts_cut),
          TEST_ENTRY(text_cut_keeps_characters_whole),
          TEST_ENTRY(name_fits_at_the_edge))
