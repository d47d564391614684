/* sig.c - the registry of this process's signal watches (sig.h). */
#include "runtime/sig.h"

#include <pthread.h>
#include <string.h>

#include "base/base.h"

/* Every loop thread may start watches: one registry, under a lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uv_signal_t **watches;
static size_t n_watches, cap_watches;

static int
remember(uv_signal_t *h) {
  if (n_watches == cap_watches) {
    size_t cap = cap_watches ? cap_watches * 2 : 8;
    uv_signal_t **grown = bh__realloc(watches, cap * sizeof(*grown));

    if (grown == NULL)
      return BH_ENOMEM;
    watches = grown;
    cap_watches = cap;
  }
  watches[n_watches++] = h;
  return 0;
}

static void
forget(uv_signal_t *h) {
  size_t i;

  for (i = 0; i < n_watches; i++)
    if (watches[i] == h) {
      watches[i] = watches[--n_watches];
      break;
    }
  if (n_watches == 0) { /* nothing outlives the last hive */
    bh__free(watches);
    watches = NULL;
    cap_watches = 0;
  }
}

int
bh__sig_start(uv_signal_t *h, uv_signal_cb cb, int signum) {
  int err;

  pthread_mutex_lock(&lock);
  forget(h); /* a restart replaces the watch */
  err = remember(h);
  if (err == 0 && (err = uv_signal_start(h, cb, signum)) != 0)
    forget(h);
  pthread_mutex_unlock(&lock);
  return err;
}

void
bh__sig_stop(uv_signal_t *h) {
  pthread_mutex_lock(&lock);
  forget(h);
  pthread_mutex_unlock(&lock);
  uv_signal_stop(h);
}

void
bh__sig_forget_all(void) {
  /* Only this thread runs in the child: the lock may have been held by
   * another thread at the fork, so it is made anew, not taken. */
  pthread_mutex_init(&lock, NULL);
  while (n_watches > 0)
    uv_signal_stop(watches[--n_watches]);
  bh__free(watches);
  watches = NULL;
  cap_watches = 0;
}

void
bh__sig_block_all(sigset_t *old) {
  sigset_t all;

  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, old);
}

void
bh__sig_restore(const sigset_t *old) {
  pthread_sigmask(SIG_SETMASK, old, NULL);
}

void
bh__sig_worker(void) {
  struct sigaction sa;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}
