"""Partition learning with a sample rate: each partition's model learns every fraud and the hashed
share of genuine examples (in the event, parked, and late on the labels topic), every label still
counts in the prequential metrics, and the probabilities are those of a plain loop that learned the
same examples, corrected for the rate."""
from __future__ import annotations

import asyncio

import pytest

import settings
from app import configured
from app.learning import OnlineLearner
from app.learning.model_host import LocalHost
from app.learning.subsampling import correct, keep
from app.records import Transaction
from app.scoring import Item, Scorer
from tests.fakes import ChangelogTable

BASE = 1.7e9
RATE = 0.3


async def local_host():
    return LocalHost()


def transaction(i: int, label: int | None) -> Transaction:
    return Transaction(transaction_id=f"tx-{i}", event_time=BASE + i, Amount=10.0 + (i % 7) * 40.0, Class=label,
                       **{f"V{j}": 0.1 * j * ((i % 5) - 2) for j in range(1, 29)})


def label_of(i: int) -> int:
    return 1 if i % 9 == 0 else 0


def make_scorer(sample_rate: float = RATE) -> Scorer:
    return Scorer(local_host, ChangelogTable(), ChangelogTable(), record=Transaction, sample_rate=sample_rate,
                  model_factory=configured.model_factory(settings, kind="lr"))


async def score(scorer: Scorer, items: list[Item]) -> list:
    chunks = await scorer.submit(items)
    return [result async for chunk in scorer.scored(chunks) for _, result in chunk]


def test_in_event_labels_learn_every_fraud_and_the_sampled_genuine_ones_with_corrected_probabilities():
    scorer = make_scorer()
    txs = [transaction(i, label_of(i)) for i in range(120)]

    async def run():
        return await score(scorer, [Item(tx, tx.transaction_id.encode(), 0, i) for i, tx in enumerate(txs)])

    scores = asyncio.run(run())
    loop = OnlineLearner(configured.model_factory(settings, kind="lr"))
    expected, learned = [], 0
    for tx in txs:
        x = tx.features()
        expected.append(correct(loop.predict_proba(x), RATE))
        if keep(tx.transaction_id, tx.Class, RATE):
            loop.learn(x, tx.Class)
            learned += 1
    state = scorer.partitions[0]
    assert 40 < learned < 70  # 14 frauds and about a third of the 106 genuine ones
    assert state.learner.events_learned == learned
    assert state.evaluator.count == len(txs)  # every label is evaluated, learned or not
    assert [s["fraud_probability"] for s in scores] == expected


def test_a_late_label_is_learned_only_when_sampled_and_counts_either_way():
    scorer = make_scorer()
    genuine = [i for i in range(1, 40) if not keep(f"tx-{i}", 0, RATE)]
    kept = [i for i in range(1, 40) if keep(f"tx-{i}", 0, RATE)]

    async def run():
        left_out, sampled, fraud = genuine[0], kept[0], 40
        for i in (left_out, sampled, fraud):
            await score(scorer, [Item(transaction(i, None), f"tx-{i}".encode(), 0, i)])
        outcomes = [await scorer.plan_label(f"tx-{i}".encode(), label, 0, offset, event_time=BASE + i)
                    for offset, (i, label) in enumerate(((left_out, 0), (sampled, 0), (fraud, 1)))]
        return outcomes

    outcomes = asyncio.run(run())
    assert [outcome for outcome, _ in outcomes] == ["learned"] * 3
    assert [op is not None for _, op in outcomes] == [False, True, True]
    state = scorer.partitions[0]
    assert state.learner.events_learned == 2 and state.evaluator.count == 3


def test_a_rate_of_one_learns_every_label_and_central_learning_refuses_a_rate():
    scorer = make_scorer(1.0)
    txs = [transaction(i, 0) for i in range(20)]
    asyncio.run(score(scorer, [Item(tx, tx.transaction_id.encode(), 0, i) for i, tx in enumerate(txs)]))
    assert scorer.partitions[0].learner.events_learned == 20
    with pytest.raises(ValueError, match="sample_rate must be 1.0"):
        Scorer(local_host, None, ChangelogTable(), model_factory=configured.model_factory(settings, kind="lr"),
               replica=object(), send_example=lambda key, value: None, sample_rate=0.5)
    with pytest.raises(ValueError, match="must be in"):
        make_scorer(0.0)


def test_a_checkpoint_says_its_rate_and_a_restore_at_another_rate_warns(caplog):
    checkpoints, pending = ChangelogTable(), ChangelogTable()
    txs = [transaction(i, label_of(i)) for i in range(30)]

    def scorer_at(rate: float) -> Scorer:
        return Scorer(local_host, checkpoints, pending, record=Transaction, sample_rate=rate,
                      model_factory=configured.model_factory(settings, kind="lr"))

    async def checkpointed_at(rate: float) -> None:
        scorer = scorer_at(rate)
        await score(scorer, [Item(tx, tx.transaction_id.encode(), 0, i) for i, tx in enumerate(txs)])
        await scorer.states.checkpoint(0)

    async def reopened_at(rate: float) -> int:
        scorer = scorer_at(rate)
        return (await scorer.states.get(0)).learner.events_learned

    asyncio.run(checkpointed_at(RATE))
    with caplog.at_level("WARNING", logger="app.scoring.scorer"):
        assert asyncio.run(reopened_at(RATE)) > 0  # restored, same rate: no warning
        assert not [r for r in caplog.records if "sample rate" in r.getMessage()]
        asyncio.run(reopened_at(1.0))
    assert [r for r in caplog.records if "learned with sample rate 0.3; it goes on at 1" in r.getMessage()]
