/* bee.h - what a bee is made of: its side toward the parent (parent.c:
 * the tasks it accepted and runs), its children (child.h, owned by
 * child.c), its delegations to them (deleg.c), its population manager
 * when it is a queen (pop.h), and what it counts (stats.c). Only the
 * record: each part's calls are in its module's header, and make.c puts
 * a bee together and takes it apart.
 *
 * One bee is one object on one libuv loop; a process holds one bee, except
 * the caller of bh_run(), which holds the root bee and the queen. */
#ifndef BH_BEE_H
#define BH_BEE_H

#include <uv.h>

#include "base/base.h"
#include "hive/child.h"
#include "hive/wcfg.h"
#include "runtime/timer.h"
#include "transport/chan.h"

typedef struct bh__deleg bh__deleg;
typedef struct bh__pop bh__pop;
typedef struct bh__door bh__door;
struct bh__grave;
struct bh__deleg_owner;
struct bh__spawn;

/* How a worker started by fork runs in its new process (worker.h): the
 * queen's maker says, so that starting a process (spawn.c) sits below
 * running a bee in it. Returns the process's exit status. */
typedef int (*bh__worker_fn)(const struct bh__spawn *s, int fd,
                             const msgpack_object *args,
                             const msgpack_object *kwargs);

struct bh_bee {
  uv_loop_t *loop;
  bh__timers *timers;    /* its tasks' deadlines; opened on first use */
  const bh_class *cls;
  const bh_task_def *builtins; /* every bee's tasks beyond its class's */
  int64_t id;
  void *state;
  bh_logger *log;
  int max_conc;          /* -1: no limit */
  int prefetch;          /* accepted beyond max_conc, queued (cap.h) */
  bool direct_offers;    /* offer with the info, to one child at a time */
  size_t offer_next;     /* where the next offer's search starts */
  uint32_t feed_count;   /* feed.c: delegations in this run without a
                          * wait, */
  uint64_t feed_resumes; /* the scheduler's count when it began, */
  uint64_t fed_ns;       /* and when it began or last read the children */
  bh_context ctx;
  bool own_s3;           /* ctx.s3_client is the bee's own, made from
                          * ctx.s3_profile (not the caller's) */
  size_t max_frame;
  int64_t pickup_ms;
  /* Toward the parent (parent.c; the run queue is task.c's). */
  bh__chan *parent;      /* NULL for the root bee */
  bh_task *tasks;        /* by parent's task id */
  size_t n_reserved;     /* accepted and not finished */
  size_t n_running;
  bh_task *rq_head, *rq_tail; /* info received, waiting for a slot */
  bool terminating;
  bool dying;            /* children told to die; waiting for them */
  bool dead;             /* the dead message is out */
  char *exit_code;       /* last word */
  /* Toward the children (child.h), and the delegations to them
   * (deleg.c). */
  bh__kids kids;
  int64_t next_kid;      /* the id of the next child: never reused */
  int64_t next_tid;
  struct {               /* the delegations by task id (deleg.c) */
    bh__deleg **b;       /* buckets: ids count up, so tid & mask spreads */
    size_t mask;         /* buckets - 1 (b NULL: none yet) */
    size_t n;
  } delegs;
  const struct bh__deleg_owner *deleg_owner; /* their futures' (group.c) */
  bh__deleg *backlog_head, *backlog_tail; /* not offered yet, FIFO */
  size_t n_backlog;
  bh__deleg *unpicked_head, *unpicked_tail; /* offered, not taken, FIFO */
  uv_timer_t pickup_timer;
  /* Queens: how to make workers (queen.c). */
  const bh_class *worker_class;
  bh_value *w_args, *w_kwargs;
  bh__wcfg w_cfg;        /* every worker's settings */
  bh_start w_start;
  bh__worker_fn w_run;   /* how a forked worker runs */
  /* The end of life (life.c): called once after the dead message is
   * queued. */
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
  bh__pop *pop;          /* queens: the population manager (pop.h) */
  bh__door *door;        /* queens: where remote workers join (door.h) */
  bool door_open;        /* ...and may still join */
  bool awaiting_joins;   /* her task waits for remote_workers (run.c): a
                          * loss until then only means waiting on */
  /* Stats and the timeline (stats.c). */
  bh_stats st;           /* counters; children filled in by bh_bee_stats */
  bh_child_stats *kid_stats; /* what bh_bee_stats lent, causes after it */
  struct bh__grave *graves; /* the last BH__GRAVES dead children, a ring */
  size_t n_graves, grave_next;
  bh_trace *trace;       /* borrowed; NULL: not recording */
  /* Progress (bh_progress_total/add), and the clock of bh_stats.elapsed_s. */
  uint64_t born_ns;      /* uv_hrtime() at the bee's making */
  uint64_t prog_done, prog_total;
  bool prog_own;         /* done counts bh_progress_add()'s units */
};

#endif
