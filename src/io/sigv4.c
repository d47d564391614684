/* sigv4.c - AWS Signature Version 4 for S3 (sigv4.h), on libcrypto's
 * HMAC-SHA256 and SHA-256.
 *
 * Everything sent comes from the canonical request itself: the target is
 * its URI and query lines, the headers its header lines, so that what S3
 * recomputes from the wire request is what we signed. All the output lives
 * in one block, the canonical request first.
 *
 * libcrypto's one-shot HMAC() and SHA256() keep no state between calls (no
 * context to set up per process or to mind across fork); OpenSSL 3 looks
 * the algorithm up on every call, about 1.7 us per HMAC here, which is why
 * the derived key (four of the six MAC and digest computations) is worth
 * keeping (bh__sigv4_key). */
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "base/base.h"
#include "io/sigv4.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* 9999-12-31T23:59:59Z: x-amz-date has four digits for the year. */
#define MAX_WHEN INT64_C(253402300799)
/* The fixed headers every request sends (host, x-amz-content-sha256,
 * x-amz-date, x-amz-security-token). */
#define FIXED_HEADERS 4

/* A query parameter or a header in canonical form: offsets of its name
 * and value in the scratch buffer (which moves while it grows). */
typedef struct item {
  size_t name, name_len;
  size_t value, value_len;
} item;

/* One signing's state. */
typedef struct signing {
  const bh__sigv4_req *req;
  char amz_date[17]; /* YYYYMMDDTHHMMSSZ; its first 8 bytes are the day */
  bh__buf scratch;   /* encoded query items, canonical header items */
  item *items;       /* n_query query items, then nh header items */
  size_t nh;
  bh__buf out;      /* the output block (bh__sigv4_out) */
  size_t uri_len;   /* the URI line of the canonical request */
  size_t query_len; /* its query line, right after the URI line's \n */
} signing;

/* ------------------------------------------------------------------------
 * Checking the request. */

static bool
all_bytes(const char *s, bool (*ok)(unsigned char c)) {
  if (s == NULL || *s == '\0')
    return false;
  for (; *s != '\0'; s++)
    if (!ok((unsigned char)*s))
      return false;
  return true;
}

static bool
upper(unsigned char c) {
  return c >= 'A' && c <= 'Z';
}

/* Printable, no blank: a Host value. */
static bool
graphic(unsigned char c) {
  return c > ' ' && c < 0x7f;
}

/* A part of the credential scope (access key, region, service), which '/'
 * separates and ',' ends in the Authorization value. */
static bool
scope_char(unsigned char c) {
  return graphic(c) && c != '/' && c != ',';
}

static bool
hex_digit(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* RFC 9110's tchar: what a header name is made of. */
static bool
token_char(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A header value: printable ASCII and tabs (never CR or LF). */
static bool
value_ok(const char *s) {
  if (s == NULL)
    return false;
  for (; *s != '\0'; s++)
    if (!graphic((unsigned char)*s) && *s != ' ' && *s != '\t')
      return false;
  return true;
}

static bool
payload_hash_ok(const char *h) {
  if (h != NULL && strcmp(h, UNSIGNED_PAYLOAD) == 0)
    return true;
  return all_bytes(h, hex_digit) && strlen(h) == 64;
}

static bool
strings_ok(const bh__sigv4_req *r) {
  return all_bytes(r->method, upper) && all_bytes(r->host, graphic) &&
         r->path != NULL && r->path[0] == '/' &&
         payload_hash_ok(r->payload_hash) && all_bytes(r->region, scope_char) &&
         all_bytes(r->service, scope_char) &&
         all_bytes(r->access_key, scope_char) && r->secret_key != NULL &&
         r->secret_key[0] != '\0' && strlen(r->secret_key) <= INT_MAX - 4 &&
         (r->session_token == NULL ||
          (r->session_token[0] != '\0' && value_ok(r->session_token)));
}

/* The lists are checked item by item as they are put in canonical form;
 * here only that they are there. */
static int
check_req(const bh__sigv4_req *r) {
  if (r == NULL || !strings_ok(r))
    return BH_EINVAL;
  if ((r->n_query > 0 && r->query == NULL) ||
      (r->n_headers > 0 && r->headers == NULL))
    return BH_EINVAL;
  if (r->n_headers > SIZE_MAX / sizeof(item) - FIXED_HEADERS ||
      r->n_query > SIZE_MAX / sizeof(item) - FIXED_HEADERS - r->n_headers)
    return BH_EINVAL;
  if (r->when < 0 || r->when > MAX_WHEN)
    return BH_EINVAL;
  return 0;
}

static void
format_date(int64_t when, char amz_date[17]) {
  time_t t = (time_t)when;
  struct tm tm;

  gmtime_r(&t, &tm);
  strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ------------------------------------------------------------------------
 * Canonical forms. */

static bool
unreserved(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends s URI-encoded the S3 way: every byte but the unreserved ones
 * (and '/' when keep_slash) as %XX, upper-case. */
static int
put_encoded(bh__buf *b, const char *s, bool keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  unsigned char c;
  char *p;
  int err;

  if (n > SIZE_MAX / 3)
    return BH_ENOMEM;
  err = bh__buf_reserve(b, 3 * n);
  if (err != 0)
    return err;
  p = b->data + b->len;
  for (; *s != '\0'; s++) {
    c = (unsigned char)*s;
    if (unreserved(c) || (keep_slash && c == '/')) {
      *p++ = (char)c;
    } else {
      *p++ = '%';
      *p++ = hex[c >> 4];
      *p++ = hex[c & 15];
    }
  }
  b->len = (size_t)(p - b->data);
  return 0;
}

/* Appends a header value trimmed, each inner run of blanks made one
 * space (SigV4's Trimall). */
static int
put_trimmed(bh__buf *b, const char *v) {
  size_t n;
  int err;

  for (;;) {
    v += strspn(v, " \t");
    if (*v == '\0')
      return 0;
    n = strcspn(v, " \t");
    err = bh__buf_append(b, v, n);
    v += n;
    if (err == 0 && v[strspn(v, " \t")] != '\0')
      err = bh__buf_append(b, " ", 1);
    if (err != 0)
      return err;
  }
}

static int
put_lower(bh__buf *b, const char *s) {
  size_t i, n = strlen(s);
  int err;

  err = bh__buf_reserve(b, n);
  if (err != 0)
    return err;
  for (i = 0; i < n; i++)
    b->data[b->len + i] =
        (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
  b->len += n;
  return 0;
}

/* Encoded name and value of a query parameter. */
static int
put_query_item(signing *s, const bh__kv *kv, item *it) {
  bh__buf *b = &s->scratch;
  int err;

  if (kv->key == NULL || kv->key[0] == '\0' || kv->value == NULL)
    return BH_EINVAL;
  it->name = b->len;
  err = put_encoded(b, kv->key, false);
  it->name_len = b->len - it->name;
  it->value = b->len;
  if (err == 0)
    err = put_encoded(b, kv->value, false);
  it->value_len = b->len - it->value;
  return err;
}

/* Lower-cased name and trimmed value of a header. */
static int
put_header_item(signing *s, const char *name, const char *value, item *it) {
  bh__buf *b = &s->scratch;
  int err;

  if (!all_bytes(name, token_char) || !value_ok(value) ||
      strcasecmp(name, "authorization") == 0)
    return BH_EINVAL;
  it->name = b->len;
  err = put_lower(b, name);
  it->name_len = b->len - it->name;
  it->value = b->len;
  if (err == 0)
    err = put_trimmed(b, value);
  it->value_len = b->len - it->value;
  return err;
}

/* Byte order of the names, then of the values (qsort_r's comparison; the
 * context is the scratch buffer's data). */
static int
item_cmp(const void *pa, const void *pb, void *ctx) {
  const item *a = pa, *b = pb;
  const char *base = ctx;
  size_t n;
  int c;

  n = a->name_len < b->name_len ? a->name_len : b->name_len;
  c = memcmp(base + a->name, base + b->name, n);
  if (c != 0 || a->name_len != b->name_len)
    return c != 0 ? c : (a->name_len < b->name_len ? -1 : 1);
  n = a->value_len < b->value_len ? a->value_len : b->value_len;
  c = memcmp(base + a->value, base + b->value, n);
  if (c != 0 || a->value_len == b->value_len)
    return c;
  return a->value_len < b->value_len ? -1 : 1;
}

static int
gather_query(signing *s) {
  const bh__sigv4_req *r = s->req;
  size_t i;
  int err;

  for (i = 0; i < r->n_query; i++) {
    err = put_query_item(s, &r->query[i], &s->items[i]);
    if (err != 0)
      return err;
  }
  return 0;
}

/* The fixed headers and the caller's, sorted; a name twice is refused
 * (the caller's x-amz-date would clash with ours). */
static int
gather_headers(signing *s) {
  const bh__sigv4_req *r = s->req;
  item *h = s->items + r->n_query;
  size_t i;
  int err;

  err = put_header_item(s, "host", r->host, &h[s->nh++]);
  if (err == 0)
    err = put_header_item(s, "x-amz-content-sha256", r->payload_hash,
                          &h[s->nh++]);
  if (err == 0)
    err = put_header_item(s, "x-amz-date", s->amz_date, &h[s->nh++]);
  if (err == 0 && r->session_token != NULL)
    err = put_header_item(s, "x-amz-security-token", r->session_token,
                          &h[s->nh++]);
  for (i = 0; err == 0 && i < r->n_headers; i++)
    err =
        put_header_item(s, r->headers[i].key, r->headers[i].value, &h[s->nh++]);
  if (err != 0)
    return err;
  qsort_r(h, s->nh, sizeof(*h), item_cmp, s->scratch.data);
  for (i = 1; i < s->nh; i++)
    if (h[i].name_len == h[i - 1].name_len &&
        memcmp(s->scratch.data + h[i].name, s->scratch.data + h[i - 1].name,
               h[i].name_len) == 0)
      return BH_EINVAL;
  return 0;
}

static int
gather(signing *s) {
  const bh__sigv4_req *r = s->req;
  int err;

  s->items =
      bh__malloc((r->n_query + r->n_headers + FIXED_HEADERS) * sizeof(item));
  if (s->items == NULL)
    return BH_ENOMEM;
  err = gather_query(s);
  if (err == 0)
    err = gather_headers(s);
  if (err == 0 && r->n_query > 0)
    qsort_r(s->items, r->n_query, sizeof(item), item_cmp, s->scratch.data);
  return err;
}

/* ------------------------------------------------------------------------
 * The canonical request, into the output block. */

static int
put_str(bh__buf *b, const char *s) {
  return bh__buf_append(b, s, strlen(s));
}

static int
put_item(bh__buf *b, const signing *s, const item *it, char sep) {
  int err;

  err = bh__buf_append(b, s->scratch.data + it->name, it->name_len);
  if (err == 0)
    err = bh__buf_append(b, &sep, 1);
  if (err == 0)
    err = bh__buf_append(b, s->scratch.data + it->value, it->value_len);
  return err;
}

/* name1;name2;... */
static int
put_signed_headers(bh__buf *b, const signing *s) {
  const item *h = s->items + s->req->n_query;
  size_t i;
  int err = 0;

  for (i = 0; err == 0 && i < s->nh; i++) {
    if (i > 0)
      err = bh__buf_append(b, ";", 1);
    if (err == 0)
      err = bh__buf_append(b, s->scratch.data + h[i].name, h[i].name_len);
  }
  return err;
}

/* The URI and query lines, whose lengths it records for the target. */
static int
put_uri_query(signing *s) {
  bh__buf *b = &s->out;
  size_t i, start = b->len;
  int err;

  err = put_encoded(b, s->req->path, true);
  s->uri_len = b->len - start;
  if (err == 0)
    err = bh__buf_append(b, "\n", 1);
  start = b->len;
  for (i = 0; err == 0 && i < s->req->n_query; i++) {
    if (i > 0)
      err = bh__buf_append(b, "&", 1);
    if (err == 0)
      err = put_item(b, s, &s->items[i], '=');
  }
  s->query_len = b->len - start;
  return err;
}

/* METHOD \n URI \n QUERY \n (name:value \n)* \n SIGNED \n HASH, then a
 * NUL. */
static int
put_canonical(signing *s) {
  const item *h = s->items + s->req->n_query;
  bh__buf *b = &s->out;
  size_t i;
  int err;

  err = put_str(b, s->req->method);
  if (err == 0)
    err = bh__buf_append(b, "\n", 1);
  if (err == 0)
    err = put_uri_query(s);
  if (err == 0)
    err = bh__buf_append(b, "\n", 1);
  for (i = 0; err == 0 && i < s->nh; i++) {
    err = put_item(b, s, &h[i], ':');
    if (err == 0)
      err = bh__buf_append(b, "\n", 1);
  }
  if (err == 0)
    err = bh__buf_append(b, "\n", 1);
  if (err == 0)
    err = put_signed_headers(b, s);
  if (err == 0)
    err = bh__buf_append(b, "\n", 1);
  if (err == 0)
    err = put_str(b, s->req->payload_hash);
  return err == 0 ? bh__buf_append(b, "", 1) : err;
}

/* ------------------------------------------------------------------------
 * The signature. */

static void
to_hex(const unsigned char *p, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < n; i++) {
    out[2 * i] = hex[p[i] >> 4];
    out[2 * i + 1] = hex[p[i] & 15];
  }
  out[2 * n] = '\0';
}

int
bh__sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[SHA256_DIGEST_LENGTH];

  if (data == NULL && len > 0)
    return BH_EINVAL;
  /* libcrypto fails only to allocate (OpenSSL 3 fetches the digest). */
  if (SHA256(len > 0 ? data : (const void *)"", len, md) == NULL)
    return BH_ENOMEM;
  to_hex(md, sizeof(md), out);
  return 0;
}

static int
hmac(const void *key, size_t key_len, const char *msg, size_t len,
     unsigned char out[32]) {
  unsigned int n = 0;

  if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, len,
           out, &n) == NULL ||
      n != 32)
    return BH_ENOMEM;
  return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, day), region), service),
 * "aws4_request"). */
static int
derive_key(const bh__sigv4_req *r, const char *day, unsigned char k[32]) {
  unsigned char a[32], b[32];
  char *secret;
  int err;

  secret = bh__asprintf("AWS4%s", r->secret_key);
  if (secret == NULL)
    return BH_ENOMEM;
  err = hmac(secret, strlen(secret), day, 8, a);
  if (err == 0)
    err = hmac(a, 32, r->region, strlen(r->region), b);
  if (err == 0)
    err = hmac(b, 32, r->service, strlen(r->service), a);
  if (err == 0)
    err = hmac(a, 32, "aws4_request", 12, k);
  OPENSSL_cleanse(secret, strlen(secret));
  OPENSSL_cleanse(a, sizeof(a));
  OPENSSL_cleanse(b, sizeof(b));
  bh__free(secret);
  return err;
}

/* What a key is derived from, NUL-separated into id; false when it does
 * not fit (the key is then derived anew, never kept). */
static bool
key_id(const bh__sigv4_req *r, const char *day, char *id, size_t *len) {
  const char *parts[4] = {r->secret_key, day, r->region, r->service};
  size_t i, n, at = 0;

  for (i = 0; i < 4; i++) {
    n = i == 1 ? 8 : strlen(parts[i]);
    if (n >= BH__SIGV4_KEY_ID - at)
      return false;
    memcpy(id + at, parts[i], n);
    id[at + n] = '\0';
    at += n + 1;
  }
  *len = at;
  return true;
}

static int
signing_key(const bh__sigv4_req *r, const char *day, bh__sigv4_key *kept,
            unsigned char k[32]) {
  char id[BH__SIGV4_KEY_ID];
  size_t len;
  int err = 0;

  if (kept == NULL || !key_id(r, day, id, &len))
    return derive_key(r, day, k);
  if (kept->id_len == len && memcmp(kept->id, id, len) == 0) {
    memcpy(k, kept->key, 32);
  } else {
    err = derive_key(r, day, k);
    if (err == 0) {
      memcpy(kept->id, id, len);
      kept->id_len = len;
      memcpy(kept->key, k, 32);
    }
  }
  OPENSSL_cleanse(id, sizeof(id));
  return err;
}

/* ALGORITHM \n DATE \n DAY/REGION/SERVICE/aws4_request \n hex(SHA256(
 * canonical)), signed with the key into 64 hex digits. */
static int
sign(const signing *s, bh__sigv4_key *kept, char sig[65]) {
  const bh__sigv4_req *r = s->req;
  unsigned char k[32], mac[32];
  char hash[65], *sts;
  int err;

  err = bh__sha256_hex(s->out.data, strlen(s->out.data), hash);
  if (err != 0)
    return err;
  sts = bh__asprintf(ALGORITHM "\n%s\n%.8s/%s/%s/aws4_request\n%s", s->amz_date,
                     s->amz_date, r->region, r->service, hash);
  if (sts == NULL)
    return BH_ENOMEM;
  err = signing_key(r, s->amz_date, kept, k);
  if (err == 0)
    err = hmac(k, sizeof(k), sts, strlen(sts), mac);
  if (err == 0)
    to_hex(mac, sizeof(mac), sig);
  OPENSSL_cleanse(k, sizeof(k));
  bh__free(sts);
  return err;
}

/* ------------------------------------------------------------------------
 * The output block: canonical \0 target \0 amz_date \0 authorization \0
 * then each header's name \0 value \0. */

static int
put_target(signing *s) {
  bh__buf *b = &s->out;
  size_t uri = strlen(s->req->method) + 1; /* the URI line's offset */
  int err;

  /* The copies come from b itself, which may move as it grows. */
  err = bh__buf_reserve(b, s->uri_len + 1 + s->query_len + 1);
  if (err != 0)
    return err;
  bh__buf_append(b, b->data + uri, s->uri_len);
  if (s->query_len > 0) {
    bh__buf_append(b, "?", 1);
    bh__buf_append(b, b->data + uri + s->uri_len + 1, s->query_len);
  }
  return bh__buf_append(b, "", 1);
}

static int
put_authorization(signing *s, const char sig[65]) {
  const bh__sigv4_req *r = s->req;
  bh__buf *b = &s->out;
  char *cred;
  int err;

  cred = bh__asprintf(ALGORITHM " Credential=%s/%.8s/%s/%s/aws4_request, "
                                "SignedHeaders=",
                      r->access_key, s->amz_date, r->region, r->service);
  if (cred == NULL)
    return BH_ENOMEM;
  err = put_str(b, cred);
  bh__free(cred);
  if (err == 0)
    err = put_signed_headers(b, s);
  if (err == 0)
    err = put_str(b, ", Signature=");
  if (err == 0)
    err = bh__buf_append(b, sig, 65); /* with its NUL */
  return err;
}

static int
put_headers(signing *s) {
  const item *h = s->items + s->req->n_query;
  size_t i;
  int err = 0;

  for (i = 0; err == 0 && i < s->nh; i++) {
    err = put_item(&s->out, s, &h[i], '\0');
    if (err == 0)
      err = bh__buf_append(&s->out, "", 1);
  }
  return err;
}

/* Points out's fields into the block (which stops moving here) and hands
 * it over. */
static int
hand_over(signing *s, bh__sigv4_out *out) {
  char *p = s->out.data;
  size_t i;

  out->headers = bh__malloc(s->nh * sizeof(bh__kv));
  if (out->headers == NULL)
    return BH_ENOMEM;
  out->canonical = p;
  p += strlen(p) + 1;
  out->target = p;
  p += strlen(p) + 1;
  out->amz_date = p;
  p += strlen(p) + 1;
  out->authorization = p;
  p += strlen(p) + 1;
  for (i = 0; i < s->nh; i++) {
    out->headers[i].key = p;
    p += strlen(p) + 1;
    out->headers[i].value = p;
    p += strlen(p) + 1;
  }
  out->n_headers = s->nh;
  s->out.data = NULL; /* out owns it now */
  return 0;
}

static int
put_outputs(signing *s, bh__sigv4_key *kept, bh__sigv4_out *out) {
  char sig[65];
  int err;

  err = put_canonical(s);
  if (err == 0)
    err = sign(s, kept, sig);
  if (err == 0)
    err = put_target(s);
  if (err == 0)
    err = bh__buf_append(&s->out, s->amz_date, sizeof(s->amz_date));
  if (err == 0)
    err = put_authorization(s, sig);
  if (err == 0)
    err = put_headers(s);
  if (err == 0)
    err = hand_over(s, out);
  return err;
}

int
bh__sigv4_sign(const bh__sigv4_req *req, bh__sigv4_key *kept,
               bh__sigv4_out *out) {
  signing s;
  int err;

  if (out == NULL)
    return BH_EINVAL;
  memset(out, 0, sizeof(*out));
  err = check_req(req);
  if (err != 0)
    return err;
  memset(&s, 0, sizeof(s));
  s.req = req;
  format_date(req->when, s.amz_date);
  err = gather(&s);
  if (err == 0)
    err = put_outputs(&s, kept, out);
  bh__buf_free(&s.scratch);
  bh__free(s.items);
  bh__free(s.out.data); /* NULL once handed over */
  return err;
}

void
bh__sigv4_out_free(bh__sigv4_out *out) {
  if (out == NULL)
    return;
  bh__free(out->canonical); /* the block */
  bh__free(out->headers);
  memset(out, 0, sizeof(*out));
}

void
bh__sigv4_key_clear(bh__sigv4_key *key) {
  if (key != NULL)
    OPENSSL_cleanse(key, sizeof(*key));
}
