/* test_transport.c - the channel over a second transport, and the watch of
 * a process apart from any channel.
 *
 * The second transport is a pair of pipes (one per direction), which
 * cannot pass descriptors: the channel works over it unchanged, and large
 * bins travel inline within max_frame instead of as blobs. The process
 * watch (runtime/procwatch.h) reports a child's end by pidfd or SIGCHLD,
 * and a child with no process is mourned on its channel's end alone. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hive/bee.h"
#include "hive/make.h"
#include "fixture.h"
#include "runner.h"
#include "runtime/procwatch.h"
#include "runtime/turn.h"
#include "transport/chan_raw.h"
#include "transport/send.h"
#include "transport/transport.h"
#include "value/blob.h"

/* ------------------------------------------------------------------------
 * A transport over two pipes: read from one, write to the other. */

typedef struct pipe_end {
  bh__transport t;  /* first */
  uv_poll_t rpoll, wpoll;
  int rfd, wfd;
  bh__transport_io_cb cb;
  int open_handles; /* closed when both handles are */
  void (*done)(void *arg);
  void *done_arg;
  int sends_with_fds; /* the channel passed descriptors (it must not) */
} pipe_end;

static void
rpoll_cb(uv_poll_t *h, int status, int events) {
  pipe_end *p = h->data;

  p->cb(&p->t, status, events & UV_READABLE);
}

static void
wpoll_cb(uv_poll_t *h, int status, int events) {
  pipe_end *p = h->data;

  p->cb(&p->t, status, events & UV_WRITABLE);
}

static void
pipe_watch(bh__transport *t, int events, bh__transport_io_cb cb) {
  pipe_end *p = (pipe_end *)t;

  p->cb = cb;
  if (events & UV_READABLE)
    uv_poll_start(&p->rpoll, UV_READABLE, rpoll_cb);
  else
    uv_poll_stop(&p->rpoll);
  if (events & UV_WRITABLE)
    uv_poll_start(&p->wpoll, UV_WRITABLE, wpoll_cb);
  else
    uv_poll_stop(&p->wpoll);
}

static ssize_t
pipe_recv(bh__transport *t, void *buf, size_t len, bh__transport_rx *rx) {
  pipe_end *p = (pipe_end *)t;
  ssize_t n;

  rx->nfds = 0;
  rx->fds_lost = false;
  do
    n = read(p->rfd, buf, len);
  while (n < 0 && errno == EINTR);
  return n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : n;
}

static ssize_t
pipe_send(bh__transport *t, const struct iovec *iov, int iovcnt,
          const int *fds, size_t nfds) {
  pipe_end *p = (pipe_end *)t;
  ssize_t w;

  (void)fds;
  if (nfds > 0) {
    p->sends_with_fds++;
    return -EINVAL;
  }
  w = writev(p->wfd, iov, iovcnt);
  return w < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : w;
}

static void
pipe_handle_closed(uv_handle_t *h) {
  pipe_end *p = h->data;

  if (--p->open_handles > 0)
    return;
  close(p->rfd);
  close(p->wfd);
  if (p->done != NULL)
    p->done(p->done_arg);
  free(p);
}

static void
pipe_close(bh__transport *t, void (*done)(void *arg), void *arg) {
  pipe_end *p = (pipe_end *)t;

  p->done = done;
  p->done_arg = arg;
  uv_close((uv_handle_t *)&p->rpoll, pipe_handle_closed);
  uv_close((uv_handle_t *)&p->wpoll, pipe_handle_closed);
}

static const bh__transport_ops pipe_ops = {
    .name = "pipe",
    .max_fds = 0,
    .watch = pipe_watch,
    .recv = pipe_recv,
    .send = pipe_send,
    .close = pipe_close,
};

static pipe_end *
pipe_open(uv_loop_t *loop, int rfd, int wfd) {
  pipe_end *p = calloc(1, sizeof(*p));

  if (p == NULL || uv_poll_init(loop, &p->rpoll, rfd) != 0 ||
      uv_poll_init(loop, &p->wpoll, wfd) != 0)
    abort(); /* (a test's setup: no unwinding) */
  p->t.ops = &pipe_ops;
  p->rfd = rfd;
  p->wfd = wfd;
  p->rpoll.data = p->wpoll.data = p;
  p->open_handles = 2;
  return p;
}

/* ------------------------------------------------------------------------
 * Two channels on one loop, over pipes or over a socketpair. */

typedef struct side {
  bh__chan *c;
  pipe_end *pipe; /* NULL over the socketpair */
  msglog log;
  int nerr;
  int err;
} side;

typedef struct duo {
  uv_loop_t loop;
  side a, b;
  size_t live0;
} duo;

static void
on_msg(bh__chan *c, const bh__msg *m, void *udata) {
  side *s = udata;

  (void)c;
  msglog_add(&s->log, m);
}

static void
on_err(bh__chan *c, int err, const char *why, void *udata) {
  side *s = udata;

  (void)c;
  (void)why;
  s->nerr++;
  s->err = err;
}

/* Opens a and b on two pipes, or on a socketpair; max_frame for both. */
static int
duo_open(duo *d, bool pipes, size_t max_frame) {
  int ab[2], ba[2], sv[2];

  memset(d, 0, sizeof(*d));
  d->live0 = bh__alloc_live();
  signal(SIGPIPE, SIG_IGN);
  if (uv_loop_init(&d->loop) != 0 || bh__turn_init(&d->loop) != 0)
    return -1;
  if (!pipes)
    return bh__unix_pair(sv) != 0 ||
                   bh__chan_open(&d->a.c, &d->loop, sv[0], max_frame,
                                 on_msg, on_err, &d->a) != 0 ||
                   bh__chan_open(&d->b.c, &d->loop, sv[1], max_frame,
                                 on_msg, on_err, &d->b) != 0
               ? -1
               : 0;
  if (pipe2(ab, O_CLOEXEC) != 0 || pipe2(ba, O_CLOEXEC) != 0)
    return -1;
  d->a.pipe = pipe_open(&d->loop, ba[0], ab[1]);
  d->b.pipe = pipe_open(&d->loop, ab[0], ba[1]);
  return bh__chan_open_on(&d->a.c, &d->a.pipe->t, max_frame, on_msg, on_err,
                          &d->a) != 0 ||
                 bh__chan_open_on(&d->b.c, &d->b.pipe->t, max_frame, on_msg,
                                  on_err, &d->b) != 0
             ? -1
             : 0;
}

static int
duo_close(duo *d) {
  bh__chan_close(d->a.c);
  bh__chan_close(d->b.c);
  bh__turn_close();
  uv_run(&d->loop, UV_RUN_DEFAULT);
  return uv_loop_close(&d->loop);
}

#define DUO_CLOSE(d)                                                         \
  do {                                                                       \
    ASSERT_INT_EQ(duo_close(d), 0);                                          \
    ASSERT_INT_EQ(bh__alloc_live(), (d)->live0);                             \
  } while (0)

/* ------------------------------------------------------------------------
 * The channel over the pipe transport. */

/* Messages go both ways over a transport other than the socketpair, each
 * batch of one turn in one write. */
TEST(messages_travel_over_a_second_transport) {
  duo d;

  ASSERT_INT_EQ(duo_open(&d, true, 0), 0);
  ASSERT_INT_EQ(bh__send_simple(d.a.c, BH__MSG_NEW_TASK, 1), 0);
  ASSERT_INT_EQ(bh__send_simple(d.a.c, BH__MSG_CANCEL_TASK, 2), 0);
  ASSERT_INT_EQ(bh__send_accepted_started(d.b.c, 3), 0);
  ASSERT_INT_EQ(bh__send_die(d.b.c), 0);
  ASSERT_INT_EQ(run_until(&d.loop, &d.b.log.nmsg, 2), 0);
  ASSERT_INT_EQ(run_until(&d.loop, &d.a.log.nmsg, 2), 0);
  ASSERT_INT_EQ(d.b.log.type[0], BH__MSG_NEW_TASK);
  ASSERT_INT_EQ(d.b.log.id[0], 1);
  ASSERT_INT_EQ(d.b.log.type[1], BH__MSG_CANCEL_TASK);
  ASSERT_INT_EQ(d.b.log.id[1], 2);
  ASSERT_INT_EQ(d.a.log.type[0], BH__MSG_TASK_ACCEPTED);
  ASSERT_INT_EQ(d.a.log.id[0], 3);
  ASSERT_INT_EQ(d.a.log.type[1], BH__MSG_DIE);
  ASSERT_INT_EQ(bh__chan_writes(d.a.c), 1);
  ASSERT_INT_EQ(d.a.nerr + d.b.nerr, 0);
  DUO_CLOSE(&d);
  return 0;
}

/* A peer that closes its end: the other sees the end of the stream. */
TEST(end_of_a_pipe_transport_is_the_channel_end) {
  duo d;

  ASSERT_INT_EQ(duo_open(&d, true, 0), 0);
  bh__chan_close(d.b.c);
  d.b.c = NULL;
  ASSERT_INT_EQ(run_until(&d.loop, &d.a.nerr, 1), 0);
  ASSERT_INT_EQ(d.a.err, BH_EPIPE);
  DUO_CLOSE(&d);
  return 0;
}

/* Over a transport that cannot pass descriptors, a bin far above the blob
 * threshold travels inline (no descriptor is queued, the bytes are in the
 * output) and comes whole, through many partial writes (a pipe holds
 * 64 KiB). Over the socketpair the same bin goes as a blob: the decision
 * is the channel's, not the sender's. */
TEST(large_bins_travel_inline_where_descriptors_cannot) {
  const size_t n = (size_t)1 << 20;
  duo d;

  bh_set_blob_threshold(64 << 10);
  ASSERT_INT_EQ(duo_open(&d, true, 2 << 20), 0);
  ASSERT_INT_EQ(send_bin_result(d.a.c, 7, n), 0);
  ASSERT_INT_EQ(bh__chan_blobs(d.a.c)->len, 0);
  ASSERT(bh__chan_out(d.a.c)->len > n);
  ASSERT_INT_EQ(run_until(&d.loop, &d.b.log.nmsg, 1), 0);
  ASSERT_INT_EQ(d.b.log.type[0], BH__MSG_TASK_DONE);
  ASSERT_INT_EQ(d.b.log.bin_len[0], n);
  ASSERT(d.b.log.bin_ok[0]);
  ASSERT(bh__chan_writes(d.a.c) > 1);
  ASSERT_INT_EQ(d.a.pipe->sends_with_fds, 0);
  ASSERT_INT_EQ(d.a.nerr + d.b.nerr, 0);
  DUO_CLOSE(&d);

  ASSERT_INT_EQ(duo_open(&d, false, 2 << 20), 0);
  ASSERT_INT_EQ(send_bin_result(d.a.c, 8, n), 0);
  ASSERT_INT_EQ(bh__chan_blobs(d.a.c)->len, 1);
  ASSERT(bh__chan_out(d.a.c)->len < 1024);
  ASSERT_INT_EQ(run_until(&d.loop, &d.b.log.nmsg, 1), 0);
  ASSERT_INT_EQ(d.b.log.bin_len[0], n);
  ASSERT(d.b.log.bin_ok[0]);
  DUO_CLOSE(&d);
  return 0;
}

/* Inline, a large bin counts against max_frame: it is refused with
 * BH_EMSGSIZE, nothing is sent, and the message names the transport as
 * the reason (no advice to send a bin as a blob, which cannot help). */
TEST(inline_bins_are_held_to_max_frame) {
  duo d;
  char *why;

  bh_set_blob_threshold(64 << 10);
  ASSERT_INT_EQ(duo_open(&d, true, 256 << 10), 0);
  ASSERT_INT_EQ(send_bin_result(d.a.c, 1, 512 << 10), BH_EMSGSIZE);
  ASSERT_INT_EQ(bh__chan_out(d.a.c)->len, 0);
  why = bh__wire_too_big("The task's result", 256 << 10);
  ASSERT(why != NULL);
  ASSERT(strstr(why, "cannot pass descriptors") != NULL);
  ASSERT(strstr(why, "raise max_frame") != NULL);
  bh__free(why);
  ASSERT_INT_EQ(send_bin_result(d.a.c, 2, 128 << 10), 0);
  ASSERT_INT_EQ(run_until(&d.loop, &d.b.log.nmsg, 1), 0);
  ASSERT_INT_EQ(d.b.log.id[0], 2);
  ASSERT(d.b.log.bin_ok[0]);
  DUO_CLOSE(&d);

  /* Over the socketpair the same bin goes as a blob, beside the frame. */
  ASSERT_INT_EQ(duo_open(&d, false, 256 << 10), 0);
  ASSERT_INT_EQ(send_bin_result(d.a.c, 3, 512 << 10), 0);
  ASSERT_INT_EQ(run_until(&d.loop, &d.b.log.nmsg, 1), 0);
  ASSERT(d.b.log.bin_ok[0]);
  DUO_CLOSE(&d);
  return 0;
}

/* ------------------------------------------------------------------------
 * Watching a process apart from its channel. */

typedef struct watched {
  int ends;
  int status;
} watched;

static void
proc_end(bh__proc *p, void *udata) {
  watched *w = udata;

  w->ends++;
  if (bh__proc_reap(p))
    w->status = bh__proc_status(p);
}

static int
watch_an_exit(bool ended_first) {
  size_t live0 = bh__alloc_live();
  siginfo_t si = {0};
  bh__procs *set = NULL;
  bh__proc *p = NULL;
  watched w = {0};
  uv_loop_t loop;
  pid_t pid;

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0)
    _exit(7);
  /* Ended (not reaped) before the watch: its SIGCHLD reached no handler. */
  if (ended_first)
    ASSERT(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0);
  ASSERT_INT_EQ(bh__proc_watch(&p, &set, &loop, pid, proc_end, &w), 0);
  ASSERT_INT_EQ(run_until(&loop, &w.ends, 1), 0);
  ASSERT_INT_EQ(w.ends, 1);
  ASSERT(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 7);
  bh__proc_free(p);
  bh__procs_free(set);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* A child's end is reported by its pidfd, with no channel at all. */
TEST(a_process_end_is_reported_by_its_pidfd) {
  return watch_an_exit(false);
}

/* The same where pidfds are missing: SIGCHLD. */
TEST(a_process_end_is_reported_by_sigchld) {
  setenv("BH_NO_PIDFD", "1", 1);
  return watch_an_exit(false);
}

/* A process that ended before the first SIGCHLD watch was in place sent
 * its signal to no one; it is still reported (once it has joined the set,
 * not from inside bh__proc_watch). */
TEST(an_end_before_the_sigchld_watch_is_reported) {
  setenv("BH_NO_PIDFD", "1", 1);
  return watch_an_exit(true);
}

/* A process still running when its watch is freed is killed and reaped:
 * no zombie outlives the watch. */
TEST(a_freed_watch_leaves_no_zombie) {
  bh__procs *set = NULL;
  bh__proc *p = NULL;
  watched w = {0};
  uv_loop_t loop;
  siginfo_t si = {0};
  pid_t pid;

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    pause();
    _exit(0);
  }
  ASSERT_INT_EQ(bh__proc_watch(&p, &set, &loop, pid, proc_end, &w), 0);
  bh__proc_free(p);
  bh__procs_free(set);
  ASSERT(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG) < 0 &&
         errno == ECHILD);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(w.ends, 0);
  return 0;
}

/* A child with no local process (a peer that is only a connection, like
 * the in-process queen) is mourned when its channel ends, with no process
 * watch. */
TEST(a_child_without_a_process_is_mourned_on_channel_end) {
  size_t live0 = bh__alloc_live();
  bh__bee_opts o = {.id = -1, .max_conc = -1};
  uv_loop_t loop;
  bh_bee *bee;
  int sv[2];

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT_INT_EQ(bh__turn_init(&loop), 0);
  ASSERT_INT_EQ(bh__bee_new(&bee, &loop, -1, &o), 0);
  ASSERT_INT_EQ(bh__unix_pair(sv), 0);
  ASSERT_INT_EQ(bh__child_add(bee, sv[0], 0, -1, NULL, NULL), 0);
  ASSERT_INT_EQ(bee->kids.n_alive, 1);
  ASSERT(bee->kids.procs == NULL);
  close(sv[1]);
  while (bee->kids.n_alive > 0)
    ASSERT(uv_run(&loop, UV_RUN_ONCE) != 0 || bee->kids.n_alive == 0);
  ASSERT_INT_EQ(bee->kids.n, 0);
  bh__bee_free(bee);
  bh__turn_close();
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(messages_travel_over_a_second_transport),
          TEST_ENTRY(end_of_a_pipe_transport_is_the_channel_end),
          TEST_ENTRY(large_bins_travel_inline_where_descriptors_cannot),
          TEST_ENTRY(inline_bins_are_held_to_max_frame),
          TEST_ENTRY(a_process_end_is_reported_by_its_pidfd),
          TEST_ENTRY(a_process_end_is_reported_by_sigchld),
          TEST_ENTRY(an_end_before_the_sigchld_watch_is_reported),
          TEST_ENTRY(a_freed_watch_leaves_no_zombie),
          TEST_ENTRY(a_child_without_a_process_is_mourned_on_channel_end))
