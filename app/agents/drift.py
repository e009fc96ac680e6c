"""The drift agents: ``transactions`` and ``scores`` -> :class:`~app.drift.watch.DriftWatch`
(ADWIN over input features, the score stream and the error stream) -> ``drift-alerts``.

:func:`transactions_step` is the work on one batch of transactions, :func:`scores_step` on one batch
of scores; :func:`register` puts them on agents of their own (over the transactions and the scores
topics) unless the scoring agent does them: the first on each batch it takes (one pass over the
topic), the second on the scores it wrote, once confirmed (:func:`app.agents.scoring.register`). Either way a batch's alerts are confirmed by the broker before
its events are acknowledged, and so are the monitors' checkpoints written after it; one that is
refused stops the worker (:mod:`app.outputs`). :func:`publisher` is how alerts are sent, here and by
the central learner (its error stream: :mod:`app.drift.learner_errors`)."""
from __future__ import annotations

from typing import Awaitable, Callable, Iterable

from app import metrics, outputs
from app.drift.watch import DriftWatch
from app.records import DriftAlert
from app.records.score import ScoreValue


def publisher(topic) -> Callable[[Iterable[DriftAlert]], Awaitable[None]]:
    """``publish(alerts)``: send ``alerts`` to the drift-alerts ``topic`` (a Faust topic), await the
    broker's confirmation of them all (a refusal stops the worker), and count them in
    ``fraud_drift_alerts_total`` by stream."""
    name = topic.get_topic_name()

    async def publish(alerts: Iterable[DriftAlert]) -> None:
        alerts = list(alerts)
        sent = [await topic.send(key=(item.transaction_id or item.stream).encode(), value=item) for item in alerts]
        await outputs.confirmed(sent, name)
        for item in alerts:
            metrics.DRIFT_ALERTS.labels(stream=item.stream).inc()
        metrics.EVENTS_OUT.labels(topic=name).inc(len(sent))

    return publish


def transactions_step(topics, watch: DriftWatch, *, challengers: bool) -> Callable[[list], Awaitable[None]]:
    """``monitor(events)``: feed each transaction of the batch to ADWIN over its monitored input
    features (and, with ``challengers``, a running challenger learns the labelled ones), publish the
    alerts, then checkpoint when due and await the confirmation of both."""
    publish = publisher(topics.drift_alerts)
    done = metrics.AGENT_EVENTS.labels(agent="drift-transactions")

    async def monitor(events: list) -> None:
        await publish(await watch.observe_transactions(events, challengers))
        watch.transactions_done({event.message.partition for event in events}, challengers)
        await watch.confirm()  # the checkpoints it wrote
        done.inc(len(events))

    return monitor


def scores_step(topics, watch: DriftWatch) -> Callable[[list], Awaitable[None]]:
    """``monitor(scored)``: what the drift agent over the scores topic does with a batch of scores,
    for (score dict, its offset on the scores topic) pairs given by the scoring agent once the broker
    has confirmed them, in the order of the topic: ADWIN over the score and error streams, the alerts
    published, checkpoints when due, both confirmed. A worker that scores then reads no scores back."""
    publish = publisher(topics.drift_alerts)
    done = metrics.AGENT_EVENTS.labels(agent="drift-scores")

    async def monitor(scored: list) -> None:
        await publish(await watch.observe_scores_at((ScoreValue(score), offset) for score, offset in scored))
        watch.scores_done({score["partition"] for score, _ in scored})
        await watch.confirm()
        done.inc(len(scored))

    return monitor


def register(app, topics, watch: DriftWatch, *, batch_size: int, within_s: float, monitor_features: bool,
             challengers: bool, monitor_scores: bool) -> list:
    """Put the enabled drift agents on ``app``, in a worker that does not score (in one that does,
    the scoring agent does :func:`transactions_step` and :func:`scores_step`): over transactions
    when ``monitor_features`` or ``challengers``, over scores when ``monitor_scores``; the agents."""
    agents = []
    publish = publisher(topics.drift_alerts)

    if monitor_features or challengers:
        monitor = transactions_step(topics, watch, challengers=challengers)

        @app.agent(topics.transactions, name="app.agents.drift.monitor_transactions")
        async def monitor_transactions(stream):
            """ADWIN over the monitored input features of each transaction."""
            async for events in stream.take_events(batch_size, within=within_s):
                await monitor(events)

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
                metrics.AGENT_EVENTS.labels(agent="drift-scores").inc(len(events))

        agents.append(monitor_scores_)
    return agents
