/* relay.c - see relay.h. The relay is one libuv loop in a forked process.
 * Each accepted connection gets a connection to the upstream and two
 * directions, each a FIFO of the chunks read and not yet due, with a
 * timerfd armed at the head's due time: to the nanosecond, where libuv's
 * own timers count whole milliseconds and would make a 1 ms delay
 * anything from 1 to 2 ms. Every chunk waits the same delay, so the FIFO
 * stays in due order and the bytes in order. The end of a stream travels
 * as a chunk too (the write side is shut down when it is due), so that a
 * half-closed connection stays half-closed. */
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "bench.h"

#define CHUNK_MAX (64 << 10)
/* A direction holding this many bytes (due or being written) stops reading
 * until it is down to LOW_WATER: a slow reader slows its writer, as the
 * kernel's windows would, instead of filling the relay's memory. */
#define HIGH_WATER (4 << 20)
#define LOW_WATER (1 << 20)

typedef struct chunk {
  struct chunk *next;
  int64_t due; /* when it is written on, bench_now_ns() time */
  ssize_t len; /* bytes in data, or UV_EOF: the end of the stream */
  uv_write_t req;
  char data[];
} chunk;

struct conn;

typedef struct dir {
  struct conn *c;
  uv_tcp_t *from, *to;
  chunk *head, *tail; /* read, not yet due */
  size_t held;        /* bytes in the FIFO and in to's write queue */
  bool paused;        /* reading stopped at HIGH_WATER */
  bool eof;           /* from ended: never read again */
  int tfd;            /* the timerfd, armed at head->due */
  uv_poll_t tpoll;
  uv_shutdown_t sreq;
} dir;

typedef struct conn {
  uv_tcp_t down, up; /* the accepted connection, the one to the upstream */
  uv_connect_t creq;
  dir d[2];  /* d[0]: down to up; d[1]: up to down */
  int open;  /* handles not closed yet; freed at 0 */
  int ended; /* directions whose end was passed on */
  bool closing;
} conn;

static struct {
  uv_loop_t loop;
  int64_t delay_ns;
  struct sockaddr_in upstream;
  uv_tcp_t server;
  uv_poll_t ctl;
} R;

/* ---- the relay process ------------------------------------------------ */

/* Every handle of a connection, its data the connection by then. */
static void
handle_closed(uv_handle_t *h) {
  conn *c = h->data;

  if (--c->open == 0) {
    close(c->d[0].tfd);
    close(c->d[1].tfd);
    free(c);
  }
}

/* Ends both connections; chunks not yet written are dropped (their
 * peers are gone, or broke). */
static void
conn_close(conn *c) {
  int i;

  if (c->closing)
    return;
  c->closing = true;
  for (i = 0; i < 2; i++) {
    chunk *ch = c->d[i].head, *next;

    for (; ch != NULL; ch = next) {
      next = ch->next;
      free(ch);
    }
    c->d[i].head = c->d[i].tail = NULL;
    c->d[i].tpoll.data = c; /* was its direction's, for due() */
    uv_close((uv_handle_t *)&c->d[i].tpoll, handle_closed);
  }
  uv_close((uv_handle_t *)&c->down, handle_closed);
  uv_close((uv_handle_t *)&c->up, handle_closed);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  chunk *ch = malloc(sizeof(*ch) + CHUNK_MAX);

  (void)h;
  (void)suggested;
  *buf = uv_buf_init(ch != NULL ? ch->data : NULL, ch != NULL ? CHUNK_MAX : 0);
}

static chunk *
chunk_of(char *data) {
  return (chunk *)(void *)(data - offsetof(chunk, data));
}

static void
written(uv_write_t *req, int status) {
  chunk *ch = (chunk *)(void *)((char *)req - offsetof(chunk, req));
  dir *d = req->data;

  d->held -= (size_t)ch->len;
  free(ch);
  if (status < 0) {
    conn_close(d->c);
  } else if (d->paused && d->held < LOW_WATER && !d->eof && !d->c->closing) {
    d->paused = false;
    uv_read_start((uv_stream_t *)d->from, alloc_cb, read_cb);
  }
}

static void
shut(uv_shutdown_t *req, int status) {
  dir *d = req->data;

  if (status < 0 || ++d->c->ended == 2)
    conn_close(d->c);
}

/* Passes one due chunk on: its bytes, or the end of the stream. */
static void
pass(dir *d, chunk *ch) {
  uv_buf_t b = uv_buf_init(ch->data, (unsigned)(ch->len > 0 ? ch->len : 0));

  if (ch->len == UV_EOF) {
    free(ch);
    d->sreq.data = d;
    if (uv_shutdown(&d->sreq, (uv_stream_t *)d->to, shut) != 0)
      conn_close(d->c);
    return;
  }
  ch->req.data = d;
  if (uv_write(&ch->req, (uv_stream_t *)d->to, &b, 1, written) != 0) {
    d->held -= (size_t)ch->len;
    free(ch);
    conn_close(d->c);
  }
}

static void
arm(dir *d) {
  struct itimerspec its = {{0, 0}, {0, 0}};

  its.it_value.tv_sec = d->head->due / 1000000000;
  its.it_value.tv_nsec = d->head->due % 1000000000;
  timerfd_settime(d->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Writes on every chunk that is due, then arms the timer for the next. */
static void
deliver(dir *d) {
  int64_t now = bench_now_ns();

  while (d->head != NULL && d->head->due <= now && !d->c->closing) {
    chunk *ch = d->head;

    d->head = ch->next;
    if (d->head == NULL)
      d->tail = NULL;
    pass(d, ch);
  }
  if (d->head != NULL && !d->c->closing)
    arm(d);
}

static void
due(uv_poll_t *p, int status, int events) {
  dir *d = p->data;
  uint64_t fired;

  (void)status;
  (void)events;
  (void)!read(d->tfd, &fired, sizeof(fired));
  deliver(d);
}

static void
push(dir *d, chunk *ch) {
  ch->next = NULL;
  ch->due = bench_now_ns() + R.delay_ns;
  if (ch->len > 0)
    d->held += (size_t)ch->len;
  if (d->tail != NULL)
    d->tail->next = ch;
  else
    d->head = ch;
  d->tail = ch;
  if (R.delay_ns == 0)
    deliver(d);
  else if (d->head == ch)
    arm(d);
  if (d->held >= HIGH_WATER && !d->paused) {
    d->paused = true;
    uv_read_stop((uv_stream_t *)d->from);
  }
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn *c = s->data;
  dir *d = &c->d[s == (uv_stream_t *)&c->up];
  chunk *ch = buf->base != NULL ? chunk_of(buf->base) : NULL;

  if (n > 0) {
    chunk *small = realloc(ch, sizeof(*ch) + (size_t)n);

    ch = small != NULL ? small : ch;
    ch->len = n;
    push(d, ch);
  } else if (n == UV_EOF && ch != NULL) {
    uv_read_stop(s);
    d->eof = true;
    ch->len = UV_EOF;
    push(d, ch);
  } else {
    free(ch);
    if (n < 0)
      conn_close(c);
  }
}

static void
connected(uv_connect_t *req, int status) {
  conn *c = req->data;

  if (status < 0) {
    fprintf(stderr, "relay: cannot reach the upstream: %s\n",
            uv_strerror(status));
    conn_close(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->down, alloc_cb, read_cb);
  uv_read_start((uv_stream_t *)&c->up, alloc_cb, read_cb);
}

static int
dir_init(conn *c, int i) {
  dir *d = &c->d[i];

  d->c = c;
  d->from = i == 0 ? &c->down : &c->up;
  d->to = i == 0 ? &c->up : &c->down;
  d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (d->tfd < 0 || uv_poll_init(&R.loop, &d->tpoll, d->tfd) != 0)
    return -1;
  d->tpoll.data = d;
  uv_poll_start(&d->tpoll, UV_READABLE, due);
  return 0;
}

static void
on_accept(uv_stream_t *server, int status) {
  conn *c = calloc(1, sizeof(*c));

  if (status < 0 || c == NULL || dir_init(c, 0) != 0 || dir_init(c, 1) != 0) {
    fprintf(stderr, "relay: cannot take a connection\n");
    _exit(2);
  }
  uv_tcp_init(&R.loop, &c->down);
  uv_tcp_init(&R.loop, &c->up);
  c->down.data = c->up.data = c->creq.data = c;
  c->open = 4;
  if (uv_accept(server, (uv_stream_t *)&c->down) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->down, 1);
  uv_tcp_nodelay(&c->up, 1);
  if (uv_tcp_connect(&c->creq, &c->up, (struct sockaddr *)&R.upstream,
                     connected) != 0)
    conn_close(c);
}

/* The control pipe's end: the parent stopped the relay, or died. */
static void
ctl_cb(uv_poll_t *p, int status, int events) {
  (void)p;
  (void)status;
  (void)events;
  _exit(0); /* not exit(): the parent's stdio buffers are not ours */
}

/* Reads "HOST:PORT\n" from the control pipe. */
static int
read_upstream(int ctl) {
  char line[64], *colon;
  size_t n = 0;

  while (n + 1 < sizeof(line) && read(ctl, line + n, 1) == 1 && line[n] != '\n')
    n++;
  line[n] = '\0';
  colon = strrchr(line, ':');
  if (n == 0 || colon == NULL)
    return -1; /* stopped before it was given one */
  *colon = '\0';
  return uv_ip4_addr(line, atoi(colon + 1), &R.upstream) == 0 ? 0 : -1;
}

static void
relay_main(int fd, int ctl, int64_t delay_us) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN); /* a peer gone is an error from write */
  if (read_upstream(ctl) != 0)
    _exit(0);
  R.delay_ns = delay_us * 1000;
  if (uv_loop_init(&R.loop) != 0 || uv_tcp_init(&R.loop, &R.server) != 0 ||
      uv_tcp_open(&R.server, fd) != 0 ||
      uv_listen((uv_stream_t *)&R.server, 128, on_accept) != 0 ||
      uv_poll_init(&R.loop, &R.ctl, ctl) != 0 ||
      uv_poll_start(&R.ctl, UV_READABLE | UV_DISCONNECT, ctl_cb) != 0) {
    fprintf(stderr, "relay: cannot start its loop\n");
    _exit(2);
  }
  uv_run(&R.loop, UV_RUN_DEFAULT);
  _exit(0);
}

/* ---- the caller's side ------------------------------------------------ */

int
bench_relay_start(bench_relay *r, const char *host, int64_t delay_us) {
  int ctl[2], fd;

  memset(r, 0, sizeof(*r));
  r->ctl = -1;
  if ((fd = bench_listen(host, r->addr, sizeof(r->addr))) < 0)
    return -1;
  if (pipe2(ctl, O_CLOEXEC) != 0 || (r->pid = fork()) < 0) {
    fprintf(stderr, "relay: cannot start: %s\n", strerror(errno));
    close(fd);
    return -1;
  }
  if (r->pid == 0) {
    close(ctl[1]);
    relay_main(fd, ctl[0], delay_us);
  }
  close(fd);
  close(ctl[0]);
  r->ctl = ctl[1];
  return 0;
}

int
bench_relay_to(bench_relay *r, const char *upstream) {
  char line[80];
  int n = snprintf(line, sizeof(line), "%s\n", upstream);

  return write(r->ctl, line, (size_t)n) == n ? 0 : -1;
}

int
bench_relay_stop(bench_relay *r) {
  int st = 0;

  if (r->pid <= 0)
    return 0;
  close(r->ctl);
  while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
    ;
  r->pid = 0;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "relay: it failed (status %d)\n", st);
    return -1;
  }
  return 0;
}
