/* join.c - a worker of another host joins its queen (bh_join): connect
 * and prove the key (tcp_join.c), retried while nobody listens yet (a
 * launcher starts everyone at once); then the bootstrap frame, the first
 * the queen sends (docs/PROTOCOL.md section 14), and the same worker life
 * as an exec-started one, on the TCP link instead of a descriptor. */
#include "hive/worker.h"
#include "transport/key.h"
#include "transport/tcp.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define JOIN_TIMEOUT_MS 60000
/* Between connects refused (the queen not up yet): 10 ms, doubled up to
 * 200. A worker started with its queen finds her listening a few tens of
 * ms later, and every ms it waits beyond is the job's; a refused connect
 * costs the queen's host next to nothing, and the pauses soon grow. */
#define RETRY_MIN_MS 10
#define RETRY_MS 200

typedef struct joining {
  uv_loop_t *loop;
  bh__transport *t;
  int err;
  bool done;
  char why[320];
} joining;

static void
dialed(bh__transport *t, int err, const char *why, const char *peer,
       void *arg) {
  joining *j = arg;

  (void)peer;
  j->t = t;
  j->err = err;
  j->done = true;
  if (why != NULL)
    snprintf(j->why, sizeof(j->why), "%s", why);
}

static void
nothing(uv_timer_t *h) {
  (void)h;
}

/* Waits ms on the loop (the pause between two connects). */
static void
pause_ms(uv_loop_t *loop, int64_t ms) {
  uv_timer_t tm;

  uv_timer_init(loop, &tm);
  uv_timer_start(&tm, nothing, (uint64_t)ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&tm, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

/* One connect and handshake, within what is left of the deadline. */
static int
dial_once(joining *j, const char *addr, const unsigned char *key,
          int64_t left) {
  bh__tcp_opts to = {.key = key};
  int rc;

  if (left >= 0 && left < BH__TCP_HANDSHAKE_MS)
    to.handshake_ms = left > 0 ? (unsigned)left : 1;
  j->done = false;
  rc = bh__tcp_connect(NULL, j->loop, addr, &to, dialed, j, j->why,
                       sizeof(j->why));
  if (rc != 0)
    return rc;
  while (!j->done)
    uv_run(j->loop, UV_RUN_ONCE);
  return j->err;
}

/* Connects until the queen answers or the deadline passes (-1: none).
 * Only a refused connection (nobody listens yet) is tried again: a
 * refused key, a bad address, a timeout are final. */
static int
dial(joining *j, const char *addr, const unsigned char *key,
     int64_t deadline) {
  int64_t pause = RETRY_MIN_MS;

  for (;;) {
    int64_t left = deadline < 0 ? -1 : deadline - bh_now();
    int rc = dial_once(j, addr, key, left);

    if (rc != BH_ECONNREFUSED || (deadline >= 0 && bh_now() + pause >=
                                                       deadline))
      return rc;
    pause_ms(j->loop, pause);
    pause = pause * 2 < RETRY_MS ? pause * 2 : RETRY_MS;
  }
}

static int
load_key(const bh_join_opts *o, unsigned char key[BH__KEY_LEN], char *why,
         size_t len) {
  if (o->key != NULL) {
    memcpy(key, o->key, BH__KEY_LEN);
    return 0;
  }
  if (o->key_file == NULL) {
    snprintf(why, len, "bh_join: a key or a key_file is required");
    return BH_EINVAL;
  }
  return bh__key_load(o->key_file, key, why, len);
}

/* The bootstrap, the queen's first frame, then the worker's life. The
 * queen sends it right behind her proof: it gets a handshake's time of its
 * own, whatever is left of the join's timeout (which may be none), so
 * that a queen who froze after accepting is not waited for ever. */
static int
serve(joining *j, const bh_class *const *classes) {
  bh__spawn s = {0};
  bh__wcfg cfg = {0};
  bh__msg m;
  msgpack_zone zone;
  size_t len = 0;
  int err, rc = 2;
  char *body = bh__worker_read_boot(bh__tcp_fd(j->t),
                                    bh_now() + BH__TCP_HANDSHAKE_MS, &len,
                                    &err);

  if (body == NULL) {
    snprintf(j->why, sizeof(j->why), "beehive worker: no bootstrap frame "
             "from the queen: %s", bh_strerror(err));
    j->t->ops->close(j->t, NULL, NULL);
    return 2;
  }
  msgpack_zone_init(&zone, 1024);
  if (bh__worker_boot(body, len, classes, &zone, &m, &s, &cfg, j->why,
                      sizeof(j->why)) != 0) {
    j->t->ops->close(j->t, NULL, NULL);
  } else {
    /* The queen's interval, and the kernel's timeouts that follow it. */
    if (cfg.heartbeat_ms > 0) {
      j->t->heartbeat_ms = (unsigned)cfg.heartbeat_ms;
      bh__tcp_retune(j->t);
    }
    rc = bh__worker_run_on(j->loop, &s, -1, j->t, m.args, m.kwargs);
  }
  bh__wcfg_clear(&cfg);
  msgpack_zone_destroy(&zone);
  bh__free(body);
  return rc;
}

/* Why the worker could not join: on the logger, else on stderr (a
 * process started by a launcher has nobody else to tell). */
static void
say(const bh_join_opts *o, const char *head, const char *why) {
  if (o != NULL && o->logger != NULL)
    bh_log(o->logger, BH_LOG_ERROR, "%s%s", head, why);
  else
    fprintf(stderr, "%s%s\n", head, why);
}

int
bh_join(const bh_join_opts *o, const bh_class *const *classes) {
  unsigned char key[BH__KEY_LEN];
  uv_loop_t loop;
  joining j = {.loop = &loop};
  int64_t ms, deadline;
  int rc;

  if (o == NULL || o->address == NULL || o->timeout_ms < -1) {
    snprintf(j.why, sizeof(j.why), "bh_join: %s",
             o == NULL ? "the options are required"
             : o->address == NULL ? "the queen's address is required"
                                  : "timeout_ms must be -1, 0 or more");
    rc = BH_EINVAL;
  } else {
    rc = load_key(o, key, j.why, sizeof(j.why));
  }
  if (rc != 0) {
    OPENSSL_cleanse(key, sizeof(key));
    say(o, "", j.why);
    return 2;
  }
  ms = o->timeout_ms == 0 ? JOIN_TIMEOUT_MS : o->timeout_ms;
  deadline = ms < 0 ? -1 : bh_now() + ms;
  uv_loop_init(&loop);
  rc = dial(&j, o->address, key, deadline);
  OPENSSL_cleanse(key, sizeof(key));
  if (rc != 0) {
    say(o, "beehive worker: could not join: ", j.why);
    rc = 2;
  } else if ((rc = serve(&j, classes)) == 2) {
    say(o, "", j.why);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  return rc;
}
