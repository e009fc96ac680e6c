"""The anomaly agent: ``MinMaxScaler | HalfSpaceTrees`` scores each transaction, then learns it;
an :class:`~app.records.Anomaly` goes to ``anomalies`` when the score passes the threshold
(``ANOMALY_THRESHOLD_KIND``: a fixed value or a rolling quantile of recent scores).

One detector per input partition (partition state, like the scorer's model). Its input is the
transaction's ``V1..V28, Amount``, plus the window features (:class:`app.windows.tables.WindowTables`,
tables ``<WINDOW_TABLE_PREFIX>-anomaly-*``) when ``ANOMALY_WINDOW_FEATURES`` is on. Those tables are
this agent's own, so the scorer's window tables never count an event twice.

State: each partition's detector (model, threshold, events seen) is checkpointed to the
changelog-backed table ``ANOMALY_CHECKPOINT_TABLE`` every ``ANOMALY_CHECKPOINT_EVERY_EVENTS`` events,
when its partition is revoked and on a clean shutdown; the worker that gets the partition restores
it before its first event, so a restart neither resets the detector nor starts a new warm-up. Each
checkpoint keeps the offset of the last transaction learned (:mod:`app.state.checkpointed`), so after
a crash the detector learns every transaction once: those redelivered up to that offset are scored
again (and flagged again if they pass: at-least-once) but not learned, and those committed after
the checkpoint are read back from ``transactions`` and learned before the first new one (not with
``ANOMALY_WINDOW_FEATURES``: the window features of those events are gone, so they are not learned).
An unreadable checkpoint is logged and replaced by a new detector. The window tables are restored
from their own changelogs.

Metrics: ``fraud_anomalies_total``, ``fraud_anomaly_score``, ``fraud_anomaly_events_seen{partition}``,
``fraud_anomaly_checkpoints_total{partition}``, ``fraud_caught_up_events_total{state=anomaly}``, ``fraud_events_out_total{topic=anomalies}`` and
``fraud_events_in_total{topic=transactions}``; the last one only when the scoring agent does not
run in this worker (it counts the same messages), so each consumed message counts once.
"""
from __future__ import annotations

import logging
import time

import settings
from app.worker import app  # first: the worker module imports the agents (and they the topics)
from app import metrics
from app.anomaly import AnomalyDetector
from app.records import Anomaly, Transaction
from app.serialization.avro import validate_transaction
from app.state.changelog import checkpoint_table
from app.state.checkpointed import CheckpointedStates
from app.state.read_back import values_reader
from app.topics import anomalies, record_decoder, transactions

log = logging.getLogger(__name__)

CHECKPOINTS = checkpoint_table(app, settings.ANOMALY_CHECKPOINT_TABLE, settings.CHECKPOINT_MAX_BYTES,
                               help="Anomaly detector checkpoint per source partition.")


def _opened(partition: int, detector: AnomalyDetector) -> None:
    metrics.ANOMALY_EVENTS_SEEN.labels(partition=str(partition)).set(detector.events_seen)


def _checkpointed(partition: int, detector: AnomalyDetector) -> None:
    metrics.ANOMALY_CHECKPOINTS.labels(partition=str(partition)).inc()


def _learn_again(detector: AnomalyDetector, tx) -> None:
    detector.process(tx.features())


def _caught_up(partition: int, count: int) -> None:
    metrics.CAUGHT_UP.labels(state="anomaly", topic=settings.TRANSACTIONS_TOPIC, partition=str(partition)).inc(count)


def detector_states(table, catch_up=None) -> CheckpointedStates[AnomalyDetector]:
    """Each partition's detector, checkpointed to ``table`` every ``ANOMALY_CHECKPOINT_EVERY_EVENTS``;
    after a crash it learns the transactions ``catch_up(partition, start, end)`` reads back (by
    default from ``transactions``; none with window features)."""
    if catch_up is None and not settings.ANOMALY_WINDOW_FEATURES:
        catch_up = values_reader(settings.TRANSACTIONS_TOPIC,
                                 record_decoder(settings.TRANSACTIONS_TOPIC, Transaction, validate_transaction))
    return CheckpointedStates(
        table, "anomaly detector", new=AnomalyDetector, dump=AnomalyDetector.to_checkpoint,
        load=AnomalyDetector.from_checkpoint, progress=lambda detector: detector.events_seen,
        every=settings.ANOMALY_CHECKPOINT_EVERY_EVENTS, on_checkpoint=_checkpointed, on_open=_opened,
        catch_up=catch_up, feed=_learn_again, on_caught_up=_caught_up)


DETECTORS = detector_states(CHECKPOINTS)
COUNTS_INPUT = "scoring" not in settings.AGENTS
WINDOW_TABLES = None
if settings.ANOMALY_WINDOW_FEATURES:
    from app.windows.tables import WindowTables

    WINDOW_TABLES = WindowTables(app, prefix=f"{settings.WINDOW_TABLE_PREFIX}-anomaly")


@app.agent(transactions)
async def detect_anomalies(stream):
    """Score then learn each transaction; send the flagged ones to ``anomalies``."""
    topic_in, topic_out = settings.TRANSACTIONS_TOPIC, settings.ANOMALIES_TOPIC
    events_in = metrics.EVENTS_IN.labels(topic=topic_in)
    events_out = metrics.EVENTS_OUT.labels(topic=topic_out)
    async for batch in stream.take_events(settings.BATCH_SIZE, within=settings.BATCH_WITHIN_S):
        for event in batch:
            tx = event.value
            if COUNTS_INPUT:
                events_in.inc()
            x = tx.features()
            if WINDOW_TABLES is not None:
                x.update(WINDOW_TABLES.update(tx.card_id, tx.event_time, tx.Amount, event=event))
            partition, offset = event.message.partition, event.message.offset
            detector = await DETECTORS.ready(partition, offset)
            if DETECTORS.seen(partition, offset):  # learned before a crash: judged again, not learned twice
                verdict = detector.judge(x)
            else:
                verdict = detector.process(x)
                DETECTORS.advance(partition, offset)
            metrics.ANOMALY_SCORE.observe(verdict.score)
            if verdict.flagged:
                await anomalies.send(key=event.key, value=Anomaly(
                    transaction_id=tx.transaction_id,
                    event_time=tx.event_time,
                    score=verdict.score,
                    threshold=verdict.threshold,
                    threshold_kind=detector.threshold.kind,
                    model_version=detector.version,
                    processing_time=time.time(),
                ))
                metrics.ANOMALIES.inc()
                events_out.inc()
        for partition in {event.message.partition for event in batch}:
            detector = DETECTORS.states.get(partition)
            if detector is None:  # (revoked meanwhile: checkpointed then)
                continue
            metrics.ANOMALY_EVENTS_SEEN.labels(partition=str(partition)).set(detector.events_seen)
            DETECTORS.maybe_checkpoint(partition)


@app.on_partitions_revoked.connect
async def _on_partitions_revoked(sender, revoked, **kwargs) -> None:
    """Checkpoint the detectors of partitions this worker loses; a new owner restores them."""
    DETECTORS.checkpoint_and_forget({tp.partition for tp in revoked if tp.topic == settings.TRANSACTIONS_TOPIC})


@app.on_before_shutdown.connect
async def _on_shutdown(sender, **kwargs) -> None:
    """Checkpoint every detector on a clean shutdown (the producer is flushed after)."""
    DETECTORS.checkpoint_and_forget(DETECTORS.partitions())
    log.info("checkpointed the anomaly detectors on shutdown")
