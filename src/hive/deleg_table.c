/* deleg_table.c - a bee's delegations by task id (deleg_rec.h): a chained
 * table whose buckets are the low bits of the id. A bee's ids count up
 * from 0, so the ids in flight at once spread over the buckets evenly;
 * the table doubles when it holds as many delegations as buckets, and
 * keeps its size (as uthash did). A record carries one pointer for it,
 * where uthash's handle took 56 bytes, and a lookup is a mask instead of
 * a hash of the id.
 *
 * Invariant: a record is in the table from its making (deleg_new) to its
 * freeing (bh__d_maybe_free), whatever its state. */
#include "hive/bee.h"
#include "hive/deleg_rec.h"

#define TABLE_MIN 64

bh__deleg *
bh__d_find(bh_bee *bee, int64_t tid) {
  bh__deleg *d;

  if (bee->delegs.b == NULL)
    return NULL;
  for (d = bee->delegs.b[(uint64_t)tid & bee->delegs.mask]; d != NULL;
       d = d->hnext)
    if (d->tid == tid)
      return d;
  return NULL;
}

/* Makes the table twice as big (or its first). False: no memory. */
static bool
table_grow(bh_bee *bee) {
  size_t n = bee->delegs.b ? (bee->delegs.mask + 1) * 2 : TABLE_MIN, i;
  bh__deleg **b = bh__calloc(n, sizeof(*b)), *d, *next;

  if (b == NULL)
    return false;
  for (i = 0; bee->delegs.b != NULL && i <= bee->delegs.mask; i++)
    for (d = bee->delegs.b[i]; d != NULL; d = next) {
      next = d->hnext;
      d->hnext = b[(uint64_t)d->tid & (n - 1)];
      b[(uint64_t)d->tid & (n - 1)] = d;
    }
  bh__free(bee->delegs.b);
  bee->delegs.b = b;
  bee->delegs.mask = n - 1;
  return true;
}

bool
bh__d_table_add(bh__deleg *d) {
  bh_bee *bee = d->bee;
  bh__deleg **head;

  if ((bee->delegs.b == NULL || bee->delegs.n > bee->delegs.mask) &&
      !table_grow(bee) && bee->delegs.b == NULL)
    return false; /* a full table still takes more, in longer chains */
  head = &bee->delegs.b[(uint64_t)d->tid & bee->delegs.mask];
  d->hnext = *head;
  *head = d;
  bee->delegs.n++;
  return true;
}

void
bh__d_table_del(bh__deleg *d) {
  bh__deleg **p = &d->bee->delegs.b[(uint64_t)d->tid & d->bee->delegs.mask];

  while (*p != d)
    p = &(*p)->hnext;
  *p = d->hnext;
  d->bee->delegs.n--;
}

void
bh__d_each(bh_bee *bee, void (*fn)(bh__deleg *d, void *arg), void *arg) {
  bh__deleg *d, *next;
  size_t i;

  for (i = 0; bee->delegs.b != NULL && i <= bee->delegs.mask; i++)
    for (d = bee->delegs.b[i]; d != NULL; d = next) {
      next = d->hnext;
      fn(d, arg);
    }
}

