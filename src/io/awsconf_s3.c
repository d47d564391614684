/* awsconf_s3.c - endpoint URLs and S3 addressing (awsconf.h): what the
 * resolved settings mean for one request. */
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "io/awsconf.h"
#include "base/base.h"

/* ------------------------------------------------------------------------
 * Endpoint URLs. */

static bool
all_of(const char *s, size_t n, const char *set) {
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\0' || strchr(set, s[i]) == NULL)
      return false;
  return true;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* host[:port] in u->authority; fills the rest of u's host fields. */
static const char *
parse_authority(bh__aws_url *u) {
  const char *a = u->authority, *end = a + u->authlen, *rest;
  unsigned long port = 0;

  if (u->authlen == 0)
    return "has no host";
  if (memchr(a, '@', u->authlen) != NULL)
    return "may not hold a user name";
  if (a[0] == '[') {
    rest = memchr(a, ']', u->authlen);
    if (rest == NULL)
      return "has an unclosed '['";
    u->host = a + 1;
    u->hostlen = (size_t)(rest - a - 1);
    rest++;
    u->ip = true;
    if (!all_of(u->host, u->hostlen, "0123456789abcdefABCDEF:."))
      return "has a bad IPv6 address";
  } else {
    rest = memchr(a, ':', u->authlen);
    rest = rest != NULL ? rest : end;
    u->host = a;
    u->hostlen = (size_t)(rest - a);
    if (!all_of(u->host, u->hostlen, ALNUM ".-_"))
      return "has a bad host name";
    u->ip = all_of(u->host, u->hostlen, "0123456789.");
  }
  if (u->hostlen == 0)
    return "has no host";
  if (rest == end)
    return NULL;
  if (*rest != ':' || rest + 1 == end ||
      !all_of(rest + 1, (size_t)(end - rest - 1), "0123456789") ||
      end - rest - 1 > 5 || (port = strtoul(rest + 1, NULL, 10)) == 0 ||
      port > 65535)
    return "has a bad port";
  u->port = (unsigned)port;
  u->port_given = true;
  return NULL;
}

const char *
bh__aws_url_parse(const char *s, bh__aws_url *u) {
  const char *why;

  memset(u, 0, sizeof(*u));
  if (strncasecmp(s, "https://", 8) == 0)
    u->https = true;
  else if (strncasecmp(s, "http://", 7) != 0)
    return "must start with http:// or https://";
  s += u->https ? 8 : 7;
  u->port = u->https ? 443 : 80;
  if (strpbrk(s, "?#") != NULL)
    return "may not have a query or a fragment";
  for (const char *p = s; *p != '\0'; p++)
    if ((unsigned char)*p <= ' ' || *p == '\x7f')
      return "may not hold spaces or control characters";
  u->authority = s;
  u->authlen = strcspn(s, "/");
  if ((why = parse_authority(u)) != NULL)
    return why;
  u->path = s + u->authlen;
  u->pathlen = strlen(u->path);
  while (u->pathlen > 0 && u->path[u->pathlen - 1] == '/')
    u->pathlen--;
  return NULL;
}

/* ------------------------------------------------------------------------
 * Addressing. */

/* botocore's check_dns_name(): a bucket that can be one DNS label. */
static bool
dns_label(const char *b) {
  size_t n = strlen(b);

  return n >= 3 && n <= 63 &&
         all_of(b, n,
                "abcdefghijklmnopqrstuvwxyz"
                "0123456789-") &&
         b[0] != '-' && b[n - 1] != '-';
}

static bool
ends_with(const char *s, size_t n, const char *suffix) {
  size_t k = strlen(suffix);

  return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* Whether the endpoint is AWS's: none configured, or a host of theirs. */
static bool
aws_endpoint(const bh__aws_url *u) {
  return u == NULL || ends_with(u->host, u->hostlen, ".amazonaws.com") ||
         ends_with(u->host, u->hostlen, ".amazonaws.com.cn");
}

/* See bh__awsconf_s3addr in awsconf.h for what auto means, and why. */
static bool
virtual_hosted(const bh__awsconf *c, const bh__aws_url *u, const char *bucket) {
  if (bucket == NULL || c->addressing == BH__S3_PATH)
    return false;
  if (c->addressing == BH__S3_VIRTUAL)
    return true;
  return dns_label(bucket) && aws_endpoint(u);
}

static int addr_fail(char *err, size_t errlen, const char *fmt, ...)
    BH_PRINTF(3, 4);

static int
addr_fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return BH_EINVAL;
}

/* Host, port and Host header, with the bucket in front when virtual. */
static int
set_host(bh__s3addr *a, const bh__awsconf *c, const bh__aws_url *u,
         const char *bucket) {
  const char *region = c->region != NULL ? c->region : BH__AWS_DEFAULT_REGION;
  const char *dot = a->virtual_hosted ? "." : "";
  const char *b = a->virtual_hosted ? bucket : "";

  if (u == NULL) {
    a->scheme = "https";
    a->port = 443;
    a->host = bh__asprintf("%s%ss3.%s.%s", b, dot, region,
                           strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn"
                                                          : "amazonaws.com");
    a->host_header = a->host != NULL ? bh__strdup(a->host) : NULL;
  } else {
    a->scheme = u->https ? "https" : "http";
    a->port = u->port;
    a->host = bh__asprintf("%s%s%.*s", b, dot, (int)u->hostlen, u->host);
    a->host_header =
        bh__asprintf("%s%s%.*s", b, dot, (int)u->authlen, u->authority);
  }
  return a->host != NULL && a->host_header != NULL ? 0 : BH_ENOMEM;
}

/* The endpoint's path, then "/bucket" unless virtual, then "/key". */
static int
set_path(bh__s3addr *a, const bh__aws_url *u, const char *bucket,
         const char *key) {
  bool has_key = key != NULL && *key != '\0';
  bool in_path = bucket != NULL && !a->virtual_hosted;

  a->path = bh__asprintf("%.*s%s%s%s%s", u != NULL ? (int)u->pathlen : 0,
                         u != NULL ? u->path : "", in_path ? "/" : "",
                         in_path ? bucket : "", has_key || !in_path ? "/" : "",
                         has_key ? key : "");
  return a->path != NULL ? 0 : BH_ENOMEM;
}

int
bh__awsconf_s3addr(const bh__awsconf *c, const char *bucket, const char *key,
                   bh__s3addr **out, char *err, size_t errlen) {
  bh__aws_url url, *u = NULL;
  const char *why;
  bh__s3addr *a;

  *out = NULL;
  if (bucket != NULL && (*bucket == '\0' || strchr(bucket, '/') != NULL))
    return addr_fail(err, errlen, "Invalid bucket name \"%.80s\"", bucket);
  if (c->endpoint_url != NULL) {
    if ((why = bh__aws_url_parse(c->endpoint_url, &url)) != NULL)
      return addr_fail(err, errlen, "Endpoint URL \"%.200s\" %s",
                       c->endpoint_url, why);
    u = &url;
  }
  if ((a = bh__calloc(1, sizeof(*a))) == NULL) {
    snprintf(err, errlen, "out of memory");
    return BH_ENOMEM;
  }
  a->virtual_hosted = virtual_hosted(c, u, bucket);
  if (a->virtual_hosted && u != NULL && u->ip) {
    bh__s3addr_free(a);
    return addr_fail(err, errlen,
                     "addressing_style = virtual cannot work with an IP "
                     "address endpoint (%s)",
                     c->endpoint_url);
  }
  if (set_host(a, c, u, bucket) != 0 || set_path(a, u, bucket, key) != 0) {
    bh__s3addr_free(a);
    snprintf(err, errlen, "out of memory");
    return BH_ENOMEM;
  }
  *out = a;
  return 0;
}

void
bh__s3addr_free(bh__s3addr *a) {
  if (a == NULL)
    return;
  bh__free(a->host);
  bh__free(a->host_header);
  bh__free(a->path);
  bh__free(a);
}
