"""The drift agents: ``transactions`` and ``scores`` -> :class:`~app.drift.watch.DriftWatch`
(ADWIN over input features, the score stream and the error stream) -> ``drift-alerts``.

A batch's alerts are confirmed by the broker before its events are acknowledged (Faust acknowledges
the events of ``take_events`` when the loop body returns), and so are the monitors' checkpoints
written after it; one that is refused stops the worker (:mod:`app.outputs`)."""
from __future__ import annotations

from app import metrics, outputs
from app.drift.watch import DriftWatch


def register(app, topics, watch: DriftWatch, *, batch_size: int, within_s: float, monitor_features: bool,
             challengers: bool, monitor_scores: bool) -> list:
    """Put the enabled drift agents on ``app``: over transactions when ``monitor_features`` or
    ``challengers`` (a running challenger learns the labelled ones), over scores when
    ``monitor_scores``; the agents."""
    agents = []
    alerts_topic = topics.drift_alerts.get_topic_name()

    async def publish(alerts) -> None:
        """Send ``alerts`` and await the broker's confirmation of them all."""
        alerts = list(alerts)
        sent = [await topics.drift_alerts.send(key=(item.transaction_id or item.stream).encode(), value=item)
                for item in alerts]
        await outputs.confirmed(sent, alerts_topic)
        for item in alerts:
            metrics.DRIFT_ALERTS.labels(stream=item.stream).inc()
        metrics.EVENTS_OUT.labels(topic=alerts_topic).inc(len(sent))

    if monitor_features or challengers:
        @app.agent(topics.transactions, name="app.agents.drift.monitor_transactions")
        async def monitor_transactions(stream):
            """ADWIN over the monitored input features of each transaction."""
            async for events in stream.take_events(batch_size, within=within_s):
                await publish(await watch.observe_transactions(events, challengers))
                watch.transactions_done({event.message.partition for event in events}, challengers)
                await watch.confirm()  # the checkpoints it wrote

        agents.append(monitor_transactions)

    if monitor_scores:
        @app.agent(topics.scores, name="app.agents.drift.monitor_scores")
        async def monitor_scores_(stream):
            """ADWIN over the fraud-score stream and the error stream of labelled scores."""
            topic_in = topics.scores.get_topic_name()
            async for events in stream.take_events(batch_size, within=within_s):
                await publish(await watch.observe_scores(events))
                watch.scores_done({event.value.partition for event in events})
                await watch.confirm()
                metrics.EVENTS_IN.labels(topic=topic_in).inc(len(events))

        agents.append(monitor_scores_)
    return agents
