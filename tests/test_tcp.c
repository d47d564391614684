/* test_tcp.c - the TCP transport and its handshake (transport/tcp.h):
 * channels between a listener (the queen's side) and a connection (the
 * joining worker's) on loopback carry the protocol both ways, with large
 * bins inline; nobody without the key gets a transport, and every refusal
 * names the peer; garbage and slow peers are cut off without holding up
 * anyone else; bytes sent right behind the handshake are the first frames;
 * heartbeats keep a quiet channel alive and declare a peer behind a cut
 * link dead within the bound; a peer that closes ends the channel. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"
#include "fixture.h"
#include "runner.h"
#include "runtime/turn.h"
#include "transport/chan_raw.h"
#include "transport/send.h"
#include "transport/tcp.h"
#include "value/blob.h"

static const unsigned char KEY[BH__KEY_LEN] = "0123456789abcdef0123456789abcde";
static const unsigned char OTHER[BH__KEY_LEN] = "fedcba9876543210fedcba987654321";

/* One end: the outcome of its handshake, then its channel's messages. */
typedef struct side {
  bh__transport *t; /* until a channel takes it */
  int done;         /* handshakes ended (cb calls) */
  int err;
  char why[256], peer[64];
  uint64_t at;      /* when the handshake ended (the loop's ms) */
  bh__chan *c;
  msglog log;
  int nerr, cerr;
  char cwhy[128];
  uint64_t cerr_at;
} side;

typedef struct net {
  uv_loop_t loop;
  size_t live0;
  bh__tcp_listener *l;
  side q, w; /* the listener's connection, the dialer's */
} net;

static uv_loop_t *the_loop;

static void
hs_cb(bh__transport *t, int err, const char *why, const char *peer,
      void *arg) {
  side *s = arg;

  s->done++;
  s->t = t;
  s->err = err;
  s->at = uv_now(the_loop);
  snprintf(s->why, sizeof(s->why), "%s", why != NULL ? why : "");
  snprintf(s->peer, sizeof(s->peer), "%s", peer);
}

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
  s->nerr++;
  s->cerr = err;
  s->cerr_at = uv_now(the_loop);
  snprintf(s->cwhy, sizeof(s->cwhy), "%s", why);
}

static int
net_init(net *n) {
  memset(n, 0, sizeof(*n));
  n->live0 = bh__alloc_live();
  signal(SIGPIPE, SIG_IGN);
  the_loop = &n->loop;
  if (uv_loop_init(&n->loop) != 0 || bh__turn_init(&n->loop) != 0)
    return -1;
  return 0;
}

/* A listener on host:0 with o (key KEY unless o says). */
static int
net_listen(net *n, const char *host, bh__tcp_opts *o) {
  char addr[64], why[128];

  snprintf(addr, sizeof(addr), "%s:0", host);
  if (o->key == NULL)
    o->key = KEY;
  return bh__tcp_listen(&n->l, &n->loop, addr, o, hs_cb, &n->q, why,
                        sizeof(why));
}

static int
net_dial(net *n, bh__tcp_opts *o) {
  char why[128];

  if (o->key == NULL)
    o->key = KEY;
  return bh__tcp_connect(NULL, &n->loop, bh__tcp_listener_addr(n->l), o,
                         hs_cb, &n->w, why, sizeof(why));
}

/* Opens the channel of a side whose handshake is done. */
static int
side_open(side *s, size_t max_frame) {
  bh__transport *t = s->t;

  s->t = NULL;
  return bh__chan_open_on(&s->c, t, max_frame, on_msg, on_err, s);
}

/* Both ends connected and authenticated, each with its channel. */
static int
net_pair(net *n, size_t max_frame) {
  bh__tcp_opts o = {0};

  if (net_init(n) != 0 || net_listen(n, "127.0.0.1", &o) != 0 ||
      net_dial(n, &o) != 0 || run_until(&n->loop, &n->q.done, 1) != 0 ||
      run_until(&n->loop, &n->w.done, 1) != 0 || n->q.err != 0 ||
      n->w.err != 0)
    return -1;
  return side_open(&n->q, max_frame) != 0 || side_open(&n->w, max_frame) != 0
             ? -1
             : 0;
}

static int
net_close(net *n) {
  bh__chan_close(n->q.c);
  bh__chan_close(n->w.c);
  bh__tcp_listener_close(n->l);
  bh__turn_close();
  uv_run(&n->loop, UV_RUN_DEFAULT);
  return uv_loop_close(&n->loop);
}

#define NET_CLOSE(n)                                                         \
  do {                                                                       \
    ASSERT_INT_EQ(net_close(n), 0);                                          \
    ASSERT_INT_EQ(bh__alloc_live(), (n)->live0);                             \
  } while (0)

/* A blocking client socket connected to the listener. */
static int
raw_connect(const bh__tcp_listener *l) {
  const char *addr = bh__tcp_listener_addr(l), *colon = strrchr(addr, ':');
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  char host[32];
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
  inet_pton(AF_INET, host, &sa.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    return -1;
  return fd;
}

/* "127.0.0.1:PORT" of fd's own end. */
static void
local_addr(int fd, char *buf, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);

  getsockname(fd, (struct sockaddr *)&ss, &sl);
  bh__tcp_addr_str(&ss, buf, len);
}

/* ------------------------------------------------------------------------
 * The channel over TCP. */

/* The protocol's messages go both ways, each turn's in one write; a bin
 * far above the blob threshold travels inline (the transport passes no
 * descriptors) and comes whole; one over max_frame is refused with
 * BH_EMSGSIZE, nothing sent, and the channel goes on. */
TEST(messages_travel_both_ways_over_tcp) {
  const size_t big = (size_t)1 << 20;
  net n;

  bh_set_blob_threshold(64 << 10);
  ASSERT_INT_EQ(net_pair(&n, 2 << 20), 0);
  ASSERT_STR_EQ(n.w.peer, bh__tcp_listener_addr(n.l));
  ASSERT_INT_EQ(bh__send_simple(n.w.c, BH__MSG_NEW_TASK, 1), 0);
  ASSERT_INT_EQ(bh__send_simple(n.w.c, BH__MSG_CANCEL_TASK, 2), 0);
  ASSERT_INT_EQ(bh__send_accepted_started(n.q.c, 3), 0);
  ASSERT_INT_EQ(bh__send_die(n.q.c), 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.q.log.nmsg, 2), 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.w.log.nmsg, 2), 0);
  ASSERT_INT_EQ(n.q.log.type[0], BH__MSG_NEW_TASK);
  ASSERT_INT_EQ(n.q.log.id[0], 1);
  ASSERT_INT_EQ(n.q.log.type[1], BH__MSG_CANCEL_TASK);
  ASSERT_INT_EQ(n.w.log.type[0], BH__MSG_TASK_ACCEPTED);
  ASSERT_INT_EQ(n.w.log.id[0], 3);
  ASSERT_INT_EQ(n.w.log.type[1], BH__MSG_DIE);
  ASSERT_INT_EQ(bh__chan_writes(n.w.c), 1);

  ASSERT_INT_EQ(send_bin_result(n.q.c, 7, big), 0);
  ASSERT_INT_EQ(bh__chan_blobs(n.q.c)->len, 0);
  ASSERT(bh__chan_out(n.q.c)->len > big);
  ASSERT_INT_EQ(send_bin_result(n.q.c, 8, 4 << 20), BH_EMSGSIZE);
  ASSERT_INT_EQ(run_until(&n.loop, &n.w.log.nmsg, 3), 0);
  ASSERT_INT_EQ(n.w.log.type[2], BH__MSG_TASK_DONE);
  ASSERT_INT_EQ(n.w.log.id[2], 7);
  ASSERT_INT_EQ(n.w.log.bin_len[2], big);
  ASSERT(n.w.log.bin_ok[2]);
  ASSERT_INT_EQ(send_bin_result(n.w.c, 9, big), 0); /* and the other way */
  ASSERT_INT_EQ(run_until(&n.loop, &n.q.log.nmsg, 3), 0);
  ASSERT_INT_EQ(n.q.log.bin_len[2], big);
  ASSERT(n.q.log.bin_ok[2]);
  ASSERT_INT_EQ(n.q.nerr + n.w.nerr, 0);
  NET_CLOSE(&n);
  return 0;
}

/* A peer that closes its end: the other sees an ordinary end of stream. */
TEST(a_peer_that_closes_ends_the_channel) {
  net n;

  ASSERT_INT_EQ(net_pair(&n, 0), 0);
  bh__chan_close(n.w.c);
  n.w.c = NULL;
  ASSERT_INT_EQ(run_until(&n.loop, &n.q.nerr, 1), 0);
  ASSERT_INT_EQ(n.q.cerr, BH_EPIPE);
  ASSERT_STR_EQ(n.q.cwhy, "end of stream");
  NET_CLOSE(&n);
  return 0;
}

/* ------------------------------------------------------------------------
 * The handshake. */

/* A worker with another key is refused: neither side gets a transport,
 * and each says who failed, the queen with the worker's address. */
TEST(a_wrong_key_is_refused_with_the_address) {
  bh__tcp_opts o = {0}, bad = {.key = OTHER};
  char want[320];
  net n;

  ASSERT_INT_EQ(net_init(&n), 0);
  ASSERT_INT_EQ(net_listen(&n, "127.0.0.1", &o), 0);
  ASSERT_INT_EQ(net_dial(&n, &bad), 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.q.done, 1), 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.w.done, 1), 0);
  ASSERT(n.q.t == NULL && n.w.t == NULL);
  ASSERT_INT_EQ(n.q.err, BH_EPROTO);
  snprintf(want, sizeof(want), "authentication failed from %s: the joining "
           "worker does not have the hive's key", n.q.peer);
  ASSERT_STR_EQ(n.q.why, want);
  ASSERT(strncmp(n.q.peer, "127.0.0.1:", 10) == 0);
  ASSERT_INT_EQ(n.w.err, BH_EPROTO);
  snprintf(want, sizeof(want), "authentication failed with %s: the queen "
           "refused this worker's key", bh__tcp_listener_addr(n.l));
  ASSERT_STR_EQ(n.w.why, want);
  ASSERT_INT_EQ(bh__tcp_listener_pending(n.l), 0);
  NET_CLOSE(&n);
  return 0;
}

/* The fake queen of the tests below, in a child process: accepts one
 * connection on lfd, says HELLO with `key`, reads the worker's PROOF and
 * answers it with a record `accept` (NULL: the ACCEPT of its own auth
 * state, right behind which it sends a `die` frame in the same write).
 * Exits 0 once all is sent and the worker closed. */
static int
fake_queen(int lfd, const unsigned char *key, const char *acc) {
  unsigned char in[BH__AUTH_MAX], out[256];
  bh__buf frame = {0};
  size_t used, len = 0;
  bh__auth a;
  int fd = accept(lfd, NULL, NULL);

  if (fd < 0 || bh__auth_init(&a, BH__AUTH_QUEEN, key) != 0 ||
      write(fd, a.out, a.out_len) != (ssize_t)a.out_len)
    return 2;
  a.out_len = 0;
  for (size_t got = 0; got < BH__AUTH_MAX;) {
    ssize_t r = read(fd, in + got, BH__AUTH_MAX - got);

    if (r <= 0)
      return 3;
    got += (size_t)r;
  }
  if (acc != NULL) {
    len = 5 + BH__AUTH_MAC;
    memcpy(out, acc, len);
  } else {
    if (bh__auth_feed(&a, in, sizeof(in), &used) != BH__AUTH_DONE ||
        bh__wire_put_die(&frame, 1024) != 0)
      return 4;
    memcpy(out, a.out, a.out_len);
    memcpy(out + a.out_len, frame.data, frame.len);
    len = a.out_len + frame.len;
  }
  if (write(fd, out, len) != (ssize_t)len) /* one write: one segment */
    return 5;
  while (read(fd, in, sizeof(in)) > 0)
    ;
  return 0;
}

static int
fork_fake_queen(net *n, int *lfd, const unsigned char *key,
                const char *accept, pid_t *pid) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof(sa);
  char addr[64], why[128];
  bh__tcp_opts o = {.key = KEY};

  *lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*lfd < 0 || bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(*lfd, 1) != 0 ||
      getsockname(*lfd, (struct sockaddr *)&sa, &sl) != 0)
    return -1;
  *pid = fork();
  if (*pid == 0)
    _exit(fake_queen(*lfd, key, accept));
  bh__tcp_addr_str(&sa, addr, sizeof(addr));
  return bh__tcp_connect(NULL, &n->loop, addr, &o, hs_cb, &n->w, why,
                         sizeof(why));
}

/* Nobody listens at the address (its port is bound, not listening): the
 * dial fails as refused, which a joiner tries again (join.c), and says
 * so; not with the UV_EBADF that libuv's poll makes of any POLLERR. */
TEST(a_dial_where_nobody_listens_is_refused) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t sl = sizeof(sa);
  bh__tcp_opts o = {.key = KEY};
  char addr[64], why[256], want[160];
  net n;
  int rc, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT(fd >= 0);
  ASSERT_INT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ASSERT_INT_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  bh__tcp_addr_str(&sa, addr, sizeof(addr));
  ASSERT_INT_EQ(net_init(&n), 0);
  rc = bh__tcp_connect(NULL, &n.loop, addr, &o, hs_cb, &n.w, why,
                       sizeof(why));
  if (rc == 0) { /* refused later, as usual, rather than inside connect() */
    ASSERT_INT_EQ(run_until(&n.loop, &n.w.done, 1), 0);
    ASSERT(n.w.t == NULL);
    rc = n.w.err;
    snprintf(why, sizeof(why), "%s", n.w.why);
  }
  ASSERT_INT_EQ(rc, BH_ECONNREFUSED);
  snprintf(want, sizeof(want), "cannot connect to %s: %s", addr,
           strerror(ECONNREFUSED));
  ASSERT_STR_EQ(why, want);
  close(fd);
  NET_CLOSE(&n);
  return 0;
}

/* A queen without the key cannot fake its proof: the worker refuses it
 * and names it. */
TEST(a_queen_without_the_key_is_refused) {
  char accept[5 + BH__AUTH_MAC], want[160];
  pid_t pid;
  net n;
  int lfd;

  memcpy(accept, "BHA1A", 5);
  memset(accept + 5, 0x5a, BH__AUTH_MAC);
  ASSERT_INT_EQ(net_init(&n), 0);
  ASSERT_INT_EQ(fork_fake_queen(&n, &lfd, OTHER, accept, &pid), 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.w.done, 1), 0);
  ASSERT(n.w.t == NULL);
  ASSERT_INT_EQ(n.w.err, BH_EPROTO);
  snprintf(want, sizeof(want), "authentication failed with %s: the queen "
           "does not have the hive's key", n.w.peer);
  ASSERT_STR_EQ(n.w.why, want);
  close(lfd);
  NET_CLOSE(&n);
  ASSERT_INT_EQ(bh_test_exit_code(pid), 0);
  return 0;
}

/* A frame the queen sends right behind its ACCEPT, in the same segment,
 * is not lost to the handshake: it is the channel's first message. */
TEST(bytes_after_the_handshake_are_the_first_frames) {
  pid_t pid;
  net n;
  int lfd;

  ASSERT_INT_EQ(net_init(&n), 0);
  ASSERT_INT_EQ(fork_fake_queen(&n, &lfd, KEY, NULL, &pid), 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.w.done, 1), 0);
  ASSERT_INT_EQ(n.w.err, 0);
  ASSERT_INT_EQ(side_open(&n.w, 0), 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.w.log.nmsg, 1), 0);
  ASSERT_INT_EQ(n.w.log.type[0], BH__MSG_DIE);
  ASSERT_INT_EQ(n.w.nerr, 0);
  close(lfd);
  NET_CLOSE(&n); /* the worker closes: the fake queen's read ends */
  ASSERT_INT_EQ(bh_test_exit_code(pid), 0);
  return 0;
}

/* Bytes that are not the handshake are refused at once, the peer named;
 * the queen's HELLO and its REFUSE are all the peer gets. */
TEST(garbage_before_authentication_is_refused) {
  static const char get[] = "GET / HTTP/1.0\r\n\r\n";
  char buf[128], want[160], me[64];
  bh__tcp_opts o = {0};
  size_t got = 0;
  ssize_t r;
  net n;
  int fd;

  ASSERT_INT_EQ(net_init(&n), 0);
  ASSERT_INT_EQ(net_listen(&n, "127.0.0.1", &o), 0);
  fd = raw_connect(n.l);
  ASSERT(fd >= 0);
  local_addr(fd, me, sizeof(me));
  ASSERT(write(fd, get, sizeof(get) - 1) == (ssize_t)sizeof(get) - 1);
  ASSERT_INT_EQ(run_until(&n.loop, &n.q.done, 1), 0);
  ASSERT(n.q.t == NULL);
  ASSERT_INT_EQ(n.q.err, BH_EPROTO);
  snprintf(want, sizeof(want), "authentication failed from %s: the peer "
           "does not speak beehive's handshake", me);
  ASSERT_STR_EQ(n.q.why, want);
  uv_run(&n.loop, UV_RUN_NOWAIT); /* the connection's close */
  while ((r = read(fd, buf + got, sizeof(buf) - got)) > 0)
    got += (size_t)r;
  ASSERT_INT_EQ(got, BH__AUTH_HEAD + BH__AUTH_NONCE + BH__AUTH_HEAD);
  ASSERT(memcmp(buf, "BHA1H", 5) == 0);
  ASSERT(memcmp(buf + BH__AUTH_HEAD + BH__AUTH_NONCE, "BHA1R", 5) == 0);
  close(fd);
  NET_CLOSE(&n);
  return 0;
}

/* Out of descriptors, the listener cannot accept: it takes the connection
 * with the descriptor it keeps in reserve, closes it at once, and says so,
 * instead of finding it waiting at every turn of the loop (a spin). (Not
 * under valgrind, which only emulates RLIMIT_NOFILE: the kernel accepts
 * above the limit and valgrind then drops the descriptor.) */
TEST(out_of_descriptors_a_connection_is_refused_not_spun_on) {
  struct rlimit old, low;
  struct pollfd p;
  bh__tcp_opts o = {0};
  char want[160], me[64], c;
  int fd, fill[80], nfill = 0, turns;
  net n;

  ASSERT_INT_EQ(net_init(&n), 0);
  ASSERT_INT_EQ(net_listen(&n, "127.0.0.1", &o), 0);
  fd = raw_connect(n.l); /* waits in the listen queue */
  ASSERT(fd >= 0);
  local_addr(fd, me, sizeof(me));
  ASSERT_INT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  low = old;
  low.rlim_cur = 64;
  ASSERT_INT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  while (nfill < 80 && (fill[nfill] = dup(0)) >= 0)
    nfill++;
  ASSERT(nfill < 80 && errno == EMFILE);
  for (turns = 0; turns < 50 && n.q.done == 0; turns++)
    uv_run(&n.loop, UV_RUN_NOWAIT);
  while (nfill > 0)
    close(fill[--nfill]);
  ASSERT_INT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_INT_EQ(n.q.done, 1);
  ASSERT(n.q.t == NULL);
  ASSERT_INT_EQ(n.q.err, -EMFILE);
  snprintf(want, sizeof(want), "connection from %s refused: this process "
           "is out of file descriptors (EMFILE; see ulimit -n)", me);
  ASSERT_STR_EQ(n.q.why, want);
  p = (struct pollfd){.fd = fd, .events = POLLIN};
  ASSERT_INT_EQ(poll(&p, 1, 5000), 1);
  ASSERT(read(fd, &c, 1) <= 0); /* closed, not left waiting */
  close(fd);
  NET_CLOSE(&n);
  return 0;
}

/* The slow peer of the next test: one byte of a PROOF a second. */
typedef struct slow {
  uv_timer_t timer;
  int fd;
  size_t sent;
} slow;

static void
slow_tick(uv_timer_t *t) {
  slow *s = t->data;
  static const char proof[] = "BHA1P";

  if (write(s->fd, proof + s->sent % 5, 1) == 1)
    s->sent++;
}

/* A peer sending its PROOF one byte a second is cut off at the deadline,
 * named; meanwhile another connection authenticates at once. */
TEST(a_slow_peer_is_cut_off_while_another_joins) {
  bh__tcp_opts o = {.handshake_ms = 1500};
  char want[160], me[64];
  slow s = {0};
  uint64_t t0;
  net n;

  ASSERT_INT_EQ(net_init(&n), 0);
  ASSERT_INT_EQ(net_listen(&n, "127.0.0.1", &o), 0);
  s.fd = raw_connect(n.l);
  ASSERT(s.fd >= 0);
  local_addr(s.fd, me, sizeof(me));
  uv_timer_init(&n.loop, &s.timer);
  s.timer.data = &s;
  uv_timer_start(&s.timer, slow_tick, 0, 1000);
  t0 = uv_now(&n.loop);
  ASSERT_INT_EQ(net_dial(&n, &o), 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.w.done, 1), 0);
  ASSERT_INT_EQ(n.w.err, 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.q.done, 1), 0); /* the good one */
  ASSERT_INT_EQ(n.q.err, 0);
  ASSERT(strcmp(n.q.peer, me) != 0);
  ASSERT_INT_EQ(bh__tcp_listener_pending(n.l), 1); /* the slow one */
  ASSERT(n.q.at - t0 < 1500);
  ASSERT_INT_EQ(side_open(&n.q, 0), 0);
  ASSERT_INT_EQ(side_open(&n.w, 0), 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.q.done, 2), 0); /* the slow one */
  ASSERT_INT_EQ(n.q.err, BH_ETIMEDOUT);
  snprintf(want, sizeof(want), "handshake from %s not done within 1500 ms: "
           "cut off", me);
  ASSERT_STR_EQ(n.q.why, want);
  ASSERT(n.q.at - t0 >= 1500);
  ASSERT(s.sent >= 1 && s.sent < 5);
  ASSERT_INT_EQ(bh__tcp_listener_pending(n.l), 0);
  ASSERT_INT_EQ(n.q.nerr + n.w.nerr, 0);
  uv_close((uv_handle_t *)&s.timer, NULL);
  close(s.fd);
  NET_CLOSE(&n);
  return 0;
}

/* ------------------------------------------------------------------------
 * Heartbeats. */

#define HB_MS 200
#define HB_MISSES 3

/* In a host: joins the listener at argument's address and keeps the
 * channel, heartbeats and all, until killed. */
static int
joiner(void *arg) {
  bh__tcp_opts o = {.key = KEY, .heartbeat_ms = HB_MS,
                    .heartbeat_misses = HB_MISSES};
  char why[128];
  net n;

  bh__turn_forget(); /* the test's, forked: not this loop's */
  if (net_init(&n) != 0 ||
      bh__tcp_connect(NULL, &n.loop, arg, &o, hs_cb, &n.w, why,
                      sizeof(why)) != 0 ||
      run_until(&n.loop, &n.w.done, 1) != 0 || n.w.err != 0 ||
      side_open(&n.w, 0) != 0) {
    fprintf(stderr, "joiner: %s\n", n.w.why);
    return 2;
  }
  uv_run(&n.loop, UV_RUN_DEFAULT);
  return 3;
}

static void
stop_cb(uv_timer_t *t) {
  *(int *)t->data = 1;
}

/* Runs the loop for ms. */
static int
run_for(uv_loop_t *loop, unsigned ms) {
  uv_timer_t t;
  int fired = 0;

  uv_timer_init(loop, &t);
  t.data = &fired;
  uv_timer_start(&t, stop_cb, ms, 0);
  while (!fired)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return 0;
}

/* A worker in another "host" joins; the channel stays up on heartbeats
 * alone (none reaches the bee), then the host's link is cut: no end of
 * stream ever comes, and the channel fails "no heartbeat for 600 ms"
 * after that much silence. */
TEST(a_cut_link_is_declared_dead_within_the_bound) {
  bh__tcp_opts o = {.heartbeat_ms = HB_MS, .heartbeat_misses = HB_MISSES};
  bh_test_host h = {0};
  char why[128];
  uint64_t cut;
  pid_t pid;
  net n;

  if (bh_test_netns_usable(why, sizeof(why)) != 0)
    SKIP("hosts cannot be made here: %s", why);
  ASSERT_INT_EQ(bh_test_host_make(&h, 1), 0);
  ASSERT_INT_EQ(net_init(&n), 0);
  ASSERT_INT_EQ(net_listen(&n, h.gateway, &o), 0);
  pid = bh_test_host_run(&h, joiner, (void *)bh__tcp_listener_addr(n.l));
  ASSERT(pid > 0);
  ASSERT_INT_EQ(run_until(&n.loop, &n.q.done, 1), 0);
  ASSERT_INT_EQ(n.q.err, 0);
  ASSERT(strncmp(n.q.peer, h.addr, strlen(h.addr)) == 0);
  ASSERT_INT_EQ(side_open(&n.q, 0), 0);
  run_for(&n.loop, 4 * HB_MS * HB_MISSES);
  if (n.q.nerr != 0)
    fprintf(stderr, "channel failed: %s\n", n.q.cwhy);
  ASSERT_INT_EQ(n.q.nerr, 0);
  ASSERT_INT_EQ(n.q.log.nmsg, 0);
  ASSERT(bh__chan_writes(n.q.c) >= 2 * HB_MISSES); /* heartbeats */

  ASSERT_INT_EQ(bh_test_host_link(&h, false), 0);
  cut = uv_now(&n.loop);
  ASSERT_INT_EQ(run_until(&n.loop, &n.q.nerr, 1), 0);
  ASSERT_INT_EQ(n.q.cerr, BH_ETIMEDOUT);
  ASSERT_STR_EQ(n.q.cwhy, "no heartbeat for 600 ms");
  ASSERT(n.q.cerr_at - cut >= HB_MS * (HB_MISSES - 1));
  kill(pid, SIGKILL);
  bh_test_exit_code(pid);
  bh_test_host_free(&h);
  NET_CLOSE(&n);
  return 0;
}

TEST_MAIN(TEST_ENTRY(messages_travel_both_ways_over_tcp),
          TEST_ENTRY(out_of_descriptors_a_connection_is_refused_not_spun_on),
          TEST_ENTRY(a_peer_that_closes_ends_the_channel),
          TEST_ENTRY(a_wrong_key_is_refused_with_the_address),
          TEST_ENTRY(a_dial_where_nobody_listens_is_refused),
          TEST_ENTRY(a_queen_without_the_key_is_refused),
          TEST_ENTRY(bytes_after_the_handshake_are_the_first_frames),
          TEST_ENTRY(garbage_before_authentication_is_refused),
          TEST_ENTRY_T(a_slow_peer_is_cut_off_while_another_joins, 10),
          TEST_ENTRY_T(a_cut_link_is_declared_dead_within_the_bound, 20))
