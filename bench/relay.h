/* relay.h - a slow link for the benchmarks: a process that forwards TCP
 * connections both ways and holds every chunk it reads for a fixed delay
 * before writing it on. The kernel here has no sch_netem, so `tc qdisc
 * add ... netem delay 1ms` is impossible; this is its userspace stand-in,
 * a link of that latency and (within the relay's CPU) any bandwidth.
 *
 * The relay listens as soon as it is started, so that its address can be
 * handed out; its upstream (where each accepted connection goes) is given
 * later, once that one listens too. Connections that arrive before wait in
 * the listen backlog. Start and stop in one process; not thread-safe. */
#ifndef BH_BENCH_RELAY_H
#define BH_BENCH_RELAY_H

#include <stdint.h>
#include <sys/types.h>

typedef struct bench_relay {
  pid_t pid;     /* the relay process, a child of the caller */
  int ctl;       /* the write end of its control pipe */
  char addr[64]; /* where it listens, "HOST:PORT" */
} bench_relay;

/* Forks a relay listening on IPv4 address `host` (a free port), whose
 * chunks wait `delay_us` microseconds each way (0: none). Returns 0, or
 * -1 with a message on stderr. The relay dies with its parent. */
int bench_relay_start(bench_relay *r, const char *host, int64_t delay_us);
/* Sends the relay its upstream, an IPv4 "HOST:PORT"; it then forwards
 * every connection, from the first one waiting. Returns 0 or -1. */
int bench_relay_to(bench_relay *r, const char *upstream);
/* Ends the relay and reaps it. Returns 0 if it ran and ended cleanly,
 * -1 otherwise (said on stderr). Accepts a relay never started. */
int bench_relay_stop(bench_relay *r);

#endif
