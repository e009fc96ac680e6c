"""OnlineLearner: predict/learn, counters, versions, reset and checkpoints."""
from __future__ import annotations

import pickle

import pytest

from app.learning import CheckpointError, OnlineLearner, model_factory
from app.learning.learner import CHECKPOINT_FORMAT, _MAGIC
from tests.learning.test_pipeline import stream


def learner(**kw) -> OnlineLearner:
    return OnlineLearner(model_factory(kind="arf+lr", trees=3, **kw))


def test_counts_what_it_learns_and_names_its_version():
    live = learner()
    for x, y in stream(50):
        live.predict_proba(x)
        live.learn(x, y)
    assert live.events_learned == 50
    assert live.version == "arf3+lr-g0"


def test_a_restored_checkpoint_predicts_and_learns_exactly_like_the_original():
    live = learner()
    rows = list(stream(800))
    for x, y in rows[:500]:
        live.predict_proba(x)
        live.learn(x, y)
    live.meta["offsets"] = {"transactions": 499}
    restored = OnlineLearner.from_checkpoint(live.to_checkpoint())
    assert (restored.events_learned, restored.version, restored.meta) == (500, live.version, live.meta)
    for x, y in rows[500:]:
        assert restored.predict_proba(x) == live.predict_proba(x)
        live.learn(x, y)
        restored.learn(x, y)


def test_reset_starts_a_new_generation_from_the_same_factory():
    live = learner()
    fresh = [live.predict_proba(x) for x, _ in stream(20)]
    for x, y in stream(300):
        live.learn(x, y)
    live.reset()
    assert (live.events_learned, live.version) == (0, "arf3+lr-g1")
    assert [live.predict_proba(x) for x, _ in stream(20)] == fresh
    assert OnlineLearner.from_checkpoint(live.to_checkpoint()).version == "arf3+lr-g1"


def test_save_and_load_a_file(tmp_path):
    live = learner()
    for x, y in stream(100):
        live.learn(x, y)
    live.save(tmp_path / "model.ckpt")
    assert OnlineLearner.load(tmp_path / "model.ckpt").events_learned == 100


def test_refuses_what_is_not_its_checkpoint():
    with pytest.raises(CheckpointError, match="bad header"):
        OnlineLearner.from_checkpoint(b"\x00" * 40)
    with pytest.raises(CheckpointError, match="unreadable"):
        OnlineLearner.from_checkpoint(_MAGIC + b"not a pickle")
    future = _MAGIC + pickle.dumps({"format": CHECKPOINT_FORMAT + 1})
    with pytest.raises(CheckpointError, match="format"):
        OnlineLearner.from_checkpoint(future)
