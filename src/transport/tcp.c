/* tcp.c - the TCP transport: a connected socket watched with a uv_poll_t
 * and read and written with recv()/sendmsg(), as unix.c does the
 * socketpair. Not a uv_tcp_t: the channel pulls bytes when the socket is
 * ready and writes vectors in place (chan.c); libuv's streams push reads
 * into buffers of their own and queue write requests, which would add a
 * copy and a queue the channel already has. Raw, the socket also lets the
 * handshake (tcp_join.c) peek at exactly the bytes of its records before
 * the channel sees any. See tcp.h. */
#include "transport/tcp.h"
#include "base/base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct tcp_end {
  bh__transport t; /* first: a bh__transport * is a tcp_end * */
  uv_poll_t poll;
  uv_timer_t timer; /* the handshake's deadline */
  int fd;
  int open_handles; /* freed when both are closed */
  bh__transport_io_cb cb;
  void (*done)(void *arg); /* set by close */
  void *done_arg;
} tcp_end;

/* libuv's poll makes UV_EBADF of any POLLERR, which names no cause; the
 * socket's pending error does: a connect refused (which a joiner tries
 * again), a connection reset, a host unreachable. */
static void
poll_cb(uv_poll_t *h, int status, int events) {
  tcp_end *e = h->data;
  int soerr = 0;
  socklen_t sl = sizeof(soerr);

  if (status == UV_EBADF &&
      getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr != 0)
    status = -soerr;
  e->cb(&e->t, status, events);
}

static void
tcp_watch(bh__transport *t, int events, bh__transport_io_cb cb) {
  tcp_end *e = (tcp_end *)t;

  e->cb = cb;
  if (events == 0)
    uv_poll_stop(&e->poll);
  else
    uv_poll_start(&e->poll, events, poll_cb);
}

static ssize_t
tcp_recv(bh__transport *t, void *buf, size_t len, bh__transport_rx *rx) {
  tcp_end *e = (tcp_end *)t;
  ssize_t n;

  rx->nfds = 0;
  rx->fds_lost = false;
  do
    n = recv(e->fd, buf, len, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  return n;
}

static ssize_t
tcp_send(bh__transport *t, const struct iovec *iov, int iovcnt,
         const int *fds, size_t nfds) {
  tcp_end *e = (tcp_end *)t;
  struct msghdr mh = {.msg_iov = (struct iovec *)iov,
                      .msg_iovlen = (size_t)iovcnt};
  ssize_t w;

  (void)fds;
  BH_ASSERT(nfds == 0); /* max_fds 0: the channel sends bins inline */
  w = sendmsg(e->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  return w < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : w;
}

static void
end_closed(tcp_end *e) {
  void (*done)(void *) = e->done;
  void *arg = e->done_arg;

  if (--e->open_handles > 0)
    return;
  close(e->fd);
  bh__free(e);
  if (done != NULL)
    done(arg);
}

/* (The timer's data is the handshake's: each handle finds the end by
 * where it lies in it.) */
static void
poll_closed(uv_handle_t *h) {
  end_closed((tcp_end *)(void *)((char *)h - offsetof(tcp_end, poll)));
}

static void
timer_closed(uv_handle_t *h) {
  end_closed((tcp_end *)(void *)((char *)h - offsetof(tcp_end, timer)));
}

static void
tcp_close(bh__transport *t, void (*done)(void *arg), void *arg) {
  tcp_end *e = (tcp_end *)t;

  e->done = done;
  e->done_arg = arg;
  uv_close((uv_handle_t *)&e->poll, poll_closed);
  uv_close((uv_handle_t *)&e->timer, timer_closed);
}

static const bh__transport_ops tcp_ops = {
    .name = "tcp",
    .max_fds = 0,
    .watch = tcp_watch,
    .recv = tcp_recv,
    .send = tcp_send,
    .close = tcp_close,
};

/* No Nagle delay (a task_accepted must not wait for an ack), and the
 * kernel's own verdicts on a dead peer as a backstop to the heartbeat:
 * keepalive probes that give up within about the heartbeat bound (they
 * only run while the connection is idle, which it is not while heartbeats
 * flow: so they speak when this process stops sending, its loop stuck),
 * and TCP_USER_TIMEOUT, which fails a connection whose sent bytes go
 * unacknowledged (else the retransmissions go on for minutes), at twice
 * the bound, so that the heartbeat's clearer cause comes first. */
/* Linux's ceilings for the keepalive settings (TCP_MAX_KEEPIDLE,
 * TCP_MAX_KEEPINTVL, TCP_MAX_KEEPCNT): beyond them setsockopt fails. */
#define KEEP_MAX_S 32767
#define KEEP_MAX_CNT 127

static int
tune(int fd, unsigned bound_ms) {
  /* Half the bound idle, then probes over the other half: one a second,
   * or fewer and further apart where the bound is long. */
  unsigned half = (bound_ms + 1999) / 2000;
  int one = 1, idle = (int)(half < KEEP_MAX_S ? half : KEEP_MAX_S);
  int cnt = idle < KEEP_MAX_CNT ? idle : KEEP_MAX_CNT;
  int intvl = (idle + cnt - 1) / cnt;
  unsigned user_timeout = 2 * bound_ms;

  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) !=
          0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
                 sizeof(user_timeout)) != 0)
    return -errno;
  return 0;
}

int
bh__tcp_retune(bh__transport *t) {
  return tune(bh__tcp_fd(t), t->heartbeat_ms * t->heartbeat_misses);
}

int
bh__tcp_open(bh__transport **out, uv_loop_t *loop, int fd,
             const bh__tcp_opts *o) {
  unsigned hb = o != NULL && o->heartbeat_ms ? o->heartbeat_ms
                                             : BH__TCP_HEARTBEAT_MS;
  unsigned misses = o != NULL && o->heartbeat_misses
                        ? o->heartbeat_misses
                        : BH__TCP_HEARTBEAT_MISSES;
  tcp_end *e;
  int err = tune(fd, hb * misses);

  if (err == 0 && (e = bh__calloc(1, sizeof(*e))) == NULL)
    err = BH_ENOMEM;
  if (err != 0) {
    close(fd);
    return err;
  }
  err = uv_poll_init(loop, &e->poll, fd); /* makes fd non-blocking */
  if (err != 0) {
    close(fd);
    bh__free(e);
    return err;
  }
  uv_timer_init(loop, &e->timer); /* cannot fail */
  e->t.ops = &tcp_ops;
  e->t.heartbeat_ms = hb;
  e->t.heartbeat_misses = misses;
  e->t.loop = loop;
  e->fd = fd;
  e->open_handles = 2;
  e->poll.data = e;
  *out = &e->t;
  return 0;
}

int
bh__tcp_fd(bh__transport *t) {
  return ((tcp_end *)t)->fd;
}

uv_timer_t *
bh__tcp_timer(bh__transport *t) {
  return &((tcp_end *)t)->timer;
}

void
bh__tcp_addr_str(const void *sa, char *buf, size_t len) {
  const struct sockaddr *s = sa;
  char host[INET6_ADDRSTRLEN] = "?";

  if (s->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = sa;

    inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
    snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
  } else {
    const struct sockaddr_in *s4 = sa;

    inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
    snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
  }
}
