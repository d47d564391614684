/* stats.c - what a bee counts about its delegations and children (with
 * the pace a progress line shows: elapsed time, units, rate, ETA), and its
 * link to a timeline (trace.c). Of its dead children it keeps the last
 * BH__GRAVES (stats.h, bh__grave); older ones count in the totals only. */
#include "hive/stats.h"
#include "hive/task.h"
#include "observe/progress.h"
#include "observe/trace.h"

#include <string.h>

static size_t
text_len(const char *s) {
  return s != NULL ? strlen(s) + 1 : 0;
}

/* The bytes of the dead children's causes and of every host name, NULs
 * included. */
static size_t
causes_len(const bh_bee *bee) {
  size_t i, n = 0;

  for (i = 0; i < bee->n_graves; i++)
    n += text_len(bee->graves[i].cause) + text_len(bee->graves[i].host);
  for (i = 0; i < bee->kids.n; i++)
    n += text_len(bee->kids.all[i]->host);
  return n;
}

/* Copies s (NULL: none) to *text, advancing it; returns the copy. */
static const char *
lend(char **text, const char *s) {
  char *copy = *text;

  if (s == NULL)
    return NULL;
  strcpy(copy, s);
  *text += strlen(s) + 1;
  return copy;
}

/* The dead first, oldest first, then the living by id. The causes are
 * copied after the entries: the array lends them until the next call,
 * whatever deaths come meanwhile. */
static void
fill(const bh_bee *bee, bh_child_stats *cs) {
  char *text = (char *)(cs + bee->n_graves + bee->kids.n);
  size_t i, first = bee->n_graves < BH__GRAVES ? 0 : bee->grave_next;

  for (i = 0; i < bee->n_graves; i++) {
    const bh__grave *g = &bee->graves[(first + i) % BH__GRAVES];

    cs[i] = g->st;
    cs[i].cause = lend(&text, g->cause);
    cs[i].host = lend(&text, g->host);
  }
  cs += bee->n_graves;
  for (i = 0; i < bee->kids.n; i++) {
    const bh__child *c = bee->kids.all[i];

    cs[i] = (bh_child_stats){.id = c->id, .pid = c->pid, .alive = c->alive,
                             .done = c->done, .raised = c->raised,
                             .cancelled = c->cancelled, .lost = c->lost,
                             .inflight = c->inflight,
                             .host = lend(&text, c->host)};
  }
}

/* Elapsed time, units done and expected, the mean rate and the ETA. */
static void
pace(const bh_bee *bee, bh_stats *out) {
  out->elapsed_s = (double)(uv_hrtime() - bee->born_ns) / 1e9;
  out->done = bee->prog_own ? bee->prog_done
                            : out->succeeded + out->raised + out->cancelled;
  out->total = bee->prog_total;
  out->per_s = out->elapsed_s > 0 ? (double)out->done / out->elapsed_s : 0;
  out->eta_s = bh__progress_eta(out->done, out->total, out->per_s);
}

int
bh_bee_stats(bh_bee *bee, bh_stats *out) {
  size_t n = bee->n_graves + bee->kids.n;
  bh_child_stats *cs = bee->kid_stats;

  if (n > 0) {
    cs = bh__realloc(bee->kid_stats, n * sizeof(*cs) + causes_len(bee));
    if (cs == NULL)
      return BH_ENOMEM;
    bee->kid_stats = cs;
    fill(bee, cs);
  }
  *out = bee->st;
  out->inflight = bee->st.delegated - bee->st.succeeded - bee->st.raised -
                  bee->st.cancelled - bee->n_backlog;
  out->backlog = bee->n_backlog;
  out->alive = bee->kids.n_alive;
  out->n_children = n;
  out->children = n ? cs : NULL;
  pace(bee, out);
  return 0;
}

void
bh_progress_total(bh_task *t, uint64_t total) {
  if (t != NULL)
    t->bee->prog_total = total;
}

void
bh_progress_add(bh_task *t, uint64_t n) {
  if (t == NULL)
    return;
  t->bee->prog_own = true;
  t->bee->prog_done += n;
}

void
bh__stats_bury(bh_bee *bee, bh__child *c) {
  bh__grave *g;

  if (bee->graves == NULL)
    bee->graves = bh__calloc(BH__GRAVES, sizeof(*bee->graves));
  if (bee->graves == NULL)
    return; /* its numbers are lost; the totals have them */
  g = &bee->graves[bee->grave_next];
  bh__free(g->cause);
  bh__free(g->host);
  *g = (bh__grave){
      .st = {.id = c->id, .pid = c->pid, .done = c->done,
             .raised = c->raised, .cancelled = c->cancelled,
             .lost = c->lost, .inflight = c->inflight,
             .deaths = !bh__child_normal_end(c)},
      .cause = c->cause,
      .host = c->host,
      .wstatus = c->wstatus};
  c->cause = NULL;
  c->host = NULL;
  bee->grave_next = (bee->grave_next + 1) % BH__GRAVES;
  if (bee->n_graves < BH__GRAVES)
    bee->n_graves++;
}

const bh__grave *
bh__stats_grave(const bh_bee *bee, int64_t id) {
  size_t i;

  for (i = 0; i < bee->n_graves; i++)
    if (bee->graves[i].st.id == id)
      return &bee->graves[i];
  return NULL;
}

void
bh__stats_free(bh_bee *bee) {
  size_t i;

  for (i = 0; i < bee->n_graves; i++) {
    bh__free(bee->graves[i].cause);
    bh__free(bee->graves[i].host);
  }
  bh__free(bee->graves);
  bh__free(bee->kid_stats);
  bee->graves = NULL;
  bee->kid_stats = NULL;
  bee->n_graves = bee->grave_next = 0;
}

void
bh__stats_child_lane(bh_bee *bee, const bh__child *c) {
  char label[96];

  if (bee->trace == NULL)
    return;
  if (c->host != NULL)
    snprintf(label, sizeof(label), "worker %lld (%s)", (long long)c->id,
             c->host);
  else if (c->pid != 0)
    snprintf(label, sizeof(label), "worker %lld (pid %d)", (long long)c->id,
             (int)c->pid);
  else
    snprintf(label, sizeof(label), "child %lld", (long long)c->id);
  bh__trace_lane(bee->trace, c->id, label);
}

void
bh_bee_trace(bh_bee *bee, bh_trace *tr) {
  char label[96];
  size_t i;

  bee->trace = tr;
  if (tr == NULL)
    return;
  snprintf(label, sizeof(label), "%s %lld",
           bee->cls && bee->cls->name ? bee->cls->name : "bee",
           (long long)bee->id);
  bh__trace_lane(tr, -1, label);
  for (i = 0; i < bee->kids.n; i++)
    bh__stats_child_lane(bee, bee->kids.all[i]);
}

int64_t
bh_span_begin(bh_task *t, const char *name) {
  bh_trace *tr = t->bee->trace;
  uint64_t now = uv_hrtime();

  if (tr == NULL)
    return -1;
  return bh__trace_add(tr, -1, name, t->id, now, now, 0, BH_SUCCEEDED);
}

void
bh_span_end(bh_task *t, int64_t span, bh_status status) {
  if (t->bee->trace != NULL)
    bh__trace_end(t->bee->trace, span, uv_hrtime(), status);
}
