"""The model pipeline built from parameters: kinds, determinism, members."""
from __future__ import annotations

import pickle

import pytest

from app.data.synthetic import generate
from app.learning import build_model, model_factory
from app.learning.blend import ProbabilityBlend
from app.records import FEATURE_NAMES


def stream(n: int, seed: int = 5):
    for row in generate(n, seed=seed):
        yield {name: float(row[name]) for name in FEATURE_NAMES}, int(row["Class"])


def probabilities(model, n: int = 600) -> list[float]:
    out = []
    for x, y in stream(n):
        out.append(model.predict_proba_one(x).get(1, 0.0))
        model.learn_one(x, y)
    return out


@pytest.mark.parametrize("kind", ["arf", "lr", "arf+lr"])
def test_the_same_parameters_give_the_same_predictions(kind):
    assert probabilities(build_model(kind, trees=3, seed=7)) == probabilities(build_model(kind, trees=3, seed=7))


def test_the_seed_changes_the_forest():
    assert probabilities(build_model("arf", trees=3, seed=1)) != probabilities(build_model("arf", trees=3, seed=2))


def test_the_default_blend_is_a_forest_and_two_regressions_with_the_configured_shares():
    model = build_model("arf+lr", trees=4, arf_weight=0.5, lr_positive_weight=10.0)
    assert isinstance(model, ProbabilityBlend)
    assert type(model.models[0]).__name__ == "ARFClassifier" and model.models[0].n_models == 4
    assert model.weights == [0.5, 0.25, 0.25]
    assert model.models[2]["LogisticRegression"].loss.weight_pos == 10.0


def test_the_blend_is_the_weighted_mean_of_its_members():
    model = build_model("arf+lr", trees=3, arf_weight=0.2)
    for x, y in stream(300):
        p = model.predict_proba_one(x)[1]
        members = model.last_member_probabilities
        assert p == pytest.approx(0.2 * members[0] + 0.4 * members[1] + 0.4 * members[2], abs=1e-12)
        model.learn_one(x, y)


def test_probabilities_stay_in_the_unit_interval():
    assert all(0.0 <= p <= 1.0 for p in probabilities(build_model("arf+lr", trees=3)))


def test_factory_builds_the_model_of_its_parameters_and_survives_pickling():
    factory = pickle.loads(pickle.dumps(model_factory(kind="arf", trees=2)))
    model = factory()
    assert type(model).__name__ == "ARFClassifier" and model.n_models == 2
    assert probabilities(model_factory()()) == probabilities(build_model())
