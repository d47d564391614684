/* ini.c - see ini.h.
 *
 * The parser follows configparser's _read() line by line, so that a file
 * botocore accepts means the same here and a file it rejects is rejected
 * too. Debian's libinih was no option: it truncates lines longer than its
 * buffer, and session tokens run to well over 1,000 characters. */
#include "io/ini.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

typedef struct parser {
  bh__ini *ini;
  bh__ini_sect *cur; /* NULL before the first section */
  bh__ini_opt *opt;  /* the option continuation lines extend, or NULL;
                      * points into cur->opts, which grows only as opt is
                      * replaced */
  int block;         /* opt's first line had no value: its continuation
                      * lines are a nested block */
  size_t indent;     /* of the last section or option line */
  int line;
  char *err;
  size_t errlen;
} parser;

/* Python's str.isspace() over ASCII, which strip() and "\s" use. */
static int
is_ws(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

static void
trim(const char **b, size_t *n) {
  while (*n > 0 && is_ws(**b)) {
    (*b)++;
    (*n)--;
  }
  while (*n > 0 && is_ws((*b)[*n - 1]))
    (*n)--;
}

static int fail(parser *p, const char *fmt, ...) BH_PRINTF(2, 3);

static int
fail(parser *p, const char *fmt, ...) {
  va_list ap;
  int n;

  n = snprintf(p->err, p->errlen, "%s:%d: ", p->ini->path, p->line);
  if (n >= 0 && (size_t)n < p->errlen) {
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return BH_EINVAL;
}

static int
oom(parser *p) {
  snprintf(p->err, p->errlen, "%s: out of memory", p->ini->path);
  return BH_ENOMEM;
}

/* ------------------------------------------------------------------------
 * Building the tree. */

static bh__ini_sect *
find_sect(const bh__ini *ini, const char *name, size_t n) {
  for (size_t i = 0; i < ini->nsects; i++)
    if (strncmp(ini->sects[i]->name, name, n) == 0 &&
        ini->sects[i]->name[n] == '\0')
      return ini->sects[i];
  return NULL;
}

static bh__ini_opt *
find_opt(const bh__ini_sect *s, const char *key) {
  for (size_t i = 0; i < s->nopts; i++)
    if (strcmp(s->opts[i].key, key) == 0)
      return &s->opts[i];
  return NULL;
}

static int
grow(void **arr, size_t *cap, size_t n, size_t size) {
  size_t c = *cap ? *cap * 2 : 4;
  void *a;

  if (n < *cap)
    return 0;
  a = bh__realloc(*arr, c * size);
  if (a == NULL)
    return BH_ENOMEM;
  *arr = a;
  *cap = c;
  return 0;
}

static int
new_sect(parser *p, const char *name, size_t n) {
  bh__ini *ini = p->ini;
  bh__ini_sect *s;

  if (grow((void **)&ini->sects, &ini->cap, ini->nsects, sizeof(s)) != 0)
    return oom(p);
  s = bh__calloc(1, sizeof(*s));
  if (s == NULL || (s->name = bh__strndup(name, n)) == NULL) {
    bh__free(s);
    return oom(p);
  }
  s->line = p->line;
  ini->sects[ini->nsects++] = s;
  p->cur = s;
  return 0;
}

static void
free_sect(bh__ini_sect *s) {
  for (size_t i = 0; i < s->nopts; i++) {
    bh__ini_opt *o = &s->opts[i];

    for (size_t j = 0; j < o->nsub; j++) {
      bh__free(o->sub[j].key);
      bh__free(o->sub[j].value);
    }
    bh__free(o->sub);
    bh__free(o->key);
    bh__free(o->value);
  }
  bh__free(s->opts);
  bh__free(s->name);
}

/* ------------------------------------------------------------------------
 * Lines. */

/* "[name]": the name runs to the line's last ']', as configparser's
 * greedy "\[(?P<header>.+)\]" takes it, and may not be empty ("[]" is
 * then read as an option line). Returns 1 when b is a section line. */
static int
header(parser *p, const char *b, size_t n) {
  size_t i = n;

  if (b[0] != '[')
    return 0;
  while (i-- > 2 && b[i] != ']')
    ;
  if (i < 2)
    return 0;
  p->opt = NULL;
  if (i - 1 == 7 && memcmp(b + 1, "DEFAULT", 7) == 0) {
    p->cur = &p->ini->defaults;
    return 1;
  }
  if (find_sect(p->ini, b + 1, i - 1) != NULL)
    return fail(p, "section [%.*s] appears twice", (int)(i - 1), b + 1);
  return new_sect(p, b + 1, i - 1) == 0 ? 1 : BH_ENOMEM;
}

/* "key = value" or "key: value", split at the first '=' or ':'. */
static int
option(parser *p, const char *b, size_t n) {
  bh__ini_sect *s = p->cur;
  size_t d = 0, kn, vn;
  const char *v;
  bh__ini_opt *o;
  char *key;

  while (d < n && b[d] != '=' && b[d] != ':')
    d++;
  if (d == n)
    /* Without the line: it may be a secret pasted on a line of its own. */
    return fail(p, "expected \"key = value\" or a [section]");
  kn = d;
  v = b + d + 1;
  vn = n - d - 1;
  trim(&b, &kn);
  trim(&v, &vn);
  if (kn == 0)
    return fail(p, "no key before '%c'", b[d]);
  if ((key = bh__strndup(b, kn)) == NULL)
    return oom(p);
  for (char *k = key; *k; k++)
    *k = (char)(*k >= 'A' && *k <= 'Z' ? *k - 'A' + 'a' : *k);
  if (find_opt(s, key) != NULL) {
    bh__free(key);
    return fail(p, "key \"%.*s\" appears twice in [%s]", (int)kn, b,
                s->name != NULL ? s->name : "DEFAULT");
  }
  if (grow((void **)&s->opts, &s->cap, s->nopts, sizeof(*o)) != 0) {
    bh__free(key);
    return oom(p);
  }
  o = &s->opts[s->nopts];
  memset(o, 0, sizeof(*o));
  o->key = key;
  o->line = p->line;
  if ((o->value = bh__strndup(v, vn)) == NULL) {
    bh__free(key);
    return oom(p);
  }
  s->nopts++;
  p->opt = o;
  p->block = vn == 0;
  return 0;
}

/* A "k = v" line of a nested block (botocore's _parse_nested()). */
static int
nested(parser *p, const char *b, size_t n) {
  bh__ini_opt *o = p->opt;
  const char *eq = memchr(b, '=', n), *v;
  size_t kn, vn;
  bh__ini_pair *pr;

  if (eq == NULL)
    return fail(p, "expected \"key = value\" in the block of \"%s\"", o->key);
  kn = (size_t)(eq - b);
  v = eq + 1;
  vn = n - kn - 1;
  trim(&b, &kn);
  trim(&v, &vn);
  /* One pair at a time: blocks hold a handful of lines. */
  pr = bh__realloc(o->sub, (o->nsub + 1) * sizeof(*pr));
  if (pr == NULL)
    return oom(p);
  o->sub = pr;
  pr += o->nsub;
  pr->key = bh__strndup(b, kn);
  pr->value = bh__strndup(v, vn);
  if (pr->key == NULL || pr->value == NULL) {
    bh__free(pr->key);
    bh__free(pr->value);
    return oom(p);
  }
  o->nsub++;
  return 0;
}

/* A line continuing p->opt's value (b stripped, n may be 0). */
static int
continuation(parser *p, const char *b, size_t n) {
  bh__ini_opt *o = p->opt;
  size_t len = strlen(o->value);
  char *v = bh__realloc(o->value, len + n + 2);

  if (v == NULL)
    return oom(p);
  v[len] = '\n';
  memcpy(v + len + 1, b, n);
  v[len + 1 + n] = '\0';
  o->value = v;
  return p->block && n > 0 ? nested(p, b, n) : 0;
}

static int
line(parser *p, const char *s, size_t n) {
  const char *b = s;
  size_t len = n, indent;
  int r;

  if (memchr(s, '\0', n) != NULL)
    return fail(p, "NUL byte");
  trim(&b, &len);
  if (len > 0 && (*b == '#' || *b == ';'))
    return 0;
  /* configparser keeps empty lines in values (trailing ones are dropped
   * at the end) and does not let them end an option. */
  if (len == 0)
    return p->opt != NULL ? continuation(p, b, 0) : 0;
  indent = (size_t)(b - s);
  if (p->opt != NULL && indent > p->indent)
    return continuation(p, b, len);
  p->indent = indent;
  if ((r = header(p, b, len)) != 0)
    return r < 0 ? r : 0;
  if (p->cur == NULL)
    return fail(p, "expected a [section] first");
  return option(p, b, len);
}

/* configparser's _join_multiline_values(): trailing empty lines go. */
static void
drop_trailing(bh__ini_sect *s) {
  for (size_t i = 0; i < s->nopts; i++) {
    char *v = s->opts[i].value;
    size_t n = strlen(v);

    while (n > 0 && v[n - 1] == '\n')
      v[--n] = '\0';
  }
}

static int
parse_lines(parser *p, const char *text, size_t len) {
  const char *end = text + len;
  int err = 0;

  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
    text += 3;
  while (err == 0 && text < end) {
    const char *q = text;

    while (q < end && *q != '\n' && *q != '\r')
      q++;
    p->line++;
    err = line(p, text, (size_t)(q - text));
    if (q < end && *q == '\r' && q + 1 < end && q[1] == '\n')
      q++;
    text = q < end ? q + 1 : q;
  }
  return err;
}

int
bh__ini_parse(bh__ini **out, const char *path, const char *text, size_t len,
              char *err, size_t errlen) {
  parser p = {.err = err, .errlen = errlen};
  int r;

  *out = NULL;
  p.ini = bh__calloc(1, sizeof(*p.ini));
  if (p.ini == NULL || (p.ini->path = bh__strdup(path)) == NULL) {
    bh__free(p.ini);
    snprintf(err, errlen, "%s: out of memory", path);
    return BH_ENOMEM;
  }
  r = parse_lines(&p, text, len);
  if (r != 0) {
    bh__ini_free(p.ini);
    return r;
  }
  drop_trailing(&p.ini->defaults);
  for (size_t i = 0; i < p.ini->nsects; i++)
    drop_trailing(p.ini->sects[i]);
  *out = p.ini;
  return 0;
}

void
bh__ini_free(bh__ini *ini) {
  if (ini == NULL)
    return;
  for (size_t i = 0; i < ini->nsects; i++) {
    free_sect(ini->sects[i]);
    bh__free(ini->sects[i]);
  }
  free_sect(&ini->defaults);
  bh__free(ini->sects);
  bh__free(ini->path);
  bh__free(ini);
}

/* ------------------------------------------------------------------------
 * Reading a file. */

static int
read_all(int fd, bh__buf *b) {
  for (;;) {
    ssize_t n;

    if (bh__buf_reserve(b, 4096) != 0)
      return BH_ENOMEM;
    n = read(fd, b->data + b->len, b->cap - b->len);
    if (n == 0)
      return 0;
    if (n < 0 && errno != EINTR)
      return -errno;
    if (n > 0)
      b->len += (size_t)n;
  }
}

int
bh__ini_read(bh__ini **out, const char *path, char *err, size_t errlen) {
  bh__buf b = {0};
  int fd, r;

  *out = NULL;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r = -errno;
    /* A missing file is no error, as for botocore. */
    if (r == -ENOENT || r == -ENOTDIR)
      return 0;
    snprintf(err, errlen, "%s: %s", path, bh_strerror(r));
    return r;
  }
  r = read_all(fd, &b);
  close(fd);
  if (r == 0)
    r = bh__ini_parse(out, path, b.data ? b.data : "", b.len, err, errlen);
  else
    snprintf(err, errlen, "%s: %s", path, bh_strerror(r));
  bh__buf_free(&b);
  return r;
}

/* ------------------------------------------------------------------------
 * Lookups. */

const bh__ini_sect *
bh__ini_find(const bh__ini *ini, const char *name) {
  return ini != NULL ? find_sect(ini, name, strlen(name)) : NULL;
}

const bh__ini_opt *
bh__ini_get(const bh__ini *ini, const bh__ini_sect *s, const char *key,
            const bh__ini_sect **from) {
  const bh__ini_opt *o = s != NULL ? find_opt(s, key) : NULL;

  if (o == NULL && s != NULL && ini != NULL) {
    s = &ini->defaults;
    o = find_opt(s, key);
  }
  if (from != NULL)
    *from = o != NULL ? s : NULL;
  return o;
}

const char *
bh__ini_sub(const bh__ini_opt *o, const char *key) {
  const char *v = NULL;

  for (size_t i = 0; o != NULL && i < o->nsub; i++)
    if (strcmp(o->sub[i].key, key) == 0)
      v = o->sub[i].value;
  return v;
}
