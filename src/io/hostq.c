/* hostq.c - slots per host, waiters in arrival order (hostq.h). */
#include "io/hostq.h"

#include <string.h>
#include <uthash.h>

#include "base/base.h"

struct bh__hostq_host {
  char *key;
  long holders;
  bh__hostq_wait *head, *tail; /* waiting, first come first */
  UT_hash_handle hh;
};

struct bh__hostq {
  long limit;
  bh__hostq_host *hosts;
  unsigned long waiting;
};

bh__hostq *
bh__hostq_new(long limit) {
  bh__hostq *q = bh__calloc(1, sizeof(*q));

  if (q != NULL)
    q->limit = limit > 0 ? limit : 1;
  return q;
}

void
bh__hostq_free(bh__hostq *q) {
  bh__hostq_host *h, *tmp;

  if (q == NULL)
    return;
  HASH_ITER(hh, q->hosts, h, tmp) {
    HASH_DEL(q->hosts, h);
    bh__free(h->key);
    bh__free(h);
  }
  bh__free(q);
}

/* Forgets a host nobody holds or waits for. */
static void
host_gc(bh__hostq *q, bh__hostq_host *h) {
  if (h->holders > 0 || h->head != NULL)
    return;
  HASH_DEL(q->hosts, h);
  bh__free(h->key);
  bh__free(h);
}

static bh__hostq_host *
host_get(bh__hostq *q, const char *key) {
  bh__hostq_host *h;

  HASH_FIND_STR(q->hosts, key, h);
  if (h != NULL)
    return h;
  if ((h = bh__calloc(1, sizeof(*h))) == NULL ||
      (h->key = bh__strdup(key)) == NULL) {
    bh__free(h);
    return NULL;
  }
  HASH_ADD_KEYPTR(hh, q->hosts, h->key, strlen(h->key), h);
  return h;
}

int
bh__hostq_enter(bh__hostq *q, const char *key, bh__hostq_wait *w) {
  bh__hostq_host *h = host_get(q, key);

  if (h == NULL)
    return BH_ENOMEM;
  w->host = h;
  w->next = NULL;
  if (h->holders < q->limit) {
    h->holders++;
    w->holding = true;
    w->prev = NULL;
    return 1;
  }
  w->holding = false;
  w->prev = h->tail;
  if (h->tail != NULL)
    h->tail->next = w;
  else
    h->head = w;
  h->tail = w;
  q->waiting++;
  return 0;
}

static void
unqueue(bh__hostq *q, bh__hostq_wait *w) {
  bh__hostq_host *h = w->host;

  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    h->head = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  else
    h->tail = w->prev;
  w->prev = w->next = NULL;
  q->waiting--;
}

bh__hostq_wait *
bh__hostq_leave(bh__hostq *q, bh__hostq_wait *w) {
  bh__hostq_host *h = w->host;
  bh__hostq_wait *next = h->head;

  w->host = NULL;
  w->holding = false;
  if (next != NULL) { /* the slot passes on: holders unchanged */
    unqueue(q, next);
    next->holding = true;
    return next;
  }
  h->holders--;
  host_gc(q, h);
  return NULL;
}

void
bh__hostq_cancel(bh__hostq *q, bh__hostq_wait *w) {
  bh__hostq_host *h = w->host;

  unqueue(q, w);
  w->host = NULL;
  host_gc(q, h);
}

unsigned long
bh__hostq_waiting(const bh__hostq *q) {
  return q->waiting;
}
