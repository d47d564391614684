/* file_api.c - file reads for tasks on libuv's thread pool: a regular
 * file cannot be polled, and a read from a cold page cache would stall
 * every task of the bee; on the pool it stalls a pool thread only, and the
 * task waits like any other. */
#include "hive/bee.h"
#include "hive/task.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_WHOLE ((size_t)1 << 30)

typedef struct file_op {
  uv_work_t work;
  bh_task *t;        /* NULL once the task gave up waiting */
  char *path;
  int64_t offset;
  size_t max;        /* 0: the whole file (at most MAX_WHOLE) */
  char *data;        /* malloc'd on the pool thread */
  size_t len;
  int err;           /* 0 or -errno */
  const char *step;  /* what failed: "open", "read"... */
} file_op;

/* How much to read: max, or the file's size from offset. */
static size_t
want(file_op *op, int fd) {
  struct stat st;

  if (op->max > 0)
    return op->max;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > op->offset)
    return (size_t)(st.st_size - op->offset) + 1; /* +1: sees the end */
  return 64 << 10;
}

/* On a pool thread: plain system calls and malloc only. */
static void
read_all(file_op *op, int fd) {
  size_t cap = want(op, fd);
  ssize_t n = 1;

  while (op->err == 0 && n > 0) {
    if (op->len == cap) {
      char *p;

      if (op->max > 0 || cap >= MAX_WHOLE)
        break;
      cap = cap * 2 < MAX_WHOLE ? cap * 2 : MAX_WHOLE;
      if ((p = realloc(op->data, cap + 1)) == NULL) {
        op->err = -ENOMEM;
        break;
      }
      op->data = p;
    }
    n = read(fd, op->data + op->len, cap - op->len);
    if (n < 0 && errno != EINTR)
      op->err = -errno, op->step = "read";
    else if (n > 0)
      op->len += (size_t)n;
  }
}

static void
work_cb(uv_work_t *w) {
  file_op *op = w->data;
  int fd = open(op->path, O_RDONLY | O_CLOEXEC);

  if (fd < 0) {
    op->err = -errno;
    op->step = "open";
    return;
  }
  /* read(), not pread(): a pipe or a FIFO has no offsets. */
  if (op->offset > 0 && lseek(fd, (off_t)op->offset, SEEK_SET) < 0)
    op->err = -errno, op->step = "seek";
  else if ((op->data = malloc(want(op, fd) + 1)) == NULL)
    op->err = -ENOMEM;
  else
    read_all(op, fd);
  close(fd);
  if (op->data != NULL)
    op->data[op->len] = '\0';
}

static void
op_free(file_op *op) {
  free(op->data);
  bh__free(op->path);
  bh__free(op);
}

static void
after_cb(uv_work_t *w, int status) {
  file_op *op = w->data;

  if (op->t == NULL) { /* abandoned: nobody waits for it */
    op_free(op);
    return;
  }
  if (status == UV_ECANCELED && op->err == 0)
    op->err = BH_ECANCELLED;
  bh__task_wake(op->t, 0);
}

static int
read_failed(bh_task *t, file_op *op) {
  int err = op->err;

  if (err == BH_ECANCELLED || err == -ENOMEM)
    return bh__task_io_result(t, err, "OSError", NULL);
  return bh__task_io_result(t, err, "OSError",
                            bh__asprintf("%s: %s (%s)", strerror(-err),
                                         op->path, op->step));
}

int
bh_file_read(bh_task *t, const char *path, int64_t offset, size_t max,
             void **data, size_t *len) {
  file_op *op;
  int rc;

  if (data != NULL)
    *data = NULL;
  if (t == NULL || path == NULL || data == NULL || len == NULL || offset < 0)
    return BH_EINVAL;
  *len = 0;
  bh__task_io_result(t, 0, NULL, NULL);
  if ((op = bh__calloc(1, sizeof(*op))) == NULL ||
      (op->path = bh__strdup(path)) == NULL) {
    bh__free(op);
    return bh__task_io_result(t, BH_ENOMEM, "MemoryError", NULL);
  }
  op->t = t;
  op->offset = offset;
  op->max = max;
  op->work.data = op;
  if ((rc = uv_queue_work(t->bee->loop, &op->work, work_cb, after_cb)) != 0) {
    op_free(op);
    return bh__task_io_result(t, rc, "OSError", NULL);
  }
  if ((rc = bh__task_wait(t, -1)) != 0) { /* cancelled: let it go */
    op->t = NULL;
    uv_cancel((uv_req_t *)&op->work);
    return rc;
  }
  if (op->err != 0) {
    rc = read_failed(t, op);
    op_free(op);
    return rc;
  }
  *data = op->data;
  *len = op->len;
  op->data = NULL;
  op_free(op);
  return 0;
}

void
bh_file_free(void *data) {
  free(data);
}
