/* door.c - the queen's door: her listener for workers of other hosts
 * (door.h). The handshake is the transport's (tcp_join.c); what comes
 * after is the hive's: a refused peer is logged with its address and
 * forgotten, and an accepted one is adopted as a remote child, its first
 * frame the bootstrap an exec-started worker would read on its
 * descriptor (docs/PROTOCOL.md section 14). */
#include "hive/door.h"
#include "hive/deleg.h"
#include "transport/send.h"
#include "transport/key.h"
#include "transport/tcp.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>

struct bh__door {
  bh_bee *bee;
  bh__tcp_listener *l;
  bh__door_opts o;
  size_t joined;
  char addr[64];
};

/* The bootstrap, queued before anything else on the new channel. */
static int
send_boot(bh__child *c, void *arg) {
  bh_bee *bee = c->kids->owner;
  bh_value *cfg = bh__wcfg_value(&bee->w_cfg);
  int rc = cfg == NULL ? BH_ENOMEM
                       : bh__send_bootstrap(c->chan, bee->worker_class->name,
                                            c->id,
                                            bh_value_object(bee->w_args),
                                            bh_value_object(bee->w_kwargs),
                                            bh_value_object(cfg));

  (void)arg;
  bh_value_free(cfg);
  return rc;
}

static void
adopt(bh__door *d, bh__transport *t, const char *peer) {
  bh_bee *bee = d->bee;
  bh__child *c = NULL;
  int rc = bh__kids_add_remote(&bee->kids, &bee->next_kid, t, peer,
                               (int)bee->w_cfg.max_concurrency,
                               (int)bee->w_cfg.prefetch, send_boot, NULL,
                               &c);

  if (rc != 0) {
    bh_log(bee->log, BH_LOG_ERROR, "queen %lld: the worker from %s could "
           "not be adopted: %s", (long long)bee->id, peer, bh_strerror(rc));
    return;
  }
  d->joined++;
  bh_log(bee->log, BH_LOG_INFO, "queen %lld: worker bee %lld joined from "
         "%s", (long long)bee->id, (long long)c->id, peer);
  bh__deleg_pump(bee); /* its room takes the tasks that wait */
  if (d->o.joined != NULL)
    d->o.joined(bee, c, d->o.arg);
}

static void
accepted(bh__transport *t, int err, const char *why, const char *peer,
         void *arg) {
  bh__door *d = arg;
  bh_bee *bee = d->bee;

  if (err != 0) {
    bh_log(bee->log, BH_LOG_WARNING, "queen %lld: %s", (long long)bee->id,
           why);
    return;
  }
  if (bee->terminating || bee->pop_failed != NULL) {
    bh_log(bee->log, BH_LOG_WARNING, "queen %lld: the worker from %s is "
           "turned away: the hive is ending", (long long)bee->id, peer);
    t->ops->close(t, NULL, NULL);
    return;
  }
  adopt(d, t, peer);
}

/* The hive's key: given, read from its file, or made into a new file
 * (then the workers' launcher copies it to their hosts). */
static int
door_key(bh_bee *bee, const bh__door_opts *o, unsigned char *key, char *why,
         size_t len) {
  struct stat st;
  int rc;

  if (o->key != NULL) {
    memcpy(key, o->key, BH__KEY_LEN);
    return 0;
  }
  if (stat(o->key_file, &st) == 0 || errno != ENOENT)
    return bh__key_load(o->key_file, key, why, len);
  if ((rc = bh__key_make(o->key_file, key, why, len)) == 0)
    bh_log(bee->log, BH_LOG_INFO, "queen %lld: made a new key in %s: copy "
           "it to the workers' hosts", (long long)bee->id, o->key_file);
  else if (rc == -EEXIST) /* another made it meanwhile: theirs it is */
    rc = bh__key_load(o->key_file, key, why, len);
  return rc;
}

int
bh__door_open(bh_bee *bee, const bh__door_opts *o, char *why, size_t len) {
  unsigned char key[BH__KEY_LEN];
  bh__tcp_opts to = {.key = key, .handshake_ms = o->handshake_ms,
                     .heartbeat_ms = o->heartbeat_ms};
  bh__door *d;
  int rc = door_key(bee, o, key, why, len);

  if (rc != 0) {
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
  }
  if ((d = bh__calloc(1, sizeof(*d))) == NULL)
    return BH_ENOMEM;
  d->bee = bee;
  d->o = *o;
  d->o.key = NULL; /* the listener keeps its own copy */
  d->o.key_file = NULL;
  d->o.listen = NULL;
  rc = bh__tcp_listen(&d->l, bee->loop, o->listen, &to, accepted, d, why,
                      len);
  OPENSSL_cleanse(key, sizeof(key));
  if (rc != 0) {
    bh__free(d);
    return rc;
  }
  snprintf(d->addr, sizeof(d->addr), "%s", bh__tcp_listener_addr(d->l));
  bee->door = d;
  bee->door_open = true;
  bh_log(bee->log, BH_LOG_INFO, "queen %lld: workers may join at %s",
         (long long)bee->id, d->addr);
  return 0;
}

const char *
bh__door_addr(const bh_bee *bee) {
  return bee->door != NULL ? bee->door->addr : NULL;
}

size_t
bh__door_joined(const bh_bee *bee) {
  return bee->door != NULL ? bee->door->joined : 0;
}

void
bh__door_close(bh_bee *bee) {
  bh__door *d = bee->door;

  if (d == NULL || d->l == NULL)
    return;
  bh__tcp_listener_close(d->l);
  d->l = NULL;
  bee->door_open = false;
}

void
bh__door_free(bh_bee *bee) {
  bh__door_close(bee);
  bh__free(bee->door);
  bee->door = NULL;
}
