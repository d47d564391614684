/* child.h - a bee's children (child.c): each one's channel and process,
 * and the set of them a bee holds. The children side knows nothing of
 * bees: it reports up through the one callback its owner gives
 * (bh__kids_init), and the owner decides what a message, a birth or a
 * death means for its delegations, its population and its stats. */
#ifndef BH_CHILD_H
#define BH_CHILD_H

#include <sys/types.h>
#include <uv.h>

#include "base/base.h"
#include "transport/chan.h"
#include "wire/wire.h"

typedef struct bh__child bh__child;
typedef struct bh__kids bh__kids;

/* What the children side tells its owner. */
typedef enum bh__kid_event {
  BH__KID_BORN,  /* c was adopted (its channel may have failed already:
                  * then its death follows at once) */
  BH__KID_MSG,   /* c sent m: task_accepted, task_denied or task_done */
  BH__KID_GONE,  /* c is mourned: its record is whole until the call
                  * returns, then freed */
  BH__KID_BURIED /* a child's record was freed (c is NULL) */
} bh__kid_event;

/* The one way up from child.c; m is NULL but for BH__KID_MSG. */
typedef void (*bh__kid_report)(bh__kids *k, bh__child *c, bh__kid_event ev,
                               const bh__msg *m);

/* A living child. Its record is freed when it is mourned (child.c):
 * delegations name children by id (bh__child_find), never by pointer, and
 * what bh_bee_stats shows of the dead is kept apart, bounded (stats.h). */
struct bh__child {
  bh__kids *kids;        /* the set it is in */
  int64_t id;            /* the bee's count of children so far: never reused */
  bh__chan *chan;        /* NULL once closed */
  pid_t pid;             /* 0 for the in-process queen and the remote */
  char *host;            /* a remote worker's address (its TCP peer,
                          * "10.1.2.2:40312"), NULL for a local child */
  struct bh__proc *proc; /* its process's watch (procwatch.h), or NULL */
  int max_conc;          /* its max_concurrency; -1 no limit */
  int prefetch;          /* ...and what it accepts beyond, queued (cap.h) */
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

/* A bee's children: the living by ascending id, and how to watch them. */
struct bh__kids {
  uv_loop_t *loop;
  size_t max_frame;      /* of their channels */
  bh_logger *log;
  int64_t owner_id;      /* the bee's id, for the log */
  bh__child **all;       /* the living, by ascending id */
  size_t n, cap, n_alive;
  struct bh__procs *procs; /* the watches of its children's processes */
  bh__kid_report report;
  void *owner;           /* the owner's, for report */
};

void bh__kids_init(bh__kids *k, uv_loop_t *loop, size_t max_frame,
                   bh_logger *log, int64_t owner_id, bh__kid_report report,
                   void *owner);
/* Adopts a child connected on fd (pid 0: in-process) that takes max_conc
 * tasks at once (-1: no limit) and prefetch more, taking ownership of fd
 * and of its last-words page (lastword.h; NULL: none) whatever happens.
 * Its id is *next_id (the owner's count of children, which it advances
 * once the record exists). Returns 0 or error. */
int bh__kids_add(bh__kids *k, int64_t *next_id, int fd, pid_t pid,
                 int max_conc, int prefetch, char *last_words,
                 bh__child **out);
/* Adopts a worker on another host, joined over t (an authenticated TCP
 * transport, tcp.h, owned whatever happens) from host. It has no process
 * here: the end of its link is its death. `first` (NULL: none) queues
 * the first frame on its channel, before the owner hears of its birth
 * (the bootstrap, door.c). Returns 0 or an error. */
int bh__kids_add_remote(bh__kids *k, int64_t *next_id, bh__transport *t,
                        const char *host, int max_conc, int prefetch,
                        int (*first)(bh__child *c, void *arg), void *arg,
                        bh__child **out);
void bh__child_die(bh__child *c);   /* sends die */
void bh__child_kill(bh__child *c, const char *cause); /* protocol error... */
/* Kills every living child process (not an in-process one; a remote one
 * loses its link) with cause. */
void bh__children_kill(bh__kids *k, const char *cause);
/* Frees every record; a process still running is killed and reaped. */
void bh__children_free(bh__kids *k);
/* The living child of that id, or NULL (dead, or never was). */
bh__child *bh__child_find(const bh__kids *k, int64_t id);
/* True when the child ended by a normal dead message, not by a crash, a
 * kill or a dead message of type killed. */
bool bh__child_normal_end(const bh__child *c);

#endif
