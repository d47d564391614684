/* tcp_join.c - authenticated TCP connections: the queen's listener and
 * the joining worker's connect, each running the handshake (auth.h) on
 * the raw socket before the connection becomes a transport. See tcp.h.
 *
 * Before the handshake is done, a peer can make us hold at most one
 * record: the socket is read with MSG_PEEK at most BH__AUTH_MAX bytes at a
 * time, and only the bytes the handshake used are taken from it. So
 * whatever follows the last record (the peer's first frames, sent right
 * behind it) stays in the socket for the channel, and nothing is read
 * that would have to be handed over. Every handshake has its deadline on
 * its own timer, and all of them run on the loop with everything else. */
#include "transport/tcp.h"
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PEER_LEN 64
/* Out of descriptors with no reserve: how long the listener pauses. */
#define RETRY_MS 100

/* One handshake under way (a dial is one). */
struct bh__tcp_dial {
  bh__auth a;
  bh__transport *t;
  size_t out_off;   /* how much of a.out is sent */
  bool connecting;  /* connect() under way */
  bool done;        /* DONE: handed over once a.out is sent */
  unsigned deadline_ms;
  char peer[PEER_LEN];
  bh__tcp_cb cb;
  void *arg;
  bh__tcp_listener *l; /* NULL for a dial */
  bh__tcp_dial *prev, *next;
};
typedef bh__tcp_dial hs;

struct bh__tcp_listener {
  uv_poll_t poll;
  int fd;
  int reserve;          /* /dev/null, given up to take a connection when
                         * the process is out of descriptors; -1: none */
  uv_timer_t retry;     /* restarts the watch after a pause (accept_cb) */
  uv_loop_t *loop;
  bh__tcp_opts o;
  unsigned char key[BH__KEY_LEN];
  bh__tcp_cb cb;
  void *arg;
  char addr[PEER_LEN];
  hs *pending;
  size_t npending;
  int closed;           /* handles closed so far (listener_closed) */
};

static void hs_io(bh__transport *t, int status, int events);

/* ------------------------------------------------------------------------
 * Addresses. */

/* Resolves "host:port" into ss. A listener's empty or "*" host is every
 * IPv4 address. Returns 0, or BH_EINVAL/BH_EDNS with why. */
static int
resolve(const char *hostport, bool passive, struct sockaddr_storage *ss,
        socklen_t *sslen, char *why, size_t len) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV}, *res;
  const char *colon = hostport != NULL ? strrchr(hostport, ':') : NULL;
  char host[256], *end;
  size_t hl;
  long port;
  int rc;

  if (colon == NULL || colon[1] == '\0') {
    snprintf(why, len, "address '%s': expected host:port",
             hostport != NULL ? hostport : "(null)");
    return BH_EINVAL;
  }
  port = strtol(colon + 1, &end, 10);
  hl = (size_t)(colon - hostport);
  if (*end != '\0' || port < 0 || port > 65535 || colon[1] == '-' ||
      colon[1] == '+') {
    snprintf(why, len, "address '%s': the port must be 0 to 65535",
             hostport);
    return BH_EINVAL;
  }
  if (hl >= 2 && hostport[0] == '[' && hostport[hl - 1] == ']') {
    hostport++; /* "[::1]:p" */
    hl -= 2;
  }
  if (hl >= sizeof(host)) {
    snprintf(why, len, "address '%s': host name too long", hostport);
    return BH_EINVAL;
  }
  memcpy(host, hostport, hl);
  host[hl] = '\0';
  if (passive && (hl == 0 || strcmp(host, "*") == 0)) {
    hints.ai_flags |= AI_PASSIVE;
    hints.ai_family = AF_INET;
  } else if (hl == 0) {
    snprintf(why, len, "address '%s': no host to connect to", hostport);
    return BH_EINVAL;
  }
  rc = getaddrinfo(hints.ai_flags & AI_PASSIVE ? NULL : host, colon + 1,
                   &hints, &res);
  if (rc != 0) {
    snprintf(why, len, "address '%s': host '%s' not resolved: %s",
             hostport, host, gai_strerror(rc));
    return BH_EDNS;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sslen = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

/* ------------------------------------------------------------------------
 * One handshake. */

static void
detach(hs *h) {
  bh__tcp_listener *l = h->l;

  uv_timer_stop(bh__tcp_timer(h->t));
  bh__auth_clear(&h->a);
  if (l == NULL)
    return;
  if (h->prev != NULL)
    h->prev->next = h->next;
  else
    l->pending = h->next;
  if (h->next != NULL)
    h->next->prev = h->prev;
  l->npending--;
}

/* Drops the handshake: its connection is closed, nobody is told. */
static void
drop(hs *h) {
  detach(h);
  h->t->ops->close(h->t, NULL, NULL);
  bh__free(h);
}

/* The handshake failed: the connection is closed, then cb says why. */
static void
hs_fail(hs *h, int err, const char *fmt, ...) {
  bh__tcp_cb cb = h->cb;
  void *arg = h->arg;
  char why[256], peer[PEER_LEN];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  memcpy(peer, h->peer, sizeof(peer));
  drop(h);
  cb(NULL, err, why, peer, arg);
}

/* Both proved the key and the last record is out: the connection is the
 * caller's transport now. */
static void
hs_done(hs *h) {
  bh__tcp_cb cb = h->cb;
  void *arg = h->arg;
  bh__transport *t = h->t;
  char peer[PEER_LEN];

  memcpy(peer, h->peer, sizeof(peer));
  detach(h);
  t->ops->watch(t, 0, hs_io);
  t->data = NULL;
  bh__free(h);
  cb(t, 0, NULL, peer, arg);
}

/* Sends what is left of a.out. Returns 1 when all of it is out, 0 when
 * the socket is full, or -errno. */
static int
send_out(hs *h) {
  int fd = bh__tcp_fd(h->t);

  while (h->out_off < h->a.out_len) {
    ssize_t w = send(fd, h->a.out + h->out_off, h->a.out_len - h->out_off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);

    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    h->out_off += (size_t)w;
  }
  h->a.out_len = h->out_off = 0;
  return 1;
}

/* "authentication failed: X" said of the peer: "authentication failed
 * from 10.1.2.2:40312: X". */
static void
refused(hs *h) {
  static const char head[] = "authentication failed: ";
  const char *why = h->a.why;

  if (strncmp(why, head, sizeof(head) - 1) == 0)
    why += sizeof(head) - 1;
  hs_fail(h, BH_EPROTO, "authentication failed %s %s: %s",
          h->l != NULL ? "from" : "with", h->peer, why);
}

/* Feeds the records waiting in the socket to the handshake, taking from
 * the socket only the bytes it used. Returns false once h is gone. */
static bool
read_records(hs *h) {
  int fd = bh__tcp_fd(h->t);
  unsigned char buf[BH__AUTH_MAX];

  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    size_t used;
    bh__auth_rc rc;

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return true;
    if (n < 0) {
      hs_fail(h, -errno, "connection %s %s failed during the handshake: %s",
              h->l != NULL ? "from" : "to", h->peer, strerror(errno));
      return false;
    }
    if (n == 0) {
      hs_fail(h, BH_EPIPE, "%s closed the connection during the handshake",
              h->peer);
      return false;
    }
    rc = bh__auth_feed(&h->a, buf, (size_t)n, &used);
    /* The peeked bytes the handshake used: they are in buf already. */
    while (recv(fd, buf, used, MSG_DONTWAIT) < 0 && errno == EINTR)
      ;
    if (rc == BH__AUTH_FAIL) {
      send_out(h); /* the refusal, if any: best effort */
      refused(h);
      return false;
    }
    if (rc == BH__AUTH_DONE) {
      h->done = true;
      return true;
    }
    if (h->a.out_len > 0)
      return true; /* its answer leaves before the next record is read */
  }
}

static void
hs_watch(hs *h) {
  int events = h->connecting ? UV_WRITABLE : UV_READABLE;

  if (h->a.out_len > 0)
    events |= UV_WRITABLE;
  h->t->ops->watch(h->t, events, hs_io);
}

/* connect() finished: 0, or false once h is gone. */
static bool
connected(hs *h) {
  int soerr = 0;
  socklen_t sl = sizeof(soerr);

  if (getsockopt(bh__tcp_fd(h->t), SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
    soerr = errno;
  if (soerr != 0) {
    hs_fail(h, -soerr, "cannot connect to %s: %s", h->peer,
            strerror(soerr));
    return false;
  }
  h->connecting = false;
  return true;
}

static void
hs_io(bh__transport *t, int status, int events) {
  hs *h = t->data;
  int rc;

  if (status < 0 && h->connecting) {
    hs_fail(h, status, "cannot connect to %s: %s", h->peer,
            strerror(-status));
    return;
  }
  if (status < 0) {
    hs_fail(h, status, "connection %s %s failed during the handshake: %s",
            h->l != NULL ? "from" : "to", h->peer, uv_strerror(status));
    return;
  }
  if (h->connecting && !((events & UV_WRITABLE) && connected(h)))
    return;
  /* What is owed leaves before the next record is read: a record read
   * may put the next answer (a refusal) in its place. */
  if ((rc = send_out(h)) == 1 && !h->done && (events & UV_READABLE) &&
      !read_records(h))
    return;
  if (rc >= 0)
    rc = send_out(h);
  if (rc < 0) {
    hs_fail(h, rc, "connection %s %s failed during the handshake: %s",
            h->l != NULL ? "from" : "to", h->peer, strerror(-rc));
    return;
  }
  if (rc == 1 && h->done)
    hs_done(h);
  else
    hs_watch(h);
}

static void
deadline_cb(uv_timer_t *timer) {
  hs *h = timer->data;

  if (h->connecting)
    hs_fail(h, BH_ETIMEDOUT, "cannot connect to %s within %u ms", h->peer,
            h->deadline_ms);
  else
    hs_fail(h, BH_ETIMEDOUT, "handshake %s %s not done within %u ms: cut "
            "off", h->l != NULL ? "from" : "with", h->peer, h->deadline_ms);
}

/* Starts the handshake on t in role, its deadline running. Returns 0, or
 * an error with t closed. */
static int
hs_start(hs **out, bh__transport *t, bh__auth_role role,
         const bh__tcp_opts *o, const char *peer, bool connecting) {
  hs *h = bh__calloc(1, sizeof(*h));
  uv_timer_t *timer = bh__tcp_timer(t);

  if (h == NULL || bh__auth_init(&h->a, role, o->key) != 0) {
    bh__free(h);
    t->ops->close(t, NULL, NULL);
    return h == NULL ? BH_ENOMEM : -EIO;
  }
  h->t = t;
  h->connecting = connecting;
  h->deadline_ms = o->handshake_ms ? o->handshake_ms : BH__TCP_HANDSHAKE_MS;
  snprintf(h->peer, sizeof(h->peer), "%s", peer);
  t->data = h;
  timer->data = h;
  uv_timer_start(timer, deadline_cb, h->deadline_ms, 0);
  hs_watch(h);
  *out = h;
  return 0;
}

static int
check_opts(const bh__tcp_opts *o, char *why, size_t len) {
  if (o == NULL || o->key == NULL) {
    snprintf(why, len, "no key: a TCP connection needs the hive's key");
    return BH_EINVAL;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * The queen's side: listening. */

static void
accept_one(bh__tcp_listener *l, int fd, const struct sockaddr_storage *ss) {
  char peer[PEER_LEN];
  bh__transport *t;
  hs *h;
  int err;

  bh__tcp_addr_str(ss, peer, sizeof(peer));
  err = bh__tcp_open(&t, l->loop, fd, &l->o);
  if (err == 0)
    err = hs_start(&h, t, BH__AUTH_QUEEN, &l->o, peer, false);
  if (err != 0) {
    char why[128];

    snprintf(why, sizeof(why), "connection from %s not taken: %s", peer,
             bh_strerror(err));
    l->cb(NULL, err, why, peer, l->arg);
    return;
  }
  h->l = l;
  h->cb = l->cb;
  h->arg = l->arg;
  h->next = l->pending;
  if (l->pending != NULL)
    l->pending->prev = h;
  l->pending = h;
  l->npending++;
}

/* Out of descriptors (EMFILE, ENFILE), the connection at the head of the
 * queue cannot be accepted, and the listener would be ready again at every
 * turn of the loop: it spins. So the reserve descriptor is given up to
 * accept it, the connection is closed at once (its peer sees the end) and
 * refused by name, and the reserve is taken back. False when there is no
 * reserve: the caller then stops watching for a while. */
static bool
refuse_for_want_of_fds(bh__tcp_listener *l, int err) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  char peer[PEER_LEN], why[160];
  int fd;

  if (l->reserve < 0)
    return false;
  close(l->reserve);
  fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
  if (fd >= 0) {
    bh__tcp_addr_str(&ss, peer, sizeof(peer));
    close(fd);
  }
  l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return true; /* gone meanwhile */
  snprintf(why, sizeof(why), "connection from %s refused: this process is "
           "out of file descriptors (%s; see ulimit -n)", peer,
           err == EMFILE ? "EMFILE" : "ENFILE");
  l->cb(NULL, -err, why, peer, l->arg);
  return true;
}

static void accept_cb(uv_poll_t *p, int status, int events);

static void
retry_cb(uv_timer_t *timer) {
  bh__tcp_listener *l = timer->data;

  uv_poll_start(&l->poll, UV_READABLE, accept_cb);
}

static void
accept_cb(uv_poll_t *p, int status, int events) {
  bh__tcp_listener *l = p->data;

  (void)events;
  if (status < 0)
    return;
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd >= 0) {
      accept_one(l, fd, &ss);
    } else if ((errno == EMFILE || errno == ENFILE) &&
               !refuse_for_want_of_fds(l, errno)) {
      /* No reserve either: look again in a while, not at every turn. */
      uv_poll_stop(&l->poll);
      uv_timer_start(&l->retry, retry_cb, RETRY_MS, 0);
      return;
    } else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE &&
               errno != ENFILE) {
      return; /* EAGAIN: all taken */
    }
  }
}

int
bh__tcp_listen(bh__tcp_listener **out, uv_loop_t *loop,
               const char *hostport, const bh__tcp_opts *o, bh__tcp_cb cb,
               void *arg, char *why, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl;
  bh__tcp_listener *l;
  int one = 1, fd, err;

  if ((err = check_opts(o, why, len)) != 0 ||
      (err = resolve(hostport, true, &ss, &sl, why, len)) != 0)
    return err;
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    err = -errno;
    snprintf(why, len, "cannot listen on '%s': %s", hostport,
             strerror(errno));
    if (fd >= 0)
      close(fd);
    return err;
  }
  l = bh__calloc(1, sizeof(*l));
  if (l == NULL || (err = uv_poll_init(loop, &l->poll, fd)) != 0) {
    snprintf(why, len, "cannot listen on '%s': %s", hostport,
             l == NULL ? "no memory" : uv_strerror(err));
    bh__free(l);
    close(fd);
    return l == NULL ? BH_ENOMEM : err;
  }
  l->fd = fd;
  l->loop = loop;
  l->o = *o;
  memcpy(l->key, o->key, BH__KEY_LEN);
  l->o.key = l->key;
  l->cb = cb;
  l->arg = arg;
  l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
  uv_timer_init(loop, &l->retry);
  l->retry.data = l;
  bh__tcp_addr_str(&ss, l->addr, sizeof(l->addr));
  l->poll.data = l;
  uv_poll_start(&l->poll, UV_READABLE, accept_cb);
  *out = l;
  return 0;
}

const char *
bh__tcp_listener_addr(const bh__tcp_listener *l) {
  return l->addr;
}

size_t
bh__tcp_listener_pending(const bh__tcp_listener *l) {
  return l->npending;
}

/* Called for the poll and the retry timer: the second frees l. */
static void
listener_closed(uv_handle_t *h) {
  bh__tcp_listener *l = h->data;

  if (++l->closed < 2)
    return;
  close(l->fd);
  if (l->reserve >= 0)
    close(l->reserve);
  memset(l->key, 0, sizeof(l->key));
  bh__free(l);
}

void
bh__tcp_listener_close(bh__tcp_listener *l) {
  if (l == NULL)
    return;
  while (l->pending != NULL)
    drop(l->pending);
  uv_close((uv_handle_t *)&l->poll, listener_closed);
  uv_close((uv_handle_t *)&l->retry, listener_closed);
}

/* ------------------------------------------------------------------------
 * The worker's side: connecting. */

int
bh__tcp_connect(bh__tcp_dial **out, uv_loop_t *loop, const char *hostport,
                const bh__tcp_opts *o, bh__tcp_cb cb, void *arg, char *why,
                size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl;
  char peer[PEER_LEN];
  bh__transport *t;
  hs *h;
  int fd, err;

  if ((err = check_opts(o, why, len)) != 0 ||
      (err = resolve(hostport, false, &ss, &sl, why, len)) != 0)
    return err;
  bh__tcp_addr_str(&ss, peer, sizeof(peer));
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = -errno;
    snprintf(why, len, "cannot connect to %s: %s", peer, strerror(errno));
    return err;
  }
  if ((err = bh__tcp_open(&t, loop, fd, o)) != 0) {
    snprintf(why, len, "cannot connect to %s: %s", peer, bh_strerror(err));
    return err;
  }
  if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
    err = -errno;
    snprintf(why, len, "cannot connect to %s: %s", peer, strerror(errno));
    t->ops->close(t, NULL, NULL);
    return err;
  }
  if ((err = hs_start(&h, t, BH__AUTH_WORKER, o, peer, true)) != 0) {
    snprintf(why, len, "cannot connect to %s: %s", peer, bh_strerror(err));
    return err;
  }
  h->cb = cb;
  h->arg = arg;
  if (out != NULL)
    *out = h;
  return 0;
}

void
bh__tcp_dial_cancel(bh__tcp_dial *d) {
  if (d != NULL)
    drop(d);
}
