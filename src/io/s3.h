/* s3.h - a bee's S3 client: settings resolved from an AWS profile
 * (awsconf.c), requests signed with SigV4 (sigv4.c) and sent through the
 * bee's HTTP session (http.c); S3's XML answers read with expat
 * (s3_xml.c). The operations tasks call are in s3_api.c. */
#ifndef BH_S3_H
#define BH_S3_H

#include "io/awsconf.h"
#include "io/http.h"
#include "base/base.h"
#include "io/sigv4.h"

struct bh_s3 {
  bh__awsconf *conf;
  const char *region;  /* conf's, or us-east-1 */
  bh__sigv4_key key;   /* the signing key, kept while the day lasts */
  bh_http *http;       /* the bee's session (borrowed) */
};

/* Makes a client from `profile` ("" for the default chain) on session
 * http. Returns 0 and *out, or an error with *why owned. */
int bh__s3_new(const char *profile, bh_http *http, bh_s3 **out, char **why);
void bh__s3_free(bh_s3 *s3);

/* ---- s3_xml.c: what S3 answers in XML ----------------------------------- */

/* An error document: <Error><Code>..</Code><Message>..</Message>. */
typedef struct bh__s3_err {
  char *code, *message; /* owned, NULL when missing */
} bh__s3_err;
int bh__s3_xml_error(const char *xml, size_t len, bh__s3_err *e);
void bh__s3_err_clear(bh__s3_err *e);

/* One key of a listing. */
typedef struct bh__s3_entry {
  char *key, *etag, *modified;
  int64_t size;
} bh__s3_entry;

struct bh_s3_listing {
  bh__s3_entry *v;
  size_t n, cap;
  char *next;     /* NextContinuationToken, NULL when not truncated */
  bool truncated;
};
/* A ListObjectsV2 result. Returns 0, BH_EPROTO (not one), BH_ENOMEM. */
int bh__s3_xml_list(const char *xml, size_t len, bh_s3_listing *l);

#endif
