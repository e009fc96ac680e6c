"""The scorer: predict, score, then learn, per transaction, one model per partition.

For each transaction, in partition order, the partition's learner (a
:class:`~app.learning.hosted_learner.HostedLearner`; the model runs in a model host) gives the fraud
probability, a score is made, and then

* if the transaction carries ``Class``, the model learns it at once;
* otherwise, if its label came first and is parked, the model learns that label at once, with the
  features just computed;
* otherwise its features wait in the pending table until its label comes (:meth:`Scorer.plan_label`),
  or expire (``pending_max``, ``pending_ttl_s``).

A label whose transaction has not been scored yet is parked (:mod:`app.state.parked`: a
changelog-backed table keyed by transaction id, bounded by ``parked_max`` per partition and by
``parked_ttl_s`` of event time), so the labels' consumer never waits long for transactions far behind.

State: each partition's :class:`~app.scoring.partition.PartitionScorer` is kept by an
:class:`~app.state.checkpointed.AsyncCheckpointedStates`, the protocol the anomaly and drift state
use: the learner is checkpointed to a changelog-backed table every ``checkpoint_every`` learned
events (and labels), every ``checkpoint_every_s`` seconds while it has something unsaved (events
learned, or transactions scored past its saved position: rare labels must not leave a gap of
millions of transactions to read back), on revocation and on clean shutdown, with the offsets of the transactions and
labels it has taken in; the new owner restores it before the partition's first event (else loads
``warm_start_path``, else builds a new model). After a crash, events up to those offsets are scored
again but not learned twice, and the events committed after the checkpoint are read back from Kafka,
learned and scored again (:meth:`Scorer.item_batches`; their scores may not have been sent), so a
model learns every event exactly once (one without a checkpoint reads back everything before its
first event). Labels learned after the last
checkpoint keep their pending features (and parked labels learned after it stay parked) until the
next one for the same reason.

With ``windows`` (a :class:`~app.scoring.windows.ScoringWindows`), the model input is the
transaction's raw features with its card's and terminal's window features and calendar flags: the
card's windows take each transaction once (their changelog records are confirmed with the scores),
and each label the scorer learns is sent to its terminal's windows.

Central learning (``replica``, a :class:`~app.scoring.replica.Replica`; ``LEARNING_MODE =
"central"``): every partition predicts with the worker's replica of the central model and learns
nothing. Each label the scorer meets with its transaction's features (in the event, parked, or late
through the pending index) becomes an :class:`~app.learning.examples.Example` sent with
``send_example(key, value)`` (to the examples topic, keyed by transaction id), its source position
that of the message whose processing produced it, its send confirmed with the batch's scores. A
transaction's example is sent when it is planned (:meth:`Scorer.submit`, in each partition's order,
which is the order the learner needs: it skips an example behind the source position it has
learned), so one whose prediction then fails is dead-lettered with its example sent. The
replica is refreshed to the newest snapshot between two batches (:meth:`Scorer.submit`); a score's
probability is corrected for the snapshot's sample rate before the threshold. There are no model
checkpoints and no catch-up (:class:`~app.scoring.replica.UncheckpointedStates` says why); a pending
entry or parked label goes as soon as its example is sent.

The operations go to the model host in chunks of ``model_chunk`` transactions, all submitted at
once: the caller sends the scores of one chunk while the host works on the next. The host applies
operations in the order they were submitted, so a partition's transactions are predicted, then
learned, one after the other, exactly as a plain loop would.

>>> import asyncio
>>> from app.learning.model_host import LocalHost
>>> from app.learning.pipeline import model_factory
>>> from app.records import Transaction
>>> import types
>>> def table():  # what the scorer uses of a Faust table
...     return types.SimpleNamespace(data={}, send_changelog=lambda partition, key, value, **kw: None)
>>> async def local_host():
...     return LocalHost()
>>> scorer = Scorer(local_host, table(), table(), model_factory=model_factory(kind="lr"))
>>> tx = Transaction(transaction_id="tx-1", event_time=1.7e9, Amount=5.0, Class=1,
...                  **{f"V{i}": 0.0 for i in range(1, 29)})
>>> async def demo():
...     chunks = await scorer.submit([Item(tx, b"tx-1", partition=0, offset=0)])
...     return [score async for chunk in scorer.scored(chunks) for _, score in chunk]
>>> score, = asyncio.run(demo())
>>> score["fraud_probability"], score["model_version"], scorer.partitions[0].learner.events_learned
(0.5, 'lr-g0', 1)
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, NamedTuple

from app import gc_tuning, metrics, outputs
from app.learning import OnlineLearner
from app.learning import examples as example_codec
from app.learning.hosted_learner import HostedLearner
from app.learning.learner_set import OpFailed
from app.learning.subsampling import check_rate, correct, keep
from app.scoring.partition import PartitionScorer
from app.scoring.replica import Replica, UncheckpointedStates
from app.serialization.errors import DecodeError
from app.state.changelog import delete, get, put
from app.state.checkpointed import AsyncCheckpointedStates
from app.state.parked import ParkedFormatError, decode_parked, encode_parked
from app.state.pending import PendingFormatError, decode_pending, encode_pending
from app.state.signing import Signer

log = logging.getLogger(__name__)

LEGACY_OFFSETS = "offsets"  # where checkpoints written before positioned envelopes kept their offsets
SAMPLE_RATE = "sample_rate"  # the share of genuine examples a partition's checkpointed model learned


class Item(NamedTuple):
    """A transaction to score, where it came from, and its stream event (None when read back).
    ``key`` is the transaction id from the payload (never the message's Kafka key, which a
    producer may leave empty or set to something else): the key of its pending entry and its score."""

    tx: Any
    key: bytes
    partition: int
    offset: int
    event: object = None


class ScoringFailed(Exception):
    """The model could not score (or learn) a transaction."""


class _Planned(NamedTuple):
    item: Item
    x: dict
    version: str
    events_learned: int
    fresh: bool  # not learned before a restart: learn it (in-event label) or keep it pending
    state: PartitionScorer
    written: Any = None  # the future of its card windows' changelog record
    parked: int | None = None  # the parked label it is learned with
    example: Any = None  # central learning: the future of its example's send
    sample_rate: float = 1.0  # the share of genuine examples its model learned (central: its snapshot's)
    learns: bool = False  # the model learns it with this step (partition learning)


class _Unscorable(NamedTuple):
    item: Item
    error: Exception


class Scorer:
    """Every partition's :class:`PartitionScorer` of this worker, and the model host they share.

    ``start_host()`` starts the model host (awaited once); ``checkpoints`` and ``pending`` are the
    changelog-backed tables (anything with ``data`` and ``send_changelog``; ``checkpoints`` is None
    in central learning, which keeps no model checkpoints); ``model_factory``
    builds a new model; ``features(tx)`` gives a transaction's model input; ``read_back(source,
    partition, start, end)`` reads ``(offset, (key, value dict))`` back from a topic for a catch-up.
    ``signer`` signs the model checkpoints and verifies them before the model host loads one (see
    :mod:`app.state.checkpointed`); pending features that do not decode are refused and counted.
    A catch-up is read back, learned and scored ``catch_up_chunk`` events at a time, so however
    long the gap, only that many wait in memory. With ``explanations``, each score also carries
    ``members`` and ``top_features`` (the ``step_explain`` operation of
    :mod:`app.learning.learner_set`; same probabilities, more work per event in the model host).
    ``parked`` is the changelog-backed table of labels parked until their transaction comes (an
    in-memory one when not given), at most ``parked_max`` per partition, each kept until its
    transaction's event time is ``parked_ttl_s`` (default: ``pending_ttl_s``) behind the partition's.
    With ``replica`` (central learning: see the module's docstring), ``send_example(key, value)``
    sends an encoded example and returns the future of its confirmation; ``staleness`` (a
    :class:`~app.scoring.staleness.StalenessBound`, or None) holds each batch while the newest
    snapshot lags the examples sent by more than its bound. Without ``replica``, ``sample_rate``
    is the share of genuine examples each partition's model learns, chosen by a hash of the
    transaction id as the central learner does (:mod:`app.learning.subsampling`; every fraud is
    learned, every label still counts in the prequential metrics and goes to its terminal's
    windows); the model's probabilities are corrected for it.
    """

    def __init__(self, start_host: Callable[[], Awaitable[Any]], checkpoints, pending, *,
                 model_factory: Callable, features: Callable[[Any], dict] | None = None,
                 warm_start_path: str = "", transactions_topic: str = "transactions",
                 labels_topic: str = "labels", decision_threshold: float = 0.5, model_chunk: int = 10,
                 checkpoint_every: int = 10_000, checkpoint_every_s: float | None = 60.0,
                 catch_up_chunk: int = 1000, pending_max: int = 100_000,
                 pending_ttl_s: float = 7 * 24 * 3600.0, pending_expired_remembered: int = 200_000,
                 label_wait_idle_s: float = 5.0, max_event_time_skew_s: float = 0.0, skew_min_events: int = 100,
                 prequential_window: int = 10_000, gc_freeze: bool = False,
                 read_back: Callable[[str, int, int, int], AsyncIterator[tuple[int, Any]]] | None = None,
                 record: Callable[..., Any] | None = None, signer: Signer | None = None,
                 explanations: bool = False, parked=None, parked_max: int = 100_000,
                 parked_ttl_s: float | None = None, windows: Any = None, replica: Replica | None = None,
                 send_example: Callable[[bytes, bytes], Any] | None = None, staleness: Any = None,
                 sample_rate: float = 1.0) -> None:
        self._start_host = start_host
        self._host: Any = None
        self._host_starting: asyncio.Future | None = None
        self.pending_table = pending
        self.parked_table = parked if parked is not None else _MemoryTable()
        self.parked_max = parked_max
        self.parked_ttl_s = pending_ttl_s if parked_ttl_s is None else parked_ttl_s
        self.model_factory = model_factory
        self.features = features or (lambda tx: tx.features())
        self.warm_start_path = warm_start_path
        self.transactions_topic, self.labels_topic = transactions_topic, labels_topic
        self.threshold = decision_threshold
        self.model_chunk = max(1, model_chunk)
        self.catch_up_chunk = max(1, catch_up_chunk)
        self.pending_max, self.pending_ttl_s = pending_max, pending_ttl_s
        self.pending_expired_remembered = pending_expired_remembered
        self.label_wait_idle_s = label_wait_idle_s
        self.max_event_time_skew_s = max_event_time_skew_s
        self.skew_min_events = skew_min_events
        self.prequential_window = prequential_window
        self.gc_freeze = gc_freeze
        self.record = record  # Transaction: makes a read-back value dict a record
        self.explanations = explanations
        self.windows = windows  # app.scoring.windows.ScoringWindows, or None: raw features only
        self.checkpointed_at: dict[int, float] = {}  # when each partition's last checkpoint was written (Unix time)
        self.replica = replica
        self.send_example = send_example
        self.staleness = staleness
        if replica is not None and send_example is None:
            raise ValueError("central learning needs send_example: where the labelled examples go")
        if replica is not None and sample_rate != 1.0:
            raise ValueError("central learning samples in its learner: the scorer's sample_rate must be 1.0")
        self.sample_rate = check_rate(sample_rate)
        self._in_flight: dict[bytes, int] = {}  # central learning: transactions submitted, not yet scored
        if replica is None:
            self.states: AsyncCheckpointedStates[PartitionScorer] | UncheckpointedStates[PartitionScorer] = \
                AsyncCheckpointedStates(
                    checkpoints, "model", open=self._open, dump=self._dump, pending=lambda state: state.unsaved,
                    every=checkpoint_every, read_back=read_back, on_checkpoint=self._checkpointed, forget=self._forget,
                    signer=signer, every_s=checkpoint_every_s)
        else:
            self.states = UncheckpointedStates(self._open, forget=self._forget)
        self._refused_pending: set[bytes] = set()

    # --- the model host and the partitions ------------------------------------------------------
    async def host(self):
        """The model host, started on first use (once, however many callers ask meanwhile)."""
        if self._host is None:
            if self._host_starting is None:
                self._host_starting = asyncio.ensure_future(self._start_host())
            try:
                self._host = await asyncio.shield(self._host_starting)
            except BaseException:
                if self._host_starting.done():
                    self._host_starting = None
                raise
        return self._host

    @property
    def partitions(self) -> dict[int, PartitionScorer]:
        """The live partitions of this worker."""
        return self.states.states

    @property
    def learners(self) -> dict[int, HostedLearner]:
        """The live learner of each partition (what a drift mitigation resets or replaces); none in
        central learning (the partitions share a replica of a model learned elsewhere)."""
        if self.replica is not None:
            return {}
        return {partition: state.learner for partition, state in self.states.states.items()}

    def model_key(self, partition: int):
        """The model host's key of the model that scores ``partition``."""
        return self.replica.key if self.replica is not None else partition

    def replace_learner(self, partition: int, learner: OnlineLearner) -> None:
        """Make ``learner`` the live model of ``partition`` (its stream positions stay)."""
        hosted = self.partitions[partition].learner
        old_version = hosted.version
        hosted.replace_with(learner)
        _versions_changed(partition, hosted, old_version)

    async def _open(self, partition: int, blob: bytes | None, positions: dict[str, int]) -> PartitionScorer:
        host = await self.host()
        if self.replica is not None:
            learner = await self.replica.opened(host)
            log.info("partition %s: scored by the model replica %s", partition, learner.version)
        else:
            learner = await HostedLearner.open(host, partition, blob, self.model_factory, self.warm_start_path)
            if not positions and learner.meta.get(LEGACY_OFFSETS):
                positions.update(learner.meta[LEGACY_OFFSETS])
            learned_at = learner.meta.get(SAMPLE_RATE) if learner.restored else None
            if isinstance(learned_at, (int, float)) and abs(learned_at - self.sample_rate) > 1e-12:
                log.warning("partition %s: its checkpointed model learned with sample rate %g; it goes on at %g, and "
                            "its probabilities are corrected for %g", partition, learned_at, self.sample_rate,
                            self.sample_rate)
            learner.meta = {SAMPLE_RATE: self.sample_rate}  # its checkpoints say what it learned with
            if learner.restored:
                log.info("partition %s: restored %r from its checkpoint (positions %s)", partition, learner, positions)
            elif self.warm_start_path:
                log.info("partition %s: warm start from %s: %r", partition, self.warm_start_path, learner)
        if self.windows is not None:
            self.windows.opened(partition)
        state = PartitionScorer(partition, learner, pending_max=self.pending_max, pending_ttl_s=self.pending_ttl_s,
                                expired_remembered=self.pending_expired_remembered,
                                prequential_window=self.prequential_window, threshold=self.threshold,
                                parked_max=self.parked_max, parked_ttl_s=self.parked_ttl_s,
                                checkpointed=self.replica is None)
        self._rebuild_pending(state)
        self._rebuild_parked(state)
        _versions_changed(partition, learner, None)
        self._freeze()
        return state

    def _rebuild_pending(self, state: PartitionScorer) -> None:
        entries = []
        for key, blob in list(self.pending_table.data.items()):
            if blob is not None:
                try:
                    entry = decode_pending(blob)
                except PendingFormatError as exc:
                    self._refuse_pending(key, exc)
                    continue
                if entry.partition == state.partition:
                    entries.append((entry.event_time, key))
        for event_time, key in sorted(entries):
            state.waiting(key, event_time)
        if entries:
            log.info("partition %s: %d transactions still wait for their label", state.partition, len(entries))

    def _rebuild_parked(self, state: PartitionScorer) -> None:
        count = 0
        for key, blob in list(self.parked_table.data.items()):
            if blob is None:
                continue
            try:
                entry = decode_parked(blob)
            except ParkedFormatError as exc:
                self._refuse_parked(key, exc)
                continue
            if entry.partition == state.partition:
                state.parked.add(key, entry.event_time)
                count += 1
        if count:
            log.info("partition %s: %d parked labels still wait for their transaction", state.partition, count)

    def _refuse_parked(self, key: bytes, error: ParkedFormatError) -> None:
        """A parked label that does not decode: logged and counted, never learned."""
        log.error("refused the parked label of table %s under key %r (%s)", getattr(self.parked_table, "name", "?"),
                  key, error)
        metrics.STATE_REJECTED.labels(state="parked label", reason="format").inc()
        self.parked_table.data.pop(key, None)

    def _refuse_pending(self, key: bytes, error: PendingFormatError) -> None:
        """A pending entry that does not decode (say, pickled by an earlier version): never read,
        logged and counted once; its label will count as unknown."""
        if key not in self._refused_pending:
            self._refused_pending.add(key)
            log.error("refused the pending features of table %s under key %r (%s): their label will count as "
                      "unknown", getattr(self.pending_table, "name", "?"), key, error)
            metrics.STATE_REJECTED.labels(state="pending features", reason="format").inc()

    async def _dump(self, state: PartitionScorer) -> bytes:
        started = time.perf_counter()
        blob = await state.checkpoint()
        metrics.CHECKPOINT_SECONDS.observe(time.perf_counter() - started)
        metrics.CHECKPOINT_BYTES.labels(partition=str(state.partition)).set(len(blob))
        return blob

    async def _checkpointed(self, partition: int, state: PartitionScorer) -> None:
        """A checkpoint is confirmed: delete the pending entries and parked labels it learned, and
        wait for the broker to confirm the deletions (a refused one stops the worker: see
        :mod:`app.outputs`), so the checkpoint counts as done only once they are gone."""
        labelled, unparked = state.checkpointed()
        sent = [delete(self.pending_table, partition, key) for key in labelled]
        sent += [delete(self.parked_table, partition, key) for key in unparked]
        metrics.CHECKPOINTS.labels(partition=str(partition)).inc()
        self.checkpointed_at[partition] = time.time()
        self._freeze()
        await outputs.confirmed([future for future in sent if future is not None],
                                "the deletions of learned pending entries and parked labels")

    def _forget(self, state: PartitionScorer) -> None:
        self.checkpointed_at.pop(state.partition, None)
        if self.windows is not None:
            self.windows.forget(state.partition)
        state.learner.drop()

    def _freeze(self) -> None:
        """Keep everything alive now out of the collector's walks: see :mod:`app.gc_tuning`."""
        if self.gc_freeze:
            gc_tuning.freeze()

    async def revoked(self, lost: dict[str, set[int]]) -> None:
        """Checkpoint the partitions this worker loses and drop them; a new owner restores them."""
        await self.states.checkpoint_and_forget(lost.get(self.transactions_topic, ()))

    async def close(self) -> None:
        """Checkpoint every partition (a clean shutdown), then stop the model host."""
        await self.states.checkpoint_and_forget(self.states.partitions())
        if self.replica is None:
            log.info("checkpointed the models on shutdown")
        if self._host is not None:
            host, self._host, self._host_starting = self._host, None, None
            await host.close()

    # --- transactions ---------------------------------------------------------------------------
    def needs_catch_up(self, partitions) -> bool:
        """Whether any of ``partitions`` has yet to catch up on its transactions."""
        return any(self.states.needs_catch_up(p, self.transactions_topic) for p in partitions)

    async def item_batches(self, events) -> AsyncIterator[list[Item]]:
        """The items of stream events (``.value``, ``.key``, ``.message``), in lists to submit one
        after the other: each partition's first event is preceded by the transactions committed
        after its checkpoint, read back from Kafka (whether their scores reached ``scores`` is
        unknown, so they are scored again, a duplicate at worst, as well as learned) in lists of at
        most ``catch_up_chunk``; the events' own items come in the last list, the only one holding
        stream events. A catch-up of millions of events thus never sits in memory whole. With a
        staleness bound and no snapshot yet, the first event comes alone (see
        :mod:`app.scoring.staleness`)."""
        topic = self.transactions_topic
        items: list[Item] = []
        for event in events:
            tx, message = event.value, event.message
            if self.states.needs_catch_up(message.partition, topic):
                await self.states.get(message.partition)
                async for caught in self._caught_up(message.partition, message.offset):
                    yield caught  # items held so far are of other partitions: they may come after
            items.append(Item(tx, tx.transaction_id.encode(), message.partition, message.offset, event))
        if items and self.staleness is not None and self._snapshot_offset() is None:
            # no snapshot yet: one transaction, then the bound (0 until the first snapshot) holds the
            # rest for the learner, rather than a batch all scored alike by a model that learned nothing
            yield items[:1]
            items = items[1:]
        if items:
            yield items

    async def _caught_up(self, partition: int, offset: int) -> AsyncIterator[list[Item]]:
        items = []
        async for caught_offset, (key, value) in self.states.catch_up(partition, self.transactions_topic, offset):
            try:
                tx = self.record(**value)
            except Exception:
                log.exception("read-back transaction at partition %s offset %s skipped", partition, caught_offset)
                continue
            items.append(Item(tx, tx.transaction_id.encode(), partition, caught_offset))
            if len(items) >= self.catch_up_chunk:
                metrics.CAUGHT_UP.labels(state="model", topic=self.transactions_topic,
                                         partition=str(partition)).inc(len(items))
                yield items
                items = []
        # counted even when nothing was read back: the series says the catch-up ran
        metrics.CAUGHT_UP.labels(state="model", topic=self.transactions_topic, partition=str(partition)).inc(len(items))
        if items:
            yield items

    async def submit(self, items: list[Item]) -> list[tuple[list, asyncio.Future | None]]:
        """Plan each item (predict, and learn unless it was learned before a restart) and submit
        the operations to the model host in chunks, all at once; the chunks, for :meth:`scored`.
        The partitions count the items as learned from now on."""
        host = await self.host()
        for partition in {item.partition for item in items}:
            await self.states.get(partition)
        if self.replica is not None:
            if self.staleness is not None:
                await self.staleness.hold(self._snapshot_offset)
            await self._refresh_replica(host)
        topic, states, replica = self.transactions_topic, self.states, self.replica
        chunks = []
        for start in range(0, len(items), self.model_chunk):
            plans, ops = [], []
            for item in items[start:start + self.model_chunk]:
                state = states.states.get(item.partition) or await states.get(item.partition)
                try:
                    x = self.features(item.tx)
                except Exception as exc:
                    plans.append(_Unscorable(item, exc))
                    continue
                fresh = not states.seen(item.partition, topic, item.offset)
                refused = self._too_far_ahead(item, state) if fresh else None
                if refused is not None:
                    plans.append(_Unscorable(item, refused))
                    continue
                written = None
                if self.windows is not None:  # the card's one update (none for an offset it has taken in)
                    try:
                        x, written = self.windows.transaction(item.tx, x, item.partition, item.offset)
                    except Exception as exc:
                        plans.append(_Unscorable(item, exc))
                        continue
                parked = self._parked_label(state, item.key) if fresh and item.tx.Class is None else None
                learner = state.learner
                label = item.tx.Class if parked is None else parked
                if replica is None:
                    if label is not None and fresh and not keep(item.tx.transaction_id, label, self.sample_rate):
                        label = None  # left out of the model's learning (still evaluated and windowed: _score)
                    plans.append(_Planned(item, x, learner.version, learner.events_learned, fresh, state, written,
                                          parked=parked, sample_rate=self.sample_rate,
                                          learns=fresh and label is not None))
                else:  # the example now, in the partition's order (the learner skips any behind its position)
                    example = None if label is None else self._example(
                        item.tx.transaction_id, item.tx.event_time, x, label, (topic, item.partition, item.offset))
                    plans.append(_Planned(item, x, replica.version, replica.events_learned, fresh, state, written,
                                          parked=parked, example=example, sample_rate=replica.sample_rate))
                    self._in_flight[item.key] = self._in_flight.get(item.key, 0) + 1
                ops.append(learner.step(x, label if fresh else None, explain=self.explanations))
                if fresh:
                    states.advance(item.partition, topic, item.offset)
            chunks.append((plans, host.submit(ops) if ops else None))
        return chunks

    async def _refresh_replica(self, host) -> None:
        """Central learning: load the newest snapshot into the replica (between two batches)."""
        old = self.replica.version
        if await self.replica.refresh(host):
            for partition in self.partitions:
                _versions_changed(partition, self.replica, old)

    def _snapshot_offset(self) -> int | None:
        """Central learning: the examples offset the newest snapshot has taken in up to (None: none yet)."""
        newest = self.replica.newest()
        return None if newest is None else newest.examples_offset

    def _example(self, transaction_id: str, event_time: float, x: dict, label: int, source: tuple):
        """Central learning: send a labelled example; the future of its confirmation."""
        example = example_codec.Example(transaction_id, event_time, x, int(label), source)
        sent = self.send_example(example.key, example_codec.encode(example))
        if self.staleness is not None:
            self.staleness.track(sent)
        return sent

    def _scored_in_flight(self, key: bytes) -> None:
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)

    def _parked_label(self, state: PartitionScorer, key: bytes) -> int | None:
        """The label parked for the transaction ``key``, if any."""
        entry = self._parked(state, key)
        return None if entry is None else entry.label

    def _parked(self, state: PartitionScorer, key: bytes):
        if key not in state.parked:
            return None
        try:
            return decode_parked(get(self.parked_table, key))
        except ParkedFormatError as exc:
            state.parked.pop(key)
            self._refuse_parked(key, exc)
            return None

    def _too_far_ahead(self, item: Item, state: PartitionScorer) -> DecodeError | None:
        """The error refusing a transaction whose event time is more than
        ``max_event_time_skew_s`` ahead of the wall clock, or of its partition's latest event time
        once the partition has taken in ``skew_min_events`` transactions (so that one odd early
        event cannot make every later one look far ahead); None to score it."""
        limit = self.max_event_time_skew_s
        if not limit:
            return None
        event_time, watermark = item.tx.event_time, state.pending.watermark
        if event_time - time.time() > limit:
            against = f"the wall clock ({time.time():.0f})"
        elif self._far_ahead(state, event_time):
            against = f"the latest event time of partition {item.partition} ({watermark})"
        else:
            return None
        return DecodeError("invalid-value", f"event_time {event_time} is more than {limit:.0f} s "
                                            f"(MAX_EVENT_TIME_SKEW_S) ahead of {against}")

    @staticmethod
    def _quiet_since(state: PartitionScorer, waiting_since: float) -> float:
        """Since when the partition's transactions have not come (for a label's wait)."""
        return state.last_scored if state.transactions_seen else max(state.last_scored, waiting_since)

    def _far_ahead(self, state: PartitionScorer, event_time: float) -> bool:
        """Whether ``event_time`` is more than ``max_event_time_skew_s`` ahead of the partition's
        latest event time (judged once it has taken in ``skew_min_events`` transactions)."""
        return bool(self.max_event_time_skew_s) and state.transactions_seen >= self.skew_min_events \
            and event_time - state.pending.watermark > self.max_event_time_skew_s

    async def scored(self, chunks, writes: list | None = None) -> AsyncIterator[list[tuple[Item, dict | Exception]]]:
        """For each chunk of :meth:`submit`, once the model host has scored it: its (item, score
        dict or exception); a learned item counts in the prequential metrics, an unlabelled one
        waits in the pending table. The futures of the pending table's and the card windows'
        changelog records, and of the terminal labels sent, go to ``writes``: the caller confirms
        them with the scores, before the batch is acknowledged (a lost one would leave its label
        nothing to learn, or its windows short of an event)."""
        for plans, future in chunks:
            results = iter(await future) if future is not None else iter(())
            out, late = [], []  # late: transactions whose label was parked while they were with the model host
            for plan in plans:
                if isinstance(plan, _Unscorable):
                    out.append((plan.item, plan.error))
                    continue
                if plan.written is not None and writes is not None:
                    writes.append(plan.written)
                if plan.example is not None and writes is not None:
                    writes.append(plan.example)
                result = next(results)
                if self.replica is not None:
                    self._scored_in_flight(plan.item.key)
                if plan.sample_rate != 1.0 and not isinstance(result, OpFailed):
                    result = ((correct(result[0], plan.sample_rate),) + tuple(result[1:])
                              if type(result) is tuple else correct(result, plan.sample_rate))
                if isinstance(result, OpFailed):
                    if plan.learns:
                        plan.state.learner.unlearned()
                    out.append((plan.item, ScoringFailed(result.message)))
                    continue
                late_or_none = late if self.replica is None else None  # central: no label is parked meanwhile
                out.append((plan.item, self._score(plan, *result, writes=writes, late=late_or_none)
                            if type(result) is tuple else self._score(plan, result, writes=writes, late=late_or_none)))
            if late:
                await self._learn_late(late)
            yield out

    async def _learn_late(self, late: list[tuple[_Planned, int]]) -> None:
        """Learn the parked labels of transactions scored without them (parked meanwhile)."""
        late = [(plan, label) for plan, label in late if keep(plan.item.tx.transaction_id, label, self.sample_rate)]
        if not late:
            return
        host = await self.host()
        ops = [plan.state.learner.learn(plan.x, label) for plan, label in late]
        for (plan, _), result in zip(late, await host.submit(ops)):
            if isinstance(result, OpFailed):
                log.error("learning a parked label failed at partition %s: %s", plan.item.partition, result.message)
                plan.state.learner.unlearned()

    def _score(self, plan: _Planned, probability: float, members: dict | None = None,
               top_features: list | None = None, writes: list | None = None, late: list | None = None) -> dict:
        item, tx, state = plan.item, plan.item.tx, plan.state
        if plan.fresh:
            state.transactions_seen += 1
            if state.transactions_seen == 1:  # (after_batch keeps it current from then on)
                state.last_scored = time.monotonic()
            parked = plan.parked if plan.parked is not None or tx.Class is not None else self._parked_meanwhile(plan, late)
            if parked is not None:
                self._unparked(plan, parked, probability, writes)
            elif tx.Class is not None:
                state.learned_in_event(tx.Class, probability, tx.event_time)
                if self.windows is not None:
                    sent = self.windows.label(tx.terminal_id, tx.event_time, tx.Class, f"t:{item.partition}", item.offset)
                    if writes is not None and sent is not None:
                        writes.append(sent)
            else:
                terminal_id = tx.terminal_id if self.windows is not None else None
                written = put(self.pending_table, item.partition, item.key,
                              encode_pending(plan.x, probability, tx.event_time, item.partition, terminal_id))
                if writes is not None and written is not None:
                    writes.append(written)
                state.waiting(item.key, tx.event_time)
        elif item.key in state.parked:  # learned before a restart, its label with it: the label's leftover goes
            state.parked.pop(item.key)
            delete(self.parked_table, item.partition, item.key)
        return {
            "transaction_id": tx.transaction_id, "event_time": tx.event_time,
            "fraud_probability": probability, "decision": probability >= self.threshold,
            "threshold": self.threshold, "model_version": plan.version,
            "events_learned": plan.events_learned, "processing_time": time.time(), "anomaly_score": None,
            "label": tx.Class, "partition": item.partition, "offset": item.offset,
            "members": members, "top_features": top_features,
        }

    def _parked_meanwhile(self, plan: _Planned, late: list | None) -> int | None:
        """The label parked for a transaction planned without it (the label came while it was with
        the model host): it goes to ``late``, learned once the chunk is scored."""
        label = self._parked_label(plan.state, plan.item.key) if late is not None else None
        if label is not None:
            late.append((plan, label))
        return label

    def _unparked(self, plan: _Planned, label: int, probability: float, writes: list | None) -> None:
        """A transaction learned with the label parked for it; the parked label is deleted once
        a checkpoint covers this learning."""
        tx = plan.item.tx
        if self.windows is not None:  # the label goes to its terminal's windows, in transaction order as
            # an in-event label does (a parked label's own offset may be behind those of later labels)
            sent = self.windows.label(tx.terminal_id, tx.event_time, label, f"t:{plan.item.partition}",
                                      plan.item.offset)
            if writes is not None and sent is not None:
                writes.append(sent)
        plan.state.unparked(plan.item.key, label, probability, tx.event_time)
        metrics.LABEL_DELAY.observe(max(0.0, plan.state.pending.watermark - tx.event_time))
        if self.replica is not None:  # its example is sent: no checkpoint to wait for
            deleted = delete(self.parked_table, plan.item.partition, plan.item.key)
            if writes is not None and deleted is not None:
                writes.append(deleted)
        metrics.LABELS_PARKED.labels(event="learned").inc()

    def after_batch(self, partitions) -> None:
        """The upkeep of partitions whose transactions were just scored: expire old pending
        entries, checkpoint when due, refresh the gauges."""
        now = time.monotonic()
        for partition in partitions:
            state = self.partitions.get(partition)
            if state is None:  # revoked meanwhile: checkpointed then
                continue
            state.last_scored = now
            for key in state.pending.expire():  # a label still coming for one counts as expired
                delete(self.pending_table, partition, key)
            expired = state.parked.expire(state.pending.watermark)  # labels whose transaction never came
            for key in expired:
                delete(self.parked_table, partition, key)
            if expired:
                metrics.LABELS_PARKED.labels(event="expired").inc(len(expired))
            if self.windows is not None:
                if state.pending.watermark > float("-inf"):
                    self.windows.expire(partition, state.pending.watermark)  # idle cards: tombstones
                metrics.WINDOW_KEYS.labels(table="cards", partition=str(partition)).set(self.windows.card_count(partition))
            self.states.maybe_checkpoint(partition)
            _partition_gauges(state)

    # --- labels ---------------------------------------------------------------------------------
    async def wait_for_transaction(self, partition: int, key: bytes, event_time: float,
                                   deadline: float | None = None, poll_s: float = 0.02) -> str:
        """Until the transaction a label is for has been scored (its features are pending):
        ``"found"``. The wait is bounded in event time and in wall time; it ends without it when
        the partition's transactions have moved past the label's event time (``"passed"``: the
        transaction is unknown or expired), when the label is further ahead of them than
        ``max_event_time_skew_s`` (``"ahead"``), when they have stopped coming for
        ``label_wait_idle_s`` (``"idle"``; before the partition's first transaction, counted from
        the start of the wait or the opening of the partition's model, whichever is later; not
        while the model is still opening), or at ``deadline`` (a ``time.monotonic()``; ``"timeout"``: a
        label far ahead of its transaction, or for one that never comes, holds up the labels
        behind it at most until then). Counted in ``fraud_label_waits_total{outcome}`` when it
        waited at all; the label is then learned, or parked until its transaction comes
        (:meth:`plan_label`)."""
        started, waited = time.monotonic(), False
        while True:
            state = self.partitions.get(partition)
            now = time.monotonic()
            if state is not None and key in state.pending:
                outcome = "found"
            elif state is not None and state.pending.watermark > event_time:
                outcome = "passed"
            elif state is not None and self._far_ahead(state, event_time):
                outcome = "ahead"
            elif state is not None and now - self._quiet_since(state, started) > self.label_wait_idle_s:
                outcome = "idle"
            elif deadline is not None and now >= deadline:
                outcome = "timeout"
            else:
                await asyncio.sleep(poll_s)
                waited = True
                continue
            if waited:
                metrics.LABEL_WAITS.labels(outcome=outcome).inc()
            return outcome

    async def caught_up_labels(self, partition: int, offset: int) -> AsyncIterator[list[tuple[bytes, int, int]]]:
        """Before a partition's first label since its restore: the labels committed after its
        checkpoint, as (key, label, offset, event time), to learn before it, in lists of at most
        ``catch_up_chunk`` (learn each before taking the next: the gap never sits in memory whole)."""
        if not self.states.needs_catch_up(partition, self.labels_topic):
            return
        await self.states.get(partition)
        out = []
        async for caught_offset, (key, value) in self.states.catch_up(partition, self.labels_topic, offset):
            out.append((value["transaction_id"].encode(), int(value["label"]), caught_offset, value.get("event_time")))
            if len(out) >= self.catch_up_chunk:
                metrics.CAUGHT_UP.labels(state="model", topic=self.labels_topic, partition=str(partition)).inc(len(out))
                yield out
                out = []
        metrics.CAUGHT_UP.labels(state="model", topic=self.labels_topic, partition=str(partition)).inc(len(out))
        if out:
            yield out

    async def plan_label(self, key: bytes, label: int, partition: int, offset: int,
                         writes: list | None = None, event_time: float | None = None) -> tuple[str, tuple | None]:
        """Plan learning a late label with its transaction's pending features: the outcome
        (learned, duplicate (learned before a restart), expired, parked or unknown) and the operation
        for the model host (None unless learned). A label whose transaction has not been scored is
        parked (given its transaction's ``event_time``, unless that is ``parked_ttl_s`` behind the
        partition's): learned when the transaction comes (:meth:`submit`); the future of its
        changelog record goes to ``writes``, for the caller to confirm before the label is
        acknowledged. With windows, a learned label is sent to its
        transaction's terminal; the future of the send goes to ``writes`` (for the caller to
        confirm before the label is acknowledged). In central learning "learned" means its example
        was sent (its future, and its pending entry's deletion, go to ``writes``; no operation); a
        label whose transaction is with the model host waits until it is scored, so that its example
        follows the examples of the labels before it."""
        state = await self.states.get(partition)
        op = None
        while key in self._in_flight:  # central: its transaction is with the model host; its features come
            await asyncio.sleep(0.005)
        if self.states.seen(partition, self.labels_topic, offset):
            outcome = "duplicate"
        elif key in state.pending:
            try:
                entry = decode_pending(get(self.pending_table, key))
            except PendingFormatError as exc:
                self._refuse_pending(key, exc)
                state.pending.discard(key)
                outcome = "unknown"
            else:
                if self.replica is None:
                    if keep(key.decode(), label, self.sample_rate):
                        op = state.learner.learn(entry.x, label)
                else:  # central: its example, then the entry goes (no checkpoint to wait for)
                    sent = [self._example(key.decode(), entry.event_time, entry.x, label,
                                          (self.labels_topic, partition, offset)),
                            delete(self.pending_table, partition, key)]
                    if writes is not None:
                        writes.extend(future for future in sent if future is not None)
                state.labelled(key, label, entry.probability)
                outcome = "learned"
                metrics.LABEL_DELAY.observe(max(0.0, state.pending.watermark - entry.event_time))
                if self.windows is not None:
                    sent = self.windows.label(entry.terminal_id, entry.event_time, label, f"l:{partition}", offset)
                    if writes is not None and sent is not None:
                        writes.append(sent)
        elif state.pending.was_expired(key):
            outcome = "expired"
        elif event_time is not None and event_time >= state.pending.watermark - self.parked_ttl_s and self.parked_max:
            written = put(self.parked_table, partition, key, encode_parked(label, event_time, partition, offset))
            if writes is not None and written is not None:
                writes.append(written)
            state.parked.add(key, event_time)
            outcome = "parked"
            metrics.LABELS_PARKED.labels(event="parked").inc()
        else:
            outcome = "unknown"
        self.states.advance(partition, self.labels_topic, offset)
        metrics.LABELS.labels(outcome=outcome).inc()
        return outcome, op

    async def learn(self, planned: list[tuple[int, tuple, Any]]) -> list[tuple[Any, ScoringFailed]]:
        """Submit the planned learning operations ``(partition, op, tag)``; the ``(tag, error)`` of
        those that failed (they do not count as learned)."""
        return await (await self.learn_soon(planned))

    async def learn_soon(self, planned: list[tuple[int, tuple, Any]]) -> Awaitable[list[tuple[Any, ScoringFailed]]]:
        """:meth:`learn`, in two steps: the operations are sent to the model host when this returns
        (so they are applied before any sent after), the failures come when the result is awaited."""
        if not planned:
            return _done([])
        host = await self.host()
        return self._failures(planned, host.submit([op for _, op, _ in planned]))

    async def _failures(self, planned: list[tuple[int, tuple, Any]], submitted) -> list[tuple[Any, ScoringFailed]]:
        results = await submitted
        failed = []
        for (partition, _, tag), result in zip(planned, results):
            if isinstance(result, OpFailed):
                log.error("learning a label failed at partition %s: %s", partition, result.message)
                state = self.partitions.get(partition)
                if state is not None:
                    state.learner.unlearned()
                failed.append((tag, ScoringFailed(result.message)))
        return failed

    def after_labels(self, partitions) -> None:
        """Checkpoint when due and refresh the gauges of partitions that just learned labels."""
        for partition in partitions:
            state = self.partitions.get(partition)
            if state is not None:
                self.states.maybe_checkpoint(partition)
                _partition_gauges(state)

    # --- prequential metrics --------------------------------------------------------------------
    async def report_prequential(self) -> None:
        """Publish the prequential metrics of every partition (computed off the event loop)."""
        for partition, state in list(self.partitions.items()):
            if state.evaluator.count == 0:
                continue
            report = await asyncio.to_thread(state.evaluator.snapshot().report)
            for window, values in report.items():
                for metric, value in values.items():
                    metrics.PREQUENTIAL.labels(partition=str(partition), metric=metric, window=window).set(value)


async def _done(value):
    return value


def _versions_changed(partition: int, hosted: HostedLearner, old_version: str | None) -> None:
    if old_version is not None:
        try:
            metrics.MODEL_VERSION.remove(str(partition), old_version)
        except KeyError:
            pass
    metrics.MODEL_VERSION.labels(partition=str(partition), version=hosted.version).set(1)
    metrics.EVENTS_LEARNED.labels(partition=str(partition)).set(hosted.events_learned)


def _partition_gauges(state: PartitionScorer) -> None:
    metrics.EVENTS_LEARNED.labels(partition=str(state.partition)).set(state.learner.events_learned)
    metrics.LABELS_PENDING.labels(partition=str(state.partition)).set(len(state.pending))
    metrics.LABELS_PARKED_NOW.labels(partition=str(state.partition)).set(len(state.parked))


class _MemoryTable:
    """A table kept in memory only (no changelog): what the scorer uses of a Faust table."""

    def __init__(self) -> None:
        self.data: dict = {}

    def send_changelog(self, partition, key, value, **kwargs) -> None:
        return None
