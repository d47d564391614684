/* transport.h - what a channel (chan.h) runs over: one end of a reliable,
 * ordered byte stream between two bees, driven by the loop, behind a table
 * of operations. The channel does the framing, the size limit, batching
 * per loop turn, blob references and dispatch; a transport only moves
 * bytes (and, where it can, descriptors beside them) and says when it is
 * ready. The socketpair (unix.c) is the first; a TCP connection or a pair
 * of pipes would be others.
 *
 * A transport is owned by the channel it is given to (bh__chan_open_on),
 * which calls its operations from the loop's thread only. */
#ifndef BH_TRANSPORT_H
#define BH_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <uv.h>

/* The most descriptors one send or receive carries (Linux's SCM_MAX_FD). */
#define BH__TRANSPORT_MAX_FDS 253

typedef struct bh__transport bh__transport;

/* The transport is ready: `events` (UV_READABLE, UV_WRITABLE) as watched;
 * status < 0 when the loop stopped watching it for an error (a reset):
 * bytes sent before it may still wait to be received. */
typedef void (*bh__transport_io_cb)(bh__transport *t, int status,
                                    int events);

/* What one receive brought beside its bytes. Every descriptor in fds is
 * open in this process and is the receiver's to keep or close. */
typedef struct bh__transport_rx {
  int fds[BH__TRANSPORT_MAX_FDS];
  size_t nfds;
  bool fds_lost; /* some did not fit and were lost (out of descriptors?) */
} bh__transport_rx;

typedef struct bh__transport_ops {
  const char *name; /* "unix" */
  /* Descriptors one send carries; 0: the transport cannot pass them (the
   * channel then sends large bins inline, chan.c). */
  size_t max_fds;
  /* Calls cb(t, ...) whenever one of `events` is ready; events 0 stops. */
  void (*watch)(bh__transport *t, int events, bh__transport_io_cb cb);
  /* Reads at most len bytes without blocking. Returns the bytes read, 0
   * at the end of the stream, -EAGAIN if nothing waits, or -errno (a
   * reset is -ECONNRESET). Received descriptors go to rx. */
  ssize_t (*recv)(bh__transport *t, void *buf, size_t len,
                  bh__transport_rx *rx);
  /* Writes the vectors without blocking, and the nfds descriptors (at
   * most max_fds; they stay the caller's) with their first byte. Returns
   * the bytes written (the descriptors went if > 0) or -errno
   * (-EAGAIN: full). */
  ssize_t (*send)(bh__transport *t, const struct iovec *iov, int iovcnt,
                  const int *fds, size_t nfds);
  /* Stops watching and frees the transport, then calls done (from a
   * libuv close callback: never inside another of the transport's
   * callbacks). */
  void (*close)(bh__transport *t, void (*done)(void *arg), void *arg);
} bh__transport_ops;

/* The head of every transport; its implementation follows it. */
struct bh__transport {
  const bh__transport_ops *ops;
  void *data; /* the channel's */
  /* A link that can vanish without a word (TCP: a host lost, a cable
   * cut) asks its channel for heartbeats: every heartbeat_ms the channel
   * sends one if it sent nothing else, and fails once it heard nothing at
   * all for heartbeat_misses intervals. 0 for the socketpair (whose peer
   * is a local process, watched apart): no heartbeat, not a byte more.
   * loop is the loop the transport runs on (needed for the heartbeat). */
  unsigned heartbeat_ms;
  unsigned heartbeat_misses;
  uv_loop_t *loop;
};

/* The socketpair transport (unix.c). */

/* A connected pair of Unix stream sockets, close-on-exec: sv[0] for this
 * process's channel, sv[1] for the peer's. Returns 0 or -errno. */
int bh__unix_pair(int sv[2]);
/* Takes ownership of fd, a connected stream socket. Returns 0, BH_EINVAL
 * if fd is not a stream socket, or -errno; on error fd is closed (unless
 * it was not open at all). */
int bh__unix_open(bh__transport **out, uv_loop_t *loop, int fd);

/* The TCP transport and its authenticated connections: tcp.h. */

#endif
