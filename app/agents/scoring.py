"""The scoring agent: predict, score, then learn, per transaction, one model per partition.

For each transaction, in partition order: the partition's :class:`~app.learning.OnlineLearner`
gives the fraud probability, a :class:`~app.records.Score` goes to ``scores``, and then

* if the transaction carries ``Class``, the model learns it at once;
* otherwise its features wait in the ``pending`` table until the label arrives on ``labels``
  (:func:`learn_labels`), or expire (``PENDING_MAX``, ``PENDING_TTL_S``).

Transactions come in batches (``BATCH_SIZE``, ``SCORING_BATCH_WITHIN_S``): scores are encoded and handed
to the producer without waiting, and the batch's sends are awaited before its events are acked,
so processing stays at-least-once (Faust also flushes the producer before each commit). While one
batch's scores are sent, the next batch is already with the model host.

State (see :mod:`app.state.tables`): every ``CHECKPOINT_EVERY_EVENTS`` learned events, on
revocation and on clean shutdown the learner is checkpointed to a changelog-backed table,
together with the offsets it has learned up to. A partition's learner is restored from the table
(or ``WARM_START_PATH``, or built fresh) when its first event comes, after Faust's recovery. After
a restart the events up to the checkpointed offsets are scored again (duplicates) but not learned
twice, and the events committed after the checkpoint are read back from Kafka, learned and
scored again (:func:`catch_up`, counted in ``fraud_caught_up_events_total{state=model}``; their
scores may not have been sent), so from its first
checkpoint on a model learns every event exactly once
(before it, a crash loses what was learned); labels learned after
the last checkpoint keep their pending features until the next checkpoint for the same reason.
The prequential metrics (``PREQUENTIAL_*``, exact, refreshed off the event loop) start again with
the process.

Garbage collection (``GC_FREEZE``, ``GC_THRESHOLDS``, :mod:`app.gc_tuning`): when a learner is
built, restored or replaced and after each checkpoint, everything alive (in the model host and here)
is frozen out of the collector's walks, so that a full collection no longer stops the event loop for 50-130 ms.

The models live in a model host (:mod:`app.learning.model_host`): by default a process of their own
(``MODEL_PROCESS``), so that predicting and learning run on one core while this process decodes
the next transactions and sends the last scores on another. Each batch goes to the host in chunks
of ``MODEL_CHUNK`` transactions, all sent at once: the scores of one chunk are sent while the host
works on the next. The host applies the operations in the order they were sent, so a partition's
transactions are still predicted, then learned, one after the other. The agent keeps a
:class:`~app.learning.hosted_learner.HostedLearner` per partition (version, events learned, stream
positions).

One partition = one model: more partitions give more independent models (each learns from its
share of the stream only) that more worker processes can run in parallel.

If the model process dies, the worker exits at once (code 70), like a crash: restarted, it restores the
models from their checkpoints and catches up.

Other agents in the worker may reset or swap a partition's learner (drift mitigation):
:data:`LEARNERS` and :func:`replace_learner`.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections import defaultdict
from typing import AsyncIterator, NamedTuple

import settings
from app import gc_tuning, metrics
from app.dead_letters import processing_failed, send_dead_letter
from app.learning import OnlineLearner, PrequentialEvaluator, model_from_settings
from app.learning.hosted_learner import HostedLearner
from app.learning.learner_set import OpFailed
from app.learning.model_host import start_host
from app.records import Label, Score, Transaction
from app.serialization.avro import validate_transaction
from app.state.pending import PendingIndex, decode_pending, encode_pending
from app.state import tables  # its tables are read at call time: importing it first works too
from app.state.changelog import checkpoint_key, delete, get, put
from app.state.read_back import read_back
from app.topics import codec, labels, scores, transactions
from app.worker import app

log = logging.getLogger(__name__)

LEARNERS: dict[int, HostedLearner] = {}
"""The live learner of each source partition (transactions and labels are co-partitioned)."""
EVALUATORS: dict[int, PrequentialEvaluator] = {}
PENDING_INDEXES: dict[int, PendingIndex] = {}
HOST = None
"""The model host (:func:`model_host`)."""
MODEL_PROCESS_LOST_EXIT_CODE = 70  # EX_SOFTWARE
_OPENING: dict[int, asyncio.Future] = {}
_LABELLED_SINCE_CHECKPOINT: dict[int, list[bytes]] = defaultdict(list)  # pending keys to delete at checkpoint
_LAST_SCORED: dict[int, float] = {}  # monotonic time of the last scored batch per partition
_STARTED = time.monotonic()
gc_tuning.set_thresholds(settings.GC_THRESHOLDS)

_score_codec = codec(settings.SCORES_TOPIC, Score)
_catch_up_codecs = {settings.TRANSACTIONS_TOPIC: codec(settings.TRANSACTIONS_TOPIC, Transaction, validate_transaction),
                    settings.LABELS_TOPIC: codec(settings.LABELS_TOPIC, Label)}
OFFSETS = "offsets"  # learner.meta[OFFSETS][topic] = the last offset of that topic the model has processed


# --- the model host and the learners -----------------------------------------------------------------
_HOST_STARTING: asyncio.Future | None = None


async def model_host():
    """The model host: a process of its own (``MODEL_PROCESS``) or this one; started once."""
    global HOST, _HOST_STARTING
    if HOST is None:
        if _HOST_STARTING is None:
            _HOST_STARTING = asyncio.ensure_future(start_host(not settings.MODEL_PROCESS, gc_freeze=settings.GC_FREEZE,
                                                              on_exit=_model_process_exited))
        try:
            HOST = await asyncio.shield(_HOST_STARTING)
        except BaseException:
            if _HOST_STARTING.done():
                _HOST_STARTING = None
            raise
    return HOST


def _model_process_exited(error: Exception) -> None:
    """The models are gone with their process: stop at once, as a crash, so that the worker is
    restarted and restores them from their checkpoints (nothing unsent has been acknowledged)."""
    log.critical("%s: the worker stops (exit code %d) to restart from the model checkpoints",
                 error, MODEL_PROCESS_LOST_EXIT_CODE)
    logging.shutdown()
    os._exit(MODEL_PROCESS_LOST_EXIT_CODE)


@app.task
async def _start_model_host() -> None:
    """Start the model host with the worker, not at the first transaction."""
    await model_host()


def replace_learner(partition: int, learner: OnlineLearner) -> None:
    """Make ``learner`` the live model of ``partition`` (it keeps the stream positions it has)."""
    hosted = LEARNERS[partition]
    old_version = hosted.version
    hosted.replace_with(learner)
    _versions_changed(partition, hosted, old_version)


def _versions_changed(partition: int, hosted: HostedLearner, old_version: str | None) -> None:
    if old_version is not None:
        try:
            metrics.MODEL_VERSION.remove(str(partition), old_version)
        except KeyError:
            pass
    metrics.MODEL_VERSION.labels(partition=str(partition), version=hosted.version).set(1)
    metrics.EVENTS_LEARNED.labels(partition=str(partition)).set(hosted.events_learned)


async def learner_for(partition: int) -> HostedLearner:
    """The partition's learner, restored from its checkpoint (or ``WARM_START_PATH``, or new) on
    first use."""
    learner = LEARNERS.get(partition)
    if learner is not None:
        return learner
    opening = _OPENING.get(partition)
    if opening is None:  # the labels agent may ask for the same partition meanwhile
        opening = _OPENING[partition] = asyncio.ensure_future(_open_learner(partition))
    try:
        return await asyncio.shield(opening)
    finally:
        if opening.done():
            _OPENING.pop(partition, None)


async def _open_learner(partition: int) -> HostedLearner:
    host = await model_host()
    blob = get(tables.checkpoints, checkpoint_key(partition))
    learner = await HostedLearner.open(host, partition, blob, model_from_settings(), settings.WARM_START_PATH)
    if learner.restored:
        log.info("partition %s: restored %r from its checkpoint", partition, learner)
    elif settings.WARM_START_PATH:
        log.info("partition %s: warm start from %s: %r", partition, settings.WARM_START_PATH, learner)
    learner.meta.setdefault(OFFSETS, {})
    EVALUATORS.setdefault(partition, PrequentialEvaluator(settings.PREQUENTIAL_WINDOW, settings.DECISION_THRESHOLD))
    PENDING_INDEXES[partition] = _rebuild_pending_index(partition)
    LEARNERS[partition] = learner
    _versions_changed(partition, learner, None)
    _freeze_long_lived()
    return learner


def _freeze_long_lived() -> None:
    """Keep everything alive now out of the collector's walks: see :mod:`app.gc_tuning`."""
    if settings.GC_FREEZE:
        gc_tuning.freeze()


def _rebuild_pending_index(partition: int) -> PendingIndex:
    index = PendingIndex(settings.PENDING_MAX, settings.PENDING_TTL_S, settings.PENDING_EXPIRED_REMEMBERED)
    entries = []
    for key, blob in list(tables.pending.data.items()):
        if blob is not None:
            entry = decode_pending(blob)
            if entry.partition == partition:
                entries.append((entry.event_time, key))
    for event_time, key in sorted(entries):
        index.add(key, event_time)
    if entries:
        log.info("partition %s: %d transactions still wait for their label", partition, len(entries))
    return index


async def write_checkpoint(partition: int) -> None:
    """Checkpoint the partition's learner; then drop the pending features of labels it has learned."""
    learner = LEARNERS[partition]
    labelled = _LABELLED_SINCE_CHECKPOINT.pop(partition, [])
    started = time.perf_counter()
    blob = await learner.checkpoint()
    metrics.CHECKPOINT_SECONDS.observe(time.perf_counter() - started)
    put(tables.checkpoints, partition, checkpoint_key(partition), blob)
    for key in labelled:
        delete(tables.pending, partition, key)
    metrics.CHECKPOINTS.labels(partition=str(partition)).inc()
    metrics.CHECKPOINT_BYTES.labels(partition=str(partition)).set(len(blob))
    _freeze_long_lived()


_CHECKPOINTING: dict[int, asyncio.Future] = {}


def _maybe_checkpoint(partition: int) -> None:
    """Checkpoint in the background when ``CHECKPOINT_EVERY_EVENTS`` events were learned since the
    last one (scores go on being sent meanwhile; the checkpoint is of what was sent to the model
    host before it)."""
    if (partition in LEARNERS and partition not in _CHECKPOINTING
            and LEARNERS[partition].learned_since_checkpoint >= settings.CHECKPOINT_EVERY_EVENTS):
        task = _CHECKPOINTING[partition] = asyncio.ensure_future(write_checkpoint(partition))
        task.add_done_callback(lambda done: _checkpoint_done(partition, done))


def _checkpoint_done(partition: int, task: asyncio.Future) -> None:
    if _CHECKPOINTING.get(partition) is task:
        del _CHECKPOINTING[partition]
    if not task.cancelled() and task.exception() is not None:
        log.error("partition %s: checkpoint failed: %r", partition, task.exception())


# --- catching up after a crash ----------------------------------------------------------------------
_CAUGHT_UP: set[tuple[str, int]] = set()


async def catch_up(topic: str, partition: int, offset: int) -> list[tuple[bytes | None, dict, int]]:
    """Before the first event of a partition since its learner was restored: if the consumer
    resumes past the offsets the checkpoint has learned (offsets committed after the checkpoint,
    then a crash), read the gap back from Kafka: its messages as (key, value dict, offset), for the
    restored model to learn exactly once. Done once per topic and partition."""
    if (topic, partition) in _CAUGHT_UP:
        return []
    _CAUGHT_UP.add((topic, partition))
    learner = await learner_for(partition)
    start = learner.meta[OFFSETS].get(topic, -1) + 1
    out = []
    if learner.restored and start < offset:
        out = [item async for item in read_back(topic, partition, start, offset, _catch_up_codecs[topic].loads)]
        log.info("partition %s of %s: caught up on %d events after the last checkpoint", partition, topic, len(out))
    metrics.CAUGHT_UP.labels(state="model", topic=topic, partition=str(partition)).inc(len(out))
    return out


# --- features ---------------------------------------------------------------------------------------
def model_features(tx) -> dict:
    """The model's input for a transaction: the one place where extra features (per-card window
    aggregates, when enabled) are merged into ``x``."""
    x = tx.features()
    return x


# --- transactions -----------------------------------------------------------------------------------
class Item(NamedTuple):
    """A transaction to score, where it came from, and its event (None when caught up from Kafka)."""

    tx: Transaction
    key: bytes
    partition: int
    offset: int
    event: object = None


class _Planned(NamedTuple):
    item: Item
    x: dict
    version: str
    events_learned: int
    fresh: bool  # not learned before a restart: learn it (in-event label) or keep it pending
    learner: HostedLearner


class ScoringFailed(Exception):
    """The model could not score a transaction."""


async def submit_items(items: list[Item]) -> list[tuple[list, asyncio.Future | None]]:
    """Plan each item (predict, and learn unless it was learned before a restart) and send the
    operations to the model host in chunks of ``MODEL_CHUNK``, all at once; the chunks, for
    :func:`scored_chunks`. The partitions' learners see the items as learned from now on."""
    host = await model_host()
    for partition in {item.partition for item in items}:
        await learner_for(partition)
    topic = settings.TRANSACTIONS_TOPIC
    size = max(1, settings.MODEL_CHUNK)
    chunks = []
    for start in range(0, len(items), size):
        plans, ops = [], []
        for item in items[start:start + size]:
            learner = LEARNERS.get(item.partition) or await learner_for(item.partition)
            try:
                x = model_features(item.tx)
            except Exception as exc:
                plans.append((item, exc))
                continue
            positions = learner.meta[OFFSETS]
            fresh = item.offset > positions.get(topic, -1)
            y = item.tx.Class if fresh else None
            plans.append(_Planned(item, x, learner.version, learner.events_learned, fresh, learner))
            ops.append(learner.step(x, y))
            if fresh:
                positions[topic] = item.offset
        chunks.append((plans, host.submit(ops) if ops else None))
    return chunks


async def scored_chunks(chunks) -> AsyncIterator[list[tuple[Item, dict | Exception]]]:
    """For each chunk of :func:`submit_items`, as soon as the model host has scored it: its
    (item, :class:`~app.records.Score` as a dict, or the exception); each learned item counts in
    the prequential metrics, each unlabelled one waits in the pending table."""
    for plans, future in chunks:
        results = iter(await future) if future is not None else iter(())
        out = []
        for plan in plans:
            if not isinstance(plan, _Planned):
                out.append(plan)
                continue
            result = next(results)
            if isinstance(result, OpFailed):
                if plan.fresh and plan.item.tx.Class is not None:
                    plan.learner.unlearned()
                out.append((plan.item, ScoringFailed(result.message)))
                continue
            out.append((plan.item, _scored(plan, result)))
        yield out


def _scored(plan: _Planned, probability: float) -> dict:
    item, tx = plan.item, plan.item.tx
    if plan.fresh:
        index = PENDING_INDEXES.get(item.partition)
        if tx.Class is not None:
            EVALUATORS[item.partition].update(tx.Class, probability)
            if index is not None:
                index.see(tx.event_time)
        else:
            put(tables.pending, item.partition, item.key, encode_pending(plan.x, probability, tx.event_time, item.partition))
            if index is not None:
                index.add(item.key, tx.event_time)
    return {
        "transaction_id": tx.transaction_id, "event_time": tx.event_time,
        "fraud_probability": probability, "decision": probability >= settings.DECISION_THRESHOLD,
        "threshold": settings.DECISION_THRESHOLD, "model_version": plan.version,
        "events_learned": plan.events_learned, "processing_time": time.time(), "anomaly_score": None,
        "label": tx.Class, "partition": item.partition, "offset": item.offset,
    }


def _caught_up_items(partition: int, caught: list) -> list[Item]:
    """The caught-up transactions, to learn and to score again: whether their scores reached
    ``scores`` is unknown (after a failover, a new owner has been seen to receive a partition from
    past the last score the old one produced), so the agent sends them again (at-least-once: a
    duplicate at worst)."""
    items = []
    for key, value, offset in caught:
        try:
            tx = Transaction(**value)
        except Exception:
            log.exception("caught-up transaction at partition %s offset %s skipped", partition, offset)
            continue
        items.append(Item(tx, key or tx.transaction_id.encode(), partition, offset))
    return items


@app.agent(transactions)
async def score_transactions(stream):
    """Score each transaction, then learn it (in-event label) or keep it pending (label to come).

    With a model process, batches overlap: batch k goes to the model host as soon as it is taken,
    and its scores are sent as they come back (:func:`_send_scores`, in the background) while the
    sends of the batches before it are still being confirmed (up to
    ``SCORING_BATCHES_IN_FLIGHT`` batches); a batch's events are acknowledged only once its scores
    are sent (at-least-once) and the batch before it is done: batches finish in order. In-process,
    each batch is scored and sent before the next is taken."""
    if not settings.MODEL_PROCESS:
        async for batch in stream.take_events(settings.BATCH_SIZE, within=settings.SCORING_BATCH_WITHIN_S):
            started = time.perf_counter()  # take_events acknowledges the batch once this returns
            await _send_scores(stream, batch, await submit_items(await _items_of(batch)), started, ack=False)
        return
    in_flight: collections.deque[asyncio.Future] = collections.deque()  # sending, oldest first
    async for batch in stream.noack_take(settings.BATCH_SIZE, within=settings.SCORING_BATCH_WITHIN_S):
        started = time.perf_counter()
        if in_flight and any((settings.TRANSACTIONS_TOPIC, e.message.partition) not in _CAUGHT_UP
                             for e in batch):
            while in_flight:  # what the learner has learned must be final before a catch-up
                await in_flight.popleft()
        chunks = await submit_items(await _items_of(batch))
        while in_flight and (in_flight[0].done() or len(in_flight) >= settings.SCORING_BATCHES_IN_FLIGHT):
            await in_flight.popleft()  # raises if that batch's scores could not be sent: it is not acked
        sending = asyncio.ensure_future(
            _send_scores(stream, batch, chunks, started, after=in_flight[-1] if in_flight else None))
        sending.add_done_callback(_log_send_failure)
        in_flight.append(sending)


async def _items_of(batch) -> list[Item]:
    """The batch's transactions to score, after those of a partition's catch-up (see :func:`catch_up`)."""
    topic_in = settings.TRANSACTIONS_TOPIC
    items: list[Item] = []
    for event in batch:
        tx = event.value
        message = event.message
        if (topic_in, message.partition) not in _CAUGHT_UP:
            caught = await catch_up(topic_in, message.partition, message.offset)
            items += _caught_up_items(message.partition, caught)
        key = event.key if isinstance(event.key, bytes) else tx.transaction_id.encode()
        items.append(Item(tx, key, message.partition, message.offset, event))
    return items


def _log_send_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("sending a batch of scores failed: %r", future.exception())


async def _send_scores(stream, batch, chunks, started: float, ack: bool = True,
                       after: asyncio.Future | None = None) -> None:
    """Send the scores of a batch chunk by chunk as the model host gives them, await the sends,
    then (once the batch sent before, ``after``, is done: batches are acknowledged in order)
    acknowledge the batch's events; then the per-partition upkeep (pending expiry, checkpoint)."""
    topic_in = settings.TRANSACTIONS_TOPIC
    topic_out = scores.get_topic_name()
    producer = app.producer
    dumps = _score_codec.dumps
    observe_score = metrics.FRAUD_SCORE.observe
    observe_latency = metrics.SCORE_LATENCY.observe
    observe_event_latency = metrics.EVENT_TO_SCORE_LATENCY.observe
    futures = []
    touched: set[int] = set()
    flagged = 0
    async for chunk in scored_chunks(chunks):
        for item, score in chunk:
            if isinstance(score, Exception):  # one bad event must not stop the partition
                log.error("scoring failed at topic %s partition %s offset %s: %s",
                          topic_in, item.partition, item.offset, score)
                if item.event is not None:
                    await send_dead_letter(processing_failed(score), item.event.message)
                continue
            futures.append(await producer.send(topic_out, item.key, dumps(score), None, None, None))
            observe_latency(time.perf_counter() - started)
            observe_score(score["fraud_probability"])
            flagged += score["decision"]
            lateness = score["processing_time"] - item.tx.event_time
            if 0.0 <= lateness < 3600.0:
                observe_event_latency(lateness)
            touched.add(item.partition)
    if futures:
        # the broker's confirmation of this batch's sends (a producer's flush() would not send any
        # sooner: it waits out the linger too, and for every other batch besides)
        await asyncio.gather(*futures)  # raises if a send failed: the batch is not acked
    if after is not None:
        await after  # raises if the batch before failed: this one is not acked either
    if ack:
        for event in batch:
            await stream.ack(event)
    now = time.monotonic()
    for partition in touched:
        _LAST_SCORED[partition] = now
        if partition in LEARNERS:
            _expire_pending(partition)
            _maybe_checkpoint(partition)
            _partition_gauges(partition)
    metrics.EVENTS_IN.labels(topic=topic_in).inc(len(batch))
    metrics.EVENTS_OUT.labels(topic=topic_out).inc(len(futures))
    metrics.DECISIONS.labels(decision="fraud").inc(flagged)
    metrics.DECISIONS.labels(decision="genuine").inc(len(futures) - flagged)


def _partition_gauges(partition: int) -> None:
    learner, index = LEARNERS.get(partition), PENDING_INDEXES.get(partition)
    if learner is not None:
        metrics.EVENTS_LEARNED.labels(partition=str(partition)).set(learner.events_learned)
    if index is not None:
        metrics.LABELS_PENDING.labels(partition=str(partition)).set(len(index))


def _expire_pending(partition: int) -> None:
    for key in PENDING_INDEXES[partition].expire():  # a label still coming for one counts as expired
        delete(tables.pending, partition, key)


# --- labels -----------------------------------------------------------------------------------------
async def _wait_for_transaction(partition: int, key: bytes, event_time: float) -> None:
    """Until the transaction a label is for has been scored (its features are pending), the
    partition's transactions have moved past its event time, or they have stopped coming for
    ``LABEL_WAIT_IDLE_S`` (then it is unknown)."""
    while True:
        index = PENDING_INDEXES.get(partition)
        if index is not None and (key in index or index.watermark > event_time):
            return
        last = _LAST_SCORED.get(partition, _STARTED)
        if time.monotonic() - last > settings.LABEL_WAIT_IDLE_S:
            return
        await asyncio.sleep(0.02)


async def learn_label(key: bytes, label: int, partition: int, offset: int) -> tuple[str, tuple | None]:
    """Plan learning a late label with its transaction's pending features: the outcome (learned,
    duplicate (learned before a restart), expired or unknown) and the operation for the model host
    (None unless learned)."""
    learner = await learner_for(partition)
    positions = learner.meta[OFFSETS]
    index = PENDING_INDEXES[partition]
    op = None
    if offset <= positions.get(settings.LABELS_TOPIC, -1):
        outcome = "duplicate"
    elif key in index:
        entry = decode_pending(get(tables.pending, key))
        op = learner.learn(entry.x, label)
        EVALUATORS[partition].update(label, entry.probability)
        index.discard(key)
        _LABELLED_SINCE_CHECKPOINT[partition].append(key)  # its features go at the next checkpoint
        outcome = "learned"
    elif index.was_expired(key):
        outcome = "expired"
    else:
        outcome = "unknown"
    positions[settings.LABELS_TOPIC] = offset
    return outcome, op


async def learn_labels_of(planned: list[tuple[int, tuple, object]]) -> None:
    """Send the planned learning operations (partition, op, event or None) to the model host; a
    failed one goes to dead letters (its event's message) and does not count as learned."""
    if not planned:
        return
    host = await model_host()
    results = await host.submit([op for _, op, _ in planned])
    for (partition, _, event), result in zip(planned, results):
        if isinstance(result, OpFailed):
            log.error("learning a label failed at partition %s: %s", partition, result.message)
            learner = LEARNERS.get(partition)
            if learner is not None:
                learner.unlearned()
            if event is not None:
                await send_dead_letter(processing_failed(ScoringFailed(result.message)), event.message)


@app.agent(labels)
async def learn_labels(stream):
    """Learn each late label with the features its transaction was scored on."""
    topic_in = settings.LABELS_TOPIC
    async for batch in stream.take_events(settings.BATCH_SIZE, within=settings.BATCH_WITHIN_S):
        touched: set[int] = set()
        planned: list[tuple[int, tuple, object]] = []
        for event in batch:
            label = event.value
            partition, offset = event.message.partition, event.message.offset
            key = event.key if isinstance(event.key, bytes) else label.transaction_id.encode()
            await _wait_for_transaction(partition, key, label.event_time)
            if (topic_in, partition) not in _CAUGHT_UP:
                for caught_key, value, caught_offset in await catch_up(topic_in, partition, offset):
                    outcome, op = await learn_label(caught_key or value["transaction_id"].encode(),
                                                    int(value["label"]), partition, caught_offset)
                    metrics.LABELS.labels(outcome=outcome).inc()
                    if op is not None:
                        planned.append((partition, op, None))
            try:
                outcome, op = await learn_label(key, int(label.label), partition, offset)
            except Exception as exc:
                log.exception("learning a label failed at topic %s partition %s offset %s",
                              event.message.topic, partition, offset)
                await send_dead_letter(processing_failed(exc), event.message)
                continue
            if op is not None:
                planned.append((partition, op, event))
            touched.add(partition)
            metrics.LABELS.labels(outcome=outcome).inc()
        await learn_labels_of(planned)
        for partition in touched:
            _maybe_checkpoint(partition)
            _partition_gauges(partition)
        metrics.EVENTS_IN.labels(topic=topic_in).inc(len(batch))


# --- prequential metrics ----------------------------------------------------------------------------
@app.timer(interval=settings.PREQUENTIAL_REPORT_INTERVAL_S)
async def report_prequential() -> None:
    """Publish the exact prequential metrics of every partition (computed off the event loop)."""
    for partition, evaluator in list(EVALUATORS.items()):
        if evaluator.count == 0:
            continue
        snapshot = evaluator.snapshot()
        report = await asyncio.to_thread(snapshot.report)
        for window, values in report.items():
            for metric, value in values.items():
                metrics.PREQUENTIAL.labels(partition=str(partition), metric=metric, window=window).set(value)


# --- rebalance and shutdown -------------------------------------------------------------------------
async def _checkpoint_and_forget(partitions) -> None:
    for partition in partitions:
        running = _CHECKPOINTING.get(partition)
        if running is not None:
            await asyncio.wait([running])
        learner = LEARNERS.get(partition)
        if learner is None:
            continue
        if learner.learned_since_checkpoint or _LABELLED_SINCE_CHECKPOINT.get(partition):
            try:
                await write_checkpoint(partition)
            except Exception:
                log.exception("partition %s: checkpoint failed", partition)
        LEARNERS.pop(partition, None)
        PENDING_INDEXES.pop(partition, None)
        learner.drop()
        _CAUGHT_UP.difference_update({(settings.TRANSACTIONS_TOPIC, partition), (settings.LABELS_TOPIC, partition)})


@app.on_partitions_revoked.connect
async def _on_partitions_revoked(sender, revoked, **kwargs) -> None:
    """Checkpoint the learners of partitions this worker loses; a new owner restores them."""
    await _checkpoint_and_forget({tp.partition for tp in revoked if tp.topic == settings.TRANSACTIONS_TOPIC})


@app.on_before_shutdown.connect
async def _on_shutdown(sender, **kwargs) -> None:
    """Checkpoint every learner on a clean shutdown (the producer is flushed right after), then stop
    the model host."""
    global HOST
    await _checkpoint_and_forget(list(LEARNERS))
    log.info("checkpointed the models on shutdown")
    if HOST is not None:
        host, HOST = HOST, None
        await host.close()
