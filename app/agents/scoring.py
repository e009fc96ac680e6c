"""The scoring agents: ``transactions`` -> :class:`~app.scoring.Scorer` -> ``scores``, and
``labels`` -> the scorer's late learning (a label whose transaction has not come is parked
until it does: see :mod:`app.scoring.scorer`). A batch of labels is learned behind the transactions
sent to the model host before it, so several are in flight, acknowledged in order once learned:
one at a time, the labels would fall behind a busy scorer.

:func:`register` puts them on a Faust app. Transactions come in batches (``batch_size``,
``within_s``; with a model process taken in bulk by :func:`~app.agents.take.take_batches`): each
batch goes to the model host as soon as it is taken, its scores are sent once they have all come
back (a record batch per partition) while the sends of up to ``in_flight`` batches before it are
still being confirmed, and a batch's events are acknowledged only once its scores are confirmed
by the broker and the batch before it is done (at-least-once, in order); a send the broker does
not confirm stops the worker (:mod:`app.outputs`), so an unacknowledged batch never blocks the
commits of a worker that looks healthy. With the models in this process (``in_process``), each
batch is scored and sent before the next is taken. With an :class:`~app.agents.alignment.Aligner`,
the batches taken are held there and what it releases, in step in event time across the worker's
partitions, is scored as above.

The other agents' work on the same transactions (``beside``: anomaly detection, drift monitoring)
is done on each batch before it is scored, so that the worker reads and decodes each transaction
once for all of them. A step either has its outputs confirmed before it returns, or returns what is
left of its work (an awaitable: the anomaly detection, which goes on in the background behind the
batches before it, see :mod:`app.agents.anomaly`); either way the batch is acknowledged only once
its steps are done, and meanwhile the batch is scored and its scores sent. ``after_scores`` (the
drift monitoring of the scores) is given each batch's scores with their offsets on the scores
topic once the broker has confirmed them, batch after batch in the topic's order, before the batch
is acknowledged: the worker does not read its own scores back.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Awaitable, Callable, Sequence

from app import metrics, outputs
from app.agents.alignment import Aligner
from app.agents.take import take_batches
from app.dead_letters import processing_failed
from app.record_batches import RecordBatches
from app.records import Score
from app.serialization.errors import DecodeError
from app.scoring import Scorer

log = logging.getLogger(__name__)


def register(app, topics, scorer: Scorer, *, batch_size: int, within_s: float, labels_within_s: float,
             in_flight: int, in_process: bool, report_interval_s: float, label_wait_max_s: float = 10.0,
             labels_in_flight: int = 1,
             aligner: Aligner | None = None, release_check_s: float = 0.05,
             beside: Sequence[Callable[[list], Awaitable[object]]] = (),
             after_scores: Callable[[list], Awaitable[None]] | None = None) -> None:
    """Put the scoring agents, the model host's start and the prequential report on ``app``. With an
    ``aligner`` (model process only) the transactions taken are held there and scored as it
    releases them, in step in event time; it is asked every ``release_check_s`` when none come.
    ``beside``: steps awaited on each batch of transactions before it is scored; ``after_scores``: a
    step awaited on each batch's scores once confirmed (see the module). ``labels_in_flight``: how
    many batches of late labels may be being learned while the next is planned."""
    score_codec = topics.codec(topics.scores.get_topic_name(), Score)
    send = ScoreSender(app, topics, score_codec.dumps, after_scores)

    @app.agent(topics.transactions, name="app.agents.scoring.score_transactions")
    async def score_transactions(stream):
        """Score each transaction, then learn it (in-event label) or keep it pending (label to come)."""
        if in_process:
            async for batch in stream.take_events(batch_size, within=within_s):
                started = time.perf_counter()  # take_events acknowledges the batch once this returns
                for rest in await beside_steps(beside, batch):
                    await rest
                async for items in scorer.item_batches(batch):  # a catch-up first, in lists of bounded size
                    await send(stream, events_of(items), await scorer.submit(items), scorer, started, ack=False)
            return
        sending: collections.deque[asyncio.Future] = collections.deque()  # oldest first
        one_at_a_time = asyncio.Lock()  # the stream's batches and the aligner's releases take turns

        async def score(batch) -> None:
            started = time.perf_counter()
            rest = await beside_steps(beside, batch)
            if sending and scorer.needs_catch_up({event.message.partition for event in batch}):
                while sending:  # what the learners have learned must be final before a catch-up
                    await sending.popleft()
            async for items in scorer.item_batches(batch):  # a catch-up first, in lists of bounded size
                chunks = await scorer.submit(items)
                while sending and (sending[0].done() or len(sending) >= in_flight):
                    await sending.popleft()  # raises if that batch's scores could not be sent: it is not acked
                task = asyncio.ensure_future(send(stream, events_of(items), chunks, scorer, started,
                                                  after=sending[-1] if sending else None, beside=rest))
                task.add_done_callback(_log_send_failure)
                sending.append(task)

        async def score_released() -> None:
            while batch := aligner.release(batch_size):
                with aligner.busy():
                    await score(batch)

        async def release_when_idle() -> None:
            """Held events come out when no new event comes (the slowest partition ended or stalled)."""
            while True:
                await asyncio.sleep(release_check_s)
                if aligner.drop_if_rebalancing():
                    continue
                if aligner.held and not one_at_a_time.locked():
                    async with one_at_a_time:
                        await score_released()

        releasing = asyncio.ensure_future(release_when_idle()) if aligner is not None else None
        try:
            async for batch in take_batches(stream, batch_size, within_s):
                if releasing is not None and releasing.done():
                    releasing.result()  # raises what stopped it (a batch whose scores could not be sent)
                async with one_at_a_time:
                    if aligner is None:
                        await score(batch)
                    else:
                        aligner.admit(batch)
                        await score_released()
        finally:
            if releasing is not None:
                releasing.cancel()

    @app.agent(topics.labels, name="app.agents.scoring.learn_labels")
    async def learn_labels(stream):
        """Learn each late label with the features its transaction was scored on: a batch's labels
        are planned and sent to the model host while up to ``labels_in_flight`` batches before it
        are still being learned; each is acknowledged once learned, in order."""
        learning: collections.deque[asyncio.Future] = collections.deque()  # oldest first
        async for batch in take_batches(stream, batch_size, labels_within_s):
            finish = await plan_label_batch(scorer, topics, batch, label_wait_max_s)
            while learning and (learning[0].done() or len(learning) >= labels_in_flight):
                await learning.popleft()  # raises if that batch could not be finished: it is not acked
            task = asyncio.ensure_future(
                _acked(stream, batch, finish, after=learning[-1] if learning else None))
            task.add_done_callback(_log_learn_failure)
            learning.append(task)

    @app.task
    async def start_model_host() -> None:
        """Start the model host with the worker, not at the first transaction."""
        await scorer.host()

    @app.timer(interval=report_interval_s, name="app.agents.scoring.report_prequential")
    async def report_prequential() -> None:
        await scorer.report_prequential()


class ScoreSender:
    """Sends a batch's scores, once the model host has given them all, as one record batch per
    partition (:class:`~app.record_batches.RecordBatches`), awaits the broker's confirmation, then
    (once the batch before, ``after``, is done) hands the scores and their offsets to
    ``after_scores`` (if any) and acknowledges the batch. ``producer``: what gives the Kafka
    producer (``aiokafka.AIOKafkaProducer``; by default Faust's, which exists once the app has started)."""

    def __init__(self, app, topics, dumps, after_scores: Callable[[list], Awaitable[None]] | None = None,
                 producer: Callable[[], object] | None = None) -> None:
        self.app, self.topics, self.dumps, self.after_scores = app, topics, dumps, after_scores
        self.producer = producer or (lambda: app.producer._ensure_producer())  # Faust's aiokafka producer
        self.topic_in = topics.transactions.get_topic_name()
        self.topic_out = topics.scores.get_topic_name()

    async def __call__(self, stream, batch, chunks, scorer: Scorer, started: float, ack: bool = True,
                       after: asyncio.Future | None = None, beside: Sequence[Awaitable] = ()) -> None:
        """Send the scores of ``chunks``, await their confirmation and what is left of the other
        agents' work on the batch (``beside``), then, once ``after`` is done, acknowledge ``batch``."""
        dumps, topic_out = self.dumps, self.topic_out
        batches = RecordBatches(self.producer(), topic_out)
        writes, touched, flagged, written = [], set(), 0, []
        async for chunk in scorer.scored(chunks, writes=writes):  # changelog records (pending, cards), terminal labels
            for item, score in chunk:
                if isinstance(score, Exception):  # one bad event must not stop the partition
                    log.error("scoring failed at topic %s partition %s offset %s: %s",
                              self.topic_in, item.partition, item.offset, score)
                    if item.event is not None:
                        reason = score if isinstance(score, DecodeError) else processing_failed(score)
                        await self.topics.dead_letters.send(reason, item.event.message)
                    continue
                # the transaction's partition: the drift agent finds a score's state by its partition
                batches.add(item.partition, item.key, dumps(score))
                written.append(score)
                metrics.SCORE_LATENCY.observe(time.perf_counter() - started)
                metrics.FRAUD_SCORE.observe(score["fraud_probability"])
                flagged += score["decision"]
                lateness = score["processing_time"] - item.tx.event_time
                if 0.0 <= lateness < 3600.0:
                    metrics.EVENT_TO_SCORE_LATENCY.observe(lateness)
                touched.add(item.partition)
        # the broker's confirmation of this batch's scores; one that failed stops the worker (app.outputs)
        sent = await outputs.confirmed(await batches.send(), topic_out)
        await outputs.confirmed(writes, "the scorer's changelogs (pending features, card windows) and terminal labels")
        for rest in beside:
            await rest  # raises if the other agents' work on the batch failed: it is not acked
        if after is not None:
            await after  # raises if the batch before failed: this one is not acked either
        if self.after_scores is not None and written:  # in the topic's order: the batch before has had its turn
            await self.after_scores(list(zip(written, batches.offsets(sent))))
        if ack:
            for event in batch:
                await stream.ack(event)
        scorer.after_batch(touched)
        metrics.EVENTS_IN.labels(topic=self.topic_in).inc(len(batch))
        metrics.AGENT_EVENTS.labels(agent="scoring").inc(len(batch))
        metrics.EVENTS_OUT.labels(topic=topic_out).inc(len(written))
        metrics.DECISIONS.labels(decision="fraud").inc(flagged)
        metrics.DECISIONS.labels(decision="genuine").inc(len(written) - flagged)


async def learn_label_batch(scorer: Scorer, topics, batch, label_wait_max_s: float = 10.0) -> None:
    """Plan each label of ``batch`` (after its partition's catch-up), learn them, dead-letter the
    ones that failed; the terminal labels sent meanwhile are confirmed before the batch returns
    (and is acknowledged)."""
    finish = await plan_label_batch(scorer, topics, batch, label_wait_max_s)
    await finish()


async def plan_label_batch(scorer: Scorer, topics, batch,
                           label_wait_max_s: float = 10.0) -> Callable[[], Awaitable[None]]:
    """Plan each label of ``batch`` (after its partition's catch-up) and send their learning to the
    model host; what finishes the batch: awaiting the results (dead-lettering the labels whose
    learning failed) and the confirmation of its records (parked labels, terminal labels). The host
    applies operations in the order they were sent, so a batch planned while the one before is
    being learned learns after it."""
    planned: list[tuple[int, tuple, object]] = []
    writes: list = []
    touched: set[int] = set()
    deadline = time.monotonic() + label_wait_max_s  # the whole batch waits at most this long for transactions
    for event in batch:
        label, message = event.value, event.message
        partition, offset = message.partition, message.offset
        key = label.transaction_id.encode()  # the payload's id: the Kafka key may be empty or another value
        await scorer.wait_for_transaction(partition, key, label.event_time, deadline)
        async for caught in scorer.caught_up_labels(partition, offset):  # learned list by list, before this label
            caught_ops = []
            for caught_key, caught_label, caught_offset, caught_time in caught:
                _, op = await scorer.plan_label(caught_key, caught_label, partition, caught_offset, writes=writes,
                                                event_time=caught_time)
                if op is not None:
                    caught_ops.append((partition, op, None))
            await scorer.learn(caught_ops)  # a failure is logged there; read back, it has no event to dead-letter
        try:
            _, op = await scorer.plan_label(key, int(label.label), partition, offset, writes=writes,
                                            event_time=label.event_time)
        except Exception as exc:
            log.exception("learning a label failed at topic %s partition %s offset %s", message.topic, partition, offset)
            await topics.dead_letters.send(processing_failed(exc), message)
            continue
        if op is not None:
            planned.append((partition, op, event))
        touched.add(partition)
    learned = await scorer.learn_soon(planned)

    async def finish() -> None:
        for event, error in await learned:
            if event is not None:
                await topics.dead_letters.send(processing_failed(error), event.message)
        await outputs.confirmed(writes, "the parked labels' changelog and the terminal labels")
        scorer.after_labels(touched)
        metrics.EVENTS_IN.labels(topic=topics.labels.get_topic_name()).inc(len(batch))

    return finish


async def _acked(stream, batch, finish: Callable[[], Awaitable[None]], after: asyncio.Future | None) -> None:
    """Finish a batch of labels, then (once the batch before, ``after``, is done) acknowledge it."""
    await finish()
    if after is not None:
        await after  # raises if the batch before failed: this one is not acked either
    for event in batch:
        await stream.ack(event)


async def beside_steps(steps: Sequence[Callable[[list], Awaitable[object]]], batch: list) -> list[Awaitable]:
    """Run each of ``steps`` on ``batch``, in turn; what is left of their work: the awaitables they
    returned (the batch is acknowledged once those are done)."""
    rest = []
    for step in steps:
        left = await step(batch)
        if left is not None:
            rest.append(left)
    return rest


def events_of(items) -> list:
    """The stream events among scorer items (read-back ones have none): what a send acknowledges."""
    return [item.event for item in items if item.event is not None]


def _log_send_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("sending a batch of scores failed: %r", future.exception())


def _log_learn_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("learning a batch of labels failed: %r", future.exception())
