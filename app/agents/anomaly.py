"""The anomaly agent: ``MinMaxScaler | HalfSpaceTrees`` scores each transaction, then learns it;
an :class:`~app.records.Anomaly` goes to ``anomalies`` when the score passes the threshold
(``ANOMALY_THRESHOLD_KIND``: a fixed value or a rolling quantile of recent scores).

One detector per input partition (partition state, like the scorer's model). Its input is the
transaction's ``V1..V28, Amount``, plus the window features (:class:`app.windows.tables.WindowTables`,
tables ``<WINDOW_TABLE_PREFIX>-anomaly-*``) when ``ANOMALY_WINDOW_FEATURES`` is on. Those tables are
this agent's own, so the scorer's window tables never count an event twice. The detector itself is
not checkpointed: after a restart it learns again from scratch (and waits ``ANOMALY_WARMUP`` events
before flagging); the window tables are restored from their changelogs.

Metrics: ``fraud_anomalies_total``, ``fraud_anomaly_score``, ``fraud_events_out_total{topic=anomalies}``
and ``fraud_events_in_total{topic=transactions}``; the last one only when the scoring agent does not
run in this worker (it counts the same messages), so each consumed message counts once.
"""
from __future__ import annotations

import time

import settings
from app.worker import app  # first: the worker module imports the agents (and they the topics)
from app import metrics
from app.anomaly import AnomalyDetector
from app.records import Anomaly
from app.topics import anomalies, transactions

DETECTORS: dict[int, AnomalyDetector] = {}
COUNTS_INPUT = "scoring" not in settings.AGENTS
WINDOW_TABLES = None
if settings.ANOMALY_WINDOW_FEATURES:
    from app.windows.tables import WindowTables

    WINDOW_TABLES = WindowTables(app, prefix=f"{settings.WINDOW_TABLE_PREFIX}-anomaly")


def detector_for(partition: int) -> AnomalyDetector:
    detector = DETECTORS.get(partition)
    if detector is None:
        detector = DETECTORS[partition] = AnomalyDetector()
    return detector


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
            detector = detector_for(event.message.partition)
            verdict = detector.process(x)
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
