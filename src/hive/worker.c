/* worker.c - a worker process's life: its bee on the channel to its
 * parent until the bee is dead (bh__worker_run, which a forked worker
 * runs), and the exec-started worker (bh__worker_exec), which reads the
 * bootstrap frame first (its entry point, bh_worker_main, is entry.c's). */
#include "hive/life.h"
#include "hive/make.h"
#include "hive/opts.h"
#include "hive/parent.h"
#include "hive/queen.h"
#include "hive/worker.h"
#include "proc/lastword.h"
#include "runtime/fiber.h"
#include "runtime/overflow.h"
#include "runtime/sig.h"
#include "runtime/turn.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

typedef struct worker_run {
  uv_loop_t *loop;
  bh_bee *bee;
  int status; /* the process's exit status */
} worker_run;

static void
drained(bh__chan *c, void *udata) {
  bh_bee *bee = udata;

  (void)c;
  uv_stop(bee->loop);
}

/* The bee's life ended normally: once dead is written, leave the loop. */
static void
worker_dead(bh_bee *bee) {
  bh__chan_on_drained(bee->parent, drained);
}

/* The parent is gone: nobody is left to answer. The running tasks end
 * cancelled (orphan_tasks_end), children are killed and reaped by the
 * bee's free, then the process ends. */
static void
worker_orphan(bh_bee *bee) {
  worker_run *w = bee->owner;

  w->status = 3;
  uv_stop(bee->loop);
}

/* A sub-queen's workers: her own settings, but the class default of
 * max_concurrency (1,024) and its default prefetch. */
static int
sub_hive(worker_run *w, const bh__spawn *s) {
  bh__wcfg cfg;
  int rc = bh__wcfg_copy(&cfg, s->cfg);

  if (rc != 0)
    return rc;
  cfg.max_concurrency = bh__conc_norm(0);
  cfg.prefetch = bh__prefetch_norm(0, cfg.max_concurrency,
                                   s->cls->worker_class->program != NULL);
  rc = bh__queen_setup(w->bee, s->cls->worker_class, NULL, NULL,
                       s->cls->workers, &cfg, s->start, bh__worker_run, NULL,
                       NULL);
  bh__wcfg_clear(&cfg);
  return rc;
}

/* An orphan's tasks are cancelled and run to their end before its bee is
 * freed: their waits return BH_ECANCELLED at once, so their own cleanup
 * runs and their fibers end, rather than being dropped suspended with
 * their stacks and whatever those held. What they answer goes nowhere (the
 * channel failed). A wait that ignored the cancel stays suspended, as
 * before. */
static void
orphan_tasks_end(bh_bee *bee) {
  bh__bee_cancel_all(bee, "Cancelled: the parent bee is gone.");
  bh__sched_run();
}

static int
worker_start(worker_run *w, const bh__spawn *s, const msgpack_object *args,
             const msgpack_object *kwargs) {
  char *err_text = NULL;
  int rc = bh__bee_init(w->bee, args, kwargs, &err_text);

  if (rc == 0 && s->cls->worker_class != NULL)
    rc = sub_hive(w, s);
  if (rc != 0) {
    w->status = 1;
    bh__bee_die_killed(w->bee, "InitError",
                       err_text ? err_text : bh_strerror(rc));
  }
  bh__free(err_text);
  return rc;
}

int
bh__worker_run_on(uv_loop_t *loop, const bh__spawn *s, int fd,
                  bh__transport *t, const msgpack_object *args,
                  const msgpack_object *kwargs) {
  const bh__wcfg *c = s->cfg;
  worker_run w = {.loop = loop, .status = 0};
  bh_context ctx = {.async = 1, .s3_profile = c->s3_profile};
  bh__bee_opts bo = {.cls = s->cls, .id = s->id,
                     .max_conc = (int)c->max_concurrency,
                     .prefetch = (int)c->prefetch, .log = s->logger,
                     .ctx = &ctx, .max_frame = (size_t)c->max_frame,
                     .http = {c->http_max_host_connections,
                              c->http_max_connections, c->http_ca_file},
                     .on_dead = worker_dead, .on_orphan = worker_orphan,
                     .owner = &w, .parent_t = t};

  signal(SIGPIPE, SIG_IGN);
  /* A local worker leaves SIGINT and SIGTERM to its queen, who leads. A
   * joined one has no queen on its host: a launcher's SIGTERM (scancel,
   * kill) or a Ctrl-C at its terminal ends it, and the queen mourns it
   * ("connection lost") and retries its tasks. */
  if (t == NULL)
    bh__sig_worker();
  bh__turn_init(loop);
  if (bh__bee_new(&w.bee, loop, fd, &bo) != 0) {
    bh__turn_finish(loop);
    return 1;
  }
  bh__overflow_start();
  worker_start(&w, s, args, kwargs);
  uv_run(loop, UV_RUN_DEFAULT);
  if (w.status == 3)
    orphan_tasks_end(w.bee);
  bh__bee_free(w.bee);
  bh__turn_finish(loop);
  bh__overflow_stop();
  return w.status;
}

int
bh__worker_run(const bh__spawn *s, int fd, const msgpack_object *args,
               const msgpack_object *kwargs) {
  uv_loop_t loop;

  uv_loop_init(&loop);
  return bh__worker_run_on(&loop, s, fd, NULL, args, kwargs);
}

/* Reads n bytes from fd, blocking or not, until the deadline (bh_now()
 * ms; -1: none). 0, BH_ETIMEDOUT, or BH_EPROTO at the end of the stream
 * or on an error. */
static int
read_all(int fd, char *p, size_t n, int64_t deadline) {
  while (n > 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int64_t left = deadline < 0 ? -1 : deadline - bh_now();
    ssize_t r;

    if (deadline >= 0 && left <= 0)
      return BH_ETIMEDOUT;
    if (poll(&pfd, 1, left < 0 ? -1 : (int)left) < 0 && errno != EINTR)
      return BH_EPROTO;
    r = read(fd, p, n);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (r <= 0)
      return BH_EPROTO;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

char *
bh__worker_read_boot(int fd, int64_t deadline, size_t *len, int *err) {
  unsigned char hdr[BH__FRAME_HDR];
  char *body = NULL;

  *err = read_all(fd, (char *)hdr, sizeof(hdr), deadline);
  if (*err != 0)
    return NULL;
  *len = bh__wire_frame_len(hdr);
  if (*len > BH__DEFAULT_MAX_FRAME)
    *err = BH_EMSGSIZE;
  else if ((body = bh__malloc(*len + 1)) == NULL)
    *err = BH_ENOMEM;
  else if ((*err = read_all(fd, body, *len, deadline)) != 0) {
    bh__free(body);
    body = NULL;
  }
  return body;
}

static const bh_class *
find_class(const bh_class *const *classes, const char *name, size_t len) {
  for (; classes != NULL && *classes != NULL; classes++)
    if ((*classes)->name != NULL && strlen((*classes)->name) == len &&
        memcmp((*classes)->name, name, len) == 0)
      return *classes;
  return NULL;
}

#define BAD_BOOT "beehive worker: bad bootstrap"

/* The bootstrap's settings must be in the ranges bh_run() checks: a
 * parent other than beehive may send anything. 0, or an error with why. */
static int
boot_read(const bh__msg *m, const bh_class *const *classes, bh__spawn *s,
          bh__wcfg *cfg, char *why, size_t len) {
  bh__spawn_opts o = {.start = BH_START_EXEC};
  char err[200];

  if (m->type != BH__MSG_BOOTSTRAP) {
    snprintf(why, len, BAD_BOOT ": msg_type is not bootstrap");
    return BH_EPROTO;
  }
  if ((s->cls = find_class(classes, m->cls, m->cls_len)) == NULL) {
    snprintf(why, len, BAD_BOOT ": unknown class '%.*s'", (int)m->cls_len,
             m->cls);
    return BH_EPROTO;
  }
  if (bh__wcfg_unpack(cfg, m->config, err, sizeof(err)) != 0) {
    snprintf(why, len, BAD_BOOT ": %s", err);
    return BH_EPROTO;
  }
  s->id = m->bee_id;
  s->cfg = cfg;
  s->start = BH_START_EXEC;
  o.cls = s->cls;
  o.max_concurrency = (int)cfg->max_concurrency;
  o.prefetch = (int)cfg->prefetch;
  o.max_frame = (size_t)cfg->max_frame;
  /* http_ca_file is not opened again here: the parent did, and a file
   * gone since fails the worker's https:// requests with BH_ETLS, curl
   * naming it, not the worker's start. */
  return bh__spawn_opts_check(&o, BAD_BOOT, why, len);
}

int
bh__worker_boot(const char *body, size_t len,
                const bh_class *const *classes, msgpack_zone *zone,
                bh__msg *m, bh__spawn *s, bh__wcfg *cfg, char *why,
                size_t wlen) {
  char err[200];

  if (bh__wire_decode(body, len, zone, m, err, sizeof(err)) != 0) {
    snprintf(why, wlen, BAD_BOOT ": %s", err);
    return BH_EPROTO;
  }
  return boot_read(m, classes, s, cfg, why, wlen);
}

int
bh__worker_exec(const bh_class *const *classes) {
  bh__spawn s = {0};
  bh__wcfg cfg = {0};
  bh__msg m;
  msgpack_zone zone;
  size_t len = 0;
  int err;
  char *body = bh__worker_read_boot(BH__BOOT_FD, -1, &len, &err), why[320];
  int rc = 2;

  if (body == NULL) {
    fprintf(stderr, "beehive worker: no bootstrap frame on fd %d\n",
            BH__BOOT_FD);
    return 2;
  }
  bh__overflow_worker(bh__lastword_open());
  msgpack_zone_init(&zone, 1024);
  if (bh__worker_boot(body, len, classes, &zone, &m, &s, &cfg, why,
                      sizeof(why)) == 0)
    rc = bh__worker_run(&s, BH__BOOT_FD, m.args, m.kwargs);
  if (rc == 2)
    fprintf(stderr, "%s\n", why);
  bh__wcfg_clear(&cfg);
  msgpack_zone_destroy(&zone);
  bh__free(body);
  return rc;
}
