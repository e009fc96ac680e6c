"""A weighted mean of several binary classifiers' probabilities of the positive class."""
from __future__ import annotations

from typing import Any, Sequence

from river import base


class ProbabilityBlend(base.Classifier):
    """Each member learns every event; the blend predicts the weighted mean of their P(y=1).

    A tree ensemble and a linear model make different errors on fraud data, so their mean ranks
    frauds better than either alone. Members that have not seen the positive class yet count
    as P(y=1) = 0.

    >>> from river import linear_model, preprocessing, tree
    >>> blend = ProbabilityBlend(
    ...     [tree.HoeffdingTreeClassifier(), preprocessing.StandardScaler() | linear_model.LogisticRegression()],
    ...     weights=[0.5, 0.5])
    >>> blend.predict_proba_one({"a": 1.0})  # untrained: the tree says 0, the regression 0.5
    {0: 0.75, 1: 0.25}
    >>> for i in range(50):
    ...     blend.learn_one({"a": float(i % 2)}, i % 2)
    >>> p = blend.predict_proba_one({"a": 1.0})[1]
    >>> 0.5 < p <= 1.0
    True
    >>> len(blend.last_member_probabilities)  # each member's own P(y=1) for the last prediction
    2
    """

    def __init__(self, models: Sequence[base.Classifier], weights: Sequence[float] | None = None) -> None:
        if not models:
            raise ValueError("a blend needs at least one model")
        if weights is not None and len(weights) != len(models):
            raise ValueError(f"{len(weights)} weights for {len(models)} models")
        self.models = list(models)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.models)
        total = float(sum(self.weights))
        if total <= 0:
            raise ValueError("the weights must sum to more than 0")
        self._shares = [w / total for w in self.weights]

    @classmethod
    def _unit_test_params(cls):
        from river import linear_model, tree

        yield {"models": [tree.HoeffdingTreeClassifier(), linear_model.LogisticRegression()]}

    def learn_one(self, x: dict, y: Any, **kwargs: Any) -> None:
        for model in self.models:
            model.learn_one(x, y)

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict:
        members = [model.predict_proba_one(x).get(1, 0.0) for model in self.models]
        self.last_member_probabilities = members  # what each member said, for evaluation and explanations
        p = 0.0
        for share, member in zip(self._shares, members):
            p += share * member
        return {0: 1.0 - p, 1: p}
