/* pop.c - the queen's population manager, with the reference's rules and
 * every number an option: at least `min` workers, at most `max`; every
 * interval, shrink (the least-loaded worker dies) when above the minimum
 * and above the maximum or the machine is short of CPU or memory, else
 * grow by one while below the maximum. Better than the original: it grows
 * at once when delegations wait because every worker is full, replaces
 * dead workers to keep the minimum, and gives up (new work fails with the
 * last causes) after more than `max_restarts` deaths in `period`. */
#include "hive/bee.h"
#include "hive/pop.h"
#include "hive/spawn.h"

#include <string.h>
#include <unistd.h>

#define N_CAUSES 4

struct bh__pop {
  bh_bee *bee;
  bh__pop_opts o;
  uv_timer_t tick;
  uv_timer_t grow;          /* zero-delay: spawns happen on main, soon */
  int64_t *deaths;          /* ring: times (ms) of the deaths in the last
                             * period, oldest at `first` */
  size_t first, n_deaths, cap_deaths;
  char *causes[N_CAUSES];   /* the last causes of death, newest last */
  uint64_t cpu_busy, cpu_total; /* the last /proc/stat sample */
  int closing;              /* timers still closing */
  void (*changed)(bh_bee *bee); /* after a spawn or giving up */
};

/* A living local worker not told to die: what the manager counts and
 * may retire. Remote workers are not hers to start or stop. */
static bool
local_active(const bh__child *c) {
  return c->alive && !c->told_die && c->host == NULL;
}

static size_t
active(const bh_bee *bee) {
  size_t i, n = 0;

  for (i = 0; i < bee->kids.n; i++)
    n += local_active(bee->kids.all[i]);
  return n;
}

/* Share of the CPU busy since the last call, from /proc/stat. */
static double
cpu_share(bh__pop *p) {
  unsigned long long v[8] = {0};
  uint64_t busy, total, db, dt;
  FILE *f = fopen("/proc/stat", "r");
  int n = 0;

  if (f != NULL) {
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
  }
  if (n < 4)
    return 0.0;
  total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
  busy = total - v[3] - v[4];
  db = busy - p->cpu_busy;
  dt = total - p->cpu_total;
  p->cpu_busy = busy;
  p->cpu_total = total;
  return dt > 0 ? (double)db / (double)dt : 0.0;
}

/* Share of memory in use, from /proc/meminfo (MemAvailable). */
static double
mem_share(void) {
  char line[128];
  unsigned long long total = 0, avail = 0;
  FILE *f = fopen("/proc/meminfo", "r");

  while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
    sscanf(line, "MemTotal: %llu", &total);
    sscanf(line, "MemAvailable: %llu", &avail);
  }
  if (f != NULL)
    fclose(f);
  return total > 0 ? 1.0 - (double)avail / (double)total : 0.0;
}

int
bh__pop_spawn(bh_bee *bee, int n, char **why) {
  const bh__wcfg *cfg = &bee->w_cfg;
  int i, rc;

  for (i = 0; i < n; i++) {
    bh__spawn s = {.cls = bee->worker_class, .id = bee->next_kid,
                   .init_args = bee->w_args, .init_kwargs = bee->w_kwargs,
                   .cfg = cfg, .logger = bee->log, .start = bee->w_start,
                   .run = bee->w_run};
    char *last_words, *err;
    pid_t pid;
    int fd;

    rc = bh__spawn_worker(&s, &pid, &fd, &last_words, &err);
    if (rc == 0)
      rc = bh__kids_add(&bee->kids, &bee->next_kid, fd, pid,
                        (int)cfg->max_concurrency, (int)cfg->prefetch,
                        last_words, NULL);
    if (rc != 0) {
      bh_log(bee->log, BH_LOG_ERROR, "queen %lld: could not spawn a worker: "
             "%s", (long long)bee->id, err ? err : bh_strerror(rc));
      if (why != NULL)
        *why = err;
      else
        bh__free(err);
      return rc;
    }
    bh_log(bee->log, BH_LOG_DEBUG, "queen %lld: spawned worker bee %lld "
           "(pid %d)", (long long)bee->id, (long long)s.id, (int)pid);
  }
  return 0;
}

static int
spawn_one(bh__pop *p, const char *why) {
  bh_bee *bee = p->bee;
  int rc;

  bh_log(bee->log, BH_LOG_INFO, "queen %lld: spawning worker %lld: %s",
         (long long)bee->id, (long long)bee->next_kid, why);
  rc = bh__pop_spawn(bee, 1, NULL);
  if (rc != 0)
    bh_log(bee->log, BH_LOG_ERROR, "queen %lld: spawning failed: %s",
           (long long)bee->id, bh_strerror(rc));
  return rc;
}

/* The living worker with the fewest delegations in flight. */
static bh__child *
least_loaded(bh_bee *bee) {
  bh__child *best = NULL;
  size_t i;

  for (i = 0; i < bee->kids.n; i++) {
    bh__child *c = bee->kids.all[i];

    if (local_active(c) && (best == NULL || c->inflight < best->inflight))
      best = c;
  }
  return best;
}

static void
give_up(bh__pop *p, char *why) {
  bh_bee *bee = p->bee;

  if (why == NULL || bee->pop_failed != NULL) {
    bh__free(why);
    return;
  }
  bee->pop_failed = why;
  bh_log(bee->log, BH_LOG_ERROR, "queen %lld: %s", (long long)bee->id, why);
  uv_timer_stop(&p->tick);
  p->changed(bee);
}

/* Why the machine asks for fewer workers now, or NULL. A share of -1
 * never does. */
static const char *
pressure(bh__pop *p, char *buf, size_t len) {
  double cpu = cpu_share(p), mem = p->o.mem_high < 0 ? 0.0 : mem_share();

  if (p->o.cpu_high >= 0 && cpu > p->o.cpu_high)
    snprintf(buf, len, "CPU use %.0f%% above %.0f%%", cpu * 100,
             p->o.cpu_high * 100);
  else if (p->o.mem_high >= 0 && mem > p->o.mem_high)
    snprintf(buf, len, "memory use %.0f%% above %.0f%%", mem * 100,
             p->o.mem_high * 100);
  else
    return NULL;
  return buf;
}

static void
retire_one(bh__pop *p, const char *why) {
  bh_bee *bee = p->bee;
  bh__child *c = least_loaded(bee);

  if (c == NULL)
    return;
  bh_log(bee->log, BH_LOG_INFO, "queen %lld: telling worker %lld (%zu in "
         "flight, the fewest) to die: %s", (long long)bee->id,
         (long long)c->id, (size_t)c->inflight, why);
  bh__child_die(c);
}

/* The reference's rules, but no growth under pressure: growing while the
 * machine is short of CPU or memory would only undo the last shrink. */
static void
tick_cb(uv_timer_t *h) {
  bh__pop *p = h->data;
  bh_bee *bee = p->bee;
  size_t n = active(bee);
  char why[128];
  const char *press;

  if (bee->terminating || bee->pop_failed != NULL)
    return;
  press = pressure(p, why, sizeof(why));
  if (n < (size_t)p->o.min) {
    if (spawn_one(p, "below the minimum") != 0)
      give_up(p, bh__asprintf("The queen could not keep her minimum of %d "
                              "workers.", p->o.min));
  } else if (n > (size_t)p->o.min && n > (size_t)p->o.max) {
    snprintf(why, sizeof(why), "%zu workers, above the maximum of %d", n,
             p->o.max);
    retire_one(p, why);
  } else if (n > (size_t)p->o.min && press != NULL) {
    retire_one(p, press);
  } else if (n < (size_t)p->o.max && press == NULL) {
    spawn_one(p, "below the maximum");
  }
}

static void
grow_cb(uv_timer_t *h) {
  bh__pop *p = h->data;
  bh_bee *bee = p->bee;
  size_t n = active(bee);

  if (bee->terminating || bee->pop_failed != NULL)
    return;
  if (n < (size_t)p->o.min)
    spawn_one(p, "replacing a worker, to keep the minimum");
  else if (bee->n_backlog > 0 && n < (size_t)p->o.max &&
           (p->o.mem_high < 0 || mem_share() <= p->o.mem_high))
    spawn_one(p, "every worker is busy and tasks wait");
  p->changed(bee);
}

static void
want_grow(bh__pop *p) {
  if (!uv_is_active((uv_handle_t *)&p->grow))
    uv_timer_start(&p->grow, grow_cb, 0, 0);
}

bool
bh__pop_can_grow(const bh_bee *bee) {
  const bh__pop *p = bee->pop;

  /* An open door may still bring a worker: tasks wait for it. */
  return p != NULL && bee->pop_failed == NULL && !bee->terminating &&
         (active(bee) < (size_t)p->o.max || bee->door_open);
}

void
bh__pop_saturated(bh_bee *bee) {
  const bh__pop *p = bee->pop;

  /* Only a worker of this host can be started for it. */
  if (bh__pop_can_grow(bee) && active(bee) < (size_t)p->o.max)
    want_grow(bee->pop);
}

void
bh__pop_task_done(bh_bee *bee, bh__child *c) {
  bh__pop *p = bee->pop;

  if (p == NULL || p->o.recycle_after <= 0 || c->told_die ||
      c->host != NULL ||
      (int64_t)(c->done + c->raised + c->cancelled) < p->o.recycle_after)
    return;
  bh_log(bee->log, BH_LOG_INFO, "queen %lld: retiring worker %lld after "
         "%lld tasks", (long long)bee->id, (long long)c->id,
         (long long)p->o.recycle_after);
  bh__child_die(c);
  want_grow(p);
}

/* Keeps the newest cause; returns them joined by "; ". */
static char *
remember(bh__pop *p, const char *cause) {
  char all[N_CAUSES * 160] = "";
  int i;

  bh__free(p->causes[0]);
  memmove(p->causes, p->causes + 1, (N_CAUSES - 1) * sizeof(char *));
  p->causes[N_CAUSES - 1] = bh__strdup(cause ? cause : "?");
  for (i = 0; i < N_CAUSES; i++) {
    if (p->causes[i] == NULL)
      continue;
    if (all[0] != '\0')
      strncat(all, "; ", sizeof(all) - strlen(all) - 1);
    strncat(all, p->causes[i], sizeof(all) - strlen(all) - 1);
  }
  return bh__strdup(all);
}

/* Records a death now; true when more than max_restarts happened within
 * the period (-1: none may happen; a period of -1 is the whole run). The
 * ring holds only the deaths of the last period, so its size follows the
 * actual death rate, whatever max_restarts is. */
static bool
too_many(bh__pop *p) {
  int64_t now = bh_now();

  while (p->o.period_ms >= 0 && p->n_deaths > 0 &&
         p->deaths[p->first] < now - p->o.period_ms) {
    p->first = (p->first + 1) % p->cap_deaths;
    p->n_deaths--;
  }
  if (p->n_deaths == p->cap_deaths) {
    size_t cap = p->cap_deaths ? p->cap_deaths * 2 : 16, i;
    int64_t *grown = bh__malloc(cap * sizeof(int64_t));

    if (grown == NULL)
      return false;
    for (i = 0; i < p->n_deaths; i++)
      grown[i] = p->deaths[(p->first + i) % p->cap_deaths];
    bh__free(p->deaths);
    p->deaths = grown;
    p->cap_deaths = cap;
    p->first = 0;
  }
  p->deaths[(p->first + p->n_deaths++) % p->cap_deaths] = now;
  return p->n_deaths > (size_t)(p->o.max_restarts > 0 ? p->o.max_restarts
                                                      : 0);
}

/* Why the queen gives up after too many deaths; owned. */
static char *
why_give_up(const bh__pop *p, const char *causes) {
  const char *c = causes ? causes : "?";

  if (p->o.max_restarts < 0)
    return bh__asprintf("The queen gave up: a worker died, and "
                        "max_restarts -1 allows no restarts. Last causes: "
                        "%s%s", c, bh__stop(c));
  if (p->o.period_ms < 0)
    return bh__asprintf("The queen gave up: more than %d workers died in "
                        "this run. Last causes: %s%s", p->o.max_restarts, c,
                        bh__stop(c));
  return bh__asprintf("The queen gave up: more than %d workers died within "
                      "%lld ms. Last causes: %s%s", p->o.max_restarts,
                      (long long)p->o.period_ms, c, bh__stop(c));
}

/* A remote worker was lost: nobody here can start it again. */
static void
remote_lost(bh__pop *p, const bh__child *c) {
  bh_bee *bee = p->bee;
  const char *cause = c->cause ? c->cause : "?";

  if (bee->awaiting_joins) { /* the join's deadline decides */
    bh_log(bee->log, BH_LOG_WARNING, "queen %lld: remote worker %lld on %s "
           "was lost before her task started (%s): waiting for another",
           (long long)bee->id, (long long)c->id, c->host, cause);
    return;
  }
  if (p->o.remote_loss == BH_REMOTE_FAIL) {
    give_up(p, bh__asprintf("The queen gave up: remote worker %lld (%s) "
                            "was lost: %s, and remote_loss is "
                            "BH_REMOTE_FAIL.", (long long)c->id, c->host,
                            cause));
    return;
  }
  if (bee->kids.n_alive > 0 || p->o.max > 0)
    return; /* others work on; local ones are replaced as ever */
  if (p->o.remote_loss == BH_REMOTE_WAIT) {
    bh_log(bee->log, BH_LOG_WARNING, "queen %lld: every worker is lost (the "
           "last, %lld on %s: %s); tasks wait for a worker to join",
           (long long)bee->id, (long long)c->id, c->host, cause);
    return;
  }
  give_up(p, bh__asprintf("The queen gave up: every worker is lost (the "
                          "last, remote worker %lld on %s: %s), and none "
                          "can start on this host.", (long long)c->id,
                          c->host, cause));
}

void
bh__pop_on_death(bh_bee *bee, bh__child *c) {
  bh__pop *p = bee->pop;
  char *causes;

  /* A dying queen replaces nobody: her workers' ends count for nothing. */
  if (p == NULL || bh__child_normal_end(c) || bee->terminating)
    return;
  if (c->host != NULL) {
    remote_lost(p, c);
    return;
  }
  causes = remember(p, c->cause);
  if (too_many(p))
    give_up(p, why_give_up(p, causes));
  else if (!bee->terminating)
    want_grow(p);
  bh__free(causes);
}

static int
cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);

  return n > 0 ? (int)n : 1;
}

/* 0 is the default; -1 (none) stays, for the code that reads it. */
void
bh__pop_opts_norm(bh__pop_opts *o, int initial) {
  if (o->min < 0) { /* no local workers: nothing else applies */
    o->min = o->max = 0;
    o->interval_ms = -1;
    return;
  }
  if (o->min <= 0)
    o->min = 1;
  if (o->max <= 0) {
    o->max = cpu_count() - 1 > 1 ? cpu_count() - 1 : 1;
    o->max = o->max > initial ? o->max : initial;
  }
  o->max = o->max > o->min ? o->max : o->min;
  if (o->interval_ms == 0)
    o->interval_ms = 10000;
  if (o->cpu_high == 0)
    o->cpu_high = 0.9;
  if (o->mem_high == 0)
    o->mem_high = 0.9;
  if (o->max_restarts == 0)
    o->max_restarts = 10;
  if (o->period_ms == 0)
    o->period_ms = 10000;
}

int
bh__pop_start(bh_bee *bee, const bh__pop_opts *o,
              void (*changed)(bh_bee *bee)) {
  bh__pop *p = bh__calloc(1, sizeof(*p));

  if (p == NULL)
    return BH_ENOMEM;
  p->o = *o;
  p->bee = bee;
  p->changed = changed;
  uv_timer_init(bee->loop, &p->tick);
  uv_timer_init(bee->loop, &p->grow);
  p->tick.data = p->grow.data = p;
  /* Neither timer keeps the loop alive: shutting down never waits them.
   * interval -1: no cadence; growth on demand and replacement remain. */
  if (o->interval_ms > 0)
    uv_timer_start(&p->tick, tick_cb, (uint64_t)o->interval_ms,
                   (uint64_t)o->interval_ms);
  uv_unref((uv_handle_t *)&p->tick);
  uv_unref((uv_handle_t *)&p->grow);
  cpu_share(p);
  bee->pop = p;
  return 0;
}

void
bh__pop_stop(bh_bee *bee) {
  if (bee->pop != NULL) {
    uv_timer_stop(&bee->pop->tick);
    uv_timer_stop(&bee->pop->grow);
  }
}

static void
pop_closed(uv_handle_t *h) {
  bh__pop *p = h->data;
  int i;

  if (--p->closing > 0)
    return;
  for (i = 0; i < N_CAUSES; i++)
    bh__free(p->causes[i]);
  bh__free(p->deaths);
  bh__free(p);
}

void
bh__pop_free(bh_bee *bee) {
  bh__pop *p = bee->pop;

  if (p == NULL)
    return;
  bee->pop = NULL;
  p->closing = 2;
  uv_close((uv_handle_t *)&p->tick, pop_closed);
  uv_close((uv_handle_t *)&p->grow, pop_closed);
}
