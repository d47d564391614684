"""ppe.py - the peer: Python's concurrent.futures.ProcessPoolExecutor on the
same machine, in the same run, with as many workers as CPUs.

  ppe_submit_tasks_per_s   N submits of a trivial function, then wait for
                           all (the pool is started and warm beforehand)
  ppe_seq_us               one submit + result() at a time, median
  ppe_map_chunk100_tasks_per_s   executor.map over N items, chunksize 100

Prints one "key value unit" line per figure. Usage: ppe.py [N] (default
20000; the sequential case makes N / 10 calls).
"""
import concurrent.futures as cf
import os
import statistics
import sys
import time


def noop(x):
    return x


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    workers = os.cpu_count() or 1
    with cf.ProcessPoolExecutor(max_workers=workers) as ex:
        # Start every worker process before timing anything.
        list(ex.map(noop, range(workers * 4)))

        t0 = time.perf_counter()
        futs = [ex.submit(noop, i) for i in range(n)]
        got = sum(f.result() for f in futs)
        secs = time.perf_counter() - t0
        if got != n * (n - 1) // 2:
            sys.exit("ppe.py: wrong results")
        print("ppe_submit_tasks_per_s %.0f tasks/s" % (n / secs), flush=True)

        samples = []
        for i in range(max(n // 10, 1)):
            t0 = time.perf_counter()
            if ex.submit(noop, i).result() != i:
                sys.exit("ppe.py: wrong result")
            samples.append((time.perf_counter() - t0) * 1e6)
        print("ppe_seq_us %.3f us" % statistics.median(samples), flush=True)

        t0 = time.perf_counter()
        got = sum(ex.map(noop, range(n * 10), chunksize=100))
        secs = time.perf_counter() - t0
        if got != n * 10 * (n * 10 - 1) // 2:
            sys.exit("ppe.py: wrong map results")
        print("ppe_map_chunk100_tasks_per_s %.0f tasks/s" % (n * 10 / secs),
              flush=True)


if __name__ == "__main__":
    main()
