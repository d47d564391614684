/* test_map.c - bh_map_new() in whole hives (src/api/map.c, src/hive/map_chunk.c):
 * input order and completion order, chunks of k items in one task, the
 * window's bound, a failing item among good ones, a worker dying with a
 * chunk, results holding blobs, cancellation (the map freed, a chunk's
 * deadline, the queen's task cancelled), empty input and bad options. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "base/base.h"
#include "runner.h"

/* Where "nap_or_mark" writes the items it ran; forked workers see it. */
static char marks_path[64];

/* ---- worker tasks: one item each -------------------------------------- */

static int
w_sq(bh_task *t) {
  int64_t x;

  if (bh_task_unpack(t, "[I]", &x) != 0)
    return BH_ERAISED;
  return bh_return(t, "I", x * x);
}

/* Sleeps item ms; returns [item, tasks running in this worker, task id]. */
static int
w_nap(bh_task *t) {
  bh_bee *bee = bh_task_bee(t);
  size_t running = bh_bee_running(bee);
  int64_t ms;
  int rc;

  if (bh_task_unpack(t, "[I]", &ms) != 0)
    return BH_ERAISED;
  if ((rc = bh_sleep(t, ms)) != 0)
    return rc;
  if (bh_bee_running(bee) > running)
    running = bh_bee_running(bee);
  return bh_return(t, "[I I I]", ms, (int64_t)running, bh_task_id(t));
}

/* Raises for x % 5 == 3, cancels itself for x % 5 == 4, else returns x. */
static int
w_picky(bh_task *t) {
  int64_t x;

  if (bh_task_unpack(t, "[I]", &x) != 0)
    return BH_ERAISED;
  if (x % 5 == 3)
    return bh_raise(t, "ValueError", "bad item %lld", (long long)x);
  if (x % 5 == 4) {
    bh_cancel_reason(t, "item %lld gave up", (long long)x);
    return BH_ECANCELLED;
  }
  return bh_return_object(t, &bh_task_args(t)->via.array.ptr[0]);
}

/* Kills its worker on item 5. */
static int
w_crash_on_5(bh_task *t) {
  int64_t x;

  if (bh_task_unpack(t, "[I]", &x) != 0)
    return BH_ERAISED;
  if (x == 5)
    kill(getpid(), SIGKILL);
  return bh_return(t, "I", x);
}

/* Positive items: a nap of that many ms first. Then appends the item to
 * marks_path: the items that ran to their end. */
static int
w_nap_or_mark(bh_task *t) {
  char line[32];
  int64_t x;
  int fd, rc, n;

  if (bh_task_unpack(t, "[I]", &x) != 0)
    return BH_ERAISED;
  if (x > 0 && (rc = bh_sleep(t, x)) != 0)
    return rc;
  n = snprintf(line, sizeof(line), "%lld\n", (long long)x);
  fd = open(marks_path, O_WRONLY | O_APPEND);
  if (fd < 0 || write(fd, line, (size_t)n) != n)
    rc = BH_EPIPE;
  else
    rc = bh_return(t, "I", x);
  if (fd >= 0)
    close(fd);
  return rc;
}

/* Returns item bytes of shared memory holding the pattern: the result
 * names a blob. */
static int
w_blob(bh_task *t) {
  int64_t n;
  void *p;
  int rc;

  if (bh_task_unpack(t, "[I]", &n) != 0)
    return BH_ERAISED;
  if ((p = bh_blob_alloc((size_t)n)) == NULL)
    return BH_ENOMEM;
  fill(p, (size_t)n);
  rc = bh_return(t, "y#", p, (size_t)n);
  bh_blob_free(p); /* the result holds its own reference */
  return rc;
}

static const bh_task_def worker_tasks[] = {
    {"sq", w_sq},       {"nap", w_nap},
    {"picky", w_picky}, {"crash_on_5", w_crash_on_5},
    {"nap_or_mark", w_nap_or_mark}, {"blob", w_blob},
    {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = worker_tasks};

/* ---- queen tasks ------------------------------------------------------- */

/* What a queen task saw of one item. */
static void
pack_item(msgpack_packer *pk, const bh_map_item *it) {
  char text[4096] = "";

  if (it->result != NULL)
    bh_result_format(it->result, text, sizeof(text));
  msgpack_pack_array(pk, 4);
  msgpack_pack_uint64(pk, it->index);
  msgpack_pack_int(pk, (int)it->status);
  msgpack_pack_object(pk, *it->value);
  bh_pack(pk, "[s s s s]", bh_result_errmsg(it->result),
          bh_result_root_errtype(it->result),
          bh_result_root_errmsg(it->result), text);
}

/* Maps args[0] over args[5] with chunk args[1], window args[2], order
 * args[3] and a deadline of args[4] ms per task message (0: none).
 * Returns [[index, status, value, [errmsg, root type, root message,
 * formatted chain]]...] in the order bh_map_next() handed them back. */
static int
q_map(bh_task *t) {
  bh_deleg_opts d = {.retries = -1};
  bh_map_opts o = {.deleg = &d};
  const msgpack_object *items;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  bh__buf out = {0};
  bh_map_item it;
  char name[32];
  uint32_t n = 0;
  bh_map *m;
  int rc;

  if (bh_task_unpack(t, "[s i i i I o]", name, sizeof(name), &o.chunk,
                     &o.window, &o.order, &d.timeout_ms, &items) != 0)
    return BH_ERAISED;
  if ((rc = bh_map_new(t, &m, name, &o, "o", items)) != 0)
    return rc;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  while ((rc = bh_map_next(m, &it, -1)) == 0 && ++n)
    pack_item(&pk, &it);
  bh_map_free(m);
  msgpack_packer_init(&pk, &out, bh__buf_write);
  msgpack_pack_array(&pk, n);
  bh__buf_append(&out, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  if (rc == BH_EDONE) {
    bh_value *v = bh_value_from_bytes(out.data, out.len);

    rc = v != NULL ? bh_return(t, "v", v) : BH_EPROTO;
    bh_value_free(v);
  }
  bh__buf_free(&out);
  return rc;
}

/* Maps nap_or_mark over args[2] (chunk 4, order args[1]), waits args[0]
 * ms for the first item, then frees the map: returns [that wait's
 * code]. */
static int
q_map_and_quit(bh_task *t) {
  bh_map_opts o = {.chunk = 4};
  int64_t items[4], wait_ms;
  bh_map_item it;
  bh_map *m;
  size_t n;
  int rc;

  if (bh_task_unpack(t, "[I i #I]", &wait_ms, &o.order, items, (size_t)4,
                     &n) != 0)
    return BH_ERAISED;
  if ((rc = bh_map_new(t, &m, "nap_or_mark", &o, "#I", items, n)) != 0)
    return rc;
  rc = bh_map_next(m, &it, bh_now() + wait_ms);
  bh_map_free(m);
  return bh_return(t, "[i]", rc);
}

/* The queen's task is cancelled (SIGINT to the queen's process) while it
 * waits for a map's item: what bh_map_next() returned. */
static int map_wait_rc = 1;

static int
q_map_interrupted(bh_task *t) {
  static const int64_t items[] = {5000, -1, -2};
  bh_map_opts o = {.chunk = 3};
  bh_map_item it;
  bh_map *m;
  int rc;

  if ((rc = bh_map_new(t, &m, "nap_or_mark", &o, "#I", items, (size_t)3)) !=
      0)
    return rc;
  kill(getpid(), SIGINT);
  map_wait_rc = bh_map_next(m, &it, -1);
  bh_map_free(m);
  return map_wait_rc;
}

/* bh_map_new() with args[0] as the options' chunk, args[1] window,
 * args[2] order, args[3] name and args[4] the items' format, given 7 (or
 * for "#I" an empty C array). Returns [code, bh_task_errmsg], or the
 * code itself when bh_map_new() fails and args[5] is true. For empty
 * input the code is bh_map_next()'s. */
static int
q_map_misuse(bh_task *t) {
  bh_map_opts o = {0};
  char name[16], fmt[16];
  bh_map *m = NULL;
  bh_map_item it;
  int rc, raise_it;

  if (bh_task_unpack(t, "[i i i s s b]", &o.chunk, &o.window, &o.order, name,
                     sizeof(name), fmt, sizeof(fmt), &raise_it) != 0)
    return BH_ERAISED;
  if (strcmp(fmt, "#I") == 0) /* a C array of none */
    rc = bh_map_new(t, &m, name, &o, fmt, (const int64_t *)name, (size_t)0);
  else if (strcmp(fmt, "[s#]") == 0) /* 4 GiB: the length is all it reads */
    rc = bh_map_new(t, &m, name, &o, fmt, name, (size_t)UINT32_MAX + 1);
  else
    rc = bh_map_new(t, &m, name, &o, fmt, 7);
  if (rc == 0) { /* empty input: nothing to hand back */
    rc = bh_map_next(m, &it, -1);
    bh_map_free(m);
  } else if (raise_it) {
    return rc;
  }
  return bh_return(t, "[i s]", rc, bh_task_errmsg(t));
}

static const bh_task_def queen_tasks[] = {
    {"map", q_map},
    {"map_and_quit", q_map_and_quit},
    {"map_interrupted", q_map_interrupted},
    {"map_misuse", q_map_misuse},
    {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = queen_tasks,
                               .worker_class = &worker};

/* ---- helpers ----------------------------------------------------------- */

typedef struct map_run {
  const char *task;
  int chunk, window, order, workers, max_conc;
  int64_t timeout_ms;
} map_run;

/* Runs q_map over items (a packed array, which it frees); returns the
 * result, or NULL when the run failed or handed back other than `want`
 * items. */
static bh_result *
run_map(const map_run *mr, bh_value *items, uint32_t want) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "map",
                   .workers = mr->workers, .max_workers = mr->workers,
                   .max_concurrency = mr->max_conc};
  bh_result *r;
  uint32_t got;

  o.task_args = bh_value_pack(NULL, "[s i i i I v]", mr->task, mr->chunk,
                              mr->window, mr->order, mr->timeout_ms, items);
  if (run_hive(&o, &r) != 0) {
    bh_result_free(r);
    r = NULL;
  } else if ((got = bh_result_value(r)->via.array.size) != want) {
    fprintf(stderr, "%u items handed back, not %u\n", got, want);
    bh_result_free(r);
    r = NULL;
  }
  bh_value_free((bh_value *)o.task_args);
  bh_value_free(items);
  return r;
}

/* Entry i of q_map's answer. */
static const msgpack_object *
entry(const bh_result *r, uint32_t i) {
  const msgpack_object *v = bh_result_value(r);

  return i < v->via.array.size ? &v->via.array.ptr[i] : NULL;
}

/* The index, status and value of entry i. */
static int
entry_fields(const bh_result *r, uint32_t i, int64_t *index, int *status,
             const msgpack_object **value) {
  return bh_unpack(entry(r, i), NULL, 0, "[I i o *]", index, status,
                   value);
}

/* The text fields of entry i: errmsg, root type, root message, chain. */
static int
entry_texts(const bh_result *r, uint32_t i, const char **txt) {
  size_t ignore;

  return bh_unpack(entry(r, i), NULL, 0, "[* * * [s# s# s# s#]]", &txt[0],
                   &ignore, &txt[1], &ignore, &txt[2], &ignore, &txt[3],
                   &ignore);
}

static bool
has(const char *hay, const char *needle) {
  return hay != NULL && strstr(hay, needle) != NULL;
}

/* The items 0..n-1 as naps of ms[i % n_ms]. */
static bh_value *
naps(size_t n, const int64_t *ms, size_t n_ms) {
  int64_t *xs = malloc(n * sizeof(*xs));
  bh_value *v;
  size_t i;

  for (i = 0; i < n; i++)
    xs[i] = ms[i % n_ms];
  v = bh_value_pack(NULL, "#I", xs, n);
  free(xs);
  return v;
}

static bh_value *
range(int64_t n) {
  int64_t *xs = malloc((size_t)n * sizeof(*xs) + 1), i;
  bh_value *v;

  for (i = 0; i < n; i++)
    xs[i] = i;
  v = bh_value_pack(NULL, "#I", xs, (size_t)n);
  free(xs);
  return v;
}

/* A fresh, empty marks file. */
static int
marks_open(void) {
  int fd;

  snprintf(marks_path, sizeof(marks_path), "/tmp/bh-map-marks-XXXXXX");
  fd = mkstemp(marks_path);
  if (fd < 0)
    return -1;
  close(fd);
  return 0;
}

/* The marks written, and removes the file. */
static const char *
marks_read(void) {
  static char buf[256];
  ssize_t n = -1;
  int fd = open(marks_path, O_RDONLY);

  if (fd >= 0) {
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
  }
  unlink(marks_path);
  buf[n > 0 ? n : 0] = '\0';
  return n >= 0 ? buf : "(unreadable)";
}

/* ---- tests ------------------------------------------------------------- */

/* Later items end first (their naps are shorter), on two workers: the
 * items still come back in input order, whole chunks or not. */
static int
order_case(int chunk) {
  static const int64_t ms[] = {60, 45, 30, 15, 0};
  bh_value *items = naps(20, ms, 5);
  map_run mr = {.task = "nap", .chunk = chunk, .workers = 2};
  const msgpack_object *v;
  bh_result *r = run_map(&mr, items, 20);
  int64_t index, x;
  uint32_t i;
  int st;

  ASSERT(r != NULL);
  for (i = 0; i < 20; i++) {
    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(index, i);
    ASSERT_INT_EQ(st, BH_SUCCEEDED);
    ASSERT_INT_EQ(bh_unpack(v, NULL, 0, "[I * *]", &x), 0);
    ASSERT_INT_EQ(x, ms[i % 5]);
  }
  bh_result_free(r);
  return 0;
}

TEST(ordered_one_item_per_task) {
  return order_case(0);
}

TEST(ordered_in_chunks) {
  return order_case(3);
}

/* As completed: the slow first item (or its chunk) comes back last. */
static int
as_completed_case(int chunk) {
  static const int64_t ms[] = {400, 0, 0, 0, 0, 0, 0, 0};
  bh_value *items = naps(8, ms, 8);
  map_run mr = {.task = "nap", .chunk = chunk, .workers = 2,
                .order = BH_MAP_AS_COMPLETED};
  bh_result *r = run_map(&mr, items, 8);
  const msgpack_object *v;
  int64_t index, seen = 0;
  uint32_t i;
  int st;

  ASSERT(r != NULL);
  for (i = 0; i < 8; i++) {
    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(st, BH_SUCCEEDED);
    seen |= (int64_t)1 << index;
  }
  ASSERT_INT_EQ(seen, 0xff); /* each item once */
  ASSERT_INT_EQ(entry_fields(r, 8 - (uint32_t)chunk, &index, &st, &v), 0);
  ASSERT_INT_EQ(index, 0); /* the slow chunk's items, in order, last */
  ASSERT_INT_EQ(entry_fields(r, 7, &index, &st, &v), 0);
  ASSERT_INT_EQ(index, chunk - 1);
  bh_result_free(r);
  return 0;
}

TEST(as_completed_one_item_per_task) {
  return as_completed_case(1);
}

TEST(as_completed_in_chunks) {
  return as_completed_case(2);
}

/* With chunk k, items i and j run in the same task exactly when i / k ==
 * j / k: 10 items in chunks of 4 are 3 tasks. */
TEST(chunks_carry_k_items_per_task) {
  static const int64_t ms[] = {0};
  bh_value *items = naps(10, ms, 1);
  map_run mr = {.task = "nap", .chunk = 4, .workers = 2};
  bh_result *r = run_map(&mr, items, 10);
  int64_t ids[10], index, x, running;
  const msgpack_object *v;
  uint32_t i, j;
  int st;

  ASSERT(r != NULL);
  for (i = 0; i < 10; i++) {
    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(bh_unpack(v, NULL, 0, "[I I I]", &x, &running, &ids[i]), 0);
  }
  for (i = 0; i < 10; i++)
    for (j = 0; j < 10; j++)
      ASSERT_INT_EQ(ids[i] == ids[j], i / 4 == j / 4);
  bh_result_free(r);
  return 0;
}

/* One worker with room for many tasks; 12 items of 50 ms in chunks of 2,
 * window 3: the worker runs 3 chunks at once, never more. */
static int
window_case(int order) {
  static const int64_t ms[] = {50};
  bh_value *items = naps(12, ms, 1);
  map_run mr = {.task = "nap", .chunk = 2, .window = 3, .order = order,
                .workers = 1};
  bh_result *r = run_map(&mr, items, 12);
  int64_t most = 0, index, x, running, id;
  const msgpack_object *v;
  uint32_t i;
  int st;

  ASSERT(r != NULL);
  for (i = 0; i < 12; i++) {
    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(bh_unpack(v, NULL, 0, "[I I I]", &x, &running, &id), 0);
    most = running > most ? running : most;
  }
  ASSERT_INT_EQ(most, 3);
  bh_result_free(r);
  return 0;
}

TEST(window_bounds_tasks_in_flight) {
  return window_case(BH_MAP_ORDERED);
}

TEST(window_bounds_tasks_in_flight_as_completed) {
  return window_case(BH_MAP_AS_COMPLETED);
}

/* window -1 (BH_NONE): no limit, every chunk at once (6 of 2 items run
 * together where window 3 runs 3); chunk -1: none, one item per task. */
static int
none_case(int chunk, int64_t want_most, int64_t want_ids) {
  static const int64_t ms[] = {200};
  bh_value *items = naps(12, ms, 1);
  map_run mr = {.task = "nap", .chunk = chunk, .window = BH_NONE,
                .workers = 1};
  bh_result *r = run_map(&mr, items, 12);
  int64_t most = 0, index, x, running, ids[12], n_ids = 0, j;
  const msgpack_object *v;
  uint32_t i;
  int st;

  ASSERT(r != NULL);
  for (i = 0; i < 12; i++) {
    int64_t id;

    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(bh_unpack(v, NULL, 0, "[I I I]", &x, &running, &id), 0);
    most = running > most ? running : most;
    for (j = 0; j < n_ids && ids[j] != id; j++)
      ;
    if (j == n_ids)
      ids[n_ids++] = id;
  }
  bh_result_free(r);
  ASSERT_INT_EQ(most, want_most);
  ASSERT_INT_EQ(n_ids, want_ids);
  return 0;
}

TEST(window_none_starts_every_chunk) {
  ASSERT_INT_EQ(none_case(2, 6, 6), 0);
  return none_case(BH_NONE, 12, 12);
}

/* Items 3 and 8 raise and 4 and 9 cancel themselves; the others, in the
 * same chunks, succeed. A failed item's chain reaches the handler's
 * raise and names the item. */
static int
failing_case(int chunk) {
  bh_value *items = range(10);
  map_run mr = {.task = "picky", .chunk = chunk, .workers = 2};
  bh_result *r = run_map(&mr, items, 10);
  const msgpack_object *v;
  const char *txt[4];
  int64_t index, x;
  uint32_t i;
  int st;

  ASSERT(r != NULL);
  for (i = 0; i < 10; i++) {
    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(index, i);
    ASSERT_INT_EQ(st, i % 5 >= 3 ? BH_RAISED : BH_SUCCEEDED);
    if (st == BH_SUCCEEDED) {
      ASSERT_INT_EQ(bh_unpack(v, NULL, 0, "I", &x), 0);
      ASSERT_INT_EQ(x, i);
    }
  }
  ASSERT_INT_EQ(entry_texts(r, 3, txt), 0);
  ASSERT(has(txt[0], "Delegated task raised an exception."));
  ASSERT(has(txt[1], "ValueError"));
  ASSERT(has(txt[2], "bad item 3"));
  ASSERT(has(txt[3], "test_map.c\", line"));
  ASSERT(has(txt[3], "in w_picky"));
  ASSERT(has(txt[3], "in task 'picky'"));
  if (chunk > 1)
    ASSERT(has(txt[3], "in item 3 of a map of task 'picky' by bee 10000"));
  ASSERT_INT_EQ(entry_texts(r, 9, txt), 0);
  ASSERT(has(txt[0], "Delegated task has been cancelled."));
  ASSERT(has(txt[3], "item 9 gave up"));
  bh_result_free(r);
  return 0;
}

TEST(a_failing_item_fails_alone) {
  return failing_case(5);
}

TEST(a_failing_item_fails_alone_unchunked) {
  return failing_case(1);
}

/* Item 5 kills its worker (one task at a time each): its chunk, items 4
 * to 7, comes back raised with the cause of death; the others succeed. */
TEST(a_worker_dying_fails_its_chunk) {
  bh_value *items = range(12);
  map_run mr = {.task = "crash_on_5", .chunk = 4, .workers = 2,
                .max_conc = 1};
  bh_result *r = run_map(&mr, items, 12);
  const msgpack_object *v;
  const char *txt[4];
  int64_t index;
  uint32_t i;
  int st;

  ASSERT(r != NULL);
  for (i = 0; i < 12; i++) {
    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(st, i >= 4 && i < 8 ? BH_RAISED : BH_SUCCEEDED);
  }
  ASSERT_INT_EQ(entry_texts(r, 6, txt), 0);
  ASSERT(has(txt[0], "the delegated bee has been killed"));
  ASSERT(has(txt[1], "BeeDied"));
  ASSERT(has(txt[2], "SIGKILL"));
  bh_result_free(r);
  return 0;
}

/* Each item's result holds a blob of its own (shared memory): the chunk's
 * answer carries them all. */
TEST(results_holding_blobs) {
  static const int64_t sizes[] = {300 << 10, 5, 400 << 10};
  bh_value *items = bh_value_pack(NULL, "#I", sizes, (size_t)3);
  map_run mr = {.task = "blob", .chunk = 3, .workers = 1};
  bh_result *r = run_map(&mr, items, 3);
  const msgpack_object *v;
  const void *p;
  int64_t index;
  uint32_t i;
  size_t n;
  int st;

  ASSERT(r != NULL);
  for (i = 0; i < 3; i++) {
    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(st, BH_SUCCEEDED);
    ASSERT_INT_EQ(bh_unpack(v, NULL, 0, "y#", &p, &n), 0);
    ASSERT_INT_EQ(n, sizes[i]);
    ASSERT(holds_pattern(p, n));
  }
  bh_result_free(r);
  return 0;
}

/* The queen stops waiting after 100 ms and frees the map while its chunk
 * naps: the worker gets cancel_task, the nap ends cancelled and the
 * chunk's later items never run. */
static int
freeing_case(int order) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "map_and_quit",
                   .workers = 1, .max_workers = 1};
  static const int64_t items[] = {5000, -1, -2, -3};
  bh_result *r;
  int rc = 0;

  ASSERT_INT_EQ(marks_open(), 0);
  o.task_args = bh_value_pack(NULL, "[I i #I]", (int64_t)100, order, items,
                              (size_t)4);
  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "[i]", &rc), 0);
  ASSERT_INT_EQ(rc, BH_ETIMEDOUT);
  ASSERT_STR_EQ(marks_read(), "");
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  return 0;
}

TEST(freeing_the_map_cancels_its_chunks) {
  return freeing_case(BH_MAP_ORDERED);
}

TEST(freeing_the_map_cancels_its_chunks_as_completed) {
  return freeing_case(BH_MAP_AS_COMPLETED);
}

/* A chunk's deadline (bh_deleg_opts.timeout_ms) cancels it: each of its
 * items comes back cancelled, and the items after the nap never ran. */
TEST(a_chunk_deadline_cancels_its_items) {
  static const int64_t xs[] = {5000, -1, -2, 0};
  bh_value *items = bh_value_pack(NULL, "#I", xs, (size_t)4);
  map_run mr = {.task = "nap_or_mark", .chunk = 3, .workers = 1,
                .timeout_ms = 100};
  bh_result *r;
  const msgpack_object *v;
  int64_t index;
  uint32_t i;
  int st;

  ASSERT_INT_EQ(marks_open(), 0);
  r = run_map(&mr, items, 4);
  ASSERT(r != NULL);
  for (i = 0; i < 4; i++) {
    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(index, i);
    ASSERT_INT_EQ(st, i < 3 ? BH_CANCELLED : BH_SUCCEEDED);
  }
  ASSERT_STR_EQ(marks_read(), "0\n"); /* the next chunk's only item */
  bh_result_free(r);
  return 0;
}

/* SIGINT cancels the queen's task while it waits in bh_map_next(): the
 * wait returns BH_ECANCELLED, and the chunk in flight is cancelled. */
TEST(the_task_cancelled_cancels_the_map) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "map_interrupted",
                   .workers = 1, .max_workers = 1};
  bh_result *r;

  ASSERT_INT_EQ(marks_open(), 0);
  ASSERT_INT_EQ(bh_run(&o, &r), BH_ECANCELLED);
  ASSERT_INT_EQ(bh_result_signal(r), SIGINT);
  ASSERT_INT_EQ(map_wait_rc, BH_ECANCELLED);
  ASSERT_STR_EQ(marks_read(), "");
  bh_result_free(r);
  return 0;
}

/* Runs q_map_misuse; *msg gets bh_task_errmsg's text (or NULL). */
static int
misuse(int chunk, int window, int order, const char *name, const char *fmt,
       char *msg, size_t len) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "map_misuse",
                   .workers = 1};
  bh_result *r;
  const char *m = NULL;
  size_t mlen = 0;
  int rc = 1;

  o.task_args = bh_value_pack(NULL, "[i i i s s b]", chunk, window, order,
                              name, fmt, 0);
  if (run_hive(&o, &r) == 0)
    bh_result_unpack(r, NULL, 0, "[i s#]", &rc, &m, &mlen);
  snprintf(msg, len, "%.*s", (int)(m ? mlen : 0), m ? m : "");
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  return rc;
}

TEST(empty_input_is_done_at_once) {
  char msg[256];

  ASSERT_INT_EQ(misuse(0, 0, 0, "sq", "[]", msg, sizeof(msg)), BH_EDONE);
  ASSERT_STR_EQ(msg, "");
  ASSERT_INT_EQ(misuse(100, 1, 1, "sq", "#I", msg, sizeof(msg)), BH_EDONE);
  return 0;
}

TEST(bad_options_are_refused_by_name) {
  static const struct {
    int chunk, window, order;
    const char *name, *fmt;
    int rc;
    const char *msg;
  } c[] = {
      {-2, 0, 0, "sq", "[]", BH_EINVAL,
       "bh_map_new: chunk -2 is out of range: it must be -1 or 0 (default "
       "1) or 1 to 1048576"},
      {BH_MAP_CHUNK_MAX + 1, 0, 0, "sq", "[]", BH_EINVAL,
       "bh_map_new: chunk 1048577 is out of range: it must be -1 or 0 "
       "(default 1) or 1 to 1048576"},
      {0, -2, 0, "sq", "[]", BH_EINVAL,
       "bh_map_new: window -2 is out of range: it must be -1 (no limit), 0 "
       "(default: 4096 items' worth) or at least 1"},
      {0, 0, 2, "sq", "[]", BH_EINVAL,
       "bh_map_new: order 2 is out of range: it must be BH_MAP_ORDERED (0) "
       "or BH_MAP_AS_COMPLETED (1)"},
      {0, 0, 0, "", "[]", BH_EINVAL, "bh_map_new: the task name is empty"},
      {0, 0, 0, "sq", "i", BH_EINVAL,
       "bh_map_new: the items must make an array, got int (\"i\")"},
      {0, 0, 0, "sq", "[x]", BH_EFORMAT,
       "bh_map_new: the items' format: unknown letter 'x' at 1"},
      {0, 0, 0, "sq", "[s#]", BH_EMSGSIZE,
       "bh_map_new: the items' format \"[s#]\": a str or bin of 4 GiB or "
       "more"},
  };
  char msg[256];
  size_t i;

  for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    ASSERT_INT_EQ(misuse(c[i].chunk, c[i].window, c[i].order, c[i].name,
                         c[i].fmt, msg, sizeof(msg)),
                  c[i].rc);
    ASSERT_STR_EQ(msg, c[i].msg);
  }
  return 0;
}

/* A handler that returns bh_map_new()'s code raises ValueError with the
 * message. */
TEST(returning_the_code_raises_its_message) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "map_misuse",
                   .workers = 1};
  bh_result *r;

  o.task_args = bh_value_pack(NULL, "[i i i s s b]", -2, 0, 0, "sq", "[]", 1);
  ASSERT_INT_EQ(bh_run(&o, &r), BH_ERAISED);
  ASSERT_STR_EQ(bh_result_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_errmsg(r),
                "bh_map_new: chunk -2 is out of range: it must be -1 or 0 "
                "(default 1) or 1 to 1048576");
  bh_result_free(r);
  bh_value_free((bh_value *)o.task_args);
  return 0;
}

/* Many items in big chunks, squared: every value right, in order. */
TEST(many_items) {
  bh_value *items = range(20000);
  map_run mr = {.task = "sq", .chunk = 100, .workers = 2};
  bh_result *r = run_map(&mr, items, 20000);
  const msgpack_object *v;
  int64_t index, x;
  uint32_t i;
  int st;

  ASSERT(r != NULL);
  for (i = 0; i < 20000; i++) {
    ASSERT_INT_EQ(entry_fields(r, i, &index, &st, &v), 0);
    ASSERT_INT_EQ(bh_unpack(v, NULL, 0, "I", &x), 0);
    ASSERT(index == i && x == (int64_t)i * i);
  }
  bh_result_free(r);
  return 0;
}

TEST_MAIN(TEST_ENTRY(ordered_one_item_per_task),
          TEST_ENTRY(ordered_in_chunks),
          TEST_ENTRY(as_completed_one_item_per_task),
          TEST_ENTRY(as_completed_in_chunks),
          TEST_ENTRY(chunks_carry_k_items_per_task),
          TEST_ENTRY(window_bounds_tasks_in_flight),
          TEST_ENTRY(window_bounds_tasks_in_flight_as_completed),
          TEST_ENTRY(window_none_starts_every_chunk),
          TEST_ENTRY(a_failing_item_fails_alone),
          TEST_ENTRY(a_failing_item_fails_alone_unchunked),
          TEST_ENTRY(a_worker_dying_fails_its_chunk),
          TEST_ENTRY(results_holding_blobs),
          TEST_ENTRY_T(freeing_the_map_cancels_its_chunks, 20),
          TEST_ENTRY_T(freeing_the_map_cancels_its_chunks_as_completed, 20),
          TEST_ENTRY_T(a_chunk_deadline_cancels_its_items, 20),
          TEST_ENTRY_T(the_task_cancelled_cancels_the_map, 20),
          TEST_ENTRY(empty_input_is_done_at_once),
          TEST_ENTRY(bad_options_are_refused_by_name),
          TEST_ENTRY(returning_the_code_raises_its_message),
          TEST_ENTRY_T(many_items, 30))
