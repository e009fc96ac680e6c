"""Outputs the broker refuses stop the worker before their batch is acknowledged: anomalies, drift
alerts, dead letters and scores (app.outputs)."""
from __future__ import annotations

import asyncio
import types

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from app import outputs
from app.agents import anomaly as anomaly_agents
from app.agents import drift as drift_agents
from app.agents.scoring import ScoreSender
from app.anomaly import AnomalyDetector, FixedThreshold
from app.anomaly.partitions import AnomalyDetectors
from app.dead_letters import DeadLetters
from tests.agents.test_anomaly import transactions
from tests.fakes import ChangelogTable, SentRecords, agent_app, agent_topics

REFUSED = MessageSizeTooLargeError("the record is larger than the topic's max.message.bytes")


@pytest.fixture
def exits(monkeypatch):
    """The exit codes the worker would have stopped with (the process goes on in the test)."""
    codes = []
    monkeypatch.setattr(outputs, "_exit", codes.append)
    return codes


def test_confirmed_gives_the_metadata_and_stops_the_worker_when_a_send_failed(exits):
    async def run(refuse):
        topic = SentRecords("out", refuse=refuse)
        return await outputs.confirmed([await topic.send(key=b"k", value=i) for i in range(3)], "out")

    assert asyncio.run(run(None)) == [("out", 0), ("out", 1), ("out", 2)] and exits == []
    with pytest.raises(MessageSizeTooLargeError):
        asyncio.run(run(REFUSED))
    assert exits == [outputs.SEND_FAILED_EXIT_CODE]


def anomaly_agent(anomalies):
    app = agent_app("test-confirmed-anomaly")
    topics = agent_topics(app)
    topics.anomalies = anomalies
    table = ChangelogTable()
    detectors = AnomalyDetectors(table, lambda: AnomalyDetector(trees=5, height=6, window=20, warmup=20,
                                                                threshold=FixedThreshold(0.0), seed=1), every=1)
    return anomaly_agents.register(app, topics, detectors, batch_size=50, within_s=0.05, counts_input=True), table


async def put_all(agent, txs) -> None:
    async with agent.test_context() as running:
        for tx in txs:
            await running.put(key=tx.transaction_id.encode(), value=tx)
        await asyncio.sleep(0.3)  # the batch is taken after within_s


def test_a_refused_anomaly_stops_the_worker_before_the_batch_is_checkpointed(exits):
    agent, table = anomaly_agent(SentRecords("anomalies", refuse=REFUSED))
    try:
        asyncio.run(put_all(agent, transactions(50, seed=3)))
    except MessageSizeTooLargeError:
        pass  # the agent's crash, seen by the test context
    assert exits == [outputs.SEND_FAILED_EXIT_CODE]
    assert table.written == []  # the batch's upkeep (a checkpoint: every=1) never ran

    agent, table = anomaly_agent(SentRecords("anomalies"))
    asyncio.run(put_all(agent, transactions(50, seed=3)))
    assert exits == [outputs.SEND_FAILED_EXIT_CODE] and table.written  # confirmed: the batch went on


def test_refused_drift_alerts_stop_the_worker(exits):
    class Watch:
        async def observe_transactions(self, events, challengers):
            return [types.SimpleNamespace(stream="feature:Amount", transaction_id=e.value.transaction_id)
                    for e in events]

        def transactions_done(self, partitions, challengers):
            done.append(partitions)

    done = []
    app = agent_app("test-confirmed-drift")
    topics = agent_topics(app)
    topics.drift_alerts = SentRecords("drift-alerts", refuse=REFUSED)
    agent, = drift_agents.register(app, topics, Watch(), batch_size=10, within_s=0.05, monitor_features=True,
                                   challengers=False, monitor_scores=False)
    try:
        asyncio.run(put_all(agent, transactions(10, seed=4)))
    except MessageSizeTooLargeError:
        pass
    assert exits == [outputs.SEND_FAILED_EXIT_CODE] and done == []


def test_a_refused_dead_letter_stops_the_worker(exits):
    message = types.SimpleNamespace(topic="transactions", partition=0, offset=7, key=b"k", value=b"\x00bad",
                                    timestamp=1.0)

    async def run():
        await DeadLetters(SentRecords("dead-letters", refuse=REFUSED)).send(ValueError("bad"), message)

    with pytest.raises(MessageSizeTooLargeError):
        asyncio.run(run())
    assert exits == [outputs.SEND_FAILED_EXIT_CODE]


class _Producer:
    """A Kafka producer whose record batches the broker confirms, or refuses (``refuse``)."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse

    def create_batch(self):
        return _Builder()

    async def send_batch(self, builder, topic, *, partition):
        future = asyncio.get_running_loop().create_future()
        future.set_exception(REFUSED) if self.refuse else future.set_result(types.SimpleNamespace(offset=0))
        return future


class _Builder:
    def __init__(self) -> None:
        self.records = []

    def append(self, *, timestamp, key, value):
        self.records.append((key, value))
        return types.SimpleNamespace(offset=len(self.records) - 1)


class _Scorer:
    """What ScoreSender uses of a Scorer; ``refused_write``: a pending entry's changelog record (what
    ``Scorer.scored`` adds to ``writes``) that the broker refuses."""

    def __init__(self, refused_write: bool) -> None:
        self.refused_write, self.upkeep = refused_write, []

    async def scored(self, chunks, writes=None):
        if self.refused_write:
            refused = asyncio.get_running_loop().create_future()
            refused.set_exception(REFUSED)
            writes.append(refused)
        for chunk in chunks:
            yield chunk

    def after_batch(self, touched):
        self.upkeep.append(touched)


@pytest.mark.parametrize("refused", ["score", "pending write"])
def test_a_refused_output_stops_the_worker_and_the_batch_is_not_acknowledged(exits, refused):
    """A score, or the features an unlabelled transaction waits with (they go to the pending table's
    changelog with the batch's scores), that the broker refuses stops the worker before the batch is
    acknowledged (its label would otherwise find nothing to learn) and before the batch's upkeep."""
    acked = []

    class Stream:
        async def ack(self, event):
            acked.append(event)

    scorer = _Scorer(refused_write=refused == "pending write")
    topics = types.SimpleNamespace(transactions=SentRecords("transactions"), scores=SentRecords("scores"))
    producer = _Producer(refuse=refused == "score")
    send = ScoreSender(types.SimpleNamespace(), topics, dumps=lambda score: b"score", producer=lambda: producer)
    item = types.SimpleNamespace(key=b"tx-1", partition=0, offset=0, tx=types.SimpleNamespace(event_time=0.0))
    score = {"fraud_probability": 0.1, "decision": False, "processing_time": 1.0}

    with pytest.raises(MessageSizeTooLargeError):
        asyncio.run(send(Stream(), ["event"], [[(item, score)]], scorer, started=0.0))
    assert exits == [outputs.SEND_FAILED_EXIT_CODE] and acked == [] and scorer.upkeep == []


@pytest.mark.parametrize("beside", ["done", "failed"])
def test_the_scores_go_out_before_the_other_agents_are_done_and_the_batch_waits_for_them(exits, beside):
    """What is left of the other agents' work on a batch (the anomaly detection, behind a
    detector's checkpoint) does not hold its scores back, but the batch is acknowledged only once it
    is done, and not at all if it failed."""
    acked = []

    class Stream:
        async def ack(self, event):
            acked.append(event)

    async def run():
        scorer, producer = _Scorer(refused_write=False), _Producer(refuse=False)
        topics = types.SimpleNamespace(transactions=SentRecords("transactions"), scores=SentRecords("scores"))
        sent = []
        real_send_batch = producer.send_batch

        async def send_batch(builder, topic, *, partition):
            sent.extend(builder.records)
            return await real_send_batch(builder, topic, partition=partition)

        producer.send_batch = send_batch
        send = ScoreSender(types.SimpleNamespace(), topics, dumps=lambda score: b"score", producer=lambda: producer)
        item = types.SimpleNamespace(key=b"tx-1", partition=0, offset=0, tx=types.SimpleNamespace(event_time=0.0))
        score = {"fraud_probability": 0.1, "decision": False, "processing_time": 1.0}
        rest = asyncio.get_running_loop().create_future()
        sending = asyncio.ensure_future(send(Stream(), ["event"], [[(item, score)]], scorer, started=0.0,
                                             beside=[rest]))
        await asyncio.sleep(0.02)
        scores_out, acked_before = list(sent), list(acked)
        if beside == "done":
            rest.set_result(None)
            await sending
        else:
            rest.set_exception(ConnectionError("the anomalies were refused"))
            with pytest.raises(ConnectionError):
                await sending
        return scores_out, acked_before

    scores_out, acked_before = asyncio.run(run())
    assert scores_out == [(b"tx-1", b"score")] and acked_before == []
    assert acked == (["event"] if beside == "done" else [])


class Order:
    """Records, in order, the dead letters sent and their confirmations."""

    def __init__(self, refuse: Exception | None = None) -> None:
        self.refuse, self.events = refuse, []

    def get_topic_name(self) -> str:
        return "dead-letters"

    async def send(self, key=None, value=None, **kwargs):
        self.events.append(("sent", value.reason))
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _: self.events.append(("confirmed", value.reason)))
        if self.refuse is not None:
            future.set_exception(self.refuse)
        else:
            future.set_result("metadata")
        return future


@pytest.mark.parametrize("refuse", [None, REFUSED])
def test_a_message_that_does_not_decode_is_dead_lettered_before_its_decode_error_reaches_faust(exits, refuse):
    from faust.exceptions import ValueDecodeError
    from faust.types import TP

    from app.dead_letters import DeadLetteringTopic
    from app.records import Transaction

    sink = Order(refuse)
    topic = DeadLetteringTopic(agent_app("test-dead-lettering"), topics=["transactions"], key_type=bytes,
                               value_type=Transaction, key_serializer="raw", value_serializer="json",
                               dead_letters=DeadLetters(sink))
    message = types.SimpleNamespace(topic="transactions", partition=0, offset=3, key=b"k", value=b"not json",
                                    timestamp=1.0, headers=[], tp=TP("transactions", 0))

    async def decode():
        try:
            await topic.decode(message, propagate=True)  # what Faust's conductor calls, before it acknowledges
        except ValueDecodeError:
            sink.events.append(("raised", None))  # only now would Faust acknowledge the message
        await topic.on_value_decode_error(ValueError("again"), message)  # Faust's report: sent once already

    if refuse is None:
        asyncio.run(decode())
        assert sink.events == [("sent", "schema-mismatch"), ("confirmed", "schema-mismatch"), ("raised", None)]
        assert exits == []
    else:
        with pytest.raises(MessageSizeTooLargeError):
            asyncio.run(decode())
        assert ("raised", None) not in sink.events and exits == [outputs.SEND_FAILED_EXIT_CODE]
