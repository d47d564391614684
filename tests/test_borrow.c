/* test_borrow.c - borrowed bins (blob.h, bh__borrow): a middle-sized bin
 * of the value being sent goes out from where it lies, by a write vector,
 * instead of being copied into the channel's buffer; the channel holds the
 * value until those bytes are written. Also the large-block cache that
 * keeps such buffers from going back to the kernel (alloc.c). */
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "value/blob.h"
#include "transport/chan_raw.h"
#include "fixture.h"
#include "runner.h"
#include "runtime/turn.h"

#define KIB ((size_t)1 << 10)

/* [[y#], {}]: a call of one bin of n pattern bytes. */
static bh_value *
call_of(size_t n) {
  char *data = malloc(n);
  bh_value *v;

  if (data == NULL)
    return NULL;
  fill(data, n);
  v = bh_value_pack(NULL, "[[y#] {}]", data, n);
  free(data);
  return v;
}

/* Puts task_info `id` of call on a's channel, borrowing from `hold`. */
static int
put_call(pair *p, int64_t id, const bh_value *call, bh_value *hold,
         size_t max_frame) {
  bh__blobq *q = bh__chan_blobs(p->a.c);
  const msgpack_object *o = bh_value_object(call);
  int rc;

  q->hold = hold;
  rc = bh__wire_put_task_info(bh__chan_out(p->a.c), q, max_frame, id, "echo",
                              &o->via.array.ptr[0], &o->via.array.ptr[1]);
  q->hold = NULL;
  return rc;
}

/* ------------------------------------------------------------------------
 * 1. Channels. */

/* A 64 KiB bin is not copied into the buffer, yet arrives whole after its
 * value's owner let go of it: the channel's hold kept the bytes. */
TEST(borrowed_bin_leaves_from_where_it_lies) {
  size_t live0 = bh__alloc_live();
  bh_value *call = call_of(64 * KIB);
  pair p;

  ASSERT(call != NULL);
  ASSERT_INT_EQ(pair_open(&p, live0), 0);
  ASSERT_INT_EQ(put_call(&p, 1, call, call, 1 << 20), 0);
  ASSERT(bh__chan_out(p.a.c)->len < 200);
  ASSERT_INT_EQ(bh__chan_blobs(p.a.c)->blen, 1);
  bh_value_free(call); /* the owner is done with it; the channel is not */
  bh__chan_kick(p.a.c);
  ASSERT_INT_EQ(run_until(&p.loop, &p.b.nmsg, 1), 0);
  ASSERT_INT_EQ(p.a.nerr + p.b.nerr, 0);
  ASSERT(p.b.bins_seen == 1 && p.b.bins_good == 1 && p.b.len == 64 * KIB);
  ASSERT_INT_EQ(bh__chan_blobs(p.a.c)->blen, 0);
  return pair_close(&p); /* the hold was dropped: nothing left allocated */
}

/* Below 16 KiB, or lying outside the value the sender named, a bin is
 * copied as before. */
TEST(small_or_foreign_bins_are_copied) {
  size_t live0 = bh__alloc_live();
  bh_value *small = call_of(BH__BORROW_MIN - 1);
  bh_value *big = call_of(64 * KIB), *other = call_of(64 * KIB);
  pair p;

  ASSERT(small != NULL && big != NULL && other != NULL);
  ASSERT_INT_EQ(pair_open(&p, live0), 0);
  ASSERT_INT_EQ(put_call(&p, 1, small, small, 1 << 20), 0);
  ASSERT_INT_EQ(put_call(&p, 2, big, other, 1 << 20), 0);
  ASSERT_INT_EQ(put_call(&p, 3, big, NULL, 1 << 20), 0);
  ASSERT_INT_EQ(bh__chan_blobs(p.a.c)->blen, 0);
  ASSERT(bh__chan_out(p.a.c)->len > 128 * KIB + BH__BORROW_MIN - 1);
  bh_value_free(small);
  bh_value_free(big);
  bh_value_free(other);
  bh__chan_kick(p.a.c);
  ASSERT_INT_EQ(run_until(&p.loop, &p.b.nmsg, 3), 0);
  ASSERT(p.b.bins_seen == 3 && p.b.bins_good == 3);
  return pair_close(&p);
}

/* An encoding that fails after a bin was borrowed gives the borrow and
 * its hold back: nothing is queued, and the value is freed by its owner's
 * one bh_value_free. */
TEST(failed_encoding_gives_its_borrows_back) {
  size_t live0 = bh__alloc_live();
  bh_value *call = call_of(64 * KIB);
  pair p;

  ASSERT(call != NULL);
  ASSERT_INT_EQ(pair_open(&p, live0), 0);
  ASSERT_INT_EQ(put_call(&p, 1, call, call, 32 * KIB), BH_EMSGSIZE);
  ASSERT_INT_EQ(bh__chan_blobs(p.a.c)->blen, 0);
  ASSERT_INT_EQ(bh__chan_out(p.a.c)->len, 0);
  ASSERT_INT_EQ(call->holds, 0);
  bh_value_free(call);
  return pair_close(&p);
}

/* Far more than the socket holds: 40 frames of two 200 KiB borrowed bins
 * each, a 1 MiB bin sent as a blob in every fifth, and a small frame
 * between them. The writes stop in the middle of bins and of the buffer's
 * bytes, resume when the socket has room, and everything arrives in order
 * and intact. */
TEST(borrowed_bins_through_a_full_socket) {
  enum { FRAMES = 40 };
  size_t live0 = bh__alloc_live();
  bh_value *two = NULL, *blob = NULL;
  char *data = malloc(200 * KIB);
  char *mib = malloc((size_t)1 << 20);
  pair p;
  int i;

  ASSERT(data != NULL && mib != NULL);
  fill(data, 200 * KIB);
  fill(mib, (size_t)1 << 20);
  two = bh_value_pack(NULL, "[[y# y#] {}]", data, 200 * KIB, data, 200 * KIB);
  blob = bh_value_pack(NULL, "[[y# y#] {}]", data, 200 * KIB, mib,
                       (size_t)1 << 20);
  ASSERT(two != NULL && blob != NULL);
  ASSERT_INT_EQ(pair_open(&p, live0), 0);
  for (i = 0; i < FRAMES; i++) {
    const bh_value *v = i % 5 == 4 ? blob : two;

    ASSERT_INT_EQ(put_call(&p, 2 * i + 1, v, (bh_value *)v, 4 << 20), 0);
    ASSERT_INT_EQ(bh__wire_put_simple(bh__chan_out(p.a.c), 1 << 20,
                                      BH__MSG_NEW_TASK, 2 * i + 2),
                  0);
    if (i % 8 == 0) /* some leave at once, the rest pile up */
      bh__chan_kick(p.a.c);
    if (i % 8 == 0)
      bh__turn_run();
  }
  ASSERT(bh__chan_blobs(p.a.c)->blen > 0); /* the socket is full */
  bh_value_free(two);
  bh_value_free(blob);
  bh__chan_kick(p.a.c);
  ASSERT_INT_EQ(run_until(&p.loop, &p.b.nmsg, 2 * FRAMES), 0);
  ASSERT_INT_EQ(p.a.nerr + p.b.nerr, 0);
  ASSERT_INT_EQ(p.b.bins_seen, 2 * FRAMES);
  ASSERT_INT_EQ(p.b.bins_good, 2 * FRAMES);
  ASSERT_INT_EQ(bh__chan_blobs(p.a.c)->blen, 0);
  free(data);
  free(mib);
  return pair_close(&p);
}

/* Closing with borrowed bins unsent drops their holds. */
TEST(close_with_borrows_pending_frees_them) {
  size_t live0 = bh__alloc_live();
  bh_value *call = call_of(200 * KIB);
  pair p;
  int i;

  ASSERT(call != NULL);
  ASSERT_INT_EQ(pair_open(&p, live0), 0);
  for (i = 0; i < 40; i++)
    ASSERT_INT_EQ(put_call(&p, i + 1, call, call, 1 << 20), 0);
  bh__chan_kick(p.a.c);
  bh__turn_run(); /* 8 MiB: most of it still waits */
  ASSERT(bh__chan_blobs(p.a.c)->blen > 0);
  ASSERT(call->holds > 0);
  bh_value_free(call);
  return pair_close(&p);
}

/* ------------------------------------------------------------------------
 * 2. The input side: a large frame's value takes over the buffer the
 * channel read it into, without a copy, wherever the frame lay in it. */

/* One channel on a socketpair whose other end the test writes raw. */
typedef struct raw {
  uv_loop_t loop;
  end e;
  int fd;  /* the test's end */
  int cfd; /* the channel's */
} raw;

static int
raw_open(raw *r) {
  int sv[2];

  memset(r, 0, sizeof(*r));
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
      uv_loop_init(&r->loop) != 0 || bh__turn_init(&r->loop) != 0 ||
      bh__chan_open(&r->e.c, &r->loop, sv[0], 0, end_msg, end_err, &r->e))
    return -1;
  r->fd = sv[1];
  r->cfd = sv[0];
  return 0;
}

static int
raw_close(raw *r) {
  bh_value_free(r->e.kept);
  close(r->fd);
  bh__chan_close(r->e.c);
  bh__turn_close();
  uv_run(&r->loop, UV_RUN_DEFAULT);
  return uv_loop_close(&r->loop);
}

/* Runs the loop until the channel has read every byte written so far. */
static int
raw_drain(raw *r) {
  int spins = 0, left = 1;

  while (spins++ < 100000 && ioctl(r->cfd, FIONREAD, &left) == 0 && left > 0)
    uv_run(&r->loop, UV_RUN_NOWAIT);
  return left == 0 ? 0 : -1;
}

/* frames: new_task 1, task_info 2 with a 64 KiB bin, new_task 3. Returns
 * the offset of task_info's body in b. */
static size_t
three_frames(bh__buf *b) {
  bh_value *call = call_of(64 * KIB);
  const msgpack_object *o = bh_value_object(call);
  size_t at;

  bh__wire_put_simple(b, 1 << 20, BH__MSG_NEW_TASK, 1);
  at = b->len + BH__FRAME_HDR;
  bh__wire_put_task_info(b, NULL, 1 << 20, 2, "echo", &o->via.array.ptr[0],
                         &o->via.array.ptr[1]);
  bh__wire_put_simple(b, 1 << 20, BH__MSG_NEW_TASK, 3);
  bh_value_free(call);
  return at;
}

/* After three_frames() was written: all three arrive, the large one's
 * value keeping the buffer it was read into with its bytes at `at`; then
 * closes everything. */
static int
three_came(raw *r, bh__buf *b, size_t at, size_t live0) {
  ASSERT_INT_EQ(run_until(&r->loop, &r->e.nmsg, 3), 0);
  ASSERT(r->e.bins_good == 1 && r->e.nbody_kept == 1);
  ASSERT_INT_EQ(r->e.body_at, (ptrdiff_t)at);
  ASSERT_INT_EQ(r->e.nerr, 0);
  bh__buf_free(b);
  ASSERT_INT_EQ(raw_close(r), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* The three frames come in one read: the middle one's value keeps the
 * input buffer (its bytes start after the first frame's, not at the
 * start of a copy), and the third is still read. */
TEST(whole_large_frame_keeps_the_input_buffer) {
  size_t live0 = bh__alloc_live(), at;
  bh__buf b = {0};
  raw r;

  ASSERT_INT_EQ(raw_open(&r), 0);
  at = three_frames(&b);
  ASSERT(write(r.fd, b.data, b.len) == (ssize_t)b.len);
  return three_came(&r, &b, at, live0);
}

/* The large frame comes in pieces: the buffer that read its start goes on
 * to read the rest in place. */
TEST(large_frame_in_pieces_reads_on_in_place) {
  size_t live0 = bh__alloc_live(), at, cut;
  bh__buf b = {0};
  raw r;

  ASSERT_INT_EQ(raw_open(&r), 0);
  at = three_frames(&b);
  cut = at + 1000;
  ASSERT(write(r.fd, b.data, cut) == (ssize_t)cut);
  ASSERT_INT_EQ(raw_drain(&r), 0);
  ASSERT_INT_EQ(r.e.nmsg, 1);
  ASSERT(write(r.fd, b.data + cut, b.len - cut) == (ssize_t)(b.len - cut));
  return three_came(&r, &b, at, live0);
}

/* ------------------------------------------------------------------------
 * 2. A whole hive: 64 KiB echoes, answered from the argument itself
 * (bh_return_object) and from a packed copy (bh_return), 16 in flight. */

static int
w_echo_object(bh_task *t) {
  return bh_return_object(t, &bh_task_args(t)->via.array.ptr[0]);
}

static int
w_echo_copy(bh_task *t) {
  const void *p;
  size_t n;
  int rc = bh_task_unpack(t, "[y#]", &p, &n);

  return rc != 0 ? rc : bh_return(t, "y#", p, n);
}

static const bh_task_def worker_tasks[] = {
    {"echo_object", w_echo_object}, {"echo_copy", w_echo_copy}, {NULL, NULL}};
static const bh_class worker = {.name = "BorrowWorker",
                                .tasks = worker_tasks};

static int
check_echo(bh_task *t, bh_future *f, size_t size) {
  const bh_result *r = bh_future_result(f);
  const void *p;
  size_t n;

  if (bh_result_status(r) != BH_SUCCEEDED)
    return bh_raise_result(t, r);
  if (bh_result_unpack(r, NULL, 0, "y#", &p, &n) != 0 || n != size ||
      !holds_pattern(p, n))
    return bh_raise(t, "ValueError", "the echo came back wrong");
  return 0;
}

static int
q_echoes(bh_task *t) {
  enum { ROUNDS = 200, WINDOW = 16 };
  size_t size = 64 * KIB;
  char *data = malloc(size);
  bh_group *g = bh_group_new(t);
  int sent = 0, done = 0, rc = 0;
  bh_future *f;

  if (data == NULL || g == NULL)
    return BH_ENOMEM;
  fill(data, size);
  while (rc == 0 && done < ROUNDS) {
    if (sent < ROUNDS && bh_group_pending(g) < WINDOW) {
      rc = bh_group_delegate(g, NULL, NULL,
                             sent++ % 2 ? "echo_copy" : "echo_object", "[y#]",
                             data, size);
      continue;
    }
    rc = bh_group_next(g, &f, -1);
    if (rc == 0) {
      rc = check_echo(t, f, size);
      bh_future_free(f);
      done++;
    }
  }
  bh_group_free(g);
  free(data);
  return rc != 0 ? rc : bh_return(t, "I", (int64_t)done);
}

static const bh_task_def queen_tasks[] = {{"echoes", q_echoes},
                                          {NULL, NULL}};
static const bh_class queen = {.name = "BorrowQueen",
                               .tasks = queen_tasks,
                               .worker_class = &worker};

TEST(hive_echoes_of_64k_come_back_intact) {
  bh_run_opts o = {.queen_class = &queen, .task_name = "echoes",
                   .min_workers = 1, .max_workers = 1};
  bh_result *r = NULL;
  int64_t done = 0;

  ASSERT_INT_EQ(run_hive(&o, &r), 0);
  ASSERT_INT_EQ(bh_result_unpack(r, NULL, 0, "I", &done), 0);
  ASSERT_INT_EQ(done, 200);
  bh_result_free(r);
  return 0;
}

/* ------------------------------------------------------------------------
 * 3. The large-block cache (alloc.c). It is off under AddressSanitizer
 * (which must see every free), with -DBH_NO_BLOCK_CACHE and with
 * bh_set_allocator hooks; then nothing is ever cached. */

TEST(freed_large_block_is_handed_out_again) {
  size_t live0 = bh__alloc_live();
  void *a, *b, *c;

  bh__alloc_trim();
  a = bh__malloc(64 * KIB);
  ASSERT(a != NULL);
  bh__free_large(a, 64 * KIB);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  if (!bh__alloc_caching()) {
    ASSERT_INT_EQ(bh__alloc_cached(), 0);
    return 0;
  }
  ASSERT(bh__alloc_cached() >= 64 * KIB);
  b = bh__malloc(60 * KIB); /* fits, without wasting half of it */
  ASSERT(b == a);
  ASSERT_INT_EQ(bh__alloc_cached(), 0);
  bh__free_large(b, 60 * KIB);
  c = bh__malloc(20 * KIB); /* below the cache's range: libc's own */
  ASSERT(c != a);
  ASSERT(bh__alloc_cached() >= 64 * KIB);
  bh__free(c);
  c = bh__malloc(16 * KIB + 1); /* in range, but would waste most of it */
  ASSERT(c != a);
  bh__free(c);
  c = bh__malloc(64 * KIB); /* takes a; a plain bh__free never caches */
  ASSERT(c == a);
  bh__free(c);
  ASSERT_INT_EQ(bh__alloc_cached(), 0);
  bh__alloc_trim();
  ASSERT_INT_EQ(bh__alloc_cached(), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(cache_keeps_a_bounded_amount) {
  enum { N = 80 };
  static void *v[N];
  int i;

  bh__alloc_trim();
  for (i = 0; i < N; i++)
    v[i] = bh__malloc(512 * KIB);
  for (i = 0; i < N; i++)
    bh__free_large(v[i], 512 * KIB);
  ASSERT(bh__alloc_cached() <= (size_t)8 << 20); /* 40 MiB were freed */
  ASSERT(!bh__alloc_caching() || bh__alloc_cached() > 0);
  v[0] = bh__malloc((size_t)2 << 20); /* too big to keep */
  bh__free_large(v[0], (size_t)2 << 20);
  ASSERT(bh__alloc_cached() <= (size_t)8 << 20);
  for (i = 0; i < N; i++) /* more blocks than slots */
    v[i] = bh__malloc(40 * KIB);
  for (i = 0; i < N; i++)
    bh__free_large(v[i], 40 * KIB);
  ASSERT(bh__alloc_cached() <= (size_t)8 << 20);
  bh__alloc_trim();
  ASSERT_INT_EQ(bh__alloc_cached(), 0);
  return 0;
}

/* A buffer growing into the cache's range takes a cached block and keeps
 * its bytes. */
TEST(realloc_into_a_cached_block_keeps_the_bytes) {
  size_t live0 = bh__alloc_live();
  char *small = bh__malloc(1000), *big;
  void *a = bh__malloc(128 * KIB);

  ASSERT(small != NULL && a != NULL);
  fill(small, 1000);
  bh__free_large(a, 128 * KIB);
  big = bh__realloc(small, 100 * KIB);
  ASSERT(big != NULL && holds_pattern(big, 1000));
  ASSERT(!bh__alloc_caching() || big == a);
  bh__free_large(big, 100 * KIB);
  bh__alloc_trim();
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

static size_t hook_frees;

static void
count_free(void *p) {
  hook_frees++;
  free(p);
}

TEST(hooks_bypass_the_cache) {
  bh_allocator a = {malloc, realloc, count_free};
  void *p;

  bh_set_allocator(&a);
  p = bh__malloc(64 * KIB);
  ASSERT(p != NULL);
  bh__free_large(p, 64 * KIB);
  bh_set_allocator(NULL);
  ASSERT_INT_EQ(hook_frees, 1);
  ASSERT_INT_EQ(bh__alloc_cached(), 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(borrowed_bin_leaves_from_where_it_lies),
          TEST_ENTRY(small_or_foreign_bins_are_copied),
          TEST_ENTRY(failed_encoding_gives_its_borrows_back),
          TEST_ENTRY(borrowed_bins_through_a_full_socket),
          TEST_ENTRY(close_with_borrows_pending_frees_them),
          TEST_ENTRY(whole_large_frame_keeps_the_input_buffer),
          TEST_ENTRY(large_frame_in_pieces_reads_on_in_place),
          TEST_ENTRY(hive_echoes_of_64k_come_back_intact),
          TEST_ENTRY(freed_large_block_is_handed_out_again),
          TEST_ENTRY(cache_keeps_a_bounded_amount),
          TEST_ENTRY(realloc_into_a_cached_block_keeps_the_bytes),
          TEST_ENTRY(hooks_bypass_the_cache))
