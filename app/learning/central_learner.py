"""The central learner: examples in, predict then learn in the model host, snapshots out.

With ``LEARNING_MODE = "central"`` (``docs/scaleout.md``) the worker that owns the only partition of
the examples topic runs the one learner of the deployment. The learner agent
(:mod:`app.agents.learner`) hands :meth:`CentralLearner.learn` each batch of raw examples in topic
order; this object decodes them (:mod:`app.learning.examples`), lets its
:class:`~app.learning.central.LearnerBook` decide which to learn, sends those to the model host as
``step`` operations on the key :data:`KEY` (predict, then learn: the host applies one list in
order, so each prediction is made by the model that learned every example before it), records its
predictions, and writes a snapshot (:mod:`app.learning.snapshots`) when one is due, awaiting the
broker's confirmation before it returns, so the batch is acknowledged only after the snapshot it
made is stored.

**Its error stream.** With an error watch (``error_watch()``, a
:class:`~app.drift.learner_errors.LearnerErrorWatch`: ADWIN over its own prequential errors, the
deployment's error stream in this mode) each learned example's error goes to it in order; the drift
alerts it gives are handed to ``send_alerts`` (which returns once the broker has confirmed them)
before the snapshot is written and before :meth:`CentralLearner.learn` returns, so the batch is
acknowledged only after its alerts are stored, and no snapshot holds a window past an alert not
sent. The watch's state goes into every snapshot (``errors``).

**The snapshot is the learner's checkpoint.** A new owner of the examples partition (after a
rebalance, a crash, a restart) starts from the newest snapshot in the snapshots topic and reads
back the examples after its ``examples_offset`` up to the first one the consumer gives it: nothing
is lost (every example after the snapshot is read again) and nothing is learned twice (the book
skips an example whose source position the snapshot has already taken in). Without a snapshot it
reads back every example before that first one. A revoked or closing learner writes a last
snapshot of what it took in since the previous one, so its successor reads little back.

The error watch goes over with the snapshot: a new owner starts from the window the snapshot holds,
as of its example, and feeds it the examples it reads back without alerting (they were
acknowledged, so their alerts were sent); from then on it alerts where a learner that never stopped
would. A snapshot that holds no window (written without an error watch) or one of other ADWIN
settings gives a fresh window from its example on: changes before it are not compared with what
follows, and counts and positions start there.

Why a plain compacted topic, and not the changelog-backed checkpoint table of
:class:`~app.state.checkpointed.AsyncCheckpointedStates` (which would restore and catch up the same
way): every worker reads the snapshots, all the time, to swap its replica, and a Faust table's
changelog can only be read whole. A new owner (and every worker) needs the newest snapshot only,
which a plain topic gives with one seek to its last record (:func:`app.state.last_records.last_records`),
whereas recovering a table reads every snapshot still in the changelog (a compacted topic keeps
its active segment uncompacted: hundreds of snapshots of 0.1-0.3 MB each) before any agent may
start. The snapshot's own encoding carries the positions that the table's envelope would.

>>> import asyncio
>>> from app.learning.central import LearnerBook
>>> from app.learning.examples import Example, encode
>>> from app.learning.model_host import LocalHost
>>> from app.learning.pipeline import model_factory
>>> from app.state.signing import Signer
>>> host, published = LocalHost(), []
>>> async def start_host():
...     return host
>>> async def publish(key, value):  # a stand-in for the producer: the future of a confirmed send
...     published.append(value)
...     done = asyncio.get_running_loop().create_future()
...     done.set_result(None)
...     return done
>>> async def no_snapshot():
...     return []
>>> learner = CentralLearner(start_host, lambda: LearnerBook(every=2, every_s=None), model_factory(kind="lr"),
...                          signer=Signer("a key of at least sixteen bytes"), last_snapshots=no_snapshot,
...                          read_back=None, publish=publish)
>>> batch = [(offset, encode(Example(f"tx-{offset}", 0.0, {"V1": 1.0}, 1, ("transactions", 0, offset))))
...          for offset in range(3)]
>>> asyncio.run(learner.learn(batch))
>>> learner.book.received, len(published), learner.version
(3, 1, 'lr-g0@3')
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

from app import metrics, outputs
from app.learning.central import DUPLICATE, LEARN, SUBSAMPLED, LearnerBook
from app.learning.examples import ExampleFormatError
from app.learning.examples import decode as decode_example
from app.learning.learner_set import OpFailed
from app.learning.snapshots import Snapshot, SnapshotError, version_of
from app.learning.snapshots import decode as decode_snapshot
from app.learning.snapshots import encode as encode_snapshot
from app.state.signing import Signer

log = logging.getLogger(__name__)

KEY = ("central",)  # the central model's key in the model host (the replica's is ("replica",))
READ_BACK_CHUNK = 500  # examples read back are learned in lists of this many


class CentralLearner:
    """The central learner of this worker while it owns the examples partition.

    ``host()`` gives the model host (the worker's: the scorer's replica lives there too);
    ``new_book()`` a fresh :class:`~app.learning.central.LearnerBook`; ``model_factory`` and
    ``warm_start_path`` the model when no snapshot exists. ``last_snapshots()`` gives the raw values
    of the last records of the snapshots topic, newest first (the first that ``signer`` verifies is
    restored); ``read_back(start, end)`` the ``(offset, value)`` of the examples at ``start <= offset
    < end`` (None: nothing is read back); ``publish(key, value)`` sends a snapshot and gives the
    future of the broker's confirmation. ``topic`` is the examples topic's name (what a revocation
    names). ``error_watch()`` gives a fresh watch of the learner's errors (None: none is kept) and
    ``send_alerts(alerts)`` publishes its alerts, returning once the broker confirmed them."""

    def __init__(self, host: Callable[[], Awaitable[Any]], new_book: Callable[[], LearnerBook],
                 model_factory: Callable, *, signer: Signer,
                 last_snapshots: Callable[[], Awaitable[list[bytes]]],
                 read_back: Callable[[int, int], AsyncIterator[tuple[int, bytes]]] | None,
                 publish: Callable[[bytes, bytes], Awaitable[Awaitable]], warm_start_path: str = "",
                 topic: str = "examples", error_watch: Callable[[], Any] | None = None,
                 send_alerts: Callable[[list], Awaitable[None]] | None = None) -> None:
        if error_watch is not None and send_alerts is None:
            raise ValueError("an error watch needs send_alerts: its alerts are sent before the batch is acknowledged")
        self.host, self.new_book, self.model_factory = host, new_book, model_factory
        self.signer, self.last_snapshots, self.read_back, self.publish = signer, last_snapshots, read_back, publish
        self.warm_start_path, self.topic = warm_start_path, topic
        self.error_watch, self.send_alerts = error_watch, send_alerts
        self.errors = None  # the watch of the learner's errors while it runs (with error_watch)
        self.book: LearnerBook | None = None  # None until the first batch after an assignment
        self.model_name, self.generation = "", 0
        self.restored_from: str | None = None  # the version of the snapshot it started from, if any
        self.caught_up = 0  # examples read back at the last start
        self.last_snapshot: Snapshot | None = None  # the last one written (or restored)
        self.last_snapshot_at: float | None = None  # when this worker wrote it (Unix time; None: restored)
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        """Whether this worker runs the learner now (it has taken in a batch since its assignment)."""
        return self.book is not None

    @property
    def version(self) -> str:
        """The version the learner's next snapshot will have: ``<model>-g<generation>@<received>``."""
        return f"{self.model_name}-g{self.generation}@{self.book.received if self.book else 0}"

    async def learn(self, records: list[tuple[int, bytes]]) -> None:
        """Take in one batch of the examples topic, ``(offset, value)`` in order: at the first batch
        after an assignment, restore and catch up first; write a snapshot if one is due."""
        if not records:
            return
        async with self._lock:
            if self.book is None:
                await self._start(records[0][0])
            alerts = await self._take(records)
            if alerts:
                await self.send_alerts(alerts)
            await self._snapshot_if(self.book.due())

    async def snapshot_if_due(self) -> bool:
        """Write a snapshot if one is due (the time bound, when no batch came); whether it did."""
        async with self._lock:
            return self.book is not None and await self._snapshot_if(self.book.due())

    async def revoked(self, lost: dict[str, set[int]]) -> None:
        """The worker gives up partition 0 of the examples topic (if in ``lost``, topic -> partitions):
        a last snapshot of what is new, then the model is dropped; its next owner restores."""
        if 0 in lost.get(self.topic, ()):
            await self.stop("revoked")

    async def close(self) -> None:
        """A clean shutdown: a last snapshot of what is new."""
        await self.stop("shutdown")

    async def stop(self, why: str) -> None:
        """Write a snapshot of what came since the last one, then forget the model (in the host too)."""
        async with self._lock:
            if self.book is None:
                return
            try:
                await self._snapshot_if(self.book.received != self.book.snapshot_received)
            except Exception:
                log.exception("the central learner's last snapshot (%s) failed: its next owner reads back more", why)
            book, self.book, self.errors = self.book, None, None
            log.info("the central learner stops (%s) at %s: %s", why, self.version_of(book), book)
            try:
                (await self.host()).submit([("drop", KEY)])
            except Exception:  # the host may be closing with the worker
                log.debug("dropping the central model failed", exc_info=True)

    def version_of(self, book: LearnerBook) -> str:
        return f"{self.model_name}-g{self.generation}@{book.received}"

    async def report(self) -> dict | None:
        """What the ``/model`` page shows of the learner, None while it does not run on this worker:
        its model and version, the examples received (taken in, learned or subsampled) and learned,
        the sample rate, the offset of the examples topic taken in, the decisions on the examples
        since it started here, the snapshot it started from and the examples it read back then, its
        last snapshot (version, examples offset, and when this worker wrote it: None for the one it
        started from) and its prequential record (what ``fraud_prequential_metric{partition="central"}``
        publishes, with the window's size; None before the first example), computed off the event
        loop on a copy."""
        book = self.book
        if book is None:
            return None
        snapshot = self.last_snapshot
        report = {"model": self.model_name, "version": self.version, "examples_received": book.received,
                  "examples_learned": book.learned, "sample_rate": book.sample_rate,
                  "examples_offset": book.examples_offset, "decisions": dict(book.counts),
                  "restored_from": self.restored_from, "caught_up": self.caught_up,
                  "last_snapshot": None if snapshot is None else {
                      "version": snapshot.version, "examples_offset": snapshot.examples_offset,
                      "written_at": self.last_snapshot_at},
                  "prequential": None}
        if book.evaluator.count:
            evaluator = book.evaluator.snapshot()
            report["prequential"] = {**await asyncio.to_thread(evaluator.report), "window_size": evaluator.window}
        return report

    def error_report(self) -> dict | None:
        """What ``/drift`` shows of the learner's error watch
        (:meth:`~app.drift.learner_errors.LearnerErrorWatch.report`), None while the learner does not
        run on this worker or keeps no watch."""
        return None if self.errors is None else self.errors.report()

    async def report_prequential(self) -> None:
        """Publish the learner's prequential record as ``fraud_prequential_metric{partition="central"}``
        (computed off the event loop, on a copy)."""
        if self.book is None:
            return
        report = await asyncio.to_thread(self.book.evaluator.snapshot().report)
        for window, values in report.items():
            for metric, value in values.items():
                metrics.PREQUENTIAL.labels(partition="central", metric=metric, window=window).set(value)

    async def _start(self, first_offset: int) -> None:
        snapshot = None
        for value in await self.last_snapshots():
            try:
                snapshot = decode_snapshot(value, self.signer)
                break
            except SnapshotError as exc:
                log.error("refused a model snapshot of the snapshots topic (%s): trying the one before it", exc)
                metrics.STATE_REJECTED.labels(state="model snapshot", reason=exc.reason).inc()
        host = await self.host()
        if snapshot is not None:
            ops = [("open", KEY, snapshot.model, None, "")]
        else:
            ops = [("open", KEY, None, self.model_factory, self.warm_start_path)]
        info, = await host.submit(ops)
        if isinstance(info, OpFailed):
            raise RuntimeError(f"the central model could not be opened: {info.message}")
        self.model_name, self.generation = info.name, info.generation
        book = self.new_book()
        if snapshot is not None:
            book.restore(snapshot)
        self.errors = self._errors_from(snapshot)
        self.restored_from = snapshot.version if snapshot is not None else None
        self.last_snapshot, self.last_snapshot_at = snapshot, None
        self.book = book
        metrics.LEARNER_RECEIVED.set(book.received)
        start = book.examples_offset + 1
        log.info("the central learner starts from %s (examples up to offset %d taken in); the consumer is at %d",
                 f"the snapshot {snapshot.version}" if snapshot else "a new model" if not self.warm_start_path
                 else f"the warm start {self.warm_start_path}", book.examples_offset, first_offset)
        self.caught_up = 0
        if self.read_back is None or start >= first_offset:
            return
        started, chunk = time.monotonic(), []
        async for offset, value in self.read_back(start, first_offset):
            chunk.append((offset, value))
            if len(chunk) >= READ_BACK_CHUNK:
                await self._take(chunk, alerting=False)
                self.caught_up += len(chunk)
                chunk = []
        if chunk:
            await self._take(chunk, alerting=False)
            self.caught_up += len(chunk)
        metrics.CAUGHT_UP.labels(state="central learner", topic="examples", partition="0").inc(self.caught_up)
        log.info("the central learner caught up on %d examples (offsets %d-%d) in %.1f s: now %s", self.caught_up,
                 start, first_offset - 1, time.monotonic() - started, book)

    def _errors_from(self, snapshot: Snapshot | None):
        """A fresh error watch (None without ``error_watch``), with the window of ``snapshot`` when
        it holds one this watch can take."""
        if self.error_watch is None:
            return None
        errors = self.error_watch()
        if snapshot is not None and snapshot.errors:
            try:
                errors.restore(snapshot.errors)
            except Exception as exc:  # another ADWIN setting since (CheckpointError), or unreadable
                log.warning("the error monitor of the snapshot %s is not restored (%s): a fresh one starts at its "
                            "example", snapshot.version, exc)
        return errors

    async def _take(self, records: list[tuple[int, bytes]], alerting: bool = True) -> list:
        """Decide on, predict and learn ``records``; the drift alerts of the learner's errors
        (none unless ``alerting``)."""
        book, ops, learned = self.book, [], []
        counts = {LEARN: 0, DUPLICATE: 0, SUBSAMPLED: 0}
        for offset, value in records:
            try:
                example = decode_example(value)
            except ExampleFormatError as exc:
                log.error("examples offset %d: not an example (%s): passed over", offset, exc)
                metrics.LEARNER_EXAMPLES.labels(decision="unreadable").inc()
                book.passed(offset)
                continue
            decision = book.take(example, offset)
            counts[decision] += 1
            if decision == LEARN:
                ops.append(("step", KEY, example.features, example.label))
                learned.append((example, offset, book.received - 1, book.learned - 1))
        alerts = []
        if ops:
            results = await (await self.host()).submit(ops)
            for (example, offset, received, before), result in zip(learned, results):
                if isinstance(result, OpFailed):
                    log.error("the central model could not learn an example: %s", result.message)
                    book.unlearned()
                    counts[LEARN] -= 1
                    metrics.LEARNER_EXAMPLES.labels(decision="failed").inc()
                    continue
                wrong = book.record(example.label, result)
                if self.errors is not None:
                    found = self.errors.observe(
                        wrong, before, event_time=example.event_time, transaction_id=example.transaction_id,
                        offset=offset, model_version=version_of(self.model_name, self.generation, received),
                        alerting=alerting)
                    if found is not None:
                        alerts.append(found)
        for decision, count in counts.items():
            if count:
                metrics.LEARNER_EXAMPLES.labels(decision=decision).inc(count)
        metrics.LEARNER_RECEIVED.set(book.received)
        return alerts

    async def _snapshot_if(self, due: bool) -> bool:
        if not due:
            return False
        started = time.perf_counter()
        blob, = await (await self.host()).submit([("checkpoint", KEY, {})])
        if isinstance(blob, OpFailed):
            raise RuntimeError(f"the central model's checkpoint failed: {blob.message}")
        errors = b"" if self.errors is None else self.errors.to_checkpoint()
        snapshot = self.book.snapshot(self.model_name, self.generation, blob, errors)
        value = await asyncio.to_thread(encode_snapshot, snapshot, self.signer)  # an HMAC of the whole model
        sent = await self.publish(self.model_name.encode(), value)
        await outputs.confirmed([sent], "the model snapshots")
        self.last_snapshot, self.last_snapshot_at = snapshot, time.time()
        metrics.SNAPSHOTS.inc()
        metrics.SNAPSHOT_BYTES.set(len(value))
        metrics.SNAPSHOT_SECONDS.observe(time.perf_counter() - started)
        log.debug("snapshot %s written (%d bytes, examples up to offset %d)", snapshot.version, len(value),
                  snapshot.examples_offset)
        return True

    def __repr__(self) -> str:
        return f"CentralLearner({self.version if self.book else 'inactive'})"
