/* progress.c - one progress line for people, as a program's
 * bh_progress_fn draws it:
 *   [#####---------------] 1234/100000 rows  5,432 rows/s  ETA 0:18  workers 2
 */
#include <stdarg.h>
#include <string.h>

#include "internal.h"

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

/* "ETA 0:18", "ETA 1:02:03", "ETA --:--" when the rate is unknown. */
static void
put_eta(out *o, uint64_t done, uint64_t total, double per_s) {
  double left;
  uint64_t s;

  if (done >= total) {
    put(o, "  ETA 0:00");
    return;
  }
  left = per_s > 0 ? (double)(total - done) / per_s : -1.0;
  if (left < 0 || left > 359999.0) { /* unknown rate, or beyond 99 h */
    put(o, "  ETA --:--");
    return;
  }
  s = (uint64_t)(left + 0.999);
  if (s >= 3600)
    put(o, "  ETA %llu:%02u:%02u", (unsigned long long)(s / 3600),
        (unsigned)(s / 60 % 60), (unsigned)(s % 60));
  else
    put(o, "  ETA %u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
}

size_t
bh_progress_format(char *buf, size_t len, uint64_t done, uint64_t total,
                   double per_s, size_t workers, const char *unit) {
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
  if (total > 0)
    put_eta(&o, done, total, per_s);
  put(&o, "  workers %zu", workers);
  return o.at;
}
