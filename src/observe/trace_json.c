/* trace_json.c - a trace as Chrome trace-event JSON, which Perfetto and
 * chrome://tracing open: one complete event ("ph": "X") per answered span,
 * on thread (tid) = lane index, and one thread_name metadata event per lane
 * so that the viewer shows "worker 3 (pid 1234)" rather than a number. */
#include <errno.h>
#include <string.h>

#include "observe/trace_lanes.h"

/* Writes s as a JSON string: quotes, backslashes and control characters
 * escaped, bytes that are not UTF-8 replaced by U+FFFD. */
static void
put_str(FILE *f, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  size_t n = strlen(str), i = 0, k;

  fputc('"', f);
  while (i < n) {
    if (s[i] == '"' || s[i] == '\\') {
      fputc('\\', f);
      fputc(s[i++], f);
    } else if (s[i] < 0x20) {
      fprintf(f, "\\u%04x", s[i++]);
    } else if (s[i] < 0x80) {
      fputc(s[i++], f);
    } else if ((k = bh__utf8_len(s + i, n - i)) > 0) {
      fwrite(s + i, 1, k, f);
      i += k;
    } else {
      fputs("\\ufffd", f);
      i++;
    }
  }
  fputc('"', f);
}

static void
put_lanes(FILE *f, const bh__tlanes *l) {
  size_t i;

  fputs("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,"
        "\"args\":{\"name\":\"beehive\"}}", f);
  for (i = 0; i < l->n; i++) {
    fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,"
               "\"tid\":%zu,\"args\":{\"name\":", i);
    put_str(f, bh__tlane_label(&l->lanes[i]));
    fprintf(f, "}},\n{\"name\":\"thread_sort_index\",\"ph\":\"M\","
               "\"pid\":1,\"tid\":%zu,\"args\":{\"sort_index\":%zu}}", i, i);
  }
}

static void
put_span(FILE *f, const bh__tlanes *l, const bh_span *s) {
  int64_t start = s->start_us > s->made_us ? s->start_us : s->made_us;
  int64_t dur = s->end_us > start ? s->end_us - start : 0;

  fputs(",\n{\"name\":", f);
  put_str(f, s->name != NULL ? s->name : "?");
  fprintf(f, ",\"cat\":\"task\",\"ph\":\"X\",\"ts\":%lld,\"dur\":%lld,"
             "\"pid\":1,\"tid\":%zu,\"args\":{\"task_id\":%lld,"
             "\"status\":\"%s\",\"waited_us\":%lld}}",
          (long long)start, (long long)dur, bh__tlanes_index(l, s->lane),
          (long long)s->task_id, bh__status_name(s->status),
          (long long)(start - s->made_us));
}

int
bh_trace_write_json(const bh_trace *tr, const char *path) {
  const bh_span *sp;
  bh__tlanes l;
  size_t n, i;
  FILE *f;
  int rc;

  if (tr == NULL || path == NULL)
    return BH_EINVAL;
  n = bh_trace_spans(tr, &sp);
  if ((rc = bh__tlanes_init(&l, tr)) != 0)
    return rc;
  if ((f = fopen(path, "w")) == NULL) {
    rc = -errno;
    bh__tlanes_close(&l);
    return rc;
  }
  fputs("{\"traceEvents\":[\n", f);
  put_lanes(f, &l);
  for (i = 0; i < n; i++)
    if (sp[i].end_us >= 0)
      put_span(f, &l, &sp[i]);
  fputs("\n],\n\"displayTimeUnit\":\"ms\"}\n", f);
  rc = ferror(f) ? -EIO : 0;
  if (fclose(f) != 0 && rc == 0)
    rc = errno ? -errno : -EIO;
  bh__tlanes_close(&l);
  return rc;
}
