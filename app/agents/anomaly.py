"""The anomaly agent: ``transactions`` -> :class:`~app.anomaly.partitions.AnomalyDetectors` ->
``anomalies`` (the transactions whose Half-Space-Trees score passes the threshold)."""
from __future__ import annotations

from app import metrics
from app.anomaly.partitions import AnomalyDetectors


def register(app, topics, detectors: AnomalyDetectors, *, batch_size: int, within_s: float, counts_input: bool):
    """Put the anomaly agent on ``app``; ``counts_input``: count the consumed transactions (when
    the scoring agent, which counts them too, does not run in this worker)."""
    topic_in = topics.transactions.get_topic_name()

    @app.agent(topics.transactions, name="app.agents.anomaly.detect_anomalies")
    async def detect_anomalies(stream):
        """Score then learn each transaction; send the flagged ones to ``anomalies``."""
        events_out = metrics.EVENTS_OUT.labels(topic=topics.anomalies.get_topic_name())
        async for batch in stream.take_events(batch_size, within=within_s):
            for event in batch:
                message = event.message
                await detectors.ready(message.partition, message.offset)
                anomaly = detectors.process(event.value, message.partition, message.offset, event)
                if anomaly is not None:
                    await topics.anomalies.send(key=anomaly.transaction_id.encode(), value=anomaly)
                    events_out.inc()
            if counts_input:
                metrics.EVENTS_IN.labels(topic=topic_in).inc(len(batch))
            detectors.after_batch({event.message.partition for event in batch})

    return detect_anomalies
