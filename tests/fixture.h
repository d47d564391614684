/* fixture.h - test fixtures shared by several tests: a byte pattern, a
 * count of open descriptors, two bh__chan ends in one loop over a
 * socketpair that record what they receive, and a hive run that reports
 * its failure. */
#ifndef BH_TEST_FIXTURE_H
#define BH_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "transport/chan.h"

/* The test pattern's byte at offset i; fill() writes it, holds_pattern()
 * checks it. */
unsigned char pattern(size_t i);
void fill(void *p, size_t n);
bool holds_pattern(const void *p, size_t n);
/* The descriptors open now. */
int open_fds(void);

/* What a channel received, message by message (the transport tests). */
#define MSGLOG_MAX 16
typedef struct msglog {
  int nmsg;
  bh__msg_type type[MSGLOG_MAX];
  int64_t id[MSGLOG_MAX];
  size_t bin_len[MSGLOG_MAX]; /* a task_done's bin value, its size */
  bool bin_ok[MSGLOG_MAX];    /* ...and whether its bytes are the pattern */
} msglog;
/* Records m (beyond MSGLOG_MAX messages, nothing). */
void msglog_add(msglog *l, const bh__msg *m);
/* Sends task_done for id with a bin of n pattern bytes as its value. */
int send_bin_result(bh__chan *c, int64_t id, size_t n);

/* One end: what it received. */
typedef struct end {
  bh__chan *c;
  int nmsg, nerr, err;
  char why[256];
  bh_value *kept;    /* the last message, kept as the library keeps one */
  const void *ptr;   /* its bin, as seen while dispatching */
  size_t len;
  bool in_blob;      /* that bin lay in a registered blob */
  bool body_kept;    /* the kept value took the frame's own buffer */
  int nbody_kept;    /* messages whose value took it, over all */
  ptrdiff_t body_at; /* where the bytes of the last value that took its
                      * frame's buffer start in that buffer */
  int nbins, nbins_ok; /* args' bins, and those that held the pattern in
                       * a blob */
  long bins_seen, bins_good; /* over all messages: args' bins, and those
                              * that held the pattern (blob or not) */
} end;

/* Records a message in the end (udata); end_err closes the channel. */
void end_msg(bh__chan *c, const bh__msg *m, void *udata);
void end_err(bh__chan *c, int err, const char *why, void *udata);
/* Runs the loop until *count reaches want: 0, or -1 if it never does. */
int run_until(uv_loop_t *loop, const int *count, int want);
/* The kept value's bin (args[0] or returning_value). */
const msgpack_object *kept_bin(const end *e);

/* Two channels in one loop: a, b. */
typedef struct pair {
  uv_loop_t loop;
  end a, b;
  int fds0;
  size_t live0;
} pair;

/* live0: bh__alloc_live() before the test made anything. */
int pair_open(pair *p, size_t live0);
/* Frees what the ends kept, closes both and the loop, and checks that no
 * descriptor, blob or allocation is left: 0, or 1 with a message. */
int pair_close(pair *p);

/* A queen task, "script", for fixture_script_queen: [[task, args]...]
 * (a step may hold kwargs too: [task, args, kwargs]): each step delegated
 * in turn; its value, or for a step that raised, [exception type,
 * message] of its innermost cause. Returns the list. */
int fixture_script(bh_task *t);
/* Step i of a script's result, or NULL. */
const msgpack_object *fixture_step(const bh_result *r, uint32_t i);

/* A queen task, "pass": delegates args[0] with args[1:] as its args and
 * returns the value, or raises the result's chain (bh_raise_result). */
int fixture_pass(bh_task *t);

/* Runs fn in a forked child with its stderr into msg (len bytes, always
 * NUL-terminated): true if the child aborted (SIGABRT). */
bool fixture_aborts(void (*fn)(void), char *msg, size_t len);

/* A logger's lines kept as text (a bh_log_fn: udata a loglines). */
typedef struct loglines {
  char text[4096];
  size_t len;
} loglines;
void loglines_keep(void *udata, bh_log_level level, int indent,
                   const char *line);

/* bh_run(o, r); on failure also prints the formatted result. */
int run_hive(const bh_run_opts *o, bh_result **r);

#endif
