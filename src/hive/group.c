/* group.c - futures and groups: many delegations (or local fibers) in
 * flight from one task, handed back in completion order. No fiber exists
 * per future; a future is a small record the delegation completes. */
#include "hive/bee.h"
#include "hive/deleg.h"
#include "hive/feed.h"
#include "hive/result.h"
#include "hive/task.h"
#include "hive/taskname.h"

#include <string.h>
#include <utlist.h>

/* What runs for a future until it is done. */
enum { F_NONE, F_DELEG, F_LOCAL };

/* A future per delegation in flight: kept to 56 bytes (a malloc chunk of
 * 64), what runs for it and its answer sharing one pointer. */
struct bh_future {
  bh_group *g;       /* owning group while unclaimed */
  bh_task *t;        /* the task that made it, which waits for it */
  void *udata;
  union {
    bh__deleg *d;    /* in F_DELEG: the delegation in flight */
    bh_task *local;  /* in F_LOCAL: the local task in flight */
    bh_result *res;  /* done: the answer (NULL once taken) */
  } u;
  bh_future *prev, *next; /* in g->pend or g->done */
  uint8_t in;        /* F_*: what u holds while not done */
  bool done;
  bool waited;       /* t is in bh_future_wait() on it */
};
_Static_assert(sizeof(struct bh_future) <= 56,
               "a future in flight stays in a malloc chunk of 64 bytes");

struct bh_group {
  bh_task *t;
  bh_deleg_opts opts;
  bh_future *pend, *done;
  size_t pending;    /* owned futures: pend + done */
  bool waiting;
};

bh_group *
bh_group_new(bh_task *t) {
  bh_group *g = t != NULL ? bh__calloc(1, sizeof(*g)) : NULL;

  if (g != NULL) {
    g->t = t;
    g->opts = (bh_deleg_opts){-1, -1};
  }
  return g;
}

/* Detaches f from whatever still runs for it. */
static void
abandon(bh_future *f) {
  if (f->done)
    return;
  if (f->in == F_DELEG)
    bh__deleg_forget(f->u.d);
  if (f->in == F_LOCAL) {
    f->u.local->fut = NULL;
    f->u.local->cancelled = true;
    bh__task_wake(f->u.local, BH_ECANCELLED);
  }
  f->in = F_NONE;
}

static void claim(bh_future *f);

/* A group's future may be freed before the group hands it out: it leaves
 * the group first (cancelled and forgotten, as bh_group_free() does), so
 * that bh_group_next() never returns it and bh_group_free() never sees it.
 * A group waiting in bh_group_next() for it alone then has nothing left. */
void
bh_future_free(bh_future *f) {
  bh_group *g;

  if (f == NULL)
    return;
  BH_ASSERT(!f->waited);
  g = f->g;
  claim(f);
  abandon(f);
  if (g != NULL && g->waiting && g->pending == 0)
    bh__task_wake(g->t, 0);
  if (f->done)
    bh_result_free(f->u.res);
  bh__free(f);
}

static void
drop_list(bh_future **head) {
  bh_future *f, *tmp;

  DL_FOREACH_SAFE(*head, f, tmp) {
    DL_DELETE(*head, f);
    f->g = NULL;
    bh_future_free(f);
  }
}

void
bh_group_free(bh_group *g) {
  if (g == NULL)
    return;
  BH_ASSERT(!g->waiting);
  drop_list(&g->pend);
  drop_list(&g->done);
  bh__free(g);
}

static bh_future *
future_new(bh_group *g, bh_task *t, void *udata) {
  bh_future *f = bh__calloc(1, sizeof(*f));

  if (f == NULL)
    return NULL;
  f->t = t;
  f->udata = udata;
  f->g = g;
  if (g != NULL) {
    DL_APPEND(g->pend, f);
    g->pending++;
  }
  return f;
}

/* Takes f out of its group: the caller owns it from now on. */
static void
claim(bh_future *f) {
  bh_group *g = f->g;

  if (g == NULL)
    return;
  if (f->done)
    DL_DELETE(g->done, f);
  else
    DL_DELETE(g->pend, f);
  g->pending--;
  f->g = NULL;
}

/* Records the delegation in flight for f (NULL: none any more). */
static void
future_set_deleg(bh_future *f, bh__deleg *d) {
  f->u.d = d;
  f->in = d != NULL ? F_DELEG : F_NONE;
}

/* Completes a future with an owned result. */
static void
future_complete(bh_future *f, bh_result *r) {
  f->u.res = r;
  f->done = true;
  f->in = F_NONE;
  if (f->waited) {
    bh__task_wake(f->t, 0);
    return;
  }
  if (f->g != NULL) {
    DL_DELETE(f->g->pend, f);
    DL_APPEND(f->g->done, f);
    if (f->g->waiting)
      bh__task_wake(f->g->t, 0);
  }
}

/* How the delegations reach the futures (deleg.h). */
static const bh__deleg_owner deleg_owner = {future_set_deleg,
                                            future_complete};

/* Returns owned: the call "[...]{...}" (either part optional) packs, or
 * NULL with *err set and, unless memory ran out, why in *why (owned). */
static bh__call *
call_of_fmt(const char *fmt, va_list ap, int *err, char **why) {
  const char *f = fmt != NULL && fmt[strspn(fmt, " ")] != '\0' ? fmt : "[]";
  bh__call *c = NULL;
  char buf[256];

  *err = bh__call_vpack(&c, f, ap);
  if (*err == BH_EINVAL) { /* packed, but not a call's shape */
    *err = BH_EFORMAT;
    *why = bh__asprintf("format \"%s\": the arguments are \"[...]\", "
                        "optionally followed by \"{...}\" for kwargs", fmt);
  } else if (*err != 0 && *err != BH_ENOMEM) {
    bh__pack_why(f, *err, buf, sizeof(buf));
    *why = bh__strdup(buf);
  }
  return c;
}

/* A delegation refused before anything was sent: returns code, with why
 * (owned; "fn: " goes before it unless fn is NULL) in a raised result
 * when there is one to give (out), else in the bee's log and the task's
 * errmsg, which a handler returning the code raises. Either way from the
 * caller's frame when the call macro recorded it. */
static int
refuse(bh_task *t, bh_result **out, const bh__site *site, int code,
       const char *type, const char *fn, char *why) {
  char *msg = bh__asprintf("%s%s%s", fn ? fn : "", fn ? ": " : "",
                           why ? why : bh_strerror(code));
  const char *text = msg ? msg : bh_strerror(code);
  bh_value *tb = t != NULL ? bh__task_frames(t, site) : NULL;

  if (out != NULL) {
    *out = bh__result_make(BH_RAISED, -1, type, text, NULL,
                           tb ? bh_value_object(tb) : NULL, NULL);
  } else if (t != NULL) {
    bh_log(t->bee->log, BH_LOG_ERROR, "%s", text);
    bh__task_call_error(t, code, type, bh__strdup(text), site);
  }
  bh_value_free(tb);
  bh__free(msg);
  bh__free(why);
  return code;
}

/* What is wrong with a task name, or NULL. An empty name would only fail
 * later, at the encoder, as an "EncodeError" that does not say why. */
static const char *
name_problem(const char *name) {
  if (name == NULL)
    return "the task name is NULL";
  return name[0] == '\0' ? "the task name is empty" : NULL;
}

/* Refuses a bad name: BH_EINVAL for none, BH_ENOTASK for one the workers'
 * class does not have, which a queen knows (any other bee's children,
 * such as the root's queen or a worker started by hand, answer for
 * themselves); 0 for a name to delegate. */
static int
check_name(bh_task *t, bh_result **out, const bh__site *site,
           const char *fn, const char *name) {
  const bh_class *wc = t->bee->worker_class;

  if (name_problem(name) != NULL)
    return refuse(t, out, site, BH_EINVAL, "ValueError", fn,
                  bh__strdup(name_problem(name)));
  if (wc == NULL || bh__class_has_task(wc, t->bee->builtins, name))
    return 0;
  /* The worker's own words: the same message wherever it is caught. */
  return refuse(t, out, site, BH_ENOTASK, "AttributeError", NULL,
                bh__class_no_task(wc, t->bee->builtins, name));
}

/* Starts a delegation of `call` (taken, whatever happens) for task t, in
 * group g or alone. The arguments are packed once, here or by the caller,
 * and travel as they are. */
static int
start_call(bh_group *g, bh_task *t, bh_future **out, void *udata,
           const char *name, bh__call *call, const bh_deleg_opts *o) {
  bh_future *f = future_new(g, t, udata);
  int rc;

  if (f == NULL) {
    bh__call_free(call);
    return BH_ENOMEM;
  }
  rc = bh__deleg_start(t->bee, f, &deleg_owner, name, call, o);
  if (rc != 0) {
    claim(f);
    bh_future_free(f);
    return rc;
  }
  if (out != NULL)
    *out = f;
  return 0;
}

int
bh_group_delegate_value(bh_group *g, bh_future **out, void *udata,
                        const char *name, const msgpack_object *args,
                        const msgpack_object *kwargs) {
  bh__call *call;
  int rc;

  if (g == NULL)
    return BH_EINVAL;
  if ((rc = check_name(g->t, NULL, NULL, "bh_group_delegate_value",
                       name)) != 0)
    return rc;
  call = bh__call_of(args, kwargs);
  if (call == NULL)
    return BH_ENOMEM;
  return start_call(g, g->t, out, udata, name, call, &g->opts);
}

/* The name in parentheses: beehive.h's call macro stays out. */
int
(bh_group_delegate)(bh_group *g, bh_future **out, void *udata,
                    const char *name, const char *fmt, ...) {
  bh__site site = {NULL, NULL, NULL, 0};
  char *why = NULL;
  bh__call *call;
  va_list ap;
  int rc = 0;

  bh__site_take("bh_group_delegate", &site);
  if (g == NULL)
    return BH_EINVAL;
  if ((rc = check_name(g->t, NULL, &site, "bh_group_delegate", name)) != 0)
    return rc;
  va_start(ap, fmt);
  call = call_of_fmt(fmt, ap, &rc, &why);
  va_end(ap);
  if (call == NULL && rc != BH_ENOMEM)
    return refuse(g->t, NULL, &site, rc, "ValueError", "bh_group_delegate",
                  why);
  if (call == NULL)
    return rc;
  return start_call(g, g->t, out, udata, name, call, &g->opts);
}

int
bh_group_go(bh_group *g, bh_future **out, void *udata, bh_local_fn fn,
            void *arg) {
  bh_task *t;
  bh_future *f;

  if (g == NULL || fn == NULL)
    return BH_EINVAL;
  t = bh__task_local_new(g->t->bee, "local", fn, arg);
  f = t ? future_new(g, g->t, udata) : NULL;
  if (f == NULL) {
    if (t != NULL)
      bh__task_free(t);
    return BH_ENOMEM;
  }
  t->fut = f;
  t->complete = future_complete;
  f->u.local = t;
  f->in = F_LOCAL;
  if (out != NULL)
    *out = f;
  bh__task_start(t);
  return 0;
}

int
bh_group_next(bh_group *g, bh_future **out, int64_t deadline) {
  int rc;

  if (g == NULL || out == NULL)
    return BH_EINVAL;
  *out = NULL;
  while (g->done == NULL) {
    if (g->pending == 0)
      return BH_EDONE;
    g->waiting = true;
    rc = bh__task_wait(g->t, deadline);
    g->waiting = false;
    if (rc != 0 && g->done == NULL)
      return rc;
  }
  *out = g->done;
  claim(*out);
  bh__feed_taken(g->t->bee);
  return 0;
}

void
bh_group_set_opts(bh_group *g, const bh_deleg_opts *o) {
  if (g != NULL)
    g->opts = o != NULL ? *o : (bh_deleg_opts){-1, -1};
}

int
bh_future_cancel(bh_future *f) {
  if (f == NULL)
    return BH_EINVAL;
  if (f->done)
    return BH_EDONE;
  if (f->in == F_DELEG)
    bh__deleg_cancel(f->u.d);
  else if (f->in == F_LOCAL) {
    f->u.local->cancelled = true;
    bh__task_wake(f->u.local, BH_ECANCELLED);
  }
  return 0;
}

size_t
bh_group_pending(const bh_group *g) {
  return g != NULL ? g->pending : 0;
}

int
bh_future_wait(bh_future *f, int64_t deadline) {
  int rc;

  if (f == NULL)
    return BH_EINVAL;
  claim(f);
  if (f->done) {
    bh__feed_taken(f->t->bee);
    return 0;
  }
  f->waited = true;
  rc = bh__task_wait(f->t, deadline);
  f->waited = false;
  return f->done ? 0 : rc;
}

int
bh_future_done(const bh_future *f) {
  return f != NULL && f->done;
}

const bh_result *
bh_future_result(const bh_future *f) {
  return f != NULL && f->done ? f->u.res : NULL;
}

void *
bh_future_udata(const bh_future *f) {
  return f != NULL ? f->udata : NULL;
}

static int
status_rc(const bh_result *r) {
  switch (bh_result_status(r)) {
  case BH_SUCCEEDED:
    return 0;
  case BH_CANCELLED:
    return BH_ECANCELLED;
  default:
    return BH_ERAISED;
  }
}

/* Delegates `call` (taken) and waits for its answer. */
static int
run_single(bh_task *t, bh_result **out, const char *name, bh__call *call) {
  bh_future *f;
  int rc = start_call(NULL, t, &f, NULL, name, call, NULL);

  if (rc != 0)
    return rc;
  rc = bh_future_wait(f, -1);
  if (rc == 0) {
    *out = f->u.res;
    f->u.res = NULL;
    rc = status_rc(*out);
  }
  bh_future_free(f);
  return rc;
}

/* The checks of bh_delegate*(): 0, or an error with *out saying why. */
static int
delegate_misuse(bh_task *t, bh_result **out, const bh__site *site,
                const char *fn, const char *name) {
  if (t == NULL)
    return refuse(NULL, out, site, BH_EINVAL, "ValueError", fn,
                  bh__strdup("the task is NULL"));
  return check_name(t, out, site, fn, name);
}

int
bh_delegate_value(bh_task *t, bh_result **out, const char *name,
                  const msgpack_object *args, const msgpack_object *kwargs) {
  bh__call *call;
  int rc;

  if (out == NULL)
    return BH_EINVAL;
  *out = NULL;
  if ((rc = delegate_misuse(t, out, NULL, "bh_delegate_value", name)) != 0)
    return rc;
  call = bh__call_of(args, kwargs);
  return call ? run_single(t, out, name, call) : BH_ENOMEM;
}

/* The name in parentheses: beehive.h's call macro stays out. */
int
(bh_delegate)(bh_task *t, bh_result **out, const char *name, const char *fmt,
              ...) {
  bh__site site = {NULL, NULL, NULL, 0};
  char *why = NULL;
  bh__call *call;
  va_list ap;
  int rc = 0;

  bh__site_take("bh_delegate", &site);
  if (out == NULL)
    return BH_EINVAL;
  *out = NULL;
  if ((rc = delegate_misuse(t, out, &site, "bh_delegate", name)) != 0)
    return rc;
  va_start(ap, fmt);
  call = call_of_fmt(fmt, ap, &rc, &why);
  va_end(ap);
  if (call == NULL && rc != BH_ENOMEM)
    return refuse(t, out, &site, rc, "ValueError", "bh_delegate", why);
  return call ? run_single(t, out, name, call) : rc;
}
