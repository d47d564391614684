"""pyworker.py - examples/worker.py as test_external.c drives it: its Demo
class, and Probe, which adds the tasks a test needs (dying, hanging,
crashing, meeting) to Demo's, and BadInit, whose __init__ raises."""
import asyncio
import ctypes
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "examples"))
import worker  # noqa: E402


class Probe(worker.Demo):
    met = 0
    all_here = None

    def pid(self):
        return os.getpid()

    def echo(self, *args, **kwargs):
        return [list(args), kwargs]

    def suicide(self):
        os.kill(os.getpid(), signal.SIGKILL)

    def once_die(self, path):
        """Kills its worker the first time `path` does not exist."""
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return os.getpid()
        os.kill(os.getpid(), signal.SIGKILL)

    async def meet(self, n):
        """The first n meet() tasks of this worker wait for each other: they
        return once n of them run at once (later ones at once)."""
        Probe.all_here = Probe.all_here or asyncio.Event()
        Probe.met += 1
        if Probe.met == n:
            Probe.all_here.set()
        await Probe.all_here.wait()
        return os.getpid()

    async def gather(self, arrived, go):
        """Writes its pid on FIFO `arrived`, then returns once it reads a
        byte from FIFO `go`: a queen that has read n pids knows n of these
        run at once, and only then lets them go."""
        fd = os.open(arrived, os.O_WRONLY)
        os.write(fd, b"%d\n" % os.getpid())
        os.close(fd)
        r = os.open(go, os.O_RDONLY | os.O_NONBLOCK)
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    os.read(r, 1)
                    return os.getpid()
                except BlockingIOError:  # another gather took that byte
                    readable = loop.create_future()
                    loop.add_reader(r, readable.set_result, None)
                    try:
                        await readable
                    finally:
                        loop.remove_reader(r)
        finally:
            os.close(r)

    def segfault(self):
        ctypes.string_at(0)

    def block(self):
        """Holds the whole worker, reading a pipe nobody writes: it cannot
        even read a cancel_task."""
        r, w = os.pipe()
        os.read(r, 1)


class BadInit:
    def __init__(self):
        raise ValueError("no configuration")


worker.serve(Probe, worker.Demo, BadInit)
