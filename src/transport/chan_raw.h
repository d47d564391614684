/* chan_raw.h - a channel's output as raw bytes, for the tests that write
 * frames by hand or look at what waits. Protocol code does not include
 * it: it sends with bh__chan_send() (send.h), which keeps the buffer, the
 * blob queue and its hold to the channel. */
#ifndef BH_CHAN_RAW_H
#define BH_CHAN_RAW_H

#include "transport/chan.h"

/* Borrows: the output buffer; append whole frames, then bh__chan_kick(). */
bh__buf *bh__chan_out(bh__chan *c);
/* Borrows: the queue of blobs whose descriptors go out with the next
 * bytes, and of borrowed bins. */
struct bh__blobq *bh__chan_blobs(bh__chan *c);
/* Schedules a flush of the output buffer before the loop next blocks. */
void bh__chan_kick(bh__chan *c);
/* bh__chan_kick(), and the turn flushes before it runs the woken fibers. */
void bh__chan_kick_urgent(bh__chan *c);

#endif
