/* overflow.h - a task that runs past its fiber's stack, caught and named.
 *
 * Below every fiber stack lies a guard region (fiber.h): the overflow
 * faults there, and with no handler the process dies of a bare SIGSEGV.
 * While a hive runs, a SIGSEGV handler on an alternate signal stack (the
 * faulting stack has no room left) asks the fiber module whether the
 * fault is the running fiber's overflow. If so it writes "beehive: stack
 * overflow in task 'X' (stack N KiB): give class 'C' a larger stack_size"
 * on stderr, and then:
 *   - in a worker process, writes the same words on its last-words page
 *     (lastword.h), for the parent's cause of its death, and dies of
 *     SIGSEGV as any crashed worker does;
 *   - in the queen's process (the caller of bh_run), aborts: the fault
 *     may have hit anywhere in the task's code, with locks held and
 *     structures half changed, so nothing can safely go on.
 * Any other fault goes where it went before: to the previous handler, or
 * to the default action. */
#ifndef BH_OVERFLOW_H
#define BH_OVERFLOW_H

/* Installs the handler (once per process, however many hives run) and
 * gives this thread an alternate signal stack if it has none. Every start
 * needs its stop; the last stop puts back the previous handler (unless
 * someone replaced ours meanwhile) and this thread's last one removes the
 * alternate stack it made. Loop thread only. */
void bh__overflow_start(void);
void bh__overflow_stop(void);
/* In a new worker process, before anything else runs (after fork(), only
 * this thread is left): overflows end the process as a worker's do, and
 * their words go on `page` (NULL: stderr only). Borrows page for the
 * life of the process. */
void bh__overflow_worker(char *page);

#endif
