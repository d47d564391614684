/* test_protocol.c - the bee protocol, exactly, from the delegating side
 * (deleg.c, child.c): a root bee in this process delegates from a local
 * task to forked fake children that speak raw frames (proto_fixture.h).
 * The child side is in test_protocol_child.c. */
#include "proto_fixture.h"

/* ------------------------------------------------------------------------
 * 1. One child accepts, gets task_info intact, answers succeeded. */

#define ECHO_ARGS "[i s [f n]] {s:s s:i}"
#define ECHO_VALS 1, "two", 3.5, "k", "v", "n", -7

static int
fk_echo(peer *p, void *arg) {
  (void)arg;
  if (take(p, 0, "echo") != 0)
    return 1;
  CHECK(same(p->m.args, "[i s [f n]]", 1, "two", 3.5), "args changed");
  CHECK(same(p->m.kwargs, "{s:s s:i}", "k", "v", "n", -7), "kwargs changed");
  if (send_map(p, "{s:s s:I s:s s:[o o]}", "msg_type", "task_done",
               "task_id", (int64_t)0, "status", "succeeded",
               "returning_value", p->m.args, p->m.kwargs) != 0)
    return 1;
  /* Task ids count from 0; no arguments travel as [] and {}. */
  if (take(p, 1, "noargs") != 0)
    return 1;
  CHECK(same(p->m.args, "[]") && same(p->m.kwargs, "{}"), "no arguments");
  if (send_done_value(p, 1, "s", "fine") != 0)
    return 1;
  return fake_finish(p);
}

static int
root_echo(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "echo", ECHO_ARGS, ECHO_VALS), 0);
  ASSERT_INT_EQ(bh_result_status(r), BH_SUCCEEDED);
  ASSERT_INT_EQ(bh_result_child_id(r), 0);
  ASSERT(bh_result_errtype(r) == NULL && bh_result_reason(r) == NULL);
  ASSERT(same(bh_result_value(r), "[" ECHO_ARGS "]", ECHO_VALS));
  bh_result_free(r);
  ASSERT_INT_EQ(bh_delegate(t, &r, "noargs", NULL), 0);
  ASSERT(same(bh_result_value(r), "s", "fine"));
  bh_result_free(r);
  return 0;
}

TEST(deleg_succeeded) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_echo, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_echo, NULL), 0);
  ASSERT(fake_exited(&f, 0));
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 2. Two children accept the same offer: the first gets task_info, the
 * late one task_taken. Child 1 accepts first; child 0 accepts only once
 * child 1 holds the task_info, and child 1 answers only once child 0 has
 * its task_taken. */

typedef struct duel {
  int go_late[2];   /* first -> late: "I have the task_info" */
  int late_done[2]; /* late -> first: "I have my task_taken" */
} duel;

static int
fk_first(peer *p, void *arg) {
  duel *d = arg;

  if (take(p, 0, "job") != 0 || signal_fd(d->go_late[1]) != 0 ||
      wait_fd_byte(d->late_done[0]) != 0 ||
      send_done_value(p, 0, "s", "first") != 0)
    return 1;
  return fake_finish(p);
}

static int
fk_late(peer *p, void *arg) {
  duel *d = arg;

  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 ||
      wait_fd_byte(d->go_late[0]) != 0 ||
      send_simple(p, BH__MSG_TASK_ACCEPTED, 0) != 0 ||
      expect(p, BH__MSG_TASK_TAKEN, 0) != 0)
    return 1;
  CHECK(p->m.root->via.map.size == 2, "task_taken %s", repr(p->m.root));
  if (signal_fd(d->late_done[1]) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_duel(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), 0);
  ASSERT_INT_EQ(bh_result_child_id(r), 1);
  ASSERT(same(bh_result_value(r), "s", "first"));
  bh_result_free(r);
  return 0;
}

TEST(deleg_first_accepter_wins) {
  duel d;
  fake late, first;
  int kl[2], kf[2];
  hive h;

  ASSERT(pipe(d.go_late) == 0 && pipe(d.late_done) == 0);
  kl[0] = d.go_late[0], kl[1] = d.late_done[1];
  kf[0] = d.go_late[1], kf[1] = d.late_done[0];
  ASSERT_INT_EQ(fake_fork(&late, fk_late, &d, kl, 2), 0);
  ASSERT_INT_EQ(fake_fork(&first, fk_first, &d, kf, 2), 0);
  close(d.go_late[0]), close(d.go_late[1]);
  close(d.late_done[0]), close(d.late_done[1]);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  h.bee->direct_offers = false; /* the reference's offers, to everyone */
  ASSERT_INT_EQ(hive_adopt(&h, &late, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &first, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_duel, NULL), 0);
  ASSERT(fake_exited(&late, 0) && fake_exited(&first, 0));
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 3. Every candidate denies; with no child at all it is the same. */

static int
fk_deny(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 ||
      send_simple(p, BH__MSG_TASK_DENIED, 0) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_denied(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", "[i]", 1), BH_ECANCELLED);
  ASSERT_INT_EQ(bh_result_status(r), BH_CANCELLED);
  ASSERT_STR_EQ(bh_result_reason(r), "Every child bee has denied the task.");
  ASSERT_INT_EQ(bh_result_child_id(r), -1);
  ASSERT(same(bh_result_message(r), "{s:s s:s}", "status", "cancelled",
              "reason", "Every child bee has denied the task."));
  bh_result_free(r);
  return 0;
}

/* Both deny: with direct offers (the default) one after the other, the
 * reference's way both at once. */
static int
all_denied(bool direct) {
  fake a, b;
  hive h;

  ASSERT_INT_EQ(fake_fork(&a, fk_deny, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(fake_fork(&b, fk_deny, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  h.bee->direct_offers = direct;
  ASSERT_INT_EQ(hive_adopt(&h, &a, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &b, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_denied, NULL), 0);
  ASSERT(fake_exited(&a, 0) && fake_exited(&b, 0));
  return hive_close(&h);
}

TEST(deleg_all_denied) {
  return all_denied(true);
}

TEST(deleg_all_denied_plain) {
  return all_denied(false);
}

/* A denied direct offer passes on to the next child with room, which
 * takes it from the offer alone. */
static int
fk_deny_direct(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0)
    return 1;
  CHECK(p->m.name != NULL, "a direct offer expected: %s", repr(p->m.root));
  if (send_simple(p, BH__MSG_TASK_DENIED, 0) != 0)
    return 1;
  return fake_finish(p);
}

static int
fk_start_direct(peer *p, void *arg) {
  const char *answer = arg;

  if (expect(p, BH__MSG_NEW_TASK, -1) != 0)
    return 1;
  CHECK(p->m.name != NULL && p->m.name_len == 3 &&
            memcmp(p->m.name, "job", 3) == 0,
        "a direct offer of job expected: %s", repr(p->m.root));
  if (send_map(p, "{s:s s:I s:b}", "msg_type", "task_accepted", "task_id",
               p->m.task_id, "started", 1) != 0 ||
      send_done_value(p, p->m.task_id, "s", answer) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_passed_on(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), 0);
  ASSERT_INT_EQ(bh_result_child_id(r), 1);
  ASSERT(same(bh_result_value(r), "s", "second"));
  bh_result_free(r);
  return 0;
}

TEST(deleg_denied_direct_offer_passes_on) {
  fake a, b;
  hive h;

  ASSERT_INT_EQ(fake_fork(&a, fk_deny_direct, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(fake_fork(&b, fk_start_direct, (void *)"second", NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &a, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &b, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_passed_on, NULL), 0);
  ASSERT(fake_exited(&a, 0) && fake_exited(&b, 0));
  return hive_close(&h);
}

/* Two tasks at once, two children with room: each gets one task, by a
 * direct offer (each fake takes exactly one offer, then expects die). */
static int
root_two_at_once(bh_task *t, void *arg) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int seen[2] = {0, 0}, i;

  (void)arg;
  ASSERT(g != NULL);
  ASSERT_INT_EQ(bh_group_delegate(g, NULL, NULL, "job", NULL), 0);
  ASSERT_INT_EQ(bh_group_delegate(g, NULL, NULL, "job", NULL), 0);
  for (i = 0; i < 2; i++) {
    int64_t id;

    ASSERT_INT_EQ(bh_group_next(g, &f, -1), 0);
    ASSERT_INT_EQ(bh_result_status(bh_future_result(f)), BH_SUCCEEDED);
    id = bh_result_child_id(bh_future_result(f));
    ASSERT(id == 0 || id == 1);
    seen[id]++;
    bh_future_free(f);
  }
  ASSERT(seen[0] == 1 && seen[1] == 1);
  bh_group_free(g);
  return 0;
}

TEST(deleg_direct_offers_spread_over_children) {
  fake a, b;
  hive h;

  ASSERT_INT_EQ(fake_fork(&a, fk_start_direct, (void *)"a", NULL, 0), 0);
  ASSERT_INT_EQ(fake_fork(&b, fk_start_direct, (void *)"b", NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &a, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &b, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_two_at_once, NULL), 0);
  ASSERT(fake_exited(&a, 0) && fake_exited(&b, 0));
  return hive_close(&h);
}

TEST(deleg_no_children) {
  hive h;

  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_run(&h, root_denied, NULL), 0);
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 4. Nobody answers within the pickup timeout. The child then accepts
 * late and must be told task_taken. */

typedef struct slow {
  int go[2];   /* root -> fake: "the timeout has passed" */
  int done[2]; /* fake -> root: "I have my task_taken" */
} slow;

static int
fk_slow(peer *p, void *arg) {
  slow *s = arg;

  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 || wait_fd_byte(s->go[0]) != 0 ||
      send_simple(p, BH__MSG_TASK_ACCEPTED, 0) != 0 ||
      expect(p, BH__MSG_TASK_TAKEN, 0) != 0 || signal_fd(s->done[1]) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_slow(bh_task *t, void *arg) {
  slow *s = arg;
  int64_t t0 = bh_now(), dt;
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), BH_ECANCELLED);
  dt = bh_now() - t0;
  ASSERT_INT_EQ(bh_result_status(r), BH_CANCELLED);
  ASSERT_STR_EQ(bh_result_reason(r),
                "No child bee has picked up the task for 200 ms.");
  ASSERT_INT_EQ(bh_result_child_id(r), -1);
  bh_result_free(r);
  if (dt < 200 || dt > 2000)
    fprintf(stderr, "cancelled after %lld ms\n", (long long)dt);
  ASSERT(dt >= 200 && dt <= 2000);
  ASSERT(signal_fd(s->go[1]) == 0);
  ASSERT(bh_wait_fd(t, s->done[0], BH_READABLE, bh_now() + 3000) ==
         BH_READABLE);
  return wait_fd_byte(s->done[0]);
}

TEST(deleg_pickup_timeout) {
  slow s;
  fake f;
  int keep[2];
  hive h;

  ASSERT(pipe(s.go) == 0 && pipe(s.done) == 0);
  keep[0] = s.go[0], keep[1] = s.done[1];
  ASSERT_INT_EQ(fake_fork(&f, fk_slow, &s, keep, 2), 0);
  close(s.go[0]), close(s.done[1]);
  ASSERT_INT_EQ(hive_open(&h, 200), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_slow, &s), 0);
  ASSERT(fake_exited(&f, 0));
  close(s.go[1]), close(s.done[0]);
  return hive_close(&h);
}

/* pickup_timeout_ms -1 (BH_NONE): never. The offer arms no pickup timer
 * (with 200 ms above, it is armed at once), and a late accepter still
 * gets the task. */
static int
fk_accepts_late(peer *p, void *arg) {
  slow *s = arg;

  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 || wait_fd_byte(s->go[0]) != 0 ||
      send_simple(p, BH__MSG_TASK_ACCEPTED, 0) != 0 ||
      expect_info(p, 0, "job") != 0 || send_done_value(p, 0, "s", "late") != 0)
    return 1;
  return fake_finish(p);
}

static int
root_never(bh_task *t, void *arg) {
  slow *s = arg;
  bh_group *g = bh_group_new(t);
  bh_future *f;

  ASSERT_INT_EQ(bh_group_delegate(g, &f, NULL, "job", NULL), 0);
  /* Offered at once: the only child has room. */
  ASSERT(!uv_is_active((uv_handle_t *)&t->bee->pickup_timer));
  ASSERT(signal_fd(s->go[1]) == 0);
  ASSERT_INT_EQ(bh_future_wait(f, -1), 0);
  ASSERT_INT_EQ(bh_result_status(bh_future_result(f)), BH_SUCCEEDED);
  ASSERT(same(bh_result_value(bh_future_result(f)), "s", "late"));
  bh_future_free(f);
  bh_group_free(g);
  return 0;
}

TEST(deleg_pickup_never) {
  slow s;
  fake f;
  int keep[1];
  hive h;

  ASSERT(pipe(s.go) == 0);
  keep[0] = s.go[0];
  ASSERT_INT_EQ(fake_fork(&f, fk_accepts_late, &s, keep, 1), 0);
  close(s.go[0]);
  ASSERT_INT_EQ(hive_open(&h, BH_NONE), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_never, &s), 0);
  ASSERT(fake_exited(&f, 0));
  close(s.go[1]);
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 5, 6. The child answers raised or cancelled. Child 0 denies, so the
 * work goes to child 1 and the ids in the result are not zero by luck. */

static int
fk_raise(peer *p, void *arg) {
  bh__wire_done d = {.status = BH_RAISED};
  bh_value *exc, *tb, *det;
  bh__buf b = {0};
  int rc;

  (void)arg;
  if (take(p, 0, "boom") != 0)
    return 1;
  exc = bh_value_pack(NULL, "{s:s s:s}", "type", "ValueError", "message",
                      "bad");
  tb = bh_value_pack(NULL, "[s s]", "  File \"w.py\", line 3, in boom",
                     "  in task 'boom'");
  det = bh_value_pack(NULL, "{s:i}", "hint", 42);
  d.exception = bh_value_object(exc);
  d.traceback = bh_value_object(tb);
  d.other_details = bh_value_object(det);
  rc = send_buf(p, &b, bh__wire_put_task_done(&b, NULL, BH__DEFAULT_MAX_FRAME, 0,
                                              &d));
  bh_value_free(exc), bh_value_free(tb), bh_value_free(det);
  return rc != 0 ? rc : fake_finish(p);
}

static int
root_raised(bh_task *t, void *arg) {
  const msgpack_object *det;
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "boom", NULL), BH_ERAISED);
  ASSERT_INT_EQ(bh_result_status(r), BH_RAISED);
  ASSERT_INT_EQ(bh_result_child_id(r), 1);
  ASSERT_STR_EQ(bh_result_errtype(r), "RuntimeError");
  ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task raised an exception.");
  ASSERT_STR_EQ(bh_result_root_errtype(r), "ValueError");
  ASSERT_STR_EQ(bh_result_root_errmsg(r), "bad");
  ASSERT(bh_result_reason(r) == NULL);
  ASSERT(same(dig(bh_result_message(r), "traceback", NULL), "[s]",
              "  in delegation of task 'boom' (id 0) by bee 0 to child bee "
              "1"));
  ASSERT((det = details_of(r, 1)) != NULL);
  ASSERT(same(bh__map_get(det, "cause"),
              "{s:s s:i s:s s:{s:s s:s} s:[s s] s:{s:i}}", "msg_type",
              "task_done", "task_id", 0, "status", "raised", "exception",
              "type", "ValueError", "message", "bad", "traceback",
              "  File \"w.py\", line 3, in boom", "  in task 'boom'",
              "other_details", "hint", 42));
  bh_result_free(r);
  return 0;
}

static int
fk_deny_then_finish(peer *p, void *arg) {
  int64_t i, n = arg ? *(int64_t *)arg : 1;

  for (i = 0; i < n; i++)
    if (expect(p, BH__MSG_NEW_TASK, i) != 0 ||
        send_simple(p, BH__MSG_TASK_DENIED, i) != 0)
      return 1;
  return fake_finish(p);
}

/* Runs root with child 0 denying `ndeny` offers and child 1 scripted. */
static int
run_pair(script_fn worker, int64_t ndeny, root_fn root) {
  fake a, b;
  hive h;

  ASSERT_INT_EQ(fake_fork(&a, fk_deny_then_finish, &ndeny, NULL, 0), 0);
  ASSERT_INT_EQ(fake_fork(&b, worker, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &a, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &b, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root, NULL), 0);
  ASSERT(fake_exited(&a, 0) && fake_exited(&b, 0));
  return hive_close(&h);
}

TEST(deleg_child_raised) {
  return run_pair(fk_raise, 1, root_raised);
}

static int
fk_cancel(peer *p, void *arg) {
  (void)arg;
  if (take(p, 0, "c") != 0 || send_done_cancelled(p, 0, "x") != 0 ||
      take(p, 1, "c") != 0 || send_done_cancelled(p, 1, NULL) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_cancelled(bh_task *t, void *arg) {
  const msgpack_object *det;
  bh_result *r;
  int i;

  (void)arg;
  for (i = 0; i < 2; i++) {
    ASSERT_INT_EQ(bh_delegate(t, &r, "c", NULL), BH_ERAISED);
    ASSERT_INT_EQ(bh_result_status(r), BH_RAISED);
    ASSERT_INT_EQ(bh_result_child_id(r), 1);
    ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task has been cancelled.");
    ASSERT(bh_result_reason(r) == NULL);
    ASSERT((det = details_of(r, 1)) != NULL);
    if (i == 0)
      ASSERT(same(det, "{s:i s:s}", "child_id", 1, "reason", "x"));
    else
      ASSERT(same(det, "{s:i s:n}", "child_id", 1, "reason"));
    bh_result_free(r);
  }
  return 0;
}

TEST(deleg_child_cancelled) {
  return run_pair(fk_cancel, 2, root_cancelled);
}

/* ------------------------------------------------------------------------
 * 7. The child dies while the task runs. */

enum death { EXIT_7, SIGKILLED, LAST_WISH };

static int
fk_die(peer *p, void *arg) {
  enum death how = *(enum death *)arg;
  bh__buf b = {0};
  bh_value *exc, *tb;
  int rc;

  if (take(p, 0, "doomed") != 0)
    return 1;
  if (how == EXIT_7)
    _exit(7);
  if (how == SIGKILLED)
    raise(SIGKILL);
  exc = bh_value_pack(NULL, "{s:s s:s}", "type", "MemoryError", "message",
                      "boom");
  tb = bh_value_pack(NULL, "[s]", "  in the life of bee 0");
  rc = send_buf(p, &b, bh__wire_put_dead_killed(&b, BH__DEFAULT_MAX_FRAME,
                                                bh_value_object(exc),
                                                bh_value_object(tb)));
  bh_value_free(exc), bh_value_free(tb);
  return rc;
}

static int
root_died(bh_task *t, void *arg) {
  enum death how = *(enum death *)arg;
  const msgpack_object *cause;
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, &r, "doomed", NULL), BH_ERAISED);
  ASSERT_INT_EQ(bh_result_child_id(r), 0);
  ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task cancelled as the "
                "delegated bee has been killed.");
  ASSERT((cause = bh__map_get(details_of(r, 0), "cause")) != NULL);
  if (how == LAST_WISH) {
    ASSERT(same(cause, "{s:s s:s s:{s:s s:s} s:[s]}", "msg_type", "dead",
                "death_type", "killed", "exception", "type", "MemoryError",
                "message", "boom", "traceback", "  in the life of bee 0"));
    ASSERT_STR_EQ(bh_result_root_errmsg(r), "boom");
  } else {
    ASSERT(str_is(dig(cause, "msg_type", NULL), "dead"));
    ASSERT(str_is(dig(cause, "death_type", NULL), "killed"));
    ASSERT(str_has(dig(cause, "exception", "message", NULL),
                   "Child bee id 0 has died without sending a last wish"));
    ASSERT(str_has(dig(cause, "exception", "message", NULL),
                   how == EXIT_7 ? "exited with status 7"
                                 : "killed by signal SIGKILL"));
    ASSERT_STR_EQ(bh_result_root_errtype(r), "BeeDied");
  }
  bh_result_free(r);
  ASSERT_INT_EQ(bh_bee_children(t->bee), 0);
  return 0;
}

static int
run_death(enum death how) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_die, &how, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_died, &how), 0);
  if (how == SIGKILLED)
    ASSERT(fake_killed(&f, SIGKILL));
  else
    ASSERT(fake_exited(&f, how == EXIT_7 ? 7 : 0));
  return hive_close(&h);
}

TEST(deleg_child_exits) {
  return run_death(EXIT_7);
}

TEST(deleg_child_sigkilled) {
  return run_death(SIGKILLED);
}

TEST(deleg_child_last_wish) {
  return run_death(LAST_WISH);
}

/* A child that dies holding an unanswered offer counts as a denial: the
 * delegation ends at once, not at the pickup timeout. */
static int
fk_die_on_offer(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0)
    return 1;
  _exit(0);
}

TEST(deleg_child_dies_holding_offer) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_die_on_offer, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_denied, NULL), 0);
  ASSERT(fake_exited(&f, 0));
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 8. A child breaks the protocol while running task 0: it is killed and
 * mourned, task 0 comes back as killed with the protocol error as the
 * cause, and the healthy child 1 takes task 1. */

typedef struct breach {
  const char *name;
  const char *why; /* what the cause's message must contain */
} breach;

static const breach breaches[] = {
    {"garbage", "protocol error: frame does not hold exactly one msgpack "
                "value"},
    {"oversize", "protocol error: frame of 4294967295 bytes exceeds the "
                 "limit"},
    {"bogus", "protocol error: Unknown message with type 'bogus'."},
    {"wrong_way", "protocol error: Unknown message with type 'new_task'."},
    {"done_unknown", "protocol error: task_done for task 99, which was not "
                     "asked of child bee 0"},
    {"accept_unoffered", "protocol error: task_accepted for task 5, which "
                         "was not asked of child bee 0"},
    {"accept_twice", "protocol error: task_accepted for task 0, which was "
                     "not asked of child bee 0"},
    {"wrong_types", "protocol error: task_done: field 'task_id' must be "
                    "int"},
    {"truncated", "protocol error: the channel ended inside a frame"},
};

static int
send_breach(peer *p, const char *name) {
  static const unsigned char junk[] = {0, 0, 0, 3, 0xc1, 0xc1, 0xc1};
  static const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 0x80};

  if (strcmp(name, "garbage") == 0)
    return send_raw(p, junk, sizeof(junk));
  if (strcmp(name, "oversize") == 0)
    return send_raw(p, huge, sizeof(huge));
  if (strcmp(name, "bogus") == 0)
    return send_map(p, "{s:s s:i}", "msg_type", "bogus", "task_id", 0);
  if (strcmp(name, "wrong_way") == 0)
    return send_simple(p, BH__MSG_NEW_TASK, 0);
  if (strcmp(name, "done_unknown") == 0)
    return send_done_value(p, 99, "n");
  if (strcmp(name, "accept_unoffered") == 0)
    return send_simple(p, BH__MSG_TASK_ACCEPTED, 5);
  if (strcmp(name, "wrong_types") == 0)
    return send_map(p, "{s:s s:s s:s}", "msg_type", "task_done", "task_id",
                    "zero", "status", "succeeded");
  if (strcmp(name, "truncated") == 0) {
    /* A header announcing 10 bytes, 3 of them, then our end closes. */
    static const unsigned char part[] = {0, 0, 0, 10, 0x82, 0xa8, 'm'};

    if (send_raw(p, part, sizeof(part)) != 0)
      return 1;
    return shutdown(p->fd, SHUT_WR);
  }
  return send_simple(p, BH__MSG_TASK_ACCEPTED, 0);
}

static int
fk_breach(peer *p, void *arg) {
  const breach *b = arg;

  if (take(p, 0, "t0") != 0 || send_breach(p, b->name) != 0)
    return 1;
  /* The bee kills us now; reading anything more is a failure. */
  if (peer_recv(p) == 0)
    return FAKE_FAIL("after the breach, got %s", repr(p->m.root));
  return 3;
}

static int
fk_healthy(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 ||
      send_simple(p, BH__MSG_TASK_DENIED, 0) != 0 || take(p, 1, "t1") != 0 ||
      send_done_value(p, 1, "s", "ok") != 0)
    return 1;
  return fake_finish(p);
}

static int
root_breach(bh_task *t, void *arg) {
  const breach *b = arg;
  const msgpack_object *cause;
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, &r, "t0", NULL), BH_ERAISED);
  ASSERT_INT_EQ(bh_result_child_id(r), 0);
  ASSERT_STR_EQ(bh_result_errmsg(r), "Delegated task cancelled as the "
                "delegated bee has been killed.");
  ASSERT((cause = bh__map_get(details_of(r, 0), "cause")) != NULL);
  if (!str_has(dig(cause, "exception", "message", NULL), b->why))
    fprintf(stderr, "cause %s lacks \"%s\"\n", repr(cause), b->why);
  ASSERT(str_has(dig(cause, "exception", "message", NULL), b->why));
  /* A cause that is a sentence ends the message once, not with "..". */
  ASSERT(!str_has(dig(cause, "exception", "message", NULL), ".."));
  bh_result_free(r);
  ASSERT_INT_EQ(bh_bee_children(t->bee), 1);
  ASSERT_INT_EQ(bh_delegate(t, &r, "t1", NULL), 0);
  ASSERT_INT_EQ(bh_result_child_id(r), 1);
  ASSERT(same(bh_result_value(r), "s", "ok"));
  bh_result_free(r);
  return 0;
}

static int
run_breach(const char *name) {
  const breach *b = NULL;
  fake bad, good;
  size_t i;
  hive h;

  for (i = 0; i < sizeof(breaches) / sizeof(breaches[0]); i++)
    if (strcmp(breaches[i].name, name) == 0)
      b = &breaches[i];
  ASSERT(b != NULL);
  ASSERT_INT_EQ(fake_fork(&bad, fk_breach, (void *)b, NULL, 0), 0);
  ASSERT_INT_EQ(fake_fork(&good, fk_healthy, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  h.bee->direct_offers = false; /* the reference's offers, to everyone */
  ASSERT_INT_EQ(hive_adopt(&h, &bad, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &good, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_breach, (void *)b), 0);
  ASSERT(fake_killed(&bad, SIGKILL));
  ASSERT(fake_exited(&good, 0));
  return hive_close(&h);
}

TEST(deleg_breach_garbage) {
  return run_breach("garbage");
}

TEST(deleg_breach_wrong_types) {
  return run_breach("wrong_types");
}

TEST(deleg_breach_truncated) {
  return run_breach("truncated");
}

TEST(deleg_breach_oversize) {
  return run_breach("oversize");
}

TEST(deleg_breach_unknown_type) {
  return run_breach("bogus");
}

TEST(deleg_breach_wrong_way) {
  return run_breach("wrong_way");
}

TEST(deleg_breach_done_unknown) {
  return run_breach("done_unknown");
}

TEST(deleg_breach_accept_unoffered) {
  return run_breach("accept_unoffered");
}

TEST(deleg_breach_accept_twice) {
  return run_breach("accept_twice");
}

/* ------------------------------------------------------------------------
 * 9. Capacity: a child of capacity 2 never holds more than 2 offers and
 * tasks; a burst of 5 waits in the backlog and goes out in order. The
 * fake keeps at most 2 in hand: it reads until it holds 2 (or all 5 came),
 * then accepts the oldest offer, or finishes the oldest task. */

#define BURST 5

typedef struct hand {
  int64_t order[BURST]; /* task ids in the order offered */
  int state[BURST];     /* 0 none, 1 offered, 2 accepted, 3 info, 4 done */
  int offered, held, max_held, done;
} hand;

static int
hand_take(hand *k, peer *p) {
  int64_t id = p->m.task_id;

  CHECK(id >= 0 && id < BURST, "task id %lld", (long long)id);
  if (p->m.type == BH__MSG_NEW_TASK) {
    CHECK(k->state[id] == 0, "task %lld offered twice", (long long)id);
    k->order[k->offered++] = id;
    k->state[id] = 1;
    k->held++;
  } else {
    CHECK(p->m.type == BH__MSG_TASK_INFO && k->state[id] == 2,
          "unexpected %s", repr(p->m.root));
    CHECK(same(p->m.args, "[I]", id), "args of task %lld", (long long)id);
    k->state[id] = 3;
  }
  CHECK(k->held <= 2, "%d offers and tasks in hand, capacity 2", k->held);
  if (k->held > k->max_held)
    k->max_held = k->held;
  return 0;
}

/* Reads one message, then whatever else is already there. */
static int
hand_read(hand *k, peer *p) {
  do {
    if (peer_recv(p) != 0 || hand_take(k, p) != 0)
      return 1;
  } while (peer_ready(p));
  return 0;
}

/* The oldest task in `state`, or -1. */
static int64_t
hand_oldest(const hand *k, int state) {
  int i;

  for (i = 0; i < k->offered; i++)
    if (k->state[k->order[i]] == state)
      return k->order[i];
  return -1;
}

static int
hand_step(hand *k, peer *p) {
  int64_t id;

  if (k->held < 2 && k->offered < BURST)
    return hand_read(k, p);
  if ((id = hand_oldest(k, 3)) >= 0) {
    k->state[id] = 4;
    k->held--;
    k->done++;
    return send_done_value(p, id, "I", id * 10);
  }
  if ((id = hand_oldest(k, 1)) >= 0) {
    k->state[id] = 2;
    return send_simple(p, BH__MSG_TASK_ACCEPTED, id);
  }
  return hand_read(k, p);
}

static int
fk_capacity(peer *p, void *arg) {
  hand k = {.offered = 0};
  int i;

  (void)arg;
  while (k.done < BURST)
    if (hand_step(&k, p) != 0)
      return 1;
  for (i = 0; i < BURST; i++)
    CHECK(k.order[i] == i, "offer %d was task %lld", i, (long long)k.order[i]);
  CHECK(k.max_held == 2, "at most %d in hand, want 2", k.max_held);
  return fake_finish(p);
}

static int
root_burst(bh_task *t, void *arg) {
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int64_t i, v;

  (void)arg;
  ASSERT(g != NULL);
  for (i = 0; i < BURST; i++)
    ASSERT_INT_EQ(bh_group_delegate(g, NULL, (void *)(intptr_t)i, "job",
                                    "[I]", i), 0);
  for (i = 0; i < BURST; i++) {
    ASSERT_INT_EQ(bh_group_next(g, &f, -1), 0);
    ASSERT_INT_EQ((intptr_t)bh_future_udata(f), i);
    ASSERT_INT_EQ(bh_result_status(bh_future_result(f)), BH_SUCCEEDED);
    ASSERT_INT_EQ(bh_result_child_id(bh_future_result(f)), 0);
    ASSERT_INT_EQ(bh_result_unpack(bh_future_result(f), NULL, 0, "I", &v), 0);
    ASSERT_INT_EQ(v, i * 10);
    bh_future_free(f);
  }
  ASSERT_INT_EQ(bh_group_next(g, &f, -1), BH_EDONE);
  bh_group_free(g);
  return 0;
}

TEST(deleg_capacity_backlog) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_capacity, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, 2), 0);
  ASSERT_INT_EQ(hive_run(&h, root_burst, NULL), 0);
  ASSERT(fake_exited(&f, 0));
  return hive_close(&h);
}

/* ------------------------------------------------------------------------
 * 9b. Direct offers from the delegating side (PROTOCOL.md section 5.1). */

/* The only child with room gets new_task carrying the info; answering
 * started, it gets no task_info (the next message is die). */
static int
fk_direct(peer *p, void *arg) {
  (void)arg;
  if (expect(p, BH__MSG_NEW_TASK, 0) != 0)
    return 1;
  CHECK(p->m.name != NULL && p->m.name_len == 3 &&
            memcmp(p->m.name, "job", 3) == 0 &&
            same(p->m.args, "[i s]", 7, "x"),
        "direct offer %s", repr(p->m.root));
  if (send_map(p, "{s:s s:i s:b}", "msg_type", "task_accepted", "task_id", 0,
               "started", 1) != 0 ||
      send_done_value(p, 0, "s", "direct") != 0)
    return 1;
  return fake_finish(p);
}

static int
root_direct(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", "[i s]", 7, "x"), 0);
  ASSERT_INT_EQ(bh_result_child_id(r), 0);
  ASSERT(same(bh_result_value(r), "s", "direct"));
  bh_result_free(r);
  return 0;
}

TEST(deleg_direct_offer) {
  fake f;
  hive h;

  ASSERT_INT_EQ(fake_fork(&f, fk_direct, NULL, NULL, 0), 0);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_direct, NULL), 0);
  ASSERT(fake_exited(&f, 0));
  return hive_close(&h);
}

/* Two children have room: offers are plain. A child that answers one
 * "started" anyway breaks the protocol and is killed; the other takes
 * the task. The other accepts only once the false start is on its way
 * (a pipe): else the task could end, and the bee tell every child to die,
 * before the false start arrived. */
static int
fk_false_start(peer *p, void *arg) {
  const int *sent = arg;

  if (expect(p, BH__MSG_NEW_TASK, 0) != 0)
    return 1;
  CHECK(p->m.name == NULL, "a plain offer expected: %s", repr(p->m.root));
  if (send_map(p, "{s:s s:i s:b}", "msg_type", "task_accepted", "task_id", 0,
               "started", 1) != 0 ||
      signal_fd(*sent) != 0)
    return 1;
  if (peer_recv(p) == 0)
    return FAKE_FAIL("after the false start, got %s", repr(p->m.root));
  return 3;
}

/* Waits until the false start was sent: its byte comes, or the pipe ends
 * because the bee killed the other fake between its send and its byte. */
static int
fk_take_job_after(peer *p, void *arg) {
  const int *sent = arg;
  char c;

  CHECK(read(*sent, &c, 1) >= 0, "pipe read failed");
  if (take(p, 0, "job") != 0 || send_done_value(p, 0, "s", "ok") != 0)
    return 1;
  return fake_finish(p);
}

static int
root_false_start(bh_task *t, void *arg) {
  bh_result *r;

  (void)arg;
  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), 0);
  ASSERT_INT_EQ(bh_result_child_id(r), 1);
  bh_result_free(r);
  return 0;
}

TEST(deleg_started_on_a_plain_offer_is_a_breach) {
  int sent[2];
  fake bad, good;
  hive h;

  ASSERT(pipe(sent) == 0);
  ASSERT_INT_EQ(fake_fork(&bad, fk_false_start, &sent[1], &sent[1], 1), 0);
  ASSERT_INT_EQ(fake_fork(&good, fk_take_job_after, &sent[0], &sent[0], 1),
                0);
  close(sent[0]);
  close(sent[1]);
  ASSERT_INT_EQ(hive_open(&h, 0), 0);
  h.bee->direct_offers = false; /* plain offers to both */
  ASSERT_INT_EQ(hive_adopt(&h, &bad, -1), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &good, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_false_start, NULL), 0);
  ASSERT(fake_killed(&bad, SIGKILL));
  ASSERT(fake_exited(&good, 0));
  return hive_close(&h);
}

/* A direct offer nobody answered within the pickup timeout is answered
 * cancelled; when the child then says it started it, the task runs there
 * unwanted: the bee sends cancel_task and takes the late task_done. */
typedef struct late_start {
  int go[2];   /* root -> fake: the delegation was answered */
  int done[2]; /* fake -> root: cancel_task came and was answered */
} late_start;

static int
fk_late_start(peer *p, void *arg) {
  late_start *ls = arg;

  if (expect(p, BH__MSG_NEW_TASK, 0) != 0 || wait_fd_byte(ls->go[0]) != 0 ||
      send_map(p, "{s:s s:i s:b}", "msg_type", "task_accepted", "task_id", 0,
               "started", 1) != 0 ||
      expect(p, BH__MSG_CANCEL_TASK, 0) != 0 ||
      send_done_cancelled(p, 0, "as asked") != 0 ||
      signal_fd(ls->done[1]) != 0)
    return 1;
  return fake_finish(p);
}

static int
root_late_start(bh_task *t, void *arg) {
  late_start *ls = arg;
  bh_result *r;

  ASSERT_INT_EQ(bh_delegate(t, &r, "job", NULL), BH_ECANCELLED);
  ASSERT(strstr(bh_result_reason(r), "picked up") != NULL);
  bh_result_free(r);
  ASSERT_INT_EQ(write(ls->go[1], "!", 1), 1);
  ASSERT(bh_wait_fd(t, ls->done[0], BH_READABLE, bh_now() + 5000) ==
         BH_READABLE);
  return 0;
}

TEST(deleg_direct_offer_started_after_its_answer_is_cancelled) {
  late_start ls;
  fake f;
  int keep[2];
  hive h;

  ASSERT(pipe(ls.go) == 0 && pipe(ls.done) == 0);
  keep[0] = ls.go[0], keep[1] = ls.done[1];
  ASSERT_INT_EQ(fake_fork(&f, fk_late_start, &ls, keep, 2), 0);
  close(ls.go[0]), close(ls.done[1]);
  ASSERT_INT_EQ(hive_open(&h, 50), 0);
  ASSERT_INT_EQ(hive_adopt(&h, &f, -1), 0);
  ASSERT_INT_EQ(hive_run(&h, root_late_start, &ls), 0);
  ASSERT(fake_exited(&f, 0));
  close(ls.go[1]), close(ls.done[0]);
  return hive_close(&h);
}

TEST_MAIN(TEST_ENTRY(deleg_succeeded),
          TEST_ENTRY(deleg_first_accepter_wins),
          TEST_ENTRY(deleg_all_denied),
          TEST_ENTRY(deleg_no_children),
          TEST_ENTRY(deleg_pickup_timeout), TEST_ENTRY(deleg_pickup_never),
          TEST_ENTRY(deleg_child_raised),
          TEST_ENTRY(deleg_child_cancelled),
          TEST_ENTRY(deleg_child_exits),
          TEST_ENTRY(deleg_child_sigkilled),
          TEST_ENTRY(deleg_child_last_wish),
          TEST_ENTRY(deleg_child_dies_holding_offer),
          TEST_ENTRY(deleg_breach_garbage),
          TEST_ENTRY(deleg_breach_wrong_types),
          TEST_ENTRY(deleg_breach_truncated),
          TEST_ENTRY(deleg_breach_oversize),
          TEST_ENTRY(deleg_breach_unknown_type),
          TEST_ENTRY(deleg_breach_wrong_way),
          TEST_ENTRY(deleg_breach_done_unknown),
          TEST_ENTRY(deleg_breach_accept_unoffered),
          TEST_ENTRY(deleg_breach_accept_twice),
          TEST_ENTRY(deleg_capacity_backlog),
          TEST_ENTRY(deleg_direct_offer),
          TEST_ENTRY(deleg_all_denied_plain),
          TEST_ENTRY(deleg_denied_direct_offer_passes_on),
          TEST_ENTRY(deleg_direct_offers_spread_over_children),
          TEST_ENTRY(deleg_started_on_a_plain_offer_is_a_breach),
          TEST_ENTRY(deleg_direct_offer_started_after_its_answer_is_cancelled))
