"""The scoring agent: one :class:`~app.records.Score` per transaction."""
from __future__ import annotations

import time

import settings
from app import metrics
from app.records import Score
from app.topics import scores, transactions
from app.worker import app

MODEL_VERSION = "placeholder-0"


@app.agent(transactions)
async def score_transactions(stream):
    """Score each transaction (a constant placeholder probability until a model is plugged in)."""
    topic_in = settings.TRANSACTIONS_TOPIC
    async for event in stream.events():
        started = time.perf_counter()
        tx = event.value
        metrics.EVENTS_IN.labels(topic=topic_in).inc()
        probability = 0.0
        score = Score(
            transaction_id=tx.transaction_id,
            event_time=tx.event_time,
            fraud_probability=probability,
            decision=probability >= settings.DECISION_THRESHOLD,
            threshold=settings.DECISION_THRESHOLD,
            model_version=MODEL_VERSION,
            events_learned=0,
            processing_time=time.time(),
            label=tx.Class,
            partition=event.message.partition,
            offset=event.message.offset,
        )
        await scores.send(key=event.key, value=score)
        metrics.EVENTS_OUT.labels(topic=settings.SCORES_TOPIC).inc()
        metrics.SCORE_LATENCY.observe(time.perf_counter() - started)
