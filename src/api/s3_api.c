/* s3_api.c - what a task handler calls for S3 (bh_s3_get...): an
 * s3://bucket/key address, signed and sent through the bee's client and
 * HTTP session; S3's errors come back with their code and message, the
 * method and the address. */
#include "api/http_api.h"
#include "hive/bee.h"
#include "io/s3.h"

#include <string.h>
#include <time.h>

#define S3_MAX_GET ((size_t)1 << 30)

/* One request. */
typedef struct call {
  const char *method;
  const char *url;           /* as the caller wrote it, for messages */
  char *bucket, *key;        /* owned, parsed from url */
  bh__kv query[4];
  size_t n_query;
  bh__kv hdrs[2];
  size_t n_hdrs;
  const void *body;
  size_t len;
  bool head;
} call;

static void
call_clear(call *c) {
  bh__free(c->bucket);
  bh__free(c->key);
}

static int
fail(bh_task *t, int err, char *msg) {
  return bh__task_io_result(t, err, "S3Error", msg);
}

/* s3://bucket/key: key may be empty only where `keyless` allows it. */
static int
parse_url(bh_task *t, call *c, bool keyless) {
  const char *u = c->url, *slash;

  if (u == NULL || strncmp(u, "s3://", 5) != 0)
    return fail(t, BH_EINVAL, bh__asprintf("not an s3:// address: %s",
                                           u ? u : "(null)"));
  u += 5;
  slash = strchr(u, '/');
  if (slash == u || *u == '\0' || (!keyless && (!slash || !slash[1])))
    return fail(t, BH_EINVAL, bh__asprintf("%s: %s", c->url,
                                           keyless ? "no bucket"
                                                   : "no bucket or no key"));
  c->bucket = bh__strndup(u, slash ? (size_t)(slash - u) : strlen(u));
  c->key = bh__strdup(slash ? slash + 1 : "");
  return c->bucket && c->key ? 0 : fail(t, BH_ENOMEM, NULL);
}

/* The signed headers as curl takes them ("name: value", "name;" when
 * empty), plus the Authorization. Owned strings in hv; NULL-terminated. */
static int
header_lines(const bh__sigv4_out *o, bool auth, char **hv, size_t cap) {
  size_t i, n = 0;

  for (i = 0; i < o->n_headers && n + 2 < cap; i++)
    hv[n++] = o->headers[i].value[0]
                  ? bh__asprintf("%s: %s", o->headers[i].key,
                                 o->headers[i].value)
                  : bh__asprintf("%s;", o->headers[i].key);
  if (auth)
    hv[n++] = bh__asprintf("Authorization: %s", o->authorization);
  hv[n] = NULL;
  for (i = 0; i < n; i++)
    if (hv[i] == NULL)
      return BH_ENOMEM;
  return 0;
}

/* Signs c for s3 at address a. Without credentials the request goes
 * unsigned: the signer still encodes the target, the Authorization is
 * left out. */
static int
sign(bh_s3 *s3, const call *c, const bh__s3addr *a, bh__sigv4_out *o) {
  const bh__awsconf *k = s3->conf;
  char hash[65];
  bh__sigv4_req r = {.method = c->method, .host = a->host_header,
                     .path = a->path, .query = c->query,
                     .n_query = c->n_query, .headers = c->hdrs,
                     .n_headers = c->n_hdrs, .payload_hash = hash,
                     .region = s3->region, .service = "s3",
                     .access_key = k->access_key ? k->access_key : "none",
                     .secret_key = k->access_key ? k->secret_key : "none",
                     .session_token = k->access_key ? k->session_token
                                                    : NULL,
                     .when = (int64_t)time(NULL)};
  int rc = bh__sha256_hex(c->body ? c->body : "", c->len, hash);

  return rc != 0 ? rc
                 : bh__sigv4_sign(&r, k->access_key ? &s3->key : NULL, o);
}

/* What S3 said, when it did not say yes. */
static int
s3_error(bh_task *t, const call *c, const bh__xfer_res *res) {
  bh__s3_err e = {0};
  int err = res->status == 404 ? BH_ENOTFOUND : BH_ES3;
  const char *code;

  if (res->len > 0)
    bh__s3_xml_error(res->body, res->len, &e);
  code = e.code ? e.code
         : res->status == 404 ? (c->key[0] ? "NoSuchKey" : "NoSuchBucket")
         : res->status == 403 ? "AccessDenied" : "Error";
  err = fail(t, err, bh__asprintf("%s: %s (%s %s, bucket '%s', key '%s', "
                                  "HTTP %ld)", code,
                                  e.message ? e.message : "no message",
                                  c->method, c->url, c->bucket, c->key,
                                  res->status));
  bh__s3_err_clear(&e);
  return err;
}

/* Sends the request and waits. Returns 0 with *x a done transfer whose
 * status is 2xx, or an error recorded on t. */
static int
request(bh_task *t, call *c, bh__xfer **x) {
  bh_s3 *s3 = t->bee->ctx.s3_client;
  bh__sigv4_out o = {0};
  bh__s3addr *a = NULL;
  char err[512], *url = NULL, *hv[12] = {NULL};
  bh__xfer_req rq = {.method = c->method, .body = c->body,
                     .body_len = c->len, .head = c->head,
                     .raw_path = true, .max_response = S3_MAX_GET};
  bh__xfer_res *res;
  size_t i;
  int rc;

  *x = NULL;
  if (s3 == NULL)
    return fail(t, BH_EINVAL, bh__asprintf("%s: this bee has no S3 client "
                                           "(bh_run_opts.s3_profile is "
                                           "NULL)", c->url));
  rc = bh__awsconf_s3addr(s3->conf, c->bucket, c->key, &a, err, sizeof(err));
  if (rc != 0)
    return fail(t, rc, rc == BH_ENOMEM ? NULL
                                       : bh__asprintf("%s: %s", c->url, err));
  if ((rc = sign(s3, c, a, &o)) == 0 &&
      (rc = header_lines(&o, s3->conf->access_key != NULL, hv,
                         sizeof(hv) / sizeof(hv[0]))) == 0 &&
      (url = bh__asprintf("%s://%s%s", a->scheme, a->host_header,
                          o.target)) == NULL)
    rc = BH_ENOMEM;
  if (rc == 0) {
    rq.url = url;
    rq.headers = (const char *const *)hv;
    rc = bh__http_run(t, &rq, "S3Error", x);
  } else {
    rc = fail(t, rc, rc == BH_ENOMEM ? NULL
                                     : bh__asprintf("%s: the request could "
                                                    "not be signed", c->url));
  }
  for (i = 0; hv[i] != NULL; i++)
    bh__free(hv[i]);
  bh__free(url);
  bh__sigv4_out_free(&o);
  bh__s3addr_free(a);
  if (rc != 0)
    return rc;
  res = bh__xfer_result(*x);
  if (res->err != 0) { /* the transfer failed: name the s3:// address */
    rc = fail(t, res->err, bh__asprintf("%s: %s", c->url, res->errmsg));
  } else if (res->status < 200 || res->status > 299) {
    rc = s3_error(t, c, res);
  }
  if (rc != 0) {
    bh__xfer_free(*x);
    *x = NULL;
  }
  return rc;
}

/* Moves a done transfer's response out into a bh_http_resp. */
static int
take(bh_task *t, bh__xfer *x, bh_http_resp **out) {
  int rc = bh__http_resp_take(x, out);

  bh__xfer_free(x);
  return rc != 0 ? fail(t, rc, NULL) : 0;
}

static int
run(bh_task *t, call *c, bool keyless, bh_http_resp **out) {
  bh__xfer *x;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (t == NULL)
    return BH_EINVAL;
  bh__task_io_result(t, 0, NULL, NULL);
  if ((rc = parse_url(t, c, keyless)) == 0 && (rc = request(t, c, &x)) == 0) {
    if (out != NULL)
      rc = take(t, x, out);
    else
      bh__xfer_free(x);
  }
  call_clear(c);
  return rc;
}

int
bh_s3_get(bh_task *t, const char *url, int64_t first, int64_t last,
          bh_http_resp **out) {
  char range[64];
  call c = {.method = "GET", .url = url};

  if (out == NULL)
    return BH_EINVAL;
  if (first >= 0) {
    if (last >= 0)
      snprintf(range, sizeof(range), "bytes=%lld-%lld", (long long)first,
               (long long)last);
    else
      snprintf(range, sizeof(range), "bytes=%lld-", (long long)first);
    c.hdrs[c.n_hdrs++] = (bh__kv){"range", range};
  }
  return run(t, &c, false, out);
}

int
bh_s3_head(bh_task *t, const char *url, bh_http_resp **out) {
  call c = {.method = "HEAD", .url = url, .head = true};

  return out == NULL ? BH_EINVAL : run(t, &c, false, out);
}

int
bh_s3_put(bh_task *t, const char *url, const void *data, size_t len,
          const char *content_type) {
  call c = {.method = "PUT", .url = url, .body = data ? data : "",
            .len = data ? len : 0};

  if (content_type != NULL)
    c.hdrs[c.n_hdrs++] = (bh__kv){"content-type", content_type};
  return run(t, &c, false, NULL);
}

int
bh_s3_delete(bh_task *t, const char *url) {
  call c = {.method = "DELETE", .url = url};

  return run(t, &c, false, NULL);
}

int
bh_s3_list(bh_task *t, const char *url, const char *token, int max_keys,
           bh_s3_listing **out) {
  char mk[24], *prefix;
  call c = {.method = "GET", .url = url};
  bh_http_resp *r = NULL;
  bh__xfer *x;
  int rc;

  if (out == NULL || t == NULL)
    return BH_EINVAL;
  *out = NULL;
  bh__task_io_result(t, 0, NULL, NULL);
  if ((rc = parse_url(t, &c, true)) != 0) {
    call_clear(&c);
    return rc;
  }
  /* The prefix is a query item; the request is on the bucket itself. */
  prefix = c.key;
  c.key = bh__strdup("");
  c.query[c.n_query++] = (bh__kv){"list-type", "2"};
  c.query[c.n_query++] = (bh__kv){"prefix", prefix};
  if (token != NULL)
    c.query[c.n_query++] = (bh__kv){"continuation-token", token};
  if (max_keys > 0) {
    snprintf(mk, sizeof(mk), "%d", max_keys);
    c.query[c.n_query++] = (bh__kv){"max-keys", mk};
  }
  rc = c.key == NULL ? fail(t, BH_ENOMEM, NULL) : 0;
  if (rc == 0 && (rc = request(t, &c, &x)) == 0)
    rc = take(t, x, &r);
  if (rc == 0 && (*out = bh__calloc(1, sizeof(**out))) == NULL)
    rc = fail(t, BH_ENOMEM, NULL);
  if (rc == 0) {
    size_t len;
    const char *xml = bh_http_resp_body(r, &len);

    if ((rc = bh__s3_xml_list(xml, len, *out)) != 0) {
      bh_s3_listing_free(*out);
      *out = NULL;
      rc = fail(t, rc == BH_EPROTO ? BH_ES3 : rc,
                bh__asprintf("%s: the listing is not a ListBucketResult",
                             url));
    }
  }
  bh_http_resp_free(r);
  bh__free(prefix);
  call_clear(&c);
  return rc;
}

size_t
bh_s3_listing_count(const bh_s3_listing *l) {
  return l != NULL ? l->n : 0;
}

const char *
bh_s3_listing_key(const bh_s3_listing *l, size_t i, int64_t *size) {
  if (l == NULL || i >= l->n)
    return NULL;
  if (size != NULL)
    *size = l->v[i].size;
  return l->v[i].key;
}

const char *
bh_s3_listing_next(const bh_s3_listing *l) {
  return l != NULL ? l->next : NULL;
}

void
bh_s3_listing_free(bh_s3_listing *l) {
  size_t i;

  if (l == NULL)
    return;
  for (i = 0; i < l->n; i++) {
    bh__free(l->v[i].key);
    bh__free(l->v[i].etag);
    bh__free(l->v[i].modified);
  }
  bh__free(l->v);
  bh__free(l->next);
  bh__free(l);
}
