/* trace_svg.c - a trace as a self-contained SVG timeline: a lane per bee,
 * a bar per task from its start (handed to the child) to its answer,
 * coloured by status, a thin amber strip where tasks waited to be handed
 * over, a time axis and a legend.
 *
 * A lane with few tasks that overlap little gets one bar per task (in up
 * to MAX_SUB rows) with a tooltip. A busier lane would need more bars than
 * it has pixels, so it is drawn per pixel column instead: the column's bar
 * is as high as the number of tasks in flight there (relative to the
 * lane's peak), split by status, and runs of equal columns merge into one
 * rectangle. The file size then depends on the picture's width, not on
 * the number of tasks. */
#include <errno.h>
#include <string.h>

#include "observe/trace_lanes.h"

#define SVG_W 1200
#define PLOT_X 220   /* left edge of the plot; lane labels to its left */
#define PLOT_W 940   /* pixel columns of the plot */
#define TOP 64       /* top of the first lane */
#define LANE_H 34
#define BAR_H 22     /* bars are BAR_H high, then the waiting strip */
#define WAIT_Y 24    /* offset of the waiting strip in the lane */
#define WAIT_H 3
#define MAX_SUB 4    /* rows of individual bars in a lane, at most */
#define N_KIND 4     /* succeeded, raised, cancelled, waiting */
#define WAITING 3

typedef struct item {
  int64_t made, start, end;
  size_t span; /* index in the trace */
  int sub;     /* the row of its bar (bar mode) */
} item;

typedef struct svg {
  FILE *f;
  const bh_span *sp;
  bh__tlanes lanes;
  int64_t t_end;    /* the right edge, in µs */
  double scale;     /* pixels per µs */
  double occ[N_KIND][PLOT_W];      /* per column: tasks in flight */
  double full[N_KIND][PLOT_W + 1]; /* difference array of whole columns */
} svg;

static const char *const kind_class[N_KIND] = {"s", "r", "c", "w"};

/* Writes s as XML text: markup characters escaped, control characters and
 * bytes that are not UTF-8 replaced by '?'. */
static void
put_text(FILE *f, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  size_t n = strlen(str), i = 0, k;

  while (i < n) {
    if (s[i] == '&' || s[i] == '<' || s[i] == '>' || s[i] == '"') {
      fputs(s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;"
            : s[i] == '>' ? "&gt;" : "&quot;", f);
      i++;
    } else if (s[i] < 0x20 || s[i] == 0x7f) {
      fputc('?', f);
      i++;
    } else if (s[i] < 0x80) {
      fputc(s[i++], f);
    } else if ((k = bh__utf8_len(s + i, n - i)) > 0) {
      fwrite(s + i, 1, k, f);
      i += k;
    } else {
      fputc('?', f);
      i++;
    }
  }
}

/* A time for people: "0", "250 ms", "1.5 s", with `dec` decimals. */
static void
fmt_time(char *buf, size_t len, int64_t us, int seconds, int dec) {
  if (us == 0)
    snprintf(buf, len, "0");
  else if (seconds)
    snprintf(buf, len, "%.*f s", dec, (double)us / 1e6);
  else
    snprintf(buf, len, "%.*f ms", dec, (double)us / 1e3);
}

/* Decimals that tell ticks `step` µs apart: seconds from 2 s on. */
static int
decimals(int64_t step, int seconds) {
  int64_t unit = seconds ? 1000000 : 1000;
  int dec = 0;

  while (step < unit && dec < 3) {
    unit /= 10;
    dec++;
  }
  return dec;
}

/* 1, 2 or 5 times a power of ten, so that about 8 ticks cover `t_end`. */
static int64_t
tick_step(int64_t t_end) {
  int64_t raw = t_end / 8 > 0 ? t_end / 8 : 1, p = 1;

  while (p * 10 <= raw)
    p *= 10;
  return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

static void
put_axis(svg *s, int y) {
  int64_t step = tick_step(s->t_end), t;
  int seconds = s->t_end >= 2000000, dec = decimals(step, seconds);
  char label[32];

  fprintf(s->f, "<path class=\"ax\" d=\"M%d %dH%d\"/>\n", PLOT_X, y,
          PLOT_X + PLOT_W);
  for (t = 0; t <= s->t_end; t += step) {
    double x = PLOT_X + (double)t * s->scale;

    fmt_time(label, sizeof(label), t, seconds, dec);
    fprintf(s->f, "<path class=\"grid\" d=\"M%.1f %dV%d\"/>"
                  "<path class=\"ax\" d=\"M%.1f %dv5\"/>"
                  "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s"
                  "</text>\n", x, TOP - 4, y, x, y, x, y + 18, label);
  }
  fprintf(s->f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                "class=\"info\">time since the trace started</text>\n",
          PLOT_X + PLOT_W / 2, y + 34);
}

static void
put_head(svg *s, size_t n_tasks, int height) {
  static const char *const names[N_KIND] = {
      "succeeded", "raised", "cancelled", "waiting to be handed over"};
  int seconds = s->t_end >= 1000000, x = PLOT_X, k;
  char span[32];

  fmt_time(span, sizeof(span), s->t_end, seconds, 2);
  fprintf(s->f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
          "height=\"%d\" viewBox=\"0 0 %d %d\">\n<style>"
          "text{font-family:sans-serif;font-size:12px;fill:#222}"
          ".info{font-size:10px;fill:#666}.lane{font-weight:bold}"
          ".s{fill:#43a047}.r{fill:#e53935}.c{fill:#9e9e9e}.w{fill:#ffb300}"
          ".ax{stroke:#444;fill:none}.grid{stroke:#ddd;fill:none}"
          ".bg{fill:#000;fill-opacity:.04}</style>\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
          "<text x=\"12\" y=\"22\" style=\"font-size:15px\">beehive "
          "timeline: %zu tasks on %zu lanes over %s</text>\n",
          SVG_W, height, SVG_W, height, n_tasks, s->lanes.n, span);
  for (k = 0; k < N_KIND; k++) {
    fprintf(s->f, "<rect class=\"%s\" x=\"%d\" y=\"34\" width=\"12\" "
                  "height=\"12\"/><text x=\"%d\" y=\"45\">%s</text>\n",
            kind_class[k], x, x + 16, names[k]);
    x += 40 + 7 * (int)strlen(names[k]);
  }
}

/* Adds an interval [a, b) of pixel columns to kind k's occupancy: the
 * partial columns at both ends directly, the whole ones in between through
 * the difference array. */
static void
cover(svg *s, int k, double a, double b) {
  int ca, cb;

  a = a < 0 ? 0 : a > PLOT_W ? PLOT_W : a;
  b = b < a ? a : b > PLOT_W ? PLOT_W : b;
  ca = (int)a;
  cb = (int)b;
  if (ca >= PLOT_W)
    return;
  if (ca == cb) {
    s->occ[k][ca] += b - a;
    return;
  }
  s->occ[k][ca] += ca + 1 - a;
  if (cb < PLOT_W)
    s->occ[k][cb] += b - cb;
  s->full[k][ca + 1] += 1;
  s->full[k][cb] -= 1;
}

/* Fills the occupancy of a lane's items; returns the peak of tasks in
 * flight in one column (waiting aside). */
static double
occupancy(svg *s, const item *it, size_t n) {
  double run[N_KIND] = {0}, peak = 0;
  size_t i;
  int k, c;

  memset(s->occ, 0, sizeof(s->occ));
  memset(s->full, 0, sizeof(s->full));
  for (i = 0; i < n; i++) {
    cover(s, (int)s->sp[it[i].span].status, (double)it[i].start * s->scale,
          (double)it[i].end * s->scale);
    if (it[i].start > it[i].made)
      cover(s, WAITING, (double)it[i].made * s->scale,
            (double)it[i].start * s->scale);
  }
  for (c = 0; c < PLOT_W; c++) {
    for (k = 0; k < N_KIND; k++)
      s->occ[k][c] += (run[k] += s->full[k][c]);
    if (s->occ[0][c] + s->occ[1][c] + s->occ[2][c] > peak)
      peak = s->occ[0][c] + s->occ[1][c] + s->occ[2][c];
  }
  return peak;
}

/* Column c's stacked heights, bottom up, for the three statuses: at least
 * one pixel for any status present, at most BAR_H in all. */
static void
heights(const svg *s, int c, double peak, int h[3]) {
  int k, total = 0, big = 0;

  for (k = 0; k < 3; k++) {
    double v = s->occ[k][c];

    h[k] = v <= 0 ? 0 : (int)(BAR_H * v / peak + 0.5);
    if (v > 0 && h[k] < 1)
      h[k] = 1;
    total += h[k];
    big = h[k] > h[big] ? k : big;
  }
  if (total > BAR_H)
    h[big] -= total - BAR_H;
}

static void
put_rect(svg *s, int k, int x0, int x1, int y, int h) {
  fprintf(s->f, "<rect class=\"%s\" x=\"%d\" y=\"%d\" width=\"%d\" "
                "height=\"%d\"/>\n", kind_class[k], PLOT_X + x0, y, x1 - x0,
          h);
}

/* Draws kind k of a merged lane: one rectangle per run of columns whose
 * segment (top and height) is the same. */
static void
put_runs(svg *s, int k, int y, double peak) {
  int c, from = 0, top = -1, hh = 0, h[3], seg_top, seg_h, base;

  for (c = 0; c <= PLOT_W; c++) {
    seg_h = 0;
    seg_top = -1;
    if (c < PLOT_W && k == WAITING && s->occ[WAITING][c] > 0) {
      seg_h = WAIT_H;
      seg_top = y + WAIT_Y;
    } else if (c < PLOT_W && k < WAITING && peak > 0) {
      heights(s, c, peak, h);
      base = y + BAR_H - (k > 0 ? h[0] : 0) - (k > 1 ? h[1] : 0);
      seg_h = h[k];
      seg_top = base - seg_h;
    }
    if (seg_h == 0)
      seg_top = -1;
    if (seg_top != top || seg_h != hh) {
      if (top >= 0)
        put_rect(s, k, from, c, top, hh);
      from = c;
      top = seg_top;
      hh = seg_h;
    }
  }
}

static void
put_merged(svg *s, const item *it, size_t n, int y, double *peak) {
  int k;

  *peak = occupancy(s, it, n);
  for (k = 0; k < N_KIND; k++)
    put_runs(s, k, y, *peak);
}

/* Gives every item (sorted by start) the first bar row free by then.
 * Returns the rows used, or 0 if MAX_SUB rows are not enough. */
static int
pack(item *it, size_t n) {
  int64_t ends[MAX_SUB];
  int used = 0, r;
  size_t i;

  for (i = 0; i < n; i++) {
    for (r = 0; r < used && ends[r] > it[i].start; r++)
      ;
    if (r == MAX_SUB)
      return 0;
    if (r == used)
      used++;
    ends[r] = it[i].end;
    it[i].sub = r;
  }
  return used;
}

static void
put_bar(svg *s, const item *it, int y, int rows) {
  const bh_span *sp = &s->sp[it->span];
  double x = PLOT_X + (double)it->start * s->scale;
  double w = (double)(it->end - it->start) * s->scale;
  int h = BAR_H / rows;
  char dur[32], wait[32];

  fmt_time(dur, sizeof(dur), it->end - it->start, 0, 3);
  fmt_time(wait, sizeof(wait), it->start - it->made, 0, 3);
  if (it->start > it->made)
    fprintf(s->f, "<rect class=\"w\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
                  "height=\"%d\"/>\n", PLOT_X + (double)it->made * s->scale,
            y + WAIT_Y, (double)(it->start - it->made) * s->scale, WAIT_H);
  fprintf(s->f, "<rect class=\"%s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
                "height=\"%d\"><title>", kind_class[sp->status], x,
          y + it->sub * h, w < 0.5 ? 0.5 : w, h > 1 ? h - 1 : 1);
  put_text(s->f, sp->name != NULL ? sp->name : "?");
  fprintf(s->f, " #%lld: %s, %s (waited %s)</title></rect>\n",
          (long long)sp->task_id, bh__status_name(sp->status), dur, wait);
}

static int
cmp_start(const void *a, const void *b) {
  const item *x = a, *y = b;

  if (x->start != y->start)
    return (x->start > y->start) - (x->start < y->start);
  return (x->span > y->span) - (x->span < y->span);
}

/* Draws lane li: its label and its items (sorted here). */
static void
put_lane(svg *s, size_t li, item *it, size_t n) {
  int y = TOP + (int)li * LANE_H, rows = 0;
  double peak = 0;
  size_t i;

  if (li % 2 == 0)
    fprintf(s->f, "<rect class=\"bg\" x=\"%d\" y=\"%d\" width=\"%d\" "
                  "height=\"%d\"/>\n", PLOT_X, y - 3, PLOT_W, LANE_H);
  fprintf(s->f, "<text class=\"lane\" x=\"%d\" y=\"%d\" "
                "text-anchor=\"end\">", PLOT_X - 8, y + 11);
  put_text(s->f, bh__tlane_label(&s->lanes.lanes[li]));
  fputs("</text>\n", s->f);
  qsort(it, n, sizeof(*it), cmp_start);
  if (n <= PLOT_W / 2)
    rows = pack(it, n);
  if (rows > 0)
    for (i = 0; i < n; i++)
      put_bar(s, &it[i], y, rows);
  else if (n > 0)
    put_merged(s, it, n, y, &peak);
  fprintf(s->f, "<text class=\"info\" x=\"%d\" y=\"%d\" text-anchor=\"end\">"
                "%zu tasks", PLOT_X - 8, y + 24, n);
  if (rows == 0 && n > 0)
    fprintf(s->f, ", up to %.0f at once", peak);
  fputs("</text>\n", s->f);
}

/* The answered spans grouped by lane: items[first[l] .. first[l + 1]). */
static item *
group_items(svg *s, size_t n_sp, size_t *first, size_t *n_items) {
  size_t i, nl = s->lanes.n, *fill;
  item *items;

  memset(first, 0, (nl + 1) * sizeof(*first));
  for (i = 0; i < n_sp; i++)
    if (s->sp[i].end_us >= 0)
      first[bh__tlanes_index(&s->lanes, s->sp[i].lane) + 1]++;
  for (i = 0; i < nl; i++)
    first[i + 1] += first[i];
  *n_items = first[nl];
  items = bh__malloc((*n_items ? *n_items : 1) * sizeof(*items));
  fill = bh__calloc(nl ? nl : 1, sizeof(*fill));
  if (items == NULL || fill == NULL) {
    bh__free(items);
    bh__free(fill);
    return NULL;
  }
  for (i = 0; i < n_sp; i++) {
    const bh_span *p = &s->sp[i];
    size_t l;
    item *it;

    if (p->end_us < 0)
      continue;
    l = bh__tlanes_index(&s->lanes, p->lane);
    it = &items[first[l] + fill[l]++];
    it->made = p->made_us;
    it->start = p->start_us > p->made_us ? p->start_us : p->made_us;
    it->end = p->end_us > it->start ? p->end_us : it->start;
    it->span = i;
    it->sub = 0;
  }
  bh__free(fill);
  return items;
}

static void
put_all(svg *s, item *items, const size_t *first, size_t n_items) {
  int axis_y = TOP + (int)s->lanes.n * LANE_H + 4;
  size_t i;

  s->t_end = 1;
  for (i = 0; i < n_items; i++)
    s->t_end = items[i].end > s->t_end ? items[i].end : s->t_end;
  s->scale = (double)PLOT_W / (double)s->t_end;
  put_head(s, n_items, axis_y + 46);
  put_axis(s, axis_y);
  for (i = 0; i < s->lanes.n; i++)
    put_lane(s, i, items + first[i], first[i + 1] - first[i]);
  fputs("</svg>\n", s->f);
}

int
bh_trace_write_svg(const bh_trace *tr, const char *path) {
  size_t n_sp, n_items, *first = NULL;
  item *items = NULL;
  svg *s;
  int rc = BH_ENOMEM;

  if (tr == NULL || path == NULL)
    return BH_EINVAL;
  if ((s = bh__calloc(1, sizeof(*s))) == NULL)
    return BH_ENOMEM;
  n_sp = bh_trace_spans(tr, &s->sp);
  if (bh__tlanes_init(&s->lanes, tr) != 0)
    goto fail_lanes;
  first = bh__malloc((s->lanes.n + 1) * sizeof(*first));
  if (first == NULL || (items = group_items(s, n_sp, first, &n_items)) == NULL)
    goto fail_items;
  if ((s->f = fopen(path, "w")) == NULL) {
    rc = -errno;
    goto fail_items;
  }
  put_all(s, items, first, n_items);
  rc = ferror(s->f) ? -EIO : 0;
  if (fclose(s->f) != 0 && rc == 0)
    rc = errno ? -errno : -EIO;
fail_items:
  bh__free(items);
  bh__free(first);
  bh__tlanes_close(&s->lanes);
fail_lanes:
  bh__free(s);
  return rc;
}
