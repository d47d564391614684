/* test_sigv4.c - S3 request signatures (src/io/sigv4.c): AWS's published
 * examples, the S3 encoding rules, thousands of random requests checked
 * against botocore's signer (tests/sigv4_check.py), the kept key, bad
 * input and failed allocations. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "alloc_util.h"
#include "runner.h"
#include "io/sigv4.h"

/* Debian's python3-botocore lives under the system interpreter. */
#define PYTHON "/usr/bin/python3"
#define CHECKER BH_TEST_SRC_DIR "/sigv4_check.py"
#define N_RANDOM 2000

#define EXAMPLE_AK "AKIAIOSFODNN7EXAMPLE"
#define EXAMPLE_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EXAMPLE_WHEN INT64_C(1369353600) /* 20130524T000000Z */
#define EMPTY_SHA256                                                         \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* AWS's examples: GET from examplebucket with the empty payload's hash. */
static bh__sigv4_req
example_req(const char *path) {
  bh__sigv4_req r = {0};

  r.method = "GET";
  r.host = "examplebucket.s3.amazonaws.com";
  r.path = path;
  r.payload_hash = EMPTY_SHA256;
  r.region = "us-east-1";
  r.service = "s3";
  r.access_key = EXAMPLE_AK;
  r.secret_key = EXAMPLE_SK;
  r.when = EXAMPLE_WHEN;
  return r;
}

static const char *
signature_of(const bh__sigv4_out *o) {
  const char *s = strstr(o->authorization, "Signature=");

  return s != NULL ? s + strlen("Signature=") : "";
}

/* The value of header `name` among those to send, or NULL. */
static const char *
sent(const bh__sigv4_out *o, const char *name) {
  size_t i;

  for (i = 0; i < o->n_headers; i++)
    if (strcmp(o->headers[i].key, name) == 0)
      return o->headers[i].value;
  return NULL;
}

/* ------------------------------------------------------------------------
 * 1. AWS's examples (Amazon S3 API Reference, "Signature Calculations for
 * the Authorization Header: Transferring Payload in a Single Chunk"); the
 * three GETs were also checked with botocore. */

TEST(aws_example_get_object) {
  bh__kv range = {"Range", "bytes=0-9"};
  bh__sigv4_req r = example_req("/test.txt");
  bh__sigv4_out o;

  r.headers = &range;
  r.n_headers = 1;
  ASSERT_INT_EQ(bh__sigv4_sign(&r, NULL, &o), 0);
  ASSERT_STR_EQ(o.authorization,
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
                "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
                "x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c9644"
                "20e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  ASSERT_STR_EQ(o.canonical,
                "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
                "range:bytes=0-9\nx-amz-content-sha256:" EMPTY_SHA256 "\n"
                "x-amz-date:20130524T000000Z\n\n"
                "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
  ASSERT_STR_EQ(o.target, "/test.txt");
  ASSERT_STR_EQ(o.amz_date, "20130524T000000Z");
  bh__sigv4_out_free(&o);
  return 0;
}

TEST(aws_example_put_object) {
  static const char body[] = "Welcome to Amazon S3.";
  bh__kv h[] = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  bh__sigv4_req r = example_req("/test$file.text");
  bh__sigv4_out o;
  char hash[65];

  ASSERT_INT_EQ(bh__sha256_hex(body, strlen(body), hash), 0);
  ASSERT_STR_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e420"
                      "34a8b803f8b072");
  r.method = "PUT";
  r.payload_hash = hash;
  r.headers = h;
  r.n_headers = 2;
  ASSERT_INT_EQ(bh__sigv4_sign(&r, NULL, &o), 0);
  ASSERT_STR_EQ(o.target, "/test%24file.text");
  ASSERT_STR_EQ(signature_of(&o), "98ad721746da40c64f1a55b78f14c238d841ea1"
                                  "380cd77a1b5971af0ece108bd");
  bh__sigv4_out_free(&o);
  return 0;
}

TEST(aws_example_lifecycle_and_list) {
  bh__kv lifecycle = {"lifecycle", ""};
  bh__kv list[] = {{"prefix", "J"}, {"max-keys", "2"}};
  bh__sigv4_req r = example_req("/");
  bh__sigv4_out o;

  r.query = &lifecycle;
  r.n_query = 1;
  ASSERT_INT_EQ(bh__sigv4_sign(&r, NULL, &o), 0);
  ASSERT_STR_EQ(o.target, "/?lifecycle=");
  ASSERT_STR_EQ(signature_of(&o), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c6"
                                  "99e0f91ac7a200a0136783543");
  bh__sigv4_out_free(&o);
  r.query = list;
  r.n_query = 2;
  ASSERT_INT_EQ(bh__sigv4_sign(&r, NULL, &o), 0);
  ASSERT_STR_EQ(o.target, "/?max-keys=2&prefix=J");
  ASSERT_STR_EQ(signature_of(&o), "34b48302e7b5fa45bde8084f4b7868a86f0a534"
                                  "bc59db6670ed5711ef69dc6f7");
  bh__sigv4_out_free(&o);
  return 0;
}

TEST(sha256_hex) {
  char *big, h[65];

  ASSERT_INT_EQ(bh__sha256_hex(NULL, 0, h), 0);
  ASSERT_STR_EQ(h, EMPTY_SHA256);
  ASSERT_INT_EQ(bh__sha256_hex("abc", 3, h), 0);
  ASSERT_STR_EQ(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff"
                   "61f20015ad");
  big = malloc(1000000);
  ASSERT(big != NULL);
  memset(big, 'a', 1000000);
  ASSERT_INT_EQ(bh__sha256_hex(big, 1000000, h), 0);
  free(big);
  ASSERT_STR_EQ(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39"
                   "ccc7112cd0");
  ASSERT_INT_EQ(bh__sha256_hex(NULL, 1, h), BH_EINVAL);
  return 0;
}

/* ------------------------------------------------------------------------
 * 2. S3's encoding, sorting and header forms. */

TEST(encodes_the_s3_way) {
  bh__kv q[] = {{"prefix", "a/b c+d=e&f"}, {"uploads", ""},
                {"a/", "2"},               {"a.", "1"},
                {"k", "\xc3\xbc~"},        {"k", "-"}};
  bh__kv h[] = {{"X-Amz-Meta-Note", " \t two  \t words\t "},
                {"Content-Type", "text/plain"}};
  bh__sigv4_req r = example_req("/b//a b+c%/./../\xc3\xbc~=&?#/");
  bh__sigv4_out o;

  r.query = q;
  r.n_query = 6;
  r.headers = h;
  r.n_headers = 2;
  r.session_token = "tok+/=";
  ASSERT_INT_EQ(bh__sigv4_sign(&r, NULL, &o), 0);
  /* No normalisation; '/' kept in the path only; the order of the encoded
   * bytes, where "a%2F" comes before "a." and "%C3%BC~" before "-" ('%' is
   * 0x25), not that of the decoded ones. */
  ASSERT_STR_EQ(o.target,
                "/b//a%20b%2Bc%25/./../%C3%BC~%3D%26%3F%23/"
                "?a%2F=2&a.=1&k=%C3%BC~&k=-&prefix=a%2Fb%20c%2Bd%3De%26f"
                "&uploads=");
  ASSERT_INT_EQ(o.n_headers, 6);
  ASSERT_STR_EQ(o.headers[0].key, "content-type");
  ASSERT_STR_EQ(o.headers[1].key, "host");
  ASSERT_STR_EQ(sent(&o, "x-amz-meta-note"), "two words");
  ASSERT_STR_EQ(sent(&o, "x-amz-security-token"), "tok+/=");
  ASSERT_STR_EQ(sent(&o, "x-amz-date"), o.amz_date);
  ASSERT_STR_EQ(sent(&o, "x-amz-content-sha256"), EMPTY_SHA256);
  ASSERT(strstr(o.authorization, "SignedHeaders=content-type;host;"
                                 "x-amz-content-sha256;x-amz-date;"
                                 "x-amz-meta-note;x-amz-security-token,"));
  bh__sigv4_out_free(&o);
  return 0;
}

/* ------------------------------------------------------------------------
 * 3. Random requests, checked here for consistency (the target and the
 * headers are the canonical request's own lines; the kept key changes
 * nothing) and by botocore for the signature. */

static uint64_t rng = 0x5eed5161f4ULL;

static uint64_t
next(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545f4914f6cdd1dULL;
}

static size_t
pick(size_t n) {
  return (size_t)(next() % n);
}

#define PICK(a) ((a)[pick(sizeof(a) / sizeof((a)[0]))])

/* Bits of keys, prefixes and values: S3's awkward characters, multibyte
 * UTF-8, dot segments, blanks. */
static const char *const atoms[] = {
    "a", "dir", "Key", "key with space", "+", "x+y", "%", "%2F", "%20", "~",
    "=", "&", "?", "#", "\xc3\xbc", "\xe6\x97\xa5\xe6\x9c\xac",
    "\xf0\x9f\x98\x80", ".", "..", "a  b", "$", "!", "'", "(", ")", "*", ",",
    ";", ":", "@", "[", "]", "\\", "^", "`", "{", "}", "|", "\"", "<", ">",
    "\t", "\x7f", "\x01", "-", "_", "file.txt", "0"};

typedef struct gen {
  char scheme_host[96];
  char host[80];
  char path[512];
  char strs[16][2048]; /* query values, header values, token... */
  int nstr;
  bh__kv query[8];
  bh__kv headers[6];
  unsigned char body[64];
  size_t body_len;
  bool unsigned_payload;
  char hash[65];
  char ak[24], sk[48];
  bh__sigv4_req req;
} gen;

static char *
gen_str(gen *g) {
  return g->strs[g->nstr++];
}

/* `n` atoms run together (at most 500 bytes), into s. */
static void
gen_atoms(char *s, size_t n) {
  s[0] = '\0';
  while (n-- > 0)
    strcat(s, PICK(atoms));
}

static void
gen_path(gen *g) {
  size_t i, n = 1 + pick(5);

  strcpy(g->path, pick(2) ? "/bucket-1" : "");
  for (i = 0; i < n; i++) {
    strcat(g->path, "/");
    switch (pick(8)) {
    case 0: /* an empty segment: "//" */
      break;
    case 1: /* a dot segment, which S3 keeps */
      strcat(g->path, pick(2) ? "." : "..");
      break;
    default:
      gen_atoms(g->path + strlen(g->path), 1 + pick(3));
    }
  }
  if (pick(4) == 0)
    strcat(g->path, "/");
}

static void
gen_chars(char *s, size_t n, const char *set) {
  size_t i, k = strlen(set);

  for (i = 0; i < n; i++)
    s[i] = set[pick(k)];
  s[n] = '\0';
}

#define B64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

static void
gen_query(gen *g) {
  static const char *const fixed[][2] = {
      {"list-type", "2"}, {"delimiter", "/"}, {"uploads", ""},
      {"max-keys", "1000"}, {"partNumber", "3"}, {"versionId", ""},
      {"encoding-type", "url"}};
  size_t i, n = pick(6);
  char *s;

  for (i = 0; i < n; i++) {
    bh__kv *kv = &g->query[i];
    switch (pick(5)) {
    case 0: case 1:
      kv->key = fixed[pick(7)][0]; /* then its value or another */
      kv->value = pick(2) ? "" : fixed[pick(7)][1];
      break;
    case 2:
      kv->key = "continuation-token";
      s = gen_str(g);
      gen_chars(s, 1 + pick(80), B64 "=");
      kv->value = s;
      break;
    default:
      kv->key = pick(3) ? "prefix" : PICK(atoms);
      s = gen_str(g);
      gen_atoms(s, pick(6));
      kv->value = s;
    }
  }
  g->req.query = g->query;
  g->req.n_query = n;
}

/* Up to 5 headers of distinct names, in random case. */
static void
gen_headers(gen *g) {
  static const char *const names[] = {"Range", "content-type", "Content-MD5",
                                      "x-amz-meta-Note", "X-Amz-Meta-empty",
                                      "x-amz-storage-class", "If-None-Match",
                                      "x-amz-copy-source", "Cache-Control"};
  static const char *const values[] = {
      "bytes=0-9", "text/plain; charset=utf-8", "1B2M2Y8AsgTpgAmY7PhCfg==",
      "  value   with \t inner  spaces ", "   ", "STANDARD", "\"etag\"",
      "/bucket/key%20x", "no-cache,  no-store"};
  size_t i, j, n = 0;
  char *s;

  for (i = 0; i < 9; i++) {
    if (pick(3) != 0 || n == 5)
      continue;
    s = gen_str(g);
    strcpy(s, names[i]);
    for (j = 0; s[j] != '\0'; j++)
      if (pick(4) == 0)
        s[j] = (char)(islower((unsigned char)s[j]) ? toupper(s[j])
                                                    : tolower(s[j]));
    g->headers[n].key = s;
    g->headers[n++].value = values[i];
  }
  g->req.headers = g->headers;
  g->req.n_headers = n;
}

/* curl's Host: the port only when it is not the scheme's default. */
static void
gen_host(gen *g) {
  static const char *const hosts[] = {"examplebucket.s3.amazonaws.com",
                                      "s3.eu-west-3.amazonaws.com",
                                      "localhost", "127.0.0.1", "[::1]",
                                      "minio-1.internal"};
  static const char *const ports[] = {"", "", "443", "80", "9000", "8080"};
  const char *host = PICK(hosts), *port = PICK(ports);
  bool https = pick(2);
  bool dflt = strcmp(port, https ? "443" : "80") == 0;

  snprintf(g->scheme_host, sizeof(g->scheme_host), "%s://%s%s%s",
           https ? "https" : "http", host, *port ? ":" : "", port);
  snprintf(g->host, sizeof(g->host), "%s%s%s", host,
           *port && !dflt ? ":" : "", dflt ? "" : port);
  g->req.host = g->host;
}

static void
gen_credentials(gen *g) {
  static const char *const regions[] = {"us-east-1", "eu-west-3",
                                        "ap-southeast-2", "us-gov-west-1",
                                        "auto"};
  char *tok;

  /* A few secrets only, so that the kept key is both reused and
   * replaced. */
  strcpy(g->ak, "AKIA");
  gen_chars(g->ak + 4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
  strcpy(g->sk, pick(8) ? EXAMPLE_SK : "");
  if (g->sk[0] == '\0')
    gen_chars(g->sk, 40, B64);
  g->req.access_key = g->ak;
  g->req.secret_key = g->sk;
  g->req.region = PICK(regions);
  g->req.service = "s3";
  g->req.session_token = NULL;
  if (pick(2)) {
    tok = gen_str(g);
    gen_chars(tok, pick(3) ? 16 + pick(200) : 1000 + pick(1000), B64 "=");
    g->req.session_token = tok;
  }
}

static void
gen_body(gen *g) {
  size_t i;

  g->unsigned_payload = pick(5) < 2;
  g->body_len = pick(3) ? pick(sizeof(g->body) + 1) : 0;
  for (i = 0; i < g->body_len; i++)
    g->body[i] = (unsigned char)next();
  bh__sha256_hex(g->body, g->body_len, g->hash);
  g->req.payload_hash = g->unsigned_payload ? "UNSIGNED-PAYLOAD" : g->hash;
}

static void
gen_request(gen *g) {
  static const char *const methods[] = {"GET", "PUT", "HEAD", "DELETE",
                                        "POST"};

  memset(g, 0, sizeof(*g));
  g->req.method = PICK(methods);
  gen_host(g);
  gen_path(g);
  g->req.path = g->path;
  gen_query(g);
  gen_headers(g);
  gen_credentials(g);
  gen_body(g);
  /* 1970 to 2100, the same day now and then (the kept key is reused). */
  g->req.when = pick(3) ? (int64_t)(next() % INT64_C(4102444800))
                        : EXAMPLE_WHEN + (int64_t)pick(86400);
}

/* ------------------------------------------------------------------------
 * JSON lines for the checker. */

static void
json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s != NULL && *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static void
json_kvs(FILE *f, const bh__kv *kv, size_t n) {
  size_t i;

  fputc('[', f);
  for (i = 0; i < n; i++) {
    fputs(i > 0 ? ",[" : "[", f);
    json_str(f, kv[i].key);
    fputc(',', f);
    json_str(f, kv[i].value);
    fputc(']', f);
  }
  fputc(']', f);
}

static void
json_field(FILE *f, const char *name, const char *value) {
  fprintf(f, ",\"%s\":", name);
  if (value != NULL)
    json_str(f, value);
  else
    fputs("null", f);
}

static void
write_request(FILE *f, const gen *g, const bh__sigv4_out *o) {
  const bh__sigv4_req *r = &g->req;
  size_t i;

  fprintf(f, "{\"when\":%" PRId64, r->when);
  json_field(f, "method", r->method);
  json_field(f, "scheme_host", g->scheme_host);
  json_field(f, "host", r->host);
  json_field(f, "path", r->path);
  fputs(",\"query\":", f);
  json_kvs(f, r->query, r->n_query);
  fputs(",\"headers\":", f);
  json_kvs(f, r->headers, r->n_headers);
  fputs(",\"body_hex\":", f);
  if (g->unsigned_payload) {
    fputs("null", f);
  } else {
    fputc('"', f);
    for (i = 0; i < g->body_len; i++)
      fprintf(f, "%02x", g->body[i]);
    fputc('"', f);
  }
  json_field(f, "payload_hash", r->payload_hash);
  json_field(f, "region", r->region);
  json_field(f, "access_key", r->access_key);
  json_field(f, "secret_key", r->secret_key);
  json_field(f, "token", r->session_token);
  fputs(",\"ours\":{\"headers\":", f);
  json_kvs(f, o->headers, o->n_headers);
  json_field(f, "target", o->target);
  json_field(f, "amz_date", o->amz_date);
  json_field(f, "authorization", o->authorization);
  json_field(f, "canonical", o->canonical);
  fputs("}}\n", f);
}

/* The canonical request's line `k` (0-based), into buf. */
static const char *
line_of(const char *text, int k, char *buf, size_t size) {
  size_t n;

  while (k-- > 0 && text != NULL)
    text = strchr(text, '\n') ? strchr(text, '\n') + 1 : NULL;
  if (text == NULL)
    return "";
  n = strcspn(text, "\n");
  snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), text);
  return buf;
}

/* What the checker cannot see: the target is the canonical URI '?' query,
 * each header sent is a canonical header line, and the kept key changes
 * nothing. */
static int
check_consistent(const gen *g, const bh__sigv4_out *o,
                 bh__sigv4_key *kept) {
  char uri[4096], query[4096], want[8200], line[4096], hline[4200];
  bh__sigv4_out fresh;
  size_t i;

  line_of(o->canonical, 1, uri, sizeof(uri));
  line_of(o->canonical, 2, query, sizeof(query));
  snprintf(want, sizeof(want), "%s%s%s", uri, *query ? "?" : "", query);
  ASSERT_STR_EQ(o->target, want);
  for (i = 0; i < o->n_headers; i++) {
    snprintf(hline, sizeof(hline), "%s:%s", o->headers[i].key,
             o->headers[i].value);
    ASSERT_STR_EQ(line_of(o->canonical, 3 + (int)i, line, sizeof(line)),
                  hline);
  }
  ASSERT_INT_EQ(bh__sigv4_sign(&g->req, kept, &fresh), 0);
  ASSERT_STR_EQ(fresh.authorization, o->authorization);
  bh__sigv4_out_free(&fresh);
  return 0;
}

/* Runs the checker on `path`; returns how many requests it checked and
 * agreed with, or -1 when it failed (its report goes to stderr). */
static int
run_checker(const char *path) {
  char cmd[1024], line[8192];
  int checked = -1, mismatches = -1, status;
  FILE *p;

  snprintf(cmd, sizeof(cmd), PYTHON " " CHECKER " %s 2>&1", path);
  p = popen(cmd, "r");
  if (p == NULL)
    return -1;
  while (fgets(line, sizeof(line), p) != NULL) {
    fputs(line, stderr);
    sscanf(line, "sigv4_check: checked %d requests, %d mismatches",
           &checked, &mismatches);
  }
  status = pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || mismatches != 0)
    return -1;
  return checked;
}

TEST(matches_botocore) {
  char path[] = "/tmp/bh_sigv4_XXXXXX";
  bh__sigv4_key kept = {0};
  bh__sigv4_out o;
  size_t live0 = bh__alloc_live();
  int i, fd, checked;
  gen *g = malloc(sizeof(*g));
  FILE *f;

  ASSERT(g != NULL);
  fd = mkstemp(path);
  ASSERT(fd >= 0);
  f = fdopen(fd, "w");
  ASSERT(f != NULL);
  for (i = 0; i < N_RANDOM; i++) {
    gen_request(g);
    ASSERT_INT_EQ(bh__sigv4_sign(&g->req, i % 3 ? &kept : NULL, &o), 0);
    write_request(f, g, &o);
    ASSERT_INT_EQ(check_consistent(g, &o, NULL), 0);
    bh__sigv4_out_free(&o);
  }
  ASSERT_INT_EQ(fclose(f), 0);
  checked = run_checker(path);
  unlink(path);
  free(g);
  bh__sigv4_key_clear(&kept);
  ASSERT_INT_EQ(checked, N_RANDOM);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ------------------------------------------------------------------------
 * 4. The kept key. */

TEST(kept_key_follows_its_inputs) {
  static const char *const secrets[] = {EXAMPLE_SK, "other/secret+key"};
  static const char *const regions[] = {"us-east-1", "eu-west-1"};
  bh__sigv4_req r = example_req("/k");
  bh__sigv4_key kept = {0};
  bh__sigv4_out a, b;
  char long_secret[400];
  int i;

  memset(long_secret, 'S', sizeof(long_secret) - 1);
  long_secret[sizeof(long_secret) - 1] = '\0';
  for (i = 0; i < 24; i++) {
    r.secret_key = i % 7 == 6 ? long_secret : secrets[(i / 2) % 2];
    r.region = regions[(i / 3) % 2];
    r.service = i % 5 == 4 ? "s3-object-lambda" : "s3";
    r.when = EXAMPLE_WHEN + (i / 4) * 86400 + i;
    ASSERT_INT_EQ(bh__sigv4_sign(&r, NULL, &a), 0);
    ASSERT_INT_EQ(bh__sigv4_sign(&r, &kept, &b), 0);
    ASSERT_STR_EQ(a.authorization, b.authorization);
    /* A secret too long to keep is derived anew and not kept. */
    if (r.secret_key == long_secret)
      ASSERT(kept.id_len == 0 || memcmp(kept.id, "SSSS", 4) != 0);
    else
      ASSERT(kept.id_len > 0 && strcmp(kept.id, r.secret_key) == 0);
    bh__sigv4_out_free(&a);
    bh__sigv4_out_free(&b);
  }
  bh__sigv4_key_clear(&kept);
  ASSERT_INT_EQ(kept.id_len, 0);
  return 0;
}

/* ------------------------------------------------------------------------
 * 5. Bad input. */

/* Signs the GET example changed by `change` (which sets fields of r_, a
 * variable of the calling test); the result. */
#define SIGN_WITH(change) (r_ = example_req("/k"), (change), sign_with(&r_))

static int
sign_with(const bh__sigv4_req *r) {
  bh__sigv4_out o;
  int err;

  memset(&o, 0x55, sizeof(o));
  err = bh__sigv4_sign(r, NULL, &o);
  if (err != 0 && (o.canonical != NULL || o.headers != NULL))
    return 1; /* not zeroed on failure */
  bh__sigv4_out_free(&o);
  return err;
}

TEST(refuses_bad_requests) {
  static bh__kv empty_name = {"", "v"}, null_value = {"a", NULL};
  static bh__kv bad_headers[][2] = {
      {{"x-a b", "v"}}, {{"x-a:", "v"}}, {{"", "v"}}, {{NULL, "v"}},
      {{"x-a", "a\r\nx-b: c"}}, {{"x-a", "\xc3\xbc"}}, {{"x-a", NULL}},
      {{"Authorization", "x"}}, {{"Host", "h"}}, {{"X-Amz-Date", "x"}},
      {{"x-amz-content-sha256", "x"}}, {{"Range", "a"}, {"range", "b"}}};
  bh__sigv4_req r_;
  bh__sigv4_out o;
  size_t i;

  ASSERT_INT_EQ(bh__sigv4_sign(NULL, NULL, &o), BH_EINVAL);
  ASSERT(o.canonical == NULL && o.headers == NULL);
  ASSERT_INT_EQ(SIGN_WITH((void)0), 0);
  ASSERT_INT_EQ(bh__sigv4_sign(&(bh__sigv4_req){0}, NULL, NULL), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.method = NULL), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.method = ""), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.method = "get"), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.host = NULL), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.host = "a b"), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.path = NULL), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.path = "k"), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.path = ""), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.n_query = 1), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.n_headers = 1), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH((r_.query = &empty_name, r_.n_query = 1)),
                BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH((r_.query = &null_value, r_.n_query = 1)),
                BH_EINVAL);
  for (i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++)
    ASSERT_INT_EQ(SIGN_WITH((r_.headers = bad_headers[i],
                             r_.n_headers = bad_headers[i][1].key ? 2 : 1)),
                  BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH((r_.headers = (bh__kv[]){{"x-amz-security-token",
                                                    "t"}},
                           r_.n_headers = 1, r_.session_token = "t")),
                BH_EINVAL);
  return 0;
}

TEST(refuses_bad_credentials_and_times) {
  bh__sigv4_req r_;

  ASSERT_INT_EQ(SIGN_WITH(r_.payload_hash = NULL), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.payload_hash = "abc"), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB9"
                                           "2427AE41E4649B934CA495991B7852B8"
                                           "55"),
                BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.payload_hash = "unsigned-payload"), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.payload_hash = "UNSIGNED-PAYLOAD"), 0);
  ASSERT_INT_EQ(SIGN_WITH(r_.region = NULL), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.region = "us/east"), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.service = ""), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.access_key = "AK,X"), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.access_key = NULL), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.secret_key = NULL), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.secret_key = ""), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.session_token = ""), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.session_token = "a\nb"), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.when = -1), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.when = INT64_C(253402300800)), BH_EINVAL);
  ASSERT_INT_EQ(SIGN_WITH(r_.when = INT64_C(253402300799)), 0);
  ASSERT_INT_EQ(SIGN_WITH(r_.when = 0), 0);
  return 0;
}

/* ------------------------------------------------------------------------
 * 6. Failed allocations: each one in turn fails the call with BH_ENOMEM
 * and leaks nothing; past the last, the result is the usual one. */

TEST(fails_cleanly_without_memory) {
  bh__kv q = {"prefix", "a b"}, h = {"Range", "bytes=0-9"};
  bh__sigv4_req r = example_req("/dir/key with space");
  bh__sigv4_key kept = {0};
  bh__sigv4_out want, o;
  size_t live0 = bh__alloc_live(), live1;
  int err = BH_ENOMEM, fail_at;

  r.query = &q;
  r.n_query = 1;
  r.headers = &h;
  r.n_headers = 1;
  r.session_token = "token";
  ASSERT_INT_EQ(bh__sigv4_sign(&r, NULL, &want), 0);
  live1 = bh__alloc_live();
  for (fail_at = 1; err == BH_ENOMEM; fail_at++) {
    fail_alloc_at(fail_at);
    err = bh__sigv4_sign(&r, fail_at % 2 ? &kept : NULL, &o);
    fail_alloc_off();
    ASSERT(err == 0 || err == BH_ENOMEM);
    if (err != 0)
      ASSERT_INT_EQ(bh__alloc_live(), live1);
  }
  ASSERT(fail_at > 4); /* several allocations did fail */
  ASSERT_STR_EQ(o.authorization, want.authorization);
  ASSERT_STR_EQ(o.target, want.target);
  bh__sigv4_out_free(&o);
  bh__sigv4_out_free(&want);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(aws_example_get_object),
          TEST_ENTRY(aws_example_put_object),
          TEST_ENTRY(aws_example_lifecycle_and_list),
          TEST_ENTRY(sha256_hex),
          TEST_ENTRY(encodes_the_s3_way),
          TEST_ENTRY_T(matches_botocore, 60),
          TEST_ENTRY(kept_key_follows_its_inputs),
          TEST_ENTRY(refuses_bad_requests),
          TEST_ENTRY(refuses_bad_credentials_and_times),
          TEST_ENTRY(fails_cleanly_without_memory))
