/* http.h - a bee's HTTP session: one libcurl multi handle driven by the
 * bee's own libuv loop through curl's multi_socket interface, so that
 * every transfer of every task shares one loop, one connection pool and
 * one DNS cache, and nothing blocks the loop.
 *
 * This layer knows loops and transfers, not tasks: a transfer completes
 * through a callback (http_api.c turns that into a task's wait). The
 * multi handle is made on the first transfer, so a bee that never uses
 * HTTP pays for a small struct only. */
#ifndef BH_HTTP_H
#define BH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct bh_http bh__http; /* bh_http in beehive.h */
typedef struct bh__xfer bh__xfer;

/* Settings of a session (bh_run_opts.http_*): 0 takes the default. */
typedef struct bh__http_opts {
  long max_host_conns;  /* connections to one host at once; 0: 1,024; -1:
                         * no limit */
  long max_total_conns; /* connections at once; 0 or -1: no limit */
  const char *ca_file;  /* PEM CA bundle trusted instead of the system's;
                         * NULL: the system's (the session keeps a copy) */
} bh__http_opts;

/* One response header, as received (name without the colon). */
typedef struct bh__hdr {
  char *name, *value;
} bh__hdr;

/* What a transfer asks. The strings and the body are borrowed until the
 * transfer is done or aborted. */
typedef struct bh__xfer_req {
  const char *method;          /* NULL: GET, or POST when there is a body */
  const char *url;
  const char *const *headers;  /* "Name: value", NULL-terminated; or NULL */
  size_t n_headers;            /* or the count, when headers is not
                                * NULL-terminated (0: count to NULL) */
  const void *body;
  size_t body_len;
  bool head;                   /* a HEAD request: no body expected */
  bool raw_path;               /* send the path as is: no removal of
                                * "." and ".." segments (signed URLs) */
  int64_t timeout_ms;          /* the whole transfer; 0: none */
  size_t max_response;         /* body bytes at most; 0: 64 MiB */
} bh__xfer_req;

/* The response, and why it failed. */
typedef struct bh__xfer_res {
  int err;                     /* 0 or a BH_E* code */
  char *errmsg;                /* owned, names the method and URL */
  long status;                 /* HTTP status; 0 if none came */
  long version;                /* 10, 11, 20, 30 */
  bh__hdr *hdrs;               /* owned, in order received */
  size_t n_hdrs, cap_hdrs;
  char *body;                  /* owned; NUL after the last byte */
  size_t len, cap;
  bool blob;                   /* body is bh_blob_alloc() memory */
} bh__xfer_res;

typedef void (*bh__xfer_cb)(bh__xfer *x, void *udata);

/* A session on loop (its handles are unref'd: they never keep the loop
 * alive on their own); o may be NULL. Returns NULL when out of memory. */
bh__http *bh__http_new(uv_loop_t *loop, const bh__http_opts *o);
/* Aborts every transfer (their callbacks do not run) and closes the
 * session's handles; the memory goes when libuv has closed them. */
void bh__http_free(bh__http *h);

/* Starts a transfer; cb runs once on the loop when it is done (never from
 * inside this call). Returns 0 and *out, or BH_ENOMEM / BH_EINVAL (the
 * message in *errmsg, owned, when not NULL). */
int bh__xfer_start(bh__http *h, const bh__xfer_req *rq, bh__xfer_cb cb,
                   void *udata, bh__xfer **out, char **errmsg);
/* The result of a done transfer (borrowed until bh__xfer_free). */
bh__xfer_res *bh__xfer_result(bh__xfer *x);
/* Frees a transfer: one still running is aborted at once (its connection
 * closed), and its callback does not run. */
void bh__xfer_free(bh__xfer *x);

/* Frees the body and headers of a result. */
void bh__xfer_res_clear(bh__xfer_res *r);
/* The last header named name (any case), or NULL. */
const char *bh__xfer_res_header(const bh__xfer_res *r, const char *name);

/* Connections the session has opened so far (for tests and stats). */
uint64_t bh__http_connects(const bh__http *h);

#endif
