/* bench.h - what the benchmark programs share (bench/common.c): a clock,
 * sample statistics, the memory of a process, a hive run helper, and the
 * one output format, a `key value unit` line per figure. */
#ifndef BH_BENCH_H
#define BH_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <beehive.h>

/* Monotonic time in nanoseconds. */
int64_t bench_now_ns(void);

/* Sorts v[0..n) in place and returns its q-quantile (0 <= q <= 1), the
 * nearest-rank way. 0 when n is 0. */
double bench_quantile(double *v, size_t n, double q);

/* Prints one figure: "key value unit" on stdout, flushed. */
void bench_out(const char *key, double value, const char *unit);

/* Writes all n bytes to fd, or dies ("bench: write: ..."). */
void bench_write_all(int fd, const void *p, size_t n);
/* Reads exactly n bytes from fd: 0, or -1 at the end of the stream; dies
 * on an error. */
int bench_read_all(int fd, void *p, size_t n);

/* A TCP socket listening on IPv4 address `host`, a free port: its fd, and
 * its address "HOST:PORT" in addr; -1 (said on stderr) if it cannot. */
int bench_listen(const char *host, char *addr, size_t len);

/* A field of /proc/<pid>/status ("VmRSS", "RssAnon"...) in KiB; pid 0 is
 * this process. -1 if it cannot be read. */
long bench_status_kib(pid_t pid, const char *field);
/* Pss of a process from /proc/<pid>/smaps_rollup in KiB; -1 if unknown. */
long bench_pss_kib(pid_t pid);
/* This process's resident set in bytes, from /proc/self/statm. */
long bench_rss_bytes(void);

/* The k-th CPU (0-based) this process was allowed at its start, or -1. */
int bench_cpu(int k);
/* Pins the calling thread (and the children it forks later) to one CPU;
 * cpu -1 restores the mask it had at its start. Returns 0 or -1. */
int bench_pin(int cpu);

/* An unsigned integer from argv[i] or the environment variable `env`, or
 * `def` when neither is given. Dies with a message on a bad number. */
long bench_arg(int argc, char **argv, int i, const char *env, long def);

/* Fails the program: prints "bench: <what>: <result's error>" and exits 2.
 * r may be NULL. */
_Noreturn void bench_die(const char *what, int rc, const bh_result *r);

/* The same for a failed system call: its errno. */
_Noreturn void bench_die_errno(const char *what);

/* Runs queen task `task` with args `args` (may be NULL) and checks that it
 * succeeded; returns the result (owned) or dies. workers is the exact
 * number of workers (the population manager may neither grow nor shrink
 * it); max_conc is each worker's max_concurrency (0: the default). */
bh_result *bench_run(const bh_class *queen, const char *task,
                     const bh_value *args, int workers, int max_conc);
/* The same with options filled by the caller; `workers` is pinned as
 * above. */
bh_result *bench_run_opts(bh_run_opts *o, int workers);

/* In a queen's task: n + warm delegations of "noop", one at a time, the
 * last n timed into us[] (microseconds each). Returns 0, or the failed
 * delegation raised. */
int bench_seq_loop(bh_task *t, double *us, size_t warm, size_t n);
/* Waits for the next answer of g and checks that it succeeded. Returns 0
 * or the raise. */
int bench_collect(bh_task *t, bh_group *g);

/* The usual worker: "noop" returns nil, "echo" returns its first argument,
 * "pid" returns [getpid()], "nap" sleeps args[0] ms and returns the
 * microseconds it slept, "pin" pins the worker to CPU args[0] (bench_pin). */
extern const bh_class bench_worker;

#endif
