/* spawn.c - the reference's subprocess_workerbee() up to the new process:
 * a worker in a daemon subprocess with its private channel, started by
 * fork (default) or by fork+exec of this same program in worker mode.
 * What the process then runs is worker.c's: for a fork, the spawn's
 * `run`; after an exec, bh_worker_main. */
#include "hive/spawn.h"
#include "runtime/fiber.h"
#include "value/blob.h"
#include "proc/lastword.h"
#include "hive/program.h"
#include "runtime/overflow.h"
#include "runtime/sig.h"
#include "runtime/turn.h"
#include "transport/transport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


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
        st.st_dev == inherited->dev && st.st_ino == inherited->ino)
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
  _exit(s->run(s, fd,
                       s->init_args ? bh_value_object(s->init_args)
                                    : &empty_array,
                       s->init_kwargs ? bh_value_object(s->init_kwargs)
                                      : &empty_map));
}

/* The channel goes to BH__BOOT_FD and the last-words page (lw, -1: none) to
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
  if (fd != BH__BOOT_FD) {
    if (dup2(fd, BH__BOOT_FD) < 0)
      _exit(127);
    fd = BH__BOOT_FD;
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
  sc.err = bh__unix_pair(sc.sv);
  if (sc.err == 0 && last_words != NULL)
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

