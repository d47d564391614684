/* awsconf.c - see awsconf.h. Where the rules come from: botocore's
 * session.py (files, profile), configloader.py (profile and services
 * sections), credentials.py (EnvProvider, SharedCredentialProvider,
 * ConfigProvider), configprovider.py (region, ConfiguredEndpointProvider)
 * and the AWS SDK reference for what botocore 1.29 predates (AWS_REGION,
 * services sections, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS). */
#include "io/awsconf.h"

#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "io/ini.h"
#include "base/base.h"

extern char **environ;

typedef struct ctx {
  char *const *envp;
  bh__ini *cred, *conf;                /* NULL when the file is missing */
  const bh__ini_sect *cred_s, *conf_s; /* the profile's sections, or NULL */
  bh__awsconf *c;
  char *err;
  size_t errlen;
} ctx;

static int fail(ctx *x, int code, const char *fmt, ...) BH_PRINTF(3, 4);

static int
fail(ctx *x, int code, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(x->err, x->errlen, fmt, ap);
  va_end(ap);
  return code;
}

static int
oom(ctx *x) {
  return fail(x, BH_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------------------
 * The environment. */

static const char *
env_rawn(char *const *envp, const char *name, size_t n) {
  for (envp = envp ? envp : environ; *envp != NULL; envp++)
    if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
      return *envp + n + 1;
  return NULL;
}

/* A variable's value; empty counts as unset. */
static const char *
env(const ctx *x, const char *name) {
  const char *v = env_rawn(x->envp, name, strlen(name));

  return v != NULL && *v != '\0' ? v : NULL;
}

/* ------------------------------------------------------------------------
 * The files' paths, expanded as botocore expands them:
 * os.path.expanduser(os.path.expandvars(path)). */

static size_t
word_len(const char *s) {
  size_t n = 0;

  while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
         (s[n] >= '0' && s[n] <= '9') || s[n] == '_')
    n++;
  return n;
}

/* $NAME and ${NAME}; a variable that is not set stays as written. */
static int
expand_vars(char *const *envp, const char *s, bh__buf *b) {
  while (*s != '\0') {
    const char *name = s + 1, *v = NULL;
    size_t n = 0, skip = 1;

    if (s[0] == '$' && s[1] == '{') {
      name = s + 2;
      n = strcspn(name, "}/");
      if (name[n] == '}')
        skip = n + 3;
    } else if (s[0] == '$') {
      n = word_len(name);
      skip = n + 1;
    }
    if (skip > 1 && n > 0)
      v = env_rawn(envp, name, n);
    if (v == NULL) {
      v = s;
      skip = 1;
      n = 1;
    } else {
      n = strlen(v);
    }
    if (bh__buf_append(b, v, n) != 0)
      return BH_ENOMEM;
    s += skip;
  }
  return bh__buf_append(b, "", 1);
}

/* The home directory of user[0..n) (n 0: HOME, else this process's
 * user's) into *home (owned), or NULL when there is none. */
static int
home_of(char *const *envp, const char *user, size_t n, char **home) {
  long max = sysconf(_SC_GETPW_R_SIZE_MAX);
  size_t size = max > 0 ? (size_t)max : 16384;
  struct passwd pw, *res = NULL;
  char *buf, *name;
  const char *h;

  *home = NULL;
  if (n == 0 && (h = env_rawn(envp, "HOME", 4)) != NULL)
    return (*home = bh__strdup(h)) != NULL ? 0 : BH_ENOMEM;
  buf = bh__malloc(size);
  name = bh__strndup(user, n);
  if (buf == NULL || name == NULL) {
    bh__free(buf);
    bh__free(name);
    return BH_ENOMEM;
  }
  if (n == 0)
    getpwuid_r(getuid(), &pw, buf, size, &res);
  else
    getpwnam_r(name, &pw, buf, size, &res);
  if (res != NULL)
    *home = bh__strdup(res->pw_dir);
  bh__free(name);
  bh__free(buf);
  return res != NULL && *home == NULL ? BH_ENOMEM : 0;
}

/* "~" and "~user" at the start of s. Returns owned, or NULL when out of
 * memory. */
static char *
expand_user(char *const *envp, const char *s) {
  const char *rest;
  size_t hn;
  char *home, *out;

  if (s[0] != '~')
    return bh__strdup(s);
  rest = s + 1 + strcspn(s + 1, "/");
  if (home_of(envp, s + 1, (size_t)(rest - s - 1), &home) != 0)
    return NULL;
  if (home == NULL)
    return bh__strdup(s); /* an unknown user: left as written */
  hn = strlen(home);
  while (hn > 0 && home[hn - 1] == '/')
    hn--;
  /* Python's "(userhome + path[i:]) or root": "~" with HOME=/ is "/". */
  out = bh__asprintf("%.*s%s", (int)hn, home,
                     hn == 0 && *rest == '\0' ? "/" : rest);
  bh__free(home);
  return out;
}

/* The path in variable `var`, else `dflt`, expanded into *out (owned). */
static int
file_path(ctx *x, const char *var, const char *dflt, char **out) {
  const char *p = env(x, var);
  bh__buf b = {0};

  *out = NULL;
  if (expand_vars(x->envp, p != NULL ? p : dflt, &b) == 0)
    *out = expand_user(x->envp, b.data);
  bh__buf_free(&b);
  return *out != NULL ? 0 : oom(x);
}

/* ------------------------------------------------------------------------
 * Sections. */

static int
shlex_ws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One word of Python's shlex.split(s) (POSIX mode) from *sp into *bp,
 * NUL-terminated: 1, 0 at the end, -1 for an unclosed quote or a final
 * backslash (botocore then skips the section). */
static int
shlex_word(const char **sp, char **bp) {
  const char *s = *sp;
  char *b = *bp;

  while (shlex_ws(*s))
    s++;
  if (*s == '\0')
    return 0;
  while (*s != '\0' && !shlex_ws(*s)) {
    char q = *s++;

    if (q == '\\') {
      if (*s == '\0')
        return -1;
      *b++ = *s++;
    } else if (q == '\'' || q == '"') {
      /* Inside "...", a backslash escapes only '"' and itself. */
      for (; *s != q; *b++ = *s++) {
        if (*s == '\0')
          return -1;
        if (q == '"' && *s == '\\' && (s[1] == '"' || s[1] == '\\'))
          s++;
      }
      s++;
    } else {
      *b++ = q;
    }
  }
  *b++ = '\0';
  *sp = s;
  *bp = b;
  return 1;
}

/* Whether section name `name` is "<prefix...> <want>" by botocore's
 * _parse_section(): it starts with prefix and shell-splits into exactly
 * two words, the second being want. 1, 0, or BH_ENOMEM. */
static int
names(const char *name, const char *prefix, const char *want) {
  char *buf, *b, *second;
  const char *s = name;
  int n = 0, r = 0;

  if (strncmp(name, prefix, strlen(prefix)) != 0)
    return 0;
  /* The words are never longer than the name, separators included. */
  buf = b = bh__malloc(strlen(name) + 1);
  if (buf == NULL)
    return BH_ENOMEM;
  second = buf;
  while (n < 3 && (r = shlex_word(&s, &b)) == 1)
    if (++n == 1)
      second = b;
  r = n == 2 && r == 0 && strcmp(second, want) == 0;
  bh__free(buf);
  return r;
}

/* The config file's section for `want` among those starting with prefix
 * ("profile", "services"); the last one wins, as in botocore's dict. */
static int
find_named(const bh__ini *ini, const char *prefix, const char *want,
           const bh__ini_sect **out) {
  *out = NULL;
  for (size_t i = 0; ini != NULL && i < ini->nsects; i++) {
    const bh__ini_sect *s = ini->sects[i];
    int r = names(s->name, prefix, want);

    if (r < 0)
      return r;
    /* [default] is a profile in the config file, as [profile default]. */
    if (r == 1 ||
        (strcmp(prefix, "profile") == 0 && strcmp(want, "default") == 0 &&
         strcmp(s->name, "default") == 0))
      *out = s;
  }
  return 0;
}

/* A setting of the profile: the first of the credentials file's and the
 * config file's sections that has `key` with a value (an empty value
 * counts as unset). */
typedef struct hit {
  const bh__ini_opt *o;
  const bh__ini *ini;
  const bh__ini_sect *s; /* the section it is in ([DEFAULT] included) */
} hit;

static hit
get(const ctx *x, const char *key) {
  hit h = {NULL, x->cred, NULL};

  h.o = bh__ini_get(x->cred, x->cred_s, key, &h.s);
  if (h.o == NULL || h.o->value[0] == '\0') {
    h.ini = x->conf;
    h.o = bh__ini_get(x->conf, x->conf_s, key, &h.s);
  }
  if (h.o != NULL && h.o->value[0] == '\0')
    h.o = NULL;
  return h;
}

/* A plain value (not a nested block), or NULL. */
static const char *
scalar(const bh__ini_opt *o) {
  return o != NULL && o->nsub == 0 && o->value[0] != '\0' ? o->value : NULL;
}

static char *
where(const bh__ini *ini, const bh__ini_sect *s) {
  return bh__asprintf("%s [%s]", ini->path,
                      s->name != NULL ? s->name : "DEFAULT");
}

/* Sets *field and *src (owned copies of v, and src or where(ini, s)). */
static int
set(ctx *x, char **field, char **src, const char *v, const char *srcname,
    const bh__ini *ini, const bh__ini_sect *s) {
  *field = bh__strdup(v);
  *src = srcname != NULL ? bh__strdup(srcname) : where(ini, s);
  return *field != NULL && *src != NULL ? 0 : oom(x);
}

/* set() for a search that stops at the first hit: 1, or BH_ENOMEM. */
static int
found(ctx *x, char **field, char **src, const char *v, const char *srcname,
      const bh__ini *ini, const bh__ini_sect *s) {
  int r = set(x, field, src, v, srcname, ini, s);

  return r != 0 ? r : 1;
}

/* ------------------------------------------------------------------------
 * The profile. */

static int
choose_profile(ctx *x, const char *profile) {
  bh__awsconf *c = x->c;
  const char *src = "s3_profile";

  if (profile == NULL || *profile == '\0') {
    if ((profile = env(x, src = "AWS_DEFAULT_PROFILE")) == NULL &&
        (profile = env(x, src = "AWS_PROFILE")) == NULL)
      profile = src = "default";
  }
  c->profile = bh__strdup(profile);
  c->profile_src = bh__strdup(src);
  return c->profile != NULL && c->profile_src != NULL ? 0 : oom(x);
}

static const char *
missing(const bh__ini *ini) {
  return ini == NULL ? " (no such file)" : "";
}

/* Finds the profile's sections; a profile somebody named must exist. */
static int
find_profile(ctx *x) {
  bh__awsconf *c = x->c;
  int r;

  x->cred_s = bh__ini_find(x->cred, c->profile);
  if ((r = find_named(x->conf, "profile", c->profile, &x->conf_s)) != 0)
    return oom(x);
  if (x->cred_s != NULL || x->conf_s != NULL ||
      strcmp(c->profile_src, "default") == 0)
    return 0;
  return fail(x, BH_EINVAL,
              "The config profile (%s, named by %s) could not be found: no "
              "[%s] in %s%s, no [profile %s] in %s%s",
              c->profile, c->profile_src, c->profile, c->credentials_file,
              missing(x->cred), c->profile, c->config_file, missing(x->conf));
}

/* ------------------------------------------------------------------------
 * Credentials. */

static int
set_creds(ctx *x, const char *id, const char *secret, const char *token,
          char *src) {
  bh__awsconf *c = x->c;

  c->creds_src = src;
  c->access_key = bh__strdup(id);
  c->secret_key = bh__strdup(secret);
  c->session_token = token != NULL ? bh__strdup(token) : NULL;
  if (src == NULL || c->access_key == NULL || c->secret_key == NULL ||
      (token != NULL && c->session_token == NULL))
    return oom(x);
  return 1;
}

/* botocore's EnvProvider: 1 found, 0 none, or an error. */
static int
env_creds(ctx *x) {
  const char *id = env(x, "AWS_ACCESS_KEY_ID"), *secret, *token;

  if (id == NULL)
    return 0;
  if ((secret = env(x, "AWS_SECRET_ACCESS_KEY")) == NULL)
    return fail(x, BH_EINVAL,
                "Partial credentials: AWS_ACCESS_KEY_ID is set but "
                "AWS_SECRET_ACCESS_KEY is not");
  if ((token = env(x, "AWS_SECURITY_TOKEN")) == NULL)
    token = env(x, "AWS_SESSION_TOKEN");
  return set_creds(x, id, secret, token, bh__strdup("AWS_ACCESS_KEY_ID"));
}

static const char *
file_value(const bh__ini *ini, const bh__ini_sect *s, const char *key) {
  return scalar(bh__ini_get(ini, s, key, NULL));
}

/* SharedCredentialProvider (ini the credentials file) and ConfigProvider
 * (the config file): only the profile's own section of that one file. */
static int
file_creds(ctx *x, const bh__ini *ini, const bh__ini_sect *s) {
  const char *id = file_value(ini, s, "aws_access_key_id");
  const char *secret = file_value(ini, s, "aws_secret_access_key");
  const char *token = file_value(ini, s, "aws_security_token");

  if (s == NULL || id == NULL)
    return 0;
  if (secret == NULL)
    return fail(x, BH_EINVAL,
                "Partial credentials: %s [%s] has aws_access_key_id but no "
                "aws_secret_access_key",
                ini->path, s->name);
  if (token == NULL)
    token = file_value(ini, s, "aws_session_token");
  return set_creds(x, id, secret, token, where(ini, s));
}

/* What the profile or the environment asks for that we do not read. */
static const char *const unsupported_keys[] = {"role_arn",
                                               "credential_process",
                                               "sso_session",
                                               "sso_start_url",
                                               "web_identity_token_file",
                                               "credential_source",
                                               NULL};
static const char *const unsupported_vars[] = {
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL};

static int append(bh__buf *b, const char *fmt, ...) BH_PRINTF(2, 3);

static int
append(bh__buf *b, const char *fmt, ...) {
  va_list ap;
  char *s;
  int r;

  va_start(ap, fmt);
  s = bh__vasprintf(fmt, ap);
  va_end(ap);
  r = s != NULL ? bh__buf_append(b, s, strlen(s)) : BH_ENOMEM;
  bh__free(s);
  return r;
}

/* creds_searched: where we looked, and what would have given credentials
 * to botocore but not to us. */
static int
searched(ctx *x, bool named) {
  bh__awsconf *c = x->c;
  bh__buf b = {0};
  int r;

  r = append(&b, "%sprofile %s in %s%s and %s%s",
             named ? "" : "AWS_ACCESS_KEY_ID, ", c->profile,
             c->credentials_file, missing(x->cred), c->config_file,
             missing(x->conf));
  if (r == 0 && named && env(x, "AWS_ACCESS_KEY_ID") != NULL)
    r = append(&b, "; AWS_ACCESS_KEY_ID is not used when a profile is named");
  for (int i = 0; r == 0 && unsupported_keys[i] != NULL; i++) {
    hit h = get(x, unsupported_keys[i]);

    if (h.o != NULL)
      r = append(&b,
                 "; %s [%s] sets %s, which is not supported (only "
                 "static keys are)",
                 h.ini->path, h.s->name ? h.s->name : "DEFAULT",
                 unsupported_keys[i]);
  }
  for (int i = 0; r == 0 && !named && unsupported_vars[i] != NULL; i++)
    if (env(x, unsupported_vars[i]) != NULL)
      r = append(&b,
                 "; %s is set, which is not supported (only static "
                 "keys are)",
                 unsupported_vars[i]);
  if (r == 0 && (r = bh__buf_append(&b, "", 1)) == 0) {
    c->creds_searched = b.data;
    return 0;
  }
  bh__buf_free(&b);
  return oom(x);
}

static int
resolve_creds(ctx *x) {
  bool named = strcmp(x->c->profile_src, "s3_profile") == 0;
  int r = named ? 0 : env_creds(x);

  if (r == 0)
    r = file_creds(x, x->cred, x->cred_s);
  if (r == 0)
    r = file_creds(x, x->conf, x->conf_s);
  if (r == 0)
    return searched(x, named);
  return r < 0 ? r : 0;
}

/* ------------------------------------------------------------------------
 * Region, endpoint, addressing style. */

/* botocore's validate_region_name():
 * ^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$ */
static bool
valid_region(const char *r) {
  size_t n = strlen(r);

  for (size_t i = 0; i < n; i++)
    if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= 'A' && r[i] <= 'Z') ||
          (r[i] >= '0' && r[i] <= '9') || (r[i] == '-' && i > 0 && i < n - 1)))
      return false;
  return n >= 1 && n <= 63;
}

static int
resolve_region(ctx *x) {
  bh__awsconf *c = x->c;
  const char *src = "AWS_REGION", *v = env(x, src);
  hit h = {0};

  if (v == NULL)
    v = env(x, src = "AWS_DEFAULT_REGION");
  if (v == NULL) {
    h = get(x, "region");
    v = scalar(h.o);
    src = NULL;
  }
  if (v == NULL)
    return 0;
  if (set(x, &c->region, &c->region_src, v, src, h.ini, h.s) != 0)
    return BH_ENOMEM;
  if (!valid_region(v))
    return fail(x, BH_EINVAL, "Invalid region name \"%.80s\" (from %s)", v,
                c->region_src);
  return 0;
}

static bool
is_true(const char *v) {
  return v != NULL && strcasecmp(v, "true") == 0;
}

/* The config file's [services N] s3 endpoint_url for the profile's
 * "services = N": 1 found, 0 none, or an error. */
static int
services_endpoint(ctx *x) {
  hit h = get(x, "services");
  const char *name = scalar(h.o), *url;
  const bh__ini_sect *s;
  bh__awsconf *c = x->c;

  if (name == NULL)
    return 0;
  if (find_named(x->conf, "services", name, &s) != 0)
    return oom(x);
  if (s == NULL)
    return fail(x, BH_EINVAL,
                "%s [%s] sets services = %s, but %s%s has no "
                "[services %s] section",
                h.ini->path, h.s->name ? h.s->name : "DEFAULT", name,
                c->config_file, missing(x->conf), name);
  url = bh__ini_sub(bh__ini_get(x->conf, s, "s3", NULL), "endpoint_url");
  if (url == NULL || *url == '\0')
    return 0;
  return found(x, &c->endpoint_url, &c->endpoint_src, url, NULL, x->conf, s);
}

/* The endpoint URL from the first of the places awsconf.h lists: 1 found,
 * 0 none, or an error. */
static int
find_endpoint(ctx *x) {
  static const char *const vars[] = {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"};
  bh__awsconf *c = x->c;
  const char *v;
  hit h;
  int r;

  for (int i = 0; i < 2; i++)
    if ((v = env(x, vars[i])) != NULL)
      return found(x, &c->endpoint_url, &c->endpoint_src, v, vars[i], NULL,
                   NULL);
  if ((r = services_endpoint(x)) != 0)
    return r;
  h = get(x, "s3");
  if ((v = bh__ini_sub(h.o, "endpoint_url")) != NULL && *v != '\0')
    return found(x, &c->endpoint_url, &c->endpoint_src, v, NULL, h.ini, h.s);
  h = get(x, "endpoint_url");
  if ((v = scalar(h.o)) != NULL)
    return found(x, &c->endpoint_url, &c->endpoint_src, v, NULL, h.ini, h.s);
  return 0;
}

static int
resolve_endpoint(ctx *x) {
  const char *ignore = env(x, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  bh__awsconf *c = x->c;
  const char *why;
  bh__aws_url u;
  int r;

  if (ignore == NULL)
    ignore = scalar(get(x, "ignore_configured_endpoint_urls").o);
  if (is_true(ignore))
    return 0;
  if ((r = find_endpoint(x)) <= 0)
    return r;
  if ((why = bh__aws_url_parse(c->endpoint_url, &u)) != NULL)
    return fail(x, BH_EINVAL, "Endpoint URL \"%.200s\" (from %s) %s",
                c->endpoint_url, c->endpoint_src, why);
  return 0;
}

static int
resolve_addressing(ctx *x) {
  static const char *const styles[] = {"auto", "virtual", "path"};
  hit h = get(x, "s3");
  const char *v = bh__ini_sub(h.o, "addressing_style");
  bh__awsconf *c = x->c;

  if (v == NULL || *v == '\0')
    return 0;
  if ((c->addressing_src = where(h.ini, h.s)) == NULL)
    return oom(x);
  for (int i = 0; i < 3; i++)
    if (strcmp(v, styles[i]) == 0) {
      c->addressing = (bh__s3style)i;
      return 0;
    }
  return fail(x, BH_EINVAL,
              "Invalid addressing_style \"%.40s\" in %s: expected auto, "
              "virtual or path",
              v, c->addressing_src);
}

/* ------------------------------------------------------------------------
 * Loading. */

/* The files' paths and contents; a missing file stays NULL. */
static int
read_files(ctx *x) {
  bh__awsconf *c = x->c;
  int r;

  r = file_path(x, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials",
                &c->credentials_file);
  if (r == 0)
    r = file_path(x, "AWS_CONFIG_FILE", "~/.aws/config", &c->config_file);
  if (r == 0)
    r = bh__ini_read(&x->cred, c->credentials_file, x->err, x->errlen);
  if (r == 0)
    r = bh__ini_read(&x->conf, c->config_file, x->err, x->errlen);
  return r;
}

static int
load(ctx *x, const char *profile) {
  int r = read_files(x);

  if (r == 0)
    r = choose_profile(x, profile);
  if (r == 0)
    r = find_profile(x);
  if (r == 0)
    r = resolve_creds(x);
  if (r == 0)
    r = resolve_region(x);
  if (r == 0)
    r = resolve_endpoint(x);
  if (r == 0)
    r = resolve_addressing(x);
  return r;
}

int
bh__awsconf_load_env(const char *profile, char *const *envp, bh__awsconf **out,
                     char *err, size_t errlen) {
  ctx x = {.envp = envp, .err = err, .errlen = errlen};
  int r;

  *out = NULL;
  if ((x.c = bh__calloc(1, sizeof(*x.c))) == NULL)
    return oom(&x);
  r = load(&x, profile);
  bh__ini_free(x.cred);
  bh__ini_free(x.conf);
  if (r != 0) {
    bh__awsconf_free(x.c);
    return r;
  }
  *out = x.c;
  return 0;
}

int
bh__awsconf_load(const char *profile, bh__awsconf **out, char *err,
                 size_t errlen) {
  return bh__awsconf_load_env(profile, NULL, out, err, errlen);
}

void
bh__awsconf_free(bh__awsconf *c) {
  if (c == NULL)
    return;
  bh__free(c->profile);
  bh__free(c->profile_src);
  bh__free(c->access_key);
  bh__free(c->secret_key);
  bh__free(c->session_token);
  bh__free(c->creds_src);
  bh__free(c->creds_searched);
  bh__free(c->region);
  bh__free(c->region_src);
  bh__free(c->endpoint_url);
  bh__free(c->endpoint_src);
  bh__free(c->addressing_src);
  bh__free(c->credentials_file);
  bh__free(c->config_file);
  bh__free(c);
}
