"""The anomaly agent: ``transactions`` -> :class:`~app.anomaly.partitions.AnomalyDetectors` ->
``anomalies`` (the transactions whose Half-Space-Trees score passes the threshold).

A batch's anomalies are confirmed by the broker before its events are acknowledged (Faust
acknowledges the events of ``take_events`` when the loop body returns), and so are the detectors'
checkpoints written after it; one that is refused stops the worker (:mod:`app.outputs`)."""
from __future__ import annotations

from app import metrics, outputs
from app.anomaly.partitions import AnomalyDetectors


def register(app, topics, detectors: AnomalyDetectors, *, batch_size: int, within_s: float, counts_input: bool):
    """Put the anomaly agent on ``app``; ``counts_input``: count the consumed transactions (when
    the scoring agent, which counts them too, does not run in this worker)."""
    topic_in = topics.transactions.get_topic_name()

    @app.agent(topics.transactions, name="app.agents.anomaly.detect_anomalies")
    async def detect_anomalies(stream):
        """Score then learn each transaction; send the flagged ones to ``anomalies``."""
        topic_out = topics.anomalies.get_topic_name()
        events_out = metrics.EVENTS_OUT.labels(topic=topic_out)
        async for batch in stream.take_events(batch_size, within=within_s):
            sent = []
            for event in batch:
                message = event.message
                await detectors.ready(message.partition, message.offset)
                anomaly = detectors.process(event.value, message.partition, message.offset)
                if anomaly is not None:
                    sent.append(await topics.anomalies.send(key=anomaly.transaction_id.encode(), value=anomaly))
            await outputs.confirmed(sent, topic_out)
            events_out.inc(len(sent))
            if counts_input:
                metrics.EVENTS_IN.labels(topic=topic_in).inc(len(batch))
            detectors.after_batch({event.message.partition for event in batch})
            await detectors.confirm()  # the card windows and checkpoints it wrote

    return detect_anomalies
