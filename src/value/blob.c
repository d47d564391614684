/* blob.c - large bins as sealed memfds. See blob.h. */
#include "value/blob.h"
#include "value/value.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_THRESHOLD ((size_t)256 << 10)
/* Received blobs keep their descriptor (to be sent on without a copy) up
 * to this many at once; past it they are only mapped, so that holding many
 * results cannot run the process out of descriptors. */
#define MAX_KEPT_FDS 256

static const unsigned SEALS_SENT =
    F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
static const unsigned SEALS_ALLOC = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

/* The table of registered blobs. Lookups happen once per large bin, and
 * few blobs live at once, so a vector scanned in order is enough. The lock
 * lets bh_blob_alloc() and bh_blob_free() run on any thread. */
static struct {
  pthread_mutex_t lock;
  bh__blob **v;
  size_t len, cap;
  uint64_t next_id;
  size_t kept_fds;
  size_t threshold;
  bool threshold_set;
} T = {.lock = PTHREAD_MUTEX_INITIALIZER, .next_id = 1};

void
bh_set_blob_threshold(size_t bytes) {
  pthread_mutex_lock(&T.lock);
  T.threshold = bytes;
  T.threshold_set = true;
  pthread_mutex_unlock(&T.lock);
}

size_t
bh_blob_threshold(void) {
  size_t t;

  pthread_mutex_lock(&T.lock);
  if (!T.threshold_set) {
    const char *env = getenv("BH_BLOB_THRESHOLD");

    T.threshold = env != NULL && *env != '\0' ? strtoull(env, NULL, 0)
                                              : DEFAULT_THRESHOLD;
    T.threshold_set = true;
  }
  t = T.threshold;
  pthread_mutex_unlock(&T.lock);
  return t;
}

size_t
bh__blob_threshold(void) {
  size_t t = bh_blob_threshold();

  return t == 0 ? SIZE_MAX : t; /* 0: blobs are off */
}

/* Makes room for one more pointer in a vector holding len of *cap. */
static int
grow(bh__blob ***v, size_t len, size_t *cap) {
  bh__blob **nv;
  size_t ncap;

  if (len < *cap)
    return 0;
  ncap = *cap ? *cap * 2 : 4;
  nv = bh__realloc(*v, ncap * sizeof(*nv));
  if (nv == NULL)
    return BH_ENOMEM;
  *v = nv;
  *cap = ncap;
  return 0;
}

/* Called with the lock held. */
static int
table_add(bh__blob *b) {
  if (grow(&T.v, T.len, &T.cap) != 0)
    return BH_ENOMEM;
  b->id = T.next_id++;
  T.v[T.len++] = b;
  return 0;
}

/* Called with the lock held. */
static void
table_remove(bh__blob *b) {
  size_t i;

  for (i = 0; i < T.len; i++)
    if (T.v[i] == b) {
      T.v[i] = T.v[--T.len];
      break;
    }
  if (T.len == 0) {
    bh__free(T.v);
    T.v = NULL;
    T.cap = 0;
  }
}

static bh__blob *
find_locked(const void *p, size_t n) {
  const char *c = p;
  size_t i;

  for (i = 0; i < T.len; i++) {
    bh__blob *b = T.v[i];

    if (b->map != NULL && c >= b->map && n <= b->size &&
        (size_t)(c - b->map) <= b->size - n)
      return b;
  }
  return NULL;
}

bool
bh__blob_any(void) {
  bool any;

  pthread_mutex_lock(&T.lock);
  any = T.len > 0;
  pthread_mutex_unlock(&T.lock);
  return any;
}

bh__blob *
bh__blob_find(const void *p, size_t n) {
  bh__blob *b;

  pthread_mutex_lock(&T.lock);
  b = T.len > 0 ? find_locked(p, n) : NULL;
  pthread_mutex_unlock(&T.lock);
  return b;
}

bh__blob *
bh__blob_by_id(uint64_t id) {
  bh__blob *b = NULL;
  size_t i;

  pthread_mutex_lock(&T.lock);
  for (i = 0; i < T.len && b == NULL; i++)
    if (T.v[i]->id == id)
      b = T.v[i];
  pthread_mutex_unlock(&T.lock);
  return b;
}

static int
new_memfd(void) {
  int fd = memfd_create("beehive-blob", MFD_CLOEXEC | MFD_ALLOW_SEALING);

  return fd < 0 ? -errno : fd;
}

int
bh__blob_copy(bh__blob **out, const void *p, size_t n) {
  bh__blob *b;
  int fd = new_memfd(), err;

  if (fd < 0)
    return fd;
  /* write() fills the memfd's pages in the kernel: no mapping, no fault. */
  err = bh__write_all(fd, p, n);
  if (err == 0 && fcntl(fd, F_ADD_SEALS, SEALS_SENT) != 0)
    err = -errno;
  if (err == 0 && (b = bh__calloc(1, sizeof(*b))) == NULL)
    err = BH_ENOMEM;
  if (err != 0) {
    close(fd);
    return err;
  }
  b->fd = fd;
  b->size = n;
  b->refs = 1;
  *out = b;
  return 0;
}

static int
adopt_fail(int fd, char *err, size_t errlen, const char *why) {
  close(fd);
  snprintf(err, errlen, "blob descriptor: %s", why);
  return BH_EPROTO;
}

int
bh__blob_adopt(bh__blob **out, int fd, uint64_t need, char *err,
               size_t errlen) {
  int seals = fcntl(fd, F_GET_SEALS);
  struct stat st;
  bh__blob *b;
  void *map;

  if (seals < 0)
    return adopt_fail(fd, err, errlen, "not a memfd");
  if (!(seals & F_SEAL_SHRINK))
    return adopt_fail(fd, err, errlen, "not sealed against shrinking");
  if (fstat(fd, &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size < need)
    return adopt_fail(fd, err, errlen, "shorter than the bin it carries");
  map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE,
             fd, 0);
  if (map == MAP_FAILED || (b = bh__calloc(1, sizeof(*b))) == NULL) {
    int e = map == MAP_FAILED ? -errno : BH_ENOMEM;

    if (map != MAP_FAILED)
      munmap(map, (size_t)st.st_size);
    close(fd);
    snprintf(err, errlen, "blob descriptor: cannot map it: %s",
             bh_strerror(e));
    return e;
  }
  b->fd = fd;
  b->map = map;
  b->size = (size_t)st.st_size;
  b->refs = 1;
  pthread_mutex_lock(&T.lock);
  if (table_add(b) != 0) {
    pthread_mutex_unlock(&T.lock);
    munmap(map, b->size);
    close(fd);
    bh__free(b);
    return BH_ENOMEM;
  }
  if (T.kept_fds >= MAX_KEPT_FDS) {
    close(b->fd);
    b->fd = -1;
  } else {
    T.kept_fds++;
  }
  pthread_mutex_unlock(&T.lock);
  *out = b;
  return 0;
}

void
bh__blob_ref(bh__blob *b) {
  pthread_mutex_lock(&T.lock);
  b->refs++;
  pthread_mutex_unlock(&T.lock);
}

void
bh__blob_unref(bh__blob *b) {
  bool last;

  if (b == NULL)
    return;
  pthread_mutex_lock(&T.lock);
  BH_ASSERT(b->refs > 0);
  last = --b->refs == 0;
  if (last && b->id != 0) {
    table_remove(b);
    if (b->fd >= 0 && !b->writable)
      T.kept_fds--;
  }
  pthread_mutex_unlock(&T.lock);
  if (!last)
    return;
  if (b->map != NULL)
    munmap(b->map, b->size);
  if (b->fd >= 0)
    close(b->fd);
  bh__free(b);
}

void
bh__blob_forget_all(void) {
  size_t i;

  pthread_mutex_lock(&T.lock);
  for (i = 0; i < T.len; i++)
    T.v[i]->fd = -1;
  T.kept_fds = 0;
  pthread_mutex_unlock(&T.lock);
}

/* ------------------------------------------------------------------------
 * The public allocator of blobs the caller fills in place. */

void *
bh_blob_alloc(size_t size) {
  bh__blob *b;
  void *map;
  int fd;

  if (size == 0 || (fd = new_memfd()) < 0)
    return NULL;
  if (ftruncate(fd, (off_t)size) != 0 ||
      fcntl(fd, F_ADD_SEALS, SEALS_ALLOC) != 0 ||
      (map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
          MAP_FAILED) {
    close(fd);
    return NULL;
  }
  b = bh__calloc(1, sizeof(*b));
  pthread_mutex_lock(&T.lock);
  if (b != NULL && table_add(b) != 0) {
    bh__free(b);
    b = NULL;
  }
  if (b != NULL)
    *b = (bh__blob){.id = b->id, .fd = fd, .map = map, .size = size,
                    .refs = 1, .writable = true};
  pthread_mutex_unlock(&T.lock);
  if (b == NULL) {
    munmap(map, size);
    close(fd);
    return NULL;
  }
  return map;
}

void
bh_blob_free(void *p) {
  bh__blob *b;

  if (p == NULL)
    return;
  pthread_mutex_lock(&T.lock);
  b = find_locked(p, 1);
  pthread_mutex_unlock(&T.lock);
  BH_ASSERT(b != NULL && b->writable && b->map == p);
  bh__blob_unref(b);
}

/* ------------------------------------------------------------------------
 * Ext payloads. */

static void
put_be64(char *p, uint64_t v) {
  int i;

  for (i = 7; i >= 0; i--, v >>= 8)
    p[i] = (char)(v & 0xff);
}

static uint64_t
get_be64(const char *p) {
  uint64_t v = 0;
  int i;

  for (i = 0; i < 8; i++)
    v = v << 8 | (unsigned char)p[i];
  return v;
}

void
bh__blob_ext_write(char out[BH__BLOB_EXT_LEN], const bh__blob_loc *r) {
  out[0] = (char)r->kind;
  put_be64(out + 1, r->token);
  put_be64(out + 9, r->off);
  put_be64(out + 17, r->len);
}

bool
bh__blob_ext_read(const msgpack_object *o, bh__blob_loc *r) {
  const char *p;

  if (o->type != MSGPACK_OBJECT_EXT || o->via.ext.type != BH__EXT_BLOB ||
      o->via.ext.size != BH__BLOB_EXT_LEN)
    return false;
  p = o->via.ext.ptr;
  r->kind = (unsigned char)p[0];
  r->token = get_be64(p + 1);
  r->off = get_be64(p + 9);
  r->len = get_be64(p + 17);
  return true;
}

int
bh__blob_pack_local(msgpack_packer *pk, const bh__blob *b, size_t off,
                    size_t len) {
  bh__blob_loc r = {BH__BLOB_LOCAL, b->id, off, len};
  char body[BH__BLOB_EXT_LEN];

  bh__blob_ext_write(body, &r);
  if (msgpack_pack_ext(pk, sizeof(body), BH__EXT_BLOB) != 0 ||
      msgpack_pack_ext_body(pk, body, sizeof(body)) != 0)
    return BH_ENOMEM;
  return 0;
}

/* ------------------------------------------------------------------------
 * Queues and held references. */

int
bh__blobq_push(bh__blobq *q, bh__blob *b) {
  if (grow(&q->v, q->len, &q->cap) != 0)
    return BH_ENOMEM;
  q->v[q->len++] = b;
  q->next_seq++;
  return 0;
}

void
bh__blobq_cut(bh__blobq *q, size_t from) {
  while (q->len > from) {
    bh__blob_unref(q->v[--q->len]);
    q->next_seq--;
  }
}

void
bh__blobq_shift(bh__blobq *q, size_t n) {
  size_t i;

  if (n == 0)
    return;
  for (i = 0; i < n; i++)
    bh__blob_unref(q->v[i]);
  memmove(q->v, q->v + n, (q->len - n) * sizeof(*q->v));
  q->len -= n;
}

void
bh__blobq_free(bh__blobq *q) {
  bh__blobq_shift(q, q->len);
  bh__free(q->v);
  q->v = NULL;
  q->cap = 0;
  bh__blobq_borrow_shift(q, q->blen);
  bh__free(q->b);
  q->b = NULL;
  q->bcap = 0;
}

int
bh__blobq_borrow(bh__blobq *q, size_t pos, const char *p, size_t n) {
  BH_ASSERT(q->hold != NULL);
  if (q->blen == q->bcap) {
    size_t cap = q->bcap ? q->bcap * 2 : 8;
    bh__borrow *b = bh__realloc(q->b, cap * sizeof(*b));

    if (b == NULL)
      return BH_ENOMEM;
    q->b = b;
    q->bcap = cap;
  }
  q->b[q->blen++] = (bh__borrow){pos, p, n, bh__value_hold(q->hold)};
  return 0;
}

void
bh__blobq_borrow_cut(bh__blobq *q, size_t from) {
  while (q->blen > from)
    bh_value_free(q->b[--q->blen].hold);
}

void
bh__blobq_borrow_shift(bh__blobq *q, size_t n) {
  size_t i;

  if (n == 0)
    return;
  for (i = 0; i < n; i++)
    bh_value_free(q->b[i].hold);
  memmove(q->b, q->b + n, (q->blen - n) * sizeof(*q->b));
  q->blen -= n;
}

int
bh__blobs_add(bh__blobs *h, bh__blob *b) {
  size_t cap = h->cap;

  if (h->len == UINT32_MAX || grow(&h->v, h->len, &cap) != 0)
    return BH_ENOMEM;
  h->cap = (uint32_t)cap;
  bh__blob_ref(b);
  h->v[h->len++] = b;
  return 0;
}

void
bh__blobs_release(bh__blobs *h) {
  uint32_t i;

  for (i = 0; i < h->len; i++)
    bh__blob_unref(h->v[i]);
  bh__free(h->v);
  h->v = NULL;
  h->len = h->cap = 0;
}

int
bh__blob_resolve_local(msgpack_object *o, bh__blobs *held) {
  bh__blob_loc r;
  bh__blob *b;
  uint32_t i;
  int rc = 0;

  if (o->type == MSGPACK_OBJECT_ARRAY) {
    for (i = 0; i < o->via.array.size && rc == 0; i++)
      rc = bh__blob_resolve_local(&o->via.array.ptr[i], held);
    return rc;
  }
  if (o->type == MSGPACK_OBJECT_MAP) {
    for (i = 0; i < o->via.map.size && rc == 0; i++)
      rc = bh__blob_resolve_local(&o->via.map.ptr[i].val, held);
    return rc;
  }
  if (!bh__blob_ext_read(o, &r) || r.kind != BH__BLOB_LOCAL ||
      (b = bh__blob_by_id(r.token)) == NULL || b->map == NULL ||
      r.off > b->size || r.len > b->size - r.off || r.len > UINT32_MAX)
    return 0;
  if (bh__blobs_add(held, b) != 0)
    return BH_ENOMEM;
  o->type = MSGPACK_OBJECT_BIN;
  o->via.bin.ptr = b->map + r.off;
  o->via.bin.size = (uint32_t)r.len;
  return 0;
}
