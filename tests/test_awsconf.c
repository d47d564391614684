/* test_awsconf.c - an S3 client's settings from the environment and the
 * AWS shared files (src/io/awsconf.c), each rule and each precedence pair,
 * then botocore's answers for generated scenarios (tests/awsconf_check.py
 * run by Debian's /usr/bin/python3 with python3-botocore). */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/awsconf.h"
#include "base/base.h"
#include "runner.h"
#include "workdir.h"

static char home[256]; /* HOME of the case: a fresh directory */
static char err[1024];

/* ---- files and environments ---------------------------------------------- */

static int
make_home(void) {
  const char *tmp = getenv("TMPDIR");
  char aws[300];

  snprintf(home, sizeof(home), "%s/bh_test_awsconf_XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(home) == NULL)
    return -1;
  snprintf(aws, sizeof(aws), "%s/.aws", home);
  return mkdir(aws, 0700);
}

static int
clean_home(void) {
  return rm_tree(home);
}

/* home/rel, in a rotation of static buffers. */
static const char *
at(const char *rel) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];

  snprintf(p, 512, "%s/%s", home, rel);
  return p;
}

/* Writes text into home/rel. */
static int
put(const char *rel, const char *text) {
  FILE *f = fopen(at(rel), "w");

  if (f == NULL)
    return -1;
  fputs(text, f);
  return fclose(f);
}

/* An environment: "NAME=value" strings, from a static pool (each case is a
 * process of its own, so nothing is freed and nothing leaks). */
typedef struct envb {
  char *v[32];
  int n;
} envb;

static char pool[1 << 20];
static size_t pool_used;

static char *const *setv(envb *e, const char *fmt, ...) BH_PRINTF(2, 3);

static char *const *
setv(envb *e, const char *fmt, ...) {
  char *s = pool + pool_used;
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(s, sizeof(pool) - pool_used, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(pool) - pool_used ||
      e->n + 1 >= (int)(sizeof(e->v) / sizeof(e->v[0])))
    abort();
  pool_used += (size_t)n + 1;
  e->v[e->n++] = s;
  e->v[e->n] = NULL;
  return e->v;
}

/* An environment holding only HOME. */
static envb
env_home(void) {
  envb e = {{NULL}, 0};

  setv(&e, "HOME=%s", home);
  return e;
}

/* Loads for profile under e; NULL with err on failure. */
static bh__awsconf *
load(const char *profile, const envb *e) {
  bh__awsconf *c;

  err[0] = '\0';
  if (bh__awsconf_load_env(profile, e->v, &c, err, sizeof(err)) != 0)
    return NULL;
  return c;
}

/* Whether loading fails with code and exactly message want. */
static int
fails(const char *profile, const envb *e, int code, const char *want) {
  bh__awsconf *c;
  int r = bh__awsconf_load_env(profile, e->v, &c, err, sizeof(err));

  if (r == 0) {
    bh__awsconf_free(c);
    fprintf(stderr, "loaded, wanted \"%s\"\n", want);
    return 0;
  }
  if (r != code || strcmp(err, want) != 0) {
    fprintf(stderr, "%d \"%s\", wanted %d \"%s\"\n", r, err, code, want);
    return 0;
  }
  return 1;
}

/* Checks the access key and its source, then frees c. */
static int
creds_are(bh__awsconf *c, const char *ak, const char *src) {
  int ok;

  if (c == NULL) {
    fprintf(stderr, "load failed: %s\n", err);
    return 0;
  }
  ok = ak == NULL ? c->access_key == NULL && c->creds_src == NULL
                  : c->access_key != NULL && strcmp(c->access_key, ak) == 0 &&
                        strcmp(c->creds_src, src) == 0;
  if (!ok)
    fprintf(stderr, "credentials %s from %s, wanted %s from %s\n",
            c->access_key ? c->access_key : "(none)",
            c->creds_src ? c->creds_src : "(none)", ak ? ak : "(none)",
            src ? src : "(none)");
  bh__awsconf_free(c);
  return ok;
}

/* The same for a setting's value and source. */
static int
is(bh__awsconf *c, size_t value_off, size_t src_off, const char *v,
   const char *src) {
  const char *got, *gsrc;
  int ok;

  if (c == NULL) {
    fprintf(stderr, "load failed: %s\n", err);
    return 0;
  }
  got = *(char **)((char *)c + value_off);
  gsrc = *(char **)((char *)c + src_off);
  ok = v == NULL ? got == NULL && gsrc == NULL
                 : got != NULL && gsrc != NULL && strcmp(got, v) == 0 &&
                       strcmp(gsrc, src) == 0;
  if (!ok)
    fprintf(stderr, "got %s from %s, wanted %s from %s\n", got ? got : "(none)",
            gsrc ? gsrc : "(none)", v ? v : "(none)", src ? src : "(none)");
  bh__awsconf_free(c);
  return ok;
}

#define REGION_IS(c, v, src)                                                   \
  is((c), offsetof(bh__awsconf, region), offsetof(bh__awsconf, region_src),    \
     (v), (src))
#define ENDPOINT_IS(c, v, src)                                                 \
  is((c), offsetof(bh__awsconf, endpoint_url),                                 \
     offsetof(bh__awsconf, endpoint_src), (v), (src))
#define PROFILE_IS(c, v, src)                                                  \
  is((c), offsetof(bh__awsconf, profile), offsetof(bh__awsconf, profile_src),  \
     (v), (src))

/* ---- the profile --------------------------------------------------------- */

TEST(profile_choice) {
  size_t live0 = bh__alloc_live();
  envb e;

  ASSERT(make_home() == 0);
  ASSERT(put(".aws/credentials", "[default]\n[p]\n[q]\n[r]\n") == 0);
  e = env_home();
  ASSERT(PROFILE_IS(load(NULL, &e), "default", "default"));
  ASSERT(PROFILE_IS(load("", &e), "default", "default"));
  setv(&e, "AWS_PROFILE=q");
  ASSERT(PROFILE_IS(load(NULL, &e), "q", "AWS_PROFILE"));
  /* botocore reads AWS_DEFAULT_PROFILE before AWS_PROFILE. */
  setv(&e, "AWS_DEFAULT_PROFILE=r");
  ASSERT(PROFILE_IS(load(NULL, &e), "r", "AWS_DEFAULT_PROFILE"));
  ASSERT(PROFILE_IS(load("p", &e), "p", "s3_profile"));
  /* An empty variable is no variable. */
  e = env_home();
  setv(&e, "AWS_PROFILE=");
  ASSERT(PROFILE_IS(load(NULL, &e), "default", "default"));
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(profile_not_found) {
  size_t live0 = bh__alloc_live();
  char want[1024];
  bh__awsconf *c;
  envb e;

  ASSERT(make_home() == 0);
  e = env_home();
  snprintf(want, sizeof(want),
           "The config profile (nope, named by s3_profile) could not be "
           "found: no [nope] in %s (no such file), no [profile nope] in %s "
           "(no such file)",
           at(".aws/credentials"), at(".aws/config"));
  ASSERT(fails("nope", &e, BH_EINVAL, want));
  ASSERT(put(".aws/credentials", "[p]\n") == 0);
  ASSERT(put(".aws/config", "[profile q]\n") == 0);
  snprintf(want, sizeof(want),
           "The config profile (nope, named by AWS_PROFILE) could not be "
           "found: no [nope] in %s, no [profile nope] in %s",
           at(".aws/credentials"), at(".aws/config"));
  setv(&e, "AWS_PROFILE=nope");
  ASSERT(fails(NULL, &e, BH_EINVAL, want));
  /* Even "default" must exist when somebody names it... */
  e = env_home();
  setv(&e, "AWS_PROFILE=default");
  ASSERT(load(NULL, &e) == NULL);
  ASSERT(strstr(err, "(default, named by AWS_PROFILE)") != NULL);
  /* ...but not when nobody does: then no credentials, and where we
   * looked. */
  e = env_home();
  c = load(NULL, &e);
  ASSERT(c != NULL);
  ASSERT(c->access_key == NULL && c->secret_key == NULL);
  snprintf(want, sizeof(want),
           "AWS_ACCESS_KEY_ID, profile default in %s and %s",
           at(".aws/credentials"), at(".aws/config"));
  ASSERT_STR_EQ(c->creds_searched, want);
  bh__awsconf_free(c);
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* Which sections are profiles: botocore's build_profile_map() for the
 * config file, every section by its plain name in the credentials file. */
TEST(profile_sections) {
  size_t live0 = bh__alloc_live();
  envb e;

  ASSERT(make_home() == 0);
  ASSERT(put(".aws/config", "[profile a]\n"
                            "aws_access_key_id = A\n"
                            "aws_secret_access_key = s\n"
                            "[b]\n"
                            "aws_access_key_id = B\n"
                            "aws_secret_access_key = s\n"
                            "[profile  \"my name\"]\n"
                            "aws_access_key_id = M\n"
                            "aws_secret_access_key = s\n"
                            "[profile two words]\n"
                            "[profilex y]\n"
                            "aws_access_key_id = Y\n"
                            "aws_secret_access_key = s\n"
                            "[profile 'unclosed]\n"
                            "[default]\n"
                            "aws_access_key_id = D1\n"
                            "aws_secret_access_key = s\n"
                            "[profile default]\n"
                            "aws_access_key_id = D2\n"
                            "aws_secret_access_key = s\n") == 0);
  ASSERT(put(".aws/credentials", "[profile c]\n"
                                 "aws_access_key_id = C\n"
                                 "aws_secret_access_key = s\n") == 0);
  e = env_home();
  ASSERT(creds_are(load("a", &e), "A", at(".aws/config [profile a]")));
  /* [b] in the config file is no profile; [profile c] in the credentials
   * file is profile "profile c", not c. */
  ASSERT(load("b", &e) == NULL && strstr(err, "(b, named") != NULL);
  ASSERT(load("c", &e) == NULL && strstr(err, "(c, named") != NULL);
  ASSERT(creds_are(load("profile c", &e), "C",
                   at(".aws/credentials [profile c]")));
  /* Names are shell-split into exactly two words. */
  ASSERT(creds_are(load("my name", &e), "M",
                   at(".aws/config [profile  \"my name\"]")));
  ASSERT(load("two words", &e) == NULL && load("two", &e) == NULL);
  ASSERT(load("unclosed", &e) == NULL && load("'unclosed", &e) == NULL);
  /* botocore only checks that the name starts with "profile". */
  ASSERT(creds_are(load("y", &e), "Y", at(".aws/config [profilex y]")));
  /* [default] and [profile default]: the later one. */
  ASSERT(creds_are(load(NULL, &e), "D2", at(".aws/config [profile default]")));
  ASSERT(put(".aws/config", "[profile default]\n"
                            "aws_access_key_id = D2\n"
                            "aws_secret_access_key = s\n"
                            "[default]\n"
                            "aws_access_key_id = D1\n"
                            "aws_secret_access_key = s\n") == 0);
  ASSERT(creds_are(load("default", &e), "D1", at(".aws/config [default]")));
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ---- credentials --------------------------------------------------------- */

TEST(creds_environment) {
  size_t live0 = bh__alloc_live();
  bh__awsconf *c;
  envb e;

  ASSERT(make_home() == 0);
  ASSERT(put(".aws/credentials", "[default]\n"
                                 "aws_access_key_id = FILE\n"
                                 "aws_secret_access_key = fs\n"
                                 "[p]\n"
                                 "aws_access_key_id = P\n"
                                 "aws_secret_access_key = ps\n"
                                 "[bare]\n"
                                 "region = r\n") == 0);
  e = env_home();
  ASSERT(creds_are(load(NULL, &e), "FILE", at(".aws/credentials [default]")));
  setv(&e, "AWS_ACCESS_KEY_ID=ENV");
  setv(&e, "AWS_SECRET_ACCESS_KEY=es");
  c = load(NULL, &e);
  ASSERT(c != NULL);
  ASSERT_STR_EQ(c->secret_key, "es");
  ASSERT(c->session_token == NULL);
  ASSERT(creds_are(c, "ENV", "AWS_ACCESS_KEY_ID"));
  /* AWS_PROFILE leaves the environment's keys first... */
  setv(&e, "AWS_PROFILE=p");
  ASSERT(creds_are(load(NULL, &e), "ENV", "AWS_ACCESS_KEY_ID"));
  /* ...a profile named by the caller does not. */
  ASSERT(creds_are(load("p", &e), "P", at(".aws/credentials [p]")));
  c = load("bare", &e);
  ASSERT(c != NULL && c->access_key == NULL);
  ASSERT(strstr(c->creds_searched, "; AWS_ACCESS_KEY_ID is not used when a "
                                   "profile is named") != NULL);
  ASSERT(strncmp(c->creds_searched, "profile bare in ", 16) == 0);
  bh__awsconf_free(c);
  /* Tokens: AWS_SECURITY_TOKEN before AWS_SESSION_TOKEN, as botocore. */
  setv(&e, "AWS_SESSION_TOKEN=session");
  c = load(NULL, &e);
  ASSERT(c != NULL);
  ASSERT_STR_EQ(c->session_token, "session");
  bh__awsconf_free(c);
  setv(&e, "AWS_SECURITY_TOKEN=security");
  c = load(NULL, &e);
  ASSERT(c != NULL);
  ASSERT_STR_EQ(c->session_token, "security");
  bh__awsconf_free(c);
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(creds_partial) {
  size_t live0 = bh__alloc_live();
  envb e;

  ASSERT(make_home() == 0);
  ASSERT(put(".aws/config", "[default]\n"
                            "aws_access_key_id = CONF\n"
                            "aws_secret_access_key = cs\n") == 0);
  e = env_home();
  setv(&e, "AWS_ACCESS_KEY_ID=ENV");
  ASSERT(fails(NULL, &e, BH_EINVAL,
               "Partial credentials: AWS_ACCESS_KEY_ID is set but "
               "AWS_SECRET_ACCESS_KEY is not"));
  /* A secret without an id is no credentials: on to the files. */
  e = env_home();
  setv(&e, "AWS_SECRET_ACCESS_KEY=es");
  setv(&e, "AWS_ACCESS_KEY_ID=");
  ASSERT(creds_are(load(NULL, &e), "CONF", at(".aws/config [default]")));
  /* An id without a secret in the credentials file: an error, even though
   * the config file has both (the files are not mixed). */
  ASSERT(put(".aws/credentials", "[default]\n"
                                 "aws_access_key_id = CRED\n") == 0);
  char want[600];
  snprintf(want, sizeof(want),
           "Partial credentials: %s [default] has aws_access_key_id but no "
           "aws_secret_access_key",
           at(".aws/credentials"));
  ASSERT(fails(NULL, &e, BH_EINVAL, want));
  ASSERT(put(".aws/credentials", "[default]\n"
                                 "aws_secret_access_key = only\n") == 0);
  ASSERT(creds_are(load(NULL, &e), "CONF", at(".aws/config [default]")));
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(creds_files) {
  size_t live0 = bh__alloc_live();
  bh__awsconf *c;
  envb e;

  ASSERT(make_home() == 0);
  ASSERT(put(".aws/config", "[profile p]\n"
                            "aws_access_key_id = CONF\n"
                            "aws_secret_access_key = cs\n"
                            "aws_session_token = conftoken\n"
                            "[profile q]\n"
                            "aws_access_key_id = Q\n"
                            "aws_secret_access_key = qs\n"
                            "aws_session_token = session\n"
                            "aws_security_token = security\n") == 0);
  e = env_home();
  c = load("p", &e);
  ASSERT(c != NULL);
  ASSERT_STR_EQ(c->session_token, "conftoken");
  ASSERT(creds_are(c, "CONF", at(".aws/config [profile p]")));
  c = load("q", &e);
  ASSERT(c != NULL);
  ASSERT_STR_EQ(c->session_token, "security");
  ASSERT(creds_are(c, "Q", at(".aws/config [profile q]")));
  /* The credentials file first, and whole: the config file's token does
   * not join its keys. Keys it lacks come from its [DEFAULT]. */
  ASSERT(put(".aws/credentials", "[DEFAULT]\n"
                                 "aws_secret_access_key = defsecret\n"
                                 "[p]\n"
                                 "AWS_Access_Key_ID = CRED\n") == 0);
  c = load("p", &e);
  ASSERT(c != NULL);
  ASSERT_STR_EQ(c->secret_key, "defsecret");
  ASSERT(c->session_token == NULL);
  ASSERT(creds_are(c, "CRED", at(".aws/credentials [p]")));
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* Session tokens run past 1,000 characters (libinih cut them). */
TEST(long_session_token) {
  size_t live0 = bh__alloc_live();
  char token[1301], text[1500];
  bh__awsconf *c;
  envb e;

  for (size_t i = 0; i < sizeof(token) - 1; i++)
    token[i] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            [(i * 7 + i / 64) % 64];
  token[sizeof(token) - 1] = '\0';
  ASSERT(make_home() == 0);
  snprintf(text, sizeof(text),
           "[default]\r\naws_access_key_id = AK\r\n"
           "aws_secret_access_key = SK\r\naws_session_token = %s\r\n",
           token);
  ASSERT(put(".aws/credentials", text) == 0);
  e = env_home();
  c = load(NULL, &e);
  ASSERT(c != NULL);
  ASSERT_INT_EQ(strlen(c->session_token), 1300);
  ASSERT_STR_EQ(c->session_token, token);
  bh__awsconf_free(c);
  setv(&e, "AWS_ACCESS_KEY_ID=E");
  setv(&e, "AWS_SECRET_ACCESS_KEY=S");
  setv(&e, "AWS_SESSION_TOKEN=%s", token);
  c = load(NULL, &e);
  ASSERT(c != NULL);
  ASSERT_STR_EQ(c->session_token, token);
  bh__awsconf_free(c);
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* What botocore would have used and we do not, named for the message. */
TEST(creds_unsupported) {
  size_t live0 = bh__alloc_live();
  char want[1024];
  bh__awsconf *c;
  envb e;

  ASSERT(make_home() == 0);
  ASSERT(put(".aws/config", "[profile r]\n"
                            "role_arn = arn:aws:iam::1:role/x\n"
                            "source_profile = default\n") == 0);
  e = env_home();
  setv(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/x");
  setv(&e, "AWS_PROFILE=r");
  c = load(NULL, &e);
  ASSERT(c != NULL && c->access_key == NULL);
  snprintf(want, sizeof(want),
           "AWS_ACCESS_KEY_ID, profile r in %s (no such file) and %s; %s "
           "[profile r] sets role_arn, which is not supported (only static "
           "keys are); AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set, which "
           "is not supported (only static keys are)",
           at(".aws/credentials"), at(".aws/config"), at(".aws/config"));
  ASSERT_STR_EQ(c->creds_searched, want);
  bh__awsconf_free(c);
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ---- region -------------------------------------------------------------- */

TEST(region_precedence) {
  size_t live0 = bh__alloc_live();
  envb e;

  ASSERT(make_home() == 0);
  e = env_home();
  ASSERT(REGION_IS(load(NULL, &e), NULL, NULL));
  ASSERT(put(".aws/config", "[default]\nregion = conf-1\n") == 0);
  ASSERT(REGION_IS(load(NULL, &e), "conf-1", at(".aws/config [default]")));
  ASSERT(put(".aws/credentials", "[default]\nregion = cred-1\n") == 0);
  ASSERT(REGION_IS(load(NULL, &e), "cred-1", at(".aws/credentials [default]")));
  setv(&e, "AWS_DEFAULT_REGION=env-default-1");
  ASSERT(REGION_IS(load(NULL, &e), "env-default-1", "AWS_DEFAULT_REGION"));
  setv(&e, "AWS_REGION=env-1");
  ASSERT(REGION_IS(load(NULL, &e), "env-1", "AWS_REGION"));
  /* An empty value is no value, in a file too. */
  e = env_home();
  setv(&e, "AWS_REGION=");
  ASSERT(put(".aws/credentials", "[default]\nregion =\n") == 0);
  ASSERT(REGION_IS(load(NULL, &e), "conf-1", at(".aws/config [default]")));
  ASSERT(put(".aws/config", "[default]\nregion = us-east-1.evil.com/\n") == 0);
  char want[600];
  snprintf(want, sizeof(want),
           "Invalid region name \"us-east-1.evil.com/\" (from %s [default])",
           at(".aws/config"));
  ASSERT(fails(NULL, &e, BH_EINVAL, want));
  e = env_home();
  setv(&e, "AWS_REGION=-x");
  ASSERT(fails(NULL, &e, BH_EINVAL,
               "Invalid region name \"-x\" (from AWS_REGION)"));
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ---- endpoint ------------------------------------------------------------ */

TEST(endpoint_precedence) {
  size_t live0 = bh__alloc_live();
  envb e;

  ASSERT(make_home() == 0);
  e = env_home();
  ASSERT(ENDPOINT_IS(load(NULL, &e), NULL, NULL));
  ASSERT(put(".aws/config", "[default]\n"
                            "endpoint_url = http://global:1\n") == 0);
  ASSERT(ENDPOINT_IS(load(NULL, &e), "http://global:1",
                     at(".aws/config [default]")));
  ASSERT(put(".aws/config", "[default]\n"
                            "endpoint_url = http://global:1\n"
                            "s3 =\n"
                            "  endpoint_url = http://profile-s3:2\n") == 0);
  ASSERT(ENDPOINT_IS(load(NULL, &e), "http://profile-s3:2",
                     at(".aws/config [default]")));
  ASSERT(put(".aws/config", "[default]\n"
                            "endpoint_url = http://global:1\n"
                            "services = local\n"
                            "s3 =\n"
                            "  endpoint_url = http://profile-s3:2\n"
                            "[services local]\n"
                            "dynamodb =\n"
                            "  endpoint_url = http://dynamo:8000\n"
                            "s3 =\n"
                            "  endpoint_url = http://127.0.0.1:9000\n") == 0);
  ASSERT(ENDPOINT_IS(load(NULL, &e), "http://127.0.0.1:9000",
                     at(".aws/config [services local]")));
  setv(&e, "AWS_ENDPOINT_URL=http://env-global:3");
  ASSERT(
      ENDPOINT_IS(load(NULL, &e), "http://env-global:3", "AWS_ENDPOINT_URL"));
  setv(&e, "AWS_ENDPOINT_URL_S3=https://env-s3:4");
  ASSERT(
      ENDPOINT_IS(load(NULL, &e), "https://env-s3:4", "AWS_ENDPOINT_URL_S3"));
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(endpoint_ignored) {
  size_t live0 = bh__alloc_live();
  char want[1024];
  envb e;

  ASSERT(make_home() == 0);
  ASSERT(put(".aws/config", "[default]\n"
                            "endpoint_url = http://global:1\n"
                            "ignore_configured_endpoint_urls = True\n"
                            "[profile keep]\n"
                            "endpoint_url = http://kept:1\n"
                            "[profile lost]\n"
                            "services = nowhere\n"
                            "endpoint_url = http://global:1\n") == 0);
  e = env_home();
  setv(&e, "AWS_ENDPOINT_URL_S3=http://env-s3:4");
  ASSERT(ENDPOINT_IS(load(NULL, &e), NULL, NULL));
  ASSERT(
      ENDPOINT_IS(load("keep", &e), "http://env-s3:4", "AWS_ENDPOINT_URL_S3"));
  setv(&e, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=TRUE");
  ASSERT(ENDPOINT_IS(load("keep", &e), NULL, NULL));
  /* The variable wins over the profile's setting, either way. */
  e = env_home();
  setv(&e, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=false");
  ASSERT(ENDPOINT_IS(load(NULL, &e), "http://global:1",
                     at(".aws/config [default]")));
  /* A services section the config file lacks is an error, once looked
   * for (botocore's InvalidConfigError). */
  snprintf(want, sizeof(want),
           "%s [profile lost] sets services = nowhere, but %s has no "
           "[services nowhere] section",
           at(".aws/config"), at(".aws/config"));
  ASSERT(fails("lost", &e, BH_EINVAL, want));
  setv(&e, "AWS_ENDPOINT_URL=http://env-global:3");
  ASSERT(
      ENDPOINT_IS(load("lost", &e), "http://env-global:3", "AWS_ENDPOINT_URL"));
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

TEST(endpoint_invalid) {
  static const char *const bad[][2] = {
      {"localhost:9000", "must start with http:// or https://"},
      {"ftp://host", "must start with http:// or https://"},
      {"http://", "has no host"},
      {"http:///path", "has no host"},
      {"http://:9000", "has no host"},
      {"http://user:pw@host", "may not hold a user name"},
      {"http://host:0", "has a bad port"},
      {"http://host:65536", "has a bad port"},
      {"http://host:", "has a bad port"},
      {"http://host:90a", "has a bad port"},
      {"http://host:1:2", "has a bad port"},
      {"http://host?x=1", "may not have a query or a fragment"},
      {"http://host/#f", "may not have a query or a fragment"},
      {"http://ho st", "may not hold spaces or control characters"},
      {"http://[::1", "has an unclosed '['"},
      {"http://[::g]", "has a bad IPv6 address"},
      {"http://ho$t", "has a bad host name"},
  };
  size_t live0 = bh__alloc_live();
  char want[600];
  envb e;

  ASSERT(make_home() == 0);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    e = env_home();
    setv(&e, "AWS_ENDPOINT_URL=%s", bad[i][0]);
    snprintf(want, sizeof(want),
             "Endpoint URL \"%s\" (from AWS_ENDPOINT_URL) %s", bad[i][0],
             bad[i][1]);
    ASSERT(fails(NULL, &e, BH_EINVAL, want));
  }
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ---- addressing style ---------------------------------------------------- */

TEST(addressing_style) {
  size_t live0 = bh__alloc_live();
  char want[600];
  bh__awsconf *c;
  envb e;

  ASSERT(make_home() == 0);
  e = env_home();
  c = load(NULL, &e);
  ASSERT(c != NULL && c->addressing == BH__S3_AUTO);
  ASSERT(c->addressing_src == NULL);
  bh__awsconf_free(c);
  ASSERT(put(".aws/config", "[default]\n"
                            "s3 =\n"
                            "  addressing_style = path\n"
                            "[profile v]\n"
                            "s3 =\n"
                            "  addressing_style = virtual\n"
                            "[profile a]\n"
                            "s3 =\n"
                            "  addressing_style = auto\n"
                            "[profile bad]\n"
                            "s3 =\n"
                            "  addressing_style = Path\n") == 0);
  c = load(NULL, &e);
  ASSERT(c != NULL && c->addressing == BH__S3_PATH);
  ASSERT_STR_EQ(c->addressing_src, at(".aws/config [default]"));
  bh__awsconf_free(c);
  c = load("v", &e);
  ASSERT(c != NULL && c->addressing == BH__S3_VIRTUAL);
  bh__awsconf_free(c);
  c = load("a", &e);
  ASSERT(c != NULL && c->addressing == BH__S3_AUTO);
  ASSERT_STR_EQ(c->addressing_src, at(".aws/config [profile a]"));
  bh__awsconf_free(c);
  snprintf(want, sizeof(want),
           "Invalid addressing_style \"Path\" in %s [profile bad]: expected "
           "auto, virtual or path",
           at(".aws/config"));
  ASSERT(fails("bad", &e, BH_EINVAL, want));
  /* The credentials file's s3 block wins whole: its lack of an
   * addressing_style does not let the config file's through. */
  ASSERT(put(".aws/credentials", "[default]\n"
                                 "s3 =\n"
                                 "  endpoint_url = http://cred:1\n") == 0);
  c = load(NULL, &e);
  ASSERT(c != NULL && c->addressing == BH__S3_AUTO);
  ASSERT_STR_EQ(c->endpoint_url, "http://cred:1");
  bh__awsconf_free(c);
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ---- the files' paths ---------------------------------------------------- */

TEST(file_paths) {
  size_t live0 = bh__alloc_live();
  struct passwd *pw;
  char want[1024];
  bh__awsconf *c;
  envb e;

  ASSERT(make_home() == 0);
  ASSERT(put("creds", "[default]\n"
                      "aws_access_key_id = TILDE\n"
                      "aws_secret_access_key = s\n") == 0);
  ASSERT(put("conf", "[default]\nregion = vars-1\n") == 0);
  e = env_home();
  setv(&e, "AWS_SHARED_CREDENTIALS_FILE=~/creds");
  setv(&e, "XDIR=%s", home);
  setv(&e, "AWS_CONFIG_FILE=$XDIR/con${NOPE}f");
  c = load(NULL, &e);
  ASSERT(c != NULL);
  ASSERT_STR_EQ(c->credentials_file, at("creds"));
  ASSERT_STR_EQ(c->config_file, at("con${NOPE}f"));
  ASSERT(creds_are(c, "TILDE", at("creds [default]")));
  e = env_home();
  setv(&e, "XDIR=%s", home);
  setv(&e, "AWS_CONFIG_FILE=${XDIR}/conf");
  ASSERT(REGION_IS(load(NULL, &e), "vars-1", at("conf [default]")));
  /* HOME with a trailing slash; ~user from the password database. */
  e.n = 0;
  setv(&e, "HOME=%s/", home);
  pw = getpwuid(getuid());
  ASSERT(pw != NULL);
  setv(&e, "AWS_CONFIG_FILE=~%s/x", pw->pw_name);
  c = load(NULL, &e);
  ASSERT(c != NULL);
  ASSERT_STR_EQ(c->credentials_file, at(".aws/credentials"));
  snprintf(want, sizeof(want), "%s/x",
           strcmp(pw->pw_dir, "/") ? pw->pw_dir : "");
  ASSERT_STR_EQ(c->config_file, want);
  bh__awsconf_free(c);
  /* No HOME: the password database's home of this user. */
  e.n = 0;
  setv(&e, "AWS_CONFIG_FILE=%s", at("conf"));
  c = load(NULL, &e);
  ASSERT(c != NULL);
  snprintf(want, sizeof(want), "%s/.aws/credentials",
           strcmp(pw->pw_dir, "/") ? pw->pw_dir : "");
  ASSERT_STR_EQ(c->credentials_file, want);
  bh__awsconf_free(c);
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* Missing files are fine; unreadable or malformed ones are errors. */
TEST(bad_files) {
  size_t live0 = bh__alloc_live();
  char want[600];
  envb e;

  ASSERT(make_home() == 0);
  ASSERT(mkdir(at(".aws/config"), 0700) == 0);
  e = env_home();
  snprintf(want, sizeof(want), "%s: %s", at(".aws/config"),
           bh_strerror(-EISDIR));
  ASSERT(fails(NULL, &e, -EISDIR, want));
  ASSERT(rmdir(at(".aws/config")) == 0);
  ASSERT(put(".aws/credentials", "[default]\n"
                                 "aws_access_key_id = x\n"
                                 "aws_secret_access_key\n") == 0);
  snprintf(want, sizeof(want), "%s:3: expected \"key = value\" or a [section]",
           at(".aws/credentials"));
  ASSERT(fails(NULL, &e, BH_EINVAL, want));
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* bh__awsconf_load reads the process's environment. */
TEST(process_environment) {
  size_t live0 = bh__alloc_live();
  bh__awsconf *c;

  ASSERT(make_home() == 0);
  ASSERT(put(".aws/config", "[profile p]\nregion = proc-1\n") == 0);
  ASSERT(setenv("HOME", home, 1) == 0);
  ASSERT(setenv("AWS_PROFILE", "p", 1) == 0);
  unsetenv("AWS_REGION");
  unsetenv("AWS_DEFAULT_REGION");
  unsetenv("AWS_DEFAULT_PROFILE");
  unsetenv("AWS_CONFIG_FILE");
  unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  ASSERT_INT_EQ(bh__awsconf_load(NULL, &c, err, sizeof(err)), 0);
  ASSERT(REGION_IS(c, "proc-1", at(".aws/config [profile p]")));
  ASSERT(clean_home() == 0);
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ---- addressing ---------------------------------------------------------- */

/* Addresses bucket/key under c; "scheme host port header path v|p". */
static const char *
addr(const bh__awsconf *c, const char *bucket, const char *key) {
  static char out[1200];
  bh__s3addr *a;

  if (bh__awsconf_s3addr(c, bucket, key, &a, err, sizeof(err)) != 0) {
    snprintf(out, sizeof(out), "error: %s", err);
    return out;
  }
  snprintf(out, sizeof(out), "%s %s %u %s %s %c", a->scheme, a->host, a->port,
           a->host_header, a->path, a->virtual_hosted ? 'v' : 'p');
  bh__s3addr_free(a);
  return out;
}

/* A writable string (the struct's fields are owned, not const). */
#define S(lit) ((char[]){lit})

TEST(s3_addressing) {
  size_t live0 = bh__alloc_live();
  bh__awsconf c = {0};

  /* AWS's endpoint, auto: virtual for DNS-label buckets. */
  ASSERT_STR_EQ(addr(&c, "my-bucket", "a/b c.txt"),
                "https my-bucket.s3.us-east-1.amazonaws.com 443 "
                "my-bucket.s3.us-east-1.amazonaws.com /a/b c.txt v");
  ASSERT_STR_EQ(addr(&c, "my-bucket", NULL),
                "https my-bucket.s3.us-east-1.amazonaws.com 443 "
                "my-bucket.s3.us-east-1.amazonaws.com / v");
  ASSERT_STR_EQ(addr(&c, NULL, NULL), "https s3.us-east-1.amazonaws.com 443 "
                                      "s3.us-east-1.amazonaws.com / p");
  /* Dots, capitals, underscores, lengths: path style. */
  ASSERT_STR_EQ(addr(&c, "my.bucket", "k"),
                "https s3.us-east-1.amazonaws.com 443 "
                "s3.us-east-1.amazonaws.com /my.bucket/k p");
  ASSERT_STR_EQ(addr(&c, "My_Bucket", ""),
                "https s3.us-east-1.amazonaws.com 443 "
                "s3.us-east-1.amazonaws.com /My_Bucket p");
  ASSERT_STR_EQ(addr(&c, "ab", "k"), "https s3.us-east-1.amazonaws.com 443 "
                                     "s3.us-east-1.amazonaws.com /ab/k p");
  ASSERT_STR_EQ(addr(&c, "-ab", "k"), "https s3.us-east-1.amazonaws.com 443 "
                                      "s3.us-east-1.amazonaws.com /-ab/k p");
  c.region = S("cn-north-1");
  ASSERT_STR_EQ(addr(&c, "bkt", "k"),
                "https bkt.s3.cn-north-1.amazonaws.com.cn 443 "
                "bkt.s3.cn-north-1.amazonaws.com.cn /k v");
  c.region = S("eu-west-3");
  c.addressing = BH__S3_PATH;
  ASSERT_STR_EQ(addr(&c, "bkt", "/k"), "https s3.eu-west-3.amazonaws.com 443 "
                                       "s3.eu-west-3.amazonaws.com /bkt//k p");
  c.addressing = BH__S3_VIRTUAL;
  ASSERT_STR_EQ(addr(&c, "b.k", "k"),
                "https b.k.s3.eu-west-3.amazonaws.com 443 "
                "b.k.s3.eu-west-3.amazonaws.com /k v");
  /* Custom endpoints, auto: path style, the port kept. */
  c.addressing = BH__S3_AUTO;
  c.endpoint_url = S("http://127.0.0.1:9000");
  ASSERT_STR_EQ(addr(&c, "bkt", "k"),
                "http 127.0.0.1 9000 127.0.0.1:9000 /bkt/k p");
  c.endpoint_url = S("http://LocalHost:9000/");
  ASSERT_STR_EQ(addr(&c, "bkt", "k"),
                "http LocalHost 9000 LocalHost:9000 /bkt/k p");
  c.endpoint_url = S("https://[::1]:8443/base/path//");
  ASSERT_STR_EQ(addr(&c, "bkt", "k"),
                "https ::1 8443 [::1]:8443 /base/path/bkt/k p");
  c.endpoint_url = S("HTTPS://minio.example.com");
  ASSERT_STR_EQ(addr(&c, "bkt", NULL),
                "https minio.example.com 443 minio.example.com /bkt p");
  c.addressing = BH__S3_VIRTUAL;
  ASSERT_STR_EQ(addr(&c, "bkt", "k"), "https bkt.minio.example.com 443 "
                                      "bkt.minio.example.com /k v");
  c.endpoint_url = S("http://10.0.0.1:9000");
  ASSERT_STR_EQ(addr(&c, "bkt", "k"),
                "error: addressing_style = virtual cannot work with an IP "
                "address endpoint (http://10.0.0.1:9000)");
  /* An endpoint of AWS's own: auto goes virtual again. */
  c.addressing = BH__S3_AUTO;
  c.endpoint_url = S("https://s3.us-west-2.amazonaws.com");
  ASSERT_STR_EQ(addr(&c, "bkt", "k"),
                "https bkt.s3.us-west-2.amazonaws.com 443 "
                "bkt.s3.us-west-2.amazonaws.com /k v");
  ASSERT_STR_EQ(addr(&c, "", "k"), "error: Invalid bucket name \"\"");
  ASSERT_STR_EQ(addr(&c, "a/b", "k"), "error: Invalid bucket name \"a/b\"");
  ASSERT_INT_EQ(bh__alloc_live(), live0);
  return 0;
}

/* ---- botocore ------------------------------------------------------------ */

#define PYTHON "/usr/bin/python3"
#define NSCEN 400

/* The scenario's dimensions (mixed radix); kept to what botocore 1.29
 * supports, so that any difference is a bug on one side. */
static const char *const explicit_profile[] = {NULL, "p", "default", "missing"};
static const char *const profile_env[][2] = {
    {NULL, NULL},
    {"AWS_PROFILE=p", NULL},
    {"AWS_PROFILE=default", NULL},
    {"AWS_DEFAULT_PROFILE=p", "AWS_PROFILE=nope"}};
static const char *const env_creds[][4] = {
    {NULL},
    {"AWS_ACCESS_KEY_ID=EAK", "AWS_SECRET_ACCESS_KEY=ESK"},
    {"AWS_ACCESS_KEY_ID=EAK", "AWS_SECRET_ACCESS_KEY=ESK",
     "AWS_SESSION_TOKEN=ETOK"},
    {"AWS_ACCESS_KEY_ID=EAK"},
    {"AWS_SECRET_ACCESS_KEY=ESK"},
    {"AWS_ACCESS_KEY_ID=EAK", "AWS_SECRET_ACCESS_KEY=ESK",
     "AWS_SESSION_TOKEN=ETOK", "AWS_SECURITY_TOKEN=ESEC"}};
static const char *const cred_file[] = {
    NULL,
    "[p]\naws_access_key_id = CPAK\naws_secret_access_key = CPSK\n"
    "aws_session_token = %s\nregion = cred-p\n",
    "# comment\n[default]\r\naws_access_key_id=CDAK\r\n"
    "aws_secret_access_key=CDSK\r\n",
    "[profile p]\naws_access_key_id = CXAK\naws_secret_access_key = CXSK\n",
    "[p]\naws_access_key_id = CPAK\n",
    "[DEFAULT]\naws_access_key_id = CFAK\naws_secret_access_key = CFSK\n"
    "[p]\nregion = cred-def\n[default]\n"};
static const char *const conf_file[] = {
    NULL,
    "[profile p]\naws_access_key_id = FPAK\naws_secret_access_key = FPSK\n"
    "aws_security_token = FPSEC\nregion = conf-p\n"
    "s3 =\n  addressing_style = path\n",
    "[default]\nregion = conf-d\naws_access_key_id = FDAK\n"
    "aws_secret_access_key = FDSK\n",
    "[p]\naws_access_key_id = FXAK\naws_secret_access_key = FXSK\n"
    "region = conf-x\n",
    "[profile  p]\nregion = conf-p2\n",
    "[default]\nregion = conf-d1\n[profile default]\nregion = conf-d2\n"};
static const char *const region_env[] = {NULL, "AWS_DEFAULT_REGION=env-r"};

#define N_OF(a) (sizeof(a) / sizeof(a[0]))

static char token[1300];

static void
add_env(envb *e, const char *const *vars, size_t n) {
  for (size_t i = 0; i < n && vars[i] != NULL; i++)
    setv(e, "%s", vars[i]);
}

/* xorshift32: the same scenarios on every run. */
static size_t
pick(uint32_t *state, size_t n) {
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return *state % n;
}

/* Writes scenario k into home/sK, each of its dimensions drawn from
 * *state, and fills its environment and profile. */
static int
scenario(size_t k, uint32_t *state, envb *e, const char **profile) {
  char d[64], text[4000], rel[128];
  const char *cf, *kf;
  size_t i;

  snprintf(d, sizeof(d), "s%zu", k);
  if (mkdir(at(d), 0700) != 0)
    return -1;
  e->n = 0;
  setv(e, "HOME=%s", at(d));
  *profile = explicit_profile[pick(state, N_OF(explicit_profile))];
  add_env(e, profile_env[pick(state, N_OF(profile_env))], 2);
  add_env(e, env_creds[pick(state, N_OF(env_creds))], 4);
  kf = cred_file[pick(state, N_OF(cred_file))];
  cf = conf_file[pick(state, N_OF(conf_file))];
  add_env(e, &region_env[pick(state, N_OF(region_env))], 1);
  i = pick(state, 2);
  /* Half the scenarios name their files in the variables. */
  snprintf(rel, sizeof(rel), "%s/.aws", d);
  if (i % 2 == 0 && mkdir(at(rel), 0700) != 0)
    return -1;
  snprintf(rel, sizeof(rel), "%s/%s", d, i % 2 ? "creds" : ".aws/credentials");
  if (i % 2) {
    setv(e, "AWS_SHARED_CREDENTIALS_FILE=%s", at(rel));
    setv(e, "AWS_CONFIG_FILE=%s/conf", at(d));
  }
  if (kf != NULL) {
    snprintf(text, sizeof(text), kf, token);
    if (put(rel, text) != 0)
      return -1;
  }
  snprintf(rel, sizeof(rel), "%s/%s", d, i % 2 ? "conf" : ".aws/config");
  if (cf != NULL && put(rel, cf) != 0)
    return -1;
  snprintf(rel, sizeof(rel), "%s/env", d);
  text[0] = '\0';
  for (int j = 0; j < e->n; j++)
    strcat(strcat(text, e->v[j]), "\n");
  if (put(rel, text) != 0)
    return -1;
  snprintf(rel, sizeof(rel), "%s/profile", d);
  return *profile != NULL ? put(rel, *profile) : 0;
}

/* The scenario's answer in awsconf_check.py's format. */
static void
ours(const char *profile, const envb *e, char *out, size_t n) {
  bh__awsconf *c = load(profile, e);

  if (c == NULL) {
    snprintf(out, n, "error");
    return;
  }
  snprintf(out, n, "ok\t%s\t%s\t%s\t%s", c->access_key ? c->access_key : "-",
           c->secret_key ? c->secret_key : "-",
           c->session_token ? c->session_token : "-",
           c->region ? c->region : "-");
  bh__awsconf_free(c);
}

/* Runs awsconf_check.py over dirs, its output into home/botocore.out. */
static int
run_botocore(char **dirs, int n) {
  const char *slash = strrchr(__FILE__, '/');
  char script[512], **argv = calloc((size_t)n + 3, sizeof(char *));
  int status;
  pid_t pid;

  snprintf(script, sizeof(script), "%.*s/awsconf_check.py",
           slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
  argv[0] = S(PYTHON);
  argv[1] = script;
  memcpy(argv + 2, dirs, (size_t)n * sizeof(char *));
  pid = fork();
  if (pid == 0) {
    if (freopen(at("botocore.out"), "w", stdout) == NULL)
      _exit(127);
    execv(PYTHON, argv);
    _exit(127);
  }
  free(argv);
  if (pid < 0 || waitpid(pid, &status, 0) != pid)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(botocore_agrees) {
  static envb envs[NSCEN];
  static const char *profiles[NSCEN];
  static char *dirs[NSCEN];
  char line[4096], mine[4096];
  int errors = 0, matched = 0, nerr = 0;
  uint32_t state = 2463534242u;
  FILE *f;

  if (system(PYTHON " -c 'import botocore' 2>/dev/null") != 0) {
    fprintf(stderr, PYTHON " cannot import botocore: scripts/deps.sh "
                           "installs python3-botocore\n");
    return 1;
  }
  for (size_t i = 0; i < sizeof(token) - 1; i++)
    token[i] = (char)('A' + (i * 7 + i / 26) % 26);
  ASSERT(make_home() == 0);
  for (size_t k = 0; k < NSCEN; k++) {
    ASSERT(scenario(k, &state, &envs[k], &profiles[k]) == 0);
    /* Each scenario's HOME is its directory. */
    dirs[k] = envs[k].v[0] + strlen("HOME=");
  }
  ASSERT_INT_EQ(run_botocore(dirs, NSCEN), 0);
  f = fopen(at("botocore.out"), "r");
  ASSERT(f != NULL);
  for (size_t k = 0; k < NSCEN && fgets(line, sizeof(line), f) != NULL; k++) {
    char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');

    ASSERT(tab != NULL && nl != NULL);
    *nl = '\0';
    ours(profiles[k], &envs[k], mine, sizeof(mine));
    /* The comparison stops at "error": botocore names its exception. */
    if (strncmp(tab + 1, mine, strlen(mine)) == 0 &&
        (strcmp(mine, "error") != 0 || strncmp(tab + 1, "error\t", 6) == 0)) {
      matched++;
      nerr += strcmp(mine, "error") == 0;
    } else if (errors++ < 10) {
      fprintf(stderr,
              "%.60s (profile %s): botocore \"%.100s\", ours \"%.100s\"%s%s\n",
              line, profiles[k] ? profiles[k] : "-", tab + 1, mine,
              strcmp(mine, "error") == 0 ? ": " : "",
              strcmp(mine, "error") == 0 ? err : "");
    }
  }
  fclose(f);
  fprintf(stderr, "%d of %d scenarios agree (%d of them errors)\n", matched,
          NSCEN, nerr);
  ASSERT_INT_EQ(matched, NSCEN);
  /* Both outcomes are well represented. */
  ASSERT(nerr > NSCEN / 10 && nerr < NSCEN * 9 / 10);
  ASSERT(clean_home() == 0);
  return 0;
}

TEST_MAIN(TEST_ENTRY(profile_choice), TEST_ENTRY(profile_not_found),
          TEST_ENTRY(profile_sections), TEST_ENTRY(creds_environment),
          TEST_ENTRY(creds_partial), TEST_ENTRY(creds_files),
          TEST_ENTRY(long_session_token), TEST_ENTRY(creds_unsupported),
          TEST_ENTRY(region_precedence), TEST_ENTRY(endpoint_precedence),
          TEST_ENTRY(endpoint_ignored), TEST_ENTRY(endpoint_invalid),
          TEST_ENTRY(addressing_style), TEST_ENTRY(file_paths),
          TEST_ENTRY(bad_files), TEST_ENTRY(process_environment),
          TEST_ENTRY(s3_addressing), TEST_ENTRY_T(botocore_agrees, 60))
