/* tcp.h - bees on other hosts: the TCP transport (tcp.c) and the
 * authenticated connections that make it (tcp_join.c). Nobody gets a
 * transport before the handshake (auth.h) is done: the listener is the
 * queen's side, the connector the joining worker's.
 *
 * A connection is a transport.h transport that cannot pass descriptors
 * (the channel sends large bins inline, within max_frame) and asks its
 * channel for heartbeats, with TCP_NODELAY and TCP keepalive, so that a
 * peer whose host vanished without closing is noticed within the
 * heartbeat bound (heartbeat_ms * heartbeat_misses). */
#ifndef BH_TCP_H
#define BH_TCP_H

#include "transport/auth.h"
#include "transport/transport.h"

#define BH__TCP_HANDSHAKE_MS 5000  /* connect + handshake, by default */
#define BH__TCP_HEARTBEAT_MS 1000  /* one heartbeat a second... */
#define BH__TCP_HEARTBEAT_MISSES 3 /* ...and 3 s of silence is death */

typedef struct bh__tcp_opts {
  const unsigned char *key; /* the hive's, BH__KEY_LEN bytes (key.h) */
  unsigned handshake_ms;    /* the deadline; 0: BH__TCP_HANDSHAKE_MS */
  unsigned heartbeat_ms;    /* 0: BH__TCP_HEARTBEAT_MS */
  unsigned heartbeat_misses; /* 0: BH__TCP_HEARTBEAT_MISSES */
} bh__tcp_opts;

/* The end of one connection's handshake. Done: t is an authenticated
 * transport on the loop, the callee's to own (bh__chan_open_on), err 0
 * and why NULL. Refused or failed: t NULL, err (BH_EPROTO: the handshake
 * failed; BH_ETIMEDOUT: the deadline passed; BH_EPIPE: the peer closed;
 * else the connection's -errno) and why, one line naming the peer
 * ("authentication failed from 10.1.2.2:40312: ..."). peer is its
 * address, "10.1.2.2:40312" or "[::1]:40312". The strings live during the
 * call only. */
typedef void (*bh__tcp_cb)(bh__transport *t, int err, const char *why,
                           const char *peer, void *arg);

typedef struct bh__tcp_listener bh__tcp_listener;
typedef struct bh__tcp_dial bh__tcp_dial;

/* Listens on "host:port" (port 0 picks a free one; host empty or "*":
 * every IPv4 address; "[::1]:p" for IPv6) and calls cb once per accepted
 * connection, after its handshake as the queen. Many handshakes run at
 * once, each bounded by the deadline, none blocking the loop. Returns 0,
 * or BH_EINVAL/BH_EDNS/-errno with why ("address 'x': ..."). */
int bh__tcp_listen(bh__tcp_listener **out, uv_loop_t *loop,
                   const char *hostport, const bh__tcp_opts *o,
                   bh__tcp_cb cb, void *arg, char *why, size_t len);
/* The address it listens on, "127.0.0.1:40312": the port as bound. */
const char *bh__tcp_listener_addr(const bh__tcp_listener *l);
/* Handshakes under way. */
size_t bh__tcp_listener_pending(const bh__tcp_listener *l);
/* Stops listening and drops the handshakes under way (their cb is not
 * called); frees l once libuv lets go of it. */
void bh__tcp_listener_close(bh__tcp_listener *l);

/* Connects to "host:port" and runs the handshake as a worker; cb is
 * called once, within the deadline (handshake_ms covers the connect too).
 * *out (may be NULL) can cancel it until then. Returns 0, or
 * BH_EINVAL/BH_EDNS/-errno with why, and cb is never called. */
int bh__tcp_connect(bh__tcp_dial **out, uv_loop_t *loop,
                    const char *hostport, const bh__tcp_opts *o,
                    bh__tcp_cb cb, void *arg, char *why, size_t len);
/* Abandons a connection whose cb has not been called yet. */
void bh__tcp_dial_cancel(bh__tcp_dial *d);

/* tcp.c: the transport over fd, a connected TCP socket it takes over
 * (made non-blocking), tuned (TCP_NODELAY, keepalive within the bound)
 * and with the heartbeat of o (NULL: defaults). Returns 0 or -errno; on
 * error fd is closed. The handshake must be done first: tcp_join.c uses
 * it before and after, through the calls below. */
int bh__tcp_open(bh__transport **out, uv_loop_t *loop, int fd,
                 const bh__tcp_opts *o);
/* The transport's descriptor, and its deadline timer (the handshake's:
 * unused once the channel has it). */
int bh__tcp_fd(bh__transport *t);
/* Sets the kernel's timeouts again from t's heartbeat (a joined worker
 * takes its queen's interval from the bootstrap, after the connect).
 * Returns 0 or -errno. */
int bh__tcp_retune(bh__transport *t);
uv_timer_t *bh__tcp_timer(bh__transport *t);
/* "10.1.2.2:40312" for sa, into buf. */
void bh__tcp_addr_str(const void *sa, char *buf, size_t len);

#endif
