/* beehive_mpi.h - a hive started by an MPI launcher (mpirun, srun): rank 0
 * is the queen, every other rank one of her worker bees, joined over TCP
 * as any worker of another host (bh_run_opts.listen, bh_join()).
 *
 * MPI carries two things only: rank 0's address and the hive's key, in one
 * broadcast, and then MPI_Finalize. Every task travels over the hive's own
 * TCP links, so that a rank that dies is a lost worker (its tasks retried
 * elsewhere, as bh_run_opts.retries allows), never the end of the queen;
 * start the job with `mpirun --enable-recovery` so that the launcher does
 * not abort the job itself when a rank dies (README.md, "Across hosts").
 *
 * This is the optional component libbeehive_mpi (CMake: beehive::mpi),
 * built only where MPI is found; libbeehive itself never needs MPI.
 *
 *   int main(int argc, char **argv) {
 *     int status;
 *     if (bh_mpi_start(&argc, &argv, NULL, classes, &status) ==
 *         BH_MPI_WORKER)
 *       return status;                  // rank > 0: it served, and ended
 *     load_the_dataframe();             // rank 0 alone
 *     rc = bh_mpi_run(&run_opts, &result);
 *     ...
 *   }
 *
 * Threads: the thread that calls bh_mpi_start() calls the others. */
#ifndef BEEHIVE_MPI_H
#define BEEHIVE_MPI_H

#include <beehive.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What bh_mpi_start() made of this process. */
typedef enum bh_mpi_role {
  BH_MPI_QUEEN = 0, /* rank 0: set the hive up, then bh_mpi_run() */
  BH_MPI_WORKER = 1 /* any other rank: it served and MPI is finalised;
                     * exit with the status it gave */
} bh_mpi_role;

/* How the ranks find the queen. Every number follows the BH_NONE rule. */
typedef struct bh_mpi_opts {
  /* The queen's host as the workers dial it: a name or address of rank
   * 0's host (the interface to use, on a host with several). NULL:
   * $BH_MPI_HOST, else the host of bh_run_opts.listen unless that is a
   * wildcard ("*", empty, 0.0.0.0), else this host's name
   * (gethostname()). */
  const char *host;
  /* How long a worker rank waits for the queen to listen (rank 0 may load
   * its data first). 0: 600,000; BH_NONE: for ever. */
  int64_t wait_ms;
} bh_mpi_opts;

/* Starts MPI (MPI_Init with argc and argv) and tells this process its role.
 * On rank 0 returns BH_MPI_QUEEN at once: the program sets up what only
 * the queen needs and calls bh_mpi_run() (or bh_mpi_end() if it gives up).
 * On every other rank it waits for the queen's address and key, joins her
 * as one worker bee of `classes` (NULL-terminated, as bh_join()) and
 * serves until she ends it, finalises MPI, then returns BH_MPI_WORKER with
 * *status the process's exit status: bh_join()'s (0 told to die, 1 its
 * class's init failed, 2 it could not join, the queen gave up before
 * listening or did not listen within wait_ms, 3 it lost the queen).
 * `o` is borrowed, NULL for the defaults. Returns BH_EINVAL (said on
 * stderr, before MPI starts) when called twice, with a NULL status or
 * classes, with wait_ms below BH_NONE or a host over 255 bytes;
 * BH_ESPAWN when MPI_Init fails. */
BH_EXTERN int bh_mpi_start(int *argc, char ***argv, const bh_mpi_opts *o,
                           const bh_class *const *classes, int *status);

/* The number of ranks (the queen and her workers) after bh_mpi_start(),
 * else 0. */
BH_EXTERN int bh_mpi_ranks(void);

/* On rank 0, after bh_mpi_start(): bh_run() on a copy of `o` where the
 * queen listens for the other ranks, then MPI_Finalize. What the copy
 * gets, unless `o` sets it: listen "*:0" (every address, a free port);
 * remote_workers, the other ranks (the queen's task starts once they all
 * joined, within join_timeout_ms); workers BH_NONE (no worker bees on
 * rank 0's host besides the ranks the launcher put there: set workers,
 * with min_workers and max_workers, for more), except for a rank 0 alone
 * (mpirun -np 1), whose workers 0 stays the class's default. Always: a
 * key drawn fresh (256 random bits, never on disk, in argv or in the
 * environment), broadcast with the address, and key_file NULL;
 * on_listen, when set, is called with the address the workers dial
 * (host as bh_mpi_opts.host says, and the port bound). Returns what
 * bh_run() returns, *out as it sets it; when the run fails before the
 * queen listens, the worker ranks are released (they exit 2). With *out
 * NULL: BH_EINVAL (said on stderr) when o or out is NULL, when not called
 * on rank 0 after bh_mpi_start(), or when called again; BH_ESPAWN when no
 * random key could be drawn. */
BH_EXTERN int bh_mpi_run(const bh_run_opts *o, bh_result **out);

/* On rank 0 when the queen gives up before bh_mpi_run() (her data would
 * not load): releases the worker ranks, which exit 2 saying `why`
 * (borrowed; NULL: "the queen gave up"), and finalises MPI. Does nothing
 * where bh_mpi_run() ran or on another rank. */
BH_EXTERN void bh_mpi_end(const char *why);

#ifdef __cplusplus
}
#endif

#endif
