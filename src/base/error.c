/* error.c - error names and texts, from the BH_ERRNO_MAP table, libuv's
 * UV_ERRNO_MAP table and then the C library; and the version string. */
#include <string.h>

#include <uv.h>

#include "base/base.h"

/* glibc 2.32 added the locale-free, thread-safe strerrordesc_np(). */
#if defined(__GLIBC__) && defined(__GLIBC_MINOR__)
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32)
#define HAVE_STRERRORDESC_NP 1
#endif
#endif

#define STR_(x) #x
#define STR(x) STR_(x)

const char *
bh_version(void) {
  return STR(BH_VERSION_MAJOR) "." STR(BH_VERSION_MINOR) "." STR(
      BH_VERSION_PATCH);
}

/* Our codes first: some of them (BH_ETIMEDOUT...) are also libuv codes, and
 * our wording is the one that matches what the library means by them. */
static const char *
own_text(int err) {
  switch (err) {
#define XX(name, value, text)                                                  \
  case value:                                                                  \
    return text;
    BH_ERRNO_MAP(XX)
#undef XX
  }
  return NULL;
}

static const char *
own_name(int err) {
  switch (err) {
#define XX(name, value, text)                                                  \
  case value:                                                                  \
    return "BH_" #name;
    BH_ERRNO_MAP(XX)
#undef XX
  }
  return NULL;
}

/* Read libuv's table directly rather than call uv_strerror(), which leaks
 * memory for codes it does not know. */
static const char *
uv_text(int err) {
  switch (err) {
#define XX(code, text)                                                         \
  case UV_##code:                                                              \
    return text;
    UV_ERRNO_MAP(XX)
#undef XX
  }
  return NULL;
}

static const char *
uv_name(int err) {
  switch (err) {
#define XX(code, text)                                                         \
  case UV_##code:                                                              \
    return "UV_" #code;
    UV_ERRNO_MAP(XX)
#undef XX
  }
  return NULL;
}

const char *
bh_strerror(int err) {
  const char *s;

  if (err == 0)
    return "success";
  if ((s = own_text(err)) != NULL || (s = uv_text(err)) != NULL)
    return s;
  if (err < 0 && err > -4096) {
#ifdef HAVE_STRERRORDESC_NP
    /* strerror() without the locale and the shared buffer: a static
     * English string, or NULL. */
    if ((s = strerrordesc_np(-err)) != NULL)
      return s;
#else
    return strerror(-err);
#endif
  }
  return "unknown error";
}

const char *
bh_err_name(int err) {
  const char *s;

  if (err == 0)
    return "BH_OK";
  if ((s = own_name(err)) != NULL || (s = uv_name(err)) != NULL)
    return s;
#ifdef HAVE_STRERRORDESC_NP
  if (err < 0 && err > -4096 && (s = strerrorname_np(-err)) != NULL)
    return s;
#endif
  return "BH_UNKNOWN";
}

/* An errno's symbol and the C library's text of it ("ENOENT", "No such
 * file or directory"), or NULL; libuv's table where glibc has no names. */
static const char *
errno_name(int err) {
  const char *s = NULL;

  if (err >= 0 || err <= -4096)
    return NULL;
#ifdef HAVE_STRERRORDESC_NP
  s = strerrorname_np(-err);
#endif
  if (s == NULL && (s = uv_name(err)) != NULL)
    s += 3; /* "UV_" */
  return s;
}

char *
bh__code_error(int rc, const char **type) {
  const char *name;

  if (own_name(rc) != NULL) {
    *type = own_name(rc);
    return bh__strdup(own_text(rc));
  }
  if ((name = errno_name(rc)) != NULL) {
    *type = "OSError";
#ifdef HAVE_STRERRORDESC_NP
    return bh__asprintf("%s: %s (errno %d)", name, strerrordesc_np(-rc), -rc);
#else
    return bh__asprintf("%s: %s (errno %d)", name, strerror(-rc), -rc);
#endif
  }
  *type = "TaskError";
  return bh__asprintf("The task returned %d, which is no error code: a "
                      "handler returns 0, a BH_E* code or -errno.", rc);
}

/* CMakeLists.txt passes the source tree's path, ending in '/', so that the
 * library's own frames do not show where it happened to be built. */
#ifndef BH_SRC_ROOT
#define BH_SRC_ROOT ""
#endif

const char *
bh__src_path(const char *file) {
  size_t n = sizeof(BH_SRC_ROOT) - 1;

  if (file != NULL && n > 0 && strncmp(file, BH_SRC_ROOT, n) == 0)
    return file + n;
  return file;
}

void
bh__assert_fail(const char *expr, const char *file, int line) {
  fflush(stdout);
  fprintf(stderr, "%s:%d: assertion failed: %s\n", bh__src_path(file), line,
          expr);
  fflush(stderr);
  abort();
}
