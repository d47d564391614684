/* awsconf.h - the settings of an S3 client, resolved as botocore and the
 * AWS CLI resolve them from the environment and the shared files
 * (~/.aws/credentials, ~/.aws/config; ini.h reads them), so that a
 * worker bee's S3 client finds what the user's aws commands find.
 *
 * Files: AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, where every
 * section [name] is profile name; AWS_CONFIG_FILE or ~/.aws/config, where
 * [profile name] (botocore: a section name starting with "profile" that
 * shell-splits into two words) and [default] are profiles, the later one
 * in the file winning. "$VAR", "${VAR}", "~" and "~user" in the paths are
 * expanded as botocore does (HOME, else the password database). For every
 * setting, the profile's key in the credentials file wins over the one in
 * the config file; a key missing from a section is taken from that file's
 * [DEFAULT]. Empty values, in the environment or the files, count as
 * unset.
 *
 * Profile: the one named by the caller > AWS_DEFAULT_PROFILE > AWS_PROFILE
 * (botocore's order) > "default". A profile named by any of the three must
 * exist in one of the files; "default" need not.
 *
 * Credentials, the first that has an access key id:
 *   1. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SECURITY_TOKEN or
 *      AWS_SESSION_TOKEN - skipped when the caller names a profile (an
 *      explicit profile negates the environment provider in botocore);
 *   2. the profile's aws_access_key_id, aws_secret_access_key and
 *      aws_security_token or aws_session_token in the credentials file;
 *   3. the same in the config file.
 * An id without a secret is an error (botocore's PartialCredentialsError).
 * None at all is not: requests then go unsigned, and creds_searched says
 * where we looked. Roles, SSO, credential_process, web identity, container
 * and instance credentials are not read (creds_searched names them when the
 * profile or the environment asks for one).
 *
 * Region: AWS_REGION > AWS_DEFAULT_REGION > the profile's region > none
 * (BH__AWS_DEFAULT_REGION then). It must be a valid region name, since it
 * goes into host names.
 *
 * Endpoint ("Service-specific endpoints" of the AWS SDK reference):
 * AWS_ENDPOINT_URL_S3 > AWS_ENDPOINT_URL > the s3 block's endpoint_url of
 * the config file's [services N] section named by the profile's
 * "services = N" > the profile's own s3 block's endpoint_url (some SDKs
 * read it; botocore does not) > the profile's endpoint_url > none.
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, else the profile's
 * ignore_configured_endpoint_urls, set to "true" (any case) drops them all.
 * The URL must be http(s)://host[:port][/path], without user, query or
 * fragment.
 *
 * Addressing style: the profile's s3 block's addressing_style, auto |
 * virtual | path (anything else is an error); auto when unset. See
 * bh__awsconf_s3addr for what auto means. */
#ifndef BH_AWSCONF_H
#define BH_AWSCONF_H

#include <stdbool.h>
#include <stddef.h>

/* The region when none is configured, as the AWS CLI's S3 commands use. */
#define BH__AWS_DEFAULT_REGION "us-east-1"

typedef enum bh__s3style {
  BH__S3_AUTO = 0,
  BH__S3_VIRTUAL,
  BH__S3_PATH
} bh__s3style;

/* The resolved settings. Every string is owned by the struct; a NULL
 * setting is unset. Each *_src says where its setting came from, for
 * messages: an environment variable's name ("AWS_REGION") or
 * "<file> [<section>]" ("/home/x/.aws/credentials [prod]"). */
typedef struct bh__awsconf {
  char *profile;     /* the profile used */
  char *profile_src; /* "s3_profile", "AWS_DEFAULT_PROFILE", "AWS_PROFILE"
                      * or "default" (nobody named one) */
  char *access_key;  /* NULL: no credentials, requests go unsigned */
  char *secret_key;
  char *session_token;  /* NULL when none */
  char *creds_src;      /* "AWS_ACCESS_KEY_ID" or a file and section */
  char *creds_searched; /* with no credentials, where we looked (and what
                         * we do not support that the user asked for), to
                         * complete "no credentials found (looked in %s)" */
  char *region;
  char *region_src;
  char *endpoint_url; /* validated; NULL: AWS's endpoint for the region */
  char *endpoint_src;
  bh__s3style addressing;
  char *addressing_src;   /* NULL when auto by default */
  char *credentials_file; /* the files consulted, expanded */
  char *config_file;
} bh__awsconf;

/* Resolves the settings for profile `profile` (NULL or "": none named)
 * from the process environment (getenv) and the files. Returns 0 and an
 * owned *out (bh__awsconf_free), or an error with a message in err:
 * BH_EINVAL for a named profile that exists in neither file (the message
 * names it and both files), a syntax error (file:line), partial
 * credentials, a bad region, endpoint URL or addressing style, or a
 * profile naming a missing services section; -errno for a file that
 * exists but cannot be read; BH_ENOMEM. Any thread may call it. */
int bh__awsconf_load(const char *profile, bh__awsconf **out, char *err,
                     size_t errlen);
/* The same with the environment given as envp ("NAME=value" strings,
 * NULL-terminated) instead of the process's: tests use it. envp NULL is
 * the process environment. */
int bh__awsconf_load_env(const char *profile, char *const *envp,
                         bh__awsconf **out, char *err, size_t errlen);
/* NULL is fine. */
void bh__awsconf_free(bh__awsconf *c);

/* An endpoint URL's parts, pointing into the string parsed. */
typedef struct bh__aws_url {
  bool https;
  const char *host; /* a name or an address (IPv6 without brackets) */
  size_t hostlen;
  const char *authority; /* host[:port] as written */
  size_t authlen;
  unsigned port; /* as written, else 443 or 80 */
  bool port_given;
  bool ip;          /* the host is an IPv4 or IPv6 address */
  const char *path; /* "" or "/..." without the trailing '/' */
  size_t pathlen;
} bh__aws_url;

/* Parses http(s)://host[:port][/path] (scheme in any case; no user,
 * query or fragment; no spaces or control characters). Returns NULL, or
 * a static phrase saying what is wrong ("has no host"). */
const char *bh__aws_url_parse(const char *s, bh__aws_url *u);

/* Where a request for `key` in `bucket` goes. */
typedef struct bh__s3addr {
  const char *scheme;  /* "https" or "http" (static) */
  char *host;          /* to connect to and for TLS SNI: a name or an
                        * address, an IPv6 one without brackets */
  unsigned port;       /* the endpoint's, else 443 or 80 */
  char *host_header;   /* the Host header: the host, ":port" when the
                        * endpoint URL gives one, IPv6 in brackets */
  char *path;          /* decoded (the signer encodes it): the endpoint
                        * URL's path, then "/bucket/key" or "/key" */
  bool virtual_hosted; /* the bucket is in the host name */
} bh__s3addr;

/* Addresses object `key` (NULL or "": the bucket itself) of `bucket` (NULL:
 * the service, as for ListBuckets) under settings c.
 *   path style:    host s3.<region>.amazonaws.com (or the endpoint's),
 *                  path /bucket/key;
 *   virtual style: host bucket.s3.<region>.amazonaws.com (or bucket. +
 *                  the endpoint's host), path /key;
 *   auto:          virtual when the bucket name can be a DNS label
 *                  (botocore's check_dns_name: 3-63 of [a-z0-9-], a letter
 *                  or digit at both ends, and no dots, which a wildcard TLS
 *                  certificate would not cover) and the endpoint is AWS's
 *                  own (none configured, or a host under amazonaws.com[.cn]);
 *                  path style otherwise.
 * auto picks path style for every other custom endpoint because those are
 * MinIO, Ceph, LocalStack and the like on localhost, an IP address or a
 * name without wildcard DNS, where bucket.host does not resolve; the SDKs'
 * rules would go virtual for any host name that is not an IP address, and
 * users of such servers all end up setting addressing_style = path. Whoever
 * has wildcard DNS sets addressing_style = virtual. Regions cn-* use
 * amazonaws.com.cn. Returns 0 and an owned *out (bh__s3addr_free), or
 * BH_EINVAL with a message (an empty bucket or one with '/', virtual style
 * forced on an IP-address endpoint), BH_ENOMEM. */
int bh__awsconf_s3addr(const bh__awsconf *c, const char *bucket,
                       const char *key, bh__s3addr **out, char *err,
                       size_t errlen);
/* NULL is fine. */
void bh__s3addr_free(bh__s3addr *a);

#endif
