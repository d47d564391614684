/* overflow.c - a task's stack overflow, caught and named (overflow.h).
 * The handler runs on a stack of its own after a fault anywhere, so it
 * does only what a signal handler may: no allocation, no stdio; the words
 * are put together by hand. */
#include "runtime/overflow.h"

#include "runtime/fiber.h"
#include "base/base.h"
#include "proc/lastword.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

/* The handler's own stack: it needs little, but a previous handler it
 * passes a fault on to may need more. */
#define ALT_SIZE ((size_t)64 << 10)
/* The longest task and class names quoted. */
#define NAME_MAX_QUOTED 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int users;             /* starts not stopped yet */
static struct sigaction prev; /* SIGSEGV's handling before ours */
static char *last_words;      /* a worker's page, or NULL */
static volatile sig_atomic_t in_worker;

/* This thread's starts, and the alternate stack it made, if any. */
static _Thread_local struct {
  int depth;
  void *alt;
} T;

/* ------------------------------------------------------------------------
 * In the handler: async-signal-safe only. */

static size_t
put(char *b, size_t at, size_t cap, const char *s, size_t max) {
  while (*s != '\0' && max-- > 0 && at + 1 < cap)
    b[at++] = *s++;
  b[at] = '\0';
  return at;
}

static size_t
put_num(char *b, size_t at, size_t cap, size_t v) {
  char d[24];
  size_t n = 0;

  do
    d[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  while (n > 0 && at + 1 < cap)
    b[at++] = d[--n];
  b[at] = '\0';
  return at;
}

/* "stack overflow in task 'X' (stack N KiB): give class 'C' a larger
 * stack_size" into b (cap bytes); returns its length. */
static size_t
describe(const bh__overflow *o, char *b, size_t cap) {
  size_t at = put(b, 0, cap, "stack overflow in task '", SIZE_MAX);

  at = put(b, at, cap, o->task ? o->task : "?", NAME_MAX_QUOTED);
  at = put(b, at, cap, "' (stack ", SIZE_MAX);
  at = put_num(b, at, cap, o->stack >> 10);
  if (o->cls == NULL)
    return put(b, at, cap, " KiB)", SIZE_MAX);
  at = put(b, at, cap, " KiB): give class '", SIZE_MAX);
  at = put(b, at, cap, o->cls, NAME_MAX_QUOTED);
  return put(b, at, cap, "' a larger stack_size", SIZE_MAX);
}

static void
set_default(int sig) {
  struct sigaction dfl;

  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
}

/* Says it, then ends the process: a worker returns to the faulting
 * instruction, which faults again under the default action. */
static void
report(const bh__overflow *o) {
  char msg[512];
  size_t i, n = describe(o, msg, sizeof(msg));

  if (in_worker && last_words != NULL)
    for (i = 0; i <= n && i < BH__LASTWORD_SIZE - 1; i++)
      last_words[i] = msg[i];
  bh__write_all(STDERR_FILENO, "beehive: ", 9);
  bh__write_all(STDERR_FILENO, msg, n);
  bh__write_all(STDERR_FILENO, "\n", 1);
  if (!in_worker)
    abort();
  set_default(SIGSEGV);
}

/* The stack pointer at the fault, or 0 where we do not know where the
 * machine keeps it. */
static uintptr_t
fault_sp(const void *ctx) {
  const ucontext_t *uc = ctx;

#if defined(__x86_64__)
  return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
  return (uintptr_t)uc->uc_mcontext.sp;
#else
  (void)uc;
  return 0;
#endif
}

/* As if we were not there: the previous handler gets it, or the default
 * action. A fault is never ignored (the kernel would force the default);
 * a SIGSEGV sent by kill() may be. */
static void
pass_on(int sig, siginfo_t *si, void *ctx) {
  bool sent = si->si_code <= 0;

  if (prev.sa_flags & SA_SIGINFO) {
    prev.sa_sigaction(sig, si, ctx);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  if (prev.sa_handler == SIG_IGN && sent)
    return;
  set_default(sig);
  if (sent) /* blocked here: it arrives, and kills, once we return */
    raise(sig);
}

static void
on_segv(int sig, siginfo_t *si, void *ctx) {
  int saved = errno;
  bh__overflow o;

  /* si_code > 0: a fault the kernel raised, whose si_addr is meaningful. */
  if (si->si_code > 0 &&
      bh__fiber_overflowed((uintptr_t)si->si_addr, fault_sp(ctx), &o))
    report(&o);
  else
    pass_on(sig, si, ctx);
  errno = saved;
}

/* ------------------------------------------------------------------------
 * Installing and removing. */

/* This thread's alternate signal stack, unless it has one already (the
 * program's, or a sanitizer's). Without one the handler would run on the
 * overflowed stack, fault again, and the kernel would kill the process
 * as before: a missing report, nothing worse. */
static void
alt_start(void) {
  stack_t ss;
  void *alt;

  if (sigaltstack(NULL, &ss) != 0 || !(ss.ss_flags & SS_DISABLE))
    return;
  alt = mmap(NULL, ALT_SIZE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (alt == MAP_FAILED)
    return;
  ss = (stack_t){.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) {
    munmap(alt, ALT_SIZE);
    return;
  }
  T.alt = alt;
}

static void
alt_stop(void) {
  stack_t ss;

  if (T.alt == NULL)
    return;
  if (sigaltstack(NULL, &ss) == 0 && ss.ss_sp == T.alt) {
    ss = (stack_t){.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
  }
  munmap(T.alt, ALT_SIZE);
  T.alt = NULL;
}

void
bh__overflow_start(void) {
  struct sigaction sa;

  if (T.depth++ == 0)
    alt_start();
  pthread_mutex_lock(&lock);
  if (users++ == 0) {
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &prev);
  }
  pthread_mutex_unlock(&lock);
}

void
bh__overflow_stop(void) {
  struct sigaction now;

  pthread_mutex_lock(&lock);
  if (--users == 0 && sigaction(SIGSEGV, NULL, &now) == 0 &&
      (now.sa_flags & SA_SIGINFO) && now.sa_sigaction == on_segv)
    sigaction(SIGSEGV, &prev, NULL);
  pthread_mutex_unlock(&lock);
  if (--T.depth == 0)
    alt_stop();
}

void
bh__overflow_worker(char *page) {
  /* Another thread of the parent may have held the lock at the fork. */
  pthread_mutex_init(&lock, NULL);
  last_words = page;
  in_worker = 1;
}
