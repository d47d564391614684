/* test_log.c - loggers, indented blocks, the stderr sink and the
 * bee-message dump (bh_logger_debug_msg). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "observe/log.h"
#include "runner.h"

/* ------------------------------------------------------------------------
 * A capturing callback. */
#define CAP_LINES 256
#define CAP_TEXT 4096

typedef struct cap {
  int n;
  bool overflow; /* more lines, or a longer line, than the buffers hold */
  int level[CAP_LINES];
  int indent[CAP_LINES];
  char text[CAP_LINES][CAP_TEXT];
} cap;

static void
capture(void *udata, bh_log_level level, int indent, const char *line) {
  cap *c = udata;

  if (c->n == CAP_LINES || strlen(line) >= CAP_TEXT) {
    c->overflow = true;
    return;
  }
  c->level[c->n] = level;
  c->indent[c->n] = indent;
  strcpy(c->text[c->n], line);
  c->n++;
}

/* A new logger writing into a zeroed `c` (heap: a cap is large). */
static bh_logger *
cap_logger(cap **c, bh_log_level min) {
  *c = calloc(1, sizeof(**c));
  return *c != NULL ? bh_logger_new(min, capture, *c) : NULL;
}

static void
cap_dump(const cap *c) {
  for (int i = 0; i < c->n; i++)
    fprintf(stderr, "  got [%d] %d '%s'\n", c->level[i], c->indent[i],
            c->text[i]);
}

/* An expected line. In `text`, a trailing "$word" stands for the rendering
 * of the str "word" by bh_value_repr(), so these tables do not depend on
 * how value.c quotes strings. */
typedef struct want {
  int indent;
  const char *text;
} want;

static void
expand(const char *text, char *out, size_t len) {
  const char *dollar = strchr(text, '$');
  msgpack_object o = {.type = MSGPACK_OBJECT_STR};
  size_t head;

  if (dollar == NULL) {
    snprintf(out, len, "%s", text);
    return;
  }
  head = (size_t)(dollar - text);
  snprintf(out, len, "%.*s", (int)head, text);
  o.via.str.ptr = dollar + 1;
  o.via.str.size = (uint32_t)strlen(dollar + 1);
  if (head < len)
    bh_value_repr(&o, out + head, len - head);
}

/* Compares every captured line (all at `level`) with `w`. */
static int
check(const cap *c, bh_log_level level, const want *w, int n) {
  char exp[CAP_TEXT];

  ASSERT(!c->overflow);
  for (int i = 0; i < n && i < c->n; i++) {
    expand(w[i].text, exp, sizeof(exp));
    if (c->indent[i] != w[i].indent || strcmp(c->text[i], exp) != 0 ||
        c->level[i] != (int)level) {
      fprintf(stderr, "line %d: want [%d] %d '%s'\n", i, level, w[i].indent,
              exp);
      cap_dump(c);
      return 1;
    }
  }
  if (c->n != n)
    cap_dump(c);
  ASSERT_INT_EQ(c->n, n);
  return 0;
}

#define CHECK(c, level, w)                                                     \
  ASSERT_INT_EQ(check((c), (level), (w), (int)(sizeof(w) / sizeof((w)[0]))), 0)

/* ------------------------------------------------------------------------
 * Building msgpack objects with plain msgpack-c. */
typedef struct mb {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_unpacked up;
} mb;

static msgpack_packer *
mb_init(mb *m) {
  msgpack_sbuffer_init(&m->sb);
  msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
  msgpack_unpacked_init(&m->up);
  return &m->pk;
}

/* Borrows: the packed value, decoded on the first call (pack nothing
 * after it), valid until mb_free(). */
static const msgpack_object *
mb_obj(mb *m) {
  size_t off = 0;

  if (m->up.zone != NULL)
    return &m->up.data;
  if (msgpack_unpack_next(&m->up, m->sb.data, m->sb.size, &off) !=
          MSGPACK_UNPACK_SUCCESS ||
      off != m->sb.size)
    return NULL;
  return &m->up.data;
}

static void
mb_free(mb *m) {
  msgpack_unpacked_destroy(&m->up);
  msgpack_sbuffer_destroy(&m->sb);
}

static void
ps(msgpack_packer *pk, const char *s) {
  msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void
pexc(msgpack_packer *pk, const char *type, const char *message) {
  ps(pk, "exception");
  msgpack_pack_map(pk, 2);
  ps(pk, "type");
  ps(pk, type);
  ps(pk, "message");
  ps(pk, message);
}

/* ------------------------------------------------------------------------
 * Lines, levels and blocks. */

TEST(levels_filter) {
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_INFO);

  ASSERT(lg != NULL);
  ASSERT(!bh_logger_enabled(lg, BH_LOG_DEBUG));
  ASSERT(bh_logger_enabled(lg, BH_LOG_INFO));
  ASSERT(bh_logger_enabled(lg, BH_LOG_ERROR));
  bh_log(lg, BH_LOG_DEBUG, "hidden %d", 1);
  bh_log(lg, BH_LOG_INFO, "info %d", 2);
  bh_log(lg, BH_LOG_WARNING, "warn %s", "x");
  bh_log(lg, BH_LOG_ERROR, "error");
  ASSERT_INT_EQ(c->n, 3);
  ASSERT_INT_EQ(c->level[0], BH_LOG_INFO);
  ASSERT_INT_EQ(c->level[1], BH_LOG_WARNING);
  ASSERT_INT_EQ(c->level[2], BH_LOG_ERROR);
  ASSERT_STR_EQ(c->text[0], "info 2");
  ASSERT_STR_EQ(c->text[1], "warn x");
  ASSERT_STR_EQ(c->text[2], "error");
  bh_logger_free(lg);
  free(c);
  return 0;
}

TEST(nested_blocks) {
  static const want w[] = {{0, "top"},  {1, "a"},   {2, "a.1"},   {3, "deep"},
                           {1, "back"}, {0, "end"}, {0, "again"}, {1, "in"}};
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);

  ASSERT(lg != NULL);
  bh_log_end(lg); /* unbalanced: a no-op */
  bh_log_begin(lg, BH_LOG_DEBUG, "top");
  bh_log_begin(lg, BH_LOG_DEBUG, "%s", "a");
  bh_log_begin(lg, BH_LOG_DEBUG, "a.%d", 1);
  bh_log(lg, BH_LOG_DEBUG, "deep");
  bh_log_end(lg);
  bh_log_end(lg);
  bh_log(lg, BH_LOG_DEBUG, "back");
  bh_log_end(lg);
  bh_log(lg, BH_LOG_DEBUG, "end");
  bh_log_end(lg); /* unbalanced again */
  bh_log_end(lg);
  bh_log(lg, BH_LOG_DEBUG, "again");
  bh_log_begin(lg, BH_LOG_DEBUG, NULL); /* no title, still a block */
  bh_log(lg, BH_LOG_DEBUG, "in");
  CHECK(c, BH_LOG_DEBUG, w);
  bh_logger_free(lg);
  free(c);
  return 0;
}

/* A block whose title is filtered out still indents, so begin/end pairs
 * stay balanced at any level. */
TEST(filtered_block_title) {
  static const want w[] = {{1, "inner"}, {0, "outer"}};
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_WARNING);

  ASSERT(lg != NULL);
  bh_log_begin(lg, BH_LOG_DEBUG, "hidden title");
  bh_log(lg, BH_LOG_WARNING, "inner");
  bh_log_end(lg);
  bh_log(lg, BH_LOG_WARNING, "outer");
  CHECK(c, BH_LOG_WARNING, w);
  bh_logger_free(lg);
  free(c);
  return 0;
}

TEST(multiline_split) {
  static const want w[] = {{0, "one"},  {0, "two"}, {0, ""},
                           {0, "four"}, {0, ""},    {1, "x"},
                           {1, "y"},    {1, ""},    {1, "z"}};
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);

  ASSERT(lg != NULL);
  bh_log(lg, BH_LOG_DEBUG, "one\ntwo\n\nfour\n"); /* last '\n' ends "four" */
  bh_log_begin(lg, BH_LOG_DEBUG, "%s", "");       /* an empty title */
  bh_log(lg, BH_LOG_DEBUG, "%s\n%s", "x", "y");
  bh_log(lg, BH_LOG_DEBUG, "\nz");
  CHECK(c, BH_LOG_DEBUG, w);
  bh_logger_free(lg);
  free(c);
  return 0;
}

/* Lines longer than the formatter's stack buffer arrive whole. */
TEST(long_lines) {
  char big[3000];
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);

  ASSERT(lg != NULL);
  memset(big, 'q', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  big[1000] = '\n';
  bh_log(lg, BH_LOG_INFO, "<%s>", big);
  ASSERT_INT_EQ(c->n, 2);
  ASSERT_INT_EQ(strlen(c->text[0]), 1001);
  ASSERT_INT_EQ(strlen(c->text[1]), 1999);
  ASSERT(c->text[0][0] == '<' && c->text[0][1000] == 'q');
  ASSERT(c->text[1][1997] == 'q' && c->text[1][1998] == '>');
  bh_logger_free(lg);
  free(c);
  return 0;
}

TEST(null_logger) {
  mb m;
  msgpack_packer *pk = mb_init(&m);

  ps(pk, "x");
  ASSERT(!bh_logger_enabled(NULL, BH_LOG_ERROR));
  bh_log(NULL, BH_LOG_ERROR, "nothing %d", 1);
  bh_log_begin(NULL, BH_LOG_ERROR, "nothing");
  bh_log_end(NULL);
  bh__log_object(NULL, BH_LOG_ERROR, "x", mb_obj(&m));
  bh_logger_debug_msg(NULL, mb_obj(&m));
  bh_logger_free(NULL);
  mb_free(&m);
  return 0;
}

/* ------------------------------------------------------------------------
 * bh__log_object(). */

TEST(log_object) {
  char want_text[64], *long_repr;
  size_t len;
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_INFO);
  mb m;
  msgpack_packer *pk = mb_init(&m);
  const msgpack_object *o;

  ASSERT(lg != NULL);
  msgpack_pack_array(pk, 600);
  for (int i = 0; i < 600; i++)
    msgpack_pack_int(pk, 1000 + i);
  ASSERT((o = mb_obj(&m)) != NULL);
  bh__log_object(lg, BH_LOG_DEBUG, "hidden", o);
  ASSERT_INT_EQ(c->n, 0);
  bh__log_object(lg, BH_LOG_INFO, "value", o);
  bh__log_object(lg, BH_LOG_ERROR, NULL, o);
  ASSERT_INT_EQ(c->n, 2);
  len = bh_value_repr(o, want_text, sizeof(want_text));
  ASSERT(len > 3000); /* longer than the stack buffer */
  ASSERT((long_repr = malloc(len + 1)) != NULL);
  bh_value_repr(o, long_repr, len + 1);
  ASSERT(strncmp(c->text[0], "value: ", 7) == 0);
  ASSERT_STR_EQ(c->text[0] + 7, long_repr);
  ASSERT_STR_EQ(c->text[1], long_repr);
  ASSERT_INT_EQ(c->level[1], BH_LOG_ERROR);
  free(long_repr);
  mb_free(&m);
  bh_logger_free(lg);
  ASSERT_INT_EQ(bh__alloc_live(), 0);
  free(c);
  return 0;
}

/* ------------------------------------------------------------------------
 * bh_logger_debug_msg(). */

TEST(debug_msg_succeeded) {
  static const want w[] = {
      {0, "Message:"},           {1, "msg_type: $task_done"}, {1, "task_id: 7"},
      {1, "status: $succeeded"}, {1, "returning_value: 42"},
  };
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);
  mb m;
  msgpack_packer *pk = mb_init(&m);

  ASSERT(lg != NULL);
  msgpack_pack_map(pk, 4);
  ps(pk, "msg_type");
  ps(pk, "task_done");
  ps(pk, "task_id");
  msgpack_pack_int(pk, 7);
  ps(pk, "status");
  ps(pk, "succeeded");
  ps(pk, "returning_value");
  msgpack_pack_int(pk, 42);
  bh_logger_debug_msg(lg, mb_obj(&m));
  CHECK(c, BH_LOG_DEBUG, w);
  mb_free(&m);
  bh_logger_free(lg);
  ASSERT_INT_EQ(bh__alloc_live(), 0);
  free(c);
  return 0;
}

/* Keys longer than the label buffer are shown whole. */
TEST(debug_msg_long_key) {
  char key[301], line[400];
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);
  mb m;
  msgpack_packer *pk = mb_init(&m);

  ASSERT(lg != NULL);
  memset(key, 'k', sizeof(key) - 1);
  key[sizeof(key) - 1] = '\0';
  msgpack_pack_map(pk, 2);
  ps(pk, "status");
  ps(pk, "raised");
  ps(pk, "other_details");
  msgpack_pack_map(pk, 1);
  ps(pk, key);
  msgpack_pack_int(pk, 1);
  bh_logger_debug_msg(lg, mb_obj(&m));
  snprintf(line, sizeof(line), "%s: 1", key);
  ASSERT_INT_EQ(c->n, 4);
  ASSERT_STR_EQ(c->text[2], "Other details:");
  ASSERT_STR_EQ(c->text[3], line);
  ASSERT_INT_EQ(c->indent[3], 1);
  mb_free(&m);
  bh_logger_free(lg);
  free(c);
  return 0;
}

static void
pack_raised(msgpack_packer *pk) {
  msgpack_pack_map(pk, 6);
  ps(pk, "msg_type");
  ps(pk, "task_done");
  ps(pk, "task_id");
  msgpack_pack_int(pk, 3);
  ps(pk, "traceback"); /* entries end in '\n', some hold two lines */
  msgpack_pack_array(pk, 2);
  ps(pk, "File \"a.c\", line 10, in f\n    x = g()\n");
  ps(pk, "File \"b.c\", line 20, in g\n");
  ps(pk, "status");
  ps(pk, "raised");
  pexc(pk, "ValueError", "bad input");
  ps(pk, "other_details");
  msgpack_pack_nil(pk); /* nil: no block */
}

TEST(debug_msg_raised) {
  /* One expected line per row. */
  /* clang-format off */
  static const want w[] = {
      {0, "Traceback:"},
      {1, "File \"a.c\", line 10, in f"},
      {1, "    x = g()"},
      {1, "File \"b.c\", line 20, in g"},
      {0, "Message:"},
      {1, "msg_type: $task_done"},
      {1, "task_id: 3"},
      {1, "status: $raised"},
      {0, "Exception:"},
      {1, "ValueError: bad input"},
  };
  /* clang-format on */
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);
  mb m;

  ASSERT(lg != NULL);
  pack_raised(mb_init(&m));
  bh_logger_debug_msg(lg, mb_obj(&m));
  CHECK(c, BH_LOG_DEBUG, w);
  mb_free(&m);
  bh_logger_free(lg);
  ASSERT_INT_EQ(bh__alloc_live(), 0);
  free(c);
  return 0;
}

/* Level `level` of a chain of `levels` raised messages, each but the last
 * holding the next as other_details.cause. */
static void
pack_chain(msgpack_packer *pk, int level, int levels) {
  char text[32];

  msgpack_pack_map(pk, 4);
  ps(pk, "status");
  ps(pk, "raised");
  ps(pk, "task_id");
  msgpack_pack_int(pk, 100 + level);
  if (level == levels - 1) {
    pexc(pk, "ValueError", "root failure");
    ps(pk, "traceback");
    msgpack_pack_array(pk, 1);
    ps(pk, "File \"root.c\", line 3, in work");
    return;
  }
  snprintf(text, sizeof(text), "level %d failed", level);
  pexc(pk, "DelegationError", text);
  ps(pk, "other_details");
  msgpack_pack_map(pk, 2);
  ps(pk, "cause");
  pack_chain(pk, level + 1, levels);
  ps(pk, "note");
  snprintf(text, sizeof(text), "level%d", level);
  ps(pk, text);
}

/* The dump starts at the caller's depth and leaves it as it was. */
TEST(debug_msg_chain) {
  static const want w[] = {
      {0, "Result:"},
      {1, "Message:"},
      {2, "status: $raised"},
      {2, "task_id: 100"},
      {1, "Exception:"},
      {2, "DelegationError: level 0 failed"},
      {1, "Other details:"},
      {2, "cause:"},
      {3, "Message:"},
      {4, "status: $raised"},
      {4, "task_id: 101"},
      {3, "Exception:"},
      {4, "DelegationError: level 1 failed"},
      {3, "Other details:"},
      {4, "cause:"},
      {5, "Traceback:"},
      {6, "File \"root.c\", line 3, in work"},
      {5, "Message:"},
      {6, "status: $raised"},
      {6, "task_id: 102"},
      {5, "Exception:"},
      {6, "ValueError: root failure"},
      {4, "note: $level1"},
      {2, "note: $level0"},
      {0, "done"},
  };
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);
  mb m;

  ASSERT(lg != NULL);
  pack_chain(mb_init(&m), 0, 3);
  bh_log_begin(lg, BH_LOG_DEBUG, "Result:");
  bh_logger_debug_msg(lg, mb_obj(&m));
  bh_log_end(lg);
  bh_log(lg, BH_LOG_DEBUG, "done");
  CHECK(c, BH_LOG_DEBUG, w);
  mb_free(&m);
  bh_logger_free(lg);
  ASSERT_INT_EQ(bh__alloc_live(), 0);
  free(c);
  return 0;
}

/* Renders `o` into `out`, followed by `suffix`. */
static const char *
repr_then(const msgpack_object *o, const char *suffix, char *out, size_t n) {
  size_t len = bh_value_repr(o, out, n);

  if (len < n)
    snprintf(out + len, n - len, "%s", suffix);
  return out;
}

/* Fields of unexpected shapes are shown rendered, never dropped. */
TEST(debug_msg_odd_shapes) {
  char five[64], key9[128];
  want w[] = {{0, "Traceback:"}, {1, "first"}, {1, five},
              {0, "Message:"},   {1, key9},    {1, "status: $raised"},
              {0, "Exception:"}, {1, "$Boom"}, {0, "Other details:"},
              {1, "$just text"}};
  const msgpack_object *o, *kv9;
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);
  mb m;
  msgpack_packer *pk = mb_init(&m);

  ASSERT(lg != NULL);
  msgpack_pack_map(pk, 5);
  ps(pk, "traceback");
  msgpack_pack_array(pk, 2);
  ps(pk, "first");
  msgpack_pack_int(pk, 5);
  msgpack_pack_int(pk, 9); /* a non-str key */
  msgpack_pack_true(pk);
  ps(pk, "exception");
  ps(pk, "Boom");
  ps(pk, "other_details");
  ps(pk, "just text");
  ps(pk, "status");
  ps(pk, "raised");
  ASSERT((o = mb_obj(&m)) != NULL);
  repr_then(&o->via.map.ptr[0].val.via.array.ptr[1], "", five, sizeof(five));
  kv9 = &o->via.map.ptr[1].key;
  repr_then(kv9, ": ", key9, sizeof(key9));
  repr_then(&o->via.map.ptr[1].val, "", key9 + strlen(key9),
            sizeof(key9) - strlen(key9));
  bh_logger_debug_msg(lg, o);
  CHECK(c, BH_LOG_DEBUG, w);
  mb_free(&m);
  bh_logger_free(lg);
  ASSERT_INT_EQ(bh__alloc_live(), 0);
  free(c);
  return 0;
}

/* A message that is not a map is shown whole under "Message:". */
TEST(debug_msg_not_a_map) {
  char whole[128];
  want w[] = {{0, "Message:"}, {1, whole}};
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);
  mb m;
  msgpack_packer *pk = mb_init(&m);

  ASSERT(lg != NULL);
  msgpack_pack_array(pk, 2);
  ps(pk, "status");
  msgpack_pack_int(pk, 1);
  repr_then(mb_obj(&m), "", whole, sizeof(whole));
  bh_logger_debug_msg(lg, mb_obj(&m));
  CHECK(c, BH_LOG_DEBUG, w);
  mb_free(&m);
  bh_logger_free(lg);
  ASSERT_INT_EQ(bh__alloc_live(), 0);
  free(c);
  return 0;
}

/* Nothing at all below DEBUG, and a NULL message is ignored. */
TEST(debug_msg_disabled) {
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_INFO);
  mb m;

  ASSERT(lg != NULL);
  pack_raised(mb_init(&m));
  bh_logger_debug_msg(lg, mb_obj(&m));
  ASSERT_INT_EQ(c->n, 0);
  bh_logger_free(lg);
  lg = bh_logger_new(BH_LOG_DEBUG, capture, c);
  ASSERT(lg != NULL);
  bh_logger_debug_msg(lg, NULL);
  ASSERT_INT_EQ(c->n, 0);
  bh_log(lg, BH_LOG_DEBUG, "still at depth 0");
  ASSERT_INT_EQ(c->indent[0], 0);
  mb_free(&m);
  bh_logger_free(lg);
  free(c);
  return 0;
}

/* A hand-built chain far deeper than msgpack_unpack() would accept: the
 * dump stops recursing (src/observe/log.c MAX_MSG_DEPTH, 32) and renders the rest,
 * and the depth returns to 0. */
#define DEEP 40
TEST(debug_msg_depth_limit) {
  static msgpack_object msg[DEEP], od[DEEP];
  static msgpack_object_kv fields[DEEP][2], cause[DEEP];
  int max_indent = 0;
  cap *c;
  bh_logger *lg = cap_logger(&c, BH_LOG_DEBUG);

  ASSERT(lg != NULL);
  for (int i = DEEP - 1; i >= 0; i--) {
    fields[i][0].key =
        (msgpack_object){.type = MSGPACK_OBJECT_STR, .via.str = {6, "status"}};
    fields[i][0].val =
        (msgpack_object){.type = MSGPACK_OBJECT_STR, .via.str = {6, "raised"}};
    fields[i][1].key = (msgpack_object){.type = MSGPACK_OBJECT_STR,
                                        .via.str = {13, "other_details"}};
    fields[i][1].val = (msgpack_object){.type = MSGPACK_OBJECT_NIL};
    if (i + 1 < DEEP) {
      cause[i].key =
          (msgpack_object){.type = MSGPACK_OBJECT_STR, .via.str = {5, "cause"}};
      cause[i].val = msg[i + 1];
      od[i] = (msgpack_object){.type = MSGPACK_OBJECT_MAP,
                               .via.map = {1, &cause[i]}};
      fields[i][1].val = od[i];
    }
    msg[i] =
        (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = {2, fields[i]}};
  }
  bh_logger_debug_msg(lg, &msg[0]);
  bh_log(lg, BH_LOG_DEBUG, "after");
  ASSERT(!c->overflow);
  for (int i = 0; i < c->n; i++)
    max_indent = c->indent[i] > max_indent ? c->indent[i] : max_indent;
  ASSERT_INT_EQ(max_indent, 2 * 32 + 1);
  ASSERT(strncmp(c->text[c->n - 2], "cause: ", 7) == 0);
  ASSERT_INT_EQ(c->indent[c->n - 2], 2 * 32 + 1);
  ASSERT_STR_EQ(c->text[c->n - 1], "after");
  ASSERT_INT_EQ(c->indent[c->n - 1], 0);
  bh_logger_free(lg);
  free(c);
  return 0;
}

/* ------------------------------------------------------------------------
 * Out of memory: long text is cut short rather than lost. */
static int fail_now; /* while set, every allocation fails */

static void *
fail_malloc(size_t n) {
  return fail_now ? NULL : malloc(n);
}

static void *
fail_realloc(void *p, size_t n) {
  return fail_now ? NULL : realloc(p, n);
}

static const bh_allocator failing = {fail_malloc, fail_realloc, free};

/* True when `got` is a non-empty proper prefix of `full`. */
static bool
cut_short(const char *got, const char *full) {
  size_t n = strlen(got);

  return n > 0 && n < strlen(full) && strncmp(got, full, n) == 0;
}

TEST(out_of_memory) {
  char big[3000], *full;
  cap *c;
  bh_logger *lg;
  mb m;
  msgpack_packer *pk = mb_init(&m);

  bh_set_allocator(&failing);
  fail_now = 1;
  ASSERT(cap_logger(&c, BH_LOG_DEBUG) == NULL);
  fail_now = 0;
  ASSERT((lg = bh_logger_new(BH_LOG_DEBUG, capture, c)) != NULL);
  memset(big, 'z', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  ps(pk, big);
  fail_now = 1;
  bh_log(lg, BH_LOG_INFO, "%s", big);
  bh__log_object(lg, BH_LOG_INFO, NULL, mb_obj(&m));
  fail_now = 0;
  ASSERT_INT_EQ(c->n, 2);
  ASSERT(cut_short(c->text[0], big));
  ASSERT((full = malloc(4096)) != NULL);
  bh_value_repr(mb_obj(&m), full, 4096);
  ASSERT(cut_short(c->text[1], full));
  ASSERT_INT_EQ(bh__alloc_live(), 1); /* only the logger */
  bh_logger_free(lg);
  ASSERT_INT_EQ(bh__alloc_live(), 0);
  bh_set_allocator(NULL);
  free(full);
  free(c);
  mb_free(&m);
  return 0;
}

/* ------------------------------------------------------------------------
 * The stderr sink. */

/* Runs `fn` with stderr redirected into a pipe and reads back what it
 * wrote (at most len - 1 bytes, NUL-terminated). Returns 0 or -1. */
static int
with_stderr(void (*fn)(void), char *out, size_t len) {
  int fds[2], saved = dup(STDERR_FILENO);
  size_t got = 0;
  ssize_t r;

  if (saved < 0 || pipe(fds) != 0)
    return -1;
  fflush(stderr);
  dup2(fds[1], STDERR_FILENO);
  close(fds[1]);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  while (got + 1 < len && ((r = read(fds[0], out + got, len - 1 - got)) > 0 ||
                           (r < 0 && errno == EINTR)))
    got += r > 0 ? (size_t)r : 0;
  close(fds[0]);
  out[got] = '\0';
  return 0;
}

static void
log_some(void) {
  bh_logger *lg = bh_logger_new(BH_LOG_DEBUG, NULL, NULL);

  bh_log_begin(lg, BH_LOG_DEBUG, "Traceback:");
  bh_log(lg, BH_LOG_INFO, "two\nlines");
  bh_log_begin(lg, BH_LOG_WARNING, "deeper");
  bh_log(lg, BH_LOG_ERROR, "bad");
  bh_log(lg, (bh_log_level)25, "odd level");
  bh_logger_free(lg);
}

TEST(stderr_format) {
  char out[1024];

  ASSERT_INT_EQ(with_stderr(log_some, out, sizeof(out)), 0);
  ASSERT_STR_EQ(out, "DEBUG   Traceback:\n"
                     "INFO      two\n"
                     "INFO      lines\n"
                     "WARNING   deeper\n"
                     "ERROR       bad\n"
                     "LEVEL25     odd level\n");
  return 0;
}

/* Two processes log to one pipe at once: every line arrives whole. */
#define RACE_LINES 400
#define RACE_TEXT 120

static void
race_text(char tag, char *text) {
  memset(text, tag, RACE_TEXT);
  text[RACE_TEXT] = '\0';
}

static void
race_child(char tag) {
  char text[RACE_TEXT + 1];
  bh_logger *lg = bh_logger_new(BH_LOG_DEBUG, NULL, NULL);

  race_text(tag, text);
  bh_log_begin(lg, BH_LOG_INFO, "%s", text);
  for (int i = 0; i < RACE_LINES - 1; i++)
    bh_log(lg, BH_LOG_INFO, "%s", text);
  bh_logger_free(lg);
  _exit(lg != NULL ? 0 : 1);
}

/* Counts the lines of `buf` that are exactly one of a child's lines (its
 * title at depth 0 or a line at depth 1) into n[0] and n[1]; returns -1 if
 * any line is anything else, i.e. torn or merged. */
static int
count_whole(char *buf, int n[2]) {
  char text[RACE_TEXT + 1], line_of[4][RACE_TEXT + 16];
  char *line, *save = NULL;
  int k;

  for (k = 0; k < 4; k++) {
    race_text(k < 2 ? 'a' : 'b', text);
    snprintf(line_of[k], sizeof(line_of[k]), "INFO    %s%s", k % 2 ? "  " : "",
             text);
  }
  for (line = strtok_r(buf, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    for (k = 0; k < 4 && strcmp(line, line_of[k]) != 0; k++)
      ;
    if (k == 4)
      return -1;
    n[k / 2]++;
  }
  return 0;
}

static pid_t
spawn_racer(int fd, char tag) {
  pid_t pid = fork();

  if (pid == 0) {
    dup2(fd, STDERR_FILENO);
    race_child(tag);
  }
  return pid;
}

TEST(stderr_lines_whole) {
  size_t cap_len = 2 * RACE_LINES * (RACE_TEXT + 16) + 1, got = 0;
  char *buf = malloc(cap_len);
  int fds[2], st, n[2] = {0, 0};
  pid_t a, b;
  ssize_t r;

  ASSERT(buf != NULL && pipe(fds) == 0);
  a = spawn_racer(fds[1], 'a');
  b = spawn_racer(fds[1], 'b');
  close(fds[1]);
  ASSERT(a > 0 && b > 0);
  while ((r = read(fds[0], buf + got, cap_len - 1 - got)) > 0 ||
         (r < 0 && errno == EINTR))
    got += r > 0 ? (size_t)r : 0;
  buf[got] = '\0';
  ASSERT(waitpid(a, &st, 0) == a && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  ASSERT(waitpid(b, &st, 0) == b && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  ASSERT_INT_EQ(count_whole(buf, n), 0);
  ASSERT_INT_EQ(n[0], RACE_LINES);
  ASSERT_INT_EQ(n[1], RACE_LINES);
  close(fds[0]);
  free(buf);
  return 0;
}

TEST_MAIN(TEST_ENTRY(levels_filter), TEST_ENTRY(nested_blocks),
          TEST_ENTRY(filtered_block_title), TEST_ENTRY(multiline_split),
          TEST_ENTRY(long_lines), TEST_ENTRY(null_logger),
          TEST_ENTRY(log_object), TEST_ENTRY(debug_msg_succeeded),
          TEST_ENTRY(debug_msg_long_key), TEST_ENTRY(debug_msg_raised),
          TEST_ENTRY(debug_msg_chain), TEST_ENTRY(debug_msg_odd_shapes),
          TEST_ENTRY(debug_msg_not_a_map), TEST_ENTRY(debug_msg_disabled),
          TEST_ENTRY(debug_msg_depth_limit), TEST_ENTRY(out_of_memory),
          TEST_ENTRY(stderr_format), TEST_ENTRY(stderr_lines_whole))
