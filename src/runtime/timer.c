/* timer.c - see timer.h.
 *
 * The timerfd is armed (absolute time) for the heap's earliest entry when
 * that changes to an earlier time. An entry stopped or fired does not
 * disarm it: a wake-up with nothing due just re-arms for the new earliest,
 * which costs less than a timerfd_settime() per stop. */
#include "runtime/timer.h"

#include <errno.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/base.h"

#define NONE UINT64_MAX

struct bh__timers {
  uv_poll_t poll;
  int fd;
  bh__tentry **heap;
  size_t len, cap;
  uint64_t armed; /* the time the timerfd fires at, or NONE */
};

/* ------------------------------------------------------------------------
 * The heap: heap[0] is the earliest; e->idx is its index + 1. */

static void
place(bh__timers *tm, size_t i, bh__tentry *e) {
  tm->heap[i] = e;
  e->idx = i + 1;
}

static void
sift_up(bh__timers *tm, size_t i) {
  bh__tentry *e = tm->heap[i];

  while (i > 0 && tm->heap[(i - 1) / 2]->due > e->due) {
    place(tm, i, tm->heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  place(tm, i, e);
}

static void
sift_down(bh__timers *tm, size_t i) {
  bh__tentry *e = tm->heap[i];

  for (;;) {
    size_t c = 2 * i + 1;

    if (c >= tm->len)
      break;
    if (c + 1 < tm->len && tm->heap[c + 1]->due < tm->heap[c]->due)
      c++;
    if (tm->heap[c]->due >= e->due)
      break;
    place(tm, i, tm->heap[c]);
    i = c;
  }
  place(tm, i, e);
}

/* A queued entry keeps the loop running, as an active uv_timer_t did. */
static void
hold_loop(bh__timers *tm) {
  if (tm->len > 0)
    uv_ref((uv_handle_t *)&tm->poll);
  else
    uv_unref((uv_handle_t *)&tm->poll);
}

static void
heap_remove(bh__timers *tm, bh__tentry *e) {
  size_t i = e->idx - 1;
  bh__tentry *last = tm->heap[--tm->len];

  e->idx = 0;
  if (tm->len == 0)
    hold_loop(tm);
  if (i == tm->len)
    return;
  place(tm, i, last);
  if (i > 0 && tm->heap[(i - 1) / 2]->due > last->due)
    sift_up(tm, i);
  else
    sift_down(tm, i);
}

/* ------------------------------------------------------------------------
 * The timerfd. */

static void
arm(bh__timers *tm) {
  uint64_t due = tm->len > 0 ? tm->heap[0]->due : NONE;
  struct itimerspec its = {{0, 0}, {0, 0}};

  if (due == tm->armed || due == NONE)
    return;
  /* 0 would disarm it: a time already past fires at once anyway. */
  its.it_value.tv_sec = (time_t)(due / 1000000000u);
  its.it_value.tv_nsec = (long)(due % 1000000000u);
  if (due == 0)
    its.it_value.tv_nsec = 1;
  if (timerfd_settime(tm->fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
    tm->armed = due;
}

static void
poll_cb(uv_poll_t *p, int status, int events) {
  bh__timers *tm = p->data;
  uint64_t ticks, now;

  (void)status;
  (void)events;
  while (read(tm->fd, &ticks, sizeof(ticks)) < 0 && errno == EINTR)
    ;
  tm->armed = NONE;
  now = uv_hrtime();
  while (tm->len > 0 && tm->heap[0]->due <= now) {
    bh__tentry *e = tm->heap[0];

    heap_remove(tm, e);
    e->cb(e);
  }
  arm(tm);
}

int
bh__timers_open(bh__timers **out, uv_loop_t *loop) {
  bh__timers *tm = bh__calloc(1, sizeof(*tm));
  int err;

  if (tm == NULL)
    return BH_ENOMEM;
  tm->armed = NONE;
  tm->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (tm->fd < 0) {
    err = -errno;
    bh__free(tm);
    return err;
  }
  err = uv_poll_init(loop, &tm->poll, tm->fd);
  if (err == 0)
    err = uv_poll_start(&tm->poll, UV_READABLE, poll_cb);
  if (err != 0) {
    close(tm->fd);
    bh__free(tm);
    return err;
  }
  tm->poll.data = tm;
  hold_loop(tm);
  *out = tm;
  return 0;
}

static void
closed(uv_handle_t *h) {
  bh__timers *tm = h->data;

  close(tm->fd);
  bh__free(tm->heap);
  bh__free(tm);
}

void
bh__timers_close(bh__timers *tm) {
  if (tm == NULL)
    return;
  while (tm->len > 0)
    heap_remove(tm, tm->heap[0]);
  uv_close((uv_handle_t *)&tm->poll, closed);
}

int
bh__timer_start(bh__timers *tm, bh__tentry *e, uint64_t due) {
  if (e->idx != 0)
    heap_remove(tm, e);
  if (tm->len == tm->cap) {
    size_t cap = tm->cap ? tm->cap * 2 : 16;
    bh__tentry **h = bh__realloc(tm->heap, cap * sizeof(*h));

    if (h == NULL)
      return BH_ENOMEM;
    tm->heap = h;
    tm->cap = cap;
  }
  e->due = due;
  tm->heap[tm->len++] = e;
  sift_up(tm, tm->len - 1);
  if (tm->len == 1)
    hold_loop(tm);
  if (due < tm->armed)
    arm(tm);
  return 0;
}

void
bh__timer_stop(bh__timers *tm, bh__tentry *e) {
  if (tm != NULL && e->idx != 0)
    heap_remove(tm, e);
}

/* The clock of the API's deadlines (beehive.h), in ms. */
int64_t
bh_now(void) {
  return (int64_t)(uv_hrtime() / 1000000);
}
