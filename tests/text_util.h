/* text_util.h - small text helpers shared by tests that read files the
 * programs under test wrote (test_predict.c, test_trace.c). */
#ifndef BH_TEST_TEXT_UTIL_H
#define BH_TEST_TEXT_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns a malloc'd NUL-terminated copy of the file, *len its size; NULL
 * if it cannot be read. */
static char *
slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  long n;

  *len = 0;
  if (f == NULL)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
      fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
  }
  fclose(f);
  return buf;
}

/* Occurrences of needle in hay. Not strstr() in a loop: ASan's strstr
 * measures the whole rest of hay on every call. */
static size_t
count(const char *hay, const char *needle) {
  size_t n = 0, m = strlen(needle);

  for (; *hay != '\0'; hay++)
    if (*hay == *needle && strncmp(hay, needle, m) == 0) {
      n++;
      hay += m - 1;
    }
  return n;
}

#endif
