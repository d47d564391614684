/* wcfg.h - a worker's settings, in one record: filled once from
 * bh_run_opts (through bh__spawn_opts), held by the queen, copied into a forked
 * worker and sent whole as the bootstrap frame's `config` map to an
 * exec-started one (docs/PROTOCOL.md section 6). Every setting is one line
 * of BH__WCFG_MAP: its type, its name (the struct member and the wire
 * key) and its least value; packing, unpacking and the range check follow
 * from the table. */
#ifndef BH_WCFG_H
#define BH_WCFG_H

#include <limits.h>
#include <stdint.h>

#include "base/base.h"

/* XX(kind, name, min, max): kind INT (int64_t, from min to max), OPT (an
 * INT sent only when not 0, and 0 when missing: an extension that older
 * parents do not send) or STR (owned char *, or NULL; min and max
 * unused). */
#define BH__WCFG_MAP(XX)                                                     \
  /* tasks at once; -1 no limit (never 0) */                                 \
  XX(INT, max_concurrency, -1, INT_MAX)                                      \
  /* accepted beyond max_concurrency, queued */                              \
  XX(INT, prefetch, 0, INT_MAX)                                              \
  /* the channel's frame limit, both ways */                                 \
  XX(INT, max_frame, BH_MAX_FRAME_MIN, UINT32_MAX)                           \
  /* the profile of the bee's S3 client; NULL: none */                       \
  XX(STR, s3_profile, 0, 0)                                                  \
  /* the HTTP session: per host (0: its default) and in all (0: none) */    \
  XX(INT, http_max_host_connections, 0, INT_MAX)                             \
  XX(INT, http_max_connections, 0, INT_MAX)                                  \
  /* the PEM CA bundle of its HTTP session; NULL: the system's */           \
  XX(STR, http_ca_file, 0, 0)                                                \
  /* a remote worker's heartbeat interval (tcp.h); 0 on a local link */    \
  XX(OPT, heartbeat_ms, 0, INT_MAX)

#define BH__WCFG_TYPE_INT int64_t
#define BH__WCFG_TYPE_OPT int64_t
#define BH__WCFG_TYPE_STR char *

typedef struct bh__wcfg {
#define BH__WCFG_MEMBER(kind, name, min, max) BH__WCFG_TYPE_##kind name;
  BH__WCFG_MAP(BH__WCFG_MEMBER)
#undef BH__WCFG_MEMBER
} bh__wcfg;

/* The options of one worker, with bh_run_opts' meanings (0 the default,
 * -1 none). Once public (bh_spawn_opts, for bh_subprocess_workerbee());
 * now what bh_run fills for its workers and what opts.c checks an
 * exec-started worker's bootstrap against. */
typedef struct bh__spawn_opts {
  const bh_class *cls;         /* the worker bee class (required; with a
                                * name for exec starts) */
  const bh_value *init_args;   /* array or NULL; borrowed */
  const bh_value *init_kwargs; /* map or NULL; borrowed */
  const char *s3_profile;      /* NULL: no S3 client */
  int max_concurrency;         /* -1 no limit, 0 means 1024, or >= 1 */
  int prefetch;                /* -1 or 0 none; the sum at most INT_MAX */
  bh_start start;
  size_t max_frame;            /* 0: 64 MiB, else >= BH_MAX_FRAME_MIN */
  int http_max_host_connections;
  int http_max_connections;
  const char *http_ca_file;
} bh__spawn_opts;

/* Fills c from the options of one worker (normalised: max_concurrency 0
 * is 1,024, max_frame 0 is 64 MiB, -1 as the bootstrap's ranges say it).
 * Returns 0 or BH_ENOMEM. */
int bh__wcfg_from_spawn(bh__wcfg *c, const bh__spawn_opts *o);
/* A copy of src into dst (owned strings copied). 0 or BH_ENOMEM. */
int bh__wcfg_copy(bh__wcfg *dst, const bh__wcfg *src);
void bh__wcfg_clear(bh__wcfg *c);
/* The record as a msgpack map, owned (bh_value_free). NULL: no memory. */
bh_value *bh__wcfg_value(const bh__wcfg *c);
/* Reads a config map into c: every key of the table required, of its type
 * and within its range; other keys are refused. Returns 0, or BH_EINVAL
 * with why ("config: max_frame 8 is out of range 4096..4294967295"),
 * or BH_ENOMEM. */
int bh__wcfg_unpack(bh__wcfg *c, const msgpack_object *map, char *why,
                    size_t len);

/* A max_concurrency as the API takes it (0: 1024, < 0: no limit) as bees
 * keep it (-1: no limit). */
int bh__conc_norm(int n);
/* A prefetch as the API takes it (0: the default, < 0: none) for a
 * worker of max_conc (bh__conc_norm's): the default is a quarter of
 * max_concurrency, rounded down (none below 4, where a queued task could
 * wait a whole task's length behind one that runs while another worker
 * idles), and at most what keeps the sum within an int (the worker's
 * check of its bootstrap). Enough that a worker whose tasks end together
 * starts the next ones at once instead of idling for the round trip of
 * their offers (bench_balance, docs/PERFORMANCE.md "Round 2"). None by
 * default for an external class: a program written to the checklist of
 * docs/PROTOCOL.md section 13 counts max_concurrency only, and would deny
 * what the queen thinks it has room for. */
#define BH__PREFETCH_SHARE 4
int bh__prefetch_norm(int prefetch, int max_conc, bool external);

#endif
