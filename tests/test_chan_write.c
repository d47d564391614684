/* test_chan_write.c - framed msgpack channels (src/transport/chan.c), writing: one
 * write per turn, on_drained, big frames both ways. */
#include "chan_util.h"

/* ------------------------------------------------------------------------
 * Writing: one write per turn. */

typedef struct sender {
  bh__chan *c;
  int64_t id;
  int rc;
} sender;

static void
sender_fn(void *arg) {
  sender *s = arg;

  s->rc = put_new_task(bh__chan_out(s->c), s->id);
  bh__chan_kick(s->c);
}

static void
nothing(void *arg) {
  (void)arg;
}

/* Runs n fibers at once so that the pool keeps n stacks: the blocks those
 * hold are then in the fixture's baseline, not counted as a leak. */
static void
warm_stack_pool(int n) {
  bh__fiber *f[8];
  int i;

  for (i = 0; i < n && i < 8; i++)
    if ((f[i] = bh__fiber_new(nothing, NULL, 0)) != NULL)
      bh__fiber_wake(f[i], 0);
  bh__sched_run();
}

/* Reads what is readable now, without waiting. */
static ssize_t
recv_now(int fd, char *p, size_t n) {
  ssize_t r;

  do
    r = recv(fd, p, n, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return r;
}

/* The channel counts its write system calls (bh__chan_writes). Three
 * fibers each append a frame and kick in the same turn; one write must
 * carry all three, in wake order. */
TEST(one_turn_one_write) {
  char got[1024];
  int64_t ids[8];
  sender s[3];
  ssize_t n;
  size_t total = 0;
  int i;
  fx f;

  warm_stack_pool(3);
  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  for (i = 0; i < 3; i++) {
    bh__fiber *fib;

    s[i] = (sender){.c = f.a.c, .id = 40 + i};
    fib = bh__fiber_new(sender_fn, &s[i], 0);
    ASSERT(fib != NULL);
    bh__fiber_wake(fib, 0);
  }
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__turn_run();
  for (i = 0; i < 3; i++)
    ASSERT_INT_EQ(s[i].rc, 0);
  ASSERT_INT_EQ(bh__chan_writes(f.a.c), 1);
  n = recv_now(f.raw, got, sizeof(got));
  ASSERT(n > 0);
  ASSERT_INT_EQ(split_frames(got, (size_t)n, ids, 8), 3);
  ASSERT(ids[0] == 40 && ids[1] == 41 && ids[2] == 42);
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  /* The same from main: appended and kicked twice, sent once. */
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 50), 0);
  bh__chan_kick(f.a.c);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 51), 0);
  bh__chan_kick(f.a.c);
  total = bh__chan_out(f.a.c)->len;
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__turn_run();
  ASSERT_INT_EQ(bh__chan_writes(f.a.c), 2);
  n = recv_now(f.raw, got, sizeof(got));
  ASSERT_INT_EQ(n, total);
  ASSERT_INT_EQ(split_frames(got, (size_t)n, ids, 8), 2);
  ASSERT(ids[0] == 50 && ids[1] == 51);
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  FX_CLOSE(&f);
  return 0;
}

/* Replies appended from a message callback go out, as one write, before
 * the loop next blocks (the turn hook). */
static void
reply_twice(side *s, const bh__msg *m) {
  put_new_task(bh__chan_out(s->c), m->task_id + 1);
  bh__chan_kick(s->c);
  put_new_task(bh__chan_out(s->c), m->task_id + 2);
  bh__chan_kick(s->c);
}

TEST(replies_from_a_callback_leave_in_one_write) {
  bh__buf b = {0};
  char got[1024];
  int64_t ids[8];
  ssize_t n;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  f.a.then = reply_twice;
  ASSERT_INT_EQ(put_new_task(&b, 70), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nmsg, 1), 0);
  uv_run(&f.loop, UV_RUN_NOWAIT); /* the hook runs before polling */
  ASSERT_INT_EQ(bh__chan_writes(f.a.c), 1);
  n = recv_now(f.raw, got, sizeof(got));
  ASSERT(n > 0);
  ASSERT_INT_EQ(split_frames(got, (size_t)n, ids, 8), 2);
  ASSERT(ids[0] == 71 && ids[1] == 72);
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* On a stream socket: after the turn, every frame is readable at once. */
TEST(frames_of_a_turn_are_all_in_the_kernel_after_it) {
  char got[4096];
  int64_t ids[64];
  size_t total;
  ssize_t n;
  int i;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  for (i = 0; i < 50; i++) {
    ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), i), 0);
    bh__chan_kick(f.a.c);
  }
  total = bh__chan_out(f.a.c)->len;
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__turn_run();
  n = recv_now(f.raw, got, sizeof(got));
  ASSERT_INT_EQ(n, total);
  ASSERT_INT_EQ(split_frames(got, (size_t)n, ids, 64), 50);
  for (i = 0; i < 50; i++)
    ASSERT_INT_EQ(ids[i], i);
  FX_CLOSE(&f);
  return 0;
}

/* Nothing is sent without a kick (and a turn). */
TEST(appending_without_kick_sends_nothing) {
  char got[256];
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 1), 0);
  bh__turn_run();
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT(recv_now(f.raw, got, sizeof(got)) < 0 && errno == EAGAIN);
  bh__chan_kick(f.a.c);
  bh__turn_run();
  ASSERT(recv_now(f.raw, got, sizeof(got)) > 0);
  FX_CLOSE(&f);
  return 0;
}

/* ------------------------------------------------------------------------
 * on_drained. */

static int peek_fd = -1;

static void
on_drained_peek(bh__chan *c, void *udata) {
  side *s = udata;
  char buf[4096];

  (void)c;
  s->ndrained++;
  s->raw_peek = (int)recv(peek_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);
}

TEST(drained_fires_at_once_when_nothing_is_pending) {
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  bh__chan_on_drained(f.a.c, on_drained);
  ASSERT_INT_EQ(f.a.ndrained, 1);
  bh__turn_run();
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.ndrained, 1); /* once */
  FX_CLOSE(&f);
  return 0;
}

TEST(drained_fires_once_the_bytes_are_in_the_kernel) {
  size_t total;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  peek_fd = f.raw;
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 1), 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 2), 0);
  total = bh__chan_out(f.a.c)->len;
  bh__chan_on_drained(f.a.c, on_drained_peek); /* kicks: no kick needed */
  ASSERT_INT_EQ(f.a.ndrained, 0);
  bh__turn_run();
  ASSERT_INT_EQ(f.a.ndrained, 1);
  ASSERT_INT_EQ(f.a.raw_peek, total); /* all readable when it fired */
  bh__turn_run();
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.ndrained, 1);
  FX_CLOSE(&f);
  return 0;
}

/* ------------------------------------------------------------------------
 * Big frames: more than the socket buffer holds, so the asynchronous
 * write path carries them. Two channels on one loop. */

typedef struct pair {
  fx f;      /* f.a on sv[0] */
  side b;    /* the peer channel, on sv[1] */
} pair;

static int
pair_open(pair *p) {
  int fd;

  if (fx_open(&p->f, SOCK_STREAM, 0) != 0)
    return -1;
  memset(&p->b, 0, sizeof(p->b));
  fd = p->f.raw;
  p->f.raw = -1;
  return bh__chan_open(&p->b.c, &p->f.loop, fd, 0, on_msg, on_err, &p->b);
}

static int
pair_close(pair *p) {
  side_close(&p->b);
  return fx_close(&p->f);
}

/* B answers a big frame with a big frame of its own. */
static void
answer_big(side *s, const bh__msg *m) {
  if (m->type == BH__MSG_TASK_DONE && s->big_ok == 1 &&
      put_big(bh__chan_out(s->c), m->task_id + 1, BIG, 0x77) == 0)
    bh__chan_kick(s->c);
}

TEST(big_frame_both_ways) {
  pair p;

  ASSERT_INT_EQ(pair_open(&p), 0);
  p.b.big_len = p.f.a.big_len = BIG;
  p.b.big_seed = 0x11;
  p.f.a.big_seed = 0x77;
  p.b.then = answer_big;
  ASSERT_INT_EQ(put_big(bh__chan_out(p.f.a.c), 1, BIG, 0x11), 0);
  bh__chan_on_drained(p.f.a.c, on_drained);
  bh__turn_run();
  /* 8 MiB do not fit in the socket: the rest is in flight. */
  ASSERT_INT_EQ(p.f.a.ndrained, 0);
  ASSERT_INT_EQ(run_until(&p.f.loop, &p.b.nmsg, 1), 0);
  ASSERT_INT_EQ(p.b.big_ok, 1);
  ASSERT_INT_EQ(p.f.a.ndrained, 1);
  ASSERT_INT_EQ(run_until(&p.f.loop, &p.f.a.nmsg, 1), 0);
  ASSERT_INT_EQ(p.f.a.big_ok, 1);
  ASSERT_INT_EQ(p.f.a.id[0], 2);
  ASSERT(p.f.a.nerr == 0 && p.b.nerr == 0);
  ASSERT_INT_EQ(pair_close(&p), 0);
  ASSERT_INT_EQ(bh__alloc_live(), p.f.live0);
  return 0;
}

/* Closing drops unsent output; closing in on_drained must drop nothing,
 * since by then every byte is in the kernel: the peer gets the whole
 * frame, then the end of the stream. */
TEST(close_when_drained_loses_nothing) {
  pair p;

  ASSERT_INT_EQ(pair_open(&p), 0);
  p.b.big_len = BIG;
  p.b.big_seed = 0x33;
  p.f.a.close_on_drained = true;
  ASSERT_INT_EQ(put_big(bh__chan_out(p.f.a.c), 1, BIG, 0x33), 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(p.f.a.c), 2), 0);
  bh__chan_kick(p.f.a.c);
  bh__turn_run(); /* starts the write */
  bh__chan_on_drained(p.f.a.c, on_drained); /* while it is in flight */
  ASSERT_INT_EQ(p.f.a.ndrained, 0);
  ASSERT_INT_EQ(run_until(&p.f.loop, &p.b.nerr, 1), 0);
  ASSERT_INT_EQ(p.f.a.ndrained, 1);
  ASSERT_INT_EQ(p.b.nmsg, 2);
  ASSERT_INT_EQ(p.b.big_ok, 1);
  ASSERT_INT_EQ(p.b.id[1], 2);
  ASSERT_INT_EQ(p.b.err, BH_EPIPE);
  ASSERT_INT_EQ(pair_close(&p), 0);
  ASSERT_INT_EQ(bh__alloc_live(), p.f.live0);
  return 0;
}

/* Output appended while a write is in flight follows it, in order. */
TEST(appends_during_a_write_follow_it) {
  pair p;
  int i;

  ASSERT_INT_EQ(pair_open(&p), 0);
  p.b.big_len = BIG;
  p.b.big_seed = 0x44;
  ASSERT_INT_EQ(put_big(bh__chan_out(p.f.a.c), 1, BIG, 0x44), 0);
  bh__chan_kick(p.f.a.c);
  bh__turn_run();
  for (i = 2; i <= 20; i++) {
    ASSERT_INT_EQ(put_new_task(bh__chan_out(p.f.a.c), i), 0);
    bh__chan_kick(p.f.a.c);
    bh__turn_run();
  }
  ASSERT_INT_EQ(run_until(&p.f.loop, &p.b.nmsg, 20), 0);
  ASSERT_INT_EQ(p.b.big_ok, 1);
  for (i = 0; i < 20; i++)
    ASSERT_INT_EQ(p.b.id[i], i + 1);
  ASSERT(p.f.a.nerr == 0 && p.b.nerr == 0);
  ASSERT_INT_EQ(pair_close(&p), 0);
  ASSERT_INT_EQ(bh__alloc_live(), p.f.live0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(one_turn_one_write),
          TEST_ENTRY(replies_from_a_callback_leave_in_one_write),
          TEST_ENTRY(frames_of_a_turn_are_all_in_the_kernel_after_it),
          TEST_ENTRY(appending_without_kick_sends_nothing),
          TEST_ENTRY(drained_fires_at_once_when_nothing_is_pending),
          TEST_ENTRY(drained_fires_once_the_bytes_are_in_the_kernel),
          TEST_ENTRY(big_frame_both_ways),
          TEST_ENTRY(close_when_drained_loses_nothing),
          TEST_ENTRY(appends_during_a_write_follow_it))
