/* servers_up - starts the test servers (tests/servers.h) by hand, for a
 * developer or a measuring script: prints their addresses and keys as
 * NAME=value lines, then "ready", and stops them all at EOF on stdin (or
 * when killed: their keepers see it).
 *
 *   servers_up [--s3 BUCKET] [--http DOCROOT [--workers N]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "servers.h"

static int start(int argc, char **argv, bh_test_s3 *s, bh_test_http *h) {
  const char *buckets[2] = {NULL, NULL}, *docroot = NULL;
  int workers = 0;

  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--s3") == 0)
      buckets[0] = argv[i + 1];
    else if (strcmp(argv[i], "--http") == 0)
      docroot = argv[i + 1];
    else if (strcmp(argv[i], "--workers") == 0)
      workers = atoi(argv[i + 1]);
  }
  if (buckets[0] != NULL) {
    if (bh_test_s3_start(s, buckets) != 0)
      return -1;
    printf("S3_ENDPOINT=%s\nS3_STORE=%s\nS3_REGION=%s\nS3_BUCKET=%s\n"
           "S3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\n",
           s->endpoint, s->store, s->region, buckets[0], s->access_key,
           s->secret_key);
  }
  if (docroot != NULL) {
    if (bh_test_http_start(h, docroot, workers) != 0)
      return -1;
    printf("HTTP_BASE=%s\n", h->base);
  }
  return 0;
}

int main(int argc, char **argv) {
  bh_test_s3 s;
  bh_test_http h;
  char buf[256];
  int err;

  memset(&s, 0, sizeof(s));
  memset(&h, 0, sizeof(h));
  if (argc < 3) {
    fprintf(stderr, "usage: %s [--s3 BUCKET] [--http DOCROOT "
            "[--workers N]]\n", argv[0]);
    return 2;
  }
  err = start(argc, argv, &s, &h);
  if (err == 0) {
    printf("ready\n");
    fflush(stdout);
    while (read(0, buf, sizeof(buf)) > 0)
      ;
  }
  bh_test_s3_stop(&s);
  bh_test_http_stop(&h);
  return err == 0 ? 0 : 1;
}
