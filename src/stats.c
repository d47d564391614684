/* stats.c - what a bee counts about its delegations and children, and its
 * link to a timeline (trace.c). */
#include "bee.h"
#include "trace.h"

int
bh_bee_stats(bh_bee *bee, bh_stats *out) {
  bh_child_stats *cs = bee->kid_stats;
  size_t i;

  if (bee->n_kids > 0) {
    cs = bh__realloc(bee->kid_stats, bee->n_kids * sizeof(*cs));
    if (cs == NULL)
      return BH_ENOMEM;
    bee->kid_stats = cs;
  }
  for (i = 0; i < bee->n_kids; i++) {
    const bh__child *c = bee->kids[i];

    cs[i] = (bh_child_stats){.id = c->id, .pid = c->pid, .alive = c->alive,
                             .done = c->done, .raised = c->raised,
                             .cancelled = c->cancelled, .lost = c->lost,
                             .inflight = c->inflight,
                             .deaths = !c->alive && !bh__child_normal_end(c),
                             .cause = c->alive ? NULL : c->cause};
  }
  *out = bee->st;
  out->inflight = bee->st.delegated - bee->st.succeeded - bee->st.raised -
                  bee->st.cancelled - bee->n_backlog;
  out->backlog = bee->n_backlog;
  out->alive = bee->n_alive;
  out->n_children = bee->n_kids;
  out->children = bee->n_kids ? cs : NULL;
  return 0;
}

void
bh__stats_child_lane(bh_bee *bee, const bh__child *c) {
  char label[64];

  if (bee->trace == NULL)
    return;
  if (c->pid != 0)
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
  for (i = 0; i < bee->n_kids; i++)
    bh__stats_child_lane(bee, bee->kids[i]);
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
