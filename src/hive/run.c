/* run.c - the reference's beehive_run(): a root bee in the caller's
 * process delegates one task to a fresh queen (id 10000, in the same
 * process, over a private channel like any child), then tells her to die
 * and waits for her dead message.
 *
 * The hive lives on a libuv loop: the caller's own (bh_run_start, the
 * reference's awaitable beehive_run) or a private one that bh_run runs
 * until the end. Either way the end comes from the loop (`finish`, a
 * zero timer started when the root is dead), never from inside the bees'
 * own callbacks: the bees are freed, the run's handles closed, and the
 * last close calls `done` with what bh_run returns. */
#include "hive/door.h"
#include "hive/life.h"
#include "hive/make.h"
#include "hive/opts.h"
#include "hive/parent.h"
#include "hive/queen.h"
#include "hive/result.h"
#include "hive/task.h"
#include "hive/worker.h"
#include "runtime/overflow.h"
#include "runtime/sig.h"
#include "runtime/turn.h"
#include "transport/tcp.h"

#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define QUEEN_ID 10000

#define N_HANDLES 5 /* progress, finish, sigs[2], join */
#define JOIN_TIMEOUT_MS 60000

typedef struct run {
  uv_loop_t *loop;
  const bh_run_opts *o;
  bh_bee *root, *queen;
  bh_result *res;  /* what the root's delegation got */
  uv_timer_t progress;
  uv_timer_t finish;    /* the end, from the loop */
  uv_signal_t sigs[2];  /* SIGINT, SIGTERM */
  uv_timer_t join;      /* the deadline of the remote workers' joining */
  bool started;         /* the root's task started */
  int interrupts;
  int signum; /* the signal that cancelled the queen's work */
  int rc;            /* what done gets, once known */
  bh_result *out;
  int open_handles;  /* of the N_HANDLES, not closed yet */
  bool launched;     /* the hive was made: the turn hook is its */
  bool overflow;     /* the stack overflow handler was started */
  bh_run_cb done;
  void *udata;
} run;

static void on_finish(uv_timer_t *t);

static void
root_dead(bh_bee *bee) {
  run *r = bee->owner;

  uv_timer_start(&r->finish, on_finish, 0, 0);
}

static void
queen_drained(bh__chan *c, void *udata) {
  bh_bee *queen = udata;

  (void)c;
  bh__chan_close(queen->parent);
  queen->parent = NULL;
}

/* Her dead message is queued: close her end once it is out, so that the
 * root sees the end of her channel and mourns her. */
static void
queen_dead(bh_bee *queen) {
  bh__chan_on_drained(queen->parent, queen_drained);
}

static void
report(run *r, int final) {
  bh_stats s;

  if (bh_bee_stats(r->queen, &s) == 0)
    r->o->progress(r->o->progress_udata, &s, final);
}

static void
progress_cb(uv_timer_t *h) {
  report(h->data, 0);
}

/* SIGINT/SIGTERM: the queen's work is cancelled (after the first signal
 * with BH_SIGNALS_FINISH, which only logs it) and new work refused; her
 * task answers cancelled and the hive dies in order. One signal more
 * kills the workers at once. */
static void end_early(run *r, int rc, bh_result *out);

/* A signal while the queen waits for her remote workers: her task never
 * started, and the run ends cancelled as it would have with it. */
static void
interrupted_early(run *r, const char *why) {
  char *text = bh__asprintf("The queen bee cancelled the task. Reason: %s",
                            why);
  bh_result *out = bh__result_make(BH_CANCELLED, QUEEN_ID, NULL, NULL, text,
                                   NULL, NULL);

  bh__free(text);
  uv_timer_stop(&r->join);
  r->queen->awaiting_joins = false;
  if (out != NULL)
    bh__result_set_signal(out, r->signum);
  end_early(r, out != NULL ? BH_ECANCELLED : BH_ENOMEM, out);
}

static void
signal_cb(uv_signal_t *h, int signum) {
  run *r = h->data;
  int cancel_at = r->o->on_signal == BH_SIGNALS_FINISH ? 1 : 0;
  int n = r->interrupts++;
  char why[96];

  snprintf(why, sizeof(why), "The hive was interrupted by SIG%s.",
           sigabbrev_np(signum));
  bh_log(r->o->logger, BH_LOG_WARNING, "%s", why);
  if (n < cancel_at)
    return;
  if (n > cancel_at) {
    snprintf(why, sizeof(why), "killed by the queen at a further SIG%s",
             sigabbrev_np(signum));
    bh__children_kill(&r->queen->kids, why);
    return;
  }
  r->signum = signum;
  if (!r->started && r->out == NULL) { /* still waiting for workers */
    interrupted_early(r, why);
    return;
  }
  if (r->queen->pop_failed == NULL)
    r->queen->pop_failed = bh__strdup(why);
  bh__bee_cancel_all(r->queen, why);
}

static void
watch_signals(run *r) {
  static const int which[2] = {SIGINT, SIGTERM};
  int i;

  for (i = 0; i < 2; i++)
    if (r->o->on_signal != BH_SIGNALS_IGNORE)
      bh__sig_start(&r->sigs[i], signal_cb, which[i]);
}

static int
root_fn(bh_task *t, void *arg) {
  run *r = arg;
  const bh_run_opts *o = r->o;

  /* progress_interval_ms -1: no timer, the final call only. */
  if (o->progress != NULL && o->progress_interval_ms >= 0) {
    int64_t every = o->progress_interval_ms > 0 ? o->progress_interval_ms
                                                : 200;

    uv_timer_start(&r->progress, progress_cb, (uint64_t)every,
                   (uint64_t)every);
  }
  bh_delegate_value(t, &r->res, o->task_name,
                    o->task_args ? bh_value_object(o->task_args) : NULL,
                    o->task_kwargs ? bh_value_object(o->task_kwargs) : NULL);
  if (o->progress != NULL) {
    uv_timer_stop(&r->progress);
    report(r, 1);
  }
  bh__bee_terminate(t->bee, "The task is done.");
  return 0;
}

static int
start_root_task(run *r) {
  bh_task *t = bh__task_local_new(r->root, "beehive_run", root_fn, r);

  if (t == NULL)
    return BH_ENOMEM;
  r->started = true;
  bh__task_start(t);
  return 0;
}

static const msgpack_object *
obj(const bh_value *v) {
  return v ? bh_value_object(v) : NULL;
}

static bh_result *
error_result(const char *type, const char *msg) {
  return bh__result_make(BH_RAISED, -1, type, msg, NULL, NULL, NULL);
}

/* 0 keeps the bee's defaults; -1 is none: no retries, no deadline, a
 * task never refused as poison, no grace before a kill. */
static void
set_ft(bh_bee *queen, const bh_run_opts *o) {
  queen->ft.retries = o->retries > 0 ? o->retries : 0;
  if (o->poison_kills != 0)
    queen->ft.poison_kills = o->poison_kills > 0 ? o->poison_kills : INT_MAX;
  queen->ft.timeout_ms = o->task_timeout_ms > 0 ? o->task_timeout_ms : 0;
  if (o->kill_grace_ms != 0)
    queen->ft.grace_ms = o->kill_grace_ms > 0 ? o->kill_grace_ms : 0;
  if (o->shutdown_grace_ms != 0)
    queen->ft.shutdown_ms = o->shutdown_grace_ms > 0 ? o->shutdown_grace_ms
                                                     : 0;
}

/* The workers' settings, filled once here from the options (wcfg.h).
 * A worker that could not be started may leave *why. */
static int
setup_workers(run *r, const bh_class *wc, int n, const bh__pop_opts *po,
              char **why) {
  const bh_run_opts *o = r->o;
  bh__spawn_opts so = {.s3_profile = o->s3_profile,
                      .max_concurrency = o->max_concurrency,
                      .prefetch = o->prefetch, .max_frame = o->max_frame,
                      .http_max_host_connections =
                          o->http_max_host_connections,
                      .http_max_connections = o->http_max_connections,
                      .http_ca_file = o->http_ca_file};
  bh__wcfg cfg;
  int rc = bh__wcfg_from_spawn(&cfg, &so);

  if (o->listen != NULL)
    cfg.heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms
                                           : BH__TCP_HEARTBEAT_MS;
  if (rc == 0)
    rc = bh__queen_setup(r->queen, wc, o->worker_init_args,
                         o->worker_init_kwargs, n, &cfg, o->start,
                         bh__worker_run, po, why);
  bh__wcfg_clear(&cfg);
  return rc;
}

/* Makes the root and the queen, joined by a socketpair, and her workers.
 * On failure *why is an owned explanation. */
static int
make_hive(run *r, int sv[2], char **why) {
  const bh_run_opts *o = r->o;
  const bh_class *wc = o->worker_class ? o->worker_class
                                       : o->queen_class->worker_class;
  bh_context ctx = {.async = 1, .s3_profile = o->s3_profile};
  bh__http_opts http = {o->http_max_host_connections,
                        o->http_max_connections, o->http_ca_file};
  bh__bee_opts ro = {.id = -1, .max_conc = -1, .log = o->logger,
                     .max_frame = o->max_frame, .pickup_ms = o->pickup_timeout_ms,
                     .on_dead = root_dead, .owner = r};
  bh__bee_opts qo = {.cls = o->queen_class, .id = QUEEN_ID,
                     .max_conc = o->queen_max_concurrency > 0
                                     ? o->queen_max_concurrency : -1,
                     .log = o->logger, .ctx = &ctx, .max_frame = o->max_frame,
                     .pickup_ms = o->pickup_timeout_ms, .http = http,
                     .on_dead = queen_dead, .owner = r};
  int rc, n = o->workers ? o->workers : o->queen_class->workers;

  if (o->context_vars != NULL) {
    ctx.user = o->context_vars->user;
    ctx.s3_client = o->context_vars->s3_client;
  }
  rc = bh__bee_new(&r->root, r->loop, -1, &ro);
  if (rc == 0)
    rc = bh__bee_new(&r->queen, r->loop, sv[1], &qo);
  else
    close(sv[1]);
  if (rc == 0)
    rc = bh__child_add(r->root, sv[0], 0, -1, NULL, NULL);
  else
    close(sv[0]);
  if (rc == 0 && o->trace != NULL)
    bh_bee_trace(r->queen, o->trace);
  if (rc == 0)
    rc = bh__bee_init(r->queen, obj(o->queen_init_args),
                      obj(o->queen_init_kwargs), why);
  if (rc == 0) {
    bh__pop_opts po = {o->min_workers, o->max_workers, o->pop_interval_ms,
                       o->cpu_high, o->mem_high, o->max_restarts,
                       o->restart_period_ms, o->recycle_after,
                       o->remote_loss};

    if (o->workers == BH_NONE) /* only remote workers (opts.c) */
      po.min = -1, n = 0;

    set_ft(r->queen, o);
    r->queen->direct_offers = o->direct_offer >= 0;
    rc = setup_workers(r, wc, n, &po, why);
  }
  return rc;
}

/* What bh_run returns for the root's result: the queen's own message,
 * unwrapped, or her cancellation as the reference words it. */
static int
outcome(run *r, bh_result **out) {
  const msgpack_object *m = bh_result_message(r->res);
  const msgpack_object *d = bh__map_get(m, "other_details");
  const msgpack_object *cause = d ? bh__map_get(d, "cause") : NULL;
  const char *reason = bh_result_reason(r->res);
  char *text;

  if (bh_result_status(r->res) == BH_SUCCEEDED) {
    *out = r->res;
    r->res = NULL;
    return 0;
  }
  if (bh_result_status(r->res) == BH_RAISED && cause != NULL &&
      bh__map_get(cause, "status") != NULL) {
    bh_logger_debug_msg(r->o->logger, cause);
    *out = bh__result_new(bh_value_from_object(cause), QUEEN_ID);
    return *out ? BH_ERAISED : BH_ENOMEM;
  }
  if (bh_result_status(r->res) == BH_RAISED && reason == NULL &&
      (d == NULL || bh__map_get(d, "reason") == NULL)) {
    /* The root's own failure (e.g. arguments over the frame limit). */
    bh_logger_debug_msg(r->o->logger, m);
    *out = r->res;
    r->res = NULL;
    return BH_ERAISED;
  }
  if (reason == NULL && d != NULL && (cause = bh__map_get(d, "reason")) &&
      cause->type == MSGPACK_OBJECT_STR)
    reason = NULL, text = bh__asprintf(
        "The queen bee cancelled the task. Reason: %.*s",
        (int)cause->via.str.size, cause->via.str.ptr);
  else
    text = bh__asprintf("The queen bee cancelled the task. Reason: %s",
                        reason ? reason : bh_result_errmsg(r->res));
  *out = bh__result_make(BH_CANCELLED, QUEEN_ID, NULL, NULL, text, NULL, NULL);
  bh__free(text);
  return *out ? BH_ECANCELLED : BH_ENOMEM;
}


/* Every option in its range before anything starts; a refusal is a
 * ValueError result that says which option and why. */
static int
check_opts(const bh_run_opts *o, bh_result **out) {
  char why[256];

  if (bh__run_opts_check(o, why, sizeof(why)) == 0) {
    if (o->context_vars == NULL || o->context_vars->async)
      return 0;
    /* The reference's words for this one. */
    snprintf(why, sizeof(why), "%s",
             "The function can only be run in asynchronous mode.");
  }
  *out = error_result("ValueError", why);
  return BH_EINVAL;
}

/* The run's own handles are closed: the last one hands over the result
 * and frees the run. */
static void
handle_closed(uv_handle_t *h) {
  run *r = h->data;

  if (--r->open_handles > 0)
    return;
  r->done(r->udata, r->rc, r->out);
  bh__free(r);
}

/* The end, on the loop: the result, then the bees freed and the run's
 * handles closed. The turn hook goes too, so that no fiber of a freed
 * bee runs again. */
static void
on_finish(uv_timer_t *t) {
  run *r = t->data;
  int i;

  if (r->out == NULL) { /* the hive lived: its outcome */
    r->rc = r->res ? outcome(r, &r->out) : BH_ENOMEM;
    if (r->rc == BH_ECANCELLED && r->signum != 0 && r->out != NULL)
      bh__result_set_signal(r->out, r->signum);
  }
  bh_result_free(r->res);
  r->res = NULL;
  for (i = 0; i < 2; i++)
    bh__sig_stop(&r->sigs[i]);
  bh__bee_free(r->queen);
  bh__bee_free(r->root);
  r->queen = r->root = NULL;
  if (r->launched)
    bh__turn_close();
  if (r->overflow) /* the program's own SIGSEGV handling comes back */
    bh__overflow_stop();
  uv_close((uv_handle_t *)&r->progress, handle_closed);
  uv_close((uv_handle_t *)&r->finish, handle_closed);
  uv_close((uv_handle_t *)&r->join, handle_closed);
  for (i = 0; i < 2; i++)
    uv_close((uv_handle_t *)&r->sigs[i], handle_closed);
}

/* Ends the run before its hive lived, with rc and `out` saying why. */
static void
end_early(run *r, int rc, bh_result *out) {
  r->rc = rc;
  r->out = out;
  uv_timer_start(&r->finish, on_finish, 0, 0);
}

static void
fail(run *r, int rc, const char *type, const char *why) {
  end_early(r, rc, error_result(type, why));
}

/* ------------------------------------------------------------------------
 * Remote workers: the queen's door (door.h), and the wait for the first
 * remote_workers to join before her task starts. */

/* The remote workers alive now (one that joined and was lost before the
 * task started does not count). */
static size_t
remote_alive(const bh_bee *queen) {
  size_t i, n = 0;

  for (i = 0; i < queen->kids.n; i++)
    n += queen->kids.all[i]->alive && queen->kids.all[i]->host != NULL;
  return n;
}

static void
joined(bh_bee *queen, bh__child *c, void *arg) {
  run *r = arg;

  (void)c;
  if (r->started || r->out != NULL ||
      remote_alive(queen) < (size_t)r->o->remote_workers)
    return;
  uv_timer_stop(&r->join);
  queen->awaiting_joins = false;
  if (start_root_task(r) != 0)
    fail(r, BH_ENOMEM, "MemoryError", "no memory for the root's task");
}

static void
join_late(uv_timer_t *h) {
  run *r = h->data;
  char why[256];

  if (r->started || r->out != NULL)
    return;
  size_t alive = remote_alive(r->queen);
  size_t lost = bh__door_joined(r->queen) - alive;
  int n = snprintf(why, sizeof(why), "only %zu of %d remote workers joined "
                   "at %s within %lld ms", alive, r->o->remote_workers,
                   bh__door_addr(r->queen),
                   (long long)(r->o->join_timeout_ms ? r->o->join_timeout_ms
                                                     : JOIN_TIMEOUT_MS));

  if (lost > 0 && n > 0 && (size_t)n < sizeof(why))
    snprintf(why + n, sizeof(why) - (size_t)n, " (%zu more joined and were "
             "lost)", lost);
  r->queen->awaiting_joins = false;
  bh_log(r->o->logger, BH_LOG_ERROR, "%s", why);
  fail(r, BH_ESPAWN, "SpawnError", why);
}

/* Opens the door, tells the launcher where it is, and starts the root's
 * task at once or once enough workers have joined. */
static int
open_door(run *r, char **why) {
  const bh_run_opts *o = r->o;
  bh__door_opts d = {.listen = o->listen, .key = o->key,
                     .key_file = o->key_file,
                     .heartbeat_ms = (unsigned)o->heartbeat_ms,
                     .joined = joined, .arg = r};
  int64_t ms = o->join_timeout_ms ? o->join_timeout_ms : JOIN_TIMEOUT_MS;
  char text[320];
  int rc = bh__door_open(r->queen, &d, text, sizeof(text));

  if (rc != 0) {
    *why = bh__strdup(text);
    return rc;
  }
  if (o->on_listen != NULL)
    o->on_listen(o->listen_udata, bh__door_addr(r->queen));
  if (o->remote_workers <= 0)
    return start_root_task(r);
  r->queen->awaiting_joins = true;
  if (ms > 0)
    uv_timer_start(&r->join, join_late, (uint64_t)ms, 0);
  return 0;
}

/* The run and its own handles, on loop; the handles do not keep the
 * loop alive (the bees' channels do, until the end). */
static run *
run_new(uv_loop_t *loop, const bh_run_opts *o, bh_run_cb done,
        void *udata) {
  run *r = bh__calloc(1, sizeof(*r));
  int i;

  if (r == NULL)
    return NULL;
  *r = (run){.loop = loop, .o = o, .done = done, .udata = udata,
             .open_handles = N_HANDLES};
  uv_timer_init(loop, &r->progress);
  uv_timer_init(loop, &r->finish);
  uv_timer_init(loop, &r->join);
  r->progress.data = r->finish.data = r->join.data = r;
  uv_unref((uv_handle_t *)&r->progress);
  for (i = 0; i < 2; i++) {
    uv_signal_init(loop, &r->sigs[i]);
    r->sigs[i].data = r;
    uv_unref((uv_handle_t *)&r->sigs[i]);
  }
  return r;
}

/* Makes the hive and starts the root's task; on failure the run ends
 * with a result that says why. */
static void
launch(run *r) {
  char *why = NULL;
  int sv[2], rc;

  r->launched = true;
  watch_signals(r);
  signal(SIGPIPE, SIG_IGN);
  if (bh__unix_pair(sv) != 0) {
    fail(r, BH_ESPAWN, "OSError", "socketpair failed");
    return;
  }
  /* Before the workers are forked: they inherit it. */
  bh__overflow_start();
  r->overflow = true;
  if ((rc = bh__turn_init(r->loop)) == 0)
    rc = make_hive(r, sv, &why);
  else
    close(sv[0]), close(sv[1]);
  if (rc == 0)
    rc = r->o->listen != NULL ? open_door(r, &why) : start_root_task(r);
  if (rc != 0) {
    fail(r, rc == BH_EINVAL ? rc : BH_ESPAWN,
         rc == BH_EINVAL ? "ValueError" : "SpawnError",
         why ? why : bh_strerror(rc));
    bh__free(why);
  }
}

/* A run on loop; `alone`: refuse when a hive already lives on this
 * thread (bh_run_start: two hives cannot share the thread's turn hook;
 * bh_run may nest in a task of another hive, on a loop of its own). */
static int
start(uv_loop_t *loop, const bh_run_opts *o, bh_run_cb done, void *udata,
      bool alone) {
  bh_result *refusal = NULL;
  run *r;
  int rc;

  if (loop == NULL || done == NULL)
    return BH_EINVAL;
  if ((r = run_new(loop, o, done, udata)) == NULL)
    return BH_ENOMEM;
  if ((rc = check_opts(o, &refusal)) != 0)
    end_early(r, rc, refusal);
  else if (alone && bh__turn_active())
    fail(r, UV_EBUSY, "RuntimeError",
         "bh_run_start: a hive already runs on this thread (one at a "
         "time)");
  else
    launch(r);
  return 0;
}

int
bh_run_start(uv_loop_t *loop, const bh_run_opts *o, bh_run_cb done,
             void *udata) {
  return start(loop, o, done, udata, true);
}

typedef struct outcome_box {
  int rc;
  bh_result *out;
} outcome_box;

static void
keep_outcome(void *udata, int rc, bh_result *out) {
  outcome_box *b = udata;

  b->rc = rc;
  b->out = out;
}

int
bh_run(const bh_run_opts *o, bh_result **out) {
  outcome_box b = {BH_ENOMEM, NULL};
  uv_loop_t loop;
  int rc;

  if (out == NULL)
    return BH_EINVAL;
  uv_loop_init(&loop);
  if ((rc = start(&loop, o, keep_outcome, &b, false)) == 0)
    uv_run(&loop, UV_RUN_DEFAULT);
  bh__loop_finish(&loop);
  *out = b.out;
  return rc != 0 ? rc : b.rc;
}
