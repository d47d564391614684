/* blob.h - large bins carried as sealed memfds instead of through the
 * channel's byte stream (docs/PROTOCOL.md section 3.3).
 *
 * A blob is a memfd: sealed against shrinking (so a mapping of it can never
 * fault), usually mapped read-only, and registered in a per-process table
 * so that a bin lying inside a mapped blob can be sent on by descriptor
 * again without copying its bytes (a worker echoing or forwarding its
 * argument).
 *
 * On the wire a blob is the msgpack ext 8 BH__EXT_BLOB holding 25 bytes:
 * a kind byte, then three big-endian uint64: token, offset, length. Kind
 * WIRE travels on a channel (token: the descriptor's sequence number on
 * that channel); kind LOCAL lives only inside one process's values (token:
 * the blob's id in this process's table). The channel turns WIRE into
 * LOCAL as it receives, so decoded values name their blobs by id. */
#ifndef BH_BLOB_H
#define BH_BLOB_H

#include <stdint.h>

#include "base/base.h"

/* References held on blobs. */
typedef struct bh__blob bh__blob;
typedef struct bh__blobs {
  bh__blob **v;
  uint32_t len, cap;
} bh__blobs;
int bh__blobs_add(bh__blobs *h, bh__blob *b); /* takes a new reference */
void bh__blobs_release(bh__blobs *h);         /* drops them all */

#define BH__EXT_BLOB 0x62 /* 'b' */
#define BH__BLOB_EXT_LEN 25
enum { BH__BLOB_WIRE = 1, BH__BLOB_LOCAL = 2 };

struct bh__blob {
  uint64_t id;   /* its key in the table (0: not registered) */
  int fd;        /* the memfd, or -1 once closed (then it cannot be sent) */
  char *map;     /* its mapping, or NULL (a copy made only to be sent) */
  size_t size;   /* the mapping's length */
  size_t refs;
  bool writable; /* made by bh_blob_alloc(): mapped read-write */
};

/* What a blob ext says. */
typedef struct bh__blob_loc {
  int kind;
  uint64_t token, off, len;
} bh__blob_loc;

/* A bin of the output sent from where it lies instead of being copied
 * into the output buffer: its n bytes go out right after the buffer's
 * first `pos` bytes (vectored writes), and `hold` keeps them alive until
 * they are written. */
typedef struct bh__borrow {
  size_t pos;
  const char *p;
  size_t n;
  bh_value *hold;
} bh__borrow;

/* A bin at least this big, lying in the value being sent, is borrowed
 * rather than copied into the output buffer. */
#define BH__BORROW_MIN ((size_t)16 << 10)

/* What goes out beside a channel's output bytes, in order: blobs whose
 * descriptors leave with the next bytes, and borrowed bins. */
typedef struct bh__blobq {
  bh__blob **v;
  size_t len, cap;
  uint64_t next_seq; /* the sequence number of the next descriptor queued */
  bh__borrow *b;     /* borrowed bins, by pos */
  size_t blen, bcap;
  bh_value *hold;    /* set by the sender around one put: the value whose
                      * bins the encoder may borrow (NULL: copy them) */
  bool inline_bins;  /* no descriptors can go (the channel's transport
                      * cannot pass them): large bins go inline */
} bh__blobq;

/* The size from which a bin travels as a blob (bh_set_blob_threshold). */
size_t bh__blob_threshold(void);

/* True if any blob is registered (else no LOCAL ext can resolve). */
bool bh__blob_any(void);
/* The registered, mapped blob holding [p, p + n), or NULL. */
bh__blob *bh__blob_find(const void *p, size_t n);
/* The registered blob with this id, or NULL. */
bh__blob *bh__blob_by_id(uint64_t id);
/* A new sealed memfd holding a copy of p[0..n), neither mapped nor
 * registered, refs 1. Returns 0 or -errno. */
int bh__blob_copy(bh__blob **out, const void *p, size_t n);
/* Adopts a descriptor received from a peer: it must be a memfd sealed
 * against shrinking and at least `need` bytes long. Maps it read-only and
 * registers it, refs 1. On failure closes fd and returns BH_EPROTO (why in
 * err) or -errno. */
int bh__blob_adopt(bh__blob **out, int fd, uint64_t need, char *err,
                   size_t errlen);
void bh__blob_ref(bh__blob *b);
/* Drops one reference; the last one unmaps and closes. */
void bh__blob_unref(bh__blob *b);
/* In a forked child: its descriptors are about to be closed, so no blob
 * can be sent on any more (they stay mapped). */
void bh__blob_forget_all(void);

/* Ext payloads. */
void bh__blob_ext_write(char out[BH__BLOB_EXT_LEN], const bh__blob_loc *r);
/* True if o is a blob ext (any kind), filling *r. */
bool bh__blob_ext_read(const msgpack_object *o, bh__blob_loc *r);
/* Packs a LOCAL ext naming b's bytes [off, off + len). */
int bh__blob_pack_local(msgpack_packer *pk, const bh__blob *b, size_t off,
                        size_t len);

/* Blob queues. */
int bh__blobq_push(bh__blobq *q, bh__blob *b); /* takes the reference */
/* Drops the entries from index `from` on (an encoding that failed). */
void bh__blobq_cut(bh__blobq *q, size_t from);
/* Drops the first n entries (their descriptors were sent). */
void bh__blobq_shift(bh__blobq *q, size_t n);
void bh__blobq_free(bh__blobq *q);
/* Borrows [p, p + n) of q->hold (taking a hold on it) to go out after
 * the first pos output bytes. Returns 0 or BH_ENOMEM. */
int bh__blobq_borrow(bh__blobq *q, size_t pos, const char *p, size_t n);
/* Drops the borrowed bins from index `from` on (an encoding that failed). */
void bh__blobq_borrow_cut(bh__blobq *q, size_t from);
/* Drops the first n borrowed bins (they were written). */
void bh__blobq_borrow_shift(bh__blobq *q, size_t n);


/* Walks o and turns every LOCAL blob ext naming a live blob into a bin
 * over its mapping, adding a reference to `held`. o's objects must be
 * writable (they live in a zone). Returns 0 or BH_ENOMEM. */
int bh__blob_resolve_local(msgpack_object *o, bh__blobs *held);

#endif
