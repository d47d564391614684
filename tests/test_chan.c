/* test_chan.c - framed msgpack channels (src/transport/chan.c), reading:
 * reassembly of frames however the bytes arrive, hostile input (oversized,
 * garbage, ill-typed), end of stream; and closing from callbacks with a
 * loop that closes clean. */
#include "chan_util.h"

/* ------------------------------------------------------------------------
 * Reading: frames however the bytes arrive. */

/* Three frames of different types and sizes. Returns the offsets where
 * each ends in `ends`. */
static int
three_frames(bh__buf *b, size_t ends[3]) {
  bh__wire_done d = {.status = BH_CANCELLED, .reason = "enough"};

  if (put_new_task(b, 1) != 0)
    return -1;
  ends[0] = b->len;
  if (bh__wire_put_task_info(b, NULL, BH__DEFAULT_MAX_FRAME, 2, "some.task", NULL,
                             NULL) != 0)
    return -1;
  ends[1] = b->len;
  if (bh__wire_put_task_done(b, NULL, BH__DEFAULT_MAX_FRAME, 3, &d) != 0)
    return -1;
  ends[2] = b->len;
  return 0;
}

TEST(frames_one_byte_at_a_time) {
  bh__buf b = {0};
  size_t ends[3], i;
  int want = 0;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(three_frames(&b, ends), 0);
  for (i = 0; i < b.len; i++) {
    ASSERT_INT_EQ(write_all(f.raw, b.data + i, 1), 0);
    uv_run(&f.loop, UV_RUN_ONCE); /* reads exactly this byte */
    while (want < 3 && ends[want] <= i + 1)
      want++;
    ASSERT_INT_EQ(f.a.nmsg, want); /* each frame once, when complete */
  }
  ASSERT_INT_EQ(f.a.nmsg, 3);
  ASSERT_INT_EQ(f.a.type[0], BH__MSG_NEW_TASK);
  ASSERT_INT_EQ(f.a.type[1], BH__MSG_TASK_INFO);
  ASSERT_INT_EQ(f.a.type[2], BH__MSG_TASK_DONE);
  ASSERT(f.a.id[0] == 1 && f.a.id[1] == 2 && f.a.id[2] == 3);
  ASSERT_INT_EQ(f.a.nerr, 0);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* A child writes 60 frames in pieces of 1 to 12 bytes, each its own
 * write(), as fast as it can: splits fall everywhere, headers included. */
TEST(frames_in_ragged_pieces_from_another_process) {
  bh__buf b = {0};
  size_t off = 0, step = 0;
  int i, status;
  pid_t pid;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  for (i = 0; i < 60; i++)
    ASSERT_INT_EQ(put_new_task(&b, (int64_t)i * 1000003), 0);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    while (off < b.len) {
      size_t n = 1 + step++ % 12;

      n = n < b.len - off ? n : b.len - off;
      if (write_all(f.raw, b.data + off, n) != 0)
        _exit(1);
      off += n;
    }
    _exit(0);
  }
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nmsg, 60), 0);
  ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
  ASSERT_INT_EQ(WEXITSTATUS(status), 0);
  for (i = 0; i < 60; i++)
    ASSERT_INT_EQ(f.a.id[i], (int64_t)i * 1000003);
  ASSERT_INT_EQ(f.a.nerr, 0);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

TEST(two_frames_in_one_write) {
  bh__buf b = {0};
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_new_task(&b, 7), 0);
  ASSERT_INT_EQ(bh__wire_put_simple(&b, BH__DEFAULT_MAX_FRAME,
                                    BH__MSG_TASK_TAKEN, 8), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  uv_run(&f.loop, UV_RUN_ONCE); /* one read holds both */
  ASSERT_INT_EQ(f.a.nmsg, 2);
  ASSERT(f.a.type[0] == BH__MSG_NEW_TASK && f.a.id[0] == 7);
  ASSERT(f.a.type[1] == BH__MSG_TASK_TAKEN && f.a.id[1] == 8);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.nmsg, 2); /* once each */
  ASSERT_INT_EQ(f.a.nerr, 0);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* An unknown msg_type is the owner's business: the channel delivers it. */
TEST(unknown_type_is_delivered) {
  bh__buf b = {0}, body = {0};
  msgpack_packer pk;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  msgpack_packer_init(&pk, &body, bh__buf_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str_with_body(&pk, "msg_type", 8);
  msgpack_pack_str_with_body(&pk, "gossip", 6);
  ASSERT_INT_EQ(put_raw_frame(&b, body.data, body.len), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nmsg, 1), 0);
  ASSERT_INT_EQ(f.a.type[0], BH__MSG_UNKNOWN);
  ASSERT_INT_EQ(f.a.nerr, 0);
  bh__buf_free(&b);
  bh__buf_free(&body);
  FX_CLOSE(&f);
  return 0;
}

/* ------------------------------------------------------------------------
 * Hostile input. */

/* After an error: bytes still arriving are neither read nor dispatched. */
static int
stays_quiet(fx *f) {
  bh__buf b = {0};
  int nmsg = f->a.nmsg, nerr = f->a.nerr;

  if (put_new_task(&b, 99) != 0 || write_all(f->raw, b.data, b.len) != 0)
    return -1;
  bh__buf_free(&b);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return f->a.nmsg == nmsg && f->a.nerr == nerr && bh__chan_closed(f->a.c)
             ? 0
             : -1;
}

TEST(frame_over_max_frame_is_emsgsize) {
  bh__buf one = {0}, b = {0};
  size_t limit;
  char want[64];
  fx f;

  /* id 1 packs in one byte, id 200 in two: a frame of limit + 1. */
  ASSERT_INT_EQ(put_new_task(&one, 1), 0);
  limit = one.len - 4;
  bh__buf_free(&one);
  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, limit), 0);
  ASSERT_INT_EQ(bh__chan_max_frame(f.a.c), limit);
  ASSERT_INT_EQ(put_new_task(&b, 1), 0); /* exactly at the limit: fine */
  ASSERT_INT_EQ(bh__wire_put_simple(&b, SIZE_MAX, BH__MSG_NEW_TASK, 200), 0);
  ASSERT_INT_EQ(b.len - (limit + 4) - 4, limit + 1);
  ASSERT_INT_EQ(put_new_task(&b, 2), 0); /* after the bad one: dropped */
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nerr, 1), 0);
  ASSERT_INT_EQ(f.a.err, BH_EMSGSIZE);
  ASSERT_INT_EQ(f.a.nmsg, 1);
  ASSERT_INT_EQ(f.a.id[0], 1);
  snprintf(want, sizeof(want), "frame of %zu bytes", limit + 1);
  ASSERT(strstr(f.a.why, want) != NULL);
  snprintf(want, sizeof(want), "limit of %zu bytes", limit);
  ASSERT(strstr(f.a.why, want) != NULL);
  ASSERT_INT_EQ(stays_quiet(&f), 0);
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* The header alone decides: no waiting for (or room made for) 4 GiB. */
TEST(huge_announced_length_fails_at_the_header) {
  static const unsigned char hdr[4] = {0xff, 0xff, 0xff, 0xff};
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(write_all(f.raw, hdr, 4), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nerr, 1), 0);
  ASSERT_INT_EQ(f.a.err, BH_EMSGSIZE);
  ASSERT(strstr(f.a.why, "4294967295") != NULL);
  ASSERT_INT_EQ(f.a.nmsg, 0);
  ASSERT_INT_EQ(stays_quiet(&f), 0);
  FX_CLOSE(&f);
  return 0;
}

/* Sends one frame with body `body` and expects BH_EPROTO whose message
 * holds `needle`, and no message. */
static int
eproto_for(const void *body, size_t n, const char *needle) {
  bh__buf b = {0};
  fx f;

  if (fx_open(&f, SOCK_STREAM, 0) != 0 || put_raw_frame(&b, body, n) != 0 ||
      write_all(f.raw, b.data, b.len) != 0 ||
      run_until(&f.loop, &f.a.nerr, 1) != 0)
    return -1;
  bh__buf_free(&b);
  if (f.a.err != BH_EPROTO || f.a.nmsg != 0 ||
      strstr(f.a.why, needle) == NULL || stays_quiet(&f) != 0) {
    fprintf(stderr, "err %d, %d messages, why \"%s\" (wanted \"%s\")\n",
            f.a.err, f.a.nmsg, f.a.why, needle);
    return -1;
  }
  return fx_close(&f) == 0 && bh__alloc_live() == f.live0 ? 0 : -1;
}

TEST(garbage_body_is_eproto) {
  static const unsigned char never_used[] = {0xc1, 0xc1, 0xc1, 0xc1, 0xc1};
  static const unsigned char array[] = {0x92, 0x01, 0x02};
  static const unsigned char trailing[] = {0x80, 0x00};
  static const unsigned char cut[] = {0x81, 0xa8, 'm', 's', 'g'};

  ASSERT_INT_EQ(eproto_for(never_used, sizeof(never_used), "msgpack"), 0);
  ASSERT_INT_EQ(eproto_for(cut, sizeof(cut), "msgpack"), 0);
  ASSERT_INT_EQ(eproto_for(trailing, sizeof(trailing), "msgpack"), 0);
  ASSERT_INT_EQ(eproto_for("", 0, "msgpack"), 0);
  ASSERT_INT_EQ(eproto_for(array, sizeof(array), "not a map"), 0);
  return 0;
}

TEST(wrong_field_type_is_eproto_naming_the_field) {
  bh__buf body = {0};
  msgpack_packer pk;

  msgpack_packer_init(&pk, &body, bh__buf_write);
  msgpack_pack_map(&pk, 3);
  msgpack_pack_str_with_body(&pk, "msg_type", 8);
  msgpack_pack_str_with_body(&pk, "task_info", 9);
  msgpack_pack_str_with_body(&pk, "task_id", 7);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_str_with_body(&pk, "name", 4);
  msgpack_pack_int(&pk, 5);
  ASSERT_INT_EQ(eproto_for(body.data, body.len,
                           "task_info: field 'name' must be str"), 0);
  body.len = 0;
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "msg_type", 8);
  msgpack_pack_str_with_body(&pk, "new_task", 8);
  msgpack_pack_str_with_body(&pk, "task_id", 7);
  msgpack_pack_str_with_body(&pk, "7", 1);
  ASSERT_INT_EQ(eproto_for(body.data, body.len, "'task_id'"), 0);
  bh__buf_free(&body);
  return 0;
}

static int
close_after(size_t cut, int want_err, int want_msgs) {
  bh__buf b = {0};
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_new_task(&b, 5), 0);
  ASSERT_INT_EQ(put_new_task(&b, 6), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len - cut), 0);
  close(f.raw);
  f.raw = -1;
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nerr, 1), 0);
  ASSERT_INT_EQ(f.a.err, want_err);
  ASSERT(f.a.why[0] != '\0');
  ASSERT_INT_EQ(f.a.nmsg, want_msgs);
  ASSERT_INT_EQ(f.a.nmsg_at_err, want_msgs);
  ASSERT(bh__chan_closed(f.a.c));
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

/* Whole frames, then the end: the end of the stream. */
TEST(peer_close_is_epipe) {
  return close_after(0, BH_EPIPE, 2);
}

/* A whole frame, then half of one, then the end: the peer broke off a
 * frame, which is a protocol error. */
TEST(peer_close_inside_a_frame_is_eproto) {
  return close_after(3, BH_EPROTO, 1);
}

/* ------------------------------------------------------------------------
 * Closing. */

TEST(close_in_msg_callback_stops_dispatch) {
  bh__buf b = {0};
  int i;
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  f.a.close_on_msg = 1;
  for (i = 1; i <= 3; i++)
    ASSERT_INT_EQ(put_new_task(&b, i), 0);
  ASSERT_INT_EQ(write_all(f.raw, b.data, b.len), 0);
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nmsg, 1), 0); /* one read: all 3 */
  uv_run(&f.loop, UV_RUN_NOWAIT);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.nmsg, 1);
  ASSERT_INT_EQ(f.a.nerr, 0); /* closing is not an error */
  bh__buf_free(&b);
  FX_CLOSE(&f);
  return 0;
}

TEST(close_in_err_callback) {
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  f.a.close_on_err = true;
  close(f.raw);
  f.raw = -1;
  ASSERT_INT_EQ(run_until(&f.loop, &f.a.nerr, 1), 0);
  ASSERT_INT_EQ(f.a.err, BH_EPIPE);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.nerr, 1);
  FX_CLOSE(&f);
  return 0;
}

/* A write in flight when the channel closes is dropped: no callback, no
 * leak, and the loop still closes. */
TEST(close_with_a_write_in_flight) {
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_big(bh__chan_out(f.a.c), 1, BIG, 1), 0);
  bh__chan_on_drained(f.a.c, on_drained);
  bh__turn_run();
  ASSERT_INT_EQ(f.a.ndrained, 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 2), 0); /* queued too */
  bh__chan_kick(f.a.c);
  bh__chan_close(f.a.c);
  f.a.closed = true;
  bh__chan_kick(f.a.c); /* after close: ignored */
  bh__turn_run();
  uv_run(&f.loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(f.a.ndrained, 0);
  ASSERT_INT_EQ(f.a.nerr, 0);
  FX_CLOSE(&f);
  return 0;
}

/* Closing before the turn drops the kicked output and unlists the
 * channel, so the turn does not touch it. */
TEST(close_while_kicked) {
  char got[256];
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 1), 0);
  bh__chan_kick(f.a.c);
  bh__chan_close(f.a.c);
  f.a.closed = true;
  bh__turn_close(); /* so that no turn runs before the channel is freed */
  uv_run(&f.loop, UV_RUN_DEFAULT); /* frees it... */
  bh__turn_run();                  /* ...so this must not flush it */
  ASSERT(recv(f.raw, got, sizeof(got), MSG_DONTWAIT) == 0); /* EOF only */
  FX_CLOSE(&f);
  return 0;
}

/* Writing to a peer that is gone fails the channel with BH_EPIPE (the
 * process ignores SIGPIPE, as bh_run does). */
TEST(write_to_a_closed_peer_is_epipe) {
  fx f;

  ASSERT_INT_EQ(fx_open(&f, SOCK_STREAM, 0), 0);
  close(f.raw);
  f.raw = -1;
  ASSERT_INT_EQ(put_new_task(bh__chan_out(f.a.c), 1), 0);
  bh__chan_kick(f.a.c);
  bh__turn_run();
  ASSERT_INT_EQ(f.a.nerr, 1);
  ASSERT_INT_EQ(f.a.err, BH_EPIPE);
  ASSERT(bh__chan_closed(f.a.c));
  uv_run(&f.loop, UV_RUN_NOWAIT);
  ASSERT_INT_EQ(f.a.nerr, 1);
  FX_CLOSE(&f);
  return 0;
}

/* A descriptor that is not open: the open fails and leaves nothing behind
 * once the loop has run. */
TEST(open_of_a_bad_fd_fails_clean) {
  size_t live0 = bh__alloc_live();
  uv_loop_t loop;
  bh__chan *c = NULL;

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT(bh__chan_open(&c, &loop, 1 << 20, 0, on_msg, on_err, NULL) < 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* A descriptor that is not a stream socket (a pipe's write end): the open
 * fails and closes fd exactly once. */
TEST(open_failure_closes_fd_once) {
  size_t live0 = bh__alloc_live();
  uv_loop_t loop;
  bh__chan *c = NULL;
  int p[2], closed_twice = 0;

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT_INT_EQ(pipe(p), 0);
  watch.fd = p[1];
  ASSERT(bh__chan_open(&c, &loop, p[1], 0, on_msg, on_err, NULL) < 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  watch.fd = -1;
  if (watch.closes == 0) { /* libuv closed it */
    ASSERT(fcntl(p[1], F_GETFD) < 0 && errno == EBADF);
  } else if (fcntl(p[1], F_GETFD) < 0) { /* the library, then again */
    fprintf(stderr, "fd %d was closed twice: the second close hit the "
            "file that had reused the number\n", p[1]);
    closed_twice = 1;
  } else {
    close(p[1]); /* the stand-in */
  }
  close(p[0]);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  ASSERT_INT_EQ(closed_twice, 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(frames_one_byte_at_a_time),
          TEST_ENTRY(frames_in_ragged_pieces_from_another_process),
          TEST_ENTRY(two_frames_in_one_write),
          TEST_ENTRY(unknown_type_is_delivered),
          TEST_ENTRY(frame_over_max_frame_is_emsgsize),
          TEST_ENTRY(huge_announced_length_fails_at_the_header),
          TEST_ENTRY(garbage_body_is_eproto),
          TEST_ENTRY(wrong_field_type_is_eproto_naming_the_field),
          TEST_ENTRY(peer_close_is_epipe),
          TEST_ENTRY(peer_close_inside_a_frame_is_eproto),
          TEST_ENTRY(close_in_msg_callback_stops_dispatch),
          TEST_ENTRY(close_in_err_callback),
          TEST_ENTRY(close_with_a_write_in_flight),
          TEST_ENTRY(close_while_kicked),
          TEST_ENTRY(write_to_a_closed_peer_is_epipe),
          TEST_ENTRY(open_of_a_bad_fd_fails_clean),
          TEST_ENTRY(open_failure_closes_fd_once))
