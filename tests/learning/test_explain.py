"""Explained scores: the members and top features describe the model that made the prediction, and
explaining changes neither the probabilities nor what the model learns."""
from __future__ import annotations

import asyncio
import copy
import io
import pickle
import types

import fastavro
import pytest

from app.data.synthetic import generate
from app.learning.explain import explain, logistic_member, member_names
from app.learning.hosted_learner import HostedLearner
from app.learning.learner_set import LearnerSet
from app.learning.model_host import LocalHost
from app.learning.pipeline import model_factory
from app.records import FEATURE_NAMES, Score, Transaction
from app.scoring.scorer import Item, Scorer


def stream(n: int, seed: int = 3):
    """Synthetic transactions' features and labels; every third one unlabelled (y None)."""
    for i, row in enumerate(generate(n, seed=seed)):
        yield {name: float(row[name]) for name in FEATURE_NAMES}, (None if i % 3 == 2 else int(row["Class"]))


def opened(kind: str = "arf+lr") -> LearnerSet:
    learners = LearnerSet()
    learners.apply([("open", 0, None, model_factory(kind=kind, trees=3, seed=1), "")])
    return learners


def run(learners: LearnerSet, op: str, events) -> list:
    return [learners.apply([(op, 0, x, y)])[0] for x, y in events]


def test_explaining_leaves_the_probabilities_and_the_learned_model_unchanged():
    events = list(stream(1500))
    plain, explained = opened(), opened()
    results = run(explained, "step_explain", events)
    assert [r[0] for r in results] == run(plain, "step", events)
    assert pickle.dumps(explained.learners[0].model) == pickle.dumps(plain.learners[0].model)
    assert explained.learners[0].events_learned == plain.learners[0].events_learned == 1000


def test_the_members_are_each_members_own_probability_before_learning():
    learners = opened()
    events = list(stream(900))
    run(learners, "step", events[:600])
    for x, y in events[600:]:
        before = copy.deepcopy(learners.learners[0].model)
        probability, members, _ = learners.apply([("step_explain", 0, x, y)])[0]
        assert list(members) == ["arf", "lr", "lr_pos10"] == member_names(before)
        assert members == {name: m.predict_proba_one(x).get(1, 0.0) for name, m in zip(members, before.models)}
        assert probability == before.predict_proba_one(x)[1]
    assert len({m["lr"] for _, m, _ in [learners.apply([("step_explain", 0, x, None)])[0] for x, _ in events[:20]]}) > 1


def test_the_top_features_are_the_largest_weight_times_standardized_value():
    learners = opened()
    events = list(stream(900))
    run(learners, "step", events[:600])
    for x, y in events[600:]:
        lr = logistic_member(copy.deepcopy(learners.learners[0].model))
        scaler, regression = list(lr.steps.values())
        z, w = scaler.transform_one(x), regression.weights
        expected = sorted(((name, w.get(name, 0.0) * value) for name, value in z.items()),
                          key=lambda item: abs(item[1]), reverse=True)
        _, _, top = learners.apply([("step_explain", 0, x, y)])[0]
        assert [(t["name"], t["contribution"]) for t in top] == expected[:3]
        assert abs(top[-1]["contribution"]) >= max(abs(c) for _, c in expected[3:])
        assert abs(top[0]["contribution"]) > 0


def test_the_logistic_member_is_the_plain_regression_of_the_blend():
    model = model_factory(kind="arf+lr", trees=1)()
    assert logistic_member(model) is model.models[1]


@pytest.mark.parametrize("kind, has_members, has_top", [("lr", False, True), ("arf", False, False)])
def test_models_without_a_blend_or_a_regression_explain_what_they_have(kind, has_members, has_top):
    learners = opened(kind)
    events = list(stream(300))
    run(learners, "step", events[:200])
    _, members, top = learners.apply([("step_explain", 0, events[250][0], None)])[0]
    assert (members is not None, top is not None) == (has_members, has_top)
    if has_top:
        assert len(top) == 3


def test_explain_on_an_untrained_regression_names_features_with_zero_contributions():
    model = model_factory(kind="lr")()
    model.predict_proba_one({"V1": 2.0, "V2": 1.0})
    members, top = explain(model, {"V1": 2.0, "V2": 1.0})
    assert members is None
    assert sorted(t["name"] for t in top) == ["V1", "V2"] and {t["contribution"] for t in top} == {0.0}


def test_a_hosted_learner_asks_for_an_explanation_only_when_told():
    async def open_learner():
        return await HostedLearner.open(LocalHost(), 0, None, model_factory(kind="lr"), "")

    learner = asyncio.run(open_learner())
    assert learner.step({"V1": 1.0}, 1)[0] == "step"
    assert learner.step({"V1": 1.0}, None, explain=True) == ("step_explain", 0, {"V1": 1.0}, None)
    assert learner.events_learned == 1


def _scores(explanations: bool, n: int = 60) -> list[dict]:
    def table():
        return types.SimpleNamespace(data={}, send_changelog=lambda partition, key, value, **kw: None)

    async def local_host():
        return LocalHost()

    scorer = Scorer(local_host, table(), table(), model_factory=model_factory(kind="arf+lr", trees=2),
                    explanations=explanations)
    items = []
    for i, row in enumerate(generate(n, seed=9)):
        tx = Transaction(transaction_id=f"tx-{i}", event_time=1.7e9 + i, Amount=float(row["Amount"]),
                         Class=int(row["Class"]), **{f"V{k}": float(row[f"V{k}"]) for k in range(1, 29)})
        items.append(Item(tx, tx.transaction_id.encode(), partition=0, offset=i))

    async def score_all():
        chunks = await scorer.submit(items)
        return [score async for chunk in scorer.scored(chunks) for _, score in chunk]

    return asyncio.run(score_all())


def test_scores_carry_explanations_when_on_and_the_same_probabilities_either_way():
    plain, explained = _scores(False), _scores(True)
    assert [s["fraud_probability"] for s in plain] == [s["fraud_probability"] for s in explained]
    assert all(s["members"] is None and s["top_features"] is None for s in plain)
    assert all(set(s["members"]) == {"arf", "lr", "lr_pos10"} and len(s["top_features"]) == 3 for s in explained)
    assert {k for k in plain[0] if k not in ("members", "top_features")} == \
           {k for k in explained[0] if k not in ("members", "top_features")}
    schema = fastavro.parse_schema(Score.avro_schema_to_python())
    for score in (plain[-1], explained[-1]):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, score)
        buf.seek(0)
        assert fastavro.schemaless_reader(buf, schema) == score
