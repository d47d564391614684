/* s3.c - a bee's S3 client (s3.h): made from a profile in every bee whose
 * s3_profile is set, freed with the bee. */
#include "io/s3.h"

#include <string.h>

int
bh__s3_new(const char *profile, bh_http *http, bh_s3 **out, char **why) {
  char err[1024];
  bh_s3 *s3 = bh__calloc(1, sizeof(*s3));
  int rc;

  *out = NULL;
  *why = NULL;
  if (s3 == NULL)
    return BH_ENOMEM;
  rc = bh__awsconf_load(profile[0] != '\0' ? profile : NULL, &s3->conf, err,
                        sizeof(err));
  if (rc != 0) {
    *why = bh__asprintf("S3 client for profile '%s': %s", profile,
                        rc == BH_ENOMEM ? bh_strerror(rc) : err);
    bh__free(s3);
    return rc;
  }
  s3->region = s3->conf->region ? s3->conf->region : BH__AWS_DEFAULT_REGION;
  s3->http = http;
  *out = s3;
  return 0;
}

void
bh__s3_free(bh_s3 *s3) {
  if (s3 == NULL)
    return;
  bh__sigv4_key_clear(&s3->key);
  bh__awsconf_free(s3->conf);
  bh__free(s3);
}
