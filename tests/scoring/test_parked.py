"""Labels that come before their transaction are parked and learned exactly once when it is scored:
right away, after a label parked while its transaction was with the model host, and after a crash
between the learning and the checkpoint; the parked label goes once a checkpoint covers it."""
from __future__ import annotations

import asyncio
import time

import settings
from app import configured, metrics
from app.learning.model_host import LocalHost
from app.records import Transaction
from app.scoring import Item, Scorer
from app.state.parked import decode_parked
from tests.fakes import ChangelogTable

BASE = 1.7e9


async def local_host():
    return LocalHost()


def transaction(i: int) -> Transaction:
    return Transaction(transaction_id=f"tx-{i}", event_time=BASE + i, Amount=10.0 + i,
                       **{f"V{j}": 0.1 * j * (i + 1) for j in range(1, 29)})


def make_scorer(tables=None, read_back=None) -> Scorer:
    checkpoints, pending, parked = tables or (ChangelogTable(), ChangelogTable(), ChangelogTable())
    return Scorer(local_host, checkpoints, pending, parked=parked, record=Transaction, read_back=read_back,
                  model_factory=configured.model_factory(settings, kind="lr"))


async def score(scorer: Scorer, items: list[Item]) -> list:
    chunks = await scorer.submit(items)
    return [result async for chunk in scorer.scored(chunks) for _, result in chunk]


class Event:
    """A stream event as the scorer reads it."""

    def __init__(self, tx: Transaction, offset: int) -> None:
        self.value = tx
        self.message = type("Message", (), {"partition": 0, "offset": offset})()


def parked_count(event: str) -> float:
    return metrics.LABELS_PARKED.labels(event=event)._value.get()


def test_a_label_far_ahead_is_parked_and_learned_once_when_its_transaction_is_scored():
    scorer = make_scorer()
    learned_before = parked_count("learned")

    async def run():
        await score(scorer, [Item(transaction(0), b"tx-0", 0, 0)])  # the partition's first transaction
        outcome, op = await scorer.plan_label(b"tx-9", 1, 0, 0, event_time=BASE + 9)
        assert (outcome, op) == ("parked", None)
        assert decode_parked(scorer.parked_table.data[b"tx-9"]).label == 1
        for i in range(1, 10):
            await score(scorer, [Item(transaction(i), f"tx-{i}".encode(), 0, i)])
        return scorer.partitions[0]

    state = asyncio.run(run())
    assert state.learner.events_learned == 1  # tx-9 with its parked label, the others wait for theirs
    assert b"tx-9" not in state.pending and len(state.pending) == 9 and len(state.parked) == 0
    assert state.evaluator.count == 1
    assert parked_count("learned") == learned_before + 1
    assert b"tx-9" in scorer.parked_table.data  # until a checkpoint covers the learning

    asyncio.run(scorer.states.checkpoint(0))
    assert b"tx-9" not in scorer.parked_table.data
    assert scorer.parked_table.written[-1] == (0, b"tx-9", None)  # its tombstone, after the checkpoint


def test_a_label_parked_while_its_transaction_is_with_the_model_host_is_learned_once_it_is_scored():
    scorer = make_scorer()

    async def run():
        await score(scorer, [Item(transaction(0), b"tx-0", 0, 0)])
        chunks = await scorer.submit([Item(transaction(1), b"tx-1", 0, 1)])  # planned without a label
        outcome, _ = await scorer.plan_label(b"tx-1", 0, 0, 0, event_time=BASE + 1)
        scored = [result async for chunk in scorer.scored(chunks) for _, result in chunk]
        return outcome, scored, scorer.partitions[0]

    outcome, scored, state = asyncio.run(run())
    assert outcome == "parked" and isinstance(scored[0], dict)
    assert state.learner.events_learned == 1 and state.evaluator.count == 1
    assert b"tx-1" not in state.pending and len(state.parked) == 0  # learned, not left waiting for the label
    assert state.unparked_since_checkpoint == [b"tx-1"]


def test_a_crash_between_learning_from_the_park_and_the_checkpoint_learns_it_again_once():
    tables = (ChangelogTable(), ChangelogTable(), ChangelogTable())
    first = make_scorer(tables)
    txs = [transaction(i) for i in range(3)]

    async def before_the_crash():
        await score(first, [Item(txs[0], b"tx-0", 0, 0)])
        assert (await first.plan_label(b"tx-1", 1, 0, 0, event_time=txs[1].event_time))[0] == "parked"
        await first.states.checkpoint(0)  # covers tx-0 and the parked label, not tx-1
        await score(first, [Item(txs[1], b"tx-1", 0, 1)])  # learned from the park, then the worker dies
        return first.partitions[0].learner.events_learned

    assert asyncio.run(before_the_crash()) == 1
    assert b"tx-1" in tables[2].data  # kept: the checkpoint does not cover the learning

    async def read_back(source, partition, start, end):
        for offset in range(start, end):
            yield offset, (f"tx-{offset}".encode(), txs[offset].asdict())

    second = make_scorer(tables, read_back=read_back)

    async def after_the_restart():
        results = []
        async for items in second.item_batches([Event(txs[2], 2)]):  # tx-1 is read back first
            results += await score(second, items)
        return results

    results = asyncio.run(after_the_restart())
    state = second.partitions[0]
    assert [r["transaction_id"] for r in results] == ["tx-1", "tx-2"]
    assert state.learner.events_learned == 1  # tx-1, from its parked label, once
    assert state.unparked_since_checkpoint == [b"tx-1"]
    # the label itself comes again (committed after the checkpoint): it was seen, not learned twice
    assert asyncio.run(second.plan_label(b"tx-1", 1, 0, 0, event_time=txs[1].event_time))[0] == "duplicate"
    assert state.learner.events_learned == 1


def test_parked_labels_expire_by_count_and_by_event_time_and_are_rebuilt_on_restore():
    tables = (ChangelogTable(), ChangelogTable(), ChangelogTable())
    scorer = Scorer(local_host, *tables[:2], parked=tables[2], parked_max=2, parked_ttl_s=100.0,
                    record=Transaction, model_factory=configured.model_factory(settings, kind="lr"))
    expired_before = parked_count("expired")

    async def run():
        await score(scorer, [Item(transaction(0), b"tx-0", 0, 0)])
        for offset, (key, event_time) in enumerate([(b"a", BASE + 50), (b"b", BASE + 1000), (b"c", BASE + 2000)]):
            assert (await scorer.plan_label(key, 1, 0, offset, event_time=event_time))[0] == "parked"
        scorer.after_batch({0})  # three parked, two at most: the earliest parked (a) goes
        return sorted(scorer.partitions[0].parked._ids)

    assert asyncio.run(run()) == [b"b", b"c"]
    assert b"a" not in tables[2].data and parked_count("expired") == expired_before + 1

    restored = Scorer(local_host, *tables[:2], parked=tables[2], parked_max=2, parked_ttl_s=100.0,
                      record=Transaction, model_factory=configured.model_factory(settings, kind="lr"))
    state = asyncio.run(restored.states.get(0))
    assert sorted(state.parked._ids) == [b"b", b"c"]  # from the table, as recovered from its changelog

    async def later():  # a transaction at BASE + 1200: b's (BASE + 1000) is more than 100 s behind
        await score(restored, [Item(transaction(1200), b"tx-1200", 0, 1)])
        restored.after_batch({0})
        return sorted(restored.partitions[0].parked._ids)

    assert asyncio.run(later()) == [b"c"]
    # a label whose transaction is more than the TTL behind the partition's is not parked
    assert asyncio.run(restored.plan_label(b"old", 1, 0, 3, event_time=BASE))[0] == "unknown"


def test_only_labels_that_waited_count_as_waits():
    scorer = make_scorer()

    def waits(outcome: str) -> float:
        return metrics.LABEL_WAITS.labels(outcome=outcome)._value.get()

    async def run():
        await score(scorer, [Item(transaction(0), b"tx-0", 0, 0)])
        found, timeout = waits("found"), waits("timeout")
        assert await scorer.wait_for_transaction(0, b"tx-0", BASE) == "found"  # there already: no wait
        assert waits("found") == found
        assert await scorer.wait_for_transaction(0, b"tx-5", BASE + 5, deadline=time.monotonic() + 0.05) == "timeout"
        assert waits("timeout") == timeout + 1

    asyncio.run(run())


def test_a_parked_label_left_over_from_a_transaction_learned_before_the_restart_goes_when_it_comes_again():
    """The checkpoint covering a transaction learned from the park was written, the tombstone of its
    parked label was not (the worker died in between): the label, restored, goes when the
    transaction is delivered again (it is not learned twice)."""
    tables = (ChangelogTable(), ChangelogTable(), ChangelogTable())
    first = make_scorer(tables)

    async def before_the_crash():
        await first.plan_label(b"tx-0", 1, 0, 0, event_time=BASE)
        await score(first, [Item(transaction(0), b"tx-0", 0, 0)])
        blob = tables[2].data[b"tx-0"]
        await first.states.checkpoint(0)
        tables[2].data[b"tx-0"] = blob  # the tombstone never reached the changelog

    asyncio.run(before_the_crash())
    second = make_scorer(tables)

    async def redelivered():
        assert b"tx-0" in (await second.states.get(0)).parked
        await score(second, [Item(transaction(0), b"tx-0", 0, 0)])  # offset 0: seen, not learned again
        return second.partitions[0]

    state = asyncio.run(redelivered())
    assert state.learner.events_learned == 1 and len(state.parked) == 0
    assert b"tx-0" not in tables[2].data and tables[2].written[-1] == (0, b"tx-0", None)
