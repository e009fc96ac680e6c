"""The scoring agent's per-event logic, with in-memory tables: predict then learn, pending labels,
checkpoints and restores, the offsets that keep a restored model from learning twice."""
from __future__ import annotations

import functools

import pytest

import settings
from app.data.synthetic import generate
from app.learning import OnlineLearner, build_model
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
    for name in ("LEARNERS", "EVALUATORS", "PENDING_INDEXES"):
        monkeypatch.setattr(module, name, {})
    monkeypatch.setattr(module, "_LEARNED_SINCE_CHECKPOINT", module.defaultdict(int))
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


def test_in_event_labels_predict_then_learn_like_a_plain_loop(scoring):
    txs = transactions(500)
    scores = [scoring.score_one(tx, tx.transaction_id.encode(), 0, i) for i, tx in enumerate(txs)]
    assert [s["fraud_probability"] for s in scores] == plain_loop(txs)
    assert [s["events_learned"] for s in scores] == list(range(500))
    first = scores[0]
    assert first["transaction_id"] == "tx-0" and first["event_time"] == txs[0].event_time
    assert first["model_version"] == "arf3+lr-g0" and first["label"] == txs[0].Class
    assert first["decision"] == (first["fraud_probability"] >= settings.DECISION_THRESHOLD)
    assert scoring.EVALUATORS[0].count == 500


def test_late_labels_learn_with_the_features_the_transaction_was_scored_on(scoring):
    labelled = transactions(300)
    unlabelled = transactions(300, with_label=False)
    for i, tx in enumerate(unlabelled):
        scoring.score_one(tx, tx.transaction_id.encode(), 0, i)
    assert len(scoring.PENDING_INDEXES[0]) == 300 and scoring.LEARNERS[0].events_learned == 0
    outcomes = [scoring.learn_label(tx.transaction_id.encode(), tx.Class, 0, i) for i, tx in enumerate(labelled)]
    assert outcomes == ["learned"] * 300
    assert scoring.LEARNERS[0].events_learned == 300 and len(scoring.PENDING_INDEXES[0]) == 0
    assert scoring.learn_label(b"tx-0", 0, 0, 300) == "unknown"  # its label came already
    assert scoring.learn_label(b"nobody", 0, 0, 301) == "unknown"
    # the same learning as in-event labels, in the same order
    expected = OnlineLearner(functools.partial(build_model, **{**model_params_from_settings(), "trees": 3}))
    for tx in labelled:
        expected.learn({name: getattr(tx, name) for name in FEATURE_NAMES}, tx.Class)
    probe = {name: 0.5 for name in FEATURE_NAMES}
    assert scoring.LEARNERS[0].predict_proba(probe) == expected.predict_proba(probe)


def test_expired_transactions_count_as_expired(scoring, monkeypatch):
    monkeypatch.setattr(settings, "PENDING_MAX", 10)
    txs = transactions(30, with_label=False)
    for i, tx in enumerate(txs):
        scoring.score_one(tx, tx.transaction_id.encode(), 0, i)
    scoring._expire_pending(0)
    assert len(scoring.PENDING_INDEXES[0]) == 10
    assert scoring.learn_label(b"tx-0", 0, 0, 0) == "expired"
    assert scoring.learn_label(b"tx-29", 0, 0, 1) == "learned"
    assert (0, b"tx-0", None) in scoring.tables.pending.changelog  # the expired features are deleted


def test_a_restored_checkpoint_scores_again_but_does_not_learn_twice(scoring):
    txs = transactions(400)
    for i, tx in enumerate(txs[:300]):
        scoring.score_one(tx, tx.transaction_id.encode(), 0, i)
    scoring.write_checkpoint(0)
    blob = scoring.tables.checkpoints.data[b"0"]
    assert scoring.tables.checkpoints.changelog == [(0, b"0", blob)]
    expected = [scoring.score_one(tx, tx.transaction_id.encode(), 0, 300 + i)["fraud_probability"]
                for i, tx in enumerate(txs[300:])]

    scoring.LEARNERS.clear()  # a restart: the learner comes back from the table
    replayed = [scoring.score_one(tx, tx.transaction_id.encode(), 0, 250 + i) for i, tx in enumerate(txs[250:])]
    assert replayed[0]["events_learned"] == 300  # the checkpoint's model, not a fresh one
    assert scoring.LEARNERS[0].events_learned == 400  # offsets 250..299 were not learned again
    assert [s["fraud_probability"] for s in replayed[50:]] == expected


def test_learned_labels_keep_their_features_until_the_next_checkpoint(scoring):
    txs = transactions(50, with_label=False)
    for i, tx in enumerate(txs):
        scoring.score_one(tx, tx.transaction_id.encode(), 0, i)
    scoring.learn_label(b"tx-3", 1, 0, 0)
    assert b"tx-3" in scoring.tables.pending.data  # a crash now: the label comes again and finds them
    scoring.write_checkpoint(0)
    assert b"tx-3" not in scoring.tables.pending.data
    scoring.LEARNERS.clear()
    assert scoring.learn_label(b"tx-3", 1, 0, 0) == "duplicate"  # its offset is in the checkpoint
    assert len(scoring.PENDING_INDEXES[0]) == 49  # rebuilt from the table


def test_replace_and_reset_the_live_learner(scoring):
    txs = transactions(100)
    for i, tx in enumerate(txs):
        scoring.score_one(tx, tx.transaction_id.encode(), 0, i)
    scoring.LEARNERS[0].reset()
    assert scoring.score_one(txs[0], b"tx-0", 0, 100)["model_version"] == "arf3+lr-g1"
    challenger = OnlineLearner(functools.partial(build_model, kind="lr"), generation=5)
    scoring.replace_learner(0, challenger)
    score = scoring.score_one(txs[1], b"tx-1", 0, 50)  # an offset the old learner had learned
    assert score["model_version"] == "lr-g5" and challenger.events_learned == 0


@pytest.mark.parametrize("enabled", [True, False])
def test_the_model_is_frozen_out_of_the_collector_when_built_and_at_each_checkpoint(scoring, monkeypatch, enabled):
    freezes = []
    monkeypatch.setattr(scoring.gc_tuning, "freeze", lambda: freezes.append(1) or 0)
    monkeypatch.setattr(settings, "GC_FREEZE", enabled)
    txs = transactions(20)
    for i, tx in enumerate(txs[:10]):
        scoring.score_one(tx, tx.transaction_id.encode(), 0, i)
    assert len(freezes) == (1 if enabled else 0)  # the new learner, once
    scoring.write_checkpoint(0)
    assert len(freezes) == (2 if enabled else 0)
    scoring.replace_learner(0, OnlineLearner(scoring.model_from_settings()))
    assert len(freezes) == (3 if enabled else 0)
