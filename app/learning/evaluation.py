"""Prequential (test-then-train) evaluation with exact metrics.

Each labelled event is scored *before* the model learns it; the evaluator keeps the pairs
(label, probability) and computes, cumulatively and over the last ``window`` events:

* ``roc_auc`` and ``pr_auc`` - exact, by scikit-learn over every pair (``average_precision_score``
  for PR-AUC). Never a thresholded approximation: at 0.17% fraud those are badly wrong.
* ``precision`` and ``recall`` at the decision ``threshold`` (``decision = p >= threshold``).

The cumulative history is kept compactly (9 bytes per event) and the AUCs are computed on demand
by :meth:`report`, so updating costs microseconds; call :meth:`report` every few seconds, not per
event. A metric that is undefined (no positive or no negative yet) is ``nan``.

>>> ev = PrequentialEvaluator(window=4, threshold=0.5)
>>> for y, p in [(0, 0.1), (1, 0.8), (0, 0.3), (1, 0.4), (0, 0.2)]:
...     ev.update(y, p)
>>> r = ev.report()
>>> r["cumulative"]["roc_auc"], r["cumulative"]["recall"], r["cumulative"]["precision"], r["cumulative"]["count"]
(1.0, 0.5, 1.0, 5)
>>> r["window"]["count"], round(r["window"]["pr_auc"], 3)
(4, 1.0)
"""
from __future__ import annotations

import collections
import math
from array import array

import numpy as np

METRICS = ("roc_auc", "pr_auc", "precision", "recall")


def exact_metrics(y, p, threshold: float) -> dict[str, float]:
    """Exact ROC-AUC, PR-AUC, precision and recall at ``threshold`` of labels ``y`` and scores ``p``.

    >>> m = exact_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.5)
    >>> m["roc_auc"], m["precision"], m["recall"]
    (0.75, 0.5, 0.5)
    >>> math.isnan(exact_metrics([0, 0], [0.1, 0.2], 0.5)["roc_auc"])
    True
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y, dtype=np.int8)
    p = np.asarray(p, dtype=np.float64)
    positives = int(y.sum())
    out = {"count": int(len(y)), "positives": positives}
    if 0 < positives < len(y):
        out["roc_auc"] = float(roc_auc_score(y, p))
        out["pr_auc"] = float(average_precision_score(y, p))
    else:
        out["roc_auc"] = out["pr_auc"] = math.nan
    flagged = p >= threshold
    tp = int((flagged & (y == 1)).sum())
    out["precision"] = tp / int(flagged.sum()) if flagged.any() else math.nan
    out["recall"] = tp / positives if positives else math.nan
    return out


class PrequentialEvaluator:
    """Exact prequential metrics, cumulative and over a sliding window of the last ``window`` events."""

    def __init__(self, window: int = 10_000, threshold: float = 0.5) -> None:
        self.window = window
        self.threshold = threshold
        self._y = array("b")
        self._p = array("d")
        self._recent: collections.deque[tuple[int, float]] = collections.deque(maxlen=window)

    def update(self, y: int, p: float) -> None:
        """Record the probability ``p`` the model gave before it learned the label ``y``."""
        self._y.append(1 if y else 0)
        self._p.append(p)
        self._recent.append((1 if y else 0, p))

    @property
    def count(self) -> int:
        return len(self._y)

    def snapshot(self) -> "PrequentialEvaluator":
        """A copy, to report on in another thread while this one keeps updating.

        >>> ev = PrequentialEvaluator(window=2); ev.update(1, 0.9)
        >>> copy = ev.snapshot(); ev.update(0, 0.1)
        >>> copy.count, ev.count
        (1, 2)
        """
        copy = PrequentialEvaluator(self.window, self.threshold)
        copy._y = array("b", self._y)
        copy._p = array("d", self._p)
        copy._recent = collections.deque(self._recent, maxlen=self.window)
        return copy

    def report(self) -> dict[str, dict[str, float]]:
        """``{"cumulative": {...}, "window": {...}}``, each with the :data:`METRICS`, count, positives."""
        cumulative = exact_metrics(np.frombuffer(self._y, dtype=np.int8), np.frombuffer(self._p), self.threshold)
        if self._recent:
            ys, ps = zip(*self._recent)
        else:
            ys, ps = (), ()
        return {"cumulative": cumulative, "window": exact_metrics(ys, ps, self.threshold)}
