#!/usr/bin/python3
"""worker.py - a beehive worker bee in Python, written from docs/PROTOCOL.md.

A C queen runs it as the program of an external worker class (bh_program
in include/beehive.h; examples/pyqueen.c is such a queen):

    static const char *const argv[] = {"python3", "worker.py", NULL};
    static const bh_program py = {.path = "python3", .argv = argv};
    static const bh_class worker = {.name = "Demo", .program = &py};

The queen starts it with its channel on descriptor 3 (BH_WORKER=1) and
sends the bootstrap frame first, naming the class to run. A bee class here
is a Python class: __init__ takes the workers' init arguments, and its
public methods are its tasks, called with each task's args and kwargs.

Concurrency is asyncio's. A task that is a coroutine (async def) runs
alongside the worker's other tasks, at most max_concurrency at once, and
cancel_task cancels it at its next await. A plain method runs on the event
loop and holds it until it returns: quick work, or work that must not be
interleaved. What a task returns goes back as its value; what it raises
goes back with its type, message and traceback.

Serve classes of your own with `worker.serve(MyBee, OtherBee)`.
Needs msgpack for Python (Debian: python3-msgpack).
"""
import asyncio
import difflib
import faulthandler
import fcntl
import functools
import inspect
import os
import socket
import struct
import sys
import traceback

import msgpack

CHANNEL_FD = 3      # section 2: the channel, when BH_WORKER=1 is set
BLOB = 0x62         # section 3.3: a bin that travelled as a memfd
MAX_UNNAMED = 1024  # descriptors received and not yet named by a blob
DIE_CODE = "The parent bee ordered to die gracefully."
CANCELLED = "Cancelled by the parent bee."

last_words = None   # section 2: the page the queen reads when we die


def fatal(words, status):
    """Ends the process at once, where no message can say why: stderr and
    the last-words page do. Status 3: the parent is lost (section 9.4)."""
    print(f"worker.py: {words}", file=sys.stderr, flush=True)
    if last_words is not None:
        last_words.write(words[:4000])
        last_words.flush()
    os._exit(status)


class LostParent(Exception):
    """The channel ended or broke the protocol (sections 3.2, 9.4)."""


class FrameTooBig(Exception):
    """A message over max_frame, which the peer would refuse (section 3)."""


class Channel:
    """Frames on the channel's socket (section 3), with their blobs."""

    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.max_frame = 64 << 20  # until the bootstrap frame says
        self.inbox = bytearray()
        self.fds = []              # received, not yet named by a blob
        self.named = 0             # descriptors named so far

    def fill(self):
        """Reads what the socket holds, waiting for it if need be."""
        data, anc, flags, _ = self.sock.recvmsg(
            1 << 16, socket.CMSG_SPACE(253 * 4), socket.MSG_CMSG_CLOEXEC)
        for level, kind, fds in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(fds) // 4
                self.fds += struct.unpack(f"{n}i", fds[:n * 4])
        if flags & socket.MSG_CTRUNC or len(self.fds) > MAX_UNNAMED:
            raise LostParent("descriptors lost, or never named")
        if not data:
            raise LostParent("end of stream")
        self.inbox += data

    def frames(self):
        """Yields the message of each whole frame received so far."""
        while len(self.inbox) >= 4:
            (n,) = struct.unpack_from(">I", self.inbox)
            if n > self.max_frame:
                raise LostParent(f"a frame of {n} bytes, over max_frame")
            if len(self.inbox) < 4 + n:
                return
            body = bytes(self.inbox[4:4 + n])
            del self.inbox[:4 + n]
            yield self.decode(body)

    def decode(self, body):
        try:
            m = msgpack.unpackb(body, ext_hook=self.blob,
                                strict_map_key=False,
                                unicode_errors="surrogateescape")
        except LostParent:
            raise
        except Exception as e:
            raise LostParent(f"not one msgpack value: {e}") from e
        if not isinstance(m, dict) or not isinstance(m.get("msg_type"), str):
            raise LostParent("a message that is not a map with a msg_type")
        return m

    def blob(self, code, data):
        """Section 3.3: ext 0x62 names the next descriptor received, a
        sealed memfd holding the bin."""
        if code != BLOB:
            return msgpack.ExtType(code, data)
        if len(data) != 25:
            raise LostParent("a blob ext that is not 25 bytes long")
        kind, token, offset, length = struct.unpack(">BQQQ", data)
        if kind != 1 or token != self.named or not self.fds:
            raise LostParent(f"blob {token}: not the next descriptor")
        fd = self.fds.pop(0)
        self.named += 1
        try:
            seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
            if not seals & fcntl.F_SEAL_SHRINK or \
                    os.fstat(fd).st_size < offset + length:
                raise LostParent(f"blob {token}: no sealed memfd that long")
            return os.pread(fd, length, offset)
        except OSError as e:
            raise LostParent(f"blob {token}: {e}") from e
        finally:
            os.close(fd)

    def send(self, msg):
        """Writes one frame whole. Raises FrameTooBig, or what msgpack
        raises for a value it cannot pack (TypeError, OverflowError)."""
        body = msgpack.packb(msg, use_bin_type=True)
        if len(body) > self.max_frame:
            raise FrameTooBig(len(body))
        try:
            self.sock.sendall(struct.pack(">I", len(body)) + body)
        except OSError as e:
            fatal(f"the channel broke: {e}", 3)


def task_id(m):
    tid = m.get("task_id")
    if type(tid) is not int:
        raise LostParent(f"{m['msg_type']}: field 'task_id' must be int")
    return tid


def call_of(m):
    """A task's name, args and kwargs (section 5.2)."""
    name, args = m.get("name"), m.get("args", [])
    kwargs = m.get("kwargs", {})
    if not isinstance(name, str) or not name or \
            not isinstance(args, list) or not isinstance(kwargs, dict):
        raise LostParent(f"{m['msg_type']}: bad name, args or kwargs")
    return name, args, kwargs


def traceback_lines(e):
    return [line for entry in traceback.format_tb(e.__traceback__)
            for line in entry.rstrip("\n").split("\n")]


class WorkerBee:
    """One worker bee around an instance of a bee class: the accept rule
    (section 8), its tasks, and its end (section 9)."""

    def __init__(self, chan, boot, obj):
        config = boot["config"]
        self.chan, self.obj = chan, obj
        self.cls, self.id = boot["class"], boot["id"]
        self.max_concurrency = config["max_concurrency"]  # -1: no limit
        self.capacity = -1 if self.max_concurrency < 0 else \
            self.max_concurrency + config["prefetch"]
        self.slots = asyncio.Semaphore(max(self.max_concurrency, 0) or
                                       sys.maxsize)
        self.accepted = set()  # said task_accepted, awaiting task_info
        self.tasks = {}        # task id -> asyncio.Task, queued or running
        self.running = 0
        self.exit_code = None  # set once terminating
        self.ended = None      # a future: the exit status, once dead is sent

    async def serve(self):
        loop = asyncio.get_running_loop()
        self.ended = loop.create_future()
        loop.add_reader(self.chan.sock.fileno(), self.readable)
        self.dispatch()  # what came with the bootstrap frame
        return await self.ended

    def readable(self):
        try:
            self.chan.fill()
        except LostParent as e:
            fatal(f"lost the parent: {e}", 3)
        self.dispatch()

    def dispatch(self):
        try:
            for m in self.chan.frames():
                if not self.ended.done():
                    self.on_message(m)
        except LostParent as e:
            fatal(f"lost the parent: {e}", 3)
        except Exception:  # a bug here: no answer could be trusted
            fatal(f"failed:\n{traceback.format_exc()}", 1)

    def on_message(self, m):
        kind = m["msg_type"]
        handle = {"new_task": self.new_task, "task_info": self.task_info,
                  "task_taken": self.task_taken,
                  "cancel_task": self.cancel_task, "die": self.die}.get(kind)
        if handle is None:  # section 9.3
            self.terminate(f"Unknown message with type '{kind}'.")
        else:
            handle(m)

    def can_accept(self, tid):
        """Section 8: not terminating, not holding tid, and a free slot
        (accepted and unfinished tasks below max_concurrency + prefetch)."""
        held = len(self.accepted) + len(self.tasks)
        return self.exit_code is None and tid not in self.accepted and \
            tid not in self.tasks and (self.capacity < 0 or
                                       held < self.capacity)

    def new_task(self, m):
        tid = task_id(m)
        call = call_of(m) if "name" in m else None  # a direct offer (5.1)
        if not self.can_accept(tid):
            self.chan.send({"msg_type": "task_denied", "task_id": tid})
        elif call is not None:  # start it from the offer: no task_info
            self.chan.send({"msg_type": "task_accepted", "task_id": tid,
                            "started": True})
            self.start(tid, *call)
        else:
            self.accepted.add(tid)
            self.chan.send({"msg_type": "task_accepted", "task_id": tid})

    def task_info(self, m):
        tid = task_id(m)
        if tid not in self.accepted:  # section 8
            self.terminate(f"Protocol error: task_info for task {tid}, "
                           "which was not accepted.")
            return
        self.accepted.remove(tid)
        self.start(tid, *call_of(m))

    def task_taken(self, m):
        self.accepted.discard(task_id(m))
        self.progress()

    def cancel_task(self, m):  # section 5.6; an answered task is not found
        task = self.tasks.get(task_id(m))
        if task is not None:
            task.cancel()

    def die(self, m):
        self.terminate(DIE_CODE)

    def start(self, tid, name, args, kwargs):
        task = asyncio.ensure_future(self.run(tid, name, args, kwargs))
        task.add_done_callback(functools.partial(self.unstarted, tid, name))
        self.tasks[tid] = task

    def unstarted(self, tid, name, task):
        """A task cancelled before its first step never entered run()."""
        if task.cancelled():
            self.finish(tid, name, {"status": "cancelled",
                                    "reason": CANCELLED})

    async def run(self, tid, name, args, kwargs):
        """Runs one task in a slot and answers it with task_done."""
        try:
            async with self.slots:
                self.running += 1
                try:
                    value = await self.call(name, args, kwargs)
                finally:
                    self.running -= 1
            answer = {"status": "succeeded", "returning_value": value}
        except asyncio.CancelledError:
            answer = {"status": "cancelled", "reason": CANCELLED}
        except Exception as e:
            answer = self.raised(tid, name, e)
        self.finish(tid, name, answer)

    def finish(self, tid, name, answer):
        del self.tasks[tid]
        self.send_done(tid, name, answer)
        self.progress()

    async def call(self, name, args, kwargs):
        value = self.task(name)(*args, **kwargs)
        if inspect.isawaitable(value):
            value = await value
        return value

    def task(self, name):
        """The bound method of task `name`; busy_status unless the class
        has one; AttributeError as section 8 words it."""
        fn = None if name.startswith("_") else getattr(self.obj, name, None)
        if fn is None and name == "busy_status":
            fn = self.busy_status
        if callable(fn):
            return fn
        names = [n for n in dir(self.obj) if not n.startswith("_")
                 and callable(getattr(self.obj, n))] + ["busy_status"]
        near = difflib.get_close_matches(name, names, 1)
        hint = f" Did you mean '{near[0]}'?" if near else ""
        raise AttributeError(f"Bee class '{self.cls}' has no task "
                             f"'{name}'.{hint}")

    def busy_status(self):
        """Section 11: the other running tasks over max_concurrency."""
        if self.max_concurrency < 0:
            return 0.0
        return (self.running - 1) / self.max_concurrency

    def raised(self, tid, name, e, type_name=None):
        lines = traceback_lines(e) + [
            f"  in task '{name}' (id {tid}) of bee {self.id} "
            f"(class {self.cls})"]
        return {"status": "raised",
                "exception": {"type": type_name or type(e).__name__,
                              "message": str(e)},
                "traceback": lines, "other_details": None}

    def send_done(self, tid, name, answer):
        """Exactly one task_done per task (section 8), even for a value
        that cannot travel."""
        try:
            self.chan.send({"msg_type": "task_done", "task_id": tid, **answer})
        except FrameTooBig as e:
            err = ValueError(f"The task's result: a frame of {e.args[0]} "
                             "bytes, over the limit of "
                             f"{self.chan.max_frame} (max_frame).")
            self.chan.send({"msg_type": "task_done", "task_id": tid,
                            **self.raised(tid, name, err, "FrameSizeError")})
        except (TypeError, ValueError, OverflowError) as e:
            err = TypeError(f"The task's result cannot be sent: {e}")
            self.chan.send({"msg_type": "task_done", "task_id": tid,
                            **self.raised(tid, name, err)})

    def terminate(self, exit_code):
        if self.exit_code is None:
            self.exit_code = exit_code
        self.progress()

    def progress(self):
        """Section 9.1: terminating, with every accepted task answered (or
        taken by another), the bee says dead and exits 0."""
        if self.exit_code is None or self.accepted or self.tasks or \
                self.ended.done():
            return
        self.chan.send({"msg_type": "dead", "death_type": "normal",
                        "exit_code": self.exit_code})
        self.ended.set_result(0)


def first_message(chan):
    while True:
        for m in chan.frames():
            return m
        chan.fill()


def bad_bootstrap(boot, classes):
    """What makes the bootstrap frame (section 6) unusable, or None."""
    if boot["msg_type"] != "bootstrap":
        return f"msg_type is '{boot['msg_type']}', not 'bootstrap'"
    if boot.get("class") not in classes:
        return (f"unknown class {boot.get('class')!r}: this program has "
                f"{', '.join(classes)}")
    for key, kind in (("id", int), ("init_args", list),
                      ("init_kwargs", dict), ("config", dict)):
        if not isinstance(boot.get(key), kind):
            return f"{key} is missing or not of type {kind.__name__}"
    for key, least in (("max_concurrency", -1), ("prefetch", 0),
                       ("max_frame", 4096)):
        v = boot["config"].get(key)
        if type(v) is not int or v < least or (key == "max_concurrency"
                                               and v == 0):
            return f"config: {key} {v!r} is out of range"
    return None


def keep_last_words():
    """Section 2: the last-words page. A crash of the interpreter itself (a
    fault in C code) writes Python's traceback there, which the queen puts
    before the cause of the worker's death."""
    global last_words
    fd = os.environ.pop("BH_LAST_WORDS_FD", "")
    if not fd.isdigit() or int(fd) <= 2:
        return
    try:
        fcntl.fcntl(int(fd), fcntl.F_GET_SEALS)  # a memfd, not some file
    except OSError:
        return
    last_words = os.fdopen(int(fd), "w")
    faulthandler.enable(last_words)


def start_bee(chan, classes):
    """Reads the bootstrap frame and makes the bee. Exits 2 for a frame it
    cannot use, 1 (after dead killed) for a class whose __init__ raised."""
    try:
        boot = first_message(chan)
    except LostParent as e:
        fatal(f"no bootstrap frame: {e}", 2)
    why = bad_bootstrap(boot, classes)
    if why is not None:
        fatal(f"bad bootstrap: {why}", 2)
    chan.max_frame = boot["config"]["max_frame"]
    try:
        obj = classes[boot["class"]](*boot["init_args"], **boot["init_kwargs"])
    except Exception as e:  # section 9.2
        chan.send({"msg_type": "dead", "death_type": "killed",
                   "exception": {"type": "InitError",
                                 "message": f"{type(e).__name__}: {e}"},
                   "traceback": traceback_lines(e)})
        sys.exit(1)
    return WorkerBee(chan, boot, obj)


def serve(*classes):
    """Runs the worker bee of the class the queen names (section 13's
    checklist); exits with the status of section 9.1."""
    if os.environ.pop("BH_WORKER", None) != "1":
        sys.exit(f"{sys.argv[0]}: a beehive worker program: a queen starts "
                 "it, with its channel on descriptor 3 (docs/PROTOCOL.md)")
    keep_last_words()
    bee = start_bee(Channel(CHANNEL_FD), {c.__name__: c for c in classes})
    sys.exit(asyncio.run(bee.serve()))


class Demo:
    """The example's bee class: what examples/pyqueen.c delegates."""

    def __init__(self, greeting="Hello"):
        self.greeting = greeting

    def square(self, x):
        return x * x

    def greet(self, name, punctuation="!"):  # greet("bee", punctuation="?")
        return f"{self.greeting}, {name}{punctuation}"

    def divide(self, a, b):  # divide(1, 0) raises ZeroDivisionError
        return a / b

    async def nap(self, seconds):  # other tasks run meanwhile
        await asyncio.sleep(seconds)
        return os.getpid()

    def length(self, data):  # a bin of 256 KiB or more comes as a blob
        return len(data)


if __name__ == "__main__":
    serve(Demo)
