"""The model: River's Adaptive Random Forest at the core, optionally blended with a scaled
logistic regression.

Kinds (``kind`` of :func:`build_model`):

* ``arf`` - ``river.forest.ARFClassifier`` alone (trees are scale-free: no preprocessing).
* ``lr`` - ``StandardScaler | LogisticRegression`` alone (the fast linear baseline).
* ``arf+lr`` (default) - the weighted mean of the probabilities
  (:class:`~app.learning.blend.ProbabilityBlend`) of the forest (share ``arf_weight``) and of two
  scaled logistic regressions that share the rest: a plain one and, for the class imbalance, one
  whose loss weighs frauds ``lr_positive_weight`` times (left out when that weight is 1). The forest
  catches non-linear patterns, the regressions rank the bulk smoothly and learn from few frauds:
  on the full ULB file the blend ranks frauds better than each member alone (prequential PR-AUC
  0.774 against 0.619 for ARF(10), 0.730 for the plain regression; see ``benchmarks/scoring.py``),
  at the forest's speed.
"""
from __future__ import annotations

import functools
from typing import Callable

from river import base, forest, linear_model, optim, preprocessing
from river.tree.splitter import Splitter

from app.learning.blend import ProbabilityBlend
from app.learning.splitter import GaussianSplitter

MODEL_KINDS = ("arf", "lr", "arf+lr")


def build_model(
    kind: str = "arf+lr",
    *,
    trees: int = 10,
    seed: int = 42,
    arf_weight: float = 1 / 3,
    grace_period: int = 50,
    max_features: str | int = "sqrt",
    lambda_value: int = 6,
    lr_learning_rate: float = 0.01,
    lr_positive_weight: float = 10.0,
    splitter: Splitter | None = None,
) -> base.Classifier:
    """A fresh, untrained River classifier of the given ``kind``; the same arguments give the same
    model (the forest's randomness comes from ``seed``). ``splitter`` is the forest's splitter
    prototype; by default :class:`app.learning.splitter.GaussianSplitter`, River's own with the
    costs of new leaves taken out (same predictions, faster).

    >>> model = build_model("arf+lr", trees=3, seed=1)
    >>> p = model.predict_proba_one({"V1": 0.0})[1]  # untrained: the forest says 0, the regressions 0.5
    >>> round(p, 6)
    0.333333
    >>> len(build_model("arf+lr", trees=3, lr_positive_weight=1.0).models)
    2
    >>> type(build_model("arf", trees=3)).__name__
    'ARFClassifier'
    >>> build_model("svm")
    Traceback (most recent call last):
    ...
    ValueError: unknown model kind 'svm' (known: arf, lr, arf+lr)
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_KINDS)})")

    def arf() -> base.Classifier:
        return forest.ARFClassifier(
            n_models=trees, seed=seed, grace_period=grace_period, max_features=max_features,
            lambda_value=lambda_value, splitter=splitter if splitter is not None else GaussianSplitter(),
        )

    def lr(weight_pos: float = 1.0) -> base.Classifier:
        return preprocessing.StandardScaler() | linear_model.LogisticRegression(
            optimizer=optim.SGD(lr_learning_rate), loss=optim.losses.Log(weight_pos=weight_pos),
        )

    if kind == "arf":
        return arf()
    if kind == "lr":
        return lr()
    if lr_positive_weight == 1.0:
        return ProbabilityBlend([arf(), lr()], weights=[arf_weight, 1.0 - arf_weight])
    rest = (1.0 - arf_weight) / 2
    return ProbabilityBlend([arf(), lr(), lr(lr_positive_weight)], weights=[arf_weight, rest, rest])


def model_factory(**params) -> Callable[[], base.Classifier]:
    """A picklable factory of ``build_model(**params)`` (what :class:`OnlineLearner` takes); a model
    process can build the same model from it.

    >>> factory = model_factory(kind="arf", trees=2)
    >>> type(factory()).__name__, model_name(factory)
    ('ARFClassifier', 'arf2')
    """
    return functools.partial(build_model, **params)


def model_name(factory: Callable[[], base.Classifier]) -> str:
    """A short name of the model a factory builds, for model versions.

    >>> model_name(functools.partial(build_model, kind="arf+lr", trees=10))
    'arf10+lr'
    >>> model_name(functools.partial(build_model, kind="lr"))
    'lr'
    """
    kw = getattr(factory, "keywords", None) or {}
    kind = kw.get("kind", "arf+lr") if getattr(factory, "func", None) is build_model else None
    if kind is None:
        return getattr(factory, "__name__", type(factory).__name__)
    trees = kw.get("trees", 10)
    return kind.replace("arf", f"arf{trees}")

