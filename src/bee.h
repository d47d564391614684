/* bee.h - the bee: its tasks from the parent (bee.c), its delegations to
 * children (deleg.c), its children's processes (spawn.c, queen.c), and the
 * task and future objects that live on its fibers (task.c, group.c).
 *
 * One bee is one object on one libuv loop; a process holds one bee, except
 * the caller of bh_run(), which holds the root bee and the queen. */
#ifndef BH_BEE_H
#define BH_BEE_H

#include <uthash.h>
#include <uv.h>

#include "chan.h"
#include "fiber.h"
#include "http.h"
#include "timer.h"
#include "wcfg.h"
#include "internal.h"

typedef struct bh__deleg bh__deleg;
typedef struct bh__child bh__child;
typedef struct bh__pop bh__pop;

/* What stays of a dead child once its record is freed: its last numbers,
 * which bh_bee_stats lists for the last BH__GRAVES dead children (stats.c).
 * Older ones count only in the bee's totals, so that a queen recycling
 * workers for days keeps a flat memory. */
#define BH__GRAVES 32
typedef struct bh__grave {
  bh_child_stats st;     /* st.cause unset: see cause */
  char *cause;           /* why it ended, or NULL */
  int wstatus;           /* its reaped status (pid != 0) */
} bh__grave;

/* Where a task from the parent is in its life. */
typedef enum task_state {
  TASK_ACCEPTED, /* said task_accepted, awaiting task_info or task_taken */
  TASK_QUEUED,   /* has its info, waits for a free slot */
  TASK_RUNNING,  /* its fiber exists */
  TASK_LOCAL     /* local work started with bh_group_go() */
} task_state;

struct bh_task {
  bh_bee *bee;
  int64_t id;            /* the parent's task id */
  task_state state;
  bh_value *info;        /* the task_info message; args/kwargs point in */
  const char *name;      /* NUL-terminated copy owned by the task */
  const msgpack_object *args, *kwargs;
  bh__fiber *fiber;
  /* Outcome. */
  bh__buf ret;           /* packed return value; empty means nil */
  const msgpack_object *ret_arg; /* or: part of its own args/kwargs */
  bh__blobs ret_blobs;   /* blobs that ret names by LOCAL exts */
  char *errtype, *errmsg, *reason;
  int io_err;            /* the last failed I/O call's code (0: none) */
  const char *io_type;   /* ...its exception type (static) */
  char *io_msg;          /* ...and message (bh_task_errmsg) */
  bh__site io_site;      /* ...and the caller's site, if recorded */
  bh_value *tb;          /* traceback lines: array of str */
  bh_value *details;     /* other_details */
  /* Waiting. */
  bh__tentry deadline;   /* of its current wait (timer.h) */
  bool waiting;
  bool cancelled;
  /* Local work: the future it completes, and what it runs. */
  bh_future *fut;
  bh_local_fn local_fn;
  void *local_arg;
  bh_task *parent_task;
  UT_hash_handle hh;     /* bee->tasks, by id */
  bh_task *qnext;        /* bee's run queue */
};

/* A living child. Its record is freed when it is mourned (child.c):
 * delegations name children by id (bh__child_find), never by pointer, and
 * what bh_bee_stats shows of the dead is kept apart, bounded (bh__grave). */
struct bh__child {
  bh_bee *bee;
  int64_t id;            /* the bee's count of children so far: never reused */
  bh__chan *chan;        /* NULL once closed */
  pid_t pid;             /* 0 for the in-process queen */
  int pidfd;
  uv_poll_t *pidpoll;
  int capacity;          /* its max_concurrency; -1 no limit */
  size_t inflight;       /* offers unanswered + tasks started on it */
  bool alive;            /* until mourned */
  bool told_die;
  bool got_dead;         /* sent its dead message */
  bool killed;           /* ...of death_type killed */
  bool chan_first;       /* its channel ended while its process lived on,
                          * and the bee killed it for that */
  bool exited;           /* its process was reaped */
  int wstatus;           /* the reaped status */
  char *cause;           /* why it ended, when abnormal */
  bh_value *dead_msg;    /* the dead message it sent, if any */
  uint64_t done, raised, cancelled, lost; /* its answers, for stats */
  struct bh__oom *oom;   /* evidence of an OOM kill (oom.h); NULL none */
  char *last_words;      /* the page it writes why it died on (lastword.h),
                          * or NULL */
};

struct bh_bee {
  uv_loop_t *loop;
  bh__timers *timers;    /* its tasks' deadlines; opened on first use */
  const bh_class *cls;
  int64_t id;
  void *state;
  bh_logger *log;
  int max_conc;          /* -1: no limit */
  int prefetch;          /* accepted beyond max_conc, queued */
  bool direct_offers;    /* offer with the info when one child has room */
  bh_context ctx;
  bool own_s3;           /* ctx.s3_client is the bee's own, made from
                          * ctx.s3_profile (not the caller's) */
  size_t max_frame;
  int64_t pickup_ms;
  /* Toward the parent. */
  bh__chan *parent;      /* NULL for the root bee */
  bh_task *tasks;        /* by parent's task id */
  size_t n_reserved;     /* accepted and not finished */
  size_t n_running;
  bh_task *rq_head, *rq_tail; /* info received, waiting for a slot */
  bool terminating;
  bool dying;            /* children told to die; waiting for them */
  bool dead;             /* the dead message is out */
  char *exit_code;       /* last word */
  /* Toward the children. */
  bh__child **kids;      /* the living, by ascending id */
  size_t n_kids, cap_kids, n_alive;
  int64_t next_kid;      /* the id of the next child */
  int64_t next_tid;
  uv_signal_t *sigchld;  /* only where pidfds are missing */
  bh__deleg *delegs;     /* by task id */
  bh__deleg *backlog_head, *backlog_tail; /* not offered yet, FIFO */
  bh__deleg *unpicked_head, *unpicked_tail; /* offered, not taken, FIFO */
  uv_timer_t pickup_timer;
  /* Queens: how to make workers. */
  const bh_class *worker_class;
  bh_value *w_args, *w_kwargs;
  bh__wcfg w_cfg;        /* every worker's settings */
  bh_start w_start;
  /* The end of life: called once after the dead message is queued. */
  void (*on_dead)(bh_bee *bee);
  void (*on_orphan)(bh_bee *bee); /* the parent channel failed */
  void *owner;           /* for on_dead */
  size_t n_local;        /* local fibers (bh_group_go) still running */
  /* Fault tolerance: the defaults of this bee's delegations. */
  struct {
    int retries;         /* re-offers of a task lost with its worker */
    int poison_kills;    /* workers a task may kill before it is refused */
    int64_t timeout_ms;  /* deadline of each delegation; 0: none */
    int64_t grace_ms;    /* after cancel_task, before the kill */
    int64_t shutdown_ms; /* after die, before the kill */
  } ft;
  uv_timer_t *shutdown_timer; /* runs while children are told to die */
  char *pop_failed;      /* the queen gave up: why (new work fails) */
  bh__pop *pop;          /* queens: the population manager */
  /* Stats and the timeline. */
  bh_stats st;           /* counters; children filled in by bh_bee_stats */
  bh_child_stats *kid_stats; /* what bh_bee_stats lent, causes after it */
  bh__grave *graves;     /* the last BH__GRAVES dead children, a ring */
  size_t n_graves, grave_next;
  size_t n_backlog;
  bh_trace *trace;       /* borrowed; NULL: not recording */
  /* Progress (bh_progress_total/add), and the clock of bh_stats.elapsed_s. */
  uint64_t born_ns;      /* uv_hrtime() at the bee's making */
  uint64_t prog_done, prog_total;
  bool prog_own;         /* done counts bh_progress_add()'s units */
};

/* bee.c */
typedef struct bh__bee_opts {
  const bh_class *cls;
  int64_t id;
  int max_conc;
  int prefetch;
  bh_logger *log;
  const bh_context *ctx;
  size_t max_frame;
  int64_t pickup_ms;
  bh__http_opts http;    /* the limits of its HTTP session */
  void (*on_dead)(bh_bee *bee);
  void (*on_orphan)(bh_bee *bee);
  void *owner;
} bh__bee_opts;
/* Makes a bee on `loop` with parent channel fd (-1: root; the bee owns
 * it even on failure). Returns 0 or an error. */
int bh__bee_new(bh_bee **out, uv_loop_t *loop, int parent_fd,
                const bh__bee_opts *o);
/* Runs the class's init (state, context, init hook). Returns 0, or an
 * error with *err_text owned (may be NULL). */
int bh__bee_init(bh_bee *bee, const msgpack_object *args,
                 const msgpack_object *kwargs, char **err_text);
/* Ends the bee's life at once with a dead message of type killed. */
void bh__bee_die_killed(bh_bee *bee, const char *type, const char *msg);
void bh__bee_free(bh_bee *bee);
/* Starts dying: stop accepting, let the work finish, children die first,
 * then send dead with exit_code. */
void bh__bee_terminate(bh_bee *bee, const char *exit_code);
/* Checks whether the end of life can proceed; called after every event
 * that may have finished the work. */
void bh__bee_progress(bh_bee *bee);
/* Cancels one task, or every task the bee holds, with reason. */
void bh__bee_cancel_task(bh_bee *bee, bh_task *t, const char *reason);
void bh__bee_cancel_all(bh_bee *bee, const char *reason);
/* A running task sent its task_done: free its slot, start the next. */
void bh__bee_task_finished(bh_bee *bee, bh_task *t);
/* Looks up a task function by name through the class chain. */
bh_task_fn bh__bee_find_task(const bh_bee *bee, const char *name);
/* Every worker's tasks beyond its class's (busy_status). */
extern const bh_task_def bh__builtin_tasks[];

/* taskname.c */
/* The task `name` of cls: through its base chain, then the built-ins. */
bh_task_fn bh__class_find_task(const bh_class *cls, const char *name);
/* True when the queen may delegate `name` to workers of cls: a task of
 * its class chain or a built-in; for an external class (bh_class.program),
 * a name its tasks list, busy_status, or any name when it lists none. */
bool bh__class_has_task(const bh_class *cls, const char *name);
/* True when the tasks of cls or its bases name `name`, whatever their
 * fn. */
bool bh__class_lists_task(const bh_class *cls, const char *name);
/* Returns owned (NULL: no memory): "Bee class 'W' has no task 'ecko'.",
 * followed by "Did you mean 'echo'?" when a task of the class is near. */
char *bh__class_no_task(const bh_class *cls, const char *name);

/* task.c */
/* A task finished: sends task_done and frees it. */
void bh__task_start(bh_task *t);
/* Returns owned: a local task of bee running fn(t, arg), not started. */
bh_task *bh__task_local_new(bh_bee *bee, const char *name, bh_local_fn fn,
                            void *arg);
void bh__task_free(bh_task *t);
/* Answers a queued task cancelled without running it, and frees it. */
void bh__task_cancel_queued(bh_task *t);
/* Suspends t until woken (the status it was woken with) or until the
 * deadline: BH_ETIMEDOUT. deadline: ms on bh_now()'s clock, or -1: none. */
int bh__task_wait(bh_task *t, int64_t deadline);
/* The same with the deadline in ns on uv_hrtime()'s clock. */
int bh__task_wait_ns(bh_task *t, int64_t due);
/* base (ns) plus ms milliseconds, at most INT64_MAX; base when ms <= 0. */
int64_t bh__ns_after(int64_t base, int64_t ms);
void bh__task_wake(bh_task *t, int status);
/* Appends a traceback line; adds the "in task ... of bee ..." line. */
int bh__task_tb_add(bh_task *t, const char *line);
void bh__task_tb_where(bh_task *t);
/* Appends the frame line "  File "f", line n, in fn" (the library's own
 * files relative to its source tree). */
int bh__task_tb_file(bh_task *t, const char *file, int line,
                     const char *func);
/* Returns owned: a traceback of t's frame at site (when recorded) and
 * its "in task" line, for a result made in t without raising. */
bh_value *bh__task_frames(const bh_task *t, const bh__site *site);
/* Records the outcome of an I/O call: err 0 clears; otherwise type
 * (static) and msg (owned; NULL: the code's text) become what
 * bh_task_errmsg() says and what returning err raises. Returns err. */
int bh__task_io_result(bh_task *t, int err, const char *type, char *msg);
/* The same for a failed call that the header's macros recorded at site
 * (NULL: none), whose frame then leads the traceback of what returning
 * err raises (bh_return's format, bh_group_delegate's refusal). */
int bh__task_call_error(bh_task *t, int err, const char *type, char *msg,
                        const bh__site *site);
/* http_api.c: starts a transfer on t's bee session and waits for it.
 * Returns 0 with *x done (its result may hold a transfer error), or an
 * error recorded on t (exception type `type`) with *x NULL. */
int bh__http_run(bh_task *t, const bh__xfer_req *rq, const char *type,
                 bh__xfer **x);
/* Moves the response of done transfer x into a new *out. 0 or
 * BH_ENOMEM. */
int bh__http_resp_take(bh__xfer *x, bh_http_resp **out);
/* Sets the exception; takes ownership of msg. */
void bh__task_set_error(bh_task *t, const char *type, char *msg);
/* The handler returned rc, a failure other than a cancellation: unless it
 * raised, t gets the exception of its failed I/O call (rc is that call's
 * code) or one naming rc. */
void bh__task_error_of_rc(bh_task *t, int rc);
/* The handler of task `name` through t's class chain, or NULL with t
 * raising AttributeError ("Bee class 'W' has no task 'x'."). */
bh_task_fn bh__task_handler(bh_task *t, const char *name);
/* map_chunk.c: the built-in task that runs a map's chunk (map.c). */
int bh__map_chunk_task(bh_task *t);
#define BH__MAP_CHUNK_TASK "__map_chunk__"

/* deleg.c */
/* Starts a delegation whose result completes `fut`, with options o (NULL:
 * the bee's defaults). Takes `call`, an array [args] or [args, kwargs],
 * whatever happens. */
int bh__deleg_start(bh_bee *bee, bh_future *fut, const char *name,
                    bh_value *call, const bh_deleg_opts *o);
/* The future's owner went away: drop the answer when it comes. */
void bh__deleg_forget(bh__deleg *d);
/* Answers d cancelled now, and cancels it on its child. */
void bh__deleg_cancel(bh__deleg *d);
/* deleg.c, for deleg_answer.c: a child's accept or deny of an offer
 * (false if it fits no open offer), and its open offers on its death. */
bool bh__d_on_offer_answer(bh__child *c, bh__deleg *d, const bh__msg *m);
void bh__d_close_offers(bh__child *c, bh__deleg *d);
/* A child's message about a delegation. */
void bh__deleg_on_msg(bh__child *c, const bh__msg *m);
/* A child is gone: fail or re-home its delegations. */
void bh__deleg_on_death(bh__child *c);
void bh__deleg_init(bh_bee *bee);
void bh__deleg_close(bh_bee *bee);

/* child.c */
/* Adopts a child connected on fd (pid 0: in-process), taking ownership of
 * fd and of its last-words page (lastword.h; NULL: none) whatever
 * happens. Returns 0 or error. */
int bh__child_add(bh_bee *bee, int fd, pid_t pid, int capacity,
                  char *last_words, bh__child **out);
void bh__child_die(bh__child *c);   /* sends die */
void bh__child_kill(bh__child *c, const char *cause); /* protocol error... */
/* Kills every living child process (not an in-process one) with cause. */
void bh__children_kill(bh_bee *bee, const char *cause);
void bh__children_free(bh_bee *bee);
/* The living child of that id, or NULL (dead, or never was). */
bh__child *bh__child_find(const bh_bee *bee, int64_t id);
/* True when the child ended by a normal dead message, not by a crash, a
 * kill or a dead message of type killed. */
bool bh__child_normal_end(const bh__child *c);

/* group.c */
/* Completes a future with an owned result. */
void bh__future_complete(bh_future *f, bh_result *r);
/* Records the delegation in flight for f (NULL: none any more). */
void bh__future_set_deleg(bh_future *f, bh__deleg *d);

/* result.c */
/* Builds a result from a task_done-like map (takes ownership of v). */
bh_result *bh__result_new(bh_value *v, int64_t child_id);
/* Builds a raised result {status, exception {type, message}, traceback,
 * other_details} or a cancelled one {status, reason}. */
bh_result *bh__result_make(bh_status st, int64_t child_id, const char *type,
                           const char *message, const char *reason,
                           const msgpack_object *traceback,
                           const msgpack_object *details);

/* A raised result wrapping what child child_id said, as the original
 * wraps a delegated task's failure: exception {type, msg}, a traceback of
 * tb_line, other_details {child_id, key: obj} (key "cause" or
 * "reason"). */
bh_result *bh__result_wrap(int64_t child_id, const char *tb_line,
                           const char *type, const char *msg,
                           const char *key, const msgpack_object *obj);
/* Records the signal that cancelled bh_run (bh_result_signal). */
void bh__result_set_signal(bh_result *r, int signum);
bh_result *bh__result_from_done(const bh__wire_done *d, int64_t child_id);

/* stats.c */
/* Names the lane of child c in the bee's trace, if it records. */
void bh__stats_child_lane(bh_bee *bee, const bh__child *c);
/* Child c was mourned: keeps its last numbers (and takes its cause). */
void bh__stats_bury(bh_bee *bee, bh__child *c);
/* What stays of dead child `id`, or NULL (alive, or buried too long ago). */
const bh__grave *bh__stats_grave(const bh_bee *bee, int64_t id);
void bh__stats_free(bh_bee *bee);

/* queen.c */
/* Makes bee a queen of workers of class wc and spawns n of them (0: 1).
 * A worker that could not be started may leave why (owned) in *why, when
 * why is not NULL (bh__spawn_worker). */
struct bh__pop_opts;
int bh__queen_setup(bh_bee *bee, const bh_class *wc, const bh_value *args,
                    const bh_value *kwargs, int n, const bh__wcfg *cfg,
                    bh_start start, const struct bh__pop_opts *po,
                    char **why);
int bh__queen_spawn(bh_bee *bee, int n, char **why);
/* A max_concurrency as the API takes it (0: 1024, < 0: no limit) as bees
 * keep it (-1: no limit). */
int bh__conc_norm(int n);
/* True when the bee may still get children (a queen under her limits). */
bool bh__queen_can_grow(const bh_bee *bee);
/* Delegations wait because every child is full: grow if allowed. */
void bh__queen_saturated(bh_bee *bee);
/* A child answered a task (for recycling). */
void bh__queen_task_done(bh__child *c);
/* A child was mourned (replacement, restart limit). */
void bh__queen_on_death(bh__child *c);

/* opts.c */
/* Checks every option against its range (include/beehive.h). Returns 0,
 * or BH_EINVAL with why (len bytes) saying "bh_run: <option> <value> is
 * out of range: it must be <range>" or what is missing. */
int bh__run_opts_check(const bh_run_opts *o, char *why, size_t len);
/* The same for o (not NULL); who prefixes the message. */
int bh__spawn_opts_check(const bh_spawn_opts *o, const char *who, char *why,
                         size_t len);

/* spawn.c */
/* What it takes to start one worker: its class and id, its init
 * arguments, its settings, the parent's logger and the start method. */
typedef struct bh__spawn {
  const bh_class *cls;
  int64_t id;
  const bh_value *init_args, *init_kwargs; /* array / map or NULL */
  const bh__wcfg *cfg;
  bh_logger *logger;
  bh_start start;
} bh__spawn;
/* Starts the worker (bh_subprocess_workerbee without the checks). With
 * last_words, *last_words receives its last-words page (lastword.h),
 * owned, or NULL if none could be made. On failure *why may receive what
 * happened (owned), e.g. an external program's exec failure (BH_ESPAWN),
 * else NULL. */
int bh__spawn_worker(const bh__spawn *s, pid_t *pid, int *channel,
                     char **last_words, char **why);
/* Runs a worker bee on fd in this process until its life ends; returns the
 * process exit status. */
int bh__worker_run(const bh__spawn *s, int fd, const msgpack_object *args,
                   const msgpack_object *kwargs);

#endif
