"""River's Gaussian splitter, with the new-leaf costs taken out; the same splits, to the last bit.

A Hoeffding tree gives each new leaf one splitter per feature it watches, cloned from the tree's
prototype, and each splitter one Gaussian estimator per class. River's generic ``clone()`` reads
the constructor's signature with ``inspect`` and deep-copies its parameters, and every
``proba.Gaussian`` seeds a random generator of its own (``random.Random(None)`` reads
``os.urandom``) that a splitter never uses: an estimator only counts, and the split search only
reads its mean and variance. In the default forest, which grows and replaces trees all the time,
this bookkeeping was a third of the model's CPU time.

* :class:`GaussianSplitter` - ``river.tree.splitter.GaussianSplitter`` whose ``clone()`` of a plain
  splitter is a constructor call and whose estimators are :class:`UnseededGaussian`.
* :class:`UnseededGaussian` - ``river.proba.Gaussian`` that makes its random generator only when
  something samples from it.

Both change no number: a forest with this splitter predicts exactly what River's own predicts
(``tests/learning/test_splitter.py``; ``benchmarks/model_speed.py`` measures the difference).

>>> splitter = GaussianSplitter(n_splits=5)
>>> for value, label in [(1.0, 0), (2.0, 0), (10.0, 1)]:
...     splitter.update(value, label, 1.0)
>>> fresh = splitter.clone()
>>> type(fresh).__name__, fresh.n_splits, fresh._att_dist_per_class
('GaussianSplitter', 5, {})
>>> estimator = splitter._att_dist_per_class[0]
>>> type(estimator).__name__, estimator.mu, estimator.n_samples
('UnseededGaussian', 1.5, 2.0)
"""
from __future__ import annotations

import functools
import random

from river import stats
from river.proba import Gaussian
from river.tree import splitter as river_splitter


class UnseededGaussian(Gaussian):
    """``river.proba.Gaussian`` whose random generator is made on first use (by ``sample()``).

    >>> a, b = UnseededGaussian(seed=3), UnseededGaussian(seed=3)
    >>> for x in (1.0, 2.0, 3.0):
    ...     a.update(x); b.update(x)
    >>> a.mu, round(a.sigma, 6), a.sample() == b.sample()
    (2.0, 1.0, True)
    """

    def __init__(self, seed=None):  # Distribution.__init__ would seed a generator now
        self.seed = seed
        self._var = stats.Var(ddof=1)

    @functools.cached_property
    def _rng(self) -> random.Random:
        return random.Random(self.seed)


class GaussianSplitter(river_splitter.GaussianSplitter):
    """``river.tree.splitter.GaussianSplitter`` for trees that make many leaves (see the module).

    >>> from river import datasets, forest
    >>> ours = forest.ARFClassifier(n_models=3, seed=1, splitter=GaussianSplitter())
    >>> rivers = forest.ARFClassifier(n_models=3, seed=1)
    >>> same = True
    >>> for x, y in datasets.Phishing():
    ...     same &= ours.predict_proba_one(x) == rivers.predict_proba_one(x)
    ...     ours.learn_one(x, y); rivers.learn_one(x, y)
    >>> same, ours.n_models
    (True, 3)
    """

    def clone(self, new_params: dict | None = None, include_attributes: bool = False):
        if new_params or include_attributes:
            return super().clone(new_params, include_attributes)
        return type(self)(n_splits=self.n_splits)

    def update(self, att_val, target_val, w) -> None:
        if att_val is not None and target_val not in self._att_dist_per_class:
            self._att_dist_per_class[target_val] = UnseededGaussian()
            self._min_per_class[target_val] = att_val
            self._max_per_class[target_val] = att_val
        super().update(att_val, target_val, w)
