"""Where the models run: in the caller's process, or in a process of their own.

Both hosts take lists of :mod:`~app.learning.learner_set` operations and give back a future of
their results:

* :class:`LocalHost` applies them at once, in this process.
* :class:`ProcessHost` sends them to a child process (``python -m app.learning.model_host``) that
  owns the models. The caller submits and goes on (decoding the next events, sending the last
  scores) while the child predicts and learns on another core: a River model is pure Python, so
  in one process the model and the stream work would take turns on one core. Operations travel as
  length-prefixed pickles over the child's stdin/stdout, each list with a request id that its
  result carries back; floats cross exactly.

The child has two lanes (:func:`lane_of`). A list of read-only operations only (``predict``: a
synchronous score, :mod:`app.http_score`) is urgent: the child applies it before the stream's lists
that are waiting in its pipe, so a caller waiting for one decision does not wait for a batch of 200
transactions submitted just before it, only for the operation being applied when it came (the
child takes urgent lists in between two operations of a stream list). Every other list (the
stream's steps, learns, opens, checkpoints...) keeps the order in which it was submitted, so a
partition's transactions are predicted, then learned, one after the other, and the model's
probabilities are the ones it would give in-process. An urgent list learns nothing, so moving it
ahead changes no other result; it sees the model as of the stream operations applied before it
(its ``predict`` result says which version and how many events).

A large result (over 256 kB: a big model's checkpoint) goes through a file in a folder of the
host's instead of the pipe, which holds 64 kB: pushed through it, the child would wait on its
owner's busy event loop for each piece, and the results behind it too. The child ignores SIGINT
and SIGTERM (its owner checkpoints through it on shutdown) and exits when its stdin closes,
including when its owner is killed; it removes the folder then. A child that gives no result for
``timeout_s`` while operations wait for one (stopped, deadlocked, or stuck in one operation; for
its first result, which waits for it to import its libraries, at least ``STARTUP_TIMEOUT_S``) is
taken as hung: it is killed, so it counts as exited (what waits fails with
:class:`ModelHostError` and ``on_exit`` is called: the worker stops, see
:func:`app.service.model_process_exited`) instead of stalling scoring while the worker still
answers.

>>> import asyncio
>>> from app.learning.pipeline import model_factory
>>> async def demo(host):
...     info, = await host.submit([("open", 0, None, model_factory(kind="lr"), "")])
...     first = host.submit([("step", 0, {"V1": 1.0}, 1)])   # submitted, not awaited yet
...     second = host.submit([("step", 0, {"V1": 1.0}, None)])
...     results = (await first, await second)
...     await host.close()
...     return info.version, results[0][0], results[1][0] > 0.5
>>> asyncio.run(demo(LocalHost()))
('lr-g0', 0.5, True)
>>> async def remote():
...     return await demo(await ProcessHost.start())
>>> asyncio.run(remote())
('lr-g0', 0.5, True)
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import pickle
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
from typing import Callable

from app.learning.learner_set import LearnerSet

log = logging.getLogger(__name__)

_REQUEST = struct.Struct(">IQB")  # the length of the pickle that follows, the request id, the lane
_RESULT = struct.Struct(">IQ")  # the length of the pickle (or _SPILLED | of the spill file's path), the request id
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_STREAM_LIMIT = 1 << 20
_SPILL_BYTES = 256 * 1024  # a result pickle larger than this goes through a file
_SPILLED = 1 << 31  # set in a header: what follows is the path of the file that holds the pickle
STARTUP_TIMEOUT_S = 120.0  # the least time the child has for its first result (importing River on a busy machine)
# Each side reads the pipe in pieces of at most this. A pipe holds 64 kB, so a larger read gets no
# more; and a read of 128 kB or more costs about 13 µs whatever it gets, its buffer being allocated
# (mmap) and freed (munmap) each time: about a microsecond per event with lists of 10 transactions.
_READ_BYTES = 1 << 16
_URGENT_LOOK_S = 0.0005  # within a stream list, the child looks for urgent lists after an operation this often

URGENT, STREAM = 0, 1  # the lanes, in the order the child serves them
READ_ONLY = frozenset({"predict"})  # operations that change no model: a list of these only may go ahead


def lane_of(ops: list[tuple]) -> int:
    """:data:`URGENT` for a non-empty list of read-only operations, else :data:`STREAM`.

    >>> lane_of([("predict", 0, {"V1": 1.0})]) == URGENT
    True
    >>> lane_of([("predict", 0, {}), ("step", 0, {}, None)]) == STREAM, lane_of([]) == STREAM
    (True, True)
    """
    return URGENT if ops and all(op[0] in READ_ONLY for op in ops) else STREAM


def _read_in_small_pieces(process: asyncio.subprocess.Process) -> None:
    """Make the event loop read the child's results in pieces of :data:`_READ_BYTES` rather than
    asyncio's 256 kB (see :data:`_READ_BYTES`; a result list of 10 probabilities is about 100 bytes).
    Nothing changes with a loop whose pipe transport reads otherwise (no ``max_size``)."""
    transport = getattr(process, "_transport", None)
    pipe = transport.get_pipe_transport(1) if transport is not None else None
    if pipe is not None and getattr(pipe, "max_size", 0) > _READ_BYTES:
        pipe.max_size = _READ_BYTES


def _load_spilled(path: str):
    """The pickle in the file at ``path``; the file is removed (each is read once)."""
    with open(path, "rb") as f:
        body = f.read()
    os.unlink(path)
    return pickle.loads(body)


class ModelHostError(RuntimeError):
    """The model process is gone: no operation can run any more."""


class LocalHost:
    """Operations applied at once, in the caller's process."""

    def __init__(self, on_new_model: Callable[[], object] | None = None) -> None:
        self.learners = LearnerSet(on_new_model)

    def submit(self, ops: list[tuple], lane: int | None = None) -> asyncio.Future:
        """``ops`` applied now (``lane`` changes nothing here: every list is applied when submitted)."""
        future = asyncio.get_running_loop().create_future()
        future.set_result(self.learners.apply(ops))
        return future

    async def close(self) -> None:
        self.learners.learners.clear()


class ProcessHost:
    """Operations applied by a child process: urgent lists (:func:`lane_of`) before the stream's
    lists waiting there, the stream's in submission order; each result goes to its own list's future."""

    def __init__(self, process: asyncio.subprocess.Process,
                 on_exit: Callable[[ModelHostError], object] | None = None, spill_dir: str | None = None,
                 timeout_s: float | None = None) -> None:
        self.process = process
        self.spill_dir = spill_dir
        self.on_exit = on_exit
        self.timeout_s = timeout_s
        self._closing = False
        self._hung, self._hung_after = False, 0.0
        self._next_id = 0
        # request id -> (its future, when it was sent), oldest first (a dict keeps insertion order)
        self._waiting: dict[int, tuple[asyncio.Future, float]] = {}
        self._answered = time.monotonic()  # when the last result came (or the process started)
        self._started = False  # whether a first result came
        self._error: ModelHostError | None = None
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read_results())
        self._watchdog = loop.create_task(self._watch())

    @classmethod
    async def start(cls, *, gc_freeze: bool = False, on_exit: Callable[[ModelHostError], object] | None = None,
                    timeout_s: float | None = None) -> "ProcessHost":
        """Start the model process (it imports River: about a second). ``on_exit`` is called if it
        exits before :meth:`close` (the models it held are lost), or is killed for giving no result
        for ``timeout_s`` while operations wait (None: never)."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        spill_dir = tempfile.mkdtemp(prefix="model-host-")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app.learning.model_host", "--spill-dir", spill_dir,
                *(["--gc-freeze"] if gc_freeze else []),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env, limit=_STREAM_LIMIT,
                start_new_session=True,  # a Ctrl-C or a signal to the worker's process group is the worker's
            )
        except BaseException:
            shutil.rmtree(spill_dir, ignore_errors=True)
            raise
        _read_in_small_pieces(process)
        log.info("model process started (pid %s)", process.pid)
        return cls(process, on_exit, spill_dir, timeout_s)

    def submit(self, ops: list[tuple], lane: int | None = None) -> asyncio.Future:
        """Send ``ops`` in ``lane`` (by default :func:`lane_of`; :data:`STREAM` keeps a read-only
        list in submission order: a predict that sees every operation sent before it); the future of
        their results (it fails with :class:`ModelHostError` if the process dies first)."""
        if lane is None:
            lane = lane_of(ops)
        elif lane == URGENT and lane_of(ops) != URGENT:
            raise ValueError("only a list of read-only operations can be urgent")
        future = asyncio.get_running_loop().create_future()
        if self._error is not None:
            future.set_exception(self._error)
            return future
        body = pickle.dumps(ops, protocol=_PROTOCOL)
        self._next_id += 1
        self.process.stdin.write(_REQUEST.pack(len(body), self._next_id, lane) + body)
        self._waiting[self._next_id] = (future, time.monotonic())
        return future

    async def _watch(self) -> None:
        """Kill the child once it has given no result for ``timeout_s`` (if set) while operations wait."""
        woke = time.monotonic()
        while self.process.returncode is None:
            period = min(1.0, self.timeout_s / 4) if self.timeout_s else 1.0
            await asyncio.sleep(period)
            now = time.monotonic()
            late, woke = now - woke - period, now
            if late > period or not self.timeout_s:  # a busy event loop: the reader gets its turn first
                continue
            limit = self.timeout_s if self._started else max(self.timeout_s, STARTUP_TIMEOUT_S)
            oldest = next(iter(self._waiting.values()), None)
            if oldest is not None and now - max(oldest[1], self._answered) > limit:
                self._hung, self._hung_after = True, limit
                log.error("the model process (pid %s) gave no result for %g s with %d operation lists waiting: "
                          "killing it", self.process.pid, limit, len(self._waiting))
                self.process.kill()
                return

    async def _read_results(self) -> None:
        stdout = self.process.stdout
        try:
            while True:
                size, request_id = _RESULT.unpack(await stdout.readexactly(_RESULT.size))
                if size & _SPILLED:
                    results = _load_spilled((await stdout.readexactly(size & ~_SPILLED)).decode())
                else:
                    results = pickle.loads(await stdout.readexactly(size))
                if request_id not in self._waiting:
                    raise ValueError(f"a result for request {request_id}, which is not waiting")
                future, _ = self._waiting.pop(request_id)
                self._answered, self._started = time.monotonic(), True
                if not future.done():
                    future.set_result(results)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await self.process.wait()
            self._remove_spill_dir()  # nothing more can come through it (an owner that exits now leaves none)
            if self._hung:
                error = ModelHostError(f"the model process gave no result for {self._hung_after:g} s and was killed")
            else:
                error = ModelHostError(f"the model process exited (code {code})")
            self._fail(error, exc)
            if not self._closing and self.on_exit is not None:
                self.on_exit(self._error)
        except asyncio.CancelledError:
            self._fail(ModelHostError("the model host is closed"), None)
            raise
        except Exception as exc:  # a result that does not unpickle: nothing after it can be trusted
            self._fail(ModelHostError(f"unreadable result from the model process: {exc!r}"), exc)
            self.process.kill()

    def _fail(self, error: ModelHostError, cause: BaseException | None) -> None:
        error.__cause__ = cause
        self._error = error
        if self._waiting:
            log.error("%s with %d operation lists unanswered", error, len(self._waiting))
        waiting, self._waiting = self._waiting, {}
        for future, _ in waiting.values():
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        """Close the child's stdin (it exits after the operations it has) and wait for it."""
        self._closing = True
        self._watchdog.cancel()
        if self.process.returncode is None:
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=30.0)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._reader.cancel()
        try:
            await self._reader
        except (asyncio.CancelledError, Exception):
            pass
        self._remove_spill_dir()

    def _remove_spill_dir(self) -> None:
        if self.spill_dir is not None:
            shutil.rmtree(self.spill_dir, ignore_errors=True)


async def start_host(in_process: bool, *, gc_freeze: bool = False,
                     on_exit: Callable[[ModelHostError], object] | None = None, timeout_s: float | None = None):
    """A :class:`LocalHost` or a started :class:`ProcessHost` (killed as hung after ``timeout_s``
    without a result while operations wait)."""
    if in_process:
        from app import gc_tuning

        return LocalHost(gc_tuning.freeze if gc_freeze else None)
    return await ProcessHost.start(gc_freeze=gc_freeze, on_exit=on_exit, timeout_s=timeout_s)


# --- the model process ------------------------------------------------------------------------------
class Inbox:
    """The operation lists that came from the owner and are not applied yet, in two lanes.

    :meth:`next` first takes in everything already in the pipe (without waiting), then gives the
    oldest urgent list if any, else the oldest stream list; with nothing waiting it blocks until a
    list comes, and gives None once the input is closed and everything was given. :meth:`urgent`
    gives an urgent list only, without waiting: what the child applies between two operations of a
    stream list.

    >>> import io
    >>> def request(request_id, ops):
    ...     body = pickle.dumps(ops)
    ...     return _REQUEST.pack(len(body), request_id, lane_of(ops)) + body
    >>> inbox = Inbox(io.BytesIO(request(1, [("step", 0, {}, 1)]) + request(2, [("learn", 0, {}, 0)])
    ...                          + request(3, [("predict", 0, {})])))
    >>> [(request_id, lane) for request_id, lane, _ in iter(inbox.next, None)]
    [(3, 0), (1, 1), (2, 1)]
    """

    def __init__(self, stdin) -> None:
        self._stdin = stdin
        try:
            self._fd: int | None = stdin.fileno()
        except (AttributeError, OSError, ValueError):  # an in-memory file: every read answers at once
            self._fd = None
        self._buffer = bytearray()
        self._lanes: tuple[collections.deque, ...] = (collections.deque(), collections.deque())  # URGENT, STREAM
        self._closed = False

    def next(self) -> tuple[int, int, bytes] | None:
        """The next list to apply: (request id, lane, its pickle); None when there will be none."""
        while not self._closed and self._take(wait=False):
            pass
        while True:
            for lane in self._lanes:
                if lane:
                    return lane.popleft()
            if self._closed:
                return None
            self._take(wait=True)

    def urgent(self) -> tuple[int, int, bytes] | None:
        """The oldest urgent list, once what the pipe holds is taken in (without waiting); None if none."""
        while not self._closed and self._take(wait=False):
            pass
        lane = self._lanes[URGENT]
        return lane.popleft() if lane else None

    def _take(self, wait: bool) -> bool:
        """Read what the pipe holds (with ``wait``, block until something comes); whether anything came."""
        if self._fd is None:
            data = self._stdin.read(_READ_BYTES)
        elif wait or select.select([self._fd], [], [], 0)[0]:
            data = os.read(self._fd, _READ_BYTES)
        else:
            return False
        if not data:
            self._closed = True
            return False
        buffer = self._buffer
        buffer += data
        at = 0
        while len(buffer) - at >= _REQUEST.size:
            size, request_id, lane = _REQUEST.unpack_from(buffer, at)
            end = at + _REQUEST.size + size
            if len(buffer) < end:
                break
            self._lanes[lane].append((request_id, lane, bytes(buffer[at + _REQUEST.size:end])))
            at = end
        del buffer[:at]
        return True


def serve(stdin, stdout, learners: LearnerSet, spill_dir: str | None = None) -> None:
    """Apply each operation list read from ``stdin``, write its results, with its request id, to
    ``stdout``; until EOF. Urgent lists go first (:class:`Inbox`), and those that come while a
    stream list is applied are applied between two of its operations (the child looks after the
    first operation that ends 0.5 ms or more after its last look): a decision waits for the stream
    about 0.5 ms and one operation at most, not for a whole list. Results whose pickle is larger
    than 256 kB go to a file in ``spill_dir`` when one is given."""
    inbox, write, flush = Inbox(stdin), stdout.write, stdout.flush
    spilled = 0

    def answer(request_id: int, results: list) -> None:
        nonlocal spilled
        body = pickle.dumps(results, protocol=_PROTOCOL)
        if spill_dir is not None and len(body) > _SPILL_BYTES:
            spilled += 1
            path = os.path.join(spill_dir, f"{spilled}.pickle")
            with open(path, "wb") as f:
                f.write(body)
            body = path.encode()
            write(_RESULT.pack(_SPILLED | len(body), request_id) + body)
        else:
            write(_RESULT.pack(len(body), request_id) + body)
        flush()

    apply = learners.apply
    while True:
        request = inbox.next()
        if request is None:
            return
        request_id, lane, body = request
        ops = pickle.loads(body)
        if lane == URGENT or len(ops) < 2:
            answer(request_id, apply(ops))
            continue
        results, look_at = [], time.perf_counter() + _URGENT_LOOK_S
        for op in ops:
            results += apply([op])
            if time.perf_counter() >= look_at:  # (a look at the pipe is a system call: a few µs)
                urgent = inbox.urgent()
                while urgent is not None:
                    answer(urgent[0], apply(pickle.loads(urgent[2])))
                    urgent = inbox.urgent()
                look_at = time.perf_counter() + _URGENT_LOOK_S
        answer(request_id, results)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the owner stops us by closing stdin
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [model process %(process)d] %(levelname)s %(message)s")
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the protocol stream
    on_new_model = None
    if "--gc-freeze" in argv:
        from app import gc_tuning

        on_new_model = gc_tuning.freeze
    spill_dir = argv[argv.index("--spill-dir") + 1] if "--spill-dir" in argv else None
    try:
        serve(sys.stdin.buffer, protocol_out, LearnerSet(on_new_model), spill_dir)
    finally:
        if spill_dir is not None:  # the owner is done with it, or was killed and cannot remove it
            shutil.rmtree(spill_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
