"""Property-based: whatever the codec lets through, the agents' models take it without raising and
answer with sensible numbers (a probability in [0, 1], a finite anomaly score).

The codec (``validate_transaction``) rejects what is not finite, oversized ids, features beyond
``MAX_ABS_FEATURE`` and labels other than 0/1; everything else may reach the models, in any order
and with any event time, so that is what is generated here.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

import settings
from app import configured
from app.anomaly import AnomalyDetector, FixedThreshold
from app.data.synthetic import generate
from app.drift.watch import DriftWatch, feature_values
from app.learning import OnlineLearner
from app.records import FEATURE_NAMES, Transaction
from app.replay import to_transaction
from app.serialization.avro import MAX_ABS_FEATURE, validate_transaction
from tests.fakes import ChangelogTable

WARM = [to_transaction(r, f"warm-{i}", 1_700_000_000.0, True) for i, r in enumerate(generate(120, seed=31))]

feature = st.one_of(
    st.floats(min_value=-5.0, max_value=5.0),  # ordinary
    st.floats(min_value=-MAX_ABS_FEATURE, max_value=MAX_ABS_FEATURE),  # anything the codec accepts
    st.sampled_from([0.0, -0.0, 5e-324, -MAX_ABS_FEATURE, MAX_ABS_FEATURE]),
)
event_time = st.one_of(st.floats(min_value=-1e12, max_value=1e12), st.just(1_700_000_000.0))


@st.composite
def transactions(draw) -> dict:
    value = dict(WARM[draw(st.integers(0, len(WARM) - 1))])
    for name in draw(st.sets(st.sampled_from(FEATURE_NAMES), max_size=6)):
        value[name] = draw(feature)
    value["event_time"] = draw(event_time)
    value["Class"] = draw(st.sampled_from([None, 0, 1]))
    value["transaction_id"] = draw(st.text(min_size=1, max_size=40))
    validate_transaction(value)  # what the worker would let through
    return value


def _warm_learner() -> OnlineLearner:
    learner = OnlineLearner(configured.model_factory(settings))
    for value in WARM:
        x = Transaction(**value).features()
        learner.predict_proba(x)
        learner.learn(x, value["Class"])
    return learner


@pytest.fixture(scope="module")
def learner_blob() -> bytes:
    return _warm_learner().to_checkpoint()


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(transactions(), min_size=1, max_size=12))
def test_scoring_model_predicts_and_learns_whatever_the_codec_accepts(learner_blob, values):
    learner = OnlineLearner.from_checkpoint(learner_blob)
    for value in values:
        x = Transaction(**value).features()
        probability = learner.predict_proba(x)
        assert 0.0 <= probability <= 1.0, (x, probability)
        if value["Class"] is not None:
            learner.learn(x, value["Class"])
    # and it still answers for an ordinary transaction afterwards
    assert 0.0 <= learner.predict_proba(Transaction(**WARM[0]).features()) <= 1.0


@hsettings(max_examples=40, deadline=None)
@given(st.lists(transactions(), min_size=1, max_size=12))
def test_anomaly_detector_scores_whatever_the_codec_accepts(values):
    detector = AnomalyDetector(trees=3, height=4, window=20, warmup=0, threshold=FixedThreshold(0.8), seed=1)
    for value in WARM[:30] + values:
        verdict = detector.process(Transaction(**value).features())
        assert math.isfinite(verdict.score), value


@hsettings(max_examples=60, deadline=None)
@given(st.lists(transactions(), min_size=1, max_size=20))
def test_drift_monitor_takes_whatever_the_codec_accepts(values):
    watch = DriftWatch(ChangelogTable(), new_feature_monitor=lambda: configured.feature_monitor(settings),
                       new_score_monitor=lambda: configured.score_monitor(settings), features=settings.DRIFT_FEATURES)
    for offset, value in enumerate(WARM[:30] + values):
        for found in watch.observe_transaction(Transaction(**value), 0, offset):
            assert math.isfinite(found.mean_before) and math.isfinite(found.mean_after)
    fed = sum(len(feature_values(Transaction(**value), settings.DRIFT_FEATURES)) for value in WARM[:30] + values)
    assert watch.feature_monitors.get(0).updates == fed  # every value taken in
