/* http_api.c - what a task handler calls for HTTP (bh_http_request...):
 * a transfer on its bee's session (http.c) and the task's wait for it. */
#include "api/http_api.h"
#include "hive/bee.h"

#include <string.h>

struct bh_http_resp {
  bh__xfer_res r;
};

typedef struct waiter {
  bh_task *t;
  bool done;
} waiter;

static void
xfer_done(bh__xfer *x, void *udata) {
  waiter *w = udata;

  (void)x;
  w->done = true;
  bh__task_wake(w->t, 0);
}

/* Starts the transfer and waits for it. Returns 0 with *x done, or an
 * error recorded on the task (*x freed). A cancelled task aborts its
 * transfer here, at once. */
int
bh__http_run(bh_task *t, const bh__xfer_req *rq, const char *type,
             bh__xfer **x) {
  waiter w = {.t = t};
  char *why = NULL;
  int rc;

  bh__task_io_result(t, 0, NULL, NULL);
  rc = bh__xfer_start(t->bee->ctx.http_session, rq, xfer_done, &w, x, &why);
  if (rc != 0)
    return bh__task_io_result(t, rc, type, why);
  rc = bh__task_wait(t, -1);
  if (!w.done) {
    bh__xfer_free(*x);
    *x = NULL;
    return rc != 0 ? rc : BH_ECANCELLED;
  }
  return 0;
}

int
bh_http_request(bh_task *t, const bh_http_req *req, bh_http_resp **out) {
  bh__xfer_req rq;
  bh__xfer *x = NULL;
  bh__xfer_res *res;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (t == NULL || req == NULL || out == NULL)
    return BH_EINVAL;
  rq = (bh__xfer_req){.method = req->method, .url = req->url,
                      .headers = req->headers, .body = req->body,
                      .body_len = req->body_len,
                      .timeout_ms = req->timeout_ms,
                      .max_response = req->max_response};
  if ((rc = bh__http_run(t, &rq, "HTTPError", &x)) != 0)
    return rc;
  res = bh__xfer_result(x);
  if (res->err != 0) {
    rc = bh__task_io_result(t, res->err, "HTTPError", res->errmsg);
    res->errmsg = NULL;
  } else if ((rc = bh__http_resp_take(x, out)) != 0) {
    rc = bh__task_io_result(t, rc, "MemoryError", NULL);
  }
  bh__xfer_free(x);
  return rc;
}

int
bh__http_resp_take(bh__xfer *x, bh_http_resp **out) {
  bh__xfer_res *res = bh__xfer_result(x);

  if ((*out = bh__calloc(1, sizeof(**out))) == NULL)
    return BH_ENOMEM;
  (*out)->r = *res; /* the response moves out of the transfer */
  memset(res, 0, sizeof(*res));
  return 0;
}

int
bh_http_get(bh_task *t, const char *url, bh_http_resp **out) {
  bh_http_req req = {.url = url};

  return bh_http_request(t, &req, out);
}

long
bh_http_resp_status(const bh_http_resp *r) {
  return r->r.status;
}

int
bh_http_resp_version(const bh_http_resp *r) {
  return (int)r->r.version;
}

const char *
bh_http_resp_header(const bh_http_resp *r, const char *name) {
  return bh__xfer_res_header(&r->r, name);
}

size_t
bh_http_resp_n_headers(const bh_http_resp *r) {
  return r->r.n_hdrs;
}

int
bh_http_resp_header_at(const bh_http_resp *r, size_t i, const char **name,
                       const char **value) {
  if (i >= r->r.n_hdrs)
    return BH_EINVAL;
  *name = r->r.hdrs[i].name;
  *value = r->r.hdrs[i].value;
  return 0;
}

const void *
bh_http_resp_body(const bh_http_resp *r, size_t *len) {
  if (len != NULL)
    *len = r->r.len;
  return r->r.body != NULL ? r->r.body : "";
}

void
bh_http_resp_free(bh_http_resp *r) {
  if (r == NULL)
    return;
  bh__xfer_res_clear(&r->r);
  bh__free(r);
}

uint64_t
bh_http_connects(const bh_http *s) {
  return s != NULL ? bh__http_connects(s) : 0;
}

const char *
bh_task_errmsg(const bh_task *t) {
  return t->io_err != 0 ? t->io_msg : NULL;
}
