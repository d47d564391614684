/* unix.c - the socketpair transport: a Unix stream socket watched with a
 * uv_poll_t, read and written with recvmsg()/sendmsg(). Not a uv_pipe_t:
 * libuv's streams cannot carry an arbitrary descriptor, and blobs
 * (blob.h) travel as memfds passed with SCM_RIGHTS. See transport.h. */
#include "transport/transport.h"
#include "base/base.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct unix_end {
  bh__transport t; /* first: a bh__transport * is a unix_end * */
  uv_poll_t poll;
  int fd;
  bh__transport_io_cb cb;
  void (*done)(void *arg); /* set by close */
  void *done_arg;
} unix_end;

/* A control message buffer for BH__TRANSPORT_MAX_FDS descriptors. */
typedef union ctl_buf {
  char buf[CMSG_SPACE(BH__TRANSPORT_MAX_FDS * sizeof(int))];
  struct cmsghdr align;
} ctl_buf;

static void
poll_cb(uv_poll_t *h, int status, int events) {
  unix_end *u = h->data;

  u->cb(&u->t, status, events);
}

static void
unix_watch(bh__transport *t, int events, bh__transport_io_cb cb) {
  unix_end *u = (unix_end *)t;

  u->cb = cb;
  if (events == 0)
    uv_poll_stop(&u->poll);
  else
    uv_poll_start(&u->poll, events, poll_cb);
}

/* Copies the SCM_RIGHTS descriptors of mh into rx; a truncated control
 * message (MSG_CTRUNC: those that fitted were installed all the same, and
 * the rest are gone) is said in rx->fds_lost. */
static void
take_fds(struct msghdr *mh, bh__transport_rx *rx) {
  struct cmsghdr *cm;

  rx->fds_lost = (mh->msg_flags & MSG_CTRUNC) != 0;
  for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
    size_t n;

    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    if (n > BH__TRANSPORT_MAX_FDS - rx->nfds) /* cannot be: the buffer */
      n = BH__TRANSPORT_MAX_FDS - rx->nfds;
    memcpy(rx->fds + rx->nfds, CMSG_DATA(cm), n * sizeof(int));
    rx->nfds += n;
  }
}

static ssize_t
unix_recv(bh__transport *t, void *buf, size_t len, bh__transport_rx *rx) {
  unix_end *u = (unix_end *)t;
  ctl_buf ctl;
  struct iovec iov = {buf, len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = ctl.buf,
                      .msg_controllen = sizeof(ctl.buf)};
  ssize_t n;

  rx->nfds = 0;
  rx->fds_lost = false;
  do
    n = recvmsg(u->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  /* (A control message truncated to nothing still says MSG_CTRUNC.) */
  if (n > 0 && (mh.msg_controllen > 0 || (mh.msg_flags & MSG_CTRUNC)))
    take_fds(&mh, rx);
  return n;
}

static ssize_t
unix_send(bh__transport *t, const struct iovec *iov, int iovcnt,
          const int *fds, size_t nfds) {
  unix_end *u = (unix_end *)t;
  ctl_buf ctl;
  struct msghdr mh = {.msg_iov = (struct iovec *)iov,
                      .msg_iovlen = (size_t)iovcnt};
  struct cmsghdr *cm;
  ssize_t w;

  BH_ASSERT(nfds <= BH__TRANSPORT_MAX_FDS);
  if (nfds > 0) {
    memset(ctl.buf, 0, sizeof(ctl.buf));
    mh.msg_control = ctl.buf;
    mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
  }
  w = sendmsg(u->fd, &mh, MSG_NOSIGNAL);
  return w < 0 ? -errno : w;
}

static void
closed_cb(uv_handle_t *h) {
  unix_end *u = h->data;
  void (*done)(void *) = u->done;
  void *arg = u->done_arg;

  close(u->fd);
  bh__free(u);
  if (done != NULL)
    done(arg);
}

static void
unix_close(bh__transport *t, void (*done)(void *arg), void *arg) {
  unix_end *u = (unix_end *)t;

  u->done = done;
  u->done_arg = arg;
  uv_close((uv_handle_t *)&u->poll, closed_cb);
}

static const bh__transport_ops unix_ops = {
    .name = "unix",
    .max_fds = BH__TRANSPORT_MAX_FDS,
    .watch = unix_watch,
    .recv = unix_recv,
    .send = unix_send,
    .close = unix_close,
};

int
bh__unix_pair(int sv[2]) {
  return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0
             ? 0
             : -errno;
}

int
bh__unix_open(bh__transport **out, uv_loop_t *loop, int fd) {
  unix_end *u;
  int err, type = 0;
  socklen_t tlen = sizeof(type);

  /* recvmsg() with descriptors needs a stream socket, not any fd. */
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0) {
    err = errno == ENOTSOCK ? BH_EINVAL : -errno;
    if (err != -EBADF)
      close(fd);
    return err;
  }
  if (type != SOCK_STREAM) {
    close(fd);
    return BH_EINVAL;
  }
  u = bh__calloc(1, sizeof(*u));
  if (u == NULL) {
    close(fd);
    return BH_ENOMEM;
  }
  err = uv_poll_init(loop, &u->poll, fd); /* makes fd non-blocking */
  if (err != 0) {
    close(fd);
    bh__free(u);
    return err;
  }
  u->t.ops = &unix_ops;
  u->fd = fd;
  u->poll.data = u;
  *out = &u->t;
  return 0;
}
