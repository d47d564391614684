/* test_run_start.c - bh_run_start: a hive on the caller's own libuv loop,
 * which keeps serving the program's socket while the hive runs; the
 * result by callback, once; nothing of the hive left on the loop after;
 * options refused and a second hive on the thread refused the same way. */
#include <stdlib.h>
#include <string.h>
#include <beehive.h>
#include <uv.h>

#include "runner.h"

/* ---- the hive ------------------------------------------------------------- */

/* [ms] -> ms, after sleeping that long. */
static int
w_nap(bh_task *t) {
  int64_t ms;

  if (bh_task_unpack(t, "[I]", &ms) != 0)
    return BH_ERAISED;
  if (bh_sleep(t, ms) != 0)
    return BH_ECANCELLED;
  return bh_return(t, "I", ms);
}

static const bh_task_def wtasks[] = {{"nap", w_nap}, {NULL, NULL}};
static const bh_class worker = {.name = "W", .tasks = wtasks};

/* [n, ms] -> the sum of n naps of ms each, all at once in the workers. */
static int
q_naps(bh_task *t) {
  int64_t n, ms, i, sum = 0, v;
  bh_group *g = bh_group_new(t);
  bh_future *f;
  int rc;

  if (bh_task_unpack(t, "[I I]", &n, &ms) != 0)
    return BH_ERAISED;
  for (i = 0; i < n; i++)
    bh_group_delegate(g, NULL, NULL, "nap", "[I]", ms);
  while ((rc = bh_group_next(g, &f, -1)) == 0) {
    if (bh_result_unpack(bh_future_result(f), NULL, 0, "I", &v) == 0)
      sum += v;
    bh_future_free(f);
  }
  bh_group_free(g);
  return rc != BH_EDONE ? rc : bh_return(t, "I", sum);
}

static const bh_task_def qtasks[] = {{"naps", q_naps}, {NULL, NULL}};
static const bh_class queen = {.name = "Q", .tasks = qtasks};

/* ---- the program's own work: an echo server and its client ------------- */

typedef struct program {
  uv_loop_t loop;
  uv_tcp_t server, conn, client;
  uv_connect_t connect;
  uv_write_t wreq_c, wreq_s;
  char ping[4];
  long round_trips;       /* client: echoes received */
  long trips_at_done;     /* round_trips when done ran */
  int done_calls, rc;
  bh_result *result;
  int stop;               /* done has run: the client stops pinging */
  int closed;
} program;

/* The client and the server each read into their own buffer. */
static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  static char buf[2][64];
  program *p = h->data;

  (void)hint;
  *b = uv_buf_init(buf[h == (uv_handle_t *)&p->client], sizeof(buf[0]));
}

static void client_ping(program *p);

static void
client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  program *p = s->data;

  (void)b;
  if (n <= 0)
    return;
  p->round_trips++;
  if (!p->stop)
    client_ping(p);
}

static void
written(uv_write_t *w, int status) {
  (void)w;
  (void)status;
}

static void
client_ping(program *p) {
  uv_buf_t b = uv_buf_init(p->ping, 4);

  uv_write(&p->wreq_c, (uv_stream_t *)&p->client, &b, 1, written);
}

static void
on_connected(uv_connect_t *c, int status) {
  program *p = c->data;

  if (status != 0)
    return;
  uv_read_start((uv_stream_t *)&p->client, alloc_cb, client_read);
  client_ping(p);
}

static void
server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  program *p = s->data;
  uv_buf_t out;

  if (n <= 0)
    return;
  out = uv_buf_init(b->base, (unsigned)n); /* echo it */
  uv_write(&p->wreq_s, s, &out, 1, written);
}

static void
on_connection(uv_stream_t *srv, int status) {
  program *p = srv->data;

  if (status != 0)
    return;
  uv_tcp_init(&p->loop, &p->conn);
  p->conn.data = p;
  if (uv_accept(srv, (uv_stream_t *)&p->conn) == 0)
    uv_read_start((uv_stream_t *)&p->conn, alloc_cb, server_read);
}

/* The server on an ephemeral loopback port, and a client connecting. */
static int
program_start(program *p) {
  struct sockaddr_in a;
  struct sockaddr_storage bound;
  int len = sizeof(bound);

  memset(p, 0, sizeof(*p));
  memcpy(p->ping, "ping", 4);
  if (uv_loop_init(&p->loop) != 0)
    return -1;
  uv_tcp_init(&p->loop, &p->server);
  uv_tcp_init(&p->loop, &p->client);
  p->server.data = p;
  uv_ip4_addr("127.0.0.1", 0, &a);
  if (uv_tcp_bind(&p->server, (const struct sockaddr *)&a, 0) != 0 ||
      uv_listen((uv_stream_t *)&p->server, 8, on_connection) != 0 ||
      uv_tcp_getsockname(&p->server, (struct sockaddr *)&bound, &len) != 0)
    return -1;
  p->client.data = p;
  p->connect.data = p;
  return uv_tcp_connect(&p->connect, &p->client,
                        (const struct sockaddr *)&bound, on_connected);
}

static void
closed_cb(uv_handle_t *h) {
  program *p = h->data;

  p->closed++;
}

/* The program closes its own handles. */
static void
program_close(program *p) {
  uv_close((uv_handle_t *)&p->server, closed_cb);
  uv_close((uv_handle_t *)&p->client, closed_cb);
  if (p->conn.loop != NULL)
    uv_close((uv_handle_t *)&p->conn, closed_cb);
}

static void
on_done(void *udata, int rc, bh_result *r) {
  program *p = udata;

  p->done_calls++;
  p->rc = rc;
  p->result = r;
  p->trips_at_done = p->round_trips;
  p->stop = 1;
  program_close(p);
}

static bh_run_opts
opts(bh_value *args) {
  bh_run_opts o = {.queen_class = &queen, .worker_class = &worker,
                   .task_name = "naps", .task_args = args, .workers = 2,
                   .min_workers = 2, .max_workers = 2};
  return o;
}

/* ---- tests ------------------------------------------------------------------ */

TEST(the_program_serves_its_socket_while_the_hive_runs) {
  program p;
  bh_value *args = bh_value_pack(NULL, "[I I]", (int64_t)20, (int64_t)100);
  bh_run_opts o = opts(args);
  int64_t sum = 0;

  ASSERT_INT_EQ(program_start(&p), 0);
  ASSERT_INT_EQ(bh_run_start(&p.loop, &o, on_done, &p), 0);
  ASSERT_INT_EQ(p.done_calls, 0); /* it returned at once */
  ASSERT_INT_EQ(uv_run(&p.loop, UV_RUN_DEFAULT), 0);
  fprintf(stderr, "%ld round trips while the hive ran\n", p.trips_at_done);
  ASSERT_INT_EQ(p.done_calls, 1);
  ASSERT_STR_EQ(bh_err_name(p.rc), bh_err_name(0));
  ASSERT_INT_EQ(bh_result_unpack(p.result, NULL, 0, "I", &sum), 0);
  ASSERT_INT_EQ(sum, 2000);
  /* The echo went on during the hive's 100 ms naps, not after them. */
  ASSERT(p.trips_at_done > 10);
  /* Nothing of the hive is left on the loop: it closes. */
  ASSERT_INT_EQ(uv_loop_close(&p.loop), 0);
  bh_result_free(p.result);
  bh_value_free(args);
  return 0;
}

TEST(refusals_come_through_done) {
  program p;
  bh_value *args = bh_value_pack(NULL, "[I I]", (int64_t)1, (int64_t)1);
  bh_run_opts o = opts(args);

  o.max_frame = 8;
  ASSERT_INT_EQ(program_start(&p), 0);
  ASSERT_INT_EQ(bh_run_start(&p.loop, &o, on_done, &p), 0);
  ASSERT_INT_EQ(p.done_calls, 0);
  ASSERT_INT_EQ(uv_run(&p.loop, UV_RUN_DEFAULT), 0);
  ASSERT_INT_EQ(p.done_calls, 1);
  ASSERT_STR_EQ(bh_err_name(p.rc), bh_err_name(BH_EINVAL));
  ASSERT(strstr(bh_result_errmsg(p.result), "max_frame") != NULL);
  ASSERT_INT_EQ(uv_loop_close(&p.loop), 0);
  bh_result_free(p.result);
  ASSERT_INT_EQ(bh_run_start(NULL, &o, on_done, &p), BH_EINVAL);
  ASSERT_INT_EQ(bh_run_start(&p.loop, &o, NULL, &p), BH_EINVAL);
  bh_value_free(args);
  return 0;
}

typedef struct pair {
  program p;
  int rc2, calls2;
  bh_result *r2;
} pair;

static void
on_done2(void *udata, int rc, bh_result *r) {
  pair *x = udata;

  x->calls2++;
  x->rc2 = rc;
  x->r2 = r;
}

/* A second hive on the same thread is refused while the first lives; the
 * first is not disturbed. */
TEST(one_hive_per_thread_at_a_time) {
  pair x;
  bh_value *args = bh_value_pack(NULL, "[I I]", (int64_t)4, (int64_t)50);
  bh_run_opts o = opts(args);
  int64_t sum = 0;

  memset(&x, 0, sizeof(x));
  ASSERT_INT_EQ(program_start(&x.p), 0);
  ASSERT_INT_EQ(bh_run_start(&x.p.loop, &o, on_done, &x.p), 0);
  ASSERT_INT_EQ(bh_run_start(&x.p.loop, &o, on_done2, &x), 0);
  ASSERT_INT_EQ(uv_run(&x.p.loop, UV_RUN_DEFAULT), 0);
  ASSERT_INT_EQ(x.calls2, 1);
  ASSERT_STR_EQ(bh_err_name(x.rc2), bh_err_name(UV_EBUSY));
  ASSERT(strstr(bh_result_errmsg(x.r2), "one at a time") != NULL);
  ASSERT_INT_EQ(x.p.done_calls, 1);
  ASSERT_INT_EQ(x.p.rc, 0);
  ASSERT_INT_EQ(bh_result_unpack(x.p.result, NULL, 0, "I", &sum), 0);
  ASSERT_INT_EQ(sum, 200);
  ASSERT_INT_EQ(uv_loop_close(&x.p.loop), 0);
  bh_result_free(x.p.result);
  bh_result_free(x.r2);
  bh_value_free(args);
  return 0;
}

/* After one hive ended on the loop, another can run on it. */
TEST(hives_one_after_another_on_one_loop) {
  program p;
  bh_value *args = bh_value_pack(NULL, "[I I]", (int64_t)3, (int64_t)10);
  bh_run_opts o = opts(args);
  int64_t sum = 0;
  int i;

  for (i = 0; i < 3; i++) {
    ASSERT_INT_EQ(program_start(&p), 0);
    ASSERT_INT_EQ(bh_run_start(&p.loop, &o, on_done, &p), 0);
    ASSERT_INT_EQ(uv_run(&p.loop, UV_RUN_DEFAULT), 0);
    ASSERT_INT_EQ(p.done_calls, 1);
    ASSERT_INT_EQ(bh_result_unpack(p.result, NULL, 0, "I", &sum), 0);
    ASSERT_INT_EQ(sum, 30);
    ASSERT_INT_EQ(uv_loop_close(&p.loop), 0);
    bh_result_free(p.result);
  }
  bh_value_free(args);
  return 0;
}

/* The program's own child processes are its own: the hive waits for its
 * workers by pid, so a child the program started with uv_spawn on the same
 * loop, ending while the hive runs, still reaches the program's exit
 * callback with its status; pidfds or SIGCHLD alike. */
typedef struct own_child {
  uv_process_t proc;
  int exits;
  int64_t status;
} own_child;

static void
own_exit(uv_process_t *h, int64_t status, int signum) {
  own_child *c = h->data;

  (void)signum;
  c->exits++;
  c->status = status;
  uv_close((uv_handle_t *)h, NULL);
}

static void
own_done(void *udata, int rc, bh_result *r) {
  int *done = udata; /* done[0]: calls, done[1]: the last rc */

  done[0]++;
  done[1] = rc;
  bh_result_free(r);
}

static int
own_children_left_alone(void) {
  char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"exit 7", NULL};
  uv_process_options_t po = {.file = "/bin/sh", .args = argv,
                             .exit_cb = own_exit};
  bh_value *args = bh_value_pack(NULL, "[I I]", (int64_t)4, (int64_t)50);
  bh_run_opts o = opts(args);
  own_child c = {.exits = 0};
  uv_loop_t loop;
  int done[2] = {0, -1};

  ASSERT_INT_EQ(uv_loop_init(&loop), 0);
  ASSERT_INT_EQ(bh_run_start(&loop, &o, own_done, done), 0);
  c.proc.data = &c;
  ASSERT_INT_EQ(uv_spawn(&loop, &c.proc, &po), 0);
  ASSERT_INT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_INT_EQ(done[0], 1);
  ASSERT_INT_EQ(done[1], 0);
  ASSERT_INT_EQ(c.exits, 1);
  ASSERT_INT_EQ(c.status, 7);
  ASSERT_INT_EQ(uv_loop_close(&loop), 0);
  bh_value_free(args);
  return 0;
}

TEST(the_programs_own_children_are_left_alone) {
  return own_children_left_alone();
}

TEST(the_programs_own_children_are_left_alone_sigchld) {
  setenv("BH_NO_PIDFD", "1", 1);
  return own_children_left_alone();
}

TEST_MAIN(TEST_ENTRY_T(the_program_serves_its_socket_while_the_hive_runs, 30),
          TEST_ENTRY_T(the_programs_own_children_are_left_alone, 30),
          TEST_ENTRY_T(the_programs_own_children_are_left_alone_sigchld, 30),
          TEST_ENTRY_T(refusals_come_through_done, 20),
          TEST_ENTRY_T(one_hive_per_thread_at_a_time, 30),
          TEST_ENTRY_T(hives_one_after_another_on_one_loop, 30))
