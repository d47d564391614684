/* test_wire.c - frames and messages (src/wire/wire.c): types and headers,
 * and every decode rule with its error message. */
#include "hive/wcfg.h"
#include "wire_util.h"

/* ------------------------------------------------------------------------
 * Types and headers. */

TEST(msg_type_str) {
  ASSERT_STR_EQ(bh__msg_type_str(BH__MSG_NEW_TASK), "new_task");
  ASSERT_STR_EQ(bh__msg_type_str(BH__MSG_TASK_ACCEPTED), "task_accepted");
  ASSERT_STR_EQ(bh__msg_type_str(BH__MSG_TASK_DENIED), "task_denied");
  ASSERT_STR_EQ(bh__msg_type_str(BH__MSG_TASK_TAKEN), "task_taken");
  ASSERT_STR_EQ(bh__msg_type_str(BH__MSG_TASK_INFO), "task_info");
  ASSERT_STR_EQ(bh__msg_type_str(BH__MSG_TASK_DONE), "task_done");
  ASSERT_STR_EQ(bh__msg_type_str(BH__MSG_DIE), "die");
  ASSERT_STR_EQ(bh__msg_type_str(BH__MSG_DEAD), "dead");
  ASSERT_STR_EQ(bh__msg_type_str(BH__MSG_HEARTBEAT), "heartbeat");
  ASSERT(bh__msg_type_str(BH__MSG_UNKNOWN) == NULL);
  return 0;
}

TEST(frame_len) {
  static const unsigned char a[4] = {0x01, 0x02, 0x03, 0x04};
  static const unsigned char b[4] = {0xff, 0xff, 0xff, 0xfe};
  static const unsigned char c[4] = {0, 0, 0, 0};

  ASSERT_INT_EQ(bh__wire_frame_len(a), 0x01020304);
  ASSERT(bh__wire_frame_len(b) == (size_t)0xfffffffeu);
  ASSERT_INT_EQ(bh__wire_frame_len(c), 0);
  return 0;
}

/* The exact bytes shown in docs/PROTOCOL.md. */
TEST(exact_bytes) {
  static const char new_task[] =
      "\x00\x00\x00\x1c\x82\xa8msg_type\xa8new_task\xa7task_id\x00";
  static const char die[] = "\x00\x00\x00\x0e\x81\xa8msg_type\xa3"
                            "die";
  static const char heartbeat[] = "\x00\x00\x00\x14\x81\xa8msg_type\xa9"
                                  "heartbeat";
  static const char done[] =
      "\x00\x00\x00\x3f\x84\xa8msg_type\xa9task_done\xa7task_id\x03"
      "\xa6status\xa9succeeded\xafreturning_value\x2a";
  static const char info[] =
      "\x00\x00\x00\x3c\x85\xa8msg_type\xa9task_info\xa7task_id\x00"
      "\xa4name\xab"
      "busy_status\xa4"
      "args\x90\xa6kwargs\x80";
  msgpack_object v = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 42};
  bh__wire_done d = {.status = BH_SUCCEEDED, .returning_value = &v};
  bh__buf b = {0};

  ASSERT_INT_EQ(bh__wire_put_simple(&b, 1024, BH__MSG_NEW_TASK, 0), 0);
  ASSERT_INT_EQ(b.len, sizeof(new_task) - 1);
  ASSERT(memcmp(b.data, new_task, b.len) == 0);
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_die(&b, 1024), 0);
  ASSERT_INT_EQ(b.len, sizeof(die) - 1);
  ASSERT(memcmp(b.data, die, b.len) == 0);
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_heartbeat(&b, 1024), 0);
  ASSERT_INT_EQ(b.len, sizeof(heartbeat) - 1);
  ASSERT(memcmp(b.data, heartbeat, b.len) == 0);
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 3, &d), 0);
  ASSERT_INT_EQ(b.len, sizeof(done) - 1);
  ASSERT(memcmp(b.data, done, b.len) == 0);
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, 1024, 0, "busy_status", NULL, NULL),
                0);
  ASSERT_INT_EQ(b.len, sizeof(info) - 1);
  ASSERT(memcmp(b.data, info, b.len) == 0);
  bh__buf_free(&b);
  return 0;
}

/* ------------------------------------------------------------------------
 * Decoding rules. */

TEST(decode_root_errors) {
  return expect_error("[0", "message is not a map") ||
         expect_error("\"new_task", "message is not a map") ||
         expect_error("{1 \"task_id i1", "missing field 'msg_type'") ||
         expect_error("{1 \"msg_type i1", "msg_type must be a str") ||
         expect_error("{1 \"msg_type n", "msg_type must be a str") ||
         expect_error("{2 \"msg_type \"die \"msg_type \"die",
                      "duplicate field 'msg_type'");
}

TEST(decode_task_id_errors) {
  return expect_error("{1 \"msg_type \"new_task",
                      "new_task: missing field 'task_id'") ||
         expect_error("{2 \"msg_type \"task_accepted \"task_id \"1",
                      "task_accepted: field 'task_id' must be int") ||
         expect_error("{2 \"msg_type \"task_denied \"task_id d1.0",
                      "task_denied: field 'task_id' must be int") ||
         expect_error("{2 \"msg_type \"task_taken \"task_id n",
                      "task_taken: field 'task_id' must be int") ||
         expect_error("{2 \"msg_type \"task_taken \"task_id "
                      "u9223372036854775808",
                      "task_taken: field 'task_id' must fit in int64") ||
         expect_error("{3 \"msg_type \"new_task \"task_id i1 \"task_id i2",
                      "new_task: duplicate field 'task_id'") ||
         expect_error("{1 \"msg_type \"task_info",
                      "task_info: missing field 'task_id'") ||
         expect_error("{1 \"msg_type \"task_done",
                      "task_done: missing field 'task_id'");
}

TEST(decode_task_id_range) {
  fx f;
  int rc;

  fx_init(&f);
  rc = expect_ok(&f, "{2 \"msg_type \"new_task \"task_id "
                     "u9223372036854775807");
  ASSERT_INT_EQ(rc, 0);
  ASSERT(f.m.task_id == INT64_MAX);
  rc = expect_ok(&f, "{2 \"msg_type \"new_task \"task_id "
                     "i-9223372036854775808");
  ASSERT_INT_EQ(rc, 0);
  ASSERT(f.m.task_id == INT64_MIN);
  /* extra keys, non-str keys and a repeated unused key are ignored */
  rc = expect_ok(&f, "{5 \"task_id i4 i1 i2 \"msg_type \"task_accepted "
                     "\"name i0 \"name i1");
  ASSERT_INT_EQ(rc, 0);
  ASSERT_INT_EQ(f.m.type, BH__MSG_TASK_ACCEPTED);
  ASSERT_INT_EQ(f.m.task_id, 4);
  fx_close(&f);
  return 0;
}

TEST(decode_task_info_errors) {
#define TI "{3 \"msg_type \"task_info \"task_id i0 "
#define TI4 "{4 \"msg_type \"task_info \"task_id i0 \"name \"f "
  return expect_error("{2 \"msg_type \"task_info \"task_id i0",
                      "task_info: missing field 'name'") ||
         expect_error(TI "\"name i5", "task_info: field 'name' must be str") ||
         expect_error(TI "\"name \"",
                      "task_info: field 'name' must be non-empty str") ||
         expect_error(TI "\"name \"a~b",
                      "task_info: field 'name' must not contain NUL bytes") ||
         expect_error(TI4 "\"args {0",
                      "task_info: field 'args' must be array") ||
         expect_error(TI4 "\"args n",
                      "task_info: field 'args' must be array") ||
         expect_error(TI4 "\"kwargs [0",
                      "task_info: field 'kwargs' must be map") ||
         expect_error(TI4 "\"kwargs n",
                      "task_info: field 'kwargs' must be map");
#undef TI
#undef TI4
}

TEST(decode_task_info_defaults) {
  fx f;

  fx_init(&f);
  ASSERT_INT_EQ(expect_ok(&f, "{3 \"msg_type \"task_info \"task_id i2 "
                              "\"name \"busy_status"),
                0);
  ASSERT_INT_EQ(f.m.type, BH__MSG_TASK_INFO);
  ASSERT(f.m.name_len == 11 && memcmp(f.m.name, "busy_status", 11) == 0);
  ASSERT(f.m.args->type == MSGPACK_OBJECT_ARRAY &&
         f.m.args->via.array.size == 0);
  ASSERT(f.m.kwargs->type == MSGPACK_OBJECT_MAP &&
         f.m.kwargs->via.map.size == 0);
  fx_close(&f);
  return 0;
}

/* task_accepted's optional "started" (PROTOCOL.md section 5.1). */
TEST(decode_accepted_errors) {
#define TA "{3 \"msg_type \"task_accepted \"task_id i0 "
  return expect_error(TA "\"started i1",
                      "task_accepted: field 'started' must be bool") ||
         expect_error(TA "\"started \"yes",
                      "task_accepted: field 'started' must be bool") ||
         expect_error("{4 \"msg_type \"task_accepted \"task_id i0 "
                      "\"started t \"started f",
                      "task_accepted: duplicate field 'started'");
#undef TA
}

/* The accept of a direct offer, recognised by its bytes (wire.c's
 * fast_started), decodes to what msgpack-c makes of the same bytes, for
 * ids of every int width; an almost identical frame (false, an extra key,
 * a negative or out-of-range id, a byte short or over) goes the general
 * way and decodes, or fails, as before. */
static int
same_as_msgpack(const char *body, size_t len, int64_t id) {
  msgpack_zone z1, z2;
  msgpack_object o;
  size_t off = 0;
  bh__msg m;
  int rc = 1;

  msgpack_zone_init(&z1, 256);
  msgpack_zone_init(&z2, 256);
  if (bh__wire_decode(body, len, &z1, &m, NULL, 0) == 0 &&
      msgpack_unpack(body, len, &off, &z2, &o) == MSGPACK_UNPACK_SUCCESS &&
      m.type == BH__MSG_TASK_ACCEPTED && m.started && m.task_id == id &&
      m.type_len == 13 && memcmp(m.type_str, "task_accepted", 13) == 0 &&
      m.blobs == 0 && m.body == body && m.body_len == len &&
      msgpack_object_equal(*m.root, o))
    rc = 0;
  msgpack_zone_destroy(&z1);
  msgpack_zone_destroy(&z2);
  return rc;
}

TEST(decode_accepted_started_by_its_bytes) {
  static const int64_t ids[] = {0, 1, 127, 128, 255, 256, 65535, 65536,
                                4294967295LL, 4294967296LL, INT64_MAX};
  bh__buf b = {0};
  msgpack_zone z;
  bh__msg m;
  size_t i;

  msgpack_zone_init(&z, 256);
  for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
    b.len = 0;
    ASSERT_INT_EQ(bh__wire_put_accepted_started(&b, 1024, ids[i]), 0);
    ASSERT_INT_EQ(same_as_msgpack(b.data + BH__FRAME_HDR,
                                  b.len - BH__FRAME_HDR, ids[i]), 0);
    /* one byte short: not a whole value, refused as before */
    ASSERT(bh__wire_decode(b.data + BH__FRAME_HDR, b.len - BH__FRAME_HDR - 1,
                           &z, &m, NULL, 0) != 0);
  }
  /* a wide encoding of a small id is still the same message */
  ASSERT_INT_EQ(same_as_msgpack("\x83\xa8msg_type\xadtask_accepted"
                                "\xa7task_id\xcf\0\0\0\0\0\0\0\x07"
                                "\xa7started\xc3", 50, 7), 0);
  /* started false, and an id beyond int64: the general path */
  ASSERT_INT_EQ(bh__wire_decode("\x83\xa8msg_type\xadtask_accepted"
                                "\xa7task_id\x07\xa7started\xc2", 42, &z,
                                &m, NULL, 0), 0);
  ASSERT(m.type == BH__MSG_TASK_ACCEPTED && !m.started && m.task_id == 7);
  ASSERT(bh__wire_decode("\x83\xa8msg_type\xadtask_accepted"
                         "\xa7task_id\xcf\xff\0\0\0\0\0\0\x07"
                         "\xa7started\xc3", 50, &z, &m, NULL, 0) != 0);
  /* a byte beyond the value: not exactly one value */
  ASSERT(bh__wire_decode("\x83\xa8msg_type\xadtask_accepted"
                         "\xa7task_id\x07\xa7started\xc3\xc0", 43, &z, &m,
                         NULL, 0) != 0);
  msgpack_zone_destroy(&z);
  bh__buf_free(&b);
  return 0;
}

/* bh__wire_decode_keep: a succeeded task_done, a direct offer and a
 * task_info are decoded once, into the value their handler keeps, which
 * bh__msg_value hands over without a copy (once); other messages get
 * none; a kept message whose fields are wrong is refused as before, and
 * its value is the caller's to free. */
static int
keeps(const bh__buf *b, bool kept) {
  const char *body = b->data + BH__FRAME_HDR;
  size_t len = b->len - BH__FRAME_HDR, off = 0;
  msgpack_zone z, z2;
  msgpack_object o;
  bh_value *v = NULL, *again = NULL;
  bh__msg m;
  int rc = 1;

  msgpack_zone_init(&z, 256);
  msgpack_zone_init(&z2, 256);
  if (bh__wire_decode_keep(body, len, &z, &m, NULL, 0) == 0 &&
      (m.value != NULL) == kept &&
      msgpack_unpack(body, len, &off, &z2, &o) == MSGPACK_UNPACK_SUCCESS &&
      msgpack_object_equal(*m.root, o)) {
    const bh_value *made = m.value;

    v = bh__msg_value(&m);
    again = bh__msg_value(&m);
    rc = !(v != NULL && again != NULL && again != v && m.value == NULL &&
           (!kept || (v == made && bh_value_object(v) == m.root)) &&
           msgpack_object_equal(*bh_value_object(again), o));
  }
  bh_value_free(v);
  bh_value_free(again);
  msgpack_zone_destroy(&z);
  msgpack_zone_destroy(&z2);
  return rc;
}

TEST(decode_keep_decodes_a_kept_message_once) {
  msgpack_object v = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 42};
  bh__wire_done d = {.status = BH_SUCCEEDED, .returning_value = &v};
  bh__wire_call call = {NULL, NULL, NULL, 0, 0};
  msgpack_object args = {.type = MSGPACK_OBJECT_ARRAY};
  bh__buf b = {0};
  msgpack_zone z;
  bh__msg m;

  call.args = &args;
  ASSERT_INT_EQ(bh__wire_put_task_done(&b, NULL, 1024, 3, &d), 0);
  ASSERT_INT_EQ(keeps(&b, true), 0);
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_task_info(&b, NULL, 1024, 0, "busy_status", NULL,
                                       NULL),
                0);
  ASSERT_INT_EQ(keeps(&b, true), 0);
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_call(&b, NULL, 1024, BH__MSG_NEW_TASK, 5, "job",
                                  &call),
                0);
  ASSERT_INT_EQ(keeps(&b, true), 0);
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_simple(&b, 1024, BH__MSG_NEW_TASK, 5), 0);
  ASSERT_INT_EQ(keeps(&b, false), 0);
  b.len = 0;
  ASSERT_INT_EQ(bh__wire_put_accepted_started(&b, 1024, 5), 0);
  ASSERT_INT_EQ(keeps(&b, false), 0);
  /* task_done's four keys with a status it does not have: refused */
  msgpack_zone_init(&z, 256);
  ASSERT(bh__wire_decode_keep("\x84\xa8msg_type\xa9task_done\xa7task_id"
                              "\x03\xa6status\xa3" "bad\xafreturning_value"
                              "\x2a", 57, &z, &m, NULL, 0) == BH_EPROTO);
  bh_value_free(m.value);
  msgpack_zone_destroy(&z);
  bh__buf_free(&b);
  return 0;
}

TEST(decode_task_done_errors) {
#define TD "{3 \"msg_type \"task_done \"task_id i0 "
#define TDR "{4 \"msg_type \"task_done \"task_id i0 \"status \"raised "
#define TDR5 "{5 \"msg_type \"task_done \"task_id i0 \"status \"raised "
#define EX "\"exception {2 \"type \"E \"message \"m "
  return expect_error("{2 \"msg_type \"task_done \"task_id i0",
                      "task_done: missing field 'status'") ||
         expect_error(TD "\"status i0",
                      "task_done: field 'status' must be str") ||
         expect_error(TD "\"status \"done",
                      "task_done: field 'status' must be 'succeeded', "
                      "'raised' or 'cancelled'") ||
         expect_error("{3 \"msg_type \"task_done \"task_id i0 \"status "
                      "\"raised",
                      "task_done: missing field 'exception'") ||
         expect_error(TDR "\"exception \"E",
                      "task_done: field 'exception' must be map with str "
                      "'type' and str 'message'") ||
         expect_error(TDR "\"exception {1 \"type \"E",
                      "task_done: field 'exception' must be map with str "
                      "'type' and str 'message'") ||
         expect_error(TDR "\"exception {2 \"type i1 \"message \"m",
                      "task_done: field 'exception' must be map with str "
                      "'type' and str 'message'") ||
         expect_error(TDR "\"exception {3 \"type \"E \"message \"m \"type "
                          "\"F",
                      "task_done: field 'exception' must be map with str "
                      "'type' and str 'message'") ||
         expect_error(TDR5 EX "\"traceback \"line",
                      "task_done: field 'traceback' must be array of str") ||
         expect_error(TDR5 EX "\"traceback [2 \"a i1",
                      "task_done: field 'traceback' must be array of str") ||
         expect_error("{4 \"msg_type \"task_done \"task_id i0 \"status "
                      "\"cancelled \"reason i3",
                      "task_done: field 'reason' must be str or nil");
#undef TD
#undef TDR
#undef TDR5
#undef EX
}

TEST(decode_task_done_defaults) {
  fx f;

  fx_init(&f);
  ASSERT_INT_EQ(expect_ok(&f, "{3 \"msg_type \"task_done \"task_id i1 "
                              "\"status \"succeeded"),
                0);
  ASSERT_INT_EQ(f.m.status, BH_SUCCEEDED);
  ASSERT(f.m.returning_value != NULL &&
         f.m.returning_value->type == MSGPACK_OBJECT_NIL);
  ASSERT_INT_EQ(expect_ok(&f, "{4 \"msg_type \"task_done \"task_id i1 "
                              "\"status \"raised \"exception {2 \"message "
                              "\"m \"type \"E"),
                0);
  ASSERT_INT_EQ(f.m.status, BH_RAISED);
  ASSERT(f.m.exception->type == MSGPACK_OBJECT_MAP);
  ASSERT(f.m.traceback->type == MSGPACK_OBJECT_ARRAY &&
         f.m.traceback->via.array.size == 0);
  ASSERT(f.m.other_details == NULL);
  ASSERT_INT_EQ(expect_ok(&f, "{3 \"msg_type \"task_done \"task_id i1 "
                              "\"status \"cancelled"),
                0);
  ASSERT_INT_EQ(f.m.status, BH_CANCELLED);
  ASSERT(f.m.reason == NULL);
  ASSERT_INT_EQ(expect_ok(&f, "{4 \"msg_type \"task_done \"task_id i1 "
                              "\"status \"succeeded \"returning_value [1 b2"),
                0);
  ASSERT(f.m.returning_value->type == MSGPACK_OBJECT_ARRAY);
  fx_close(&f);
  return 0;
}

TEST(decode_dead_errors) {
#define DK "{3 \"msg_type \"dead \"death_type \"killed "
  return expect_error("{1 \"msg_type \"dead",
                      "dead: missing field 'death_type'") ||
         expect_error("{2 \"msg_type \"dead \"death_type i0",
                      "dead: field 'death_type' must be str") ||
         expect_error("{2 \"msg_type \"dead \"death_type \"zombie",
                      "dead: field 'death_type' must be 'normal' or "
                      "'killed'") ||
         expect_error("{3 \"msg_type \"dead \"death_type \"normal "
                      "\"exit_code [0",
                      "dead: field 'exit_code' must be nil, int or str") ||
         expect_error("{3 \"msg_type \"dead \"death_type \"normal "
                      "\"exit_code d1.5",
                      "dead: field 'exit_code' must be nil, int or str") ||
         expect_error("{2 \"msg_type \"dead \"death_type \"killed",
                      "dead: missing field 'exception'") ||
         expect_error(DK "\"exception [0",
                      "dead: field 'exception' must be map with str 'type' "
                      "and str 'message'") ||
         expect_error("{4 \"msg_type \"dead \"death_type \"killed \"exception "
                      "{2 \"type \"E \"message \"m \"traceback [1 n",
                      "dead: field 'traceback' must be array of str");
#undef DK
}

TEST(decode_dead_ok) {
  fx f;

  fx_init(&f);
  ASSERT_INT_EQ(expect_ok(&f, "{2 \"msg_type \"dead \"death_type \"normal"), 0);
  ASSERT_INT_EQ(f.m.death_type, BH__DEATH_NORMAL);
  ASSERT(f.m.exit_code == NULL);
  ASSERT_INT_EQ(expect_ok(&f, "{3 \"msg_type \"dead \"death_type \"normal "
                              "\"exit_code i-3"),
                0);
  ASSERT(f.m.exit_code->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
  ASSERT_INT_EQ(expect_ok(&f, "{3 \"msg_type \"dead \"death_type \"killed "
                              "\"exception {2 \"type \"E \"message \"m"),
                0);
  ASSERT_INT_EQ(f.m.death_type, BH__DEATH_KILLED);
  ASSERT(f.m.traceback->type == MSGPACK_OBJECT_ARRAY &&
         f.m.traceback->via.array.size == 0);
  ASSERT_INT_EQ(expect_ok(&f, "{2 \"msg_type \"die \"task_id \"ignored"), 0);
  ASSERT_INT_EQ(f.m.type, BH__MSG_DIE);
  fx_close(&f);
  return 0;
}

TEST(decode_unknown_type) {
  fx f;

  fx_init(&f);
  ASSERT_INT_EQ(expect_ok(&f, "{3 \"msg_type \"bootstraps \"class \"W \"id "
                              "i3"),
                0);
  ASSERT_INT_EQ(f.m.type, BH__MSG_UNKNOWN);
  ASSERT(f.m.type_len == 10 && memcmp(f.m.type_str, "bootstraps", 10) == 0);
  ASSERT(f.m.root != NULL && f.m.root->via.map.size == 3);
  ASSERT_INT_EQ(expect_ok(&f, "{1 \"msg_type \""), 0);
  ASSERT_INT_EQ(f.m.type, BH__MSG_UNKNOWN);
  ASSERT_INT_EQ(f.m.type_len, 0);
  /* a prefix or a longer name is not a known type */
  ASSERT_INT_EQ(expect_ok(&f, "{1 \"msg_type \"di"), 0);
  ASSERT_INT_EQ(f.m.type, BH__MSG_UNKNOWN);
  ASSERT_INT_EQ(expect_ok(&f, "{1 \"msg_type \"dies"), 0);
  ASSERT_INT_EQ(f.m.type, BH__MSG_UNKNOWN);
  fx_close(&f);
  return 0;
}

/* The bootstrap frame shown in docs/PROTOCOL.md section 6, byte for byte:
 * what the encoder writes for these settings, and what the decoder and the
 * config record read back. */
TEST(bootstrap_example_round_trips) {
  static const char frame[] =
      "\x00\x00\x00\xc0\x86\xa8msg_type\xa9"
      "bootstrap\xa5"
      "class\xa6Worker\xa2id\x03\xa9init_args\x90\xabinit_kwargs\x80"
      "\xa6"
      "config\x87\xafmax_concurrency\xcd\x04\x00\xa8prefetch\x00"
      "\xa9max_frame\xce\x04\x00\x00\x00\xaas3_profile\xa4prod"
      "\xb9http_max_host_connections\x00\xb4http_max_connections\x00"
      "\xachttp_ca_file\xc0";
  bh__wcfg in = {.max_concurrency = 1024, .max_frame = 64 << 20,
                 .s3_profile = (char *)"prod"}, out;
  bh_value *cfg = bh__wcfg_value(&in);
  bh__buf b = {0};
  msgpack_zone z;
  bh__msg m;
  char err[128];
  size_t n = sizeof(frame) - 1;

  ASSERT(cfg != NULL);
  ASSERT_INT_EQ(bh__wire_put_bootstrap(&b, 1 << 20, "Worker", 3, NULL, NULL,
                                       bh_value_object(cfg)),
                0);
  bh_value_free(cfg);
  ASSERT_INT_EQ(b.len, n);
  ASSERT(memcmp(b.data, frame, n) == 0);
  bh__buf_free(&b);
  msgpack_zone_init(&z, 1024);
  ASSERT_INT_EQ(bh__wire_decode(frame + BH__FRAME_HDR, n - BH__FRAME_HDR, &z,
                                &m, err, sizeof(err)),
                0);
  ASSERT_INT_EQ(m.type, BH__MSG_BOOTSTRAP);
  ASSERT(m.cls_len == 6 && memcmp(m.cls, "Worker", 6) == 0);
  ASSERT_INT_EQ(m.bee_id, 3);
  ASSERT(m.args->type == MSGPACK_OBJECT_ARRAY &&
         m.kwargs->type == MSGPACK_OBJECT_MAP);
  ASSERT_INT_EQ(bh__wcfg_unpack(&out, m.config, err, sizeof(err)), 0);
  ASSERT_INT_EQ(out.max_concurrency, 1024);
  ASSERT_INT_EQ(out.max_frame, 64 << 20);
  ASSERT_STR_EQ(out.s3_profile, "prod");
  ASSERT(out.http_ca_file == NULL);
  bh__wcfg_clear(&out);
  msgpack_zone_destroy(&z);
  return 0;
}

/* The config record refuses what is missing, unknown, mistyped or out of
 * range, naming it. */
TEST(bootstrap_config_is_checked) {
  static const struct {
    const char *fmt, *why;
  } bad[] = {
      {"{s:i}", "config: prefetch is missing"},
      {"{s:i s:i s:i s:n s:i s:i s:n s:i}", "config: unknown key"},
      {"{s:i s:i s:i s:n s:i s:s}", "config: http_max_connections must be "
                                    "an int"},
      {"{s:i s:i s:i s:i s:i s:i}", "config: s3_profile must be a str or "
                                    "nil"},
      {"{s:i s:i s:i s:n s:i s:i}", "config: max_frame 8 is out of range "
                                    "4096..4294967295"},
      {"{s:i s:i s:i s:n s:i s:i s:i}", "config: http_ca_file must be a str "
                                        "or nil"},
      {"{s:i s:i s:i s:n s:i s:i}", "config: http_ca_file is missing"},
  };
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    bh_value *v;
    bh__wcfg c;
    char err[128] = "";

    switch (i) {
    case 0:
      v = bh_value_pack(NULL, bad[i].fmt, "max_concurrency", 1);
      break;
    case 1:
      v = bh_value_pack(NULL, bad[i].fmt, "max_concurrency", 1, "prefetch",
                        0, "max_frame", 4096, "s3_profile",
                        "http_max_host_connections", 0,
                        "http_max_connections", 0, "http_ca_file",
                        "nonsense", 1);
      break;
    case 2:
      v = bh_value_pack(NULL, bad[i].fmt, "max_concurrency", 1, "prefetch",
                        0, "max_frame", 4096, "s3_profile",
                        "http_max_host_connections", 0,
                        "http_max_connections", "x");
      break;
    case 3:
      v = bh_value_pack(NULL, bad[i].fmt, "max_concurrency", 1, "prefetch",
                        0, "max_frame", 4096, "s3_profile", 7,
                        "http_max_host_connections", 0,
                        "http_max_connections", 0);
      break;
    case 4:
      v = bh_value_pack(NULL, bad[i].fmt, "max_concurrency", 1, "prefetch",
                        0, "max_frame", 8, "s3_profile",
                        "http_max_host_connections", 0,
                        "http_max_connections", 0);
      break;
    case 5:
      v = bh_value_pack(NULL, bad[i].fmt, "max_concurrency", 1, "prefetch",
                        0, "max_frame", 4096, "s3_profile",
                        "http_max_host_connections", 0,
                        "http_max_connections", 0, "http_ca_file", 7);
      break;
    default:
      v = bh_value_pack(NULL, bad[i].fmt, "max_concurrency", 1, "prefetch",
                        0, "max_frame", 4096, "s3_profile",
                        "http_max_host_connections", 0,
                        "http_max_connections", 0);
      break;
    }
    ASSERT(v != NULL);
    ASSERT_INT_EQ(bh__wcfg_unpack(&c, bh_value_object(v), err, sizeof(err)),
                  BH_EINVAL);
    ASSERT_STR_EQ(err, bad[i].why);
    bh_value_free(v);
  }
  return 0;
}

/* Decodes raw bytes and expects BH_EPROTO with exactly `msg`. */
static int
expect_raw_error(const char *body, size_t len, const char *msg) {
  msgpack_zone z;
  bh__msg m;
  char err[128];
  int rc;

  msgpack_zone_init(&z, 1024);
  rc = bh__wire_decode(body, len, &z, &m, err, sizeof(err));
  msgpack_zone_destroy(&z);
  if (rc != BH_EPROTO || strcmp(err, msg) != 0) {
    fprintf(stderr, "rc %d err \"%s\" want \"%s\"\n", rc, err, msg);
    return 1;
  }
  return 0;
}

TEST(decode_bad_frames) {
  static const char die[] = "\x81\xa8msg_type\xa3"
                            "die";
  static const char *const one = "frame does not hold exactly one msgpack "
                                 "value";
  static const char *const trailing = "frame does not hold exactly one "
                                      "msgpack value: trailing bytes";
  char buf[32];
  size_t n = sizeof(die) - 1, i;

  for (i = 0; i < n; i++) /* every truncation */
    if (expect_raw_error(die, i, one))
      return 1;
  memcpy(buf, die, n);
  buf[n] = '\xc0';
  ASSERT_INT_EQ(expect_raw_error(buf, n + 1, trailing), 0);
  ASSERT_INT_EQ(expect_raw_error("\xc0\xc0", 2, trailing), 0);
  ASSERT_INT_EQ(expect_raw_error("\xc1", 1, one), 0); /* never used */
  ASSERT_INT_EQ(expect_raw_error("\x81\xc1\xc0", 3, one), 0);
  /* a small frame announcing 2^32-1 items must not allocate for them */
  ASSERT_INT_EQ(expect_raw_error("\xdd\xff\xff\xff\xff", 5, one), 0);
  ASSERT_INT_EQ(expect_raw_error("\xdf\xff\xff\xff\xff\xc0\xc0", 7, one), 0);
  ASSERT_INT_EQ(expect_raw_error("\xdb\xff\xff\xff\xff"
                                 "abc",
                                 8, one),
                0);
  ASSERT_INT_EQ(expect_raw_error("\xc9\x00\x00\x00\x05\x01"
                                 "ab",
                                 8, one),
                0);
  ASSERT_INT_EQ(expect_raw_error("\x92\xc0", 2, one), 0);
  return 0;
}

/* {"msg_type": "die", "x": [[[...]]]}: `levels` containers in all. */
static size_t
nested(char *buf, int levels) {
  static const char head[] = "\x82\xa8msg_type\xa3"
                             "die\xa1x";
  size_t n = sizeof(head) - 1;
  int i;

  memcpy(buf, head, n);
  for (i = 1; i < levels; i++)
    buf[n++] = (char)(i + 1 < levels ? 0x91 : 0x90);
  if (levels == 1)
    buf[n++] = '\xc0';
  return n;
}

TEST(decode_depth_limit) {
  msgpack_zone z;
  bh__msg m;
  char buf[128], err[128];
  size_t n;

  msgpack_zone_init(&z, 1024);
  n = nested(buf, 32);
  ASSERT_INT_EQ(bh__wire_decode(buf, n, &z, &m, err, sizeof(err)), 0);
  ASSERT_INT_EQ(m.type, BH__MSG_DIE);
  msgpack_zone_destroy(&z);
  n = nested(buf, 33);
  return expect_raw_error(buf, n,
                          "frame does not hold exactly one msgpack "
                          "value: nested deeper than 32 levels");
}

/* Every scalar and container format msgpack has, in one frame. */
TEST(decode_all_formats) {
  fx f;
  const msgpack_object *x;

  fx_init(&f);
  ASSERT_INT_EQ(
      expect_ok(&f, "{2 \"msg_type \"die \"x [20 n t f i0 i-1 i-200 i-40000 "
                    "i-3000000000 u200 u40000 u3000000000 u9000000000000 "
                    "d0.5 b0 b3 e1 e2 e4 e8 e3"),
      0);
  x = &f.m.root->via.map.ptr[1].val;
  ASSERT_INT_EQ(x->via.array.size, 20);
  ASSERT(x->via.array.ptr[19].type == MSGPACK_OBJECT_EXT);
  ASSERT_INT_EQ(x->via.array.ptr[19].via.ext.size, 3);
  fx_close(&f);
  return 0;
}

/* Every msgpack format written out by hand (the packer would pick the
 * shortest forms), as items of an array16; then every truncation fails. */
TEST(decode_raw_formats) {
  static const char items[] =
      "\xc0\xc2\xc3\x05\xe0\xcc\xff\xcd\x01\x00\xce\x00\x00\x00\x01"
      "\xcf\x00\x00\x00\x00\x00\x00\x00\x01\xd0\xff\xd1\xff\xff"
      "\xd2\xff\xff\xff\xff\xd3\xff\xff\xff\xff\xff\xff\xff\xff"
      "\xca\x3f\x80\x00\x00\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"
      "\xa1z\xd9\x01z\xda\x00\x01z\xdb\x00\x00\x00\x01z"
      "\xc4\x01z\xc5\x00\x01z\xc6\x00\x00\x00\x01z"
      "\xd4\x01z\xd5\x01zz\xd6\x01zzzz\xd7\x01zzzzzzzz"
      "\xd8\x01zzzzzzzzzzzzzzzz\xc7\x01\x01z\xc8\x00\x01\x01z"
      "\xc9\x00\x00\x00\x01\x01z\x91\xc0\xdc\x00\x01\xc0"
      "\xdd\x00\x00\x00\x01\xc0\x81\xc0\xc0\xde\x00\x01\xc0\xc0"
      "\xdf\x00\x00\x00\x01\xc0\xc0\x80\x90\xa0";
  static const char head[] = "\x82\xa8msg_type\xa3"
                             "die\xa1x\xdc\x00\x27";
  char body[512];
  msgpack_zone z;
  bh__msg m;
  char err[128];
  size_t n = sizeof(head) - 1, i;
  const msgpack_object *x;

  memcpy(body, head, n);
  memcpy(body + n, items, sizeof(items) - 1);
  n += sizeof(items) - 1;
  msgpack_zone_init(&z, 1024);
  ASSERT_INT_EQ(bh__wire_decode(body, n, &z, &m, err, sizeof(err)), 0);
  x = &m.root->via.map.ptr[1].val;
  ASSERT_INT_EQ(x->via.array.size, 39);
  ASSERT(x->via.array.ptr[13].type == MSGPACK_OBJECT_FLOAT32);
  ASSERT(x->via.array.ptr[38].type == MSGPACK_OBJECT_STR);
  for (i = 0; i < n; i++) {
    if (bh__wire_decode(body, i, &z, &m, err, sizeof(err)) != BH_EPROTO) {
      fprintf(stderr, "truncated at %zu decoded\n", i);
      return 1;
    }
  }
  msgpack_zone_destroy(&z);
  return 0;
}

TEST(decode_null_err) {
  msgpack_zone z;
  bh__msg m;

  msgpack_zone_init(&z, 1024);
  ASSERT_INT_EQ(bh__wire_decode("\x90", 1, &z, &m, NULL, 0), BH_EPROTO);
  msgpack_zone_destroy(&z);
  return 0;
}

TEST_MAIN(TEST_ENTRY(msg_type_str),
          TEST_ENTRY(decode_accepted_started_by_its_bytes),
          TEST_ENTRY(decode_keep_decodes_a_kept_message_once),
          TEST_ENTRY(frame_len),
          TEST_ENTRY(exact_bytes),
          TEST_ENTRY(decode_root_errors),
          TEST_ENTRY(decode_task_id_errors),
          TEST_ENTRY(decode_task_id_range),
          TEST_ENTRY(decode_task_info_errors),
          TEST_ENTRY(decode_task_info_defaults),
          TEST_ENTRY(decode_accepted_errors),
          TEST_ENTRY(decode_task_done_errors),
          TEST_ENTRY(decode_task_done_defaults),
          TEST_ENTRY(decode_dead_errors),
          TEST_ENTRY(decode_dead_ok),
          TEST_ENTRY(decode_unknown_type),
          TEST_ENTRY(bootstrap_example_round_trips),
          TEST_ENTRY(bootstrap_config_is_checked),
          TEST_ENTRY(decode_bad_frames),
          TEST_ENTRY(decode_depth_limit),
          TEST_ENTRY(decode_all_formats),
          TEST_ENTRY(decode_raw_formats),
          TEST_ENTRY(decode_null_err))
