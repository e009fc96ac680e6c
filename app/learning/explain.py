"""Why a model gave its probability: each blend member's own, and the features that moved the
logistic regression most.

A :class:`~app.learning.blend.ProbabilityBlend` remembers what each member said for its last
prediction (``last_member_probabilities``); :func:`members` names them. For a scaled logistic
regression (``StandardScaler | LogisticRegression``), feature ``i`` adds ``w_i * z_i`` to the log-odds,
``z_i`` being its standardized value and ``w_i`` its weight; :func:`top_contributions` gives the
features with the largest ``|w_i * z_i|``. Everything here only reads the model: called after a
prediction and before learning, it describes the very state that made that prediction.

>>> from app.learning.pipeline import build_model
>>> model = build_model("arf+lr", trees=2, seed=1)
>>> for i in range(200):
...     model.learn_one({"V1": float(i % 2), "V2": float(i % 3), "Amount": 1.0}, i % 2)
>>> x = {"V1": 1.0, "V2": 0.0, "Amount": 1.0}
>>> p = model.predict_proba_one(x)[1]
>>> sorted(members(model))
['arf', 'lr', 'lr_pos10']
>>> [c["name"] for c in top_contributions(logistic_member(model), x, 2)]
['V1', 'V2']
"""
from __future__ import annotations

from typing import Any

from river import base, compose, forest, linear_model

from app.learning.blend import ProbabilityBlend

#: How many features a score's explanation names.
TOP_FEATURES = 3


def member_name(model: base.Classifier) -> str:
    """A short name of a blend member: ``arf`` for the forest, ``lr`` for a scaled logistic
    regression, ``lr_pos<w>`` for one whose loss weighs frauds ``w`` times, else the class name
    in lower case.

    >>> from app.learning.pipeline import build_model
    >>> [member_name(m) for m in build_model("arf+lr", trees=1, lr_positive_weight=2.5).models]
    ['arf', 'lr', 'lr_pos2.5']
    """
    if isinstance(model, forest.ARFClassifier):
        return "arf"
    last = _last_step(model)
    if isinstance(last, linear_model.LogisticRegression):
        weight_pos = getattr(last.loss, "weight_pos", 1.0)
        return "lr" if weight_pos == 1.0 else f"lr_pos{weight_pos:g}"
    return type(last).__name__.lower()


def member_names(blend: ProbabilityBlend) -> list[str]:
    """The names of the blend's members, in its order; a repeated name gets ``_<position>``."""
    names = [member_name(m) for m in blend.models]
    return [f"{n}_{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def members(model: base.Classifier) -> dict[str, float] | None:
    """Each member's P(fraud) for the blend's last prediction, by name; None if ``model`` is not
    a :class:`ProbabilityBlend`."""
    if not isinstance(model, ProbabilityBlend):
        return None
    return dict(zip(member_names(model), model.last_member_probabilities))


def logistic_member(model: base.Classifier) -> compose.Pipeline | None:
    """The scaled logistic regression that explains a prediction: ``model`` itself if it is one,
    else the blend's first member that is one (the plain regression of the default blend); None
    when there is none (a forest alone)."""
    candidates = model.models if isinstance(model, ProbabilityBlend) else [model]
    for candidate in candidates:
        if isinstance(candidate, compose.Pipeline) and isinstance(_last_step(candidate), linear_model.LogisticRegression):
            return candidate
    return None


def top_contributions(pipeline: compose.Pipeline, x: dict, n: int = TOP_FEATURES) -> list[dict[str, Any]]:
    """The ``n`` features of ``x`` with the largest ``|w * z|`` in ``pipeline`` (its transformers,
    then a logistic regression), largest first: ``{"name", "contribution"}`` with the signed
    ``w * z`` (positive pushes towards fraud), the log-odds it added.

    >>> from river import linear_model, preprocessing
    >>> lr = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    >>> for i in range(100):
    ...     lr.learn_one({"a": float(i % 2), "b": 0.1 * (i % 5)}, i % 2)
    >>> [c["name"] for c in top_contributions(lr, {"a": 1.0, "b": 0.0})]
    ['a', 'b']
    >>> top_contributions(lr, {"a": 1.0, "b": 0.0})[0]["contribution"] > 0
    True
    """
    steps = list(pipeline.steps.values())
    z = x
    for step in steps[:-1]:
        z = step.transform_one(z)
    weights = steps[-1]._weights  # a VectorDict; .get does not add the missing keys
    contributions = [(name, weights.get(name, 0.0) * value) for name, value in z.items()]
    contributions.sort(key=lambda item: abs(item[1]), reverse=True)
    return [{"name": name, "contribution": float(c)} for name, c in contributions[:n]]


def explain(model: base.Classifier, x: dict, n: int = TOP_FEATURES) -> tuple[dict[str, float] | None, list[dict] | None]:
    """``(members, top)`` for the prediction ``model`` just made on ``x``: :func:`members` and the
    :func:`top_contributions` of its :func:`logistic_member` (None when it has none)."""
    pipeline = logistic_member(model)
    return members(model), (top_contributions(pipeline, x, n) if pipeline is not None else None)


def _last_step(model: Any) -> Any:
    return list(model.steps.values())[-1] if isinstance(model, compose.Pipeline) else model
