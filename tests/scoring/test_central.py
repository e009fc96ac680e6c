"""Central learning, the scorer's side: every partition predicts with the worker's replica (swapped
to the newest snapshot between two batches, its probabilities corrected for the snapshot's sample
rate) and learns nothing; each label met with its transaction's features becomes one example,
sent (and put in the batch's writes) with the source position of the message that produced it."""
from __future__ import annotations

import asyncio
import types

import pytest

import settings
from app import configured, metrics
from app.learning import OnlineLearner
from app.learning.examples import decode
from app.learning.model_host import LocalHost
from app.learning.subsampling import correct
from app.records import Transaction
from app.scoring import Item, Scorer
from app.scoring.replica import REPLICA_KEY, Replica
from app.scoring.staleness import StalenessBound
from app.state.pending import decode_pending
from tests.fakes import ChangelogTable

BASE = 1.7e9


def transaction(i: int, label: int | None = None) -> Transaction:
    return Transaction(transaction_id=f"tx-{i}", event_time=BASE + i, Amount=10.0 + i, Class=label,
                       **{f"V{j}": 0.1 * j * ((i % 7) - 3) for j in range(1, 29)})


def item(i: int, label: int | None = None, partition: int = 0) -> Item:
    return Item(transaction(i, label), f"tx-{i}".encode(), partition, i)


class Examples:
    """The examples topic: what was sent, decoded, in order; each send's future resolved."""

    def __init__(self) -> None:
        self.sent = []

    def __call__(self, key: bytes, value: bytes):
        example = decode(value)
        assert key == example.key
        self.sent.append(example)
        future = asyncio.get_running_loop().create_future()
        future.set_result(types.SimpleNamespace(topic="examples", offset=len(self.sent) - 1))  # record metadata
        return future

    def sources(self) -> list[tuple]:
        return [example.source for example in self.sent]


class Table(ChangelogTable):
    """A changelog-backed table whose records' sends give futures (the broker's confirmation)."""

    def send_changelog(self, partition, key, value, **kwargs):
        super().send_changelog(partition, key, value)
        future = asyncio.get_running_loop().create_future()
        future.set_result((partition, key))
        return future


def factory():
    return configured.model_factory(settings, kind="lr")


def trained(rows: int = 40) -> OnlineLearner:
    """A learner that learned a few rows (as the central learner would), one generation on."""
    learner = OnlineLearner(factory(), generation=1)
    for i in range(rows):
        tx = transaction(i)
        learner.learn(tx.features(), int(i % 5 == 0))
    return learner


def snapshot(learner: OnlineLearner, received: int, rate: float = 1.0, examples_offset: int | None = None):
    return types.SimpleNamespace(model_name=learner.name, version=f"{learner.name}-g{learner.generation}@{received}",
                                 received=received, learned=received, sample_rate=rate, model=learner.to_checkpoint(),
                                 examples_offset=received - 1 if examples_offset is None else examples_offset)


class Central:
    """A central-mode scorer on an in-process model host, with its tables, examples and snapshots."""

    def __init__(self, tables=None, host=None, staleness=None) -> None:
        self.host = host or LocalHost()
        self.snapshots: list = []
        self.examples = Examples()
        self.tables = tables or (Table(), Table(), Table())
        checkpoints, pending, parked = self.tables
        self.read_back_calls = 0

        async def start_host():
            return self.host

        async def read_back(*args):
            self.read_back_calls += 1
            return
            yield

        self.replica = Replica(factory(), newest=lambda: self.snapshots[-1] if self.snapshots else None)
        self.scorer = Scorer(start_host, checkpoints, pending, parked=parked, record=Transaction, read_back=read_back,
                             model_factory=factory(), replica=self.replica, send_example=self.examples,
                             staleness=staleness)

    async def score(self, items: list[Item]) -> tuple[list, list]:
        writes: list = []
        chunks = await self.scorer.submit(items)
        scores = [result async for chunk in self.scorer.scored(chunks, writes=writes) for _, result in chunk]
        self.scorer.after_batch({i.partition for i in items})
        return scores, writes


def test_scores_carry_the_replica_version_and_labelled_transactions_become_examples_not_learning():
    central = Central()

    async def run():
        return await central.score([item(0, 1), item(1), item(2, 0)])

    (first, second, third), writes = asyncio.run(run())
    assert [s["model_version"] for s in (first, second, third)] == ["lr-g0@0"] * 3
    assert [s["fraud_probability"] for s in (first, second, third)] == [0.5] * 3  # a fresh model, learning nothing
    assert central.host.learners.learners[REPLICA_KEY].events_learned == 0
    assert set(central.host.learners.learners) == {REPLICA_KEY}  # no model of the partition's own
    assert central.examples.sources() == [("transactions", 0, 0), ("transactions", 0, 2)]
    zero, two = central.examples.sent
    assert (zero.transaction_id, zero.label, zero.event_time) == ("tx-0", 1, BASE)
    assert zero.features == transaction(0).features() and two.label == 0
    assert len(writes) == 3  # two examples and the pending entry of tx-1, confirmed with the scores
    assert decode_pending(central.scorer.pending_table.data[b"tx-1"]).event_time == BASE + 1
    assert central.scorer.learners == {}  # nothing for a drift mitigation to reset


def test_the_replica_swaps_to_the_newest_snapshot_between_batches_and_corrects_its_probabilities():
    central = Central()
    learner = trained()
    expected = learner.predict_proba(transaction(50).features())

    async def run():
        before, _ = await central.score([item(49)])
        central.snapshots.append(snapshot(learner, received=1000, rate=0.1))
        after, _ = await central.score([item(50), item(51)])
        return before, after

    (before,), (after, _) = asyncio.run(run())
    assert before["model_version"] == "lr-g0@0"
    assert after["model_version"] == "lr-g1@1000" and after["events_learned"] == 1000
    assert after["fraud_probability"] == pytest.approx(correct(expected, 0.1))
    assert after["decision"] == (after["fraud_probability"] >= 0.5)
    assert central.replica.restored


def test_a_batch_in_flight_keeps_the_version_and_rate_it_was_submitted_with():
    central = Central()
    first, second = trained(20), trained(40)

    async def run():
        central.snapshots.append(snapshot(first, received=20, rate=1.0))
        chunks = await central.scorer.submit([item(60)])
        central.snapshots.append(snapshot(second, received=40, rate=0.5))
        later = await central.scorer.submit([item(61)])
        old = [r async for chunk in central.scorer.scored(chunks) for _, r in chunk]
        new = [r async for chunk in central.scorer.scored(later) for _, r in chunk]
        return old + new

    old, new = asyncio.run(run())
    assert old["model_version"] == "lr-g1@20"
    assert old["fraud_probability"] == pytest.approx(first.predict_proba(transaction(60).features()))
    assert new["model_version"] == "lr-g1@40"
    assert new["fraud_probability"] == pytest.approx(correct(second.predict_proba(transaction(61).features()), 0.5))


def test_a_late_label_becomes_an_example_with_the_label_position_and_its_pending_entry_goes():
    central = Central()

    async def run():
        await central.score([item(0), item(1)])
        writes: list = []
        outcome = await central.scorer.plan_label(b"tx-1", 1, 0, 7, writes=writes, event_time=BASE + 1)
        again = await central.scorer.plan_label(b"tx-1", 1, 0, 7, writes=[], event_time=BASE + 1)
        return outcome, again, writes

    outcome, again, writes = asyncio.run(run())
    assert outcome == ("learned", None)  # its example sent; no operation for the model host
    assert again[0] != "learned"  # the same label again (a redelivery): its entry is gone, no second example
    example, = central.examples.sent
    assert (example.transaction_id, example.label, example.source) == ("tx-1", 1, ("labels", 0, 7))
    assert example.features == transaction(1).features() and example.event_time == BASE + 1
    assert b"tx-1" not in central.scorer.pending_table.data
    assert central.scorer.pending_table.written[-1] == (0, b"tx-1", None)
    assert len(writes) == 2  # the example and the entry's tombstone, confirmed before the label is acked
    state = central.scorer.partitions[0]
    assert state.evaluator.count == 1 and state.labelled_since_checkpoint == []


def test_a_parked_label_becomes_an_example_when_its_transaction_comes_and_the_parked_label_goes():
    central = Central()
    learned_before = metrics.LABELS_PARKED.labels(event="learned")._value.get()

    async def run():
        await central.score([item(0)])
        outcome = await central.scorer.plan_label(b"tx-3", 1, 0, 4, writes=[], event_time=BASE + 3)
        _, writes = await central.score([item(3)])
        return outcome, writes

    outcome, writes = asyncio.run(run())
    assert outcome == ("parked", None)
    example, = central.examples.sent
    assert (example.transaction_id, example.label, example.source) == ("tx-3", 1, ("transactions", 0, 3))
    assert b"tx-3" not in central.scorer.parked_table.data and b"tx-3" not in central.scorer.pending_table.data
    assert len(writes) == 2  # the example and the parked label's tombstone
    state = central.scorer.partitions[0]
    assert len(state.parked) == 0 and state.unparked_since_checkpoint == []
    assert metrics.LABELS_PARKED.labels(event="learned")._value.get() == learned_before + 1


def test_a_label_for_a_transaction_with_the_model_host_waits_so_examples_keep_the_label_order():
    """The label of a transaction submitted but not yet scored is neither parked nor lost: it waits
    for the score, and its example comes after those of the labels before it."""
    central = Central()

    async def run():
        await central.score([item(0)])
        chunks = await central.scorer.submit([item(1)])  # with the model host
        first = asyncio.ensure_future(central.scorer.plan_label(b"tx-1", 1, 0, 10, writes=[], event_time=BASE + 1))
        await asyncio.sleep(0.05)
        assert not first.done() and b"tx-1" not in central.scorer.parked_table.data
        [r async for chunk in central.scorer.scored(chunks) for _, r in chunk]
        outcome = await first
        second = await central.scorer.plan_label(b"tx-0", 0, 0, 11, writes=[], event_time=BASE)
        return outcome, second

    assert asyncio.run(run()) == (("learned", None), ("learned", None))
    assert central.examples.sources() == [("labels", 0, 10), ("labels", 0, 11)]


def test_a_restart_scores_redelivered_transactions_again_and_writes_their_examples_again_reading_nothing_back():
    tables = (Table(), Table(), Table())
    first = Central(tables)

    async def before_crash():
        await first.score([item(0, 1), item(1), item(2, 0)])

    asyncio.run(before_crash())
    second = Central(tables)  # a new worker on the same tables: the batch was not acknowledged

    async def after_restart():
        scores, _ = await second.score([item(0, 1), item(1), item(2, 0)])
        return scores

    scores = asyncio.run(after_restart())
    assert len(scores) == 3 and all(not isinstance(s, Exception) for s in scores)
    assert second.examples.sources() == first.examples.sources() == [("transactions", 0, 0), ("transactions", 0, 2)]
    assert second.read_back_calls == 0 and not second.scorer.needs_catch_up({0})
    assert tables[0].written == []  # no model checkpoint is ever written
    assert b"tx-1" in second.scorer.pending_table.data


def test_giving_up_a_partition_leaves_the_replica_to_the_others():
    central = Central()

    async def run():
        await central.score([item(0, 1, partition=0), item(1, 0, partition=1)])
        await central.scorer.revoked({"transactions": {0}})
        scores, _ = await central.score([item(2, 1, partition=1)])
        await central.scorer.close()
        return scores

    (score,) = asyncio.run(run())
    assert score["model_version"] == "lr-g0@0" and score["partition"] == 1
    assert central.examples.sources() == [("transactions", 0, 0), ("transactions", 1, 1), ("transactions", 1, 2)]
    assert central.scorer.partitions == {}


def test_a_snapshot_the_model_host_cannot_load_is_refused_and_the_replica_stays():
    central = Central()
    rejected = metrics.STATE_REJECTED.labels(state="model snapshot", reason="load")
    before = rejected._value.get()

    async def run():
        await central.score([item(0)])
        central.snapshots.append(types.SimpleNamespace(model_name="lr", version="lr-g1@5", received=5, learned=5,
                                                       sample_rate=1.0, model=b"not a checkpoint"))
        scores, _ = await central.score([item(1)])
        again, _ = await central.score([item(2)])
        return scores + again

    first, second = asyncio.run(run())
    assert first["model_version"] == second["model_version"] == "lr-g0@0"
    assert rejected._value.get() == before + 1  # tried once, not at every batch


def test_central_learning_needs_somewhere_to_send_the_examples():
    with pytest.raises(ValueError, match="send_example"):
        Scorer(LocalHost, ChangelogTable(), ChangelogTable(), model_factory=factory(), replica=Replica(factory()))


def test_post_score_predicts_with_the_replica_as_the_stream_does():
    from app import http_score

    central = Central()
    learner = trained()
    tx = transaction(5)
    value = {"transaction_id": "tx-5", "event_time": tx.event_time, "Amount": tx.Amount,
             **{f"V{j}": getattr(tx, f"V{j}") for j in range(1, 29)}}

    async def run():
        central.snapshots.append(snapshot(learner, received=40, rate=0.5))
        stream, _ = await central.score([item(4)])
        return stream[0], await http_score.predict(central.scorer, 0, value)

    stream, answer = asyncio.run(run())
    assert answer["model_version"] == stream["model_version"] == "lr-g1@40" and answer["events_learned"] == 40
    assert answer["fraud_probability"] == pytest.approx(correct(learner.predict_proba(tx.features()), 0.5))


def test_the_replica_opens_once_the_snapshots_are_read_so_a_joining_worker_scores_with_the_learners_model():
    central = Central()
    learner = trained()
    read = []
    central.replica.ready = lambda: bool(read)

    async def follower_reads_the_topic():
        await asyncio.sleep(0.2)
        central.snapshots.append(snapshot(learner, received=40))
        read.append(True)

    async def run():
        reading = asyncio.ensure_future(follower_reads_the_topic())
        scores, _ = await central.score([item(0)])
        await reading
        return scores

    (score,) = asyncio.run(run())
    assert score["model_version"] == "lr-g1@40"


def test_a_replica_whose_snapshots_are_not_read_in_time_serves_its_own_model():
    central = Central()
    central.replica.ready, central.replica.ready_timeout_s = (lambda: False), 0.1

    (score,), _ = asyncio.run(central.score([item(0)]))
    assert score["model_version"] == "lr-g0@0"


def test_with_a_staleness_bound_a_batch_waits_for_the_snapshot_that_has_taken_in_the_examples_sent():
    central = Central(staleness=StalenessBound(max_examples=1, max_wait_s=30.0))
    learner = trained()

    async def run():
        await central.score([item(0, 0), item(1, 1), item(2, 0)])  # examples at offsets 0, 1, 2
        held = asyncio.ensure_future(central.score([item(3, 0)]))
        await asyncio.sleep(0.1)
        waiting = not held.done()
        central.snapshots.append(snapshot(learner, received=2, examples_offset=1))  # 1 behind: within the bound
        (score,), _ = await held
        return waiting, score

    waiting, score = asyncio.run(run())
    assert waiting  # 3 examples sent, none taken in by a snapshot: more than 1 behind
    assert score["model_version"] == "lr-g1@2"  # scored by the snapshot it waited for
    assert central.scorer.staleness.timeouts == 0 and central.scorer.staleness.sent_offset == 3


def test_a_staleness_bound_gives_up_after_its_longest_wait_and_scores_with_the_replica_it_has():
    central = Central(staleness=StalenessBound(max_examples=0, max_wait_s=0.05))
    timeouts = metrics.STALENESS_TIMEOUTS._value.get()

    async def run():
        await central.score([item(0, 1)])
        return await central.score([item(1, 0)])

    (score,), _ = asyncio.run(run())
    assert score["model_version"] == "lr-g0@0"  # no learner: scored all the same
    assert central.scorer.staleness.timeouts == 1
    assert metrics.STALENESS_TIMEOUTS._value.get() == timeouts + 1
    assert metrics.REPLICA_LAG._value.get() == 1  # offset 0 sent, no snapshot


def test_with_a_staleness_bound_and_no_snapshot_yet_the_first_transaction_is_submitted_alone():
    """A replica that learned nothing scores every transaction alike: the first comes alone, and the
    bound (0 until the first snapshot) holds the rest for the learner's first snapshot."""
    def events(first: int, n: int):
        return [types.SimpleNamespace(value=transaction(i, 0), message=types.SimpleNamespace(partition=0, offset=i))
                for i in range(first, first + n)]

    async def lists(scorer, batch):
        return [[it.offset for it in items] async for items in scorer.item_batches(batch)]

    bounded = Central(staleness=StalenessBound(max_examples=100, max_wait_s=1.0))
    assert asyncio.run(lists(bounded.scorer, events(0, 4))) == [[0], [1, 2, 3]]
    bounded.snapshots.append(snapshot(trained(), received=1))
    assert asyncio.run(lists(bounded.scorer, events(4, 3))) == [[4, 5, 6]]  # a snapshot: the batch whole
    unbounded = Central()
    assert asyncio.run(lists(unbounded.scorer, events(0, 3))) == [[0, 1, 2]]
