/* beehive_mpi.c - the MPI start-up (beehive_mpi.h): rank 0 runs the queen
 * with her door open, and the other ranks join her as workers of another
 * host (bh_join). The only MPI traffic is one broadcast from rank 0 (her
 * address and a fresh key, or why she gave up) and MPI_Finalize: tasks
 * never go through MPI, so that a rank that dies is one lost worker to
 * the hive instead of an MPI error in the queen.
 *
 * Built on the public API alone (beehive.h), into libbeehive_mpi, so that
 * libbeehive itself never links MPI. */
#include <beehive_mpi.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#define WAIT_MS 600000 /* a worker rank's wait for the queen, by default */
#define TEXT_MAX 320   /* "host:port" (a host name is at most 255 bytes) */

/* What rank 0 broadcasts, once. Fixed size: every receiver of a
 * broadcast must give the same count. */
typedef struct word {
  unsigned char listening;        /* 1: text is her address; 0: why not */
  unsigned char key[BH_KEY_LEN];  /* the hive's key, when listening */
  char text[TEXT_MAX];
} word;

/* One MPI start per process, as MPI allows one MPI_Init. */
static struct {
  bool started, told, ended;
  int rank, size;
  int64_t wait_ms;
  char host[256];                /* bh_mpi_opts.host, else "" */
  word w;                        /* the broadcast (rank 0: what she said) */
  const bh_run_opts *user;       /* bh_mpi_run's caller's options */
} S;

static int
refuse(const char *call, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "%s: ", call);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return BH_EINVAL;
}

/* The broadcast, on every rank. A nonblocking one looked at every
 * millisecond: a blocking MPI_Bcast spins on its CPU for as long as rank
 * 0 prepares (half a core per waiting rank here, where the queen needs
 * it), and this one may give up at the deadline. Returns 0, BH_ETIMEDOUT,
 * or BH_EPROTO when MPI failed. */
static int
broadcast(word *w, int64_t wait_ms) {
  const struct timespec pause = {0, 1000000};
  int64_t deadline = wait_ms < 0 ? -1 : bh_now() + wait_ms;
  MPI_Request rq;
  int done = 0;

  if (MPI_Ibcast(w, (int)sizeof(*w), MPI_BYTE, 0, MPI_COMM_WORLD, &rq) !=
      MPI_SUCCESS)
    return BH_EPROTO;
  for (;;) {
    if (MPI_Test(&rq, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
      return BH_EPROTO;
    if (done)
      return 0;
    if (deadline >= 0 && bh_now() >= deadline)
      return BH_ETIMEDOUT; /* the request stays: MPI cannot cancel one */
    nanosleep(&pause, NULL);
  }
}

static void
finalise(void) {
  if (!S.ended) {
    S.ended = true;
    MPI_Finalize();
  }
}

/* ---- a worker rank ---------------------------------------------------- */

static int
serve(const bh_class *const *classes) {
  bh_join_opts j = {.key = S.w.key};
  int rc = broadcast(&S.w, S.wait_ms), status = 2;

  if (rc == BH_ETIMEDOUT)
    fprintf(stderr, "beehive worker (rank %d): the queen (rank 0) did not "
            "listen within %lld ms (bh_mpi_opts.wait_ms)\n", S.rank,
            (long long)S.wait_ms);
  else if (rc != 0)
    fprintf(stderr, "beehive worker (rank %d): the broadcast of the "
            "queen's address failed (an MPI error)\n", S.rank);
  else if (!S.w.listening)
    fprintf(stderr, "beehive worker (rank %d): the queen (rank 0) gave up "
            "before her hive started: %.*s\n", S.rank, TEXT_MAX - 1,
            S.w.text);
  else {
    S.w.text[TEXT_MAX - 1] = '\0';
    j.address = S.w.text;
    status = bh_join(&j, classes);
  }
  OPENSSL_cleanse(S.w.key, sizeof(S.w.key));
  return status;
}

int
bh_mpi_start(int *argc, char ***argv, const bh_mpi_opts *o,
             const bh_class *const *classes, int *status) {
  static const char call[] = "bh_mpi_start";

  if (S.started)
    return refuse(call, "MPI is started once per process");
  if (status == NULL || classes == NULL)
    return refuse(call, "%s is required", status == NULL ? "status"
                                                         : "classes");
  if (o != NULL && o->wait_ms < BH_NONE)
    return refuse(call, "wait_ms %lld is out of range: it must be 0 "
                  "(600,000), BH_NONE (for ever) or more",
                  (long long)o->wait_ms);
  if (o != NULL && o->host != NULL && strlen(o->host) >= sizeof(S.host))
    return refuse(call, "host '%.40s...' is longer than %zu bytes", o->host,
                  sizeof(S.host) - 1);
  /* OpenMPI's MPI_Finalize begins with a barrier of every rank (a PMIx
   * fence). After a rank died it hung in 3 runs of 10 here, even under
   * --enable-recovery (OpenMPI 4.1.4), and with it the queen who had her
   * result. No MPI message is in flight by then, so the barrier guards
   * nothing: OpenMPI's async_mpi_finalize leaves it out. A setting of the
   * user's own wins; other MPIs ignore the variable. */
  setenv("OMPI_MCA_async_mpi_finalize", "1", 0);
  if (MPI_Init(argc, argv) != MPI_SUCCESS) {
    refuse(call, "MPI_Init failed");
    return BH_ESPAWN;
  }
  S.started = true;
  /* A dead peer fails the broadcast instead of aborting this process. */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &S.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &S.size);
  S.wait_ms = o == NULL || o->wait_ms == 0 ? WAIT_MS : o->wait_ms;
  if (o != NULL && o->host != NULL)
    snprintf(S.host, sizeof(S.host), "%s", o->host);
  if (S.rank == 0)
    return BH_MPI_QUEEN;
  *status = serve(classes);
  finalise();
  return BH_MPI_WORKER;
}

int
bh_mpi_ranks(void) {
  return S.started ? S.size : 0;
}

/* ---- rank 0 -------------------------------------------------------------- */

/* Says the word to the other ranks, once. */
static void
tell(void) {
  int rc;

  if (S.told || S.size < 2)
    return;
  S.told = true;
  if ((rc = broadcast(&S.w, S.wait_ms)) != 0)
    fprintf(stderr, "bh_mpi_run: the broadcast of the queen's address "
            "failed (%s): the ranks that did not hear it cannot join\n",
            bh_err_name(rc));
}

static bool
wildcard(const char *host, size_t n) {
  return n == 0 || (n == 1 && host[0] == '*') ||
         (n == 7 && strncmp(host, "0.0.0.0", 7) == 0) ||
         (n == 4 && strncmp(host, "[::]", 4) == 0);
}

/* The host the workers dial: bh_mpi_opts.host, $BH_MPI_HOST, the listen
 * address's host when it names one, else this host's name. */
static void
dial_host(const char *listen, char *host, size_t len) {
  const char *env = getenv("BH_MPI_HOST");
  const char *colon = listen != NULL ? strrchr(listen, ':') : NULL;
  size_t n = colon != NULL ? (size_t)(colon - listen) : 0;

  if (S.host[0] != '\0')
    snprintf(host, len, "%s", S.host);
  else if (env != NULL && *env != '\0')
    snprintf(host, len, "%s", env);
  else if (colon != NULL && !wildcard(listen, n))
    snprintf(host, len, "%.*s", (int)n, listen);
  else if (gethostname(host, len) != 0 || memchr(host, '\0', len) == NULL)
    snprintf(host, len, "localhost");
}

/* The hive's door is open at `bound` ("0.0.0.0:40312"): the workers get
 * this host and its port, and the key. */
static void
listening(void *udata, const char *bound) {
  const char *port = strrchr(bound, ':');
  char host[256];
  bool v6;

  (void)udata;
  dial_host(S.user->listen, host, sizeof(host));
  v6 = strchr(host, ':') != NULL && host[0] != '[';
  snprintf(S.w.text, sizeof(S.w.text), "%s%s%s:%s", v6 ? "[" : "", host,
           v6 ? "]" : "", port != NULL ? port + 1 : "0");
  S.w.listening = 1;
  tell();
  if (S.user->on_listen != NULL)
    S.user->on_listen(S.user->listen_udata, S.w.text);
}

/* The caller's options, with the door the other ranks join by. */
static bh_run_opts
door_opts(const bh_run_opts *o) {
  bh_run_opts d = *o;

  if (d.listen == NULL)
    d.listen = "*:0";
  if (d.remote_workers == 0)
    d.remote_workers = S.size - 1;
  if (d.workers == 0 && S.size > 1) /* alone, rank 0 needs her own */
    d.workers = BH_NONE;
  d.key = S.w.key;
  d.key_file = NULL;
  d.on_listen = listening;
  d.listen_udata = NULL;
  return d;
}

/* Releases the worker ranks that still wait for the word. */
static void
give_up(const char *why) {
  S.w.listening = 0;
  OPENSSL_cleanse(S.w.key, sizeof(S.w.key));
  snprintf(S.w.text, sizeof(S.w.text), "%s", why);
  tell();
}

static void
give_up_after(int rc, const bh_result *r) {
  char why[TEXT_MAX];

  if (r == NULL || bh_result_format(r, why, sizeof(why)) == 0)
    snprintf(why, sizeof(why), "bh_run failed: %s", bh_strerror(rc));
  give_up(why);
}

int
bh_mpi_run(const bh_run_opts *o, bh_result **out) {
  static const char call[] = "bh_mpi_run";
  bh_run_opts d;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (!S.started || S.rank != 0 || S.told || S.ended)
    return refuse(call, "%s", !S.started ? "call bh_mpi_start first"
                              : S.rank != 0 ? "only rank 0 runs the queen"
                                            : "the hive ran already");
  if (o == NULL || out == NULL)
    return refuse(call, "%s is required", o == NULL ? "o" : "out");
  if (RAND_bytes(S.w.key, sizeof(S.w.key)) != 1) {
    refuse(call, "no random key could be drawn");
    give_up("no random key could be drawn");
    finalise();
    return BH_ESPAWN;
  }
  S.user = o;
  d = door_opts(o);
  rc = bh_run(&d, out);
  if (!S.told)
    give_up_after(rc, *out);
  OPENSSL_cleanse(S.w.key, sizeof(S.w.key));
  S.user = NULL;
  finalise();
  return rc;
}

void
bh_mpi_end(const char *why) {
  if (!S.started || S.rank != 0 || S.ended)
    return;
  if (!S.told)
    give_up(why != NULL ? why : "the queen gave up");
  finalise();
}
