/* spawn.c - the reference's subprocess_workerbee(): a worker bee in a
 * daemon subprocess with its private channel, started by fork (default) or
 * by fork+exec of this same program in worker mode. Also the worker
 * process's main loop (bh__worker_run) and the exec entry point. */
#include "bee.h"
#include "blob.h"
#include "lastword.h"
#include "overflow.h"
#include "program.h"
#include "sig.h"
#include "turn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BOOT_FD 3

typedef struct worker_run {
  uv_loop_t loop;
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

/* The parent is gone: nobody is left to answer. Children are killed and
 * reaped by the bee's free, then the process ends. */
static void
worker_orphan(bh_bee *bee) {
  worker_run *w = bee->owner;

  w->status = 3;
  uv_stop(bee->loop);
}

/* A sub-queen's workers: her own settings, but the class default of
 * max_concurrency (1,024) and no prefetch. */
static int
sub_hive(worker_run *w, const bh__spawn *s) {
  bh__wcfg cfg;
  int rc = bh__wcfg_copy(&cfg, s->cfg);

  if (rc != 0)
    return rc;
  cfg.max_concurrency = bh__conc_norm(0);
  cfg.prefetch = 0;
  rc = bh__queen_setup(w->bee, s->cls->worker_class, NULL, NULL,
                       s->cls->workers, &cfg, s->start, NULL, NULL);
  bh__wcfg_clear(&cfg);
  return rc;
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
bh__worker_run(const bh__spawn *s, int fd, const msgpack_object *args,
               const msgpack_object *kwargs) {
  const bh__wcfg *c = s->cfg;
  worker_run w = {.status = 0};
  bh_context ctx = {.async = 1, .s3_profile = c->s3_profile};
  bh__bee_opts bo = {.cls = s->cls, .id = s->id,
                     .max_conc = (int)c->max_concurrency,
                     .prefetch = (int)c->prefetch, .log = s->logger,
                     .ctx = &ctx, .max_frame = (size_t)c->max_frame,
                     .http = {c->http_max_host_connections,
                              c->http_max_connections, c->http_ca_file},
                     .on_dead = worker_dead, .on_orphan = worker_orphan,
                     .owner = &w};

  signal(SIGPIPE, SIG_IGN);
  bh__sig_worker();
  uv_loop_init(&w.loop);
  bh__turn_init(&w.loop);
  if (bh__bee_new(&w.bee, &w.loop, fd, &bo) != 0) {
    bh__turn_finish(&w.loop);
    return 1;
  }
  bh__overflow_start();
  worker_start(&w, s, args, kwargs);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  bh__bee_free(w.bee);
  bh__turn_finish(&w.loop);
  bh__overflow_stop();
  return w.status;
}

/* A descriptor open in the parent at the fork, by number and identity. */
typedef struct open_fd {
  int fd;
  dev_t dev;
  ino_t ino;
} open_fd;

/* The descriptors open in this process now, to close in the child: what
 * the child inherits it must not hold, while what fork handlers make in
 * the child (libuv's signal-lock pipe, often under a number just freed)
 * it must keep: closing that would break libuv's signals there and make
 * its next fork handler close fds it no longer owns. Hence identities,
 * not only numbers. Returns owned (terminated by fd -1) or NULL. */
static open_fd *
open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  size_t n = 0, cap = 64;
  open_fd *fds = bh__malloc(cap * sizeof(*fds));
  int self = d ? dirfd(d) : -1;
  struct dirent *e;
  struct stat st;

  while (fds != NULL && d != NULL && (e = readdir(d)) != NULL) {
    int fd = e->d_name[0] == '.' ? -1 : atoi(e->d_name);

    if (fd <= 2 || fd == self || fstat(fd, &st) != 0)
      continue;
    if (n + 1 == cap) {
      open_fd *grown = bh__realloc(fds, (cap *= 2) * sizeof(*fds));

      if (grown == NULL) {
        bh__free(fds);
        fds = NULL;
        break;
      }
      fds = grown;
    }
    fds[n++] = (open_fd){fd, st.st_dev, st.st_ino};
  }
  if (d != NULL)
    closedir(d);
  if (fds != NULL)
    fds[n].fd = -1;
  return fds;
}

/* In the new process: die with the parent, and close every descriptor
 * inherited but the channel, `keep` and `report` (-1: none). */
static void
child_setup(pid_t parent, int chan, int keep, int report,
            const open_fd *inherited) {
  struct stat st;

  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(1); /* the parent died before the line above took effect */
  for (; inherited->fd >= 0; inherited++)
    if (inherited->fd != chan && inherited->fd != keep &&
        inherited->fd != report && fstat(inherited->fd, &st) == 0 &&
        st.st_dev == inherited->dev &&
        st.st_ino == inherited->ino)
      close(inherited->fd);
}

/* The worker keeps its last-words page as the mapping it inherited; the
 * page's descriptor is among those closed. */
static void
fork_child(const bh__spawn *s, int fd, char *last_words, pid_t parent,
           const open_fd *inherited) {
  static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
  static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

  bh__overflow_worker(last_words);
  child_setup(parent, fd, -1, -1, inherited);
  bh__free((void *)inherited); /* the parent's copy is freed there */
  bh__turn_forget();
  bh__blob_forget_all();
  _exit(bh__worker_run(s, fd,
                       s->init_args ? bh_value_object(s->init_args)
                                    : &empty_array,
                       s->init_kwargs ? bh_value_object(s->init_kwargs)
                                      : &empty_map));
}

/* The channel goes to BOOT_FD and the last-words page (lw, -1: none) to
 * BH__LASTWORD_FD, both kept across exec; then this program runs again
 * in worker mode, or the external program `prog` runs. */
static void
exec_child(int fd, int lw, pid_t parent, const open_fd *inherited,
           bh__exec *prog) {
  char *argv[] = {(char *)"beehive-worker", NULL};

  /* Neither may sit where the other goes before it is moved; the copies
   * made on the way close at exec. */
  if (lw >= 0 && lw <= BH__LASTWORD_FD)
    lw = fcntl(lw, F_DUPFD_CLOEXEC, BH__LASTWORD_FD + 1);
  if (fd == BH__LASTWORD_FD &&
      (fd = fcntl(fd, F_DUPFD_CLOEXEC, BH__LASTWORD_FD + 1)) < 0)
    _exit(127);
  if (fd != BOOT_FD) {
    if (dup2(fd, BOOT_FD) < 0)
      _exit(127);
    fd = BOOT_FD;
  } else {
    int fl = fcntl(fd, F_GETFD);

    fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
  }
  if (lw >= 0 && dup2(lw, BH__LASTWORD_FD) != BH__LASTWORD_FD)
    lw = -1;
  child_setup(parent, fd, lw >= 0 ? BH__LASTWORD_FD : -1,
              prog ? bh__program_report_fd(prog) : -1, inherited);
  if (prog != NULL)
    bh__program_exec(prog, lw >= 0);
  if (lw >= 0)
    setenv(BH__LASTWORD_ENV, BH__LASTWORD_FD_TEXT, 1);
  setenv("BH_WORKER", "1", 1);
  execv("/proc/self/exe", argv);
  _exit(127);
}

/* The bootstrap frame of an exec start (docs/PROTOCOL.md section 6),
 * written whole before the worker reads anything. */
static int
write_bootstrap(int fd, const bh__spawn *s) {
  bh_value *cfg = bh__wcfg_value(s->cfg);
  bh__buf b = {0};
  size_t off = 0;
  int rc = cfg == NULL ? BH_ENOMEM
                       : bh__wire_put_bootstrap(
                             &b, (size_t)s->cfg->max_frame, s->cls->name,
                             s->id, bh_value_object(s->init_args),
                             bh_value_object(s->init_kwargs),
                             bh_value_object(cfg));

  while (rc == 0 && off < b.len) {
    /* No SIGPIPE for a worker gone already: the caller may not ignore it. */
    ssize_t n = send(fd, b.data + off, b.len - off, MSG_NOSIGNAL);

    if (n < 0 && errno != EINTR)
      rc = -errno;
    else if (n > 0)
      off += (size_t)n;
  }
  bh__buf_free(&b);
  bh_value_free(cfg);
  return rc;
}

typedef struct spawn_call {
  const bh__spawn *s;
  bh__exec *prog; /* an external class's program, or NULL */
  int sv[2];
  char *lw;   /* the worker's last-words page, or NULL */
  int lw_fd;  /* ...its memfd, or -1 */
  pid_t pid;
  int err;
} spawn_call;

/* Runs on the loop thread's own stack, never a fiber's: the child goes on
 * from here, and a fiber stack is no place to run a whole bee. */
static void
do_fork(void *arg) {
  spawn_call *sc = arg;
  pid_t parent = getpid();
  open_fd *inherited = open_fds();
  sigset_t mask;

  if (inherited == NULL) {
    sc->err = BH_ENOMEM;
    return;
  }
  /* No signal may reach the child before it has dropped the parent's
   * watches and ignores SIGINT and SIGTERM (sig.h). */
  bh__sig_block_all(&mask);
  sc->pid = fork();
  if (sc->pid < 0)
    sc->err = -errno;
  if (sc->pid != 0) {
    bh__sig_restore(&mask);
    bh__free(inherited);
    return;
  }
  bh__sig_forget_all();
  bh__sig_worker();
  bh__sig_restore(&mask);
  /* The child: sv[0], the parent's end, is among the inherited. */
  if (sc->s->start == BH_START_EXEC || sc->prog != NULL)
    exec_child(sc->sv[1], sc->lw_fd, parent, inherited, sc->prog);
  fork_child(sc->s, sc->sv[1], sc->lw, parent, inherited);
}

/* The fork, then the exec's report and the bootstrap frame where there is
 * an exec. A worker that has ended already (its channel closed: EPIPE) is
 * started all the same: its death tells why, as any worker's does. */
static int
fork_worker(spawn_call *sc, char **why) {
  bool exec = sc->s->start == BH_START_EXEC || sc->prog != NULL;

  fflush(NULL); /* stdio buffers must not be written twice */
  bh__fiber_call_main(do_fork, sc);
  close(sc->sv[1]);
  if (sc->lw_fd >= 0)
    close(sc->lw_fd);
  if (sc->err == 0 && sc->prog != NULL)
    sc->err = bh__program_started(sc->prog, why);
  if (sc->err == 0 && exec)
    sc->err = write_bootstrap(sc->sv[0], sc->s);
  if (sc->err == BH_EPIPE || sc->err == -ECONNRESET)
    sc->err = 0;
  return sc->err;
}

int
bh__spawn_worker(const bh__spawn *s, pid_t *pid, int *channel,
                 char **last_words, char **why) {
  spawn_call sc = {.s = s, .lw_fd = -1};
  bh__exec prog;
  int rc;

  *why = NULL;
  if (s->cls->program != NULL) {
    if ((rc = bh__program_prepare(&prog, s->cls, why)) != 0)
      return rc;
    sc.prog = &prog;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sc.sv) != 0)
    sc.err = -errno;
  else if (last_words != NULL)
    sc.lw = bh__lastword_new(&sc.lw_fd);
  if (sc.err == 0 && fork_worker(&sc, why) != 0) {
    close(sc.sv[0]);
    bh__lastword_free(sc.lw);
    if (sc.pid > 0) {
      kill(sc.pid, SIGKILL);
      waitpid(sc.pid, NULL, 0);
    }
  }
  if (sc.prog != NULL)
    bh__program_clear(sc.prog);
  if (sc.err != 0)
    return sc.err;
  *pid = sc.pid;
  *channel = sc.sv[0];
  if (last_words != NULL)
    *last_words = sc.lw;
  return 0;
}

int
bh_subprocess_workerbee(const bh_spawn_opts *o, pid_t *pid, int *channel) {
  bh__spawn s;
  bh__wcfg cfg;
  char why[256], *err;
  int rc;

  if (o == NULL || pid == NULL || channel == NULL)
    return BH_EINVAL;
  if (bh__spawn_opts_check(o, "bh_subprocess_workerbee", why,
                           sizeof(why)) != 0) {
    bh_log(o->logger, BH_LOG_ERROR, "%s", why);
    return BH_EINVAL;
  }
  if ((rc = bh__wcfg_from_spawn(&cfg, o)) != 0)
    return rc;
  s = (bh__spawn){.cls = o->cls, .id = o->id, .init_args = o->init_args,
                  .init_kwargs = o->init_kwargs, .cfg = &cfg,
                  .logger = o->logger, .start = o->start};
  rc = bh__spawn_worker(&s, pid, channel, NULL, &err);
  if (err != NULL)
    bh_log(o->logger, BH_LOG_ERROR, "bh_subprocess_workerbee: %s", err);
  bh__free(err);
  bh__wcfg_clear(&cfg);
  return rc;
}

static int
read_all(int fd, char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);

    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return BH_EPROTO;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Reads the bootstrap frame's body; returns owned (*len bytes) or NULL. */
static char *
read_bootstrap(int fd, size_t *len) {
  unsigned char hdr[BH__FRAME_HDR];
  char *body;

  if (read_all(fd, (char *)hdr, sizeof(hdr)) != 0)
    return NULL;
  *len = bh__wire_frame_len(hdr);
  if (*len > BH__DEFAULT_MAX_FRAME || (body = bh__malloc(*len + 1)) == NULL)
    return NULL;
  if (read_all(fd, body, *len) != 0) {
    bh__free(body);
    return NULL;
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

/* The bootstrap's settings must be in the ranges bh_subprocess_workerbee()
 * checks: a parent other than beehive may send anything. 0, or an error
 * with why. */
static int
boot_read(const bh__msg *m, const bh_class *const *classes, bh__spawn *s,
          bh__wcfg *cfg, char *why, size_t len) {
  bh_spawn_opts o = {.start = BH_START_EXEC};
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

static int
exec_worker(const bh_class *const *classes) {
  bh__spawn s = {0};
  bh__wcfg cfg = {0};
  bh__msg m;
  msgpack_zone zone;
  size_t len = 0;
  char *body = read_bootstrap(BOOT_FD, &len), err[200], why[320];
  int rc = 2;

  if (body == NULL) {
    fprintf(stderr, "beehive worker: no bootstrap frame on fd %d\n", BOOT_FD);
    return 2;
  }
  bh__overflow_worker(bh__lastword_open());
  msgpack_zone_init(&zone, 1024);
  if (bh__wire_decode(body, len, &zone, &m, err, sizeof(err)) != 0)
    snprintf(why, sizeof(why), BAD_BOOT ": %s", err);
  else if (boot_read(&m, classes, &s, &cfg, why, sizeof(why)) == 0)
    rc = bh__worker_run(&s, BOOT_FD, m.args, m.kwargs);
  if (rc == 2)
    fprintf(stderr, "%s\n", why);
  bh__wcfg_clear(&cfg);
  msgpack_zone_destroy(&zone);
  bh__free(body);
  return rc;
}

int
bh_worker_main(int argc, char **argv, const bh_class *const *classes) {
  (void)argc;
  (void)argv;
  if (getenv("BH_WORKER") == NULL)
    return 0;
  unsetenv("BH_WORKER");
  exit(exec_worker(classes));
}
