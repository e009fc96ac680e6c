"""The forest's splitter: River's numbers exactly, without the new-leaf bookkeeping."""
from __future__ import annotations

import pickle

from river.tree.splitter import GaussianSplitter as RiversSplitter

from app.data.synthetic import generate
from app.learning.pipeline import build_model
from app.learning.splitter import GaussianSplitter, UnseededGaussian
from app.records import FEATURE_NAMES


def stream(n, fraud_rate=0.05):
    for row in generate(n, seed=7, fraud_rate=fraud_rate):
        yield {name: float(row[name]) for name in FEATURE_NAMES}, int(row["Class"])


def leaves(model):
    return sum(tree.n_leaves for tree in model.models[0].data)


def test_the_default_model_predicts_exactly_what_it_would_with_rivers_splitter():
    ours = build_model("arf+lr", trees=5, seed=3)
    rivers = build_model("arf+lr", trees=5, seed=3, splitter=RiversSplitter())
    assert isinstance(ours.models[0].splitter, GaussianSplitter)
    assert type(rivers.models[0].splitter) is RiversSplitter
    differences = 0
    for x, y in stream(4000):
        differences += ours.predict_proba_one(x) != rivers.predict_proba_one(x)
        ours.learn_one(x, y)
        rivers.learn_one(x, y)
    assert differences == 0
    assert leaves(ours) == leaves(rivers) > 5 * 4  # the trees split: new leaves made new splitters
    leaf_splitters = [s for tree in ours.models[0].data for leaf in tree._root.iter_leaves()
                      for s in leaf.splitters.values()]
    assert leaf_splitters and all(type(s) is GaussianSplitter for s in leaf_splitters)
    assert any(isinstance(g, UnseededGaussian) for s in leaf_splitters for g in s._att_dist_per_class.values())


def test_a_clone_keeps_the_parameters_or_takes_new_ones():
    splitter = GaussianSplitter(n_splits=4)
    splitter.update(1.0, 0, 1.0)
    assert splitter.clone().n_splits == 4 and splitter.clone()._att_dist_per_class == {}
    changed = splitter.clone({"n_splits": 9})
    assert type(changed) is GaussianSplitter and changed.n_splits == 9


def test_a_trained_splitter_pickles_and_its_estimators_sample_when_asked():
    splitter = GaussianSplitter()
    for i in range(20):
        splitter.update(float(i), i % 2, 1.0)
    restored = pickle.loads(pickle.dumps(splitter))
    assert restored.cond_proba(3.0, 1) == splitter.cond_proba(3.0, 1) > 0
    estimator = restored._att_dist_per_class[1]
    assert "_rng" not in vars(estimator)  # none made until something samples
    assert isinstance(estimator.sample(), float) and "_rng" in vars(estimator)
    seeded = [UnseededGaussian(seed=5) for _ in range(2)]
    for g in seeded:
        g.update(1.0)
        g.update(3.0)
    assert seeded[0].sample() == seeded[1].sample()
