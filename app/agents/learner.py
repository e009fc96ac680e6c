"""The central learner's agent: ``examples`` -> :class:`~app.learning.central_learner.CentralLearner` -> snapshots.

Registered only with ``LEARNING_MODE = "central"`` (``docs/scaleout.md``). Every worker subscribes
to the examples topic; it has one partition, so one worker of the group gets it and runs the
learner, and the group moves it like any partition. Each batch of examples goes to the learner,
which learns it and, when one is due, writes a snapshot and awaits its confirmation: the batch is
acknowledged (``take_events``) only after that, and after the drift alerts of the learner's own
error stream that the batch raised are confirmed (the learner sends them, before its snapshot,
through the sender it was built with: :func:`app.agents.drift.publisher`). A timer writes the
snapshot the time bound makes due when no batch comes; another publishes the learner's prequential
record (``fraud_prequential_metric`` with ``partition="central"``). A batch the consumer gave
before the partition was revoked is not learned: the partition's next owner reads it again.
"""
from __future__ import annotations

import logging

from app import metrics
from app.learning.central_learner import CentralLearner

log = logging.getLogger(__name__)


def register(app, examples_topic, learner: CentralLearner, *, batch_size: int, within_s: float,
             snapshot_check_s: float, report_interval_s: float) -> None:
    """Put the learner's agent, its snapshot timer and its prequential report on ``app``."""
    topic = examples_topic.get_topic_name()

    def owned() -> bool:
        return any(tp.topic == topic and tp.partition == 0 for tp in app.consumer.assignment())

    @app.agent(examples_topic, name="app.agents.learner.learn_examples")
    async def learn_examples(stream):
        """Predict then learn each example, in the topic's order; snapshot every K / T."""
        async for batch in stream.take_events(batch_size, within=within_s):
            if not owned():
                continue
            await learner.learn([(event.message.offset, event.value) for event in batch])
            metrics.EVENTS_IN.labels(topic=topic).inc(len(batch))
            last = batch[-1].message
            try:
                metrics.LEARNER_LAG.set(max(0, app.consumer.highwater(last.tp) - last.offset - 1))
            except Exception:  # noqa: BLE001 - a metric only
                log.debug("no highwater for %s", last.tp, exc_info=True)

    @app.timer(interval=snapshot_check_s, name="app.agents.learner.snapshot_when_due")
    async def snapshot_when_due() -> None:
        await learner.snapshot_if_due()

    @app.timer(interval=report_interval_s, name="app.agents.learner.report_prequential")
    async def report_prequential() -> None:
        await learner.report_prequential()
