/* chan.h - one end of a private full-duplex channel between two bees: a
 * stream socket watched by libuv, read and written with recvmsg/sendmsg,
 * split into frames and decoded into bh__msg (wire.c). Large bins travel
 * beside the bytes as memfd descriptors (blob.h).
 *
 * Writes are batched: senders append whole frames to bh__chan_out() and
 * call bh__chan_kick(); everything appended during one loop turn leaves in
 * one write when the turn ends (turn.c calls bh__chan_flush_all()). */
#ifndef BH_CHAN_H
#define BH_CHAN_H

#include <uv.h>

#include "base/base.h"
#include "wire/wire.h"

typedef struct bh__chan bh__chan;

/* A decoded message; it and its objects are valid during the call only.
 * The callback may close the channel. */
typedef void (*bh__chan_msg_cb)(bh__chan *c, const bh__msg *m, void *udata);
/* The channel failed: BH_EPIPE at end of stream, BH_EPROTO or BH_EMSGSIZE
 * for hostile input (why says what), or a libuv error. No more messages
 * follow; the owner should close the channel. */
typedef void (*bh__chan_err_cb)(bh__chan *c, int err, const char *why,
                                void *udata);

/* Takes ownership of fd (a connected stream socket). Returns 0 or an
 * error; on error fd is closed. */
int bh__chan_open(bh__chan **out, uv_loop_t *loop, int fd, size_t max_frame,
                  bh__chan_msg_cb on_msg, bh__chan_err_cb on_err,
                  void *udata);
/* Borrows: the output buffer; append frames with bh__wire_put_*. */
bh__buf *bh__chan_out(bh__chan *c);
/* Borrows: the queue of blobs whose descriptors go out with the next
 * bytes; pass it to bh__wire_put_task_info/_done with bh__chan_out(). */
struct bh__blobq *bh__chan_blobs(bh__chan *c);
size_t bh__chan_max_frame(const bh__chan *c);
/* Schedules a flush of the output buffer before the loop next blocks. */
void bh__chan_kick(bh__chan *c);
/* bh__chan_kick(), and the turn flushes before it runs the woken fibers
 * (so that a handler that never yields cannot hold this output back). */
void bh__chan_kick_urgent(bh__chan *c);
/* True once after any urgent kick (turn.c). */
bool bh__chan_take_urgent(void);
/* Flushes every channel kicked since the last call (turn.c). */
void bh__chan_flush_all(void);
/* In a forked child: forgets the parent's channels. */
void bh__chan_forget_all(void);
/* Calls cb once when every byte appended so far has reached the kernel
 * (at once if nothing is pending). */
void bh__chan_on_drained(bh__chan *c, void (*cb)(bh__chan *c, void *udata));
/* Reads and dispatches, without blocking, whatever the socket holds now:
 * the peer's last words once its process has ended (another process may
 * still hold its end open, so no end of stream need follow). The callbacks
 * run as from the loop; a partial frame stays unread. */
void bh__chan_drain(bh__chan *c);
/* Stops reading, drops unsent output, and frees the channel once libuv has
 * let go of it. Safe to call from its own callbacks; idempotent. */
void bh__chan_close(bh__chan *c);
/* How many write system calls put bytes into the socket so far. */
size_t bh__chan_writes(const bh__chan *c);
/* True once an error or close happened. */
bool bh__chan_closed(const bh__chan *c);

#endif
