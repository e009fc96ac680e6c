"""State written to changelogs is confirmed: the anomaly and drift checkpoints before their batch is
acknowledged, the deletions of learned pending entries and parked labels before the model
checkpoint that learned them counts as done; a record the broker refuses stops the worker
(app.outputs, exit code 74)."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import MessageSizeTooLargeError

import settings
from app import configured, outputs
from app.agents import anomaly as anomaly_agents
from app.anomaly import AnomalyDetector, FixedThreshold
from app.anomaly.partitions import AnomalyDetectors
from app.drift.watch import DriftWatch
from app.learning.model_host import LocalHost
from app.records import Transaction
from app.scoring import Item, Scorer
from app.state.checkpointed import CheckpointedStates
from tests.agents.test_anomaly import transactions
from tests.fakes import ChangelogTable, agent_app, agent_topics

REFUSED = MessageSizeTooLargeError("the record is larger than the topic's max.message.bytes")


class ConfirmingTable(ChangelogTable):
    """A changelog-backed table whose records the broker confirms, or refuses when ``refuse(key,
    value)``; with ``hold``, their futures stay unanswered until :meth:`answer`."""

    def __init__(self, refuse=lambda key, value: False, hold: bool = False) -> None:
        super().__init__()
        self.refuse, self.hold, self.futures = refuse, hold, []

    def send_changelog(self, partition, key, value, **kwargs):
        super().send_changelog(partition, key, value)
        future = asyncio.get_running_loop().create_future()
        self.futures.append((future, key, value))
        if not self.hold:
            self._answer(future, key, value)
        return future

    def _answer(self, future, key, value) -> None:
        if not future.done():
            future.set_exception(REFUSED) if self.refuse(key, value) else future.set_result(None)

    def answer(self) -> None:
        for future, key, value in self.futures:
            self._answer(future, key, value)


@pytest.fixture
def exits(monkeypatch):
    """The exit codes the worker would have stopped with (the process goes on in the test)."""
    codes = []
    monkeypatch.setattr(outputs, "_exit", codes.append)
    return codes


class Tally:
    def __init__(self, n: int = 0) -> None:
        self.n = n


def tallies(table) -> CheckpointedStates:
    return CheckpointedStates(table, "tally", new=Tally, dump=lambda t: str(t.n).encode(),
                              load=lambda b: Tally(int(b)), progress=lambda t: t.n, every=1)


@pytest.mark.parametrize("refused", [False, True])
def test_checkpoints_are_confirmed_and_a_refused_one_stops_the_worker(exits, refused):
    table = ConfirmingTable(refuse=lambda key, value: refused)

    async def run():
        states = tallies(table)
        states.get(0).n += 1
        assert states.maybe_checkpoint(0)
        assert len(states.unconfirmed) == 1
        await states.confirm()
        return states.unconfirmed

    if refused:
        with pytest.raises(MessageSizeTooLargeError):
            asyncio.run(run())
        assert exits == [outputs.SEND_FAILED_EXIT_CODE]
    else:
        assert asyncio.run(run()) == [] and exits == []


def test_a_refused_anomaly_checkpoint_stops_the_worker(exits):
    table = ConfirmingTable(refuse=lambda key, value: value is not None)
    app = agent_app("test-confirmed-anomaly-checkpoint")
    topics = agent_topics(app)
    detectors = AnomalyDetectors(table, lambda: AnomalyDetector(trees=5, height=6, window=20, warmup=20,
                                                                threshold=FixedThreshold(1e9), seed=1), every=10)
    agent = anomaly_agents.register(app, topics, detectors, batch_size=50, within_s=0.05, counts_input=True)
    async def run():
        async with agent.test_context() as running:
            for tx in transactions(50, seed=3):
                await running.put(key=tx.transaction_id.encode(), value=tx)
            await asyncio.sleep(0.3)

    try:
        asyncio.run(run())
    except MessageSizeTooLargeError:
        pass  # the agent's crash, seen by the test context
    assert table.written and exits == [outputs.SEND_FAILED_EXIT_CODE]


def test_drift_checkpoints_are_confirmed_on_revocation(exits):
    table = ConfirmingTable(hold=True)
    watch = DriftWatch(table, new_feature_monitor=lambda: configured.feature_monitor(settings),
                       new_score_monitor=lambda: configured.score_monitor(settings), features=["Amount"])

    async def run():
        watch.observe_transaction(transaction(0), 0, 0)  # the partition's monitor took something in
        revoking = asyncio.ensure_future(watch.revoked({watch.transactions_topic: {0}}))
        await asyncio.sleep(0.05)
        waiting = not revoking.done()  # its checkpoint is not confirmed yet
        table.answer()
        await revoking
        return waiting

    assert asyncio.run(run()) and table.written and exits == []


async def local_host():
    return LocalHost()


def transaction(i: int) -> Transaction:
    return Transaction(transaction_id=f"tx-{i}", event_time=1.7e9 + i, Amount=10.0 + i,
                       **{f"V{j}": 0.1 * j for j in range(1, 29)})


def scorer_with(pending: ChangelogTable, checkpoints: ChangelogTable | None = None) -> Scorer:
    return Scorer(local_host, checkpoints or ChangelogTable(), pending, parked=ConfirmingTable(),
                  model_factory=configured.model_factory(settings, kind="lr"))


async def learn_a_label(scorer: Scorer) -> None:
    chunks = await scorer.submit([Item(transaction(0), b"tx-0", 0, 0)])
    async for _ in scorer.scored(chunks):
        pass
    outcome, op = await scorer.plan_label(b"tx-0", 1, 0, 0, event_time=1.7e9)
    assert outcome == "learned"
    assert await scorer.learn([(0, op, None)]) == []


def test_learned_pending_entries_go_after_their_checkpoint_is_confirmed_and_the_checkpoint_waits_for_it(exits):
    pending, checkpoints = ConfirmingTable(hold=True), ConfirmingTable(hold=True)
    scorer = scorer_with(pending, checkpoints)

    async def run():
        await learn_a_label(scorer)
        pending.answer()  # the entry's own record
        checkpoint = asyncio.ensure_future(scorer.states.checkpoint(0))
        await asyncio.sleep(0.05)
        before = [value for _, key, value in pending.written if key == b"tx-0"]  # its record only: no tombstone yet
        checkpoints.answer()  # the checkpoint is confirmed: now the tombstone goes
        await asyncio.sleep(0.05)
        tombstone_sent_and_waited = [value for _, key, value in pending.written if key == b"tx-0"][-1] is None \
            and not checkpoint.done()
        pending.answer()  # the tombstone is confirmed: the checkpoint is done
        await checkpoint
        return before, tombstone_sent_and_waited

    before, waited = asyncio.run(run())
    assert len(before) == 1 and before[0] is not None
    assert waited and exits == []


def test_a_refused_deletion_of_a_learned_pending_entry_stops_the_worker(exits):
    pending = ConfirmingTable(refuse=lambda key, value: value is None)  # tombstones are refused
    scorer = scorer_with(pending)

    async def run():
        await learn_a_label(scorer)
        await scorer.states.checkpoint(0)

    with pytest.raises(MessageSizeTooLargeError):
        asyncio.run(run())
    assert exits == [outputs.SEND_FAILED_EXIT_CODE]
