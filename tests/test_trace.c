/* test_trace.c - the timeline writers (trace_json.c, trace_svg.c) and the
 * progress line (progress.c): Chrome trace JSON that parses, one complete
 * event per answered span on the right lane, escaping, an SVG that is well
 * formed with one label per lane, small even for 100,000 spans, a trace
 * recorded by a real hive, and the progress line's exact text. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "alloc_util.h"
#include "json_check.h"
#include "runner.h"
#include "text_util.h"
#include "observe/trace.h"
#include "observe/trace_lanes.h"

/* ---- helpers --------------------------------------------------------- */

/* A temporary path unique to this process. */
static void
tmp_path(char *buf, size_t len, const char *suffix) {
  const char *dir = getenv("TMPDIR");

  snprintf(buf, len, "%s/bh_test_trace_%d%s", dir && *dir ? dir : "/tmp",
           (int)getpid(), suffix);
}

/* python3's json module agrees, when python3 is there: 1 yes, 0 no, -1
 * no python3 (the C checker above still ran). */
static int
python_json_ok(const char *path) {
  char cmd[512];
  int st;

  if (system("command -v python3 >/dev/null 2>&1") != 0)
    return -1;
  snprintf(cmd, sizeof(cmd),
           "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' '%s'",
           path);
  st = system(cmd);
  return st == 0;
}

/* ---- a well-formedness checker for the SVG ---------------------------- */

/* Tags balance, attribute values are quoted, '&' starts an entity and no
 * raw '<' appears in text. Returns the number of elements, or -1. */
static long
xml_elements(const char *p) {
  char stack[32][16];
  int depth = 0;
  long n = 0;

  while (*p != '\0') {
    if (*p == '&') {
      if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) &&
          strncmp(p, "&gt;", 4) && strncmp(p, "&quot;", 6))
        return -1;
      p++;
    } else if (*p == '<' && p[1] == '/') {
      size_t len = strcspn(p + 2, ">");

      if (depth == 0 || len != strlen(stack[depth - 1]) ||
          strncmp(p + 2, stack[--depth], len) != 0)
        return -1;
      p += 2 + len + 1;
    } else if (*p == '<') {
      size_t len = strcspn(p + 1, " />");
      const char *end = p + 1 + len;
      int quoted = 0;

      for (; *end && (quoted || *end != '>'); end++)
        quoted ^= *end == '"';
      if (*end != '>' || len == 0 || len >= sizeof(stack[0]))
        return -1;
      n++;
      if (end[-1] != '/') {
        if (depth == 32)
          return -1;
        memcpy(stack[depth], p + 1, len);
        stack[depth++][len] = '\0';
      }
      p = end + 1;
    } else if (*p == '>') {
      return -1;
    } else {
      p++;
    }
  }
  return depth == 0 ? n : -1;
}

/* ---- traces made by hand ---------------------------------------------- */

/* A trace with 2 named lanes, one lane never named (7), 5 answered spans,
 * one span never ended and awkward names. */
static bh_trace *
small_trace(void) {
  bh_trace *tr = bh_trace_new();
  uint64_t t0 = uv_hrtime();

  if (tr == NULL)
    return NULL;
  bh__trace_lane(tr, -1, "Queen 10000");
  bh__trace_lane(tr, 0, "worker 0 (pid 1) & <co>");
  bh__trace_add(tr, 0, "pre", 1, t0 + 1000, t0 + 3000, t0 + 9000,
                BH_SUCCEEDED);
  bh__trace_add(tr, 0, "pre", 2, t0 + 2000, t0 + 4000, t0 + 6000, BH_RAISED);
  bh__trace_add(tr, 7, "quote\"back\\slash\ttab", 3, t0 + 5000, t0 + 5000,
                t0 + 12000, BH_CANCELLED);
  bh__trace_add(tr, -1, "own", 4, t0 + 7000, t0 + 7000, 0, BH_SUCCEEDED);
  bh__trace_add(tr, -1, "bad utf8 \xff\xc3\xa9", 5, t0 + 8000, t0 + 8000,
                t0 + 20000, BH_SUCCEEDED);
  bh__trace_add(tr, 0, "pre", 6, t0 + 9000, t0 + 15000, t0 + 18000,
                BH_SUCCEEDED);
  return tr;
}

/* ---- JSON ------------------------------------------------------------- */

TEST(json_parses_one_event_per_answered_span) {
  size_t live0 = bh__alloc_live(), len;
  bh_trace *tr = small_trace();
  char path[256], *text;
  int py;

  ASSERT(tr != NULL);
  tmp_path(path, sizeof(path), ".json");
  ASSERT_INT_EQ(bh_trace_write_json(tr, path), 0);
  text = slurp(path, &len);
  ASSERT(text != NULL);
  ASSERT(json_ok(text));
  py = python_json_ok(path);
  if (py < 0)
    fprintf(stderr, "# no python3: only the C JSON checker ran\n");
  else
    ASSERT_INT_EQ(py, 1);
  ASSERT_INT_EQ(count(text, "\"ph\":\"X\""), 5); /* not the unended one */
  ASSERT(strstr(text, "\"displayTimeUnit\":\"ms\"") != NULL);
  ASSERT(strncmp(text, "{\"traceEvents\":[", 16) == 0);
  ASSERT_INT_EQ(count(text, "\"thread_name\""), 3);
  ASSERT(strstr(text, "\"args\":{\"name\":\"lane 7\"}") != NULL);
  ASSERT(strstr(text, "\"quote\\\"back\\\\slash\\u0009tab\"") != NULL);
  ASSERT(strstr(text, "\"bad utf8 \\ufffd\xc3\xa9\"") != NULL);
  /* Span 2: lane 0 is tid 1 (the queen's lane came first), handed over
   * 2 µs after it was made, answered 2 µs later. (Times are from the
   * trace's creation, a little before t0: only differences are exact.) */
  ASSERT(strstr(text, "\"dur\":2,\"pid\":1,\"tid\":1,\"args\":{"
                      "\"task_id\":2,\"status\":\"raised\","
                      "\"waited_us\":2}}") != NULL);
  ASSERT(strstr(text, "\"tid\":2,\"args\":{\"task_id\":3,\"status\":"
                      "\"cancelled\"") != NULL);
  free(text);
  unlink(path);
  bh_trace_free(tr);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(json_of_an_empty_trace_parses) {
  bh_trace *tr = bh_trace_new();
  char path[256], *text;
  size_t len;

  tmp_path(path, sizeof(path), ".json");
  ASSERT_INT_EQ(bh_trace_write_json(tr, path), 0);
  text = slurp(path, &len);
  ASSERT(text != NULL && json_ok(text));
  ASSERT_INT_EQ(count(text, "\"ph\":\"X\""), 0);
  free(text);
  unlink(path);
  bh_trace_free(tr);
  return 0;
}

TEST(json_checker_rejects_bad_json) {
  ASSERT(json_ok("{\"a\":[1,2.5e3,-0,true,null,\"x\\u00e9\"]}"));
  ASSERT(!json_ok("{\"a\":[1,2,]}"));
  ASSERT(!json_ok("{\"a\" 1}"));
  ASSERT(!json_ok("{\"a\":\"tab\there\"}"));
  ASSERT(!json_ok("{\"a\":01}"));
  ASSERT(!json_ok("[1] x"));
  ASSERT(!json_ok("[\"\xff\"]"));
  return 0;
}

TEST(writers_report_errors) {
  bh_trace *tr = small_trace();

  ASSERT_INT_EQ(bh_trace_write_json(tr, "/nonexistent-dir/x.json"), -ENOENT);
  ASSERT_INT_EQ(bh_trace_write_svg(tr, "/nonexistent-dir/x.svg"), -ENOENT);
  ASSERT_INT_EQ(bh_trace_write_json(NULL, "/tmp/x.json"), BH_EINVAL);
  ASSERT_INT_EQ(bh_trace_write_svg(tr, NULL), BH_EINVAL);
  bh_trace_free(tr);
  return 0;
}

/* ---- SVG -------------------------------------------------------------- */

/* Each allocation a writer makes fails in turn: BH_ENOMEM, nothing
 * leaked; past the last one the file is written. */
static int
fails_cleanly(int (*write)(const bh_trace *, const char *),
              const bh_trace *tr, const char *path) {
  size_t live = bh__alloc_live();
  int err = BH_ENOMEM, fail_at;

  for (fail_at = 1; err == BH_ENOMEM; fail_at++) {
    fail_alloc_at(fail_at);
    err = write(tr, path);
    fail_alloc_off();
    ASSERT(err == 0 || err == BH_ENOMEM);
    ASSERT_INT_EQ(bh__alloc_live(), live);
  }
  ASSERT(fail_at > 2); /* at least one allocation failed the call */
  return 0;
}

TEST(writers_without_memory_are_enomem) {
  char path[] = "/tmp/bh_test_trace_XXXXXX";
  bh_trace *tr = small_trace();
  int fd = mkstemp(path);

  ASSERT(fd >= 0);
  close(fd);
  ASSERT_INT_EQ(fails_cleanly(bh_trace_write_json, tr, path), 0);
  ASSERT_INT_EQ(fails_cleanly(bh_trace_write_svg, tr, path), 0);
  unlink(path);
  bh_trace_free(tr);
  return 0;
}

TEST(svg_is_well_formed_with_a_label_per_lane) {
  size_t live0 = bh__alloc_live(), len;
  bh_trace *tr = small_trace();
  char path[256], *text;

  tmp_path(path, sizeof(path), ".svg");
  ASSERT_INT_EQ(bh_trace_write_svg(tr, path), 0);
  text = slurp(path, &len);
  ASSERT(text != NULL);
  ASSERT(strncmp(text, "<svg", 4) == 0);
  ASSERT(len > 7 && strcmp(text + len - 7, "</svg>\n") == 0);
  ASSERT(xml_elements(text) > 0);
  ASSERT_INT_EQ(count(text, "class=\"lane\""), 3);
  ASSERT(strstr(text, ">worker 0 (pid 1) &amp; &lt;co&gt;</text>") != NULL);
  ASSERT(strstr(text, ">lane 7</text>") != NULL);
  /* Few spans: one bar each, with a tooltip, for the 5 answered ones. */
  ASSERT_INT_EQ(count(text, "<title>"), 5);
  ASSERT(strstr(text, "<title>pre #2: raised") != NULL);
  ASSERT_INT_EQ(count(text, "<rect class=\"r\""), 2); /* legend + 1 bar */
  ASSERT(strstr(text, "&quot;back\\slash?tab #3: cancelled") != NULL);
  free(text);
  unlink(path);
  bh_trace_free(tr);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(xml_checker_rejects_bad_markup) {
  ASSERT(xml_elements("<svg><text a=\"x>y\">a &amp; b</text><rect/></svg>")
         == 3);
  ASSERT(xml_elements("<svg><text>a & b</text></svg>") < 0);
  ASSERT(xml_elements("<svg><text>a</svg>") < 0);
  ASSERT(xml_elements("<svg>a > b</svg>") < 0);
  return 0;
}

/* 100,000 spans on 3 lanes, 64 in flight per worker, a few raised and
 * cancelled: the picture merges per pixel column and stays small. */
TEST(svg_of_100k_spans_stays_small) {
  bh_trace *tr = bh_trace_new();
  uint64_t t0 = uv_hrtime(), t;
  char path[256], *text;
  size_t len;
  int64_t i;

  bh__trace_lane(tr, -1, "Queen 10000");
  bh__trace_lane(tr, 0, "worker 0");
  bh__trace_lane(tr, 1, "worker 1");
  for (i = 0; i < 100000; i++) {
    t = t0 + (uint64_t)i * 20000; /* 20 µs apart, 2.56 ms long */
    bh__trace_add(tr, i % 2, "task", i, t, t + 1000, t + 2561000,
                  i % 997 == 0 ? BH_RAISED : i % 1999 == 0 ? BH_CANCELLED
                                                           : BH_SUCCEEDED);
    if (i % 500 == 0)
      bh__trace_add(tr, -1, "predict", -1, t, t, t + 300000, BH_SUCCEEDED);
  }
  tmp_path(path, sizeof(path), ".svg");
  ASSERT_INT_EQ(bh_trace_write_svg(tr, path), 0);
  text = slurp(path, &len);
  ASSERT(text != NULL);
  fprintf(stderr, "# 100,000 spans: %zu bytes of SVG\n", len);
  ASSERT(len < 2000000);
  ASSERT(xml_elements(text) > 0);
  ASSERT_INT_EQ(count(text, "class=\"lane\""), 3);
  ASSERT(strstr(text, ">50000 tasks, up to 6") != NULL); /* about 64 */
  ASSERT(count(text, "<rect class=\"r\"") > 1); /* raised still shows */
  ASSERT(count(text, "<rect class=\"c\"") > 1);
  ASSERT(strstr(text, ">200 tasks</text>") != NULL); /* the queen: bars */
  ASSERT(strstr(text, ">2.0 s</text>") != NULL);     /* an axis tick */
  free(text);
  unlink(path);
  bh_trace_free(tr);
  return 0;
}

/* ---- a trace a real hive recorded ------------------------------------- */

static int
w_twice(bh_task *t) {
  int64_t x;

  if (bh_task_unpack(t, "[I]", &x) != 0)
    return BH_ERAISED;
  if (x % 10 == 3)
    return bh_raise(t, "ValueError", "x = %lld", (long long)x);
  return bh_return(t, "I", 2 * x);
}

static int
q_many(bh_task *t) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int64_t i, span = bh_span_begin(t, "delegate all");

  for (i = 0; i < 200; i++)
    bh_group_delegate(g, NULL, NULL, "twice", "[I]", i);
  bh_span_end(t, span, BH_SUCCEEDED);
  while (bh_group_next(g, &f, -1) == 0)
    bh_future_free(f);
  bh_group_free(g);
  return 0;
}

static const bh_task_def w_tasks[] = {{"twice", w_twice}, {NULL, NULL}};
static const bh_class w_class = {.name = "Worker", .tasks = w_tasks};
static const bh_task_def q_tasks[] = {{"many", q_many}, {NULL, NULL}};
static const bh_class q_class = {.name = "Queen", .tasks = q_tasks,
                                 .worker_class = &w_class, .workers = 2};

TEST(a_hive_records_one_span_per_task) {
  bh_trace *tr = bh_trace_new();
  bh_run_opts o = {.queen_class = &q_class, .task_name = "many",
                   .min_workers = 2, .max_workers = 2, .trace = tr};
  bh_result *r = NULL;
  char path[256], *text;
  size_t len;

  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  bh_result_free(r);
  tmp_path(path, sizeof(path), ".json");
  ASSERT_INT_EQ(bh_trace_write_json(tr, path), 0);
  text = slurp(path, &len);
  ASSERT(text != NULL && json_ok(text));
  ASSERT_INT_EQ(count(text, "{\"name\":\"twice\",\"cat\":\"task\","
                            "\"ph\":\"X\""), 200);
  ASSERT_INT_EQ(count(text, "\"status\":\"raised\""), 20);
  ASSERT_INT_EQ(count(text, "{\"name\":\"delegate all\""), 1);
  ASSERT_INT_EQ(count(text, "\"thread_name\""), 3);
  ASSERT(strstr(text, "\"args\":{\"name\":\"Queen 10000\"}") != NULL);
  ASSERT(strstr(text, "\"args\":{\"name\":\"worker 1 (pid ") != NULL);
  free(text);
  unlink(path);
  tmp_path(path, sizeof(path), ".svg");
  ASSERT_INT_EQ(bh_trace_write_svg(tr, path), 0);
  text = slurp(path, &len);
  ASSERT(text != NULL && xml_elements(text) > 0);
  ASSERT_INT_EQ(count(text, "class=\"lane\""), 3);
  free(text);
  unlink(path);
  bh_trace_free(tr);
  return 0;
}

/* ---- the progress line ------------------------------------------------ */

TEST(progress_line_text) {
  char buf[160];
  size_t n;

  n = bh_progress_format(buf, sizeof(buf), 1234, 100000, 5432.0, 2, "rows");
  ASSERT_STR_EQ(buf, "[--------------------] 1234/100000 rows  5,432 "
                     "rows/s  ETA 0:19  workers 2");
  ASSERT_INT_EQ(n, strlen(buf));
  bh_progress_format(buf, sizeof(buf), 50000, 100000, 1234567.4, 3, NULL);
  ASSERT_STR_EQ(buf, "[##########----------] 50000/100000 tasks  1,234,567 "
                     "tasks/s  ETA 0:01  workers 3");
  bh_progress_format(buf, sizeof(buf), 100000, 100000, 999.0, 1, "rows");
  ASSERT_STR_EQ(buf, "[####################] 100000/100000 rows  999 rows/s"
                     "  ETA 0:00  workers 1");
  bh_progress_format(buf, sizeof(buf), 0, 10, 0.0, 0, "rows");
  ASSERT_STR_EQ(buf, "[--------------------] 0/10 rows  0 rows/s  ETA --:--"
                     "  workers 0");
  bh_progress_format(buf, sizeof(buf), 1, 10000000, 2.5, 1, "rows");
  ASSERT_STR_EQ(buf, "[--------------------] 1/10000000 rows  2.5 rows/s  "
                     "ETA --:--  workers 1"); /* beyond 99 hours */
  bh_progress_format(buf, sizeof(buf), 0, 7200, 1.0, 1, "rows");
  ASSERT_STR_EQ(buf, "[--------------------] 0/7200 rows  1.0 rows/s  "
                     "ETA 2:00:00  workers 1");
  bh_progress_format(buf, sizeof(buf), 42, 0, 10.0, 4, "rows");
  ASSERT_STR_EQ(buf, "42 rows  10.0 rows/s  workers 4"); /* total unknown */
  return 0;
}

TEST(progress_line_truncates) {
  char buf[12], full[160];
  size_t n = bh_progress_format(full, sizeof(full), 5, 10, 100.0, 2, "rows");

  ASSERT_INT_EQ(bh_progress_format(buf, sizeof(buf), 5, 10, 100.0, 2,
                                   "rows"), n);
  ASSERT_INT_EQ(strlen(buf), sizeof(buf) - 1);
  ASSERT(strncmp(buf, full, sizeof(buf) - 1) == 0);
  ASSERT_INT_EQ(bh_progress_format(NULL, 0, 5, 10, 100.0, 2, "rows"), n);
  return 0;
}

/* The line drawn from a hook's stats: the same as bh_progress_format()
 * with the elapsed time, the ETA taken from the stats. */
TEST(progress_line_from_stats) {
  bh_stats s = {.alive = 2, .done = 1234, .total = 100000, .per_s = 5432.0,
                .elapsed_s = 0.227, .eta_s = (100000 - 1234) / 5432.0};
  char buf[200], plain[200];
  size_t n;

  n = bh_progress_format_stats(buf, sizeof(buf), &s, "rows");
  ASSERT_STR_EQ(buf, "[--------------------] 1234/100000 rows  5,432 "
                     "rows/s  elapsed 0:00  ETA 0:19  workers 2");
  ASSERT_INT_EQ(n, strlen(buf));
  bh_progress_format(plain, sizeof(plain), 1234, 100000, 5432.0, 2, "rows");
  ASSERT_STR_EQ(plain, "[--------------------] 1234/100000 rows  5,432 "
                       "rows/s  ETA 0:19  workers 2");
  s = (bh_stats){.alive = 1, .done = 50, .total = 100, .per_s = 0.0134,
                 .elapsed_s = 3725.9, .eta_s = 50 / 0.0134};
  bh_progress_format_stats(buf, sizeof(buf), &s, NULL);
  ASSERT_STR_EQ(buf, "[##########----------] 50/100 tasks  0.0 tasks/s  "
                     "elapsed 1:02:05  ETA 1:02:12  workers 1");
  s.eta_s = -1; /* unknown */
  bh_progress_format_stats(buf, sizeof(buf), &s, NULL);
  ASSERT(strstr(buf, "elapsed 1:02:05  ETA --:--  workers 1") != NULL);
  s = (bh_stats){.alive = 4, .done = 42, .per_s = 10.0, .elapsed_s = 4.2,
                 .eta_s = -1};
  bh_progress_format_stats(buf, sizeof(buf), &s, "rows");
  ASSERT_STR_EQ(buf, "42 rows  10.0 rows/s  elapsed 0:04  workers 4");
  ASSERT_INT_EQ(bh_progress_format_stats(buf, sizeof(buf), NULL, "rows"), 0);
  ASSERT_STR_EQ(buf, "");
  return 0;
}

/* ---- the pace in a real hive's stats --------------------------------- */

static struct {
  uint64_t before_run;      /* uv_hrtime() before bh_run */
  uint64_t task_start;      /* ... when the queen's task began */
  bh_stats mid[3];          /* the queen's stats at three points */
  uint64_t mid_from[3], mid_to[3]; /* uv_hrtime() around each */
  int finals;
  bh_stats final;
  uint64_t final_at;
  char line[200];
} P;

static int
w_nothing(bh_task *t) {
  (void)t;
  return 0;
}

static void
read_stats(bh_task *t, int i) {
  P.mid_from[i] = uv_hrtime();
  bh_bee_stats(bh_task_bee(t), &P.mid[i]);
  P.mid_to[i] = uv_hrtime();
}

/* Delegates 3 tasks (done counts answers), then counts 4 of its own 10
 * units (done counts those from then on), then the other 6. */
static int
q_paced(bh_task *t) {
  bh_result *r;
  int i;

  P.task_start = uv_hrtime();
  bh_progress_total(t, 10);
  for (i = 0; i < 3; i++) {
    if (bh_delegate(t, &r, "nothing", NULL) != 0)
      return bh_raise_result(t, r);
    bh_result_free(r);
  }
  read_stats(t, 0);
  bh_progress_add(t, 4);
  read_stats(t, 1);
  bh_progress_add(t, 6);
  read_stats(t, 2);
  return 0;
}

static void
on_pace(void *udata, const bh_stats *s, int final) {
  (void)udata;
  if (!final)
    return;
  P.finals++;
  P.final = *s;
  P.final_at = uv_hrtime();
  bh_progress_format_stats(P.line, sizeof(P.line), s, "rows");
}

static const bh_task_def pw_tasks[] = {{"nothing", w_nothing}, {NULL, NULL}};
static const bh_class pw_class = {.name = "W", .tasks = pw_tasks};
static const bh_task_def pq_tasks[] = {{"paced", q_paced}, {NULL, NULL}};
static const bh_class pq_class = {.name = "Q", .tasks = pq_tasks,
                                  .worker_class = &pw_class};

/* The elapsed time lies between what the test's own clock saw: at least
 * from the queen's task's start to just before the stats were read (the
 * bee was made before), at most from before bh_run to just after. */
static int
elapsed_ok(const bh_stats *s, uint64_t before_read, uint64_t after_read) {
  double lo = (double)(before_read - P.task_start) / 1e9;
  double hi = (double)(after_read - P.before_run) / 1e9;

  return s->elapsed_s >= lo && s->elapsed_s <= hi;
}

/* rate = done / elapsed, ETA = what is left at that rate. */
static int
pace_ok(const bh_stats *s) {
  double left = (double)(s->total - s->done);

  if (s->per_s <= 0 || fabs(s->per_s * s->elapsed_s - (double)s->done) >
                           1e-9 * (double)s->done)
    return 0;
  if (s->done >= s->total)
    return s->eta_s == 0.0;
  return fabs(s->eta_s * s->per_s - left) <= 1e-9 * left;
}

TEST(progress_stats_carry_elapsed_rate_and_eta) {
  bh_run_opts o = {.queen_class = &pq_class, .task_name = "paced",
                   .progress = on_pace, .progress_interval_ms = 100000};
  bh_result *r = NULL;
  int i;

  P.before_run = uv_hrtime();
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  bh_result_free(r);
  /* Answers until the task counts its own units, then those. */
  ASSERT_INT_EQ(P.mid[0].done, 3);
  ASSERT_INT_EQ(P.mid[1].done, 4);
  ASSERT_INT_EQ(P.mid[2].done, 10);
  for (i = 0; i < 3; i++) {
    ASSERT_INT_EQ(P.mid[i].total, 10);
    ASSERT(elapsed_ok(&P.mid[i], P.mid_from[i], P.mid_to[i]));
    ASSERT(pace_ok(&P.mid[i]));
  }
  ASSERT(P.mid[1].eta_s > 0);
  ASSERT_INT_EQ(P.mid[2].eta_s, 0);
  ASSERT(P.mid[1].elapsed_s >= P.mid[0].elapsed_s);
  ASSERT(P.mid[2].elapsed_s >= P.mid[1].elapsed_s);
  /* The hook's last call: the same pace, at the end. */
  ASSERT_INT_EQ(P.finals, 1);
  ASSERT_INT_EQ(P.final.done, 10);
  ASSERT_INT_EQ(P.final.total, 10);
  ASSERT(P.final.elapsed_s >= P.mid[2].elapsed_s);
  ASSERT(P.final.elapsed_s <= (double)(P.final_at - P.before_run) / 1e9);
  ASSERT(pace_ok(&P.final));
  ASSERT(strncmp(P.line, "[####################] 10/10 rows  ", 35) == 0);
  ASSERT(strstr(P.line, " rows/s  elapsed ") != NULL);
  ASSERT(strstr(P.line, "  ETA 0:00  workers ") != NULL);
  return 0;
}

/* progress_interval_ms -1 (BH_NONE): no calls while the task runs, the
 * final one only; with an interval, calls while it runs. */
static int calls[2]; /* [0]: while the task runs, [1]: final */

static void
on_call(void *udata, const bh_stats *s, int final) {
  (void)udata;
  (void)s;
  calls[final ? 1 : 0]++;
}

static int
q_nap(bh_task *t) {
  return bh_sleep(t, 300);
}

static const bh_task_def nap_tasks[] = {{"nap", q_nap}, {NULL, NULL}};
static const bh_class nap_class = {.name = "Q", .tasks = nap_tasks,
                                   .worker_class = &pw_class};

TEST(progress_interval_none_calls_once_at_the_end) {
  bh_run_opts o = {.queen_class = &nap_class, .task_name = "nap",
                   .progress = on_call, .progress_interval_ms = 20};
  bh_result *r = NULL;

  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  bh_result_free(r);
  ASSERT(calls[0] > 0);
  ASSERT_INT_EQ(calls[1], 1);
  calls[0] = calls[1] = 0;
  o.progress_interval_ms = BH_NONE;
  ASSERT_INT_EQ(bh_run(&o, &r), 0);
  bh_result_free(r);
  ASSERT_INT_EQ(calls[0], 0);
  ASSERT_INT_EQ(calls[1], 1);
  return 0;
}

TEST_MAIN(TEST_ENTRY(json_parses_one_event_per_answered_span),
          TEST_ENTRY(json_of_an_empty_trace_parses),
          TEST_ENTRY(json_checker_rejects_bad_json),
          TEST_ENTRY(writers_report_errors),
          TEST_ENTRY(writers_without_memory_are_enomem),
          TEST_ENTRY(svg_is_well_formed_with_a_label_per_lane),
          TEST_ENTRY(xml_checker_rejects_bad_markup),
          TEST_ENTRY_T(svg_of_100k_spans_stays_small, 10),
          TEST_ENTRY_T(a_hive_records_one_span_per_task, 10),
          TEST_ENTRY(progress_line_text), TEST_ENTRY(progress_line_truncates),
          TEST_ENTRY(progress_line_from_stats),
          TEST_ENTRY_T(progress_stats_carry_elapsed_rate_and_eta, 20),
          TEST_ENTRY_T(progress_interval_none_calls_once_at_the_end, 20))
