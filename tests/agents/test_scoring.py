"""The scoring agent's per-event logic, with in-memory tables: predict then learn, pending labels,
checkpoints and restores, the offsets that keep a restored model from learning twice. The models
run in this process (``LocalHost``), and in a model process for the parity test."""
from __future__ import annotations

import asyncio
import functools

import pytest

import settings
from app.data.synthetic import generate
from app.learning import OnlineLearner, build_model
from app.learning.model_host import LocalHost, ProcessHost
from app.learning.pipeline import model_params_from_settings
from app.records import FEATURE_NAMES, Transaction
from app.replay import to_transaction


class MemoryTable:
    def __init__(self):
        self.data = {}
        self.changelog = []

    def send_changelog(self, partition, key, value, key_serializer=None, value_serializer=None):
        self.changelog.append((partition, key, value))


@pytest.fixture
def scoring(monkeypatch):
    import app.agents.scoring as module

    monkeypatch.setattr(settings, "ARF_TREES", 3)
    monkeypatch.setattr(settings, "WARM_START_PATH", "")
    monkeypatch.setattr(settings, "GC_FREEZE", False)  # a test process keeps its collector as it is
    monkeypatch.setattr(module.tables, "pending", MemoryTable())
    monkeypatch.setattr(module.tables, "checkpoints", MemoryTable())
    for name in ("LEARNERS", "EVALUATORS", "PENDING_INDEXES", "_OPENING"):
        monkeypatch.setattr(module, name, {})
    monkeypatch.setattr(module, "HOST", LocalHost())
    monkeypatch.setattr(module, "_LABELLED_SINCE_CHECKPOINT", module.defaultdict(list))
    return module


def transactions(n: int, seed: int = 21, with_label: bool = True) -> list[Transaction]:
    return [Transaction(**to_transaction(row, f"tx-{i}", 1.7e9, with_label)) for i, row in enumerate(generate(n, seed=seed))]


def plain_loop(txs) -> list[float]:
    learner = OnlineLearner(functools.partial(build_model, **{**model_params_from_settings(), "trees": 3}))
    out = []
    for tx in txs:
        x = {name: getattr(tx, name) for name in FEATURE_NAMES}
        out.append(learner.predict_proba(x))
        learner.learn(x, tx.Class)
    return out


async def score_items(scoring, items):
    """The agent's path for ``items``: submitted to the model host, then the scored chunks."""
    async for chunk in scoring.scored_chunks(await scoring.submit_items(items)):
        yield chunk


def score(scoring, txs, first_offset=0, partition=0) -> list[dict]:
    """Score ``txs`` (offsets from ``first_offset``) through the agent's path; the score dicts."""
    items = [scoring.Item(tx, tx.transaction_id.encode(), partition, first_offset + i) for i, tx in enumerate(txs)]

    async def run():
        return [result async for chunk in score_items(scoring, items) for _, result in chunk]
    return asyncio.run(run())


def learn_label(scoring, key, label, partition, offset) -> str:
    """Plan and send one late label; its outcome."""
    async def run():
        outcome, op = await scoring.learn_label(key, label, partition, offset)
        await scoring.learn_labels_of([(partition, op, None)] if op else [])
        return outcome
    return asyncio.run(run())


def local_model(scoring, partition=0):
    return scoring.HOST.learners.learners[partition]


def test_in_event_labels_predict_then_learn_like_a_plain_loop(scoring):
    txs = transactions(500)
    scores = score(scoring, txs)
    assert [s["fraud_probability"] for s in scores] == plain_loop(txs)
    assert [s["events_learned"] for s in scores] == list(range(500))
    first = scores[0]
    assert first["transaction_id"] == "tx-0" and first["event_time"] == txs[0].event_time
    assert first["model_version"] == "arf3+lr-g0" and first["label"] == txs[0].Class
    assert first["decision"] == (first["fraud_probability"] >= settings.DECISION_THRESHOLD)
    assert scoring.EVALUATORS[0].count == 500


@pytest.mark.parametrize("chunk", [1, 7, 25])
def test_a_model_process_scores_exactly_like_the_plain_loop(scoring, monkeypatch, chunk):
    monkeypatch.setattr(settings, "MODEL_CHUNK", chunk)
    txs = transactions(300)

    async def run():
        scoring.HOST = await ProcessHost.start()
        try:
            items = [scoring.Item(tx, tx.transaction_id.encode(), 0, i) for i, tx in enumerate(txs)]
            chunks = [[s for _, s in part] async for part in score_items(scoring, items)]
            await scoring.write_checkpoint(0)
            return chunks
        finally:
            await scoring.HOST.close()

    chunks = asyncio.run(run())
    assert [len(c) for c in chunks] == [len(txs[i:i + chunk]) for i in range(0, len(txs), chunk)]
    scores = [s for c in chunks for s in c]
    assert [s["fraud_probability"] for s in scores] == plain_loop(txs)
    assert [s["events_learned"] for s in scores] == list(range(300))
    restored = OnlineLearner.from_checkpoint(scoring.tables.checkpoints.data[b"0"])
    assert restored.events_learned == 300 and restored.meta["offsets"] == {settings.TRANSACTIONS_TOPIC: 299}


def test_a_failing_model_operation_gives_that_transaction_an_error_and_scores_the_others(scoring):
    txs = transactions(3)
    txs[1].V1 = "not a number"  # the model raises on it
    results = score(scoring, txs)
    assert isinstance(results[1], scoring.ScoringFailed) and "str" in str(results[1])
    assert [r["transaction_id"] for r in (results[0], results[2])] == ["tx-0", "tx-2"]
    assert scoring.LEARNERS[0].events_learned == local_model(scoring).events_learned == 2


def test_late_labels_learn_with_the_features_the_transaction_was_scored_on(scoring):
    labelled = transactions(300)
    unlabelled = transactions(300, with_label=False)
    score(scoring, unlabelled)
    assert len(scoring.PENDING_INDEXES[0]) == 300 and scoring.LEARNERS[0].events_learned == 0
    outcomes = [learn_label(scoring, tx.transaction_id.encode(), tx.Class, 0, i) for i, tx in enumerate(labelled)]
    assert outcomes == ["learned"] * 300
    assert scoring.LEARNERS[0].events_learned == 300 and len(scoring.PENDING_INDEXES[0]) == 0
    assert learn_label(scoring, b"tx-0", 0, 0, 300) == "unknown"  # its label came already
    assert learn_label(scoring, b"nobody", 0, 0, 301) == "unknown"
    # the same learning as in-event labels, in the same order
    expected = OnlineLearner(functools.partial(build_model, **{**model_params_from_settings(), "trees": 3}))
    for tx in labelled:
        expected.learn({name: getattr(tx, name) for name in FEATURE_NAMES}, tx.Class)
    probe = {name: 0.5 for name in FEATURE_NAMES}
    assert local_model(scoring).predict_proba(probe) == expected.predict_proba(probe)
    assert local_model(scoring).events_learned == 300


def test_expired_transactions_count_as_expired(scoring, monkeypatch):
    monkeypatch.setattr(settings, "PENDING_MAX", 10)
    score(scoring, transactions(30, with_label=False))
    scoring._expire_pending(0)
    assert len(scoring.PENDING_INDEXES[0]) == 10
    assert learn_label(scoring, b"tx-0", 0, 0, 0) == "expired"
    assert learn_label(scoring, b"tx-29", 0, 0, 1) == "learned"
    assert (0, b"tx-0", None) in scoring.tables.pending.changelog  # the expired features are deleted


def restart(scoring):
    """What a restart leaves: the tables, not the learners (nor the model host's models)."""
    scoring.LEARNERS.clear()
    scoring.HOST = LocalHost()


def test_a_restored_checkpoint_scores_again_but_does_not_learn_twice(scoring):
    txs = transactions(400)
    score(scoring, txs[:300])
    asyncio.run(scoring.write_checkpoint(0))
    blob = scoring.tables.checkpoints.data[b"0"]
    assert scoring.tables.checkpoints.changelog == [(0, b"0", blob)]
    expected = [s["fraud_probability"] for s in score(scoring, txs[300:], first_offset=300)]

    restart(scoring)  # the learner comes back from the table
    replayed = score(scoring, txs[250:], first_offset=250)
    assert replayed[0]["events_learned"] == 300  # the checkpoint's model, not a fresh one
    assert scoring.LEARNERS[0].events_learned == local_model(scoring).events_learned == 400  # 250..299 not learned again
    assert [s["fraud_probability"] for s in replayed[50:]] == expected


def test_learned_labels_keep_their_features_until_the_next_checkpoint(scoring):
    score(scoring, transactions(50, with_label=False))
    learn_label(scoring, b"tx-3", 1, 0, 0)
    assert b"tx-3" in scoring.tables.pending.data  # a crash now: the label comes again and finds them
    asyncio.run(scoring.write_checkpoint(0))
    assert b"tx-3" not in scoring.tables.pending.data
    restart(scoring)
    assert learn_label(scoring, b"tx-3", 1, 0, 0) == "duplicate"  # its offset is in the checkpoint
    assert len(scoring.PENDING_INDEXES[0]) == 49  # rebuilt from the table


def test_replace_and_reset_the_live_learner(scoring):
    txs = transactions(100)
    score(scoring, txs)

    async def reset_and_replace():
        scoring.LEARNERS[0].reset()
        after_reset = [s async for s in score_items(scoring, [scoring.Item(txs[0], b"tx-0", 0, 100)])][0][0][1]
        reset_model = local_model(scoring)
        assert reset_model.events_learned == 1 and reset_model.version == "arf3+lr-g1"
        challenger = OnlineLearner(functools.partial(build_model, kind="lr"), generation=5)
        scoring.replace_learner(0, challenger)
        return after_reset, challenger

    after_reset, challenger = asyncio.run(reset_and_replace())
    assert after_reset["model_version"] == "arf3+lr-g1" and after_reset["events_learned"] == 0
    replayed = score(scoring, [txs[1]], first_offset=50)[0]  # an offset the old learner had learned
    assert replayed["model_version"] == "lr-g5" and replayed["events_learned"] == 0
    assert local_model(scoring).version == "lr-g5" and local_model(scoring).events_learned == 0


@pytest.mark.parametrize("enabled", [True, False])
def test_this_process_is_frozen_out_of_the_collector_when_a_learner_opens_and_at_each_checkpoint(scoring, monkeypatch, enabled):
    freezes = []
    monkeypatch.setattr(scoring.gc_tuning, "freeze", lambda: freezes.append(1) or 0)
    monkeypatch.setattr(settings, "GC_FREEZE", enabled)
    score(scoring, transactions(10))
    assert len(freezes) == (1 if enabled else 0)  # the new learner, once
    asyncio.run(scoring.write_checkpoint(0))
    assert len(freezes) == (2 if enabled else 0)
