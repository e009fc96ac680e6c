"""The scoring agent: predict, score, then learn, per transaction, one model per partition.

For each transaction, in partition order: the partition's :class:`~app.learning.OnlineLearner`
gives the fraud probability, a :class:`~app.records.Score` goes to ``scores``, and then

* if the transaction carries ``Class``, the model learns it at once;
* otherwise its features wait in the ``pending`` table until the label arrives on ``labels``
  (:func:`learn_labels`), or expire (``PENDING_MAX``, ``PENDING_TTL_S``).

Transactions come in batches (``BATCH_SIZE``, ``SCORING_BATCH_WITHIN_S``): scores are encoded and handed
to the producer without waiting, and the batch's sends are awaited before its offsets are acked,
so processing stays at-least-once (Faust also flushes the producer before each commit).

State (see :mod:`app.state.tables`): every ``CHECKPOINT_EVERY_EVENTS`` learned events, on
revocation and on clean shutdown the learner is checkpointed to a changelog-backed table,
together with the offsets it has learned up to. A partition's learner is restored from the table
(or ``WARM_START_PATH``, or built fresh) when its first event comes, after Faust's recovery. After
a restart the events up to the checkpointed offsets are scored again (duplicates) but not learned
twice, and the events committed after the checkpoint are read back from Kafka, learned and
scored again (:func:`catch_up`; their scores may not have been sent), so from its first
checkpoint on a model learns every event exactly once
(before it, a crash loses what was learned); labels learned after
the last checkpoint keep their pending features until the next checkpoint for the same reason.
The prequential metrics (``PREQUENTIAL_*``, exact, refreshed off the event loop) start again with
the process.

Garbage collection (``GC_FREEZE``, ``GC_THRESHOLDS``, :mod:`app.gc_tuning`): when a learner is
built, restored or replaced and after each checkpoint, everything alive is frozen out of the
collector's walks, so that a full collection no longer stops the event loop for 50-130 ms.

One partition = one model: more partitions give more independent models (each learns from its
share of the stream only) that more worker processes can run in parallel.

Other agents in the worker may reset or swap a partition's learner (drift mitigation):
:data:`LEARNERS` and :func:`replace_learner`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

import settings
from app import gc_tuning, metrics
from app.dead_letters import processing_failed, send_dead_letter
from app.learning import OnlineLearner, PrequentialEvaluator, model_from_settings
from app.records import Label, Score, Transaction
from app.serialization.avro import validate_transaction
from app.state.pending import PendingIndex, decode_pending, encode_pending
from app.state import tables  # its tables are read at call time: importing it first works too
from app.state.tables import checkpoint_key, delete, get, put
from app.topics import codec, labels, scores, transactions
from app.worker import app

log = logging.getLogger(__name__)

LEARNERS: dict[int, OnlineLearner] = {}
"""The live learner of each source partition (transactions and labels are co-partitioned)."""
EVALUATORS: dict[int, PrequentialEvaluator] = {}
PENDING_INDEXES: dict[int, PendingIndex] = {}
_LEARNED_SINCE_CHECKPOINT: dict[int, int] = defaultdict(int)
_LABELLED_SINCE_CHECKPOINT: dict[int, list[bytes]] = defaultdict(list)  # pending keys to delete at checkpoint
_LAST_SCORED: dict[int, float] = {}  # monotonic time of the last scored batch per partition
_STARTED = time.monotonic()
gc_tuning.set_thresholds(settings.GC_THRESHOLDS)

_score_codec = codec(settings.SCORES_TOPIC, Score)
_catch_up_codecs = {settings.TRANSACTIONS_TOPIC: codec(settings.TRANSACTIONS_TOPIC, Transaction, validate_transaction),
                    settings.LABELS_TOPIC: codec(settings.LABELS_TOPIC, Label)}
OFFSETS = "offsets"  # learner.meta[OFFSETS][topic] = the last offset of that topic the model has processed
_RESTORED = "restored"  # learner.meta[_RESTORED]: restored from a checkpoint in this process


# --- learners ---------------------------------------------------------------------------------------
def new_learner() -> OnlineLearner:
    """A learner from ``WARM_START_PATH`` if configured, else a fresh one of the configured model."""
    if settings.WARM_START_PATH:
        learner = OnlineLearner.load(settings.WARM_START_PATH)
        learner.meta[OFFSETS] = {}  # its positions are not this stream's
        log.info("warm start from %s: %r", settings.WARM_START_PATH, learner)
        return learner
    return OnlineLearner(model_from_settings())


def replace_learner(partition: int, learner: OnlineLearner) -> None:
    """Make ``learner`` the live learner of ``partition`` (it keeps the stream positions it has)."""
    old = LEARNERS.get(partition)
    if old is not None:
        learner.meta.setdefault(OFFSETS, dict(old.meta.get(OFFSETS, {})))
        try:
            metrics.MODEL_VERSION.remove(str(partition), old.version)
        except KeyError:
            pass
    LEARNERS[partition] = learner
    metrics.MODEL_VERSION.labels(partition=str(partition), version=learner.version).set(1)
    metrics.EVENTS_LEARNED.labels(partition=str(partition)).set(learner.events_learned)
    _freeze_long_lived()


def learner_for(partition: int) -> OnlineLearner:
    """The partition's learner, restored from its checkpoint (or new) on first use."""
    learner = LEARNERS.get(partition)
    if learner is None:
        blob = get(tables.checkpoints, checkpoint_key(partition))
        if blob is not None:
            learner = OnlineLearner.from_checkpoint(blob)
            learner.meta[_RESTORED] = True
            log.info("partition %s: restored %r from its checkpoint", partition, learner)
        else:
            learner = new_learner()
            learner.meta[_RESTORED] = False
        learner.meta.setdefault(OFFSETS, {})
        EVALUATORS.setdefault(partition, PrequentialEvaluator(settings.PREQUENTIAL_WINDOW, settings.DECISION_THRESHOLD))
        PENDING_INDEXES[partition] = _rebuild_pending_index(partition)
        replace_learner(partition, learner)
    return learner


def _freeze_long_lived() -> None:
    """Keep the model (and everything else alive now) out of the collector's walks: see
    :mod:`app.gc_tuning`."""
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


def write_checkpoint(partition: int) -> None:
    """Checkpoint the partition's learner; then drop the pending features of labels it has learned."""
    learner = LEARNERS[partition]
    put(tables.checkpoints, partition, checkpoint_key(partition), learner.to_checkpoint())
    for key in _LABELLED_SINCE_CHECKPOINT.pop(partition, []):
        delete(tables.pending, partition, key)
    _LEARNED_SINCE_CHECKPOINT[partition] = 0
    metrics.CHECKPOINTS.labels(partition=str(partition)).inc()
    _freeze_long_lived()  # what the model has grown since the last checkpoint


def _maybe_checkpoint(partition: int) -> None:
    if _LEARNED_SINCE_CHECKPOINT[partition] >= settings.CHECKPOINT_EVERY_EVENTS:
        write_checkpoint(partition)


def _learned(partition: int, learner: OnlineLearner, x: dict, y: int, probability: float) -> None:
    learner.learn(x, y)
    EVALUATORS[partition].update(y, probability)
    _LEARNED_SINCE_CHECKPOINT[partition] += 1


# --- catching up after a crash ----------------------------------------------------------------------
_CAUGHT_UP: set[tuple[str, int]] = set()


async def catch_up(topic: str, partition: int, offset: int, handle) -> None:
    """Before the first event of a partition since its learner was restored: if the consumer
    resumes past the offsets the checkpoint has learned (offsets committed after the checkpoint,
    then a crash), read the gap back from Kafka and hand each message (key, value dict, offset) to
    ``handle``, so that the restored model learns it exactly once. Done once per topic and partition."""
    if (topic, partition) in _CAUGHT_UP:
        return
    _CAUGHT_UP.add((topic, partition))
    learner = learner_for(partition)
    start = learner.meta[OFFSETS].get(topic, -1) + 1
    if not learner.meta.get(_RESTORED) or start >= offset:
        return
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from app.admin import bootstrap_servers
    from app.security import kafka_client_options

    decode = _catch_up_codecs[topic].loads
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings.KAFKA_BROKER), enable_auto_commit=False,
                                group_id=None, **kafka_client_options(settings))
    await consumer.start()
    done = 0
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        while True:
            records = (await consumer.getmany(tp, timeout_ms=1000, max_records=1000)).get(tp, [])
            for record in records:
                if record.offset >= offset:
                    break
                try:
                    value = decode(record.value)
                except Exception:  # it went to dead letters the first time
                    continue
                handle(record.key, value, record.offset)
                done += 1
            if not records or records[-1].offset >= offset - 1:
                break
    finally:
        await consumer.stop()
    log.info("partition %s of %s: caught up on %d events after the last checkpoint", partition, topic, done)


def _catch_up_transaction(partition: int, caught: list):
    """Learn each caught-up transaction and keep its score in ``caught``: whether its score reached
    ``scores`` is unknown (after a failover, a new owner has been seen to receive a partition from
    past the last score the old one produced), so the agent sends it again (at-least-once: a
    duplicate at worst)."""
    def handle(key: bytes, value: dict, offset: int) -> None:
        tx = Transaction(**value)
        key = key or tx.transaction_id.encode()
        caught.append((key, score_one(tx, key, partition, offset)))
    return handle


def _catch_up_label(partition: int):
    def handle(key: bytes, value: dict, offset: int) -> None:
        outcome = learn_label(key or value["transaction_id"].encode(), int(value["label"]), partition, offset)
        metrics.LABELS.labels(outcome=outcome).inc()
    return handle


# --- features ---------------------------------------------------------------------------------------
def model_features(tx) -> dict:
    """The model's input for a transaction: the one place where extra features (per-card window
    aggregates, when enabled) are merged into ``x``."""
    x = tx.features()
    return x


# --- transactions -----------------------------------------------------------------------------------
def score_one(tx, key: bytes, partition: int, offset: int) -> dict:
    """Score one transaction with its partition's model, then learn it (in-event label) or keep
    its features pending; the :class:`~app.records.Score` as a dict."""
    learner = LEARNERS.get(partition) or learner_for(partition)
    x = model_features(tx)
    probability = learner.predict_proba(x)
    score = {
        "transaction_id": tx.transaction_id, "event_time": tx.event_time,
        "fraud_probability": probability, "decision": probability >= settings.DECISION_THRESHOLD,
        "threshold": settings.DECISION_THRESHOLD, "model_version": learner.version,
        "events_learned": learner.events_learned, "processing_time": time.time(), "anomaly_score": None,
        "label": tx.Class, "partition": partition, "offset": offset,
    }
    positions = learner.meta[OFFSETS]
    if offset > positions.get(settings.TRANSACTIONS_TOPIC, -1):  # not learned before a restart
        index = PENDING_INDEXES[partition]
        if tx.Class is not None:
            _learned(partition, learner, x, tx.Class, probability)
            index.see(tx.event_time)
        else:
            put(tables.pending, partition, key, encode_pending(x, probability, tx.event_time, partition))
            index.add(key, tx.event_time)
        positions[settings.TRANSACTIONS_TOPIC] = offset
    return score


@app.agent(transactions)
async def score_transactions(stream):
    """Score each transaction, then learn it (in-event label) or keep it pending (label to come)."""
    topic_in = settings.TRANSACTIONS_TOPIC
    topic_out = scores.get_topic_name()
    producer = app.producer
    dumps = _score_codec.dumps
    observe_score = metrics.FRAUD_SCORE.observe
    observe_latency = metrics.SCORE_LATENCY.observe
    observe_event_latency = metrics.EVENT_TO_SCORE_LATENCY.observe
    async for batch in stream.take_events(settings.BATCH_SIZE, within=settings.SCORING_BATCH_WITHIN_S):
        futures = []
        touched: set[int] = set()
        flagged = 0
        for event in batch:
            started = time.perf_counter()
            tx = event.value
            message = event.message
            key = event.key if isinstance(event.key, bytes) else tx.transaction_id.encode()
            if (topic_in, message.partition) not in _CAUGHT_UP:
                caught: list = []
                await catch_up(topic_in, message.partition, message.offset,
                               _catch_up_transaction(message.partition, caught))
                for caught_key, caught_score in caught:
                    futures.append(await producer.send(topic_out, caught_key, dumps(caught_score), None, None, None))
                    flagged += caught_score["decision"]
            try:
                score = score_one(tx, key, message.partition, message.offset)
            except Exception as exc:  # one bad event must not stop the partition: it goes to dead letters
                log.exception("scoring failed at topic %s partition %s offset %s",
                              message.topic, message.partition, message.offset)
                await send_dead_letter(processing_failed(exc), message)
                continue
            futures.append(await producer.send(topic_out, key, dumps(score), None, None, None))
            observe_latency(time.perf_counter() - started)
            probability = score["fraud_probability"]
            observe_score(probability)
            flagged += score["decision"]
            lateness = score["processing_time"] - tx.event_time
            if 0.0 <= lateness < 3600.0:
                observe_event_latency(lateness)
            touched.add(message.partition)
        if futures:
            await producer.flush()  # send now rather than after the producer's linger: lower latency
            await asyncio.gather(*futures)  # raises if a send failed: the batch is not acked
        now = time.monotonic()
        for partition in touched:
            _LAST_SCORED[partition] = now
            _expire_pending(partition)
            _maybe_checkpoint(partition)
            metrics.EVENTS_LEARNED.labels(partition=str(partition)).set(LEARNERS[partition].events_learned)
            metrics.LABELS_PENDING.labels(partition=str(partition)).set(len(PENDING_INDEXES[partition]))
        metrics.EVENTS_IN.labels(topic=topic_in).inc(len(batch))
        metrics.EVENTS_OUT.labels(topic=topic_out).inc(len(futures))
        metrics.DECISIONS.labels(decision="fraud").inc(flagged)
        metrics.DECISIONS.labels(decision="genuine").inc(len(futures) - flagged)


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


def learn_label(key: bytes, label: int, partition: int, offset: int) -> str:
    """Learn a late label with its transaction's pending features; the outcome: learned,
    duplicate (learned before a restart), expired or unknown."""
    learner = learner_for(partition)
    positions = learner.meta[OFFSETS]
    index = PENDING_INDEXES[partition]
    if offset <= positions.get(settings.LABELS_TOPIC, -1):
        outcome = "duplicate"
    elif key in index:
        entry = decode_pending(get(tables.pending, key))
        _learned(partition, learner, entry.x, label, entry.probability)
        index.discard(key)
        _LABELLED_SINCE_CHECKPOINT[partition].append(key)  # its features go at the next checkpoint
        outcome = "learned"
    elif index.was_expired(key):
        outcome = "expired"
    else:
        outcome = "unknown"
    positions[settings.LABELS_TOPIC] = offset
    return outcome


@app.agent(labels)
async def learn_labels(stream):
    """Learn each late label with the features its transaction was scored on."""
    topic_in = settings.LABELS_TOPIC
    async for batch in stream.take_events(settings.BATCH_SIZE, within=settings.BATCH_WITHIN_S):
        touched: set[int] = set()
        for event in batch:
            label = event.value
            partition, offset = event.message.partition, event.message.offset
            key = event.key if isinstance(event.key, bytes) else label.transaction_id.encode()
            await _wait_for_transaction(partition, key, label.event_time)
            if (topic_in, partition) not in _CAUGHT_UP:
                await catch_up(topic_in, partition, offset, _catch_up_label(partition))
            try:
                outcome = learn_label(key, int(label.label), partition, offset)
            except Exception as exc:
                log.exception("learning a label failed at topic %s partition %s offset %s",
                              event.message.topic, partition, offset)
                await send_dead_letter(processing_failed(exc), event.message)
                continue
            touched.add(partition)
            metrics.LABELS.labels(outcome=outcome).inc()
        for partition in touched:
            _maybe_checkpoint(partition)
            metrics.EVENTS_LEARNED.labels(partition=str(partition)).set(LEARNERS[partition].events_learned)
            metrics.LABELS_PENDING.labels(partition=str(partition)).set(len(PENDING_INDEXES[partition]))
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
def _checkpoint_and_forget(partitions) -> None:
    for partition in partitions:
        if partition in LEARNERS:
            if _LEARNED_SINCE_CHECKPOINT[partition] or _LABELLED_SINCE_CHECKPOINT.get(partition):
                write_checkpoint(partition)
            LEARNERS.pop(partition)
            PENDING_INDEXES.pop(partition, None)
            _CAUGHT_UP.difference_update({(settings.TRANSACTIONS_TOPIC, partition), (settings.LABELS_TOPIC, partition)})


@app.on_partitions_revoked.connect
async def _on_partitions_revoked(sender, revoked, **kwargs) -> None:
    """Checkpoint the learners of partitions this worker loses; a new owner restores them."""
    _checkpoint_and_forget({tp.partition for tp in revoked if tp.topic == settings.TRANSACTIONS_TOPIC})


@app.on_before_shutdown.connect
async def _on_shutdown(sender, **kwargs) -> None:
    """Checkpoint every learner on a clean shutdown (the producer is flushed right after)."""
    _checkpoint_and_forget(list(LEARNERS))
    log.info("checkpointed the models on shutdown")
