"""The anomaly agent: ``transactions`` -> :class:`~app.anomaly.partitions.AnomalyDetectors` ->
``anomalies`` (the transactions whose Half-Space-Trees score passes the threshold).

:func:`detect_step` is the work on one batch of transactions; :func:`register` puts it on an agent
of its own, and a worker that also scores hands it to the scoring agent instead, which does it on
each batch it takes (one pass over the topic: :func:`app.agents.scoring.register`). The step queues
the batch's work behind the batches before it (:class:`~app.agents.in_order.InOrder`) and gives the
future of its end, so a detector's checkpoint, pickled in a worker thread, holds up the detectors
and the batches' acknowledgement, not the scoring of the batches that come meanwhile. A batch's
anomalies are confirmed by the broker before that future is done, and so are the detectors'
checkpoints written after it; one that is refused stops the worker (:mod:`app.outputs`). Events of
a partition revoked after their batch was queued are skipped: they are the new owner's."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from app import metrics, outputs
from app.agents.in_order import InOrder
from app.anomaly.partitions import AnomalyDetectors

log = logging.getLogger(__name__)

AGENT = "anomaly"  # its label in fraud_agent_events_total


def detect_step(topics, detectors: AnomalyDetectors, *,
                counts_input: bool) -> Callable[[list], Awaitable[asyncio.Future]]:
    """``detect(events)``: queue the batch's work behind the batches before it and give the future
    of its end. The work: score then learn each transaction of the batch, send the flagged ones to
    ``anomalies``, await their confirmation, then checkpoint when due (in a worker thread) and await
    that too. ``counts_input``: count the consumed transactions in ``fraud_events_in_total`` (when
    the scoring agent, which counts them too, does not run in this worker)."""
    topic_in = topics.transactions.get_topic_name()
    topic_out = topics.anomalies.get_topic_name()
    events_in = metrics.EVENTS_IN.labels(topic=topic_in)
    events_out = metrics.EVENTS_OUT.labels(topic=topic_out)
    done = metrics.AGENT_EVENTS.labels(agent=AGENT)
    lane = InOrder()

    async def work(batch: list, revocations: int) -> None:
        sent, partitions, skipped = [], set(), 0
        for event in batch:
            message = event.message
            if detectors.revoked_since(message.partition, revocations):  # queued before: the new owner's
                skipped += 1
                continue
            partitions.add(message.partition)
            await detectors.ready(message.partition, message.offset)
            anomaly = detectors.process(event.value, message.partition, message.offset)
            if anomaly is not None:
                sent.append(await topics.anomalies.send(key=anomaly.transaction_id.encode(), value=anomaly))
        await outputs.confirmed(sent, topic_out)
        events_out.inc(len(sent))
        if counts_input:
            events_in.inc(len(batch))
        await detectors.after_batch(partitions)
        await detectors.confirm()  # the card windows and checkpoints it wrote
        done.inc(len(batch) - skipped)
        if skipped:
            log.info("skipped %d transactions of %s taken before their partitions were revoked: the new owner "
                     "detects on them", skipped, topic_in)

    async def detect(batch: list) -> asyncio.Future:
        return lane.add(work(batch, detectors.revocations))

    return detect


def register(app, topics, detectors: AnomalyDetectors, *, batch_size: int, within_s: float, counts_input: bool):
    """Put the anomaly agent on ``app`` (:func:`detect_step` on each batch it takes); the agent."""
    detect = detect_step(topics, detectors, counts_input=counts_input)

    @app.agent(topics.transactions, name="app.agents.anomaly.detect_anomalies")
    async def detect_anomalies(stream):
        """Score then learn each transaction; send the flagged ones to ``anomalies``."""
        async for batch in stream.take_events(batch_size, within=within_s):
            await (await detect(batch))

    return detect_anomalies
