/* servers.c - the S3 and HTTP servers of the tests on loopback (servers.h).
 *
 * Every server runs as the child of a keeper: a process forked from the
 * caller that leaves the caller's process group (the runner kills a
 * timed-out case's group, and the keeper must outlive that to clean up),
 * becomes a child subreaper and waits on a pipe whose only write end the
 * caller holds. When that pipe reads EOF (bh_test_*_stop, or the caller's
 * death in any way) the keeper SIGKILLs the server's process group and
 * reaps every descendant, nginx's orphaned workers included; the caller
 * then reaps the keeper, so nothing is left, not even a zombie (this
 * machine's init does not always reap). The server also dies with its
 * keeper (PR_SET_PDEATHSIG).
 *
 * Readiness is read, not waited for: s3rver and the proxy print their port
 * once listening; nginx (whose port we choose, retrying when taken) is
 * polled for its stub_status until it answers. */
#include "servers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BH_TEST_SERVERS_DIR
#error "BH_TEST_SERVERS_DIR: the source tree's tests/servers"
#endif
#ifndef BH_NPM_DIR
#error "BH_NPM_DIR: where scripts/npm-deps.sh installs s3rver"
#endif

/* node and Python start in about a second; leave room for a loaded
 * machine and sanitizers. */
#define START_MS 30000
#define NGINX_TRIES 5

static const char *const S3_KEYS[][3] = {
    {"AKIDBEEHIVETEST00001", "bh/Test+Secret/0001/abcdefghijklmnopqrstu",
     NULL},
    {"ASIABEEHIVETEST00002", "bh/Test+Secret/0002/TokenKeyvwxyz0123456",
     "FwoGZXIvYXdzEBeehive/Session+Token=="},
};

const char *bh_test_servers_dir(void) { return BH_TEST_SERVERS_DIR; }

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- Processes ---------------------------------------------------------- */

/* Closes every descriptor from 3 up but the `n` in keep (sorted). */
static void close_others(const int *keep, int n) {
  unsigned from = 3;
  for (int i = 0; i < n; i++) {
    if ((unsigned)keep[i] > from)
      close_range(from, (unsigned)keep[i] - 1, 0);
    from = (unsigned)keep[i] + 1;
  }
  close_range(from, ~0U, 0);
}

static void sort3(int *v) {
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2 - i; j++)
      if (v[j] > v[j + 1]) {
        int t = v[j];
        v[j] = v[j + 1];
        v[j + 1] = t;
      }
}

/* In the server's process: its own group, death with the keeper, stdout to
 * `out`, default signal handling, nothing else inherited. */
static void server_exec(char *const argv[], int out, pid_t keeper) {
  sigset_t none;
  int devnull;

  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != keeper)
    _exit(127);
  devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0)
    dup2(devnull, 0);
  dup2(out, 1);
  close_range(3, ~0U, 0);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  execvp(argv[0], argv);
  fprintf(stderr, "servers: exec %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

static void rm_tree(char *dir);

/* The keeper (see the top of the file); last it removes `dir` (if not
 * NULL), so that a test that dies leaves no files either. Never returns. */
static void keeper_main(int life, int out, int report, char *const argv[],
                        char *dir) {
  int keep[3] = {life, out, report};
  pid_t me = getpid(), server;
  char c;

  setpgid(0, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  sort3(keep);
  close_others(keep, 3);
  server = fork();
  if (server == 0)
    server_exec(argv, out, me);
  if (server > 0)
    setpgid(server, server); /* also done by the child: whoever runs first */
  if (write(report, &server, sizeof(server)) != (ssize_t)sizeof(server))
    server = -1;
  close(report);
  close(out);
  while (server > 0) {
    ssize_t n = read(life, &c, 1);
    if (n == 0 || (n < 0 && errno != EINTR))
      break;
  }
  if (server > 0)
    kill(-server, SIGKILL);
  while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
    ;
  if (dir != NULL)
    rm_tree(dir);
  _exit(0);
}

static void proc_clear(bh_test_proc *p) {
  p->keeper = p->pid = 0;
  p->life = p->out = -1;
}

/* Starts argv[0] (found on PATH) under a keeper, which removes `dir` (if not
 * NULL) when it ends; p->out reads the server's stdout. */
static int proc_start(bh_test_proc *p, char *const argv[], char *dir) {
  int life[2], out[2], rep[2];
  pid_t keeper, server = -1;

  proc_clear(p);
  if (pipe2(life, O_CLOEXEC) != 0)
    goto fail_life;
  if (pipe2(out, O_CLOEXEC) != 0)
    goto fail_out;
  if (pipe2(rep, O_CLOEXEC) != 0)
    goto fail_rep;
  keeper = fork();
  if (keeper == 0)
    keeper_main(life[0], out[1], rep[1], argv, dir);
  close(life[0]);
  close(out[1]);
  close(rep[1]);
  if (keeper > 0 && read(rep[0], &server, sizeof(server)) < 0)
    server = -1;
  close(rep[0]);
  p->keeper = keeper;
  p->pid = server;
  p->life = life[1];
  p->out = out[0];
  if (keeper > 0 && server > 0)
    return 0;
  fprintf(stderr, "servers: cannot start %s: %s\n", argv[0],
          strerror(errno));
  if (keeper < 0) { /* no keeper to stop: the pipes are all there is */
    close(life[1]);
    close(out[0]);
    proc_clear(p);
  }
  return -1;

fail_rep:
  close(out[0]);
  close(out[1]);
fail_out:
  close(life[0]);
  close(life[1]);
fail_life:
  fprintf(stderr, "servers: pipe: %s\n", strerror(errno));
  return -1;
}

/* Closes the keeper's pipe and reaps it: the server and all it started are
 * gone when this returns. */
static void proc_stop(bh_test_proc *p) {
  if (p->keeper > 0) {
    close(p->life);
    close(p->out);
    while (waitpid(p->keeper, NULL, 0) < 0 && errno == EINTR)
      ;
  }
  proc_clear(p);
}

/* One line of the server's stdout into buf (without the newline) by the
 * deadline: 0, or -1 on EOF (the server died) or timeout. */
static int read_line(bh_test_proc *p, char *buf, size_t len, long deadline) {
  size_t n = 0;

  for (;;) {
    struct pollfd pfd = {.fd = p->out, .events = POLLIN};
    long left = deadline - now_ms();
    int ready = left > 0 ? poll(&pfd, 1, (int)left) : 0;
    ssize_t r;

    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0)
      return -1;
    r = read(p->out, buf + n, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    if (buf[n] == '\n' || n + 2 >= len) {
      buf[buf[n] == '\n' ? n : n + 1] = '\0';
      return 0;
    }
    n++;
  }
}

/* Reads lines until "listening on 127.0.0.1:PORT" (s3rver and the proxy
 * print it): the port, or -1. */
static int read_port(bh_test_proc *p, const char *what) {
  long deadline = now_ms() + START_MS;
  char line[256];

  while (read_line(p, line, sizeof(line), deadline) == 0) {
    const char *at = strstr(line, "listening on 127.0.0.1:");
    if (at != NULL)
      return atoi(strrchr(at, ':') + 1);
  }
  fprintf(stderr, "servers: %s did not start (its stderr is above)\n", what);
  return -1;
}

/* ---- Files -------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void rm_tree(char *dir) {
  if (dir[0] != '\0')
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  dir[0] = '\0';
}

/* A fresh directory under $TMPDIR (or /tmp) named bh-<what>-XXXXXX. */
static int make_dir(char *dir, size_t len, const char *what) {
  const char *tmp = getenv("TMPDIR");

  snprintf(dir, len, "%s/bh-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
  if (mkdtemp(dir) != NULL)
    return 0;
  fprintf(stderr, "servers: mkdtemp %s: %s\n", dir, strerror(errno));
  dir[0] = '\0';
  return -1;
}

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  int ok = f != NULL && fputs(text, f) >= 0;

  if (f != NULL && fclose(f) != 0)
    ok = 0;
  if (!ok)
    fprintf(stderr, "servers: write %s: %s\n", path, strerror(errno));
  return ok ? 0 : -1;
}

/* ---- HTTP client -------------------------------------------------------- */

static int connect_local(int port, long deadline) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  struct pollfd pfd;
  int fd, err = 0;
  socklen_t elen = sizeof(err);

  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
    return fd;
  pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
  if (errno == EINPROGRESS && poll(&pfd, 1, (int)(deadline - now_ms())) > 0 &&
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
    return fd;
  close(fd);
  return -1;
}

/* Sends `req` on fd and reads the answer to EOF into buf (cut, NUL-ended):
 * its length, or -1. */
static ssize_t exchange(int fd, const char *req, char *buf, size_t len,
                        long deadline) {
  size_t n = 0, sent = 0, rlen = strlen(req);

  while (sent < rlen) {
    ssize_t w = send(fd, req + sent, rlen - sent, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return -1;
    sent += w > 0 ? (size_t)w : 0;
  }
  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char sink[4096];
    long left = deadline - now_ms();
    ssize_t r;

    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
      return -1;
    r = n + 1 < len ? read(fd, buf + n, len - n - 1) : read(fd, sink, 4096);
    if (r == 0)
      break;
    if (r < 0 && errno != EAGAIN && errno != EINTR)
      return -1;
    if (r > 0 && n + 1 < len)
      n += (size_t)r;
  }
  buf[n] = '\0';
  return (ssize_t)n;
}

int bh_test_http_get(int port, const char *path, char *body, size_t bodylen,
                     int timeout_ms) {
  long deadline = now_ms() + timeout_ms;
  char req[512], resp[16384] = "";
  const char *start;
  int fd, status = -1;

  snprintf(req, sizeof(req),
           "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
           "\r\n",
           path, port);
  fd = connect_local(port, deadline);
  if (fd < 0)
    return -1;
  if (exchange(fd, req, resp, sizeof(resp), deadline) >= 0 &&
      sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
    status = -1;
  close(fd);
  start = strstr(resp, "\r\n\r\n");
  if (status >= 0 && body != NULL && bodylen > 0)
    snprintf(body, bodylen, "%s", start ? start + 4 : "");
  return status;
}

/* The number after `name` in `text` (as in "connections": 3). */
static int number_after(const char *text, const char *name, long *out) {
  const char *at = strstr(text, name);

  if (at == NULL)
    return -1;
  at += strlen(name);
  while (*at == '"' || *at == ':' || *at == ' ')
    at++;
  *out = strtol(at, NULL, 10);
  return 0;
}

/* ---- S3 ----------------------------------------------------------------- */

static int s3_write_keys(bh_test_s3 *s) {
  char path[300], text[512] = "";

  for (size_t i = 0; i < sizeof(S3_KEYS) / sizeof(S3_KEYS[0]); i++) {
    size_t n = strlen(text);
    snprintf(text + n, sizeof(text) - n, "%s %s %s\n", S3_KEYS[i][0],
             S3_KEYS[i][1], S3_KEYS[i][2] ? S3_KEYS[i][2] : "");
  }
  snprintf(s->access_key, sizeof(s->access_key), "%s", S3_KEYS[0][0]);
  snprintf(s->secret_key, sizeof(s->secret_key), "%s", S3_KEYS[0][1]);
  snprintf(s->token_access_key, sizeof(s->token_access_key), "%s",
           S3_KEYS[1][0]);
  snprintf(s->token_secret_key, sizeof(s->token_secret_key), "%s",
           S3_KEYS[1][1]);
  snprintf(s->session_token, sizeof(s->session_token), "%s", S3_KEYS[1][2]);
  snprintf(path, sizeof(path), "%s/keys", s->dir);
  return write_file(path, text);
}

/* s3rver on a port of the OS's choosing, data in dir/data, silent. Run with
 * the legacy OpenSSL provider: its ListObjectsV2 continuation tokens are
 * DES-encrypted, which OpenSSL 3 refuses otherwise (a 500 InternalError on
 * every truncated listing). */
static int s3_start_store(bh_test_s3 *s, const char *const *buckets) {
  char script[512], data[300];
  char *argv[48] = {(char *)"node", (char *)"--openssl-legacy-provider",
                    script, (char *)"-d", data, (char *)"-a",
                    (char *)"127.0.0.1", (char *)"-p", (char *)"0",
                    (char *)"-s"};
  int n = 10, port;

  snprintf(script, sizeof(script), "%s/node_modules/s3rver/bin/s3rver.js",
           BH_NPM_DIR);
  snprintf(data, sizeof(data), "%s/data", s->dir);
  if (access(script, R_OK) != 0) {
    fprintf(stderr, "servers: no %s: run scripts/npm-deps.sh (make test "
            "does)\n", script);
    return -1;
  }
  for (int i = 0; buckets != NULL && buckets[i] != NULL && n < 46; i++) {
    argv[n++] = (char *)"--configure-bucket";
    argv[n++] = (char *)buckets[i];
  }
  argv[n] = NULL;
  if (proc_start(&s->s3rver, argv, s->dir) != 0 ||
      (port = read_port(&s->s3rver, "s3rver")) < 0)
    return -1;
  snprintf(s->store, sizeof(s->store), "http://127.0.0.1:%d", port);
  return 0;
}

static int s3_start_proxy(bh_test_s3 *s) {
  char script[512], keys[300];
  char *argv[] = {(char *)BH_TEST_PYTHON, script, (char *)"--upstream",
                  s->store, (char *)"--keys", keys, (char *)"--region",
                  s->region, NULL};
  int port;

  snprintf(script, sizeof(script), "%s/s3_proxy.py", bh_test_servers_dir());
  snprintf(keys, sizeof(keys), "%s/keys", s->dir);
  if (proc_start(&s->proxy, argv, NULL) != 0 ||
      (port = read_port(&s->proxy, "s3_proxy.py")) < 0)
    return -1;
  snprintf(s->endpoint, sizeof(s->endpoint), "http://127.0.0.1:%d", port);
  return 0;
}

int bh_test_s3_start(bh_test_s3 *s, const char *const *buckets) {
  memset(s, 0, sizeof(*s));
  proc_clear(&s->s3rver);
  proc_clear(&s->proxy);
  snprintf(s->region, sizeof(s->region), "us-east-1");
  if (make_dir(s->dir, sizeof(s->dir), "s3") != 0 || s3_write_keys(s) != 0 ||
      s3_start_store(s, buckets) != 0 || s3_start_proxy(s) != 0) {
    bh_test_s3_stop(s);
    return -1;
  }
  return 0;
}

void bh_test_s3_stop(bh_test_s3 *s) {
  proc_stop(&s->proxy);
  proc_stop(&s->s3rver);
  rm_tree(s->dir);
}

int bh_test_s3_connections(bh_test_s3 *s, long *accepted, long *requests) {
  char body[4096];
  long conns, reqs;
  int port = atoi(strrchr(s->endpoint, ':') + 1);

  s->own_queries++; /* this query's connection counts in the answer */
  if (bh_test_http_get(port, "/__proxy/stats", body, sizeof(body), 5000) !=
          200 ||
      number_after(body, "\"connections\"", &conns) != 0 ||
      number_after(body, "\"requests\"", &reqs) != 0) {
    fprintf(stderr, "servers: no stats from the proxy\n");
    return -1;
  }
  if (accepted != NULL)
    *accepted = conns - s->own_queries;
  if (requests != NULL)
    *requests = reqs; /* the proxy leaves its stats requests out */
  return 0;
}

int bh_test_s3_throttle(bh_test_s3 *s, long bytes_per_s) {
  char path[64];
  int port = atoi(strrchr(s->endpoint, ':') + 1);

  s->own_queries++;
  snprintf(path, sizeof(path), "/__proxy/throttle?rate=%ld", bytes_per_s);
  if (bh_test_http_get(port, path, NULL, 0, 5000) != 200) {
    fprintf(stderr, "servers: the proxy did not take %s\n", path);
    return -1;
  }
  return 0;
}

int bh_test_s3_cut(bh_test_s3 *s, long *responses, long *bytes) {
  char body[4096];
  long n, b;
  int port = atoi(strrchr(s->endpoint, ':') + 1);

  s->own_queries++;
  if (bh_test_http_get(port, "/__proxy/stats", body, sizeof(body), 5000) !=
          200 ||
      number_after(body, "\"cut\"", &n) != 0 ||
      number_after(body, "\"cut_bytes\"", &b) != 0) {
    fprintf(stderr, "servers: no stats from the proxy\n");
    return -1;
  }
  if (responses != NULL)
    *responses = n;
  if (bytes != NULL)
    *bytes = b;
  return 0;
}

/* ---- HTTP (nginx) ------------------------------------------------------- */

long bh_test_raise_nofile(long want) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  if (rl.rlim_max != RLIM_INFINITY && (rlim_t)want > rl.rlim_max)
    want = (long)rl.rlim_max;
  if ((rlim_t)want > rl.rlim_cur) {
    rl.rlim_cur = (rlim_t)want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      return -1;
  }
  return (long)rl.rlim_cur;
}

/* A port free now (the OS's pick, released; nginx may lose it to a race,
 * then we try another). */
int bh_test_free_port(void) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t alen = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

/* The value of template name `name` (between @s), or NULL. */
static const char *conf_value(const char *const vars[][2], const char *name,
                              size_t len) {
  for (int i = 0; vars[i][0] != NULL; i++)
    if (strlen(vars[i][0]) == len && memcmp(vars[i][0], name, len) == 0)
      return vars[i][1];
  return NULL;
}

/* tests/servers/nginx.conf.in with its @NAMES@ filled in, to `out`. */
static int conf_write(const char *out, const char *const vars[][2]) {
  char in[512], line[1024];
  FILE *f, *g;
  int err = 0;

  snprintf(in, sizeof(in), "%s/nginx.conf.in", bh_test_servers_dir());
  f = fopen(in, "r");
  g = fopen(out, "w");
  while (f != NULL && g != NULL && fgets(line, sizeof(line), f) != NULL) {
    const char *p = line, *a, *b, *v;
    while ((a = strchr(p, '@')) != NULL && (b = strchr(a + 1, '@')) != NULL &&
           (v = conf_value(vars, a + 1, (size_t)(b - a - 1))) != NULL) {
      fprintf(g, "%.*s%s", (int)(a - p), p, v);
      p = b + 1;
    }
    fputs(p, g);
  }
  if (f == NULL || g == NULL || ferror(f))
    err = -1;
  if (f != NULL)
    fclose(f);
  if (g != NULL && fclose(g) != 0)
    err = -1;
  if (err != 0)
    fprintf(stderr, "servers: cannot write %s from %s\n", out, in);
  return err;
}

static int http_conf(bh_test_http *h, const char *docroot, int workers,
                     const char *also) {
  char path[300], port[16], nworkers[16], nofile[24], conns[24], tls[1024];
  char more[96];
  long limit = bh_test_raise_nofile(1L << 20);
  const char *const vars[][2] = {
      /* As root the workers would run as nobody, who may not read the
       * test's files. */
      {"USER", geteuid() == 0 ? "user root;" : ""},
      {"WORKERS", nworkers},
      {"NOFILE", nofile},
      {"CONNECTIONS", conns},
      {"RUNDIR", h->dir},
      {"PORT", port},
      {"TLS", tls},
      {"ALSO", more},
      {"DOCROOT", docroot},
      {NULL, NULL}};

  snprintf(port, sizeof(port), "%d", h->port);
  tls[0] = '\0';
  if (h->tls_port > 0)
    snprintf(tls, sizeof(tls),
             "listen 127.0.0.1:%d ssl http2; ssl_certificate %s; "
             "ssl_certificate_key %s/key.pem;",
             h->tls_port, h->ca_file, h->dir);
  more[0] = '\0';
  if (also != NULL)
    snprintf(more, sizeof(more), "listen %s:%d backlog=4096 reuseport;", also,
             h->port);
  snprintf(nworkers, sizeof(nworkers), "%d", workers);
  snprintf(nofile, sizeof(nofile), "%ld", limit);
  /* Each worker may hold nearly all its descriptors as connections. */
  snprintf(conns, sizeof(conns), "%ld", limit > 256 ? limit - 64 : limit);
  snprintf(path, sizeof(path), "%s/nginx.conf", h->dir);
  return conf_write(path, vars);
}

/* The accepts and requests of a stub_status page: 0, or -1. */
static int stub_counts(const char *body, long *accepts, long *requests) {
  const char *at = strstr(body, "requests\n");
  long handled;

  if (at == NULL ||
      sscanf(at + 9, "%ld %ld %ld", accepts, &handled, requests) != 3)
    return -1;
  return 0;
}

/* 0 once nginx answers its stub_status (its counts so far are the
 * fixture's own); 1 if it died (a port taken: try
 * another); -1 on timeout. */
static int http_wait(bh_test_http *h) {
  long deadline = now_ms() + START_MS;
  char body[1024];

  while (now_ms() < deadline) {
    struct pollfd pfd = {.fd = h->nginx.out, .events = POLLIN};
    if (poll(&pfd, 1, 0) > 0) /* nginx writes nothing: EOF, it exited */
      return 1;
    if (bh_test_http_get(h->port, "/__status", body, sizeof(body), 1000) ==
        200)
      return stub_counts(body, &h->own_accepts, &h->own_requests);
    poll(NULL, 0, 10); /* not a synchronisation: a retry pace */
  }
  return -1;
}

/* Copies nginx's error log to stderr (it goes with the run directory). */
static void http_print_log(bh_test_http *h) {
  char path[300], line[512];
  FILE *f;

  snprintf(path, sizeof(path), "%s/error.log", h->dir);
  f = fopen(path, "r");
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    fprintf(stderr, "nginx: %s", line);
  if (f != NULL)
    fclose(f);
}

/* A self-signed certificate for 127.0.0.1 and localhost, valid a day:
 * dir/key.pem and dir/cert.pem (h->ca_file), made by the openssl command
 * (its stderr says why it failed). 0, or -1. */
static int http_make_cert(bh_test_http *h) {
  char key[300];
  char *argv[] = {(char *)"openssl", (char *)"req", (char *)"-x509",
                  (char *)"-newkey", (char *)"ec", (char *)"-pkeyopt",
                  (char *)"ec_paramgen_curve:prime256v1", (char *)"-nodes",
                  (char *)"-days", (char *)"1", (char *)"-subj",
                  (char *)"/CN=localhost", (char *)"-addext",
                  (char *)"subjectAltName=IP:127.0.0.1,DNS:localhost",
                  (char *)"-keyout", key, (char *)"-out", h->ca_file, NULL};
  pid_t pid;
  int st = -1;

  snprintf(key, sizeof(key), "%s/key.pem", h->dir);
  snprintf(h->ca_file, sizeof(h->ca_file), "%s/cert.pem", h->dir);
  pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);

    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "servers: exec openssl: %s\n", strerror(errno));
    _exit(127);
  }
  while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return 0;
  fprintf(stderr, "servers: openssl could not make %s\n", h->ca_file);
  h->ca_file[0] = '\0';
  return -1;
}

/* One try: a fresh run directory (its keeper removes it), free ports (the
 * TLS one too, with its certificate), the config, nginx. 0 once it
 * answers, 1 if it died (a port taken, or both picks the same), -1 on
 * other failures. */
static int http_try(bh_test_http *h, const char *docroot, int workers,
                    int tls, const char *also) {
  char conf[300], log[300];
  char *argv[] = {(char *)"/usr/sbin/nginx", (char *)"-e", log, (char *)"-p",
                  h->dir, (char *)"-c", conf, NULL};

  if (make_dir(h->dir, sizeof(h->dir), "nginx") != 0)
    return -1;
  snprintf(conf, sizeof(conf), "%s/nginx.conf", h->dir);
  snprintf(log, sizeof(log), "%s/error.log", h->dir);
  h->port = bh_test_free_port();
  h->tls_port = tls ? bh_test_free_port() : 0;
  if (h->port < 0 || h->tls_port < 0 || (tls && http_make_cert(h) != 0) ||
      http_conf(h, docroot, workers, also) != 0 ||
      proc_start(&h->nginx, argv, h->dir) != 0)
    return -1;
  return http_wait(h);
}

static int http_start(bh_test_http *h, const char *docroot, int workers,
                      int tls, const char *also) {
  int r = 1;

  memset(h, 0, sizeof(*h));
  proc_clear(&h->nginx);
  if (workers <= 0)
    workers = 2;
  for (int i = 0; i < NGINX_TRIES && r == 1; i++) {
    if (i > 0) /* the port was taken between our pick and nginx's bind */
      bh_test_http_stop(h);
    r = http_try(h, docroot, workers, tls, also);
  }
  if (r != 0) {
    fprintf(stderr, "servers: nginx did not start\n");
    http_print_log(h);
    bh_test_http_stop(h);
    return -1;
  }
  snprintf(h->base, sizeof(h->base), "http://127.0.0.1:%d", h->port);
  if (tls)
    snprintf(h->tls_base, sizeof(h->tls_base), "https://127.0.0.1:%d",
             h->tls_port);
  return 0;
}

int bh_test_http_start(bh_test_http *h, const char *docroot, int workers) {
  return http_start(h, docroot, workers, 0, NULL);
}

int bh_test_http_start_also(bh_test_http *h, const char *docroot,
                            int workers, const char *also) {
  return http_start(h, docroot, workers, 0, also);
}

int bh_test_http_start_tls(bh_test_http *h, const char *docroot,
                           int workers) {
  return http_start(h, docroot, workers, 1, NULL);
}

void bh_test_http_stop(bh_test_http *h) {
  proc_stop(&h->nginx);
  rm_tree(h->dir); /* the certificate and its key with it */
  h->ca_file[0] = '\0';
}

int bh_test_http_connections(bh_test_http *h, long *accepted,
                             long *requests) {
  char body[1024];
  long a, r;

  /* stub_status counts the query asking it */
  h->own_accepts++;
  h->own_requests++;
  if (bh_test_http_get(h->port, "/__status", body, sizeof(body), 5000) !=
          200 ||
      stub_counts(body, &a, &r) != 0) {
    fprintf(stderr, "servers: no stub_status from nginx\n");
    return -1;
  }
  if (accepted != NULL)
    *accepted = a - h->own_accepts;
  if (requests != NULL)
    *requests = r - h->own_requests;
  return 0;
}
