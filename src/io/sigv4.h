/* sigv4.h - AWS Signature Version 4 for S3 requests, as a pure function of
 * the request: what to send (the encoded request-target, the headers, the
 * Authorization value) comes out of the same bytes that were signed, so that
 * the wire request is exactly the signed one.
 *
 * S3's rules, which differ from the other services': the path is not
 * normalised ("//", "." and ".." stay; the transport must send it as is,
 * e.g. curl with CURLOPT_PATH_AS_IS), each byte of it but RFC 3986's
 * unreserved characters and '/' is %XX-encoded (so '+' and ' ' are %2B and
 * %20); query names and values are encoded the same way with '/' encoded
 * too, and sorted by encoded name, then encoded value (byte order). The
 * payload hash travels in x-amz-content-sha256, which is signed. */
#ifndef BH_SIGV4_H
#define BH_SIGV4_H

#include <stddef.h>
#include <stdint.h>

/* A name and a value, both NUL-terminated. */
typedef struct bh__kv {
  const char *key;
  const char *value;
} bh__kv;

/* A request to sign. Every string is borrowed for the call only. */
typedef struct bh__sigv4_req {
  const char *method;  /* "GET", "PUT"...: upper-case letters only */
  const char *host;    /* the Host header exactly as it will be sent:
                          "host" or "host:port" */
  const char *path;    /* DECODED, starting with '/': "/bucket/a b+c/ü"
                          (path-style) or "/a b+c" (virtual-hosted) */
  const bh__kv *query; /* DECODED names (not empty) and values ("" for
                          e.g. ?uploads, which is then sent uploads=) */
  size_t n_query;
  const bh__kv *headers; /* more headers to send and sign (range,
                            content-type, content-md5, x-amz-meta-*...):
                            printable ASCII, names case-insensitive and
                            unique; not host, x-amz-date,
                            x-amz-content-sha256, authorization, nor
                            x-amz-security-token when a token is given */
  size_t n_headers;
  const char *payload_hash; /* lowercase hex SHA-256 of the body
                               (bh__sha256_hex), or "UNSIGNED-PAYLOAD" */
  const char *region;       /* "us-east-1" */
  const char *service;      /* "s3" */
  const char *access_key;
  const char *secret_key;
  const char *session_token; /* NULL when the credentials have none */
  int64_t when;              /* seconds since the epoch, UTC */
} bh__sigv4_req;

/* What to send. Every pointer lies in memory the structure owns, valid
 * until bh__sigv4_out_free(). */
typedef struct bh__sigv4_out {
  char *target;        /* the request-target: encoded path, then '?' and
                          the canonical query when there is one */
  char *amz_date;      /* "20130524T000000Z", also among the headers */
  char *authorization; /* the Authorization header's value */
  bh__kv *headers;     /* every header to send besides Authorization, as
                          signed: lower-case names in byte order, values
                          trimmed with inner runs of blanks made one space
                          (an empty value is sent as "name;" with curl) */
  size_t n_headers;
  char *canonical; /* the canonical request, to compare with the one
                      S3 returns with SignatureDoesNotMatch */
} bh__sigv4_out;

/* The signing key derived from a secret, a day, a region and a service,
 * kept to save four HMACs per request. Zero it before first use; one per
 * client, used by one thread at a time. bh__sigv4_sign() derives it again
 * whenever any of the four changed. */
#define BH__SIGV4_KEY_ID 256
typedef struct bh__sigv4_key {
  size_t id_len;             /* 0: nothing kept */
  char id[BH__SIGV4_KEY_ID]; /* secret, day, region, service, each ended
                                by a NUL: what `key` was derived from */
  unsigned char key[32];
} bh__sigv4_key;

/* Signs `req` into `out` (caller storage, filled on success, zeroed on
 * failure). `key` may be NULL (the key is then derived for this call
 * only); the result is the same either way. Returns 0, BH_EINVAL (a NULL
 * or malformed field) or BH_ENOMEM. */
int bh__sigv4_sign(const bh__sigv4_req *req, bh__sigv4_key *key,
                   bh__sigv4_out *out);
/* Frees what `out` holds and zeroes it. NULL and a zeroed out are fine. */
void bh__sigv4_out_free(bh__sigv4_out *out);
/* Wipes a kept key and the secret it holds. */
void bh__sigv4_key_clear(bh__sigv4_key *key);

/* The lowercase hex SHA-256 of data[0..len) into out (64 digits and a
 * NUL): the payload hash of a body. Returns 0, BH_EINVAL (data NULL with
 * len > 0) or BH_ENOMEM. */
int bh__sha256_hex(const void *data, size_t len, char out[65]);

#endif
