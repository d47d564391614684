/* spawn.c - the reference's subprocess_workerbee(): a worker bee in a
 * daemon subprocess with its private channel, started by fork (default) or
 * by fork+exec of this same program in worker mode. Also the worker
 * process's main loop (bh__worker_run) and the exec entry point. */
#include "bee.h"
#include "blob.h"
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

static int
worker_start(worker_run *w, const bh_spawn_opts *o,
             const msgpack_object *args, const msgpack_object *kwargs) {
  char *err_text = NULL;
  int rc = bh__bee_init(w->bee, args, kwargs, &err_text);

  if (rc == 0 && o->cls->worker_class != NULL)
    rc = bh__queen_setup(w->bee, o->cls->worker_class, NULL, NULL,
                         o->cls->workers, 0, o->start, NULL);
  if (rc != 0) {
    w->status = 1;
    bh__bee_die_killed(w->bee, "InitError",
                       err_text ? err_text : bh_strerror(rc));
  }
  bh__free(err_text);
  return rc;
}

int
bh__worker_run(const bh_spawn_opts *o, int fd, const msgpack_object *args,
               const msgpack_object *kwargs) {
  worker_run w = {.status = 0};
  bh_context ctx = {.async = 1, .s3_profile = o->s3_profile};
  bh__bee_opts bo = {.cls = o->cls, .id = o->id,
                     .max_conc = bh__conc_norm(o->max_concurrency),
                     .prefetch = o->prefetch,
                     .log = o->logger, .ctx = &ctx, .max_frame = o->max_frame,
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
  worker_start(&w, o, args, kwargs);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  bh__bee_free(w.bee);
  bh__turn_finish(&w.loop);
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
 * inherited but the channel. */
static void
child_setup(pid_t parent, int chan, const open_fd *inherited) {
  struct stat st;

  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(1); /* the parent died before the line above took effect */
  for (; inherited->fd >= 0; inherited++)
    if (inherited->fd != chan && fstat(inherited->fd, &st) == 0 &&
        st.st_dev == inherited->dev && st.st_ino == inherited->ino)
      close(inherited->fd);
}

static void
fork_child(const bh_spawn_opts *o, int fd, pid_t parent,
           const open_fd *inherited) {
  static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
  static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

  child_setup(parent, fd, inherited);
  bh__free((void *)inherited); /* the parent's copy is freed there */
  bh__turn_forget();
  bh__blob_forget_all();
  _exit(bh__worker_run(o, fd,
                       o->init_args ? bh_value_object(o->init_args)
                                    : &empty_array,
                       o->init_kwargs ? bh_value_object(o->init_kwargs)
                                      : &empty_map));
}

static void
exec_child(int fd, pid_t parent, const open_fd *inherited) {
  char *argv[] = {(char *)"beehive-worker", NULL};

  if (fd != BOOT_FD) {
    if (dup2(fd, BOOT_FD) < 0)
      _exit(127);
    fd = BOOT_FD;
  } else {
    int fl = fcntl(fd, F_GETFD);

    fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
  }
  child_setup(parent, fd, inherited);
  setenv("BH_WORKER", "1", 1);
  execv("/proc/self/exe", argv);
  _exit(127);
}

/* The bootstrap frame of an exec start (docs/PROTOCOL.md). */
static int
write_bootstrap(int fd, const bh_spawn_opts *o) {
  static const msgpack_object empty_array = {.type = MSGPACK_OBJECT_ARRAY};
  static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};
  bh__buf b = {0};
  msgpack_packer pk;
  size_t off = 0, body;
  int rc;

  bh__buf_append(&b, "\0\0\0\0", BH__FRAME_HDR);
  msgpack_packer_init(&pk, &b, bh__buf_write);
  rc = bh_pack(&pk, "{s:s s:s s:I s:i s:i s:o s:o s:s s:U}", "msg_type",
               "bootstrap", "class", o->cls->name, "id", o->id,
               "max_concurrency", bh__conc_norm(o->max_concurrency), "prefetch",
               o->prefetch > 0 ? o->prefetch : 0, "init_args",
               o->init_args ? bh_value_object(o->init_args) : &empty_array,
               "init_kwargs",
               o->init_kwargs ? bh_value_object(o->init_kwargs) : &empty_map,
               "s3_profile", o->s3_profile, "max_frame",
               (uint64_t)(o->max_frame ? o->max_frame : BH__DEFAULT_MAX_FRAME));
  body = b.len - BH__FRAME_HDR;
  b.data[0] = (char)(body >> 24);
  b.data[1] = (char)(body >> 16);
  b.data[2] = (char)(body >> 8);
  b.data[3] = (char)body;
  while (rc == 0 && off < b.len) {
    ssize_t n = write(fd, b.data + off, b.len - off);

    if (n < 0 && errno != EINTR)
      rc = -errno;
    else if (n > 0)
      off += (size_t)n;
  }
  bh__buf_free(&b);
  return rc;
}

typedef struct spawn_call {
  const bh_spawn_opts *o;
  int sv[2];
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
  if (sc->o->start == BH_START_EXEC)
    exec_child(sc->sv[1], parent, inherited);
  fork_child(sc->o, sc->sv[1], parent, inherited);
}

int
bh_subprocess_workerbee(const bh_spawn_opts *o, pid_t *pid, int *channel) {
  spawn_call sc = {.o = o};
  char why[256];

  if (o == NULL || pid == NULL || channel == NULL)
    return BH_EINVAL;
  if (bh__spawn_opts_check(o, "bh_subprocess_workerbee", why,
                           sizeof(why)) != 0) {
    bh_log(o->logger, BH_LOG_ERROR, "%s", why);
    return BH_EINVAL;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sc.sv) != 0)
    return -errno;
  fflush(NULL); /* stdio buffers must not be written twice */
  bh__fiber_call_main(do_fork, &sc);
  close(sc.sv[1]);
  if (sc.err == 0 && o->start == BH_START_EXEC)
    sc.err = write_bootstrap(sc.sv[0], o);
  if (sc.err != 0) {
    close(sc.sv[0]);
    if (sc.pid > 0) {
      kill(sc.pid, SIGKILL);
      waitpid(sc.pid, NULL, 0);
    }
    return sc.err;
  }
  *pid = sc.pid;
  *channel = sc.sv[0];
  return 0;
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

/* Reads the bootstrap frame; returns owned or NULL. */
static bh_value *
read_bootstrap(int fd) {
  unsigned char hdr[BH__FRAME_HDR];
  size_t n;
  char *body;
  bh_value *v = NULL;

  if (read_all(fd, (char *)hdr, sizeof(hdr)) != 0)
    return NULL;
  n = bh__wire_frame_len(hdr);
  if (n > BH__DEFAULT_MAX_FRAME || (body = bh__malloc(n ? n : 1)) == NULL)
    return NULL;
  if (read_all(fd, body, n) == 0)
    v = bh_value_from_bytes(body, n);
  bh__free(body);
  return v;
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

/* The bootstrap's values must be in the ranges bh_subprocess_workerbee()
 * checks: a parent other than beehive may send anything. True if not,
 * with why in err. */
static bool
boot_bad(const bh_spawn_opts *o, const msgpack_object *args,
         const msgpack_object *kwargs, char *err, size_t len) {
  if (args->type != MSGPACK_OBJECT_ARRAY ||
      kwargs->type != MSGPACK_OBJECT_MAP) {
    snprintf(err, len, BAD_BOOT ": init_args must be an array and "
             "init_kwargs a map");
    return true;
  }
  return bh__spawn_opts_check(o, BAD_BOOT, err, len) != 0;
}

static int
exec_worker(const bh_class *const *classes) {
  bh_value *boot = read_bootstrap(BOOT_FD);
  const msgpack_object *args, *kwargs, *prof;
  bh_spawn_opts o = {.start = BH_START_EXEC};
  const char *cname, *kind;
  size_t clen, klen;
  char profile[256] = "", err[160], why[320];
  uint64_t max_frame;
  int rc;

  if (boot == NULL) {
    fprintf(stderr, "beehive worker: no bootstrap frame on fd %d\n", BOOT_FD);
    return 2;
  }
  rc = bh_unpack(bh_value_object(boot), err, sizeof(err),
                 "{s:s# s:s# s:I s:i s?:i s:o s:o s:o s:U}", "msg_type",
                 &kind, &klen, "class", &cname, &clen, "id", &o.id,
                 "max_concurrency", &o.max_concurrency, "prefetch",
                 &o.prefetch, "init_args", &args,
                 "init_kwargs", &kwargs, "s3_profile", &prof, "max_frame",
                 &max_frame);
  o.cls = rc == 0 ? find_class(classes, cname, clen) : NULL;
  if (o.cls == NULL)
    snprintf(why, sizeof(why), BAD_BOOT ": %s", rc ? err : "unknown class");
  else
    o.max_frame = (size_t)max_frame;
  if (o.cls == NULL || boot_bad(&o, args, kwargs, why, sizeof(why))) {
    fprintf(stderr, "%s\n", why);
    bh_value_free(boot);
    return 2;
  }
  if (prof->type == MSGPACK_OBJECT_STR && prof->via.str.size < sizeof(profile))
    memcpy(profile, prof->via.str.ptr, prof->via.str.size);
  o.s3_profile = profile[0] ? profile : NULL;
  rc = bh__worker_run(&o, BOOT_FD, args, kwargs);
  bh_value_free(boot);
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
