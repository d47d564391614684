/* proto_fixture.h - the scripted fake peers of the protocol tests
 * (test_protocol.c: the delegating side; test_protocol_child.c: the child
 * side), and the hive they talk to.
 *
 * A fake is a plain blocking program in a forked process: it reads frames,
 * checks each one against its script, answers with bh__wire_put_*, and
 * reports through its exit status (0: everything it saw was right; it says
 * what was wrong on stderr otherwise). Fakes are forked before any libuv
 * object exists in this process. Where an order between two peers matters,
 * they wait on a pipe for each other, never on time. */
#ifndef BH_TEST_PROTO_FIXTURE_H
#define BH_TEST_PROTO_FIXTURE_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hive/life.h"
#include "hive/make.h"
#include "hive/stats.h"
#include "hive/task.h"
#include "runner.h"
#include "runtime/turn.h"

static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

typedef struct peer {
  int fd;
  bh__buf in;  /* bytes read and not yet taken as a frame */
  bh__buf cur; /* the body of the current message; p->m points in */
  msgpack_zone zone;
  bh__msg m;
} peer;

/* Says what went wrong in a fake, and evaluates to 1 (its failure). */
#define FAKE_FAIL(...)                                                       \
  (fprintf(stderr, "pid %d (line %d): ", (int)getpid(), __LINE__),          \
   fprintf(stderr, __VA_ARGS__), fputc('\n', stderr), 1)
#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    if (!(cond))                                                             \
      return FAKE_FAIL(__VA_ARGS__);                                         \
  } while (0)

typedef int (*script_fn)(peer *p, void *arg);

typedef struct fake {
  pid_t pid;
  int fd;       /* this process's end, until the bee takes it */
  bh_bee *bee;  /* its bee, once adopted */
  int64_t id;   /* its child id there */
} fake;

typedef int (*root_fn)(bh_task *t, void *arg);

typedef struct hive {
  uv_loop_t loop;
  bh_bee *bee;
  size_t live0;
  root_fn fn;
  void *arg;
  int root_rc; /* what fn returned; -1 until it has */
} hive;

/* Renders o for messages (static buffer: one call per printf). */
const char *repr(const msgpack_object *o);
/* True if o equals the value `fmt` packs; says why not on stderr. */
bool same(const msgpack_object *o, const char *fmt, ...);
bool str_is(const msgpack_object *o, const char *s);
/* True if o is a str containing `part`. */
bool str_has(const msgpack_object *o, const char *part);
/* Follows a path of map keys from o; NULL if any is missing. */
const msgpack_object *dig(const msgpack_object *o, ...);
/* Reads what the socket holds (waiting if `wait`). Returns the byte count,
 * 0 at end of stream, -1 when nothing is there or on error. */
ssize_t peer_fill(peer *p, bool wait);
/* True if a whole message can be read without waiting. */
bool peer_ready(peer *p);
/* Reads the next message into p->m. Returns 0, or 1 (having said why) at
 * the end of the stream or for a frame that does not decode. */
int peer_recv(peer *p);
/* Returns 0 if the stream ends here (nothing more, then EOF). */
int expect_eof(peer *p);
/* Writes all of data[0..n). */
int send_raw(peer *p, const void *data, size_t n);
/* Sends the frames in b, then empties b. */
int send_buf(peer *p, bh__buf *b, int put_rc);
int send_simple(peer *p, bh__msg_type type, int64_t tid);
/* The value fmt packs, or NULL having said why. */
bh_value *fake_vpack(const char *fmt, va_list ap);
/* Sends a message whose whole body map `fmt` packs (any keys at all). */
int send_map(peer *p, const char *fmt, ...);
/* task_done succeeded with the value `fmt` packs. */
int send_done_value(peer *p, int64_t tid, const char *fmt, ...);
int send_done_cancelled(peer *p, int64_t tid, const char *reason);
int send_dead_normal(peer *p, const char *exit_code);
/* Reads a message that must be of `type` (for task `tid`, if tid >= 0). */
int expect(peer *p, bh__msg_type type, int64_t tid);
/* Reads task_info for tid, which must be task `name`. */
int expect_info(peer *p, int64_t tid, const char *name);
/* Takes task tid: accepts it and reads its task_info. */
int take(peer *p, int64_t tid, const char *name);
/* How every fake child ends: told to die, it says dead and leaves. */
int fake_finish(peer *p);
/* The parent's side: offers tid and expects `answer` (task_accepted or
 * task_denied, with no other field). */
int offer(peer *p, int64_t tid, bh__msg_type answer);
/* Reads dead normal with this exit code, then the end of the stream. */
int expect_dead(peer *p, const char *exit_code);
/* A bee's exit code after die (PROTOCOL.md section 9.1). */
#define DIE_CODE "The parent bee ordered to die gracefully."
/* One byte through a coordination pipe. */
int signal_fd(int fd);
int wait_fd_byte(int fd);
/* Forks a fake running fn(peer, arg); it keeps its end of a new socketpair
 * and the descriptors keep[0..nkeep) (ends of coordination pipes), and
 * exits with fn's result. */
int fake_fork(fake *f, script_fn fn, void *arg, const int *keep, int nkeep);
/* True if the bee reaped the fake and it exited with `code`. */
bool fake_exited(const fake *f, int code);
bool fake_killed(const fake *f, int sig);
int hive_open(hive *h, int64_t pickup_ms);
/* Hands the fake's end to the bee as a child (watching its process). */
int hive_adopt(hive *h, fake *f, int capacity);
/* Runs the loop until nothing is left to do. The turn hook does not keep
 * the loop alive, so when the callback that closed the last handle also
 * woke a fiber, uv_run() returns with the fiber queued: run it, and go on
 * if it made new work. Stops early when *stop becomes true. */
void run_all(uv_loop_t *loop, const bool *stop);
/* Starts fn(task, arg) as the root bee's local task and runs the loop
 * until nothing is left: the root's life and its children's have ended.
 * Returns what fn returned. */
int hive_run(hive *h, root_fn fn, void *arg);
/* Frees everything and checks nothing was left behind: no open handle, a
 * closable loop, no block allocated. */
int loop_teardown(uv_loop_t *loop, size_t live0);
int hive_close(hive *h);
/* The wrapped result's other_details, checked to name child `cid`. */
const msgpack_object *details_of(const bh_result *r, int64_t cid);

#endif
