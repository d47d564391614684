/* progress.c - one progress line for people, as a program's
 * bh_progress_fn draws it:
 *   [#####---------------] 1234/100000 rows  5,432 rows/s  ETA 0:18  workers 2
 * and the ETA that bh_bee_stats() computes for it (stats.c). */
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "base/base.h"
#include "observe/progress.h"

#define BAR_W 20

typedef struct out {
  char *buf;
  size_t len, at; /* at: what would have been written so far */
} out;

static void
put(out *o, const char *fmt, ...) BH_PRINTF(2, 3);

static void
put(out *o, const char *fmt, ...) {
  size_t room = o->at < o->len ? o->len - o->at : 0;
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(room ? o->buf + o->at : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    o->at += (size_t)n;
}

/* An integer with thousands separators: 5,432. */
static void
put_grouped(out *o, uint64_t v) {
  char digits[24];
  int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v), i;

  for (i = 0; i < n; i++) {
    put(o, "%c", digits[i]);
    if (i < n - 1 && (n - 1 - i) % 3 == 0)
      put(o, ",");
  }
}

static void
put_bar(out *o, uint64_t done, uint64_t total) {
  uint64_t filled = done >= total ? BAR_W : done * BAR_W / total;
  char bar[BAR_W + 1];

  memset(bar, '-', BAR_W);
  memset(bar, '#', (size_t)filled);
  bar[BAR_W] = '\0';
  put(o, "[%s] ", bar);
}

double
bh__progress_eta(uint64_t done, uint64_t total, double per_s) {
  if (total == 0)
    return -1.0;
  if (done >= total)
    return 0.0;
  return per_s > 0 ? (double)(total - done) / per_s : -1.0;
}

/* A duration as m:ss or h:mm:ss (whole seconds, rounded up or down);
 * "--:--" when negative (unknown) or beyond 99 hours. */
static void
put_time(out *o, double secs, bool up) {
  uint64_t s;

  if (secs < 0 || secs > 359999.0) {
    put(o, "--:--");
    return;
  }
  s = (uint64_t)(up ? secs + 0.999 : secs);
  if (s >= 3600)
    put(o, "%llu:%02u:%02u", (unsigned long long)(s / 3600),
        (unsigned)(s / 60 % 60), (unsigned)(s % 60));
  else
    put(o, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
}

/* The line; elapsed < 0 leaves the elapsed time out. */
static size_t
line(char *buf, size_t len, uint64_t done, uint64_t total, double per_s,
     double elapsed, double eta, size_t workers, const char *unit) {
  out o = {buf, len, 0};

  if (len > 0)
    buf[0] = '\0';
  unit = unit != NULL ? unit : "tasks";
  if (total > 0) {
    put_bar(&o, done, total);
    put(&o, "%llu/%llu %s  ", (unsigned long long)done,
        (unsigned long long)total, unit);
  } else {
    put(&o, "%llu %s  ", (unsigned long long)done, unit);
  }
  if (per_s > 0 && per_s < 100)
    put(&o, "%.1f", per_s);
  else
    put_grouped(&o, per_s > 0 ? (uint64_t)(per_s + 0.5) : 0);
  put(&o, " %s/s", unit);
  if (elapsed >= 0) {
    put(&o, "  elapsed ");
    put_time(&o, elapsed, false);
  }
  if (total > 0) {
    put(&o, "  ETA ");
    put_time(&o, eta, true);
  }
  put(&o, "  workers %zu", workers);
  return o.at;
}

size_t
bh_progress_format(char *buf, size_t len, uint64_t done, uint64_t total,
                   double per_s, size_t workers, const char *unit) {
  return line(buf, len, done, total, per_s, -1.0,
              bh__progress_eta(done, total, per_s), workers, unit);
}

size_t
bh_progress_format_stats(char *buf, size_t len, const bh_stats *s,
                         const char *unit) {
  if (s == NULL) {
    if (len > 0)
      buf[0] = '\0';
    return 0;
  }
  return line(buf, len, s->done, s->total, s->per_s,
              s->elapsed_s >= 0 ? s->elapsed_s : 0, s->eta_s, s->alive, unit);
}
