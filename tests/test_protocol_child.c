/* test_protocol_child.c - the bee protocol, exactly, from the child side
 * (bee.c): a real bee in this process is driven by a forked fake parent
 * that speaks raw frames (proto_fixture.h). */
#include "proto_fixture.h"

/* ------------------------------------------------------------------------
 * 10. The child side: a real bee in this process, driven by a forked fake
 * parent. */

static struct {
  int wake_fd;         /* what task "wait_fd" waits on */
  int running, max_running, completed;
} ts;

static int
t_echo(bh_task *t) {
  return bh_return(t, "[o o]", bh_task_args(t), bh_task_kwargs(t));
}

static int
t_fail(bh_task *t) {
  int n;

  if (bh_task_unpack(t, "[i]", &n) != 0)
    return BH_ERAISED;
  return bh_raise(t, "ValueError", "bad %d", n);
}

static int
t_cancel(bh_task *t) {
  bh_cancel_reason(t, "not today");
  return BH_ECANCELLED;
}

static int
t_wait_fd(bh_task *t) {
  char c;
  int rc = bh_wait_fd(t, ts.wake_fd, BH_READABLE, -1);

  if (rc != BH_READABLE || read(ts.wake_fd, &c, 1) != 1)
    return bh_raise(t, "OSError", "wait_fd: %d", rc);
  return bh_return(t, "s", "woke");
}

static int
t_sleepy(bh_task *t) {
  int rc;

  if (++ts.running > ts.max_running)
    ts.max_running = ts.running;
  rc = bh_sleep(t, 30);
  ts.running--;
  ts.completed++;
  return rc;
}

/* Answers with its first argument itself (not a copy of it). */
static int
t_first(bh_task *t) {
  const msgpack_object *a = bh_task_args(t);

  if (a->via.array.size < 1)
    return bh_raise(t, "TypeError", "first takes an argument");
  return bh_return_object(t, &a->via.array.ptr[0]);
}

/* Blocks the whole bee in read() until the driver writes a byte: a handler
 * that never yields. */
static int
t_block(bh_task *t) {
  char c;

  if (read(ts.wake_fd, &c, 1) != 1)
    return bh_raise(t, "OSError", "read: %s", strerror(errno));
  return bh_return(t, "s", "unblocked");
}

static const bh_task_def test_tasks[] = {
    {"echo", t_echo},       {"fail", t_fail},     {"cancel", t_cancel},
    {"wait_fd", t_wait_fd}, {"sleepy", t_sleepy}, {"block", t_block},
    {"first", t_first},     {NULL, NULL}};

static const bh_class test_class = {.name = "testbee", .tasks = test_tasks};

typedef struct cbee {
  uv_loop_t loop;
  bh_bee *bee;
  size_t live0;
  pid_t driver;
  bool orphaned;
} cbee;

static void
cbee_drained(bh__chan *c, void *udata) {
  bh_bee *bee = udata;

  (void)c;
  bh__chan_close(bee->parent);
  bee->parent = NULL;
}

/* Dead is queued: close the channel once it is out, so the loop ends. */
static void
cbee_dead(bh_bee *bee) {
  bh__chan_on_drained(bee->parent, cbee_drained);
}

static void
cbee_orphan(bh_bee *bee) {
  cbee *h = bee->owner;

  h->orphaned = true;
  uv_stop(bee->loop);
}

/* Forks the driver, then makes the bee (id 5) on the other end. */
static int
cbee_open(cbee *h, int max_conc, script_fn drv, void *arg, int *keep,
          int nkeep) {
  bh__bee_opts o = {.cls = &test_class, .id = 5, .max_conc = max_conc,
                    .on_dead = cbee_dead, .on_orphan = cbee_orphan,
                    .owner = h};
  char *err = NULL;
  fake f;
  int rc;

  signal(SIGPIPE, SIG_IGN);
  h->live0 = bh__alloc_live();
  h->orphaned = false;
  if (fake_fork(&f, drv, arg, keep, nkeep) != 0)
    return -1;
  h->driver = f.pid;
  if (uv_loop_init(&h->loop) != 0 || bh__turn_init(&h->loop) != 0)
    return -1;
  rc = bh__bee_new(&h->bee, &h->loop, f.fd, &o);
  if (rc == 0)
    rc = bh__bee_init(h->bee, NULL, NULL, &err);
  bh__free(err);
  return rc;
}

/* Runs the bee's life to its end; checks the driver's verdict. */
static int
cbee_run(cbee *h) {
  int st;

  run_all(&h->loop, &h->orphaned);
  ASSERT(!h->orphaned);
  ASSERT(h->bee->dead);
  while (waitpid(h->driver, &st, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fprintf(stderr, "driver: wstatus 0x%x\n", (unsigned)st);
  ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  bh__bee_free(h->bee);
  return loop_teardown(&h->loop, h->live0);
}

/* Sends task tid `name` with the [args, kwargs] that args_fmt packs, as
 * put frames it (task_info, or new_task carrying it: a direct offer). */
static int
send_call(peer *p, bh__wire_put_info_fn put, int64_t tid, const char *name,
          const char *args_fmt, va_list ap) {
  bh_value *v = fake_vpack(args_fmt, ap);
  bh__buf b = {0};
  const msgpack_object *o;
  int rc;

  if (v == NULL)
    return 1;
  o = bh_value_object(v);
  rc = send_buf(p, &b, put(&b, NULL, BH__DEFAULT_MAX_FRAME, tid, name,
                           &o->via.array.ptr[0], &o->via.array.ptr[1]));
  bh_value_free(v);
  return rc;
}

static int
send_info(peer *p, int64_t tid, const char *name, const char *args_fmt,
          ...) {
  va_list ap;
  int rc;

  va_start(ap, args_fmt);
  rc = send_call(p, bh__wire_put_task_info, tid, name, args_fmt, ap);
  va_end(ap);
  return rc;
}

/* Reads task_done for tid with `status` and exactly `nkeys` keys. */
static int
expect_done(peer *p, int64_t tid, bh_status status, uint32_t nkeys) {
  if (expect(p, BH__MSG_TASK_DONE, tid) != 0)
    return 1;
  CHECK(p->m.status == status && p->m.root->via.map.size == nkeys,
        "task_done %s", repr(p->m.root));
  return 0;
}

static int drv_basic_rest(peer *p);

/* Runs the bee with max_conc slots against the fake parent `drv`. */
static int
run_child(int max_conc, script_fn drv, void *arg) {
  cbee h;

  ASSERT_INT_EQ(cbee_open(&h, max_conc, drv, arg, NULL, 0), 0);
  return cbee_run(&h);
}

/* Succeeded, unknown task, raised; then drv_basic_rest(). */
static int
drv_basic(peer *p, void *arg) {
  const msgpack_object *tbk;

  (void)arg;
  if (offer(p, 7, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 7, "echo", "[[i s] {s:i}]", 1, "a", "x", 2) != 0 ||
      expect_done(p, 7, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "[[i s] {s:i}]", 1, "a", "x", 2), "echo");
  if (offer(p, 8, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 8, "nope", "[[] {}]") != 0 ||
      expect_done(p, 8, BH_RAISED, 6) != 0)
    return 1;
  CHECK(same(p->m.exception, "{s:s s:s}", "type", "AttributeError",
             "message", "Bee class 'testbee' has no task 'nope'."),
        "unknown task");
  tbk = p->m.traceback;
  CHECK(tbk->via.array.size >= 1 &&
            str_is(&tbk->via.array.ptr[tbk->via.array.size - 1],
                   "  in task 'nope' (id 8) of bee 5 (class testbee)"),
        "traceback %s", repr(tbk));
  if (offer(p, 9, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 9, "fail", "[[i] {}]", 3) != 0 ||
      expect_done(p, 9, BH_RAISED, 6) != 0)
    return 1;
  CHECK(same(p->m.exception, "{s:s s:s}", "type", "ValueError", "message",
             "bad 3"), "raised");
  return drv_basic_rest(p);
}

/* Cancelled, ids held twice, task_taken, busy_status, die. */
static int
drv_basic_rest(peer *p) {
  if (offer(p, 10, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 10, "cancel", "[[] {}]") != 0 ||
      expect_done(p, 10, BH_CANCELLED, 4) != 0)
    return 1;
  CHECK(str_is(p->m.reason, "not today"), "reason %s", repr(p->m.reason));
  /* The same id offered while held is denied, and task_taken frees it. */
  if (offer(p, 20, BH__MSG_TASK_ACCEPTED) != 0 ||
      offer(p, 20, BH__MSG_TASK_DENIED) != 0 ||
      send_simple(p, BH__MSG_TASK_TAKEN, 20) != 0 ||
      offer(p, 20, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 20, "busy_status", "[[] {}]") != 0 ||
      expect_done(p, 20, BH_SUCCEEDED, 4) != 0)
    return 1;
  /* Alone on the bee: busy_status does not count itself. */
  CHECK(same(p->m.returning_value, "f", 0.0), "busy_status");
  if (send_map(p, "{s:s}", "msg_type", "die") != 0)
    return 1;
  return expect_dead(p, DIE_CODE);
}

TEST(child_basic) {
  return run_child(4, drv_basic, NULL);
}

static int
drv_one_slot(peer *p, void *arg) {
  (void)arg;
  if (offer(p, 1, BH__MSG_TASK_ACCEPTED) != 0 ||
      offer(p, 2, BH__MSG_TASK_DENIED) != 0 ||
      send_simple(p, BH__MSG_TASK_TAKEN, 1) != 0 ||
      offer(p, 3, BH__MSG_TASK_ACCEPTED) != 0 ||
      offer(p, 4, BH__MSG_TASK_DENIED) != 0 ||
      send_info(p, 3, "echo", "[[i] {}]", 3) != 0 ||
      expect_done(p, 3, BH_SUCCEEDED, 4) != 0 ||
      offer(p, 4, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_simple(p, BH__MSG_TASK_TAKEN, 4) != 0 ||
      send_map(p, "{s:s}", "msg_type", "die") != 0)
    return 1;
  return expect_dead(p, DIE_CODE);
}

TEST(child_one_slot) {
  return run_child(1, drv_one_slot, NULL);
}

static int
drv_bogus(peer *p, void *arg) {
  const char *type = arg;
  char want[96];

  if (send_map(p, "{s:s s:i}", "msg_type", type, "task_id", 1) != 0)
    return 1;
  snprintf(want, sizeof(want), "Unknown message with type '%s'.", type);
  return expect_dead(p, want);
}

TEST(child_unknown_type) {
  return run_child(4, drv_bogus, (void *)"bogus");
}

/* A child-to-parent type sent downward is unknown to a child too. */
TEST(child_wrong_way_type) {
  cbee h;

  ASSERT_INT_EQ(cbee_open(&h, 4, drv_bogus, (void *)"task_accepted", NULL,
                          0), 0);
  return cbee_run(&h);
}

static int
drv_info_unaccepted(peer *p, void *arg) {
  (void)arg;
  if (send_info(p, 5, "echo", "[[] {}]") != 0)
    return 1;
  return expect_dead(p, "Protocol error: task_info for task 5, which was "
                        "not accepted.");
}

TEST(child_info_unaccepted) {
  return run_child(4, drv_info_unaccepted, NULL);
}

/* die: the bee denies new offers, finishes what it accepted (task 1 runs,
 * task 2 has not had its info yet), and only then says dead. */
static int
drv_die(peer *p, void *arg) {
  int wake = *(int *)arg;

  if (offer(p, 1, BH__MSG_TASK_ACCEPTED) != 0 ||
      offer(p, 2, BH__MSG_TASK_ACCEPTED) != 0 ||
      send_info(p, 1, "wait_fd", "[[] {}]") != 0 ||
      send_map(p, "{s:s}", "msg_type", "die") != 0 ||
      offer(p, 3, BH__MSG_TASK_DENIED) != 0 ||
      send_info(p, 2, "echo", "[[i] {}]", 2) != 0 ||
      expect_done(p, 2, BH_SUCCEEDED, 4) != 0 || signal_fd(wake) != 0 ||
      expect_done(p, 1, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "s", "woke"), "wait_fd");
  return expect_dead(p, DIE_CODE);
}

/* Runs the bee with max_conc slots against the fake parent `drv`, which
 * gets the write end of a pipe that wakes the bee's wait_fd task. */
static int
run_woken(int max_conc, script_fn drv) {
  int wake[2];
  cbee h;

  ASSERT(pipe(wake) == 0);
  ts.wake_fd = wake[0];
  ASSERT_INT_EQ(cbee_open(&h, max_conc, drv, &wake[1], &wake[1], 1), 0);
  close(wake[1]);
  ASSERT_INT_EQ(cbee_run(&h), 0);
  close(wake[0]);
  return 0;
}

TEST(child_die_waits_for_work) {
  return run_woken(4, drv_die);
}

/* Direct offers to a child (PROTOCOL.md section 5.1): new_task carrying
 * the info starts the task at once, and task_accepted {started: true}
 * leaves before the handler runs: here the handler blocks the whole bee
 * until the driver has read that answer. A direct offer the bee has no
 * room for is denied and nothing starts. */
static int
direct(peer *p, int64_t tid, const char *name, const char *args_fmt, ...) {
  va_list ap;
  int rc;

  va_start(ap, args_fmt);
  rc = send_call(p, bh__wire_put_direct_offer, tid, name, args_fmt, ap);
  va_end(ap);
  return rc;
}

static int
expect_started(peer *p, int64_t tid) {
  if (expect(p, BH__MSG_TASK_ACCEPTED, tid) != 0)
    return 1;
  CHECK(p->m.started && same(p->m.root, "{s:s s:I s:b}", "msg_type",
                             "task_accepted", "task_id", tid, "started", 1),
        "accepted %s", repr(p->m.root));
  return 0;
}

static int
drv_direct(peer *p, void *arg) {
  int wake = *(int *)arg;

  if (direct(p, 30, "block", "[[] {}]") != 0 || expect_started(p, 30) != 0 ||
      signal_fd(wake) != 0 || expect_done(p, 30, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "s", "unblocked"), "block");
  if (direct(p, 31, "echo", "[[i s] {s:i}]", 1, "a", "x", 2) != 0 ||
      expect_started(p, 31) != 0 || expect_done(p, 31, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "[[i s] {s:i}]", 1, "a", "x", 2), "echo");
  if (direct(p, 34, "first", "[[{s:[i i]} i] {}]", "kept", 5, 6, 7) != 0 ||
      expect_started(p, 34) != 0 || expect_done(p, 34, BH_SUCCEEDED, 4) != 0)
    return 1;
  CHECK(same(p->m.returning_value, "{s:[i i]}", "kept", 5, 6), "first");
  /* One slot: held by wait_fd, so the next direct offer is denied. */
  if (direct(p, 32, "wait_fd", "[[] {}]") != 0 ||
      expect_started(p, 32) != 0 ||
      direct(p, 33, "echo", "[[i] {}]", 3) != 0 ||
      expect(p, BH__MSG_TASK_DENIED, 33) != 0 || signal_fd(wake) != 0 ||
      expect_done(p, 32, BH_SUCCEEDED, 4) != 0 ||
      send_map(p, "{s:s}", "msg_type", "die") != 0)
    return 1;
  return expect_dead(p, DIE_CODE);
}

TEST(child_direct_offer) {
  return run_woken(1, drv_direct);
}

/* max_concurrency is a real limit: 10 offers to a bee of 3; denied ones
 * are offered again as slots free up. The tasks count how many run. */
#define OFFERS 10

static int
conc_answer(peer *p, int *state, int *accepted) {
  int64_t id = p->m.task_id;

  CHECK(id >= 0 && id < OFFERS, "task id %lld", (long long)id);
  if (p->m.type == BH__MSG_TASK_ACCEPTED) {
    CHECK(state[id] == 1, "accepted %lld", (long long)id);
    state[id] = 2;
    ++*accepted;
    return send_info(p, id, "sleepy", "[[] {}]");
  }
  if (p->m.type == BH__MSG_TASK_DENIED) {
    CHECK(state[id] == 1, "denied %lld", (long long)id);
    state[id] = 0;
    return 0;
  }
  CHECK(p->m.type == BH__MSG_TASK_DONE && state[id] == 2 &&
            p->m.status == BH_SUCCEEDED,
        "unexpected %s", repr(p->m.root));
  state[id] = 3;
  for (id = 0; id < OFFERS && state[id] != 0; id++)
    ;
  if (id == OFFERS)
    return 0;
  state[id] = 1;
  return send_simple(p, BH__MSG_NEW_TASK, id);
}

/* Offers all OFFERS tasks at once: the bee must accept exactly the first
 * 3 and deny the rest, before any task_info is sent. */
static int
conc_burst(peer *p, int *state) {
  int i, accepted = 0;

  for (i = 0; i < OFFERS; i++) {
    state[i] = 1;
    if (send_simple(p, BH__MSG_NEW_TASK, i) != 0)
      return 1;
  }
  for (i = 0; i < OFFERS; i++) {
    if (peer_recv(p) != 0)
      return 1;
    CHECK(p->m.task_id == i && p->m.type == (i < 3 ? BH__MSG_TASK_ACCEPTED
                                                   : BH__MSG_TASK_DENIED),
          "answer %d to the burst: %s", i, repr(p->m.root));
    state[i] = i < 3 ? 2 : 0;
    accepted += i < 3;
  }
  for (i = 0; i < accepted; i++)
    if (send_info(p, i, "sleepy", "[[] {}]") != 0)
      return 1;
  return 0;
}

static int
drv_concurrency(peer *p, void *arg) {
  int state[OFFERS] = {0}, i, done = 0, accepted = 3, busy;

  (void)arg;
  if (conc_burst(p, state) != 0)
    return 1;
  while (done < OFFERS) {
    if (peer_recv(p) != 0 || conc_answer(p, state, &accepted) != 0)
      return 1;
    for (i = done = busy = 0; i < OFFERS; i++)
      done += state[i] == 3, busy += state[i] == 1 || state[i] == 2;
    CHECK(busy > 0 || done == OFFERS, "stalled: nothing offered or running");
  }
  CHECK(accepted == OFFERS, "%d accepted", accepted);
  if (send_map(p, "{s:s}", "msg_type", "die") != 0)
    return 1;
  return expect_dead(p, DIE_CODE);
}

TEST(child_max_concurrency) {
  cbee h;

  ASSERT_INT_EQ(cbee_open(&h, 3, drv_concurrency, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(cbee_run(&h), 0);
  ASSERT_INT_EQ(ts.completed, OFFERS);
  ASSERT_INT_EQ(ts.max_running, 3);
  return 0;
}

TEST_MAIN(TEST_ENTRY(child_basic),
          TEST_ENTRY(child_one_slot),
          TEST_ENTRY(child_unknown_type),
          TEST_ENTRY(child_wrong_way_type),
          TEST_ENTRY(child_info_unaccepted),
          TEST_ENTRY(child_die_waits_for_work),
          TEST_ENTRY(child_direct_offer),
          TEST_ENTRY(child_max_concurrency))
