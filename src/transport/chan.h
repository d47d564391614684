/* chan.h - one end of a private full-duplex channel between two bees,
 * over a transport (transport.h: the socketpair, unix.c, or another):
 * bytes split into frames within a size limit and decoded into bh__msg
 * (wire.c). Large bins travel beside the bytes as memfd descriptors
 * (blob.h) where the transport passes descriptors, else inline.
 *
 * Writes are batched: a sender appends one whole frame with
 * bh__chan_send() (send.h has one call per message); everything sent
 * during one loop turn leaves in one write when the turn ends (turn.c
 * calls bh__chan_flush_all()). */
#ifndef BH_CHAN_H
#define BH_CHAN_H

#include <uv.h>

#include "base/base.h"
#include "wire/wire.h"

typedef struct bh__chan bh__chan;
typedef struct bh__transport bh__transport;
struct bh__blobq;

/* A decoded message; it and its objects are valid during the call only.
 * The callback may close the channel. */
typedef void (*bh__chan_msg_cb)(bh__chan *c, const bh__msg *m, void *udata);
/* The channel failed: BH_EPIPE at end of stream, BH_EPROTO or BH_EMSGSIZE
 * for hostile input (why says what), or a libuv error. No more messages
 * follow; the owner should close the channel. */
typedef void (*bh__chan_err_cb)(bh__chan *c, int err, const char *why,
                                void *udata);

/* Takes ownership of t (opened on the loop the channel will run on), and
 * closes it on failure. max_frame 0: BH__DEFAULT_MAX_FRAME. Returns 0 or
 * BH_ENOMEM. */
int bh__chan_open_on(bh__chan **out, bh__transport *t, size_t max_frame,
                     bh__chan_msg_cb on_msg, bh__chan_err_cb on_err,
                     void *udata);
/* The channel over the socketpair transport (bh__unix_open) on fd, a
 * connected stream socket it takes ownership of. Returns 0 or an error
 * (BH_EINVAL: not a stream socket); on error fd is closed. */
int bh__chan_open(bh__chan **out, uv_loop_t *loop, int fd, size_t max_frame,
                  bh__chan_msg_cb on_msg, bh__chan_err_cb on_err,
                  void *udata);

/* Packs one whole frame into b (a bh__wire_put_* call, send.c), bins of
 * at least the blob threshold as q says (blobs, or inline where the
 * transport cannot pass descriptors), within max_frame. Returns 0, or an
 * error with b and q as they were. */
typedef int (*bh__chan_put_fn)(bh__buf *b, struct bh__blobq *q,
                               size_t max_frame, const void *arg);
/* Sends one frame: put(arg) appends it to the output, borrowing the
 * middle-sized bins that lie in `hold` (NULL: copying them; the channel
 * holds the value until they are written), and the turn flushes it; with
 * `urgent` before it runs the woken fibers (so that a handler that never
 * yields cannot hold this output back). Returns put's result. */
int bh__chan_send(bh__chan *c, bh__chan_put_fn put, const void *arg,
                  bh_value *hold, bool urgent);
size_t bh__chan_max_frame(const bh__chan *c);
/* True once after any urgent send (turn.c). */
bool bh__chan_take_urgent(void);
/* Flushes every channel sent on since the last call (turn.c). */
void bh__chan_flush_all(void);
/* In a forked child: forgets the parent's channels. */
void bh__chan_forget_all(void);
/* Calls cb once when every byte sent so far has reached the transport
 * (at once if nothing is pending). */
void bh__chan_on_drained(bh__chan *c, void (*cb)(bh__chan *c, void *udata));
/* Reads and dispatches, without blocking, whatever the transport holds now:
 * the peer's last words once its process has ended (another process may
 * still hold its end open, so no end of stream need follow). The callbacks
 * run as from the loop; a partial frame stays unread. */
void bh__chan_drain(bh__chan *c);
/* Stops reading, drops unsent output, and frees the channel once libuv has
 * let go of it. Safe to call from its own callbacks; idempotent. */
void bh__chan_close(bh__chan *c);
/* How many sends put bytes into the transport so far. */
size_t bh__chan_writes(const bh__chan *c);
/* True once an error or close happened. */
bool bh__chan_closed(const bh__chan *c);

#endif
