/* http.c - a bee's HTTP session on its libuv loop (http.h).
 *
 * curl's multi_socket interface tells us which sockets to watch and when
 * to wake it (socket and timer callbacks); libuv watches them
 * (uv_poll_t) and its callbacks hand the events back with
 * curl_multi_socket_action(). curl runs only from libuv callbacks and
 * from the calls a fiber makes to start or abort a transfer, never from
 * inside one of its own callbacks. */
#include "io/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "value/blob.h"
#include "io/hostq.h"
#include "base/base.h"

#define DEFAULT_MAX_RESPONSE ((size_t)64 << 20)
#define DEFAULT_HOST_CONNS 1024L
#define FIRST_CHUNK ((size_t)16 << 10)
#define HOST_KEY_MAX 512

struct bh_http {
  uv_loop_t *loop;
  CURLM *multi;          /* made on the first transfer */
  uv_timer_t timer;      /* curl's timeout; the session is freed with it */
  bh__http_opts o;
  bh__hostq *hosts;      /* transfers per host: holding a slot or waiting */
  bh__xfer *running;     /* a list (waiting ones too), for bh__http_free */
  size_t n_running;
  uint64_t connects;
  bool closing;          /* bh__http_free: no transfer joins any more */
};

struct bh__xfer {
  bh__http *h;
  CURL *easy;
  struct curl_slist *hdrs;
  bh__xfer_res res;
  bh__xfer_cb cb;
  void *udata;
  char *what;            /* "GET http://...", for messages */
  size_t max;
  bh__hostq_wait slot;   /* in curl's multi handle while holding one */
  int64_t timeout_ms;    /* as asked; 0: none */
  uint64_t asked_at;     /* loop time at start, when the timeout begins */
  uv_timer_t *wait_timer; /* the timeout while waiting for a slot */
  bool too_big, no_mem, done;
  bh__xfer *prev, *next;
  char errbuf[CURL_ERROR_SIZE];
};

/* A socket curl asked us to watch. */
typedef struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  bh__http *h;
} sock;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void
global_init(void) {
  global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- results ------------------------------------------------------------ */

void
bh__xfer_res_clear(bh__xfer_res *r) {
  size_t i;

  for (i = 0; i < r->n_hdrs; i++) {
    bh__free(r->hdrs[i].name);
    bh__free(r->hdrs[i].value);
  }
  bh__free(r->hdrs);
  if (r->blob)
    bh_blob_free(r->body);
  else
    bh__free(r->body);
  bh__free(r->errmsg);
  memset(r, 0, sizeof(*r));
}

const char *
bh__xfer_res_header(const bh__xfer_res *r, const char *name) {
  size_t i = r->n_hdrs;

  while (i-- > 0)
    if (strcasecmp(r->hdrs[i].name, name) == 0)
      return r->hdrs[i].value;
  return NULL;
}

/* ---- curl's callbacks on a transfer ------------------------------------- */

/* Makes room for n more bytes. The first time, the announced length
 * decides: a body of at least the blob threshold is received straight
 * into shared memory, so that returning it copies nothing. */
static int
body_room(bh__xfer *x, size_t n) {
  bh__xfer_res *r = &x->res;
  curl_off_t cl = -1;
  size_t cap;
  char *p;

  if (r->len + n + 1 <= r->cap)
    return 0;
  if (r->body == NULL &&
      curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) ==
          CURLE_OK &&
      cl > 0 && (size_t)cl >= n && (size_t)cl <= x->max) {
    cap = (size_t)cl + 1;
    if (bh__blob_threshold() > 0 && (size_t)cl >= bh__blob_threshold() &&
        (r->body = bh_blob_alloc(cap)) != NULL) {
      r->blob = true;
      r->cap = cap;
      return 0;
    }
  } else {
    cap = r->cap ? r->cap : FIRST_CHUNK;
  }
  while (cap < r->len + n + 1)
    cap *= 2;
  if (r->blob) { /* more than announced: leave the shared memory */
    if ((p = bh__malloc(cap)) == NULL)
      return BH_ENOMEM;
    memcpy(p, r->body, r->len);
    bh_blob_free(r->body);
    r->blob = false;
  } else if ((p = bh__realloc(r->body, cap)) == NULL) {
    return BH_ENOMEM;
  }
  r->body = p;
  r->cap = cap;
  return 0;
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *ud) {
  bh__xfer *x = ud;
  size_t n = size * nmemb;

  if (x->res.len + n > x->max) {
    x->too_big = true;
    return 0;
  }
  if (body_room(x, n) != 0) {
    x->no_mem = true;
    return 0;
  }
  memcpy(x->res.body + x->res.len, p, n);
  x->res.len += n;
  x->res.body[x->res.len] = '\0';
  return n;
}

static char *
trimmed(const char *p, size_t n) {
  while (n > 0 && (*p == ' ' || *p == '\t'))
    p++, n--;
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' ||
                   p[n - 1] == '\n'))
    n--;
  return bh__strndup(p, n);
}

static int
hdr_add(bh__xfer_res *r, const char *line, size_t n) {
  const char *colon = memchr(line, ':', n);
  bh__hdr *grown;

  if (colon == NULL)
    return 0; /* a folded or blank line: not kept */
  if (r->n_hdrs == r->cap_hdrs) {
    size_t cap = r->cap_hdrs ? r->cap_hdrs * 2 : 16;

    if ((grown = bh__realloc(r->hdrs, cap * sizeof(*grown))) == NULL)
      return BH_ENOMEM;
    r->hdrs = grown;
    r->cap_hdrs = cap;
  }
  r->hdrs[r->n_hdrs].name = trimmed(line, (size_t)(colon - line));
  r->hdrs[r->n_hdrs].value = trimmed(colon + 1, n - (size_t)(colon - line) - 1);
  if (r->hdrs[r->n_hdrs].name == NULL || r->hdrs[r->n_hdrs].value == NULL) {
    bh__free(r->hdrs[r->n_hdrs].name);
    bh__free(r->hdrs[r->n_hdrs].value);
    return BH_ENOMEM;
  }
  r->n_hdrs++;
  return 0;
}

/* Keeps the headers of the last response only (after a 100 Continue). */
static size_t
on_header(char *p, size_t size, size_t nmemb, void *ud) {
  bh__xfer *x = ud;
  size_t n = size * nmemb, i;

  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    for (i = 0; i < x->res.n_hdrs; i++) {
      bh__free(x->res.hdrs[i].name);
      bh__free(x->res.hdrs[i].value);
    }
    x->res.n_hdrs = 0;
    return n;
  }
  if (hdr_add(&x->res, p, n) != 0) {
    x->no_mem = true;
    return 0;
  }
  return n;
}

/* ---- how a transfer ended ------------------------------------------------ */

static int
code_of(const bh__xfer *x, CURLcode cc, long os_errno) {
  if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED)
    return BH_ETOOBIG;
  if (x->no_mem || cc == CURLE_OUT_OF_MEMORY)
    return BH_ENOMEM;
  switch (cc) {
  case CURLE_OK:
    return 0;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return BH_EDNS;
  case CURLE_OPERATION_TIMEDOUT:
    return BH_ETIMEDOUT;
  case CURLE_COULDNT_CONNECT:
    return os_errno == ECONNREFUSED ? BH_ECONNREFUSED : BH_EHTTP;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_SHUTDOWN_FAILED:
    return BH_ETLS;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    return BH_EINVAL;
  default:
    return BH_EHTTP;
  }
}

static void
finish(bh__xfer *x, CURLcode cc) {
  bh__xfer_res *r = &x->res;
  long os_errno = 0, n_conn = 0;

  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
  curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &n_conn);
  curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &r->version);
  r->version = r->version == CURL_HTTP_VERSION_1_0   ? 10
               : r->version == CURL_HTTP_VERSION_1_1 ? 11
               : r->version == CURL_HTTP_VERSION_2_0 ? 20
               : r->version == CURL_HTTP_VERSION_3   ? 30
                                                     : 0;
  x->h->connects += (uint64_t)n_conn;
  r->err = code_of(x, cc, os_errno);
  if (r->err == BH_ETOOBIG)
    r->errmsg = bh__asprintf("response larger than the limit of %zu bytes "
                             "(%s)", x->max, x->what);
  else if (r->err != 0)
    r->errmsg = bh__asprintf("%s (%s): %s", bh_strerror(r->err), x->what,
                             x->errbuf[0] ? x->errbuf
                                          : curl_easy_strerror(cc));
}

/* ---- the session on the loop --------------------------------------------- */

static void
unlink_xfer(bh__xfer *x) {
  bh__http *h = x->h;

  if (x->prev != NULL)
    x->prev->next = x->next;
  else if (h->running == x)
    h->running = x->next;
  if (x->next != NULL)
    x->next->prev = x->prev;
  x->prev = x->next = NULL;
  if (h->n_running > 0 && --h->n_running == 0)
    uv_unref((uv_handle_t *)&h->timer);
}

/* ---- slots per host -------------------------------------------------------
 * A transfer joins curl's multi handle only once it holds one of its
 * host's slots (hostq.h): beyond the per-host limit it waits here, in
 * arrival order, not in libcurl's pending list (see hostq.h for why). */

static bh__xfer *
of_slot(bh__hostq_wait *w) {
  return (bh__xfer *)(void *)((char *)w - offsetof(bh__xfer, slot));
}

static void
wait_timer_closed(uv_handle_t *t) {
  bh__free(t);
}

static void
wait_timer_stop(bh__xfer *x) {
  if (x->wait_timer != NULL)
    uv_close((uv_handle_t *)x->wait_timer, wait_timer_closed);
  x->wait_timer = NULL;
}

/* A transfer's timeout came while it waited for a slot: it ends there. */
static void
on_wait_timeout(uv_timer_t *t) {
  bh__xfer *x = t->data;

  wait_timer_stop(x);
  bh__hostq_cancel(x->h->hosts, &x->slot);
  unlink_xfer(x);
  x->res.err = BH_ETIMEDOUT;
  x->res.errmsg = bh__asprintf("%s (%s): no connection to the host came "
                               "free within %lld ms",
                               bh_strerror(BH_ETIMEDOUT), x->what,
                               (long long)x->timeout_ms);
  x->done = true;
  x->cb(x, x->udata);
}

/* x waits for a slot: its timeout runs meanwhile. 0 or BH_ENOMEM. */
static int
wait_timer_start(bh__http *h, bh__xfer *x) {
  if (x->timeout_ms <= 0)
    return 0;
  if ((x->wait_timer = bh__calloc(1, sizeof(*x->wait_timer))) == NULL)
    return BH_ENOMEM;
  uv_timer_init(h->loop, x->wait_timer);
  x->wait_timer->data = x;
  uv_timer_start(x->wait_timer, on_wait_timeout, (uint64_t)x->timeout_ms, 0);
  return 0;
}

/* x, holding its slot, joins curl's transfers; the time it waited counts
 * against its timeout. 0 or BH_ENOMEM. */
static int
join(bh__http *h, bh__xfer *x) {
  int64_t waited = (int64_t)(uv_now(h->loop) - x->asked_at);

  wait_timer_stop(x);
  if (x->timeout_ms > 0)
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS,
                     waited >= x->timeout_ms ? 1L
                                             : (long)(x->timeout_ms - waited));
  return curl_multi_add_handle(h->multi, x->easy) == CURLM_OK ? 0
                                                               : BH_ENOMEM;
}

/* x gives its host's slot back; the first waiter joins curl's transfers
 * (one that cannot ends at once with BH_ENOMEM, and the slot passes on). */
static void
release(bh__http *h, bh__xfer *x) {
  bh__hostq_wait *w = bh__hostq_leave(h->hosts, &x->slot);

  while (w != NULL && !h->closing) {
    bh__xfer *n = of_slot(w);

    if (join(h, n) == 0)
      return;
    n->res.err = BH_ENOMEM;
    n->res.errmsg = bh__asprintf("%s (%s)", bh_strerror(BH_ENOMEM), n->what);
    w = bh__hostq_leave(h->hosts, &n->slot);
    unlink_xfer(n);
    n->done = true;
    n->cb(n, n->udata);
  }
}

/* The host a URL's connections go to, "scheme://host:port", into key
 * (HOST_KEY_MAX bytes). 0, BH_EINVAL (curl cannot parse it), BH_ENOMEM. */
static int
host_key(const char *url, char *key) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = BH_ENOMEM;
  size_t i;

  if (u != NULL)
    rc = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
                 curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
                 curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
                 curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
                     CURLUE_OK
             ? 0
             : BH_EINVAL;
  if (rc == 0)
    snprintf(key, HOST_KEY_MAX, "%s://%s:%s", scheme, host, port);
  for (i = 0; rc == 0 && key[i] != '\0'; i++) /* hosts ignore case */
    key[i] = (char)tolower((unsigned char)key[i]);
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

static void
check_done(bh__http *h) {
  CURLMsg *m;
  int left;

  while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
    bh__xfer *x = NULL;

    if (m->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    finish(x, m->data.result);
    curl_multi_remove_handle(h->multi, x->easy);
    unlink_xfer(x);
    x->done = true;
    release(h, x);
    x->cb(x, x->udata);
  }
}

static void
on_poll(uv_poll_t *p, int status, int events) {
  sock *s = p->data;
  bh__http *h = s->h;
  int flags = 0, running;

  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(h->multi, s->fd, flags, &running);
  check_done(h);
}

static void
on_timer(uv_timer_t *t) {
  bh__http *h = t->data;
  int running;

  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

static int
timer_fn(CURLM *multi, long ms, void *ud) {
  bh__http *h = ud;

  (void)multi;
  if (ms < 0)
    uv_timer_stop(&h->timer);
  else /* 0 too runs from the loop, never from inside curl */
    uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
  return 0;
}

static void
sock_closed(uv_handle_t *p) {
  bh__free(p->data);
}

static int
socket_fn(CURL *e, curl_socket_t fd, int what, void *ud, void *sp) {
  bh__http *h = ud;
  sock *s = sp;
  int events = 0;

  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      curl_multi_assign(h->multi, fd, NULL);
      uv_close((uv_handle_t *)&s->poll, sock_closed);
    }
    return 0;
  }
  if (s == NULL) {
    if ((s = bh__calloc(1, sizeof(*s))) == NULL)
      return -1;
    s->fd = fd;
    s->h = h;
    s->poll.data = s;
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
      bh__free(s);
      return -1;
    }
    uv_unref((uv_handle_t *)&s->poll);
    curl_multi_assign(h->multi, fd, s);
  }
  if (what != CURL_POLL_OUT)
    events |= UV_READABLE;
  if (what != CURL_POLL_IN)
    events |= UV_WRITABLE;
  return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

static int
multi_open(bh__http *h) {
  /* max_host_conns -1: no limit, as curl's 0 says it. */
  long per_host = h->o.max_host_conns > 0   ? h->o.max_host_conns
                  : h->o.max_host_conns < 0 ? LONG_MAX
                                            : DEFAULT_HOST_CONNS;

  pthread_once(&global_once, global_init);
  if (global_rc != CURLE_OK ||
      (h->multi == NULL && (h->multi = curl_multi_init()) == NULL) ||
      (h->hosts = bh__hostq_new(per_host)) == NULL)
    return BH_ENOMEM;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    per_host == LONG_MAX ? 0L : per_host);
  if (h->o.max_total_conns > 0)
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      h->o.max_total_conns);
  return 0;
}

bh__http *
bh__http_new(uv_loop_t *loop, const bh__http_opts *o) {
  bh__http *h = bh__calloc(1, sizeof(*h));

  if (h == NULL)
    return NULL;
  h->loop = loop;
  if (o != NULL)
    h->o = *o;
  /* The caller's string may not outlive the session (a bootstrap's). */
  if (h->o.ca_file != NULL &&
      (h->o.ca_file = bh__strdup(h->o.ca_file)) == NULL) {
    bh__free(h);
    return NULL;
  }
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  uv_unref((uv_handle_t *)&h->timer);
  return h;
}

static void
http_closed(uv_handle_t *t) {
  bh__http *h = t->data;

  bh__free((char *)h->o.ca_file);
  bh__free(h);
}

void
bh__http_free(bh__http *h) {
  if (h == NULL)
    return;
  h->closing = true;
  while (h->running != NULL)
    bh__xfer_free(h->running);
  if (h->multi != NULL)
    curl_multi_cleanup(h->multi); /* closes the pooled connections */
  h->multi = NULL;
  bh__hostq_free(h->hosts);
  h->hosts = NULL;
  uv_close((uv_handle_t *)&h->timer, http_closed);
}

uint64_t
bh__http_connects(const bh__http *h) {
  return h->connects;
}

/* ---- transfers ------------------------------------------------------------ */

static bool
has_header(const bh__xfer_req *rq, size_t n, const char *name) {
  size_t i, len = strlen(name);

  for (i = 0; i < n; i++)
    if (strncasecmp(rq->headers[i], name, len) == 0 &&
        rq->headers[i][len] == ':')
      return true;
  return false;
}

/* The caller's headers; and no header curl would add on its own: no
 * form content type for a body, no "Expect: 100-continue" round trip. */
static int
set_headers(bh__xfer *x, const bh__xfer_req *rq) {
  size_t n = rq->n_headers, i;
  struct curl_slist *l;

  if (n == 0) /* NULL-terminated */
    while (rq->headers != NULL && rq->headers[n] != NULL)
      n++;
  for (i = 0; i < n; i++) {
    if ((l = curl_slist_append(x->hdrs, rq->headers[i])) == NULL)
      return BH_ENOMEM;
    x->hdrs = l;
  }
  if (rq->body != NULL && !has_header(rq, n, "Content-Type") &&
      (l = curl_slist_append(x->hdrs, "Content-Type:")) != NULL)
    x->hdrs = l;
  if ((l = curl_slist_append(x->hdrs, "Expect:")) == NULL)
    return BH_ENOMEM;
  x->hdrs = l;
  return curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs) == CURLE_OK
             ? 0
             : BH_EINVAL;
}

static const char *
method_of(const bh__xfer_req *rq) {
  if (rq->method != NULL)
    return rq->method;
  return rq->head ? "HEAD" : rq->body != NULL ? "POST" : "GET";
}

static int
set_request(bh__xfer *x, const bh__xfer_req *rq) {
  CURL *e = x->easy;
  const char *m = method_of(rq);
  CURLcode cc = CURLE_OK;

  cc |= curl_easy_setopt(e, CURLOPT_URL, rq->url);
  cc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  cc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  cc |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
  cc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  cc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  cc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  cc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  cc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  cc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  cc |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max);
  if (rq->timeout_ms > 0)
    cc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
  /* Transfers that start together to an https:// server wait for the
   * first connection's handshake: if ALPN picks HTTP/2 they all become
   * its streams, instead of each opening a connection of its own. Not
   * for http://, which is HTTP/1.1 here: there the question would stay
   * open until the first response. */
  if (strncasecmp(rq->url, "https://", 8) == 0)
    cc |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  if (x->h->o.ca_file != NULL) {
    /* Instead of the system's trust, not besides it: Debian's curl also
     * looks in a default CA directory unless told not to. */
    cc |= curl_easy_setopt(e, CURLOPT_CAINFO, x->h->o.ca_file);
    cc |= curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
  }
  if (rq->raw_path)
    cc |= curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
  if (rq->head || strcmp(m, "HEAD") == 0)
    cc |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  if (rq->body != NULL || strcmp(m, "POST") == 0) {
    cc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                           (curl_off_t)rq->body_len);
    cc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS,
                           rq->body != NULL ? rq->body : "");
  }
  if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 &&
      strcmp(m, "POST") != 0)
    cc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
  return cc == CURLE_OK ? set_headers(x, rq) : BH_EINVAL;
}

int
bh__xfer_start(bh__http *h, const bh__xfer_req *rq, bh__xfer_cb cb,
               void *udata, bh__xfer **out, char **errmsg) {
  char key[HOST_KEY_MAX];
  bh__xfer *x;
  int rc, in = 0;

  if (errmsg != NULL)
    *errmsg = NULL;
  if (rq == NULL || rq->url == NULL || rq->url[0] == '\0' || cb == NULL)
    return BH_EINVAL;
  if (h->hosts == NULL && (rc = multi_open(h)) != 0)
    return rc;
  if ((x = bh__calloc(1, sizeof(*x))) == NULL)
    return BH_ENOMEM;
  x->h = h;
  x->cb = cb;
  x->udata = udata;
  x->max = rq->max_response > 0 ? rq->max_response : DEFAULT_MAX_RESPONSE;
  x->what = bh__asprintf("%s %s", method_of(rq), rq->url);
  x->easy = curl_easy_init();
  x->timeout_ms = rq->timeout_ms;
  x->asked_at = uv_now(h->loop);
  rc = x->what == NULL || x->easy == NULL ? BH_ENOMEM : set_request(x, rq);
  if (rc == 0 && (rc = host_key(rq->url, key)) == 0 &&
      (in = bh__hostq_enter(h->hosts, key, &x->slot)) < 0)
    rc = in;
  if (rc == 0 && in == 1 && (rc = join(h, x)) != 0)
    release(h, x);
  if (rc == 0 && in == 0 && (rc = wait_timer_start(h, x)) != 0)
    bh__hostq_cancel(h->hosts, &x->slot);
  if (rc != 0) {
    if (errmsg != NULL && rc == BH_EINVAL)
      *errmsg = bh__asprintf("invalid request (%s)",
                             x->what ? x->what : rq->url);
    x->done = true; /* nothing to remove from the multi handle */
    bh__xfer_free(x);
    return rc;
  }
  if (h->n_running++ == 0)
    uv_ref((uv_handle_t *)&h->timer);
  x->next = h->running;
  if (h->running != NULL)
    h->running->prev = x;
  h->running = x;
  *out = x;
  return 0;
}

bh__xfer_res *
bh__xfer_result(bh__xfer *x) {
  return &x->res;
}

void
bh__xfer_free(bh__xfer *x) {
  if (x == NULL)
    return;
  if (!x->done) {
    long n_conn = 0;

    /* An aborted transfer's connection is closed, not pooled; count it. */
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &n_conn);
    x->h->connects += (uint64_t)n_conn;
    unlink_xfer(x);
    if (x->slot.holding) {
      curl_multi_remove_handle(x->h->multi, x->easy);
      release(x->h, x);
    } else {
      wait_timer_stop(x);
      bh__hostq_cancel(x->h->hosts, &x->slot);
    }
  }
  curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->hdrs);
  bh__xfer_res_clear(&x->res);
  bh__free(x->what);
  bh__free(x);
}
